// gRPC load over plain HTTP/2 with node:http2 and no gRPC library: each call is one stream with
// `content-type: application/grpc`, `te: trailers`, the request's own stamp, and a pre-framed body
// (5-byte length prefix + protobuf); success means HTTP 200 and `grpc-status: 0` in the trailers
// (or in the headers of a trailers-only error). About a tenth of the grpc-js client's CPU per call.

import * as http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import { grpcFrame, type RequestPool } from '../requests.ts';
import type { RunSpec } from './protocol.ts';
import { checkResponse } from './verify.ts';
import type { MeasurementWindow } from './window.ts';

/** Concurrent streams per HTTP/2 connection (h2load's -m); more concurrency opens more connections. */
const STREAMS_PER_SESSION = 16;
/** A call that takes longer is cancelled and counted as an error. */
const CALL_TIMEOUT_MS = 10_000;

interface Outcome {
  readonly ok: boolean;
  readonly errorKey: string | undefined;
  readonly body: Buffer | undefined;
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
      resolve({ ok: false, errorKey: `session ${e instanceof Error && 'code' in e ? String(e.code) : 'error'}`, body: undefined });
      return;
    }
    let httpStatus = 0;
    let grpcStatus: string | undefined;
    let code: string | undefined;
    let streamError: string | undefined;
    const chunks: Buffer[] = [];
    req.setTimeout(CALL_TIMEOUT_MS, () => {
      streamError = 'timeout';
      req.close(http2.constants.NGHTTP2_CANCEL);
    });
    req.on('response', (h) => {
      httpStatus = Number(h[':status']);
      grpcStatus = first(h['grpc-status']) ?? grpcStatus; // trailers-only error response
      code = first(h['openkey-error-code']) ?? code;
    });
    req.on('data', (c: Buffer) => {
      if (capture) chunks.push(c);
    });
    req.on('trailers', (t) => {
      grpcStatus = first(t['grpc-status']) ?? grpcStatus;
      code = first(t['openkey-error-code']) ?? code;
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
      resolve({ ok, errorKey, body: capture ? Buffer.concat(chunks) : undefined });
    });
    req.end(framed);
  });
}

/** The message of a single-message gRPC response body. */
function unframe(body: Buffer): Buffer {
  if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) throw new Error('not one uncompressed gRPC message');
  return body.subarray(5);
}

export async function runGrpcLoad(spec: RunSpec, pool: RequestPool, win: MeasurementWindow): Promise<{ sent: number; preflight: string }> {
  const framed = pool.bodies.map(grpcFrame);
  const origin = `http://${spec.host}:${spec.port}`;
  const nSessions = Math.max(1, Math.ceil(spec.concurrency / STREAMS_PER_SESSION));
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
        const out = await call(session, pool.path, pool.authHeader, stampOf(i), framed[i % framed.length] as Buffer, false);
        win.complete(performance.now() - startedAt, out.ok, out.errorKey);
      }
    };
    await Promise.all(Array.from({ length: spec.concurrency }, (_, w) => worker(w)));
    win.close();
    return { sent: next, preflight };
  } finally {
    for (const s of sessions) s.close();
  }
}
