// Group commit must keep every Store guarantee: the whole shared contract runs against LevelDB
// behind the group-commit decorator. Plus: concurrent commits really share writes, and one
// failing commit in a group does not take the others down.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GroupCommitStore } from './group-commit.ts';
import { openLevelStore } from './level-store.ts';
import { codeOf, keyRecord, nonce, storeContract } from './store.contract.ts';
import { OpenKeyError } from '../core/errors.ts';
import type { Store } from '../core/ports.ts';

const dirs: string[] = [];
async function open(): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), 'openkey-gc-'));
  dirs.push(dir);
  return new GroupCommitStore(await openLevelStore(dir));
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

storeContract('group commit over LevelDB', open);

describe('group commit', () => {
  it('shares durable writes between concurrent commits', async () => {
    const inner = await openLevelStore(mkdtempSync(join(tmpdir(), 'openkey-gc-')));
    let writes = 0;
    const original = inner.commitEach.bind(inner);
    inner.commitEach = (groups) => {
      writes++;
      return original(groups);
    };
    const store = new GroupCommitStore(inner);
    await Promise.all(Array.from({ length: 100 }, (_, i) => store.commit([nonce('p', `n${i}`)])));
    expect(writes).toBeGreaterThan(0);
    expect(writes).toBeLessThan(100);
    await store.close();
  });

  it('commits made in one turn of the event loop share one write; later ones wait for the next', async () => {
    const inner = await openLevelStore(mkdtempSync(join(tmpdir(), 'openkey-gc-')));
    const writes: number[] = [];
    const original = inner.commitEach.bind(inner);
    inner.commitEach = (groups) => {
      writes.push(groups.length);
      return original(groups);
    };
    const store = new GroupCommitStore(inner);
    const turn = (tag: string, n: number) => Array.from({ length: n }, (_, i) => store.commit([nonce('p', `${tag}${i}`)]));
    const first = turn('a', 10);
    // Microtasks of the same turn still join the first write.
    const late = Promise.resolve().then(() => Promise.all(turn('b', 3)));
    await Promise.all([...first, late]);
    expect(writes).toEqual([13]);
    await Promise.all(turn('c', 4));
    expect(writes).toEqual([13, 4]);
    await store.close();
  });

  it('copies what a commit writes when it is made: later changes to the caller objects do not reach the store', async () => {
    const store = await open();
    const a = keyRecord('key_1', 'svc_a');
    const b = keyRecord('key_2', 'svc_a');
    const expectedB = keyRecord('key_2', 'svc_a');
    const first = store.commit([{ kind: 'createKey', key: a }]);
    const queued = store.commit([{ kind: 'createKey', key: b }]);
    b.sealed.fill(0);
    b.publicKey.fill(0);
    await Promise.all([first, queued]);
    expect(await store.getKey('key_2')).toEqual(expectedB);
  });

  it('drops a commit whose call timed out or was cancelled while it waited, and writes the rest', async () => {
    const inner = await openLevelStore(mkdtempSync(join(tmpdir(), 'openkey-gc-')));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const original = inner.commitEach.bind(inner);
    let first = true;
    inner.commitEach = async (groups) => {
      if (first) {
        first = false;
        await gate; // the first write stalls, so the next commits queue behind it
      }
      return original(groups);
    };
    const store = new GroupCommitStore(inner);
    const outcome = (p: Promise<void>) => p.then(() => 'ok', (e: unknown) => codeOf(Promise.reject(e)));
    const writing = outcome(store.commit([nonce('p', 'writing')]));
    const timedOut = new AbortController();
    const cancelled = new AbortController();
    const late = outcome(store.commit([nonce('p', 'late')], { signal: timedOut.signal }));
    const gone = outcome(store.commit([nonce('p', 'gone')], { signal: cancelled.signal }));
    const kept = outcome(store.commit([nonce('p', 'kept')], { signal: new AbortController().signal }));
    timedOut.abort(new OpenKeyError('DEADLINE_EXCEEDED'));
    cancelled.abort();
    release();
    expect(await Promise.all([writing, late, gone, kept])).toEqual(['ok', 'DEADLINE_EXCEEDED', 'CANCELLED', 'ok']);
    // Nothing of the dropped commits was written: their nonces are still fresh.
    expect(await outcome(store.commit([nonce('p', 'late')]))).toBe('ok');
    expect(await outcome(store.commit([nonce('p', 'gone')]))).toBe('ok');
    expect(await outcome(store.commit([nonce('p', 'kept')]))).toBe('STAMP_REPLAYED');
    // Already aborted: refused at once.
    expect(await outcome(store.commit([nonce('p', 'x')], { signal: AbortSignal.abort() }))).toBe('CANCELLED');
    await store.close();
  });

  it('a failing commit in a group fails alone', async () => {
    const store = await open();
    const outcome = (p: Promise<void>) => p.then(() => 'ok', (e: unknown) => codeOf(Promise.reject(e)));
    const results = await Promise.all([
      outcome(store.commit([nonce('p', 'same')])),
      outcome(store.commit([nonce('p', 'same')])),
      outcome(store.commit([nonce('p', 'other')])),
    ]);
    expect(results.filter((r) => r === 'STAMP_REPLAYED')).toHaveLength(1);
    expect(results.filter((r) => r === 'ok')).toHaveLength(2);
    await store.close();
  });
});
