// The owner/worker channel without processes (test-ports.ts). The whole Store contract runs through
// RemoteStore → channel → owner handlers → a real store; plus error and cancellation crossing,
// batching, and what happens when the owner goes away. The real IPC is covered end to end by
// test/e2e-cluster.test.ts.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GroupCommitStore } from '../adapters/group-commit.ts';
import { openLevelStore } from '../adapters/level-store.ts';
import { openMemoryStore } from '../adapters/memory-store.ts';
import { codeOf, nonce, principal, storeContract } from '../adapters/store.contract.ts';
import { OpenKeyError } from '../core/errors.ts';
import type { Store } from '../core/ports.ts';
import type { SharedServiceSessions } from '../core/service-sessions.ts';
import { ChannelClient, serveChannel, type Handler } from './channel.ts';
import { RemoteServiceSessions, RemoteStore, ownerHandlers } from './remote.ts';
import { portPair, type TestPort } from './test-ports.ts';

const noSessions: SharedServiceSessions = {
  open: () => Promise.reject(new OpenKeyError('INTERNAL', 'no sessions here')),
  authenticate: () => Promise.reject(new OpenKeyError('INTERNAL', 'no sessions here')),
  share: () => Promise.reject(new OpenKeyError('INTERNAL', 'no sessions here')),
  hold: () => Promise.reject(new OpenKeyError('INTERNAL', 'no sessions here')),
  remainingMs: () => 0,
  close: () => Promise.reject(new OpenKeyError('INTERNAL', 'no sessions here')),
};

/** A RemoteStore reaching `inner` over a fresh port pair; closing it closes `inner` too. */
function remote(inner: Store): { store: Store; client: ChannelClient; worker: TestPort } {
  const [worker, owner] = portPair();
  const stop = serveChannel(owner, ownerHandlers({ store: inner, sessions: noSessions, collateral: undefined }), () => undefined);
  const client = new ChannelClient(worker);
  const store = new RemoteStore(client);
  const close = store.close.bind(store);
  store.close = async () => {
    await close();
    stop();
    client.close();
    await inner.close();
  };
  return { store, client, worker };
}

storeContract('remote store over the owner channel (memory store behind it)', async () => remote(await openMemoryStore()).store);

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('owner channel', () => {
  const serve = (handlers: Record<string, Handler>, onUnexpected: (op: string, e: unknown) => void = () => undefined) => {
    const [worker, owner] = portPair();
    serveChannel(owner, handlers, onUnexpected);
    return { client: new ChannelClient(worker), worker };
  };

  it('returns values with their bytes, and rebuilds OpenKeyErrors with code and detail', async () => {
    const { client } = serve({
      echo: (args) => Promise.resolve({ bytes: args[0], n: args[1] }),
      refuse: () => Promise.reject(new OpenKeyError('STAMP_REPLAYED', 'nonce used')),
    });
    const value = await client.call<{ bytes: Uint8Array; n: number }>('echo', [new Uint8Array([1, 2, 3]), 7]);
    expect(value.bytes).toBeInstanceOf(Uint8Array);
    expect([...value.bytes]).toEqual([1, 2, 3]);
    expect(value.n).toBe(7);
    const err = await client.call('refuse', []).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenKeyError);
    expect(err).toMatchObject({ code: 'STAMP_REPLAYED', detail: 'nonce used' });
  });

  it('turns any other failure into INTERNAL without its message, and reports it on the owner side', async () => {
    const seen: string[] = [];
    const { client } = serve({ boom: () => Promise.reject(new Error('secret detail')) }, (op, e) => seen.push(`${op}: ${(e as Error).message}`));
    const err = await client.call('boom', []).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INTERNAL', detail: undefined });
    expect(seen).toEqual(['boom: secret detail']);
    expect(await codeOf(client.call('no-such-op', []))).toBe('INTERNAL');
  });

  it('sends the calls of one loop turn as one message', async () => {
    const { client, worker } = serve({ inc: (args) => Promise.resolve((args[0] as number) + 1) });
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => client.call<number>('inc', [i])));
    expect(results).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(worker.sent).toBe(1);
  });

  it("carries a caller's abort to the owner, whose handler sees the same code", async () => {
    let reasonCode: string | undefined;
    const { client } = serve({
      wait: (_args, signal) =>
        new Promise((_, reject) =>
          signal.addEventListener('abort', () => {
            reasonCode = (signal.reason as OpenKeyError).code;
            reject(signal.reason);
          }),
        ),
    });
    const ac = new AbortController();
    const pending = client.call('wait', [], ac.signal);
    await new Promise((r) => setTimeout(r, 10));
    ac.abort(new OpenKeyError('DEADLINE_EXCEEDED'));
    expect(await codeOf(pending)).toBe('DEADLINE_EXCEEDED');
    expect(reasonCode).toBe('DEADLINE_EXCEEDED');
  });

  it('a commit cancelled while queued behind a stalled write is dropped in the owner: nothing of it is written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'openkey-ch-'));
    dirs.push(dir);
    const level = await openLevelStore(dir);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const original = level.commitEach.bind(level);
    let first = true;
    level.commitEach = async (groups) => {
      if (first) {
        first = false;
        await gate;
      }
      return original(groups);
    };
    const { store } = remote(new GroupCommitStore(level));
    const writing = store.commit([nonce('p', 'first')]);
    await new Promise((r) => setTimeout(r, 10));
    const ac = new AbortController();
    const cancelled = store.commit([nonce('p', 'cancelled')], { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 10));
    ac.abort(new OpenKeyError('CANCELLED', 'client gone'));
    await new Promise((r) => setTimeout(r, 10));
    release();
    await writing;
    expect(await codeOf(cancelled)).toBe('CANCELLED');
    // The dropped commit's nonce is still fresh; the written one is spent.
    await store.commit([nonce('p', 'cancelled')]);
    expect(await codeOf(store.commit([nonce('p', 'first')]))).toBe('STAMP_REPLAYED');
    await store.close();
  });

  it('fails calls in progress and later ones when the owner goes away, and when the pipe is closed', async () => {
    const { client, worker } = serve({ never: () => new Promise(() => undefined) });
    const pending = client.call('never', []);
    await new Promise((r) => setTimeout(r, 10));
    client.close(new OpenKeyError('INTERNAL', 'store owner gone'));
    expect(await codeOf(pending)).toBe('INTERNAL');
    expect(await codeOf(client.call('never', []))).toBe('INTERNAL');

    const other = serve({ never: () => new Promise(() => undefined) });
    other.worker.connected = false;
    expect(await codeOf(other.client.call('never', []))).toBe('INTERNAL');
    expect(worker.sent).toBe(1);
  });

  it("answers a stream's remainingMs from the expiry the owner reported, without a round trip", async () => {
    let now = 1_000_000;
    const sessions: SharedServiceSessions = {
      ...noSessions,
      share: (req) =>
        Promise.resolve({
          auth: { principal: principal('svc'), serviceSession: { id: 'ses_a', expiresAt: now + 5_000 }, method: req.method, requestDigest: req.bodyDigest, nonceChanges: [] },
          secret: undefined,
        }),
    };
    const [worker, owner] = portPair();
    serveChannel(owner, ownerHandlers({ store: await openMemoryStore(), sessions, collateral: undefined }), () => undefined);
    const remoteSessions = new RemoteServiceSessions(new ChannelClient(worker), { now: () => now });
    expect(remoteSessions.remainingMs('ses_a')).toBe(0); // never seen here
    const auth = await remoteSessions.authenticate({ method: '/m', bodyDigest: new Uint8Array(32), stamp: undefined, sessionStamp: 'x' });
    expect(auth.serviceSession?.id).toBe('ses_a');
    const sent = worker.sent;
    expect(remoteSessions.remainingMs('ses_a')).toBe(5_000);
    now += 4_999;
    expect(remoteSessions.remainingMs('ses_a')).toBe(1);
    now += 1;
    expect(remoteSessions.remainingMs('ses_a')).toBe(0);
    expect(worker.sent).toBe(sent);
  });
});
