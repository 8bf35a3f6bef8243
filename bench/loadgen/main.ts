// The load-generator process: started by bench/run.ts on its own CPU (taskset -c 1), it takes
// one run specification at a time over IPC, pre-builds that run's authenticated requests (per-request
// stamps, or one service session and an HMAC header per request), drives the appliance over gRPC
// (the lean HTTP/2 client or node:http2; closed or open loop) or Connect (autocannon, closed loop),
// or drives SignStream over the lean client (grpc-stream.ts), and sends back the result.

import { createOpenKeyClient, credentialsFromPrivateKey, openServiceSession, type Credentials, type ServiceSession } from '../../clients/src/index.ts';
import { buildRequestPool } from '../requests.ts';
import { runConnectLoad } from './connect-autocannon.ts';
import { runGrpcLoad } from './grpc-load.ts';
import { runStreamLoad } from './grpc-stream.ts';
import { isParentMessage, type ChildMessage, type RunResult, type RunSpec } from './protocol.ts';
import { warmUpLeanClient } from './warm-up.ts';
import { MeasurementWindow } from './window.ts';

function send(m: ChildMessage): void {
  process.send?.(m);
}

async function runOne(spec: RunSpec): Promise<RunResult> {
  const credentials = credentialsFromPrivateKey('ed25519', new Uint8Array(Buffer.from(spec.credentialsPkcs8, 'base64')));
  const session = spec.auth === 'session' && spec.operation !== 'getImportKey' ? await openSession(spec, credentials) : undefined;
  const ol = spec.openLoop;
  const win = new MeasurementWindow({ serverPid: spec.serverPid, warmupMs: spec.warmupMs, durationMs: spec.durationMs, capacity: spec.maxRequests, openLoop: ol !== undefined });
  if (spec.operation === 'signStream') {
    // Always the lean client, closed loop; a stream is authenticated by a service session only.
    if (spec.transport !== 'grpc' || session === undefined || ol !== undefined) throw new Error('SignStream runs are gRPC, closed loop, with a service session');
    const out = await runStreamLoad(spec, session, win);
    return win.result({ batchSize: 1, poolSize: out.poolSize, poolBuildMs: out.poolBuildMs, sent: out.sent, preflight: out.preflight, checkedAnswers: out.checkedAnswers });
  }
  const pool = buildRequestPool(spec, credentials, spec.maxRequests, session);
  if (spec.transport === 'grpc') {
    const { sent, preflight, peakInFlight, inFlightSamples, connections, prepareMs } = await runGrpcLoad(spec, pool, win);
    const openLoop = ol === undefined ? undefined : { ...ol, peakInFlight, inFlightSamples, connections };
    return win.result({ batchSize: spec.batchSize, poolSize: pool.size, poolBuildMs: pool.buildMs + prepareMs, sent, preflight, ...(openLoop === undefined ? {} : { openLoop }) });
  }
  if (ol !== undefined) throw new Error('the open loop is implemented for gRPC only');
  const { sent, preflight } = await runConnectLoad(spec, pool, win);
  return win.result({ batchSize: spec.batchSize, poolSize: pool.size, poolBuildMs: pool.buildMs, sent, preflight });
}

/** One service session per run, opened over the transport under test (a fresh appliance per round). */
function openSession(spec: RunSpec, credentials: Credentials): Promise<ServiceSession> {
  const client = createOpenKeyClient({ baseUrl: `http://${spec.host}:${spec.port}`, credentials, protocol: spec.transport === 'grpc' ? 'grpc' : 'connect' });
  return openServiceSession(client.principals);
}

if (process.send === undefined) {
  process.stderr.write('bench/loadgen/main.ts is started by bench/run.ts (it needs an IPC channel)\n');
  process.exit(2);
}

// One run at a time: the orchestrator waits for each result before sending the next spec.
process.on('message', (m: unknown) => {
  if (!isParentMessage(m)) {
    send({ type: 'error', message: 'unrecognised message' });
    return;
  }
  if (m.type === 'exit') {
    process.disconnect();
    return;
  }
  runOne(m.spec).then(
    (result) => send({ type: 'result', result }),
    (e: unknown) => send({ type: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
  );
});
// Compile the lean client's code before the first window; a failed warm-up only costs accuracy.
warmUpLeanClient()
  .catch((e: unknown) => process.stderr.write(`load generator warm-up failed: ${e instanceof Error ? e.message : String(e)}\n`))
  .finally(() => send({ type: 'ready' }));
