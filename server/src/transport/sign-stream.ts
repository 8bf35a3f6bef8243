// SignStream, once for every transport: both listeners hand this module the stream's metadata and
// its request messages as an async iterable, and write out what it yields. It authenticates the
// stream once (through ApplianceRpc), then runs each message as a call of its own through invoke()
// (admission bound, call timeout, cancellation, error mapping), up to MAX_STREAM_IN_PROGRESS at a
// time, and yields answers as they finish. How and why the stream ends is decided here too.

import { create } from '@bufbuild/protobuf';
import { setMaxListeners } from 'node:events';
import { SignStreamResponseSchema, type SignStreamRequest, type SignStreamResponse } from '../../../proto/gen/openkey/v1/signing_pb.ts';
import type { Logger } from '../adapters/logger.ts';
import { BusyError, OpenKeyError, type ErrorCode } from '../core/errors.ts';
import { METHODS, type CallMeta, type SignStreamSession } from '../service/rpc.ts';
import { toWireError, type WireError } from './error-map.ts';
import { invoke, type InFlight, type TransportLimits } from './invoke.ts';

/** Messages of one stream in progress at once; the next is answered RESOURCE_EXHAUSTED at once. */
export const MAX_STREAM_IN_PROGRESS = 256;
/** The retry hint of a refusal by the per-stream bound, when no admission bound gives one. */
const DEFAULT_RETRY_AFTER_MS = 50;
/** Longest single wait of the session-expiry timer (setTimeout's limit). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface SignStreamOptions {
  /** Authenticates the stream (ApplianceRpc.openSignStream). */
  readonly open: (meta: CallMeta) => Promise<SignStreamSession>;
  readonly limits: TransportLimits;
  readonly logger: Logger;
  /** The listener's count of calls in progress: a shutdown waits for the stream to end. */
  readonly inFlight?: InFlight | undefined;
  /** The client went away: read no more, drop work still queued for the stream's messages. */
  readonly gone: AbortSignal;
  /** The server is shutting down: read no more, answer what is in progress, then end normally. */
  readonly draining: AbortSignal;
}

/** Wakes everything waiting for the stream's state to change. */
class Pulse {
  #waiters: (() => void)[] = [];
  wait(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
  fire(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
}

function answer(id: bigint, error: WireError, retryAfterMs = error.retryAfterMs): SignStreamResponse {
  return create(SignStreamResponseSchema, {
    id,
    outcome: { case: 'error', value: { code: error.code, message: error.message, retryAfterMs: retryAfterMs ?? 0 } },
  });
}

/**
 * Serves one SignStream. Yields one answer per message read, in the order they finish. Returns
 * when the stream ends normally (the client half-closed, or the server is draining), after every
 * message in progress has been answered. Throws the OpenKeyError the stream ends with: the
 * authentication refused at open, SESSION_EXPIRED once the session has ended (after answering
 * what is in progress), a message that could not be read, or CANCELLED when the client went away.
 */
export async function* serveSignStream(
  meta: CallMeta,
  requests: AsyncIterable<SignStreamRequest>,
  o: SignStreamOptions,
): AsyncGenerator<SignStreamResponse, void, undefined> {
  o.inFlight?.enter();
  const method = METHODS.signStream;
  // Aborts every message's call when the client goes away, or when the stream's writer stops early.
  const calls = new AbortController();
  // Every message's call listens to it: up to the per-stream bound, not a leak.
  setMaxListeners(MAX_STREAM_IN_PROGRESS + 8, calls.signal);
  const pulse = new Pulse();
  const ready: SignStreamResponse[] = [];
  const inProgress = new Set<bigint>();
  let ending: OpenKeyError | undefined;
  let readingDone = false;
  let halted = false;
  let stopReading = (): void => undefined;
  const stopped = new Promise<'stop'>((resolve) => (stopReading = () => resolve('stop')));
  /** Reads no more messages (drain, expiry, client gone, or the end of the stream). */
  const stop = (): void => {
    halted = true;
    stopReading();
    pulse.fire();
  };
  const onGone = (): void => {
    calls.abort();
    stop();
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    // Opening authenticates (a MAC check, or a round trip to the store owner), so it is admitted
    // like a call: beyond the bound the stream ends at once with RESOURCE_EXHAUSTED and a retry
    // hint. The open stream itself holds no slot; each of its messages takes one while it runs.
    const admission = o.limits.admission;
    if (admission !== undefined && !admission.tryEnter()) throw new BusyError(admission.retryAfterMs, 'server at capacity: stream not opened');
    let session: SignStreamSession;
    try {
      session = await o.open(meta);
    } finally {
      admission?.leave();
    }
    if (o.gone.aborted) onGone();
    else o.gone.addEventListener('abort', onGone, { once: true });
    if (o.draining.aborted) stop();
    else o.draining.addEventListener('abort', stop, { once: true });

    const expired = (): void => {
      ending ??= new OpenKeyError('SESSION_EXPIRED', 'the service session of this stream has ended');
      stop();
    };
    // Also ends an idle stream whose session ran out (the clock is the appliance's, so re-check).
    const watch = (): void => {
      const left = session.remainingMs();
      if (left <= 0) return expired();
      timer = setTimeout(watch, Math.min(left, MAX_TIMER_MS));
      timer.unref();
    };
    watch();

    const refuse = (id: bigint, code: ErrorCode, detail: string, retryAfterMs?: number): void => {
      o.logger.debug({ requestId: meta.requestId, method, code, detail }, 'stream message refused');
      ready.push(answer(id, toWireError(new OpenKeyError(code, detail)), retryAfterMs));
      pulse.fire();
    };
    const accept = (msg: SignStreamRequest): void => {
      const id = msg.id;
      if (id === 0n) return refuse(id, 'MISSING_FIELD', 'id');
      if (inProgress.has(id)) return refuse(id, 'MALFORMED_REQUEST', 'id of a message still in progress');
      if (inProgress.size >= MAX_STREAM_IN_PROGRESS) {
        return refuse(id, 'RESOURCE_EXHAUSTED', 'stream in-progress bound', o.limits.admission?.retryAfterMs ?? DEFAULT_RETRY_AFTER_MS);
      }
      inProgress.add(id);
      const callMeta: CallMeta = { ...meta, requestId: `${meta.requestId}/${id}` };
      void invoke(method, callMeta, o.limits, o.logger, (signal) => session.sign(msg.request, signal), o.inFlight, calls.signal).then((out) => {
        inProgress.delete(id);
        ready.push(out.ok ? create(SignStreamResponseSchema, { id, outcome: { case: 'result', value: out.value } }) : answer(id, out.error));
        pulse.fire();
      });
    };

    const read = async (): Promise<void> => {
      const it = requests[Symbol.asyncIterator]();
      try {
        for (;;) {
          // Answers the client is slow to take hold up reading (and with it, HTTP/2 flow control).
          while (ready.length >= MAX_STREAM_IN_PROGRESS && !halted) await pulse.wait();
          if (halted) return;
          const next = await Promise.race([it.next(), stopped]);
          // A pending read is left behind, not returned: returning would tear down the write side too.
          if (next === 'stop' || next.done === true) return;
          if (session.remainingMs() <= 0) return expired();
          accept(next.value);
        }
      } catch (e) {
        // A read fails when the client goes away (nothing to report), or with a message that
        // cannot be decoded or is too large: the stream ends with that error.
        if (!o.gone.aborted) ending ??= e instanceof OpenKeyError ? e : new OpenKeyError('INTERNAL', 'reading the stream', { cause: e });
      } finally {
        readingDone = true;
        pulse.fire();
      }
    };
    void read();

    for (;;) {
      if (o.gone.aborted) throw new OpenKeyError('CANCELLED', 'caller went away');
      const next = ready.shift();
      if (next !== undefined) {
        pulse.fire(); // room for the reader
        yield next;
        continue;
      }
      if (readingDone && inProgress.size === 0) break;
      await pulse.wait();
    }
    if (ending !== undefined) throw ending;
  } catch (e) {
    const error = toWireError(e);
    if (error.unexpected) o.logger.error({ requestId: meta.requestId, method, err: e }, 'internal error');
    else o.logger.info({ requestId: meta.requestId, method, code: error.code }, 'stream ended');
    throw e;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    o.gone.removeEventListener('abort', onGone);
    o.draining.removeEventListener('abort', stop);
    // A writer that stopped early (the client is gone): drop work still queued for the stream.
    calls.abort();
    stop();
    o.inFlight?.leave();
  }
}
