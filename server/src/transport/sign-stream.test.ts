// The SignStream driver on its own, with a stand-in for the authenticated stream: answers carry
// their message's id and come as messages finish; ids are checked; the per-stream bound, the shared
// admission bound and the per-message deadline refuse single messages without ending the stream;
// a session that ends, a draining server, a client that goes away and a message that cannot be
// read each end the stream their own way, and only after what is in progress has been answered.

import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { SignResponseSchema, SignStreamRequestSchema, type SignRequest, type SignResponse, type SignStreamRequest, type SignStreamResponse } from '../../../proto/gen/openkey/v1/signing_pb.ts';
import { createLogger } from '../adapters/logger.ts';
import { OpenKeyError } from '../core/errors.ts';
import type { SignStreamSession } from '../service/rpc.ts';
import { Admission, DEFAULT_LIMITS, InFlight, newMeta, type TransportLimits } from './invoke.ts';
import { toWireError } from './error-map.ts';
import { MAX_STREAM_IN_PROGRESS, serveSignStream, type SignStreamOptions } from './sign-stream.ts';

const logger = createLogger('silent');

/** Request messages the test pushes by hand. */
class Feed implements AsyncIterable<SignStreamRequest> {
  readonly #queue: (SignStreamRequest | Error | null)[] = [];
  #wake = (): void => undefined;
  push(id: bigint, keyId = `k${id}`): void {
    this.#put(create(SignStreamRequestSchema, { id, request: { keyId } }));
  }
  end(): void {
    this.#put(null);
  }
  fail(e: Error): void {
    this.#put(e);
  }
  #put(v: SignStreamRequest | Error | null): void {
    this.#queue.push(v);
    this.#wake();
  }
  async *[Symbol.asyncIterator](): AsyncGenerator<SignStreamRequest> {
    for (;;) {
      const v = this.#queue.shift();
      if (v === undefined) {
        await new Promise<void>((r) => (this.#wake = r));
        continue;
      }
      if (v === null) return;
      if (v instanceof Error) throw v;
      yield v;
    }
  }
}

interface Gate {
  readonly promise: Promise<void>;
  open(): void;
}
function gate(): Gate {
  let open = (): void => undefined;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

/** A stream whose sign() waits for the gate named after the request's key id, if there is one. */
function fakeStream(gates: Map<string, Gate> = new Map(), remaining: () => number = () => 60_000, signals: AbortSignal[] = []): SignStreamSession {
  return {
    remainingMs: remaining,
    sign: async (req: SignRequest | undefined, signal: AbortSignal): Promise<SignResponse> => {
      signals.push(signal);
      const keyId = req?.keyId ?? '';
      if (keyId === 'refused') throw new OpenKeyError('KEY_NOT_FOUND');
      await gates.get(keyId)?.promise;
      return create(SignResponseSchema, { keyId, signature: new Uint8Array(65) });
    },
  };
}

function options(session: SignStreamSession, more: Partial<SignStreamOptions> & { limits?: TransportLimits } = {}): SignStreamOptions {
  return { open: () => Promise.resolve(session), limits: DEFAULT_LIMITS, logger, gone: new AbortController().signal, draining: new AbortController().signal, ...more };
}

type Seen = [id: bigint, outcome: string];
const seen = (a: SignStreamResponse): Seen => [a.id, a.outcome.case === 'result' ? `ok:${a.outcome.value.keyId}` : a.outcome.case === 'error' ? a.outcome.value.code : 'none'];

/** Pulls answers until `n` have arrived. */
async function take(gen: AsyncGenerator<SignStreamResponse>, n: number): Promise<SignStreamResponse[]> {
  const out: SignStreamResponse[] = [];
  while (out.length < n) {
    const r = await gen.next();
    if (r.done === true) throw new Error(`stream ended after ${out.length} of ${n} answers`);
    out.push(r.value);
  }
  return out;
}

/** Drains the stream: its remaining answers, and the error code it ended with ('OK' if none). */
async function finish(gen: AsyncGenerator<SignStreamResponse>): Promise<{ answers: Seen[]; end: string }> {
  const answers: Seen[] = [];
  try {
    for await (const a of gen) answers.push(seen(a));
    return { answers, end: 'OK' };
  } catch (e) {
    return { answers, end: e instanceof OpenKeyError ? e.code : 'not an OpenKeyError' };
  }
}

describe('SignStream driver', () => {
  it('answers each message with its id, in the order they finish, and ends when the client half-closes', async () => {
    const gates = new Map([['k1', gate()]]);
    const feed = new Feed();
    const gen = serveSignStream(newMeta(undefined, 's'), feed, options(fakeStream(gates)));
    feed.push(1n);
    feed.push(2n);
    expect((await take(gen, 1)).map(seen)).toEqual([[2n, 'ok:k2']]); // 2 overtakes the held 1
    gates.get('k1')?.open();
    feed.push(3n, 'refused');
    feed.end();
    const rest = await finish(gen);
    expect(rest.end).toBe('OK');
    expect(rest.answers.sort((a, b) => Number(a[0] - b[0]))).toEqual([
      [1n, 'ok:k1'],
      [3n, 'KEY_NOT_FOUND'],
    ]);
  });

  it('refuses id 0 and the id of a message still in progress, and goes on', async () => {
    const gates = new Map([['k7', gate()]]);
    const feed = new Feed();
    const gen = serveSignStream(newMeta(undefined, 's'), feed, options(fakeStream(gates)));
    feed.push(7n);
    feed.push(7n, 'other');
    feed.push(0n);
    expect((await take(gen, 2)).map(seen)).toEqual([
      [7n, 'MALFORMED_REQUEST'],
      [0n, 'MISSING_FIELD'],
    ]);
    gates.get('k7')?.open();
    feed.push(8n);
    feed.end();
    const rest = await finish(gen);
    expect(rest.answers.sort((a, b) => Number(a[0] - b[0]))).toEqual([
      [7n, 'ok:k7'],
      [8n, 'ok:k8'],
    ]);
  });

  it(`refuses message ${MAX_STREAM_IN_PROGRESS + 1} in progress at once, with a retry hint; room comes back as messages finish`, async () => {
    const held = gate();
    const gates = new Map<string, Gate>();
    const feed = new Feed();
    const gen = serveSignStream(newMeta(undefined, 's'), feed, options(fakeStream(gates)));
    for (let i = 1; i <= MAX_STREAM_IN_PROGRESS; i++) {
      gates.set(`k${i}`, held);
      feed.push(BigInt(i));
    }
    feed.push(1000n);
    feed.push(1001n);
    const refused = await take(gen, 2);
    expect(refused.map(seen)).toEqual([
      [1000n, 'RESOURCE_EXHAUSTED'],
      [1001n, 'RESOURCE_EXHAUSTED'],
    ]);
    expect(refused.map((a) => (a.outcome.case === 'error' ? a.outcome.value.retryAfterMs : 0))).toEqual([50, 50]);
    held.open();
    await take(gen, MAX_STREAM_IN_PROGRESS);
    feed.push(1000n);
    feed.end();
    expect(await finish(gen)).toEqual({ answers: [[1000n, 'ok:k1000']], end: 'OK' });
  });

  it('counts each message against the shared admission bound, like a unary call', async () => {
    const admission = new Admission(2, 25);
    const gates = new Map([['k1', gate()], ['k2', gate()]]);
    const feed = new Feed();
    const gen = serveSignStream(newMeta(undefined, 's'), feed, options(fakeStream(gates), { limits: { ...DEFAULT_LIMITS, admission } }));
    feed.push(1n);
    feed.push(2n);
    feed.push(3n);
    const [third] = await take(gen, 1);
    expect(third === undefined ? undefined : seen(third)).toEqual([3n, 'RESOURCE_EXHAUSTED']);
    expect(third?.outcome.case === 'error' ? third.outcome.value.retryAfterMs : 0).toBe(25);
    expect(admission.active).toBe(2);
    for (const g of gates.values()) g.open();
    feed.end();
    expect((await finish(gen)).answers).toHaveLength(2);
    expect(admission.active).toBe(0);
  });

  it('gives each message the call timeout: a late one is DEADLINE_EXCEEDED, and its work is aborted', async () => {
    const signals: AbortSignal[] = [];
    const gates = new Map([['k1', gate()]]);
    const feed = new Feed();
    const gen = serveSignStream(newMeta(undefined, 's'), feed, options(fakeStream(gates, undefined, signals), { limits: { ...DEFAULT_LIMITS, callTimeoutMs: 40 } }));
    feed.push(1n);
    feed.push(2n);
    feed.end();
    const out = await finish(gen);
    expect(out).toEqual({ answers: [[2n, 'ok:k2'], [1n, 'DEADLINE_EXCEEDED']], end: 'OK' });
    expect(signals[0]?.aborted).toBe(true);
    expect(signals[1]?.aborted).toBe(false);
  });

  it('ends with SESSION_EXPIRED once the session has ended, after answering what is in progress', async () => {
    let left = 60_000;
    const gates = new Map([['k1', gate()]]);
    const feed = new Feed();
    const signals: AbortSignal[] = [];
    const result = finish(serveSignStream(newMeta(undefined, 's'), feed, options(fakeStream(gates, () => left, signals))));
    feed.push(1n);
    await new Promise((r) => setTimeout(r, 10));
    left = 0;
    feed.push(2n); // read after the session ended: not processed
    setTimeout(() => gates.get('k1')?.open(), 10);
    expect(await result).toEqual({ answers: [[1n, 'ok:k1']], end: 'SESSION_EXPIRED' });
    expect(signals).toHaveLength(1);
  });

  it('ends an idle stream when its session runs out', async () => {
    const until = Date.now() + 30;
    const feed = new Feed();
    const gen = serveSignStream(newMeta(undefined, 's'), feed, options(fakeStream(undefined, () => Math.max(0, until - Date.now()))));
    expect(await finish(gen)).toEqual({ answers: [], end: 'SESSION_EXPIRED' });
  });

  it('on a draining server reads no more, answers what is in progress, and ends normally', async () => {
    const draining = new AbortController();
    const inFlight = new InFlight();
    const gates = new Map([['k1', gate()]]);
    const feed = new Feed();
    const gen = serveSignStream(newMeta(undefined, 's'), feed, options(fakeStream(gates), { draining: draining.signal, inFlight }));
    feed.push(1n);
    const first = gen.next();
    await new Promise((r) => setTimeout(r, 10));
    expect(inFlight.count).toBe(2); // the stream and its message
    draining.abort();
    feed.push(2n);
    gates.get('k1')?.open();
    expect(seen((await first).value as SignStreamResponse)).toEqual([1n, 'ok:k1']);
    expect(await finish(gen)).toEqual({ answers: [], end: 'OK' });
    expect(inFlight.count).toBe(0);
  });

  it('when the client goes away, aborts the work of its messages and ends with CANCELLED', async () => {
    const gone = new AbortController();
    const signals: AbortSignal[] = [];
    const admission = new Admission(10, 10);
    const gates = new Map([['k1', gate()]]);
    const feed = new Feed();
    const gen = serveSignStream(newMeta(undefined, 's'), feed, options(fakeStream(gates, undefined, signals), { gone: gone.signal, limits: { ...DEFAULT_LIMITS, admission } }));
    feed.push(1n);
    const pending = finish(gen);
    await new Promise((r) => setTimeout(r, 10));
    gone.abort();
    expect(await pending).toEqual({ answers: [], end: 'CANCELLED' });
    expect(signals[0]?.aborted).toBe(true);
    expect(signals[0]?.reason).toMatchObject({ code: 'CANCELLED' });
    gates.get('k1')?.open();
    await new Promise((r) => setTimeout(r, 10));
    expect(admission.active).toBe(0);
  });

  it('ends with the read error of a message that cannot be decoded, after answering what is in progress', async () => {
    const gates = new Map([['k1', gate()]]);
    const feed = new Feed();
    const gen = serveSignStream(newMeta(undefined, 's'), feed, options(fakeStream(gates)));
    feed.push(1n);
    feed.fail(new OpenKeyError('MALFORMED_REQUEST', 'not protobuf'));
    setTimeout(() => gates.get('k1')?.open(), 10);
    expect(await finish(gen)).toEqual({ answers: [[1n, 'ok:k1']], end: 'MALFORMED_REQUEST' });
  });

  it('ends with the refusal of the opening, reading nothing', async () => {
    const feed = new Feed();
    feed.push(1n);
    const inFlight = new InFlight();
    const gen = serveSignStream(newMeta(undefined), feed, { ...options(fakeStream()), inFlight, open: () => Promise.reject(new OpenKeyError('UNAUTHENTICATED')) });
    expect(await finish(gen)).toEqual({ answers: [], end: 'UNAUTHENTICATED' });
    expect(inFlight.count).toBe(0);
  });

  it('admits the opening under the shared bound: refused at once when it is full, its slot given back after', async () => {
    const admission = new Admission(1, 40);
    const limits = { ...DEFAULT_LIMITS, admission };
    let opened = 0;
    const open = (session: SignStreamSession, during: () => void = () => undefined) => async (): Promise<SignStreamSession> => {
      opened++;
      during();
      return session;
    };
    // Full: the stream ends before authenticating, with the bound's retry hint on the wire.
    expect(admission.tryEnter()).toBe(true);
    const refused = serveSignStream(newMeta(undefined, 's'), new Feed(), { ...options(fakeStream(), { limits }), open: open(fakeStream()) });
    const err = await refused.next().then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'RESOURCE_EXHAUSTED' });
    expect(toWireError(err)).toMatchObject({ code: 'RESOURCE_EXHAUSTED', retryAfterMs: 40, unexpected: false });
    expect(opened).toBe(0);
    admission.leave();

    // Room again: the opening holds the slot while it authenticates, and the open stream does not.
    let during = -1;
    const feed = new Feed();
    const gen = serveSignStream(newMeta(undefined, 's'), feed, { ...options(fakeStream(), { limits }), open: open(fakeStream(), () => (during = admission.active)) });
    feed.push(1n);
    expect((await take(gen, 1)).map(seen)).toEqual([[1n, 'ok:k1']]);
    expect(during).toBe(1);
    expect(admission.active).toBe(0);
    feed.end();
    expect(await finish(gen)).toEqual({ answers: [], end: 'OK' });

    // A refused opening gives its slot back too.
    const denied = serveSignStream(newMeta(undefined, 's'), new Feed(), { ...options(fakeStream(), { limits }), open: () => Promise.reject(new OpenKeyError('UNAUTHENTICATED')) });
    expect(await finish(denied)).toEqual({ answers: [], end: 'UNAUTHENTICATED' });
    expect(admission.active).toBe(0);
  });
});
