// The lean HTTP/2 client (raw-h2.ts) against real node:http2 servers on loopback port 0 — nghttp2
// is the independent implementation here: its HPACK encoder (dynamic table, Huffman) writes the
// answers, its flow control and stream limits judge our frames. Many concurrent calls under a
// MAX_CONCURRENT_STREAMS limit, trailers-only answers, tiny windows in both directions, header
// blocks split over CONTINUATION, RST_STREAM, GOAWAY, a dropped connection, a call timeout and
// PING; every test ends with no server session left open.

import { createHash } from 'node:crypto';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { grpcOutcome } from './grpc-raw.ts';
import { encodeHeaderBlock } from './hpack.ts';
import { headersFrame, RawH2Connection, type H2Answer, type RawH2Options } from './raw-h2.ts';

type Handler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

interface TestServer {
  readonly port: number;
  readonly sessions: Set<http2.ServerHttp2Session>;
  close(): Promise<void>;
}

const servers: TestServer[] = [];
const clients: RawH2Connection[] = [];

async function serve(handler: Handler, settings: http2.Settings = {}): Promise<TestServer> {
  const server = http2.createServer({ settings });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.on('error', () => undefined); // a test that breaks the connection on purpose
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    handler(stream, headers);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const t: TestServer = {
    port: (server.address() as AddressInfo).port,
    sessions,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  servers.push(t);
  return t;
}

async function connect(t: TestServer, o: Partial<RawH2Options> = {}): Promise<RawH2Connection> {
  const c = await RawH2Connection.connect({ host: '127.0.0.1', port: t.port, ...o });
  clients.push(c);
  return c;
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  for (const t of servers.splice(0)) {
    // No leaked connection: every session the server saw has ended once our clients closed.
    for (let i = 0; i < 100 && t.sessions.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(t.sessions.size).toBe(0);
    await t.close();
  }
});

function requestFrame(path: string, extra: Record<string, string> = {}): Buffer {
  return headersFrame(
    encodeHeaderBlock([
      [':method', 'POST'],
      [':scheme', 'http'],
      [':path', path],
      [':authority', 'localhost'],
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
      ...Object.entries(extra),
    ]),
  );
}

function call(c: RawH2Connection, path: string, body: Uint8Array, extra: Record<string, string> = {}, keepData = false): Promise<H2Answer> {
  return new Promise((resolve) => c.request(requestFrame(path, extra), body, resolve, keepData));
}

function field(a: H2Answer, name: string): string | undefined {
  let v: string | undefined;
  for (let i = 0; i < a.fields.length; i += 2) if (a.fields[i] === name) v = a.fields[i + 1];
  return v;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Reads the request body, then answers like a gRPC server: headers, the body, trailers. */
function grpcLike(answer: (headers: http2.IncomingHttpHeaders, body: Buffer) => { status: string; body?: Buffer; trailers?: Record<string, string> }): Handler {
  return (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const a = answer(headers, Buffer.concat(chunks));
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': a.status, ...a.trailers }));
      stream.end(a.body ?? Buffer.alloc(0));
    });
  };
}

describe('the lean HTTP/2 client against node:http2', () => {
  it('completes many concurrent calls with their own status and trailers, within the server’s MAX_CONCURRENT_STREAMS', async () => {
    const LIMIT = 8;
    const open = new Map<http2.ServerHttp2Session, number>();
    let peak = 0;
    const t = await serve((stream, headers) => {
      const session = stream.session as http2.ServerHttp2Session;
      const n = (open.get(session) ?? 0) + 1;
      open.set(session, n);
      peak = Math.max(peak, n);
      grpcLike((h, body) => {
        const id = String(h['x-id']);
        const ok = sha(body) === sha(Buffer.alloc(100 + (Number(id) % 300), Number(id) % 256));
        return { status: ok ? String(h['x-want']) : '99', body: Buffer.from(`answer ${id}`), trailers: { 'x-echo': id } };
      })(stream, headers);
      // The slot frees as the last frame goes out: before the client can see it.
      stream.on('wantTrailers', () => open.set(session, (open.get(session) ?? 1) - 1));
    }, { maxConcurrentStreams: LIMIT });
    const conns = [await connect(t), await connect(t)];
    const N = 400;
    const answers = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        call(conns[i % 2] as RawH2Connection, '/t.S/M', Buffer.alloc(100 + (i % 300), i % 256), { 'x-id': String(i), 'x-want': String(i % 3 === 0 ? 0 : i % 17) }),
      ),
    );
    answers.forEach((a, i) => {
      expect(a.error).toBeUndefined();
      expect(a.status).toBe(200);
      expect(field(a, 'grpc-status')).toBe(String(i % 3 === 0 ? 0 : i % 17));
      // Distinct values go through the server's dynamic table (and its evictions) and come back right.
      expect(field(a, 'x-echo')).toBe(String(i));
      expect(a.dataBytes).toBe(`answer ${i}`.length);
    });
    expect(peak).toBe(LIMIT);
    expect(grpcOutcome(answers[0] as H2Answer)).toEqual({ ok: true, errorKey: undefined, retryHint: false });
    expect(grpcOutcome(answers[1] as H2Answer)).toEqual({ ok: false, errorKey: 'grpc-status 1', retryHint: false });
  });

  it('reads a trailers-only error answer (status in the one header block, END_STREAM on HEADERS)', async () => {
    const t = await serve((stream) => {
      stream.on('data', () => undefined);
      stream.on('end', () =>
        stream.respond(
          { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '16', 'grpc-message': 'STAMP_REPLAYED', 'openkey-error-code': 'STAMP_REPLAYED', 'openkey-retry-after-ms': '250' },
          { endStream: true },
        ),
      );
    });
    const a = await call(await connect(t), '/t.S/M', Buffer.alloc(10));
    expect(a.error).toBeUndefined();
    expect(a.status).toBe(200);
    expect(field(a, 'openkey-error-code')).toBe('STAMP_REPLAYED');
    expect(a.dataBytes).toBe(0);
    expect(grpcOutcome(a)).toEqual({ ok: false, errorKey: 'grpc-status 16 STAMP_REPLAYED', retryHint: true });
  });

  it('waits for WINDOW_UPDATE when the server grants a 10-octet stream window', async () => {
    const t = await serve(grpcLike((_h, body) => ({ status: '0', trailers: { 'x-sha': sha(body) } })), { initialWindowSize: 10 });
    const c = await connect(t);
    const bodies = [Buffer.alloc(3000, 1), Buffer.alloc(1234, 2), Buffer.alloc(7, 3)];
    const answers = await Promise.all(bodies.map((b) => call(c, '/t.S/M', b)));
    answers.forEach((a, i) => {
      expect(a.error).toBeUndefined();
      expect(field(a, 'x-sha')).toBe(sha(bodies[i] as Buffer));
    });
  });

  it('waits for the connection window: bodies larger than 65,535 octets together', async () => {
    const t = await serve(grpcLike((_h, body) => ({ status: '0', trailers: { 'x-sha': sha(body) } })));
    const c = await connect(t);
    const bodies = [0, 1, 2].map((k) => Buffer.alloc(50_000 + k, k + 1));
    const answers = await Promise.all(bodies.map((b) => call(c, '/t.S/M', b)));
    answers.forEach((a, i) => expect(field(a, 'x-sha')).toBe(sha(bodies[i] as Buffer)));
  });

  it('replenishes its own receive windows: a 1 MiB answer through 64 KiB windows', async () => {
    const big = Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (i * 7) & 0xff));
    const t = await serve(grpcLike(() => ({ status: '0', body: big })));
    const c = await connect(t, { receiveWindow: 65_535 });
    const a = await call(c, '/t.S/M', Buffer.alloc(1), {}, true);
    expect(a.error).toBeUndefined();
    expect(a.dataBytes).toBe(big.length);
    expect(sha(a.data ?? Buffer.alloc(0))).toBe(sha(big));
  });

  it('decodes a header block split over HEADERS and CONTINUATION frames', async () => {
    const long = 'v'.repeat(40_000); // beyond one 16 KiB frame
    const t = await serve(grpcLike(() => ({ status: '0', trailers: { 'x-long': long } })));
    const a = await call(await connect(t), '/t.S/M', Buffer.alloc(1));
    expect(field(a, 'x-long')).toBe(long);
    expect(field(a, 'grpc-status')).toBe('0');
  });

  it('decodes nghttp2’s Huffman coding of every octet a field value may carry', async () => {
    const octets = [0x09, ...Array.from({ length: 95 }, (_, i) => 0x20 + i), ...Array.from({ length: 128 }, (_, i) => 0x80 + i)];
    // Surrounded by 'a' (5 bits), the Huffman form is the shorter one, so nghttp2 uses it.
    const valueOf = (o: number) => `${'a'.repeat(40)}${String.fromCharCode(o)}${'a'.repeat(40)}`;
    const t = await serve(
      grpcLike((h) => {
        const from = Number(h['x-from']);
        return { status: '0', trailers: Object.fromEntries(octets.slice(from, from + 32).map((o) => [`x-o${o}`, valueOf(o)])) };
      }),
    );
    const c = await connect(t);
    for (let from = 0; from < octets.length; from += 32) {
      const a = await call(c, '/t.S/M', Buffer.alloc(1), { 'x-from': String(from) });
      for (const o of octets.slice(from, from + 32)) expect(field(a, `x-o${o}`), `octet ${o}`).toBe(valueOf(o));
    }
  });

  it('reports RST_STREAM as that call’s error; the connection carries on', async () => {
    const t = await serve((stream, headers) => {
      if (headers[':path'] === '/refuse') stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      else grpcLike(() => ({ status: '0' }))(stream, headers);
    });
    const c = await connect(t);
    const refused = await call(c, '/refuse', Buffer.alloc(10));
    expect(refused.error).toBe('RST_STREAM REFUSED_STREAM');
    expect(grpcOutcome(refused).errorKey).toBe('stream RST_STREAM REFUSED_STREAM');
    const fine = await call(c, '/ok', Buffer.alloc(10));
    expect(field(fine, 'grpc-status')).toBe('0');
  });

  it('reports GOAWAY as the error of the calls it drops, still reads the others, and refuses new calls at once', async () => {
    const waiting: http2.ServerHttp2Stream[] = [];
    const t = await serve((stream) => {
      stream.on('data', () => undefined);
      waiting.push(stream);
      if (waiting.length < 3) return;
      // Streams 1, 3 and 5 have arrived; the server goes away having processed stream 1 only,
      // and then answers it.
      stream.session?.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, 1);
      const [first, ...dropped] = waiting as [http2.ServerHttp2Stream, ...http2.ServerHttp2Stream[]];
      first.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '0' }, { endStream: true });
      // node:http2 keeps the dropped streams open until told otherwise; the client has moved on.
      setTimeout(() => {
        for (const s of dropped) s.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      }, 50);
    });
    const c = await connect(t);
    const answers = await Promise.all([1, 2, 3].map(() => call(c, '/t.S/M', Buffer.alloc(10))));
    expect(answers.map((a) => a.error ?? field(a, 'grpc-status'))).toEqual(['0', 'GOAWAY ENHANCE_YOUR_CALM', 'GOAWAY ENHANCE_YOUR_CALM']);
    expect(grpcOutcome(answers[1] as H2Answer).errorKey).toBe('stream GOAWAY ENHANCE_YOUR_CALM');
    const late = await call(c, '/t.S/M', Buffer.alloc(10));
    expect(late.error).toBe('GOAWAY ENHANCE_YOUR_CALM');
    // The client sent its own GOAWAY and closed its socket once stream 1 was answered; node:http2
    // stops reading after its GOAWAY, so its session does not notice until it writes: end it here.
    await c.close();
    for (const s of t.sessions) s.destroy();
  });

  it('fails the calls in flight when the server drops the connection', async () => {
    // A bare TCP server: SETTINGS so that the client is ready, then the socket is destroyed.
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
      socket.write(Buffer.from('000000040000000000', 'hex'));
      setTimeout(() => socket.destroy(), 100);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const c = await RawH2Connection.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port });
      const answers = await Promise.all([1, 2].map(() => call(c, '/t.S/M', Buffer.alloc(10))));
      for (const a of answers) expect(a.error).toMatch(/^connection (closed|ECONNRESET)$/);
      expect((await call(c, '/t.S/M', Buffer.alloc(1))).error).toMatch(/^connection /);
      await c.close();
      for (let i = 0; i < 100 && sockets.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(sockets.size).toBe(0);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('times a call out: CANCEL goes to the server and the call fails with `timeout`', async () => {
    let rstCode: number | undefined;
    const t = await serve((stream) => {
      stream.on('data', () => undefined);
      stream.on('close', () => (rstCode = stream.rstCode));
    });
    const a = await call(await connect(t, { callTimeoutMs: 300 }), '/hang', Buffer.alloc(1));
    expect(a.error).toBe('timeout');
    for (let i = 0; i < 100 && rstCode === undefined; i++) await new Promise((r) => setTimeout(r, 10));
    expect(rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
  });

  it('answers PING with the same payload', async () => {
    let session: http2.ServerHttp2Session | undefined;
    const t = await serve(grpcLike(() => ({ status: '0' })));
    const c = await connect(t);
    await call(c, '/t.S/M', Buffer.alloc(1));
    session = [...t.sessions][0];
    const payload = Buffer.from('8 octets');
    const echoed = await new Promise<Buffer>((resolve, reject) => {
      session?.ping(payload, (err, _ms, p) => (err ? reject(err) : resolve(p)));
    });
    expect(echoed).toEqual(payload);
    session = undefined;
  });
});
