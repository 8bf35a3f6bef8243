// Before its first run, the load-generator process drives the lean gRPC client through the closed
// loop against an in-process node:http2 server that answers as grpc-js does (headers, one message,
// trailers), so that V8 has compiled that code before any measurement window: its compiler
// threads would otherwise count as generator CPU in the first window (≈ 2–3 × the warm cost).

import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { RequestPool } from '../requests.ts';
import { closedLoop } from './grpc-load.ts';
import { PreparedGrpcRequests, RawGrpcCaller } from './grpc-raw.ts';
import { MeasurementWindow } from './window.ts';

const CALLS = 12_000;
const CONCURRENCY = 64;
const CONNECTIONS = 4;
/** The warm-up stops after this long even if not all calls were made. */
const MAX_MS = 4_000;

export async function warmUpLeanClient(): Promise<void> {
  const message = Buffer.alloc(5 + 360, 0x2a);
  message[0] = 0;
  message.writeUInt32BE(360, 1);
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.on('error', () => undefined);
    stream.on('data', () => undefined);
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc+proto', 'grpc-accept-encoding': 'identity,deflate,gzip', 'grpc-encoding': 'identity' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'OK' }));
      stream.end(message);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    const pool: RequestPool = {
      path: '/openkey.v1.SignService/Sign',
      authHeader: 'openkey-session',
      bodies: [Buffer.alloc(120, 0x11)],
      stamps: Array.from({ length: CALLS }, (_, i) => `1.ses_${'0'.repeat(32)}.${i + 1}.${'A'.repeat(43)}`),
      size: CALLS,
      buildMs: 0,
    };
    const caller = await RawGrpcCaller.open('127.0.0.1', port, CONNECTIONS, PreparedGrpcRequests.build(pool, `127.0.0.1:${port}`), MAX_MS);
    try {
      const win = new MeasurementWindow({ serverPid: process.pid, warmupMs: 0, durationMs: MAX_MS, capacity: CALLS });
      await closedLoop(CONCURRENCY, CALLS, caller, win);
    } finally {
      await caller.close();
    }
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
