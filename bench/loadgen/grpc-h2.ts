// gRPC calls over node:http2, with no gRPC library: each call is one stream with `content-type:
// application/grpc`, `te: trailers`, the request's own stamp or session header, and a pre-framed
// body (5-byte length prefix + protobuf); the answer is judged by grpc-outcome.ts. It makes the
// pre-flight call of every gRPC run (its response body is decoded and checked), and it is the
// fallback load generator (`--generator=node-http2`): simpler than the lean client (grpc-raw.ts),
// but it spends 3–7 times the CPU per call.

import * as http2 from 'node:http2';
import { grpcFrame, type RequestPool } from '../requests.ts';
import { ERROR_CODE_HEADER, judge, RETRY_AFTER_HEADER, type Outcome } from './grpc-outcome.ts';
import type { RunSpec } from './protocol.ts';
import { checkResponse } from './verify.ts';

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

function call(
  session: http2.ClientHttp2Session,
  path: string,
  authHeader: string,
  stamp: string | undefined,
  framed: Buffer,
  capture: boolean,
  timeoutMs: number,
): Promise<Outcome & { readonly body: Buffer | undefined }> {
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
      resolve({ ok: false, errorKey: `session ${e instanceof Error && 'code' in e ? String(e.code) : 'error'}`, retryHint: false, body: undefined });
      return;
    }
    let httpStatus = 0;
    let grpcStatus: string | undefined;
    let code: string | undefined;
    let streamError: string | undefined;
    let retryHint = false;
    const chunks: Buffer[] = [];
    req.setTimeout(timeoutMs, () => {
      streamError = 'timeout';
      req.close(http2.constants.NGHTTP2_CANCEL);
    });
    req.on('response', (h) => {
      httpStatus = Number(h[':status']);
      grpcStatus = first(h['grpc-status']) ?? grpcStatus; // trailers-only error response
      code = first(h[ERROR_CODE_HEADER]) ?? code;
      retryHint ||= h[RETRY_AFTER_HEADER] !== undefined;
    });
    req.on('data', (c: Buffer) => {
      if (capture) chunks.push(c);
    });
    req.on('trailers', (t) => {
      grpcStatus = first(t['grpc-status']) ?? grpcStatus;
      code = first(t[ERROR_CODE_HEADER]) ?? code;
      retryHint ||= t[RETRY_AFTER_HEADER] !== undefined;
    });
    req.on('error', (e: Error & { code?: string }) => {
      streamError ??= e.code ?? 'stream error';
    });
    req.on('close', () => {
      resolve({ ...judge(streamError, httpStatus, grpcStatus, code, retryHint), body: capture ? Buffer.concat(chunks) : undefined });
    });
    req.end(framed);
  });
}

/** The message of a single-message gRPC response body. */
function unframe(body: Buffer): Buffer {
  if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) throw new Error('not one uncompressed gRPC message');
  return body.subarray(5);
}

const stampOf = (pool: RequestPool, i: number): string | undefined => (pool.stamps.length === 0 ? undefined : pool.stamps[i]);

/**
 * The pre-flight call: request 0 of the pool on a connection of its own, outside the measurement;
 * "ok" when its answer decodes and verifies (verify.ts), otherwise what is wrong.
 */
export async function preflight(spec: RunSpec, pool: RequestPool, timeoutMs: number): Promise<string> {
  const session = await connect(`http://${spec.host}:${spec.port}`);
  try {
    const body = pool.bodies[0] as Buffer;
    const pre = await call(session, pool.path, pool.authHeader, stampOf(pool, 0), grpcFrame(body), true, timeoutMs);
    if (!pre.ok || pre.body === undefined) return `call failed: ${pre.errorKey ?? '?'}`;
    return checkResponse(spec, body, unframe(pre.body));
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  } finally {
    session.close();
  }
}

/** Calls over `connections` node:http2 sessions. */
export class NodeHttp2Caller {
  private constructor(
    private readonly sessions: readonly http2.ClientHttp2Session[],
    private readonly pool: RequestPool,
    private readonly framed: readonly Buffer[],
    private readonly timeoutMs: number,
  ) {}

  static async open(host: string, port: number, connections: number, pool: RequestPool, timeoutMs: number): Promise<NodeHttp2Caller> {
    const origin = `http://${host}:${port}`;
    const sessions = await Promise.all(Array.from({ length: connections }, () => connect(origin)));
    return new NodeHttp2Caller(sessions, pool, pool.bodies.map(grpcFrame), timeoutMs);
  }

  get connections(): number {
    return this.sessions.length;
  }

  send(i: number, c: number, done: (out: Outcome) => void): void {
    const p = this.pool;
    const session = this.sessions[c % this.sessions.length] as http2.ClientHttp2Session;
    void call(session, p.path, p.authHeader, stampOf(p, i), this.framed[i % this.framed.length] as Buffer, false, this.timeoutMs).then(done);
  }

  async close(): Promise<void> {
    await Promise.all(this.sessions.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}
