// gRPC unary calls over the lean HTTP/2 client (raw-h2.ts), the default gRPC generator. Before the
// timed window every request of the pool is encoded: its HEADERS frame (the same pseudo-headers,
// content type and `te: trailers` for all, then the request's own stamp or session header) goes
// into one arena, and each distinct body is gRPC-framed once. A call then costs a copy into the
// socket's send buffer, the answer's frames and HPACK block, and a scan for three fields.

import { grpcFrame, type RequestPool } from '../requests.ts';
import { encodedFieldLength, encodeField } from './hpack.ts';
import { ERROR_CODE_HEADER, judge, OK, RETRY_AFTER_HEADER, type Outcome } from './grpc-outcome.ts';
import { RawH2Connection, writeHeadersFrameHeader, type H2Answer } from './raw-h2.ts';

const FRAME_HEADER = 9;

/** Every request of a pool as HTTP/2 frames, ready to send. */
export class PreparedGrpcRequests {
  private constructor(
    private readonly arena: Buffer,
    /** Request i's HEADERS frame is arena[offsets[i], offsets[i + 1]). */
    private readonly offsets: Uint32Array,
    private readonly bodies: readonly Buffer[],
    readonly count: number,
    /** Milliseconds spent encoding. */
    readonly buildMs: number,
  ) {}

  /** Encodes `pool` for the server at `authority` (host:port). */
  static build(pool: RequestPool, authority: string): PreparedGrpcRequests {
    const started = performance.now();
    const common = [
      [':method', 'POST'],
      [':scheme', 'http'],
      [':path', pool.path],
      [':authority', authority],
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
    ] as const;
    const prefixLength = common.reduce((n, [name, value]) => n + encodedFieldLength(name, value), 0);
    const prefix = Buffer.allocUnsafe(prefixLength);
    let p = 0;
    for (const [name, value] of common) p = encodeField(prefix, p, name, value);
    const count = pool.size;
    const authed = pool.stamps.length > 0;
    // Sizes first (this also checks every header value), then one arena for all frames.
    const offsets = new Uint32Array(count + 1);
    let total = 0;
    for (let i = 0; i < count; i++) {
      offsets[i] = total;
      total += FRAME_HEADER + prefixLength + (authed ? encodedFieldLength(pool.authHeader, pool.stamps[i] as string) : 0);
    }
    offsets[count] = total;
    const arena = Buffer.allocUnsafe(total);
    for (let i = 0; i < count; i++) {
      const at = offsets[i] as number;
      writeHeadersFrameHeader(arena, at, (offsets[i + 1] as number) - at - FRAME_HEADER);
      prefix.copy(arena, at + FRAME_HEADER);
      if (authed) encodeField(arena, at + FRAME_HEADER + prefixLength, pool.authHeader, pool.stamps[i] as string);
    }
    return new PreparedGrpcRequests(arena, offsets, pool.bodies.map(grpcFrame), count, performance.now() - started);
  }

  headers(i: number): Buffer {
    return this.arena.subarray(this.offsets[i], this.offsets[i + 1]);
  }

  body(i: number): Buffer {
    return this.bodies[i % this.bodies.length] as Buffer;
  }
}

/** Reads the outcome of one call from its HTTP/2 answer (the same judgement as grpc-h2.ts). */
export function grpcOutcome(a: H2Answer): Outcome {
  if (a.error !== undefined) return judge(a.error, a.status, undefined, undefined, false);
  let grpcStatus: string | undefined;
  let code: string | undefined;
  let retryHint = false;
  const f = a.fields;
  // Trailers come after headers, so a later value (trailers) wins, as in grpc-h2.ts.
  for (let k = 0; k < f.length; k += 2) {
    const name = f[k];
    if (name === 'grpc-status') grpcStatus = f[k + 1];
    else if (name === ERROR_CODE_HEADER) code = f[k + 1];
    else if (name === RETRY_AFTER_HEADER) retryHint = true;
  }
  if (a.status === 200 && grpcStatus === '0') return OK;
  return judge(undefined, a.status, grpcStatus, code, retryHint);
}

/** Opens `n` lean HTTP/2 connections; if one fails, closes the others and throws. */
export async function connectAll(host: string, port: number, n: number, callTimeoutMs: number): Promise<RawH2Connection[]> {
  const conns = await Promise.allSettled(Array.from({ length: n }, () => RawH2Connection.connect({ host, port, callTimeoutMs })));
  const failed = conns.find((c) => c.status === 'rejected');
  const opened = conns.flatMap((c) => (c.status === 'fulfilled' ? [c.value] : []));
  if (failed !== undefined) {
    await Promise.all(opened.map((c) => c.close()));
    throw failed.reason;
  }
  return opened;
}

/** Calls over `connections` lean HTTP/2 connections. */
export class RawGrpcCaller {
  private constructor(
    private readonly conns: readonly RawH2Connection[],
    private readonly prepared: PreparedGrpcRequests,
  ) {}

  static async open(host: string, port: number, connections: number, prepared: PreparedGrpcRequests, callTimeoutMs: number): Promise<RawGrpcCaller> {
    return new RawGrpcCaller(await connectAll(host, port, connections, callTimeoutMs), prepared);
  }

  get connections(): number {
    return this.conns.length;
  }

  /** Sends request i on connection `c`; `done` runs later, never inside this call. */
  send(i: number, c: number, done: (out: Outcome) => void): void {
    const conn = this.conns[c % this.conns.length] as RawH2Connection;
    conn.request(this.prepared.headers(i), this.prepared.body(i), (a) => done(grpcOutcome(a)));
  }

  async close(): Promise<void> {
    await Promise.all(this.conns.map((c) => c.close()));
  }
}
