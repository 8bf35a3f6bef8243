// The load matrix: which calls are driven over which transport at which concurrency and with which
// authentication, what each is compared against in-process, and the first guess of its rate (used
// only to size the first round's pre-built request pool; later rounds use the measured rate).
// Grow the benchmark here; the open-loop phases (half of max, overload) are set up in run.ts.

import type { MicroId } from './micro.ts';
import type { Transport } from './loadgen/protocol.ts';
import type { AuthMode, Operation, PayloadKind } from './requests.ts';

export interface Scenario {
  readonly id: string;
  readonly transport: Transport;
  readonly operation: Operation;
  readonly payload: PayloadKind;
  readonly batchSize: number;
  /** Calls (SignStream: messages) in flight at once. */
  readonly concurrency: number;
  /** SignStream: streams opened, one per connection, concurrency ÷ streams messages in flight on
   * each; 0 for unary calls. */
  readonly streams: number;
  readonly auth: AuthMode;
  /** The in-process operation of the same work, for the CPU ratio; none for GetImportKey. */
  readonly micro: MicroId | undefined;
  /** Main table rows get the full window; the others a shorter one. */
  readonly primary: boolean;
  /** Requests per second expected before anything was measured (pool sizing only). */
  readonly guessRps: number;
  /** Part of the concurrency sweep whose best median rate is "max throughput". */
  readonly sweep: boolean;
  /** A label for rows that are not a plain closed-loop scenario (the open-loop phases). */
  readonly label?: string;
}

function sc(
  transport: Transport,
  operation: Operation,
  payload: PayloadKind,
  concurrency: number,
  o: { batchSize?: number; primary?: boolean; guessRps: number; auth?: AuthMode; sweep?: boolean; streams?: number },
): Scenario {
  const auth = o.auth ?? 'session';
  const batchSize = o.batchSize ?? 1;
  const streams = operation === 'signStream' ? (o.streams ?? 1) : 0;
  if (streams > 0 && (concurrency % streams !== 0 || auth !== 'session' || transport !== 'grpc')) throw new Error('a SignStream row is gRPC with session auth, its window the same on every stream');
  const micro: MicroId | undefined = operation === 'getImportKey' ? undefined : payload === 'eip191' ? 'eip191-native' : payload === 'eip712' ? 'eip712-native' : 'ed25519';
  const what = operation === 'signBatch' ? `signBatch${batchSize}` : operation;
  // SignStream ids say streams × window (`-s1-w64`), and `stream` in lower case for --only=stream.
  const id =
    streams > 0
      ? `${transport}-sign-stream-${payload}-s${streams}-w${concurrency / streams}`
      : `${transport}-${what}-${operation === 'getImportKey' ? 'none' : payload}-c${concurrency}${auth === 'stamp' && operation !== 'getImportKey' ? '-stamped' : ''}`;
  return {
    id,
    transport,
    operation,
    payload,
    batchSize,
    concurrency,
    streams,
    auth,
    micro,
    primary: o.primary ?? true,
    guessRps: o.guessRps,
    sweep: o.sweep ?? false,
  };
}

// SignStream rows guess high: their pool is only framed messages (no MAC each), cheap to build, and
// a multi-core appliance (--workers) runs them faster than one core would.

/**
 * Main rows (full window): the concurrency sweep of gRPC Sign EIP-191 with session auth (whose best
 * median rate sets the open-loop and overload phases in run.ts), one stamped row for comparison,
 * the same calls as the messages of one SignStream with 64 in flight (to set against C = 64),
 * Connect at C = 16/64, and batched gRPC. Shorter rows: SignStream with 256 messages in flight on
 * one stream (the appliance's per-stream bound) and over four streams (to set against C = 256),
 * Connect batching, other payload kinds, and the transport's own floor (GetImportKey needs no auth
 * and does no crypto).
 */
export const SCENARIOS: readonly Scenario[] = [
  sc('grpc', 'sign', 'eip191', 1, { sweep: true, guessRps: 600 }),
  sc('grpc', 'sign', 'eip191', 4, { sweep: true, guessRps: 1500 }),
  sc('grpc', 'sign', 'eip191', 16, { sweep: true, guessRps: 2000 }),
  sc('grpc', 'sign', 'eip191', 64, { sweep: true, guessRps: 2500 }),
  sc('grpc', 'sign', 'eip191', 256, { sweep: true, guessRps: 2500 }),
  sc('grpc', 'sign', 'eip191', 64, { auth: 'stamp', guessRps: 1500 }),
  sc('grpc', 'signStream', 'eip191', 64, { streams: 1, guessRps: 4000 }),
  sc('connect', 'sign', 'eip191', 16, { guessRps: 2000 }),
  sc('connect', 'sign', 'eip191', 64, { guessRps: 2000 }),
  sc('grpc', 'signBatch', 'eip191', 4, { batchSize: 64, guessRps: 150 }),
  sc('grpc', 'signBatch', 'eip191', 16, { batchSize: 64, guessRps: 200 }),
  sc('grpc', 'signStream', 'eip191', 256, { streams: 1, primary: false, guessRps: 4000 }),
  sc('grpc', 'signStream', 'eip191', 256, { streams: 4, primary: false, guessRps: 4000 }),
  sc('connect', 'signBatch', 'eip191', 16, { batchSize: 64, primary: false, guessRps: 200 }),
  sc('grpc', 'sign', 'eip712', 16, { primary: false, guessRps: 2000 }),
  sc('grpc', 'sign', 'ed25519', 16, { primary: false, guessRps: 2500 }),
  sc('grpc', 'getImportKey', 'eip191', 16, { primary: false, guessRps: 20000 }),
];

/** The call the phases after the rounds drive: gRPC Sign EIP-191, session auth, under their own
 * id and label. An open loop has a rate, not a concurrency: `concurrency` 0. */
export function phaseScenario(id: string, label: string, concurrency = 0): Scenario {
  return { ...sc('grpc', 'sign', 'eip191', concurrency, { guessRps: 0 }), id, label };
}
