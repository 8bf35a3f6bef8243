// Before its first run, the load-generator process drives the lean gRPC client through the closed
// loop against an in-process node:http2 server that answers as grpc-js does (headers, one message,
// trailers), so that V8 has compiled that code before any measurement window: its compiler
// threads would otherwise count as generator CPU in the first window (≈ 2–3 × the warm cost).
// Then the same for the SignStream generator (grpc-stream.ts): two streams against the same server,
// which answers each stream message with a SignStreamResponse of the same id and a canned result.

import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { SignRequestSchema, SignStreamRequestSchema, SignStreamResponseSchema } from '../../proto/gen/openkey/v1/signing_pb.ts';
import { grpcFrame, METHOD_PATHS, type RequestPool } from '../requests.ts';
import { GrpcMessageReader } from './grpc-deframe.ts';
import { closedLoop } from './grpc-load.ts';
import { PreparedGrpcRequests, RawGrpcCaller } from './grpc-raw.ts';
import { PreparedStreamMessages, runSignStreams } from './grpc-stream.ts';
import { MeasurementWindow } from './window.ts';

const CALLS = 12_000;
const CONCURRENCY = 64;
const CONNECTIONS = 4;
/** The warm-up stops after this long even if not all calls were made. */
const MAX_MS = 4_000;
/** SignStream: messages, streams, messages in flight on each, and the time cap. */
const STREAM_MESSAGES = 8_000;
const STREAMS = 2;
const STREAM_WINDOW = 64;
const STREAM_MAX_MS = 1_500;

/** Answers every message of a stream at once, as the appliance would (headers first, then one
 * SignStreamResponse per message, trailers when the client half-closes). */
function answerStream(stream: http2.ServerHttp2Stream): void {
  const result = { signature: new Uint8Array(65).fill(1), digest: new Uint8Array(32).fill(2), keyId: `key_${'0'.repeat(32)}`, receipt: { version: 1, method: METHOD_PATHS.signStream, requestDigest: new Uint8Array(32), responseDigest: new Uint8Array(32), keyId: `key_${'0'.repeat(32)}`, decision: 'allow', timeMs: 1n, signature: new Uint8Array(64) } };
  stream.respond({ ':status': 200, 'content-type': 'application/grpc+proto' }, { waitForTrailers: true });
  const reader = new GrpcMessageReader((buf, from, to) => {
    const { id } = fromBinary(SignStreamRequestSchema, buf.subarray(from, to));
    stream.write(grpcFrame(Buffer.from(toBinary(SignStreamResponseSchema, create(SignStreamResponseSchema, { id, outcome: { case: 'result', value: result } })))));
  });
  stream.on('data', (chunk: Buffer) => reader.push(chunk, 0, chunk.length));
  stream.on('end', () => {
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end();
  });
}

export async function warmUpLeanClient(): Promise<void> {
  const message = Buffer.alloc(5 + 360, 0x2a);
  message[0] = 0;
  message.writeUInt32BE(360, 1);
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    if (headers[':path'] === METHOD_PATHS.signStream) return answerStream(stream);
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
    const signRequest = Buffer.from(
      toBinary(SignRequestSchema, create(SignRequestSchema, { keyId: `key_${'0'.repeat(32)}`, payload: { kind: { case: 'personalMessage', value: { message: new Uint8Array(36) } } } })),
    );
    const streams = PreparedStreamMessages.build(
      { path: METHOD_PATHS.signStream, authHeader: 'openkey-session', openings: pool.stamps.slice(0, STREAMS), requests: [signRequest], messages: STREAM_MESSAGES, buildMs: 0 },
      `127.0.0.1:${port}`,
    );
    const win = new MeasurementWindow({ serverPid: process.pid, warmupMs: 0, durationMs: STREAM_MAX_MS, capacity: STREAM_MESSAGES });
    const out = await runSignStreams(streams, { host: '127.0.0.1', port, window: STREAM_WINDOW }, win);
    const { errors } = win.result({ batchSize: 1, poolSize: STREAM_MESSAGES, poolBuildMs: 0, sent: out.sent, preflight: 'ok' });
    if (Object.keys(errors).length > 0) throw new Error(`SignStream warm-up: ${JSON.stringify(errors)}`);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
