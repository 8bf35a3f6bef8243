// The `Store` port in memory, for unit tests of code around the store. It is the shared kv-store.ts
// logic (layout, record checks, serialized atomic commits) over a sorted in-memory map, so it obeys
// the same contract suite as LevelDB; nothing persists. Never the store a feature is verified with.

import type { Store } from '../core/ports.ts';
import { KvStore, type KeyRange, type KvBackend, type KvOp, type KvStoreOptions } from './kv-store.ts';

/** A fresh, empty in-memory store. */
export async function openMemoryStore(options: KvStoreOptions = {}): Promise<Store> {
  return KvStore.open(new MemoryBackend(), options);
}

const byUtf8 = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

export class MemoryBackend implements KvBackend {
  readonly #data = new Map<string, Uint8Array>();

  async get(key: string): Promise<Uint8Array | undefined> {
    const v = this.#data.get(key);
    return v === undefined ? undefined : Uint8Array.from(v);
  }

  async keys(range: KeyRange): Promise<string[]> {
    const { gt, gte, lt, limit } = range;
    return [...this.#data.keys()]
      .filter(
        (k) =>
          (gt === undefined || byUtf8(k, gt) > 0) && (gte === undefined || byUtf8(k, gte) >= 0) && (lt === undefined || byUtf8(k, lt) < 0),
      )
      .sort(byUtf8)
      .slice(0, limit);
  }

  /** Synchronous inside, so all ops land together (atomic for any other reader or writer). */
  async write(ops: readonly KvOp[]): Promise<void> {
    for (const op of ops) {
      if (op.type === 'put') this.#data.set(op.key, Uint8Array.from(op.value));
      else this.#data.delete(op.key);
    }
  }

  async close(): Promise<void> {
    this.#data.clear();
  }
}
