// The store's write-through read cache: hot reads stop reaching the backend, every durable write is
// visible at once, a failed write leaves nothing stale, a read racing a commit never caches the old
// value, and the cache stays within its bound.

import { describe, expect, it } from 'vitest';
import type { KeyRecord } from '../core/ports.ts';
import { KvStore, type KeyRange, type KvBackend, type KvOp } from './kv-store.ts';
import { MemoryBackend } from './memory-store.ts';
import { MISS, RecordCache } from './record-cache.ts';
import { keyRecord } from './store.contract.ts';

/** A memory backend that counts reads and can be told to fail or stall its next write. */
class ObservedBackend implements KvBackend {
  readonly inner = new MemoryBackend();
  gets: string[] = [];
  failNextWrite = false;
  stall: Promise<void> | undefined;

  async get(key: string) {
    this.gets.push(key);
    return this.inner.get(key);
  }
  keys(range: KeyRange) {
    return this.inner.keys(range);
  }
  async write(ops: readonly KvOp[]) {
    if (this.stall !== undefined) await this.stall;
    if (this.failNextWrite) {
      this.failNextWrite = false;
      throw new Error('disk full');
    }
    return this.inner.write(ops);
  }
  close() {
    return this.inner.close();
  }
}

async function open(cacheEntries?: number) {
  const backend = new ObservedBackend();
  const store = await KvStore.open(backend, cacheEntries === undefined ? {} : { cacheEntries });
  backend.gets = [];
  return { backend, store };
}

const keyReads = (b: ObservedBackend) => b.gets.filter((k) => k.startsWith('k!')).length;

describe('RecordCache', () => {
  it('serves repeated reads of a record from memory', async () => {
    const { backend, store } = await open();
    await store.commit([{ kind: 'createKey', key: keyRecord('key_1', 'svc_a') }]);
    for (let i = 0; i < 5; i++) expect((await store.getKey('key_1'))?.owner).toBe('svc_a');
    expect(await store.getKey('key_2')).toBeUndefined();
    expect(await store.getKey('key_2')).toBeUndefined();
    // key_1 was cached by its own commit's existence check; key_2's absence is read once.
    expect(keyReads(backend)).toBe(2);
  });

  it('makes each durable write visible to the next read', async () => {
    const { store } = await open();
    await store.commit([{ kind: 'createKey', key: keyRecord('key_1', 'svc_a') }]);
    await store.getKey('key_1');
    await store.commit([{ kind: 'replaceKey', key: keyRecord('key_1', 'svc_a', { label: 'second' }) }]);
    expect((await store.getKey('key_1'))?.label).toBe('second');
    await store.commit([{ kind: 'putDoc', space: 'policy', id: 'key_1', value: new Uint8Array([1]) }]);
    expect((await store.getDoc('policy', 'key_1'))?.version).toBe(1);
    await store.commit([{ kind: 'deleteDoc', space: 'policy', id: 'key_1' }]);
    expect(await store.getDoc('policy', 'key_1')).toBeUndefined();
  });

  it('hands out copies: a caller mutating its record does not change the cache', async () => {
    const { store } = await open();
    await store.commit([{ kind: 'createKey', key: keyRecord('key_1', 'svc_a') }]);
    const a = (await store.getKey('key_1')) as KeyRecord;
    const before = Uint8Array.from(a.sealed);
    a.sealed.fill(9);
    expect((await store.getKey('key_1'))?.sealed).toEqual(before);
  });

  it('hands out copies of every byte field of a decoded record it shares', async () => {
    const { store } = await open();
    await store.commit([{ kind: 'createKey', key: keyRecord('key_1', 'svc_a') }]);
    await store.commit([{ kind: 'putDoc', space: 'policy', id: 'key_1', value: new Uint8Array([1, 2, 3]) }]);
    const k = (await store.getKey('key_1')) as KeyRecord;
    const pub = Uint8Array.from(k.publicKey);
    k.publicKey.fill(0);
    (await store.getDoc('policy', 'key_1'))?.value.fill(0);
    expect((await store.getKey('key_1'))?.publicKey).toEqual(pub);
    expect((await store.getDoc('policy', 'key_1'))?.value).toEqual(new Uint8Array([1, 2, 3]));
  });

  it('decodes a cached record once per write, not once per read', () => {
    const cache = new RecordCache(4);
    let decodes = 0;
    const decode = (b: Uint8Array) => {
      decodes++;
      return { first: b[0] };
    };
    expect(cache.getDecoded('k!a', decode)).toBe(MISS);
    cache.fill('k!a', new Uint8Array([1]));
    const a = cache.getDecoded('k!a', decode);
    expect(a).toEqual({ first: 1 });
    expect(cache.getDecoded('k!a', decode)).toBe(a);
    expect(decodes).toBe(1);
    cache.apply([{ type: 'put', key: 'k!a', value: new Uint8Array([2]) }]);
    expect(cache.getDecoded('k!a', decode)).toEqual({ first: 2 });
    expect(decodes).toBe(2);
    cache.apply([{ type: 'del', key: 'k!a' }]);
    expect(cache.getDecoded('k!a', decode)).toBeUndefined();
    expect(decodes).toBe(2);
  });

  it('forgets what a failed write touched, and the store still tells the truth', async () => {
    const { backend, store } = await open();
    await store.commit([{ kind: 'createKey', key: keyRecord('key_1', 'svc_a') }]);
    backend.failNextWrite = true;
    await expect(store.commit([{ kind: 'replaceKey', key: keyRecord('key_1', 'svc_a', { label: 'lost' }) }])).rejects.toThrow();
    expect((await store.getKey('key_1'))?.label).not.toBe('lost');
    expect(await store.getKey('key_1')).toEqual(await new KvStoreReader(backend).getKey('key_1'));
  });

  it('never caches a value read while a commit was changing it', async () => {
    const { backend, store } = await open();
    let release!: () => void;
    backend.stall = new Promise<void>((r) => (release = r));
    // The commit is stalled inside its write; a miss for the same key issued now must not cache
    // (or return) the pre-commit absence once the write lands.
    const committing = store.commit([{ kind: 'createKey', key: keyRecord('key_9', 'svc_a') }]);
    const reading = store.getKey('key_9');
    await new Promise((r) => setTimeout(r, 5));
    backend.stall = undefined;
    release();
    await committing;
    expect((await reading)?.owner).toBe('svc_a');
    expect((await store.getKey('key_9'))?.owner).toBe('svc_a');
  });

  it('stays within its bound and still answers correctly after evicting', async () => {
    const { backend, store } = await open(3);
    for (let i = 0; i < 10; i++) await store.commit([{ kind: 'createKey', key: keyRecord(`key_${i}`, 'svc_a') }]);
    backend.gets = [];
    for (let i = 0; i < 10; i++) expect((await store.getKey(`key_${i}`))?.keyId).toBe(`key_${i}`);
    expect(keyReads(backend)).toBeGreaterThanOrEqual(7); // at most 3 of the 10 can have been cached
    const cache = new RecordCache(3);
    for (let i = 0; i < 10; i++) cache.fill(`k!${i}`, new Uint8Array([i]));
    expect(cache.size).toBe(3);
    expect(cache.get('k!0')).toBe(MISS);
    expect(cache.get('k!9')).toEqual(new Uint8Array([9]));
  });

  it('does not cache nonces or audit records (read once, never again)', () => {
    const cache = new RecordCache(10);
    cache.fill('n!61!62', new Uint8Array([1]));
    cache.fill('a!0000000000000001', new Uint8Array([1]));
    expect(cache.size).toBe(0);
    expect(cache.holds('k!00')).toBe(true);
    expect(new RecordCache(0).holds('k!00')).toBe(false);
  });
});

/** A second, cache-less store over the same backend: the ground truth. */
class KvStoreReader {
  constructor(private readonly backend: ObservedBackend) {}
  async getKey(keyId: string) {
    const store = await KvStore.open(this.backend.inner, { cacheEntries: 0 });
    return store.getKey(keyId);
  }
}
