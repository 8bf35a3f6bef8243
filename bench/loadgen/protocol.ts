// What the benchmark orchestrator (bench/run.ts) and its load-generator child process
// (bench/loadgen/main.ts) say to each other over the Node IPC channel: one run specification in,
// one measured result (or an error) out. Plain JSON, checked on arrival.

import type { GcSummary } from '../gc-trace.ts';
import type { LatencySummary } from '../stats.ts';
import type { AuthMode, Operation, PayloadKind } from '../requests.ts';

export type Transport = 'grpc' | 'connect';
/** Which client drives gRPC: the lean HTTP/2 client on a raw socket (grpc-raw.ts), or node:http2. */
export type GrpcGenerator = 'raw-h2' | 'node-http2';
export const GRPC_GENERATORS: readonly GrpcGenerator[] = ['raw-h2', 'node-http2'];

export interface RunSpec {
  readonly transport: Transport;
  readonly host: string;
  readonly port: number;
  readonly operation: Operation;
  readonly payload: PayloadKind;
  readonly batchSize: number;
  readonly keyId: string;
  /** The key's public key (hex), to check the signatures of the pre-flight response. */
  readonly keyPublicKeyHex: string;
  /** Closed loop: requests in flight at once (each worker sends its next call when one returns).
   * Open loop: only sizes the connections (see `openLoop`). */
  readonly concurrency: number;
  /** Unary runs: open at least this many connections (capped at `concurrency`). A multi-process
   * appliance hands each connection to one worker, so fewer connections than workers would leave
   * cores idle; the orchestrator passes the appliance's worker count. */
  readonly minConnections?: number;
  /** SignStream runs: the streams opened (one per connection); the `concurrency` messages in flight
   * are spread evenly over them (a window of concurrency ÷ streams each). */
  readonly streams?: number;
  /** Open loop (gRPC only): send at a fixed rate whatever the answers, instead of a closed loop. */
  readonly openLoop?: OpenLoopSpec;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Upper bound on requests sent (and stamps pre-generated) for the whole run. */
  readonly maxRequests: number;
  /** Whose CPU time and memory to sample at the window's edges. */
  readonly serverPid: number;
  /** The principal's stamping key: PKCS#8 DER, base64 (a throwaway bench principal). */
  readonly credentialsPkcs8: string;
  /** Per-request stamps, or one service session opened before the run (HMAC per request). */
  readonly auth: AuthMode;
  /** The gRPC client (transport 'grpc'; Connect always uses autocannon). */
  readonly grpcGenerator: GrpcGenerator;
}

export interface OpenLoopSpec {
  /** Requests per second to send, on a fixed schedule (request k is due at start + k / rate). */
  readonly ratePerSec: number;
  /** Requests in flight beyond which a due request is not sent but counted as an error
   * (`generator in-flight cap N`): the generator's own bound, so overload cannot grow it. */
  readonly maxInFlight: number;
  /** Timer period of the sender, ms: each tick sends every request that has fallen due. */
  readonly tickMs: number;
  /** The rate ramps up linearly from 0 over this many ms (inside the warm-up), then holds. */
  readonly rampMs: number;
}

/** What an open-loop run adds to its result. */
export interface OpenLoopResult {
  readonly ratePerSec: number;
  readonly maxInFlight: number;
  readonly tickMs: number;
  readonly rampMs: number;
  /** HTTP/2 connections the calls were spread over (round-robin). */
  readonly connections: number;
  /** Requests the schedule called for inside the window, per second (≈ ratePerSec). */
  readonly offeredPerSec: number;
  /** How late the sends went out against their schedule (ms), p50 / p99 / max over the window. */
  readonly sendLagP50Ms: number;
  readonly sendLagP99Ms: number;
  readonly sendLagMaxMs: number;
  /** Most calls in flight at once. */
  readonly peakInFlight: number;
  /** Calls in flight, sampled every 0.5 s from the start of the warm-up. */
  readonly inFlightSamples: readonly number[];
}

export interface RunResult {
  /** Successful responses completed inside the timed window. */
  readonly completed: number;
  readonly windowMs: number;
  /** When the timed window opened and closed, wall clock (ms since the epoch), to line up what
   * the runner saw the server do meanwhile (its GC pauses). */
  readonly windowStartEpochMs: number;
  readonly windowEndEpochMs: number;
  readonly requestsPerSec: number;
  /** requestsPerSec × batch size. */
  readonly signaturesPerSec: number;
  /** Milliseconds, over successful requests completed inside the window: from the send (closed
   * loop) or from the *scheduled* send time (open loop, so a late send is not hidden). */
  readonly latency: LatencySummary;
  /** Failed calls over the whole run (warm-up included), keyed "grpc-status 16 STAMP_REPLAYED" etc. */
  readonly errors: Record<string, number>;
  /** Failed calls that finished inside the timed window. */
  readonly windowErrors: number;
  /** Failed calls that carried an `openkey-retry-after-ms` hint (gRPC), whole run. */
  readonly retryHints: number;
  /** Server utime+stime in the window, µs. */
  readonly serverCpuMicros: number;
  /** Server CPU in the window as a percentage of one core. */
  readonly serverCpuPct: number;
  /** Share of the server's CPU time spent in the kernel (stime), percent. */
  readonly serverKernelPct: number;
  /** Share of the server's CPU time spent on its main (JavaScript) thread, percent; the rest is
   * libuv pool threads (LevelDB reads/writes, fsync) and V8 helper threads (GC, compilation). */
  readonly serverMainThreadPct: number;
  /** This generator's CPU in the window as a percentage of one core, and per request (µs). */
  readonly generatorCpuPct: number;
  readonly generatorMicrosPerRequest: number;
  /** CPU used by every other process on the machine during the window, % of one core (noise). */
  readonly otherCpuPct: number;
  readonly serverRssKiB: number;
  /** Server VmRSS sampled every 0.5 s inside the window, KiB. */
  readonly serverRssSamplesKiB: readonly number[];
  readonly serverPeakRssKiB: number;
  /** The request pool ran out before the window closed (the window was cut short). */
  readonly poolExhausted: boolean;
  readonly poolSize: number;
  /** Milliseconds spent building the pool's authentication, and framing it for the lean client. */
  readonly poolBuildMs: number;
  readonly sent: number;
  /** "ok" when the pre-flight response verified (and, for SignStream, every answer kept for
   * checking), otherwise why not. */
  readonly preflight: string;
  /** SignStream runs: answers of the load itself decoded and verified after the window. */
  readonly checkedAnswers?: number;
  /** Set for an open-loop run. */
  readonly openLoop?: OpenLoopResult;
  /** The server's GC pauses in the window, added by the runner (bench/gc-trace.ts). */
  readonly serverGc?: GcSummary;
}

export type ParentMessage = { readonly type: 'run'; readonly spec: RunSpec } | { readonly type: 'exit' };
export type ChildMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'result'; readonly result: RunResult }
  | { readonly type: 'error'; readonly message: string };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

export function isParentMessage(v: unknown): v is ParentMessage {
  if (!isObject(v)) return false;
  if (v['type'] === 'exit') return true;
  if (v['type'] !== 'run' || !isObject(v['spec'])) return false;
  const s = v['spec'];
  return (
    (s['transport'] === 'grpc' || s['transport'] === 'connect') &&
    typeof s['port'] === 'number' &&
    typeof s['concurrency'] === 'number' &&
    typeof s['maxRequests'] === 'number' &&
    typeof s['serverPid'] === 'number' &&
    typeof s['credentialsPkcs8'] === 'string' &&
    (s['auth'] === 'stamp' || s['auth'] === 'session') &&
    (s['grpcGenerator'] === 'raw-h2' || s['grpcGenerator'] === 'node-http2') &&
    (s['openLoop'] === undefined || (isObject(s['openLoop']) && typeof s['openLoop']['ratePerSec'] === 'number' && typeof s['openLoop']['maxInFlight'] === 'number'))
  );
}

export function isChildMessage(v: unknown): v is ChildMessage {
  if (!isObject(v)) return false;
  if (v['type'] === 'ready') return true;
  if (v['type'] === 'error') return typeof v['message'] === 'string';
  return v['type'] === 'result' && isObject(v['result']) && typeof v['result']['completed'] === 'number';
}
