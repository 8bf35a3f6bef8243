// gRPC load: a pre-flight call (node:http2, its answer verified), then one of two ways to load,
// through either generator — the lean HTTP/2 client (grpc-raw.ts, the default) or node:http2
// (grpc-h2.ts, `--generator=node-http2`):
//
// - a closed loop: C workers, each sending its next call when the last returns;
// - an open loop: a fixed rate; a timer tick every `tickMs` sends every request that has fallen
//   due, whatever the answers, up to a cap on calls in flight. Latency runs from the request's
//   *scheduled* send time, so a generator or server that falls behind shows up in the figures
//   instead of silently sending less (no coordinated omission).

import { performance } from 'node:perf_hooks';
import type { RequestPool } from '../requests.ts';
import type { Outcome } from './grpc-outcome.ts';
import { NodeHttp2Caller, preflight } from './grpc-h2.ts';
import { PreparedGrpcRequests, RawGrpcCaller } from './grpc-raw.ts';
import type { OpenLoopSpec, RunSpec } from './protocol.ts';
import { SAMPLE_MS, type MeasurementWindow } from './window.ts';

/** Concurrent streams per HTTP/2 connection (h2load's -m); more concurrency opens more connections. */
const STREAMS_PER_CONNECTION = 16;
/** Open loop: concurrent streams per connection at the in-flight cap (the server allows 256). */
const OPEN_LOOP_STREAMS_PER_CONNECTION = 128;
/** A call that takes longer is cancelled and counted as an error (`stream timeout`). */
const CALL_TIMEOUT_MS = 10_000;

/** What both generators offer the loops. */
export interface GrpcCaller {
  readonly connections: number;
  /** Sends request i of the pool on connection c; `done` runs later, never inside this call. */
  send(i: number, c: number, done: (out: Outcome) => void): void;
  close(): Promise<void>;
}

export interface GrpcLoadOutcome {
  readonly sent: number;
  readonly preflight: string;
  /** Open loop: most calls in flight at once, and their number every SAMPLE_MS. */
  readonly peakInFlight: number;
  readonly inFlightSamples: readonly number[];
  readonly connections: number;
  /** Milliseconds spent framing the pool for the lean client (0 for node:http2). */
  readonly prepareMs: number;
}

export async function runGrpcLoad(spec: RunSpec, pool: RequestPool, win: MeasurementWindow): Promise<GrpcLoadOutcome> {
  const ol = spec.openLoop;
  const needed = ol === undefined ? Math.ceil(spec.concurrency / STREAMS_PER_CONNECTION) : Math.ceil(ol.maxInFlight / OPEN_LOOP_STREAMS_PER_CONNECTION);
  const spread = Math.min(spec.minConnections ?? 1, ol === undefined ? spec.concurrency : ol.maxInFlight);
  const connections = Math.max(1, needed, spread);
  // Request 0, outside the measurement, with its answer checked.
  const checked = await preflight(spec, pool, CALL_TIMEOUT_MS);
  let prepareMs = 0;
  let caller: GrpcCaller;
  if (spec.grpcGenerator === 'raw-h2') {
    const prepared = PreparedGrpcRequests.build(pool, `${spec.host}:${spec.port}`);
    prepareMs = prepared.buildMs;
    caller = await RawGrpcCaller.open(spec.host, spec.port, connections, prepared, CALL_TIMEOUT_MS);
  } else {
    caller = await NodeHttp2Caller.open(spec.host, spec.port, connections, pool, CALL_TIMEOUT_MS);
  }
  try {
    if (ol !== undefined) {
      const { sent, peakInFlight, inFlightSamples } = await openLoop(ol, pool.size, caller, win);
      return { sent, preflight: checked, peakInFlight, inFlightSamples, connections, prepareMs };
    }
    const sent = await closedLoop(spec.concurrency, pool.size, caller, win);
    return { sent, preflight: checked, peakInFlight: spec.concurrency, inFlightSamples: [], connections, prepareMs };
  } finally {
    await caller.close();
  }
}

/** C workers over the connections (worker w on connection w mod n); resolves with the requests sent. */
export function closedLoop(concurrency: number, poolSize: number, caller: GrpcCaller, win: MeasurementWindow): Promise<number> {
  return new Promise((resolve) => {
    let next = 1; // pool index of the next request (0 was the pre-flight)
    let running = concurrency;
    const stop = (): void => {
      if (--running > 0) return;
      win.close();
      resolve(next);
    };
    const issue = (w: number): void => {
      if (!win.accepting) return stop();
      if (next >= poolSize) {
        win.poolExhausted();
        return stop();
      }
      const i = next++;
      const startedAt = performance.now();
      caller.send(i, w % caller.connections, (out) => {
        win.complete(performance.now() - startedAt, out.ok, out.errorKey, out.retryHint);
        issue(w);
      });
    };
    win.begin();
    for (let w = 0; w < concurrency; w++) issue(w);
  });
}

/**
 * The open loop: request k (k = 0, 1, …) is due at t0 + k / rate (after a linear ramp from 0 over
 * `rampMs`, inside the warm-up, so a cold start is not one burst). Every `tickMs` the sender sends
 * all requests that are due, round-robin over the connections; latency counts from the due time.
 * A due request finding `maxInFlight` calls outstanding is not sent and counts as the error
 * `generator in-flight cap N` (the schedule moves on: no catching up later). After the window the
 * calls still in flight are awaited (their answers are not counted in the window).
 */
async function openLoop(ol: OpenLoopSpec, poolSize: number, caller: GrpcCaller, win: MeasurementWindow): Promise<{ sent: number; peakInFlight: number; inFlightSamples: number[] }> {
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
        caller.send(i, i % caller.connections, (out) => {
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
