// The `Store` port over any ordered key-value backend with atomic batches (LevelDB, or memory for
// unit tests). Owns the storage key layout, the per-store serialization of commits, and the one
// switch over `Change.kind` (`plan`): each change is validated and encoded up front, then checked and
// staged inside the serialized section, and the whole commit is written as ONE atomic batch.
//
// Key layout (keys are ASCII; every variable part is the lowercase hex of its UTF-8 bytes, so no id
// can forge a separator and byte order of the hex = byte order of the id):
//   m!format                       → "openkey-store/1" (refuse to open anything else)
//   p!<principalId>                → principal record (record-codec.ts)
//   k!<keyId>                      → key record
//   o!<owner>!<keyId>              → empty; owner index for listKeys (UTF-8 byte order of key id)
//   n!<principalId>!<nonce>        → consumed-nonce record {expiresAt}
//   x!<expiresAt:16 hex>!<principalId>!<nonce> → empty; expiry index, so pruneNonces is a range scan
//   c!<counter>                    → window counter {windowStart, count} (policy caps)
//   b!<bucket>                     → token bucket {level, at, parameters} (policy rate limits)
//   a!<seq:16 hex>                 → audit record (seq order = key order)
//   m!audit-head                   → audit chain head {seq, hash}; absent = empty log
//   d!<space>!<id>                 → document {version, expiresAt?, value} (people, passkeys, policies…)
//   y!<expiresAt:16 hex>!<space>!<id> → empty; expiry index of documents, for pruneDocs
//
// Extending: add a `Change` variant in ports.ts and a case in `plan`. A step reads through `Txn.get`
// (which sees the commit's own earlier writes, e.g. the chain head another change in the same commit
// advanced) and stages puts; commits are serialized per store, so read-check-write within a step is
// race-free (counters cannot lose an update, the chain cannot fork), and it lands in the same batch.
// `commitEach` stages each group in its own layer over the batch, so groups fail independently but
// share one durable write (group commit). `expectKey`/`expectDoc` write nothing: they re-read the
// value a decision used, inside the section, so a decision on stale reads cannot commit.

import { AUDIT_GENESIS_HASH, chainAuditRecord, checkAuditEntry } from '../core/audit.ts';
import { equalBytes } from '../core/bytes.ts';
import { OpenKeyError, isOpenKeyError } from '../core/errors.ts';
import { docVersion, isReadVersion, keyRecordVersion } from '../core/read-versions.ts';
import { abortReason, type CommitOptions } from '../core/ports.ts';
import type { AuditHead, AuditRecord, Change, KeyRecord, ListPage, PrincipalRecord, Store, StoredDoc, TokenBucketState, WindowCounter } from '../core/ports.ts';
import {
  decodeAuditHead,
  decodeAuditRecord,
  decodeBucket,
  decodeCounter,
  decodeDoc,
  encodeDoc,
  isDocSpace,
  isDocVersion,
  decodeKey,
  decodePrincipal,
  encodeAuditHead,
  encodeAuditRecord,
  encodeBucket,
  encodeCounter,
  encodeKey,
  encodeNonce,
  encodePrincipal,
  isBucketParams,
  isCount,
  isStorableId,
  isTimestamp,
} from './record-codec.ts';
import { MISS, RecordCache } from './record-cache.ts';

/** Largest `ListPage.limit` accepted. */
export const MAX_PAGE_LIMIT = 1000;
/** Largest number of changes in one commit (in each group of `commitEach`). */
export const MAX_CHANGES_PER_COMMIT = 1000;
/** Largest number of groups in one `commitEach`. */
export const MAX_GROUPS_PER_COMMIT = 1000;
/** Most audit records one `readAudit` returns. */
export const MAX_AUDIT_READ = 1000;
const PRUNE_CHUNK = 500;
const FORMAT_KEY = 'm!format';
const FORMAT_VALUE = 'openkey-store/1';

// ---- backend ------------------------------------------------------------------------------------

export type KvOp = { readonly type: 'put'; readonly key: string; readonly value: Uint8Array } | { readonly type: 'del'; readonly key: string };

export interface KeyRange {
  readonly gt?: string;
  readonly gte?: string;
  readonly lt?: string;
  readonly limit: number;
}

/**
 * What a backend must provide. Keys are compared in UTF-8 byte order. `write` applies all ops or
 * none. Failures are thrown as OpenKeyError('INTERNAL') with the backend error as cause.
 */
export interface KvBackend {
  get(key: string): Promise<Uint8Array | undefined>;
  /** Keys in ascending order within the range, at most `limit`. */
  keys(range: KeyRange): Promise<string[]>;
  write(ops: readonly KvOp[]): Promise<void>;
  close(): Promise<void>;
}

// ---- key layout ---------------------------------------------------------------------------------

const hex = (s: string): string => Buffer.from(s, 'utf8').toString('hex');
const principalKey = (id: string): string => `p!${hex(id)}`;
const keyKey = (keyId: string): string => `k!${hex(keyId)}`;
const ownerPrefix = (owner: string): string => `o!${hex(owner)}!`;
const ownerIndexKey = (owner: string, keyId: string): string => `${ownerPrefix(owner)}${hex(keyId)}`;
const nonceKey = (principalId: string, nonce: string): string => `n!${hex(principalId)}!${hex(nonce)}`;
const expiryPart = (t: number): string => t.toString(16).padStart(16, '0');
const expiryKey = (t: number, principalId: string, nonce: string): string => `x!${expiryPart(t)}!${hex(principalId)}!${hex(nonce)}`;
const counterKey = (counter: string): string => `c!${hex(counter)}`;
const bucketKey = (bucket: string): string => `b!${hex(bucket)}`;
const auditKey = (seq: number): string => `a!${seq.toString(16).padStart(16, '0')}`;
const AUDIT_HEAD_KEY = 'm!audit-head';
const docPrefix = (space: string): string => `d!${hex(space)}!`;
const docKey = (space: string, id: string): string => `${docPrefix(space)}${hex(id)}`;
const docExpiryKey = (t: number, space: string, id: string): string => `y!${expiryPart(t)}!${hex(space)}!${hex(id)}`;
const DOC_EXPIRY_KEY_RE = /^y!([0-9a-f]{16})!((?:[0-9a-f]{2})+)!((?:[0-9a-f]{2})+)$/;
/** The smallest key greater than every key that starts with `prefix` (prefixes end in '!'). */
const prefixEnd = (prefix: string): string => `${prefix.slice(0, -1)}"`;

const HEX_ID_RE = /^(?:[0-9a-f]{2})+$/;
const EXPIRY_KEY_RE = /^x!([0-9a-f]{16})!((?:[0-9a-f]{2})+)!((?:[0-9a-f]{2})+)$/;
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const EMPTY = new Uint8Array(0);

function asOpenKeyError(e: unknown): OpenKeyError {
  return isOpenKeyError(e) ? e : new OpenKeyError('INTERNAL', 'commit step failed', { cause: e });
}

function unhexId(h: string): string | undefined {
  if (!HEX_ID_RE.test(h)) return undefined;
  try {
    const s = STRICT_UTF8.decode(Buffer.from(h, 'hex'));
    return isStorableId(s) ? s : undefined;
  } catch {
    return undefined; // invalid UTF-8: the caller reports the corrupt index entry
  }
}

// ---- read versions ------------------------------------------------------------------------------

const ABSENT_VERSION = new Uint8Array(0);

/**
 * The read version (core/read-versions.ts) of stored bytes, remembered per storage key: a version
 * is a function of the key and the bytes alone, so a remembered one is reused exactly when the
 * bytes are the same, and a commit's condition costs a byte comparison instead of a decode and a
 * hash. Bounded; the oldest entries go first.
 */
class VersionMemo {
  readonly #entries = new Map<string, { readonly raw: Uint8Array; readonly version: Uint8Array }>();

  constructor(private readonly max: number) {}

  of(key: string, raw: Uint8Array, compute: () => Uint8Array): Uint8Array {
    const hit = this.#entries.get(key);
    if (hit !== undefined && Buffer.compare(hit.raw, raw) === 0) return hit.version;
    const version = compute();
    this.#entries.delete(key);
    this.#entries.set(key, { raw: Uint8Array.from(raw), version });
    if (this.#entries.size > this.max) this.#entries.delete(this.#entries.keys().next().value as string);
    return version;
  }
}

const versions = new VersionMemo(1024);

// ---- staged writes ------------------------------------------------------------------------------

/** One commit's view of the store: reads see the commit's own staged writes first. */
export interface Txn {
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, value: Uint8Array): void;
  del(key: string): void;
  /** The audit head as this commit sees it, decoded (appends in one commit decode it once). */
  auditHead(): Promise<AuditHead>;
  /** Stages a new audit head; it is encoded once, when the commit is written. */
  putAuditHead(head: AuditHead): void;
}

/** Staged writes over a reader: the backend, or (commitEach) the batch staged so far. */
class StagedTxn implements Txn {
  readonly #base: Pick<KvBackend, 'get'> | StagedTxn;
  readonly #staged = new Map<string, KvOp>();
  /** A staged audit head, kept decoded; it replaces any staged op for AUDIT_HEAD_KEY. */
  #head: AuditHead | undefined;

  constructor(base: Pick<KvBackend, 'get'> | StagedTxn) {
    this.#base = base;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    if (key === AUDIT_HEAD_KEY && this.#head !== undefined) return encodeAuditHead(this.#head);
    const op = this.#staged.get(key);
    if (op !== undefined) return op.type === 'put' ? op.value : undefined;
    return this.#base.get(key);
  }

  async auditHead(): Promise<AuditHead> {
    if (this.#head !== undefined) return this.#head;
    if (!this.#staged.has(AUDIT_HEAD_KEY) && this.#base instanceof StagedTxn) return this.#base.auditHead();
    const raw = await this.get(AUDIT_HEAD_KEY);
    return raw === undefined ? { seq: 0, hash: AUDIT_GENESIS_HASH } : decodeAuditHead(raw);
  }

  putAuditHead(head: AuditHead): void {
    this.#staged.delete(AUDIT_HEAD_KEY);
    this.#head = head;
  }

  /** Takes over a finished layer's writes (a group that succeeded). */
  absorb(layer: StagedTxn): void {
    for (const op of layer.#staged.values()) this.put(op.key, op.type === 'put' ? op.value : EMPTY, op.type);
    if (layer.#head !== undefined) this.putAuditHead(layer.#head);
  }

  put(key: string, value: Uint8Array, type: 'put' | 'del' = 'put'): void {
    if (key === AUDIT_HEAD_KEY) this.#head = undefined;
    this.#staged.set(key, type === 'put' ? { type: 'put', key, value } : { type: 'del', key });
  }

  del(key: string): void {
    this.put(key, EMPTY, 'del');
  }

  ops(): KvOp[] {
    const ops = [...this.#staged.values()];
    if (this.#head !== undefined) ops.push({ type: 'put', key: AUDIT_HEAD_KEY, value: encodeAuditHead(this.#head) });
    return ops;
  }
}

type Step = (tx: Txn) => Promise<void>;

/**
 * The only place that knows what each change kind means. Runs synchronously at `commit` entry, so
 * invalid records fail before anything is locked and later mutation of the caller's objects cannot
 * change what is written; the returned step runs inside the serialized section.
 */
function plan(change: Change): Step {
  switch (change.kind) {
    case 'createPrincipal': {
      const value = encodePrincipal(change.principal);
      const key = principalKey(change.principal.id);
      return async (tx) => {
        if ((await tx.get(key)) !== undefined) throw new OpenKeyError('PRINCIPAL_EXISTS');
        tx.put(key, value);
      };
    }
    case 'createKey': {
      const { keyId, owner } = change.key;
      const value = encodeKey(change.key);
      const key = keyKey(keyId);
      return async (tx) => {
        if ((await tx.get(key)) !== undefined) throw new OpenKeyError('INTERNAL', 'key id collision');
        tx.put(key, value);
        tx.put(ownerIndexKey(owner, keyId), EMPTY);
      };
    }
    case 'replaceKey': {
      const { keyId, owner } = change.key;
      const value = encodeKey(change.key);
      const key = keyKey(keyId);
      return async (tx) => {
        const current = await tx.get(key);
        if (current === undefined) throw new OpenKeyError('INTERNAL', 'replaceKey: no such key');
        // The owner index is keyed by owner; ownership transfer is not a store operation.
        if (decodeKey(current, keyId).owner !== owner) throw new OpenKeyError('INTERNAL', 'replaceKey: owner cannot change');
        tx.put(key, value);
      };
    }
    case 'consumeNonce': {
      const { principalId, nonce, expiresAt } = change;
      if (!isStorableId(principalId) || !isStorableId(nonce)) throw new OpenKeyError('INTERNAL', 'consumeNonce: ill-formed principal id or nonce');
      const value = encodeNonce(expiresAt);
      const key = nonceKey(principalId, nonce);
      return async (tx) => {
        if ((await tx.get(key)) !== undefined) throw new OpenKeyError('STAMP_REPLAYED');
        tx.put(key, value);
        tx.put(expiryKey(expiresAt, principalId, nonce), EMPTY);
      };
    }
    case 'incrementCounter': {
      const { counter, windowStart, by, limit } = change;
      if (!isStorableId(counter) || !isTimestamp(windowStart) || !isCount(by) || by < 1 || !isCount(limit)) {
        throw new OpenKeyError('INTERNAL', 'incrementCounter: ill-formed counter, window, increment or limit');
      }
      const key = counterKey(counter);
      return async (tx) => {
        const raw = await tx.get(key);
        const current = raw === undefined ? undefined : decodeCounter(raw);
        // A newer window starts from zero; an older one counts against the stored, newer window.
        const window = current === undefined ? windowStart : Math.max(current.windowStart, windowStart);
        const count = (current !== undefined && current.windowStart === window ? current.count : 0) + by;
        if (count > limit) throw new OpenKeyError('CAP_EXCEEDED');
        tx.put(key, encodeCounter({ windowStart: window, count }));
      };
    }
    case 'takeTokens': {
      const { bucket, now, tokens, capacity, refillTokens, refillPeriodMs } = change;
      if (!isStorableId(bucket) || !isTimestamp(now) || !isCount(tokens) || tokens < 1 || !isBucketParams(capacity, refillTokens, refillPeriodMs)) {
        throw new OpenKeyError('INTERNAL', 'takeTokens: ill-formed bucket, time, tokens or parameters');
      }
      const key = bucketKey(bucket);
      // Units: one token = refillPeriodMs units; the bucket gains refillTokens units per ms. Exact.
      const full = capacity * refillPeriodMs;
      return async (tx) => {
        const raw = await tx.get(key);
        const current = raw === undefined ? undefined : decodeBucket(raw);
        let level = full;
        let at = now;
        if (
          current !== undefined &&
          current.capacity === capacity &&
          current.refillTokens === refillTokens &&
          current.refillPeriodMs === refillPeriodMs
        ) {
          level = current.level;
          at = current.at;
          // A clock behind the stored time (another replica, a late request) refills nothing.
          if (now > at) {
            const elapsed = now - at;
            // Compare before multiplying, so elapsed × refillTokens stays below `full`.
            level = elapsed >= Math.ceil((full - level) / refillTokens) ? full : level + elapsed * refillTokens;
            at = now;
          }
        }
        if (tokens > capacity || level < tokens * refillPeriodMs) throw new OpenKeyError('RATE_LIMITED');
        const next: TokenBucketState = { level: level - tokens * refillPeriodMs, at, capacity, refillTokens, refillPeriodMs };
        tx.put(key, encodeBucket(next));
      };
    }
    case 'appendAudit': {
      const entry = checkAuditEntry(change.entry);
      return async (tx) => {
        const record = chainAuditRecord(entry, await tx.auditHead());
        const key = auditKey(record.seq);
        // Never overwrite evidence: a record past the head means the head was rolled back on disk.
        if ((await tx.get(key)) !== undefined) throw new OpenKeyError('INTERNAL', 'audit head is behind the stored records');
        tx.put(key, encodeAuditRecord(record));
        tx.putAuditHead({ seq: record.seq, hash: record.hash });
      };
    }
    case 'putDoc': {
      const { space, id, ifVersion, expiresAt } = change;
      const conflict = change.conflict ?? 'CONFLICT';
      if (!isDocSpace(space) || !isStorableId(id)) throw new OpenKeyError('INTERNAL', 'putDoc: ill-formed space or id');
      if (ifVersion !== undefined && !(ifVersion === 0 || isDocVersion(ifVersion))) throw new OpenKeyError('INTERNAL', 'putDoc: ill-formed ifVersion');
      if (expiresAt !== undefined && !isTimestamp(expiresAt)) throw new OpenKeyError('INTERNAL', 'putDoc: ill-formed expiresAt');
      const value = Uint8Array.from(change.value);
      encodeDoc({ value, version: 1, ...(expiresAt === undefined ? {} : { expiresAt }) }); // validates size now
      const key = docKey(space, id);
      return async (tx) => {
        const raw = await tx.get(key);
        const current = raw === undefined ? undefined : decodeDoc(raw);
        if (ifVersion !== undefined && (current?.version ?? 0) !== ifVersion) throw new OpenKeyError(conflict, `${space} document changed`);
        if (current?.expiresAt !== undefined) tx.del(docExpiryKey(current.expiresAt, space, id));
        const version = (current?.version ?? 0) + 1;
        tx.put(key, encodeDoc({ value, version, ...(expiresAt === undefined ? {} : { expiresAt }) }));
        if (expiresAt !== undefined) tx.put(docExpiryKey(expiresAt, space, id), EMPTY);
      };
    }
    case 'deleteDoc': {
      const { space, id, ifVersion } = change;
      const conflict = change.conflict ?? 'CONFLICT';
      if (!isDocSpace(space) || !isStorableId(id)) throw new OpenKeyError('INTERNAL', 'deleteDoc: ill-formed space or id');
      if (ifVersion !== undefined && !isDocVersion(ifVersion)) throw new OpenKeyError('INTERNAL', 'deleteDoc: ill-formed ifVersion');
      const key = docKey(space, id);
      return async (tx) => {
        const raw = await tx.get(key);
        const current = raw === undefined ? undefined : decodeDoc(raw);
        if (ifVersion !== undefined && current?.version !== ifVersion) throw new OpenKeyError(conflict, `${space} document changed or gone`);
        if (current === undefined) return;
        if (current.expiresAt !== undefined) tx.del(docExpiryKey(current.expiresAt, space, id));
        tx.del(key);
      };
    }
    case 'expectKey': {
      const { keyId } = change;
      if (!isStorableId(keyId) || !isReadVersion(change.version)) throw new OpenKeyError('INTERNAL', 'expectKey: ill-formed key id or version');
      const version = Uint8Array.from(change.version);
      const key = keyKey(keyId);
      return async (tx) => {
        const raw = await tx.get(key);
        const current = raw === undefined ? ABSENT_VERSION : versions.of(key, raw, () => keyRecordVersion(decodeKey(raw, keyId)));
        if (!equalBytes(current, version)) throw new OpenKeyError('CONFLICT', 'key record changed since it was read');
      };
    }
    case 'expectDoc': {
      const { space, id } = change;
      if (!isDocSpace(space) || !isStorableId(id) || !isReadVersion(change.version)) throw new OpenKeyError('INTERNAL', 'expectDoc: ill-formed space, id or version');
      const version = Uint8Array.from(change.version);
      const key = docKey(space, id);
      return async (tx) => {
        const raw = await tx.get(key);
        const current = raw === undefined ? ABSENT_VERSION : versions.of(key, raw, () => docVersion(decodeDoc(raw)));
        if (!equalBytes(current, version)) throw new OpenKeyError('CONFLICT', `${space} document changed since it was read`);
      };
    }
    case 'serviceSession':
      // Sessions live in the memory of the process that holds them, not in any store.
      throw new OpenKeyError('INTERNAL', 'serviceSession is applied by the session holder, not the store');
    default: {
      const unknown: never = change;
      throw new OpenKeyError('INTERNAL', `unknown change kind ${String((unknown as { kind?: unknown }).kind)}`);
    }
  }
}

// ---- serialization ------------------------------------------------------------------------------

/** Runs tasks one at a time in call order; a failed task does not stop the queue. */
class Serializer {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task);
    this.#tail = result.catch(() => undefined); // failures belong to the caller awaiting `result`
    return result;
  }
}

// ---- the store ----------------------------------------------------------------------------------

export interface KvStoreOptions {
  /** Records kept in the write-through read cache (record-cache.ts); 0 disables it. Default 20000. */
  readonly cacheEntries?: number;
}

export class KvStore implements Store {
  readonly #backend: KvBackend;
  readonly #serial = new Serializer();
  readonly #cache: RecordCache;
  /** What commits read through: the cache, filled from the backend (we are inside `#serial`). */
  readonly #inside: Pick<KvBackend, 'get'> = { get: (key) => this.#readInside(key) };
  /**
   * The highest audit seq this process has written, once it has written one. Records are only
   * ever written here, together with the head, so every audit key above it is known to be absent
   * on disk: appendAudit's "never overwrite evidence" check then costs no read. (The first append
   * after opening still reads, so a head rolled back on disk is caught as before.)
   */
  #auditTail: number | undefined;
  #closed = false;

  private constructor(backend: KvBackend, options: KvStoreOptions) {
    this.#backend = backend;
    this.#cache = new RecordCache(options.cacheEntries ?? 20_000);
  }

  /**
   * Wraps a backend. An empty backend is stamped with the layout version; a non-empty one must carry
   * this layout version, so the store never reads a foreign or future database as its own.
   */
  static async open(backend: KvBackend, options: KvStoreOptions = {}): Promise<KvStore> {
    try {
      const marker = await backend.get(FORMAT_KEY);
      if (marker === undefined) {
        if ((await backend.keys({ gte: '', limit: 1 })).length > 0) throw new OpenKeyError('INTERNAL', 'database is not an OpenKey store (no format marker)');
        await backend.write([{ type: 'put', key: FORMAT_KEY, value: new Uint8Array(Buffer.from(FORMAT_VALUE, 'utf8')) }]);
      } else if (Buffer.from(marker).toString('utf8') !== FORMAT_VALUE) {
        throw new OpenKeyError('INTERNAL', 'unsupported store format');
      }
    } catch (e) {
      await backend.close().catch(() => undefined); // the open error is the one to report
      throw e;
    }
    return new KvStore(backend, options);
  }

  /** A read inside the serialized section: no write is in flight, so a miss may fill the cache. */
  async #readInside(key: string): Promise<Uint8Array | undefined> {
    if (this.#auditTail !== undefined && key.startsWith('a!') && parseInt(key.slice(2), 16) > this.#auditTail) return undefined;
    const hit = this.#cache.get(key);
    if (hit !== MISS) return hit;
    const value = await this.#backend.get(key);
    this.#cache.fill(key, value);
    return value;
  }

  /** A read from a request: a hit is served at once; a cacheable miss queues behind the commits. */
  async #read(key: string): Promise<Uint8Array | undefined> {
    const hit = this.#cache.get(key);
    if (hit !== MISS) return hit;
    if (!this.#cache.holds(key)) return this.#backend.get(key);
    return this.#serial.run(() => this.#readInside(key));
  }

  /**
   * A record through the cache's decoded copy: a hit costs no parsing. The result is shared with
   * the cache, so callers hand out copies of its byte arrays.
   */
  async #readRecord<T>(key: string, decode: (raw: Uint8Array) => T): Promise<T | undefined> {
    const hit = this.#cache.getDecoded(key, decode);
    if (hit !== MISS) return hit;
    const raw = await this.#read(key);
    return raw === undefined ? undefined : decode(raw);
  }

  /** Every write goes here (inside `#serial`), so the cache sees each durable change. */
  async #write(ops: readonly KvOp[]): Promise<void> {
    try {
      await this.#backend.write(ops);
    } catch (e) {
      this.#cache.forget(ops.map((op) => op.key));
      throw e;
    }
    this.#cache.apply(ops);
    for (const op of ops) {
      if (op.type === 'put' && op.key.startsWith('a!')) {
        const seq = parseInt(op.key.slice(2), 16);
        if (this.#auditTail === undefined || seq > this.#auditTail) this.#auditTail = seq;
      }
    }
  }

  async getPrincipal(id: string): Promise<PrincipalRecord | undefined> {
    this.#assertOpen();
    if (!isStorableId(id)) return undefined; // could never have been written
    const r = await this.#readRecord(principalKey(id), (raw) => decodePrincipal(raw, id));
    return r === undefined ? undefined : { ...r, publicKey: r.publicKey.slice() };
  }

  async getKey(keyId: string): Promise<KeyRecord | undefined> {
    this.#assertOpen();
    if (!isStorableId(keyId)) return undefined;
    const r = await this.#readRecord(keyKey(keyId), (raw) => decodeKey(raw, keyId));
    return r === undefined ? undefined : { ...r, publicKey: r.publicKey.slice(), sealed: r.sealed.slice() };
  }

  async listKeys(owner: string, page: ListPage): Promise<KeyRecord[]> {
    this.#assertOpen();
    const { limit } = page;
    // '' (the proto3 default) sorts before every id, so it means "from the start" like undefined.
    const after = page.after === '' ? undefined : page.after;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE_LIMIT) throw new OpenKeyError('INTERNAL', `listKeys: limit must be 1..${MAX_PAGE_LIMIT}`);
    if (after !== undefined && !isStorableId(after)) throw new OpenKeyError('INTERNAL', 'listKeys: ill-formed cursor');
    if (!isStorableId(owner)) return [];
    const prefix = ownerPrefix(owner);
    const range: KeyRange =
      after === undefined ? { gte: prefix, lt: prefixEnd(prefix), limit } : { gt: `${prefix}${hex(after)}`, lt: prefixEnd(prefix), limit };
    const indexKeys = await this.#backend.keys(range);
    return Promise.all(
      indexKeys.map(async (ik) => {
        const keyId = unhexId(ik.slice(prefix.length));
        if (keyId === undefined) throw new OpenKeyError('INTERNAL', 'corrupt owner index entry');
        const raw = await this.#backend.get(keyKey(keyId));
        if (raw === undefined) throw new OpenKeyError('INTERNAL', 'owner index names a missing key');
        const record = decodeKey(raw, keyId);
        // Never hand out another owner's key because the index says so.
        if (record.owner !== owner) throw new OpenKeyError('INTERNAL', 'owner index disagrees with key record');
        return record;
      }),
    );
  }

  async commit(changes: readonly Change[], options: CommitOptions = {}): Promise<void> {
    this.#assertOpen();
    if (options.signal?.aborted === true) throw abortReason(options.signal);
    if (!Array.isArray(changes)) throw new OpenKeyError('INTERNAL', 'commit: changes is not an array');
    if (changes.length > MAX_CHANGES_PER_COMMIT) throw new OpenKeyError('INTERNAL', `commit: more than ${MAX_CHANGES_PER_COMMIT} changes`);
    const steps = changes.map(plan);
    if (steps.length === 0) return;
    await this.#serial.run(async () => {
      const tx = new StagedTxn(this.#inside);
      for (const step of steps) await step(tx); // the first failed condition aborts; nothing written
      await this.#write(tx.ops());
    });
  }

  async commitEach(groups: readonly (readonly Change[])[]): Promise<(OpenKeyError | undefined)[]> {
    this.#assertOpen();
    if (!Array.isArray(groups)) throw new OpenKeyError('INTERNAL', 'commitEach: groups is not an array');
    if (groups.length > MAX_GROUPS_PER_COMMIT) throw new OpenKeyError('INTERNAL', `commitEach: more than ${MAX_GROUPS_PER_COMMIT} groups`);
    // Planned up front, like `commit`; an ill-formed group fails alone.
    const planned = groups.map((changes): Step[] | OpenKeyError => {
      try {
        if (!Array.isArray(changes)) throw new OpenKeyError('INTERNAL', 'commitEach: a group is not an array');
        if (changes.length > MAX_CHANGES_PER_COMMIT) throw new OpenKeyError('INTERNAL', `commitEach: a group of more than ${MAX_CHANGES_PER_COMMIT} changes`);
        return changes.map(plan);
      } catch (e) {
        return asOpenKeyError(e);
      }
    });
    return this.#serial.run(async () => {
      const batch = new StagedTxn(this.#inside);
      const results: (OpenKeyError | undefined)[] = [];
      for (const steps of planned) {
        if (!Array.isArray(steps)) {
          results.push(steps);
          continue;
        }
        const layer = new StagedTxn(batch);
        try {
          for (const step of steps) await step(layer);
          batch.absorb(layer);
          results.push(undefined);
        } catch (e) {
          results.push(asOpenKeyError(e)); // this group's layer is dropped; the others go on
        }
      }
      await this.#write(batch.ops());
      return results;
    });
  }

  async getCounter(counter: string): Promise<WindowCounter | undefined> {
    this.#assertOpen();
    if (!isStorableId(counter)) return undefined;
    const raw = await this.#read(counterKey(counter));
    return raw === undefined ? undefined : decodeCounter(raw);
  }

  async getTokenBucket(bucket: string): Promise<TokenBucketState | undefined> {
    this.#assertOpen();
    if (!isStorableId(bucket)) return undefined;
    const raw = await this.#read(bucketKey(bucket));
    return raw === undefined ? undefined : decodeBucket(raw);
  }

  async getAuditHead(): Promise<AuditHead> {
    this.#assertOpen();
    const raw = await this.#read(AUDIT_HEAD_KEY);
    return raw === undefined ? { seq: 0, hash: Uint8Array.from(AUDIT_GENESIS_HASH) } : decodeAuditHead(raw);
  }

  async readAudit(from: number, to: number): Promise<AuditRecord[]> {
    this.#assertOpen();
    if (!Number.isSafeInteger(from) || from < 1 || !Number.isSafeInteger(to) || to < from - 1 || to - from + 1 > MAX_AUDIT_READ) {
      throw new OpenKeyError('INTERNAL', `readAudit: need 1 ≤ from ≤ to + 1 and at most ${MAX_AUDIT_READ} records`);
    }
    if (to < from) return [];
    // Records are append-only, so the key scan and the reads that follow see the same records.
    const keys = await this.#backend.keys({ gte: auditKey(from), lt: auditKey(to + 1), limit: to - from + 1 });
    return Promise.all(
      keys.map(async (k) => {
        const raw = await this.#backend.get(k);
        if (raw === undefined) throw new OpenKeyError('INTERNAL', 'audit record vanished while reading');
        return decodeAuditRecord(raw);
      }),
    );
  }

  async getDoc(space: string, id: string): Promise<StoredDoc | undefined> {
    this.#assertOpen();
    if (!isDocSpace(space)) throw new OpenKeyError('INTERNAL', 'getDoc: ill-formed space');
    if (!isStorableId(id)) return undefined;
    const d = await this.#readRecord(docKey(space, id), decodeDoc);
    return d === undefined ? undefined : { ...d, value: d.value.slice() };
  }

  async listDocs(space: string, page: ListPage & { readonly prefix?: string }): Promise<{ readonly id: string; readonly doc: StoredDoc }[]> {
    this.#assertOpen();
    const { limit } = page;
    const after = page.after === '' ? undefined : page.after;
    if (!isDocSpace(space)) throw new OpenKeyError('INTERNAL', 'listDocs: ill-formed space');
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE_LIMIT) throw new OpenKeyError('INTERNAL', `listDocs: limit must be 1..${MAX_PAGE_LIMIT}`);
    if (after !== undefined && !isStorableId(after)) throw new OpenKeyError('INTERNAL', 'listDocs: ill-formed cursor');
    const base = docPrefix(space);
    // Hex is byte-wise, so the hex of a prefix is a prefix of the hex of every id that has it.
    const prefix = `${base}${page.prefix === undefined ? '' : hex(page.prefix)}`;
    const end = page.prefix === undefined || page.prefix === '' ? prefixEnd(base) : `${prefix}g`; // 'g' sorts after every hex digit
    const afterKey = after === undefined ? undefined : `${base}${hex(after)}`;
    const range: KeyRange = afterKey !== undefined && afterKey >= prefix ? { gt: afterKey, lt: end, limit } : { gte: prefix, lt: end, limit };
    const keys = await this.#backend.keys(range);
    return Promise.all(
      keys.map(async (k) => {
        const id = unhexId(k.slice(base.length));
        if (id === undefined) throw new OpenKeyError('INTERNAL', 'corrupt document key');
        const raw = await this.#backend.get(k);
        if (raw === undefined) throw new OpenKeyError('INTERNAL', 'document vanished while listing');
        return { id, doc: decodeDoc(raw) };
      }),
    );
  }

  async pruneDocs(now: number): Promise<number> {
    this.#assertOpen();
    if (!isTimestamp(now)) throw new OpenKeyError('INTERNAL', 'pruneDocs: now is not a timestamp');
    const end = `y!${expiryPart(now)}`;
    let removed = 0;
    for (;;) {
      const n = await this.#serial.run(async () => {
        if (this.#closed) return 0;
        const keys = await this.#backend.keys({ gte: 'y!', lt: end, limit: PRUNE_CHUNK });
        const ops: KvOp[] = [];
        for (const k of keys) {
          const m = DOC_EXPIRY_KEY_RE.exec(k);
          if (m === null) throw new OpenKeyError('INTERNAL', 'corrupt document expiry index entry');
          ops.push({ type: 'del', key: k });
          // Only if the document still carries this expiry (a rewrite moved its index entry).
          const doc = `d!${m[2] ?? ''}!${m[3] ?? ''}`;
          const raw = await this.#readInside(doc);
          if (raw !== undefined && decodeDoc(raw).expiresAt === parseInt(m[1] ?? '', 16)) ops.push({ type: 'del', key: doc });
        }
        if (ops.length > 0) await this.#write(ops);
        return keys.length;
      });
      removed += n;
      if (n < PRUNE_CHUNK) return removed;
    }
  }

  async pruneNonces(now: number): Promise<number> {
    this.#assertOpen();
    if (!isTimestamp(now)) throw new OpenKeyError('INTERNAL', 'pruneNonces: now is not a timestamp');
    const end = `x!${expiryPart(now)}`; // expiresAt < now
    let removed = 0;
    // Chunked, each chunk one serialized batch, so a long prune never holds up commits for long.
    for (;;) {
      const n = await this.#serial.run(async () => {
        if (this.#closed) return 0;
        const keys = await this.#backend.keys({ gte: 'x!', lt: end, limit: PRUNE_CHUNK });
        const ops: KvOp[] = [];
        for (const k of keys) {
          const m = EXPIRY_KEY_RE.exec(k);
          if (m === null) throw new OpenKeyError('INTERNAL', 'corrupt nonce expiry index entry');
          ops.push({ type: 'del', key: k }, { type: 'del', key: `n!${m[2] ?? ''}!${m[3] ?? ''}` });
        }
        if (ops.length > 0) await this.#write(ops);
        return keys.length;
      });
      removed += n;
      if (n < PRUNE_CHUNK) return removed;
    }
  }

  /** Lets queued commits finish, then closes the backend. New calls fail with INTERNAL. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#serial.run(() => this.#backend.close());
  }

  #assertOpen(): void {
    if (this.#closed) throw new OpenKeyError('INTERNAL', 'store is closed');
  }
}
