// gRPC load over plain HTTP/2 with node:http2 and no gRPC library: each call is one stream with
// `content-type: application/grpc`, `te: trailers`, the request's own stamp or session header, and
// a pre-framed body (5-byte length prefix + protobuf); success means HTTP 200 and `grpc-status: 0`
// in the trailers (or in the headers of a trailers-only error); a failure is keyed by its status
// and `openkey-error-code`, noting whether it carried `openkey-retry-after-ms`. About a tenth of
// the grpc-js client's CPU per call.
//
// Two ways to load: a closed loop (C workers, each sending its next call when the last returns), or
// an open loop (a fixed rate: a timer tick every `tickMs` sends every request that has fallen due,
// whatever the answers, up to a cap on calls in flight). Open-loop latency runs from the request's
// *scheduled* send time, so a generator or server that falls behind shows up in the figures instead
// of silently sending less (no coordinated omission).

import * as http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import { grpcFrame, type RequestPool } from '../requests.ts';
import type { OpenLoopSpec, RunSpec } from './protocol.ts';
import { checkResponse } from './verify.ts';
import { SAMPLE_MS, type MeasurementWindow } from './window.ts';

/** Concurrent streams per HTTP/2 connection (h2load's -m); more concurrency opens more connections. */
const STREAMS_PER_SESSION = 16;
/** Open loop: concurrent streams per connection at the in-flight cap (the server allows 256). */
const OPEN_LOOP_STREAMS_PER_SESSION = 128;
/** A call that takes longer is cancelled and counted as an error. */
const CALL_TIMEOUT_MS = 10_000;
const RETRY_AFTER_HEADER = 'openkey-retry-after-ms';

interface Outcome {
  readonly ok: boolean;
  readonly errorKey: string | undefined;
  readonly body: Buffer | undefined;
  /** The answer carried the server's back-off hint (openkey-retry-after-ms). */
  readonly retryHint: boolean;
}

function first(v: string | string[] | number | undefined): string | undefined {
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v[0] : String(v);
}

function connect(origin: string): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(origin);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
    // After connect, session errors surface as failed calls; keep them from crashing the process.
    s.on('error', () => undefined);
  });
}

function call(session: http2.ClientHttp2Session, path: string, authHeader: string, stamp: string | undefined, framed: Buffer, capture: boolean): Promise<Outcome> {
  return new Promise((resolve) => {
    const headers: http2.OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
    };
    if (stamp !== undefined) headers[authHeader] = stamp;
    let req: http2.ClientHttp2Stream;
    try {
      req = session.request(headers);
    } catch (e) {
      resolve({ ok: false, errorKey: `session ${e instanceof Error && 'code' in e ? String(e.code) : 'error'}`, body: undefined, retryHint: false });
      return;
    }
    let httpStatus = 0;
    let grpcStatus: string | undefined;
    let code: string | undefined;
    let streamError: string | undefined;
    let retryHint = false;
    const chunks: Buffer[] = [];
    req.setTimeout(CALL_TIMEOUT_MS, () => {
      streamError = 'timeout';
      req.close(http2.constants.NGHTTP2_CANCEL);
    });
    req.on('response', (h) => {
      httpStatus = Number(h[':status']);
      grpcStatus = first(h['grpc-status']) ?? grpcStatus; // trailers-only error response
      code = first(h['openkey-error-code']) ?? code;
      retryHint ||= h[RETRY_AFTER_HEADER] !== undefined;
    });
    req.on('data', (c: Buffer) => {
      if (capture) chunks.push(c);
    });
    req.on('trailers', (t) => {
      grpcStatus = first(t['grpc-status']) ?? grpcStatus;
      code = first(t['openkey-error-code']) ?? code;
      retryHint ||= t[RETRY_AFTER_HEADER] !== undefined;
    });
    req.on('error', (e: Error & { code?: string }) => {
      streamError ??= e.code ?? 'stream error';
    });
    req.on('close', () => {
      const ok = streamError === undefined && httpStatus === 200 && grpcStatus === '0';
      const errorKey = ok
        ? undefined
        : streamError !== undefined
          ? `stream ${streamError}`
          : httpStatus !== 200
            ? `http ${httpStatus}`
            : `grpc-status ${grpcStatus ?? 'missing'}${code === undefined ? '' : ` ${code}`}`;
      resolve({ ok, errorKey, body: capture ? Buffer.concat(chunks) : undefined, retryHint });
    });
    req.end(framed);
  });
}

/** The message of a single-message gRPC response body. */
function unframe(body: Buffer): Buffer {
  if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) throw new Error('not one uncompressed gRPC message');
  return body.subarray(5);
}

export interface GrpcLoadOutcome {
  readonly sent: number;
  readonly preflight: string;
  /** Open loop: most calls in flight at once, and their number every SAMPLE_MS. */
  readonly peakInFlight: number;
  readonly inFlightSamples: readonly number[];
  readonly connections: number;
}

export async function runGrpcLoad(spec: RunSpec, pool: RequestPool, win: MeasurementWindow): Promise<GrpcLoadOutcome> {
  const framed = pool.bodies.map(grpcFrame);
  const origin = `http://${spec.host}:${spec.port}`;
  const ol = spec.openLoop;
  const nSessions = Math.max(1, ol === undefined ? Math.ceil(spec.concurrency / STREAMS_PER_SESSION) : Math.ceil(ol.maxInFlight / OPEN_LOOP_STREAMS_PER_SESSION));
  const sessions = await Promise.all(Array.from({ length: nSessions }, () => connect(origin)));
  const stampOf = (i: number): string | undefined => (pool.stamps.length === 0 ? undefined : pool.stamps[i]);
  try {
    // Pre-flight: request 0, outside the measurement, with its answer checked.
    const s0 = sessions[0] as http2.ClientHttp2Session;
    const pre = await call(s0, pool.path, pool.authHeader, stampOf(0), framed[0] as Buffer, true);
    let preflight: string;
    try {
      preflight = pre.ok && pre.body !== undefined ? checkResponse(spec, pool.bodies[0] as Buffer, unframe(pre.body)) : `call failed: ${pre.errorKey ?? '?'}`;
    } catch (e) {
      preflight = e instanceof Error ? e.message : String(e);
    }
    const send = (i: number, session: http2.ClientHttp2Session) => call(session, pool.path, pool.authHeader, stampOf(i), framed[i % framed.length] as Buffer, false);
    if (ol !== undefined) {
      const { sent, peakInFlight, inFlightSamples } = await openLoop(ol, pool.size, sessions, send, win);
      return { sent, preflight, peakInFlight, inFlightSamples, connections: nSessions };
    }
    let next = 1;
    win.begin();
    const worker = async (w: number): Promise<void> => {
      const session = sessions[w % nSessions] as http2.ClientHttp2Session;
      while (win.accepting) {
        if (next >= pool.size) {
          win.poolExhausted();
          return;
        }
        const i = next++;
        const startedAt = performance.now();
        const out = await send(i, session);
        win.complete(performance.now() - startedAt, out.ok, out.errorKey, out.retryHint);
      }
    };
    await Promise.all(Array.from({ length: spec.concurrency }, (_, w) => worker(w)));
    win.close();
    return { sent: next, preflight, peakInFlight: spec.concurrency, inFlightSamples: [], connections: nSessions };
  } finally {
    for (const s of sessions) s.close();
  }
}

/**
 * The open loop: request k (k = 0, 1, …) is due at t0 + k / rate (after a linear ramp from 0 over
 * `rampMs`, inside the warm-up, so a cold start is not one burst). Every `tickMs` the sender sends
 * all requests that are due, round-robin over the connections; latency counts from the due time.
 * A due request finding `maxInFlight` calls outstanding is not sent and counts as the error
 * `generator in-flight cap N` (the schedule moves on: no catching up later). After the window the
 * calls still in flight are awaited (their answers are not counted in the window).
 */
async function openLoop(
  ol: OpenLoopSpec,
  poolSize: number,
  sessions: readonly http2.ClientHttp2Session[],
  send: (i: number, session: http2.ClientHttp2Session) => Promise<Outcome>,
  win: MeasurementWindow,
): Promise<{ sent: number; peakInFlight: number; inFlightSamples: number[] }> {
  // Due time of slot k, ms after t0: the ramp carries r·T/2 requests (r per ms, T = rampMs).
  const r = ol.ratePerSec / 1000;
  const T = Math.max(0, ol.rampMs);
  const rampSlots = (r * T) / 2;
  const dueAt = (slot: number): number => (slot < rampSlots ? Math.sqrt((2 * slot * T) / r) : T + (slot - rampSlots) / r);
  const capKey = `generator in-flight cap ${ol.maxInFlight}`;
  let next = 1; // pool index of the next request (0 was the pre-flight)
  let k = 0; // schedule slot of the next request
  let inFlight = 0;
  let peakInFlight = 0;
  let drained: (() => void) | undefined;
  const inFlightSamples: number[] = [];
  const sampler = setInterval(() => inFlightSamples.push(inFlight), SAMPLE_MS);
  const t0 = performance.now();
  win.begin();
  await new Promise<void>((resolve) => {
    const tick = () => {
      if (!win.accepting) {
        clearInterval(timer);
        resolve();
        return;
      }
      const now = performance.now();
      while (t0 + dueAt(k) <= now) {
        const due = t0 + dueAt(k);
        k++;
        if (inFlight >= ol.maxInFlight) {
          win.noteDue(undefined);
          win.complete(0, false, capKey);
          continue;
        }
        if (next >= poolSize) {
          win.poolExhausted();
          break;
        }
        const i = next++;
        inFlight++;
        if (inFlight > peakInFlight) peakInFlight = inFlight;
        win.noteDue(performance.now() - due);
        void send(i, sessions[i % sessions.length] as http2.ClientHttp2Session).then((out) => {
          inFlight--;
          win.complete(performance.now() - due, out.ok, out.errorKey, out.retryHint);
          if (inFlight === 0) drained?.();
        });
      }
    };
    const timer = setInterval(tick, ol.tickMs);
  });
  win.close();
  clearInterval(sampler);
  if (inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
  return { sent: next, peakInFlight, inFlightSamples };
}
