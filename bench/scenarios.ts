// The load matrix: which calls are driven over which transport at which concurrency, what each is
// compared against in-process, and the first guess of its rate (used only to size the first
// round's pre-stamped request pool; later rounds use the measured rate). Grow the benchmark here.

import type { MicroId } from './micro.ts';
import type { Transport } from './loadgen/protocol.ts';
import type { AuthMode, Operation, PayloadKind } from './requests.ts';

export interface Scenario {
  readonly id: string;
  readonly transport: Transport;
  readonly operation: Operation;
  readonly payload: PayloadKind;
  readonly batchSize: number;
  readonly concurrency: number;
  readonly auth: AuthMode;
  /** The in-process operation of the same work, for the CPU ratio; none for GetImportKey. */
  readonly micro: MicroId | undefined;
  /** Main table rows get the full window; the others a shorter one. */
  readonly primary: boolean;
  /** Requests per second expected before anything was measured (pool sizing only). */
  readonly guessRps: number;
}

function sc(
  transport: Transport,
  operation: Operation,
  payload: PayloadKind,
  concurrency: number,
  o: { batchSize?: number; primary?: boolean; guessRps: number; auth?: AuthMode },
): Scenario {
  const auth = o.auth ?? 'session';
  const batchSize = o.batchSize ?? 1;
  const micro: MicroId | undefined = operation === 'getImportKey' ? undefined : payload === 'eip191' ? 'eip191-native' : payload === 'eip712' ? 'eip712-native' : 'ed25519';
  const what = operation === 'signBatch' ? `signBatch${batchSize}` : operation;
  return {
    id: `${transport}-${what}-${operation === 'getImportKey' ? 'none' : payload}-c${concurrency}${auth === 'stamp' && operation !== 'getImportKey' ? '-stamped' : ''}`,
    transport,
    operation,
    payload,
    batchSize,
    concurrency,
    auth,
    micro,
    primary: o.primary ?? true,
    guessRps: o.guessRps,
  };
}

/** Issue 2 item 9: EIP-191 Sign at C = 1/16/64 on both transports, and one batched row each. */
export const SCENARIOS: readonly Scenario[] = [
  sc('grpc', 'sign', 'eip191', 1, { guessRps: 600 }),
  sc('grpc', 'sign', 'eip191', 16, { guessRps: 2500 }),
  sc('grpc', 'sign', 'eip191', 64, { guessRps: 2500 }),
  sc('connect', 'sign', 'eip191', 1, { guessRps: 600 }),
  sc('connect', 'sign', 'eip191', 16, { guessRps: 2000 }),
  sc('connect', 'sign', 'eip191', 64, { guessRps: 2000 }),
  sc('grpc', 'signBatch', 'eip191', 16, { batchSize: 64, guessRps: 200 }),
  // Shorter rows: other payload kinds, Connect batching, and the transport's own floor
  // (GetImportKey needs no stamp and does no crypto).
  sc('connect', 'signBatch', 'eip191', 16, { batchSize: 64, primary: false, guessRps: 200 }),
  sc('grpc', 'sign', 'eip712', 16, { primary: false, guessRps: 2000 }),
  sc('grpc', 'sign', 'ed25519', 16, { primary: false, guessRps: 2500 }),
  sc('grpc', 'getImportKey', 'eip191', 16, { primary: false, guessRps: 20000 }),
];
