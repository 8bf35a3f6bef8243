// A bounded, write-through cache of stored records for kv-store.ts, so the hot path (the caller's
// principal, the key record, its policy document, the audit head and the policy counters) is read
// from memory instead of LevelDB on every request.
//
// Coherence rests on two facts the store guarantees: every write goes through the store's
// serialized section and lands here after it is durable (`apply`), and a miss is filled only from
// inside that section (`fill`), where no write can be in flight. So a filled value can never be
// older than a write that has completed, and a completed write always replaces what is cached.
// LevelDB is single-process, so no other process can write behind this cache's back.
//
// Only ciphertext and public records live here: key records hold the sealed blob, never the key.
// An entry also keeps the record decoded from its bytes the first time it is asked for, so a hot
// record is parsed once per write instead of once per request; callers copy what they hand out.

/** The cache has no entry for the key (distinct from "cached as absent"). */
export const MISS: unique symbol = Symbol('miss');

/** Key prefixes worth caching: records read on every request. Nonces and audit records are not. */
const CACHED_PREFIXES = ['p!', 'k!', 'd!', 'c!', 'b!', 'm!'];

interface Entry {
  readonly bytes: Uint8Array;
  /** What `getDecoded` decoded from `bytes` (a key prefix always has the same decoder). */
  decoded?: unknown;
}

export class RecordCache {
  /** Insertion order = recency (a hit moves the entry to the end). `null` = known absent. */
  readonly #entries = new Map<string, Entry | null>();
  readonly #max: number;

  constructor(maxEntries: number) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 0) throw new RangeError('maxEntries must be a non-negative integer');
    this.#max = maxEntries;
  }

  /** Whether records under this key are cached at all. */
  holds(key: string): boolean {
    return this.#max > 0 && CACHED_PREFIXES.includes(key.slice(0, 2));
  }

  /** A copy of the cached value, undefined if cached as absent, or MISS. */
  get(key: string): Uint8Array | undefined | typeof MISS {
    const v = this.#entries.get(key);
    if (v === undefined) return MISS;
    this.#entries.delete(key);
    this.#entries.set(key, v);
    return v === null ? undefined : Uint8Array.from(v.bytes);
  }

  /**
   * The record decoded from the cached value (decoded on the first call, then shared: the caller
   * must not modify it), undefined if cached as absent, or MISS. `decode` must not keep `bytes`.
   */
  getDecoded<T>(key: string, decode: (bytes: Uint8Array) => T): T | undefined | typeof MISS {
    const v = this.#entries.get(key);
    if (v === undefined) return MISS;
    this.#entries.delete(key);
    this.#entries.set(key, v);
    if (v === null) return undefined;
    if (!('decoded' in v)) v.decoded = decode(v.bytes);
    return v.decoded as T;
  }

  /** Records what the backend returned for a miss. Call only where no write can be in flight. */
  fill(key: string, value: Uint8Array | undefined): void {
    if (this.holds(key)) this.#set(key, value === undefined ? null : { bytes: Uint8Array.from(value) });
  }

  /** Applies a durable write: puts replace, deletes become "absent". */
  apply(ops: readonly ({ readonly type: 'put'; readonly key: string; readonly value: Uint8Array } | { readonly type: 'del'; readonly key: string })[]): void {
    for (const op of ops) if (this.holds(op.key)) this.#set(op.key, op.type === 'put' ? { bytes: Uint8Array.from(op.value) } : null);
  }

  /** Drops what a failed write may or may not have changed. */
  forget(keys: Iterable<string>): void {
    for (const k of keys) this.#entries.delete(k);
  }

  clear(): void {
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }

  #set(key: string, v: Entry | null): void {
    this.#entries.delete(key);
    this.#entries.set(key, v);
    if (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
  }
}
