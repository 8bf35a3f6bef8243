// A bounded cache of unsealed keys inside the TEE process, so hot keys are not unsealed and
// re-derived on every signature. Entries expire after a lifetime and on LRU eviction; evicted
// keys are destroyed (secret bytes zeroized). An entry is valid only for the exact sealed blob it
// came from, so a rewrapped or replaced record is unsealed afresh.

import { equalBytes } from './bytes.ts';
import type { UsableKey } from './keys.ts';
import type { Clock, KeyRecord } from './ports.ts';

interface Entry {
  readonly key: UsableKey;
  readonly sealed: Uint8Array;
  readonly expiresAt: number;
}

export interface KeyCacheOptions {
  readonly clock: Clock;
  readonly maxEntries: number;
  readonly ttlMs: number;
}

export class UnsealedKeyCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly o: KeyCacheOptions) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * Runs `fn` with the cached key for `record`, or with the one `load` makes (then cached). With
   * caching disabled (maxEntries 0) the loaded key is destroyed as soon as `fn` returns.
   */
  with<T>(record: KeyRecord, load: () => UsableKey, fn: (key: UsableKey) => T): T {
    const now = this.o.clock.now();
    const hit = this.entries.get(record.keyId);
    if (hit !== undefined) {
      this.entries.delete(record.keyId);
      if (hit.expiresAt > now && equalBytes(hit.sealed, record.sealed)) {
        this.entries.set(record.keyId, hit); // most recently used goes last
        return fn(hit.key);
      }
      hit.key.destroy();
    }
    const key = load();
    if (this.o.maxEntries === 0) {
      try {
        return fn(key);
      } finally {
        key.destroy();
      }
    }
    this.entries.set(record.keyId, { key, sealed: record.sealed, expiresAt: now + this.o.ttlMs });
    this.evictOverflow();
    return fn(key);
  }

  /** Destroys every cached key (shutdown). */
  clear(): void {
    for (const e of this.entries.values()) e.key.destroy();
    this.entries.clear();
  }

  private evictOverflow(): void {
    while (this.entries.size > this.o.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) return;
      this.entries.get(oldest.value)?.key.destroy();
      this.entries.delete(oldest.value);
    }
  }
}
