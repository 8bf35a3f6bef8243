// Long-lived streams of the lean HTTP/2 client (RawH2Connection.openStream), the way SignStream
// uses them. Against node:http2 (nghttp2 judges our frames and flow control): both directions at
// once, an idle timeout, cancel. Against a bare TCP peer that writes and reads frames octet by
// octet, so that what goes over the wire is exactly what the test says: writes of one turn sharing
// DATA frames up to 16 KiB, END_STREAM on the last one; sending stopped by the peer's stream and
// connection windows and resumed by each WINDOW_UPDATE; our receive windows replenished, in
// batches, by exactly what we consumed; gRPC messages that straddle DATA frames, several in one
// frame, padding.

import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { GrpcMessageReader } from './grpc-deframe.ts';
import { encodeHeaderBlock } from './hpack.ts';
import { headersFrame, RawH2Connection, type H2Answer, type H2Stream, type RawH2Options } from './raw-h2.ts';

const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const WINDOW_UPDATE = 0x8;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function connect(port: number, o: Partial<RawH2Options> = {}): Promise<RawH2Connection> {
  const c = await RawH2Connection.connect({ host: '127.0.0.1', port, ...o });
  cleanups.push(() => c.close());
  return c;
}

const opening = (path = '/t.S/Stream') =>
  headersFrame(
    encodeHeaderBlock([
      [':method', 'POST'],
      [':scheme', 'http'],
      [':path', path],
      [':authority', 'localhost'],
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
    ]),
  );

function framed(body: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(body.length, 1);
  return Buffer.concat([prefix, body]);
}

function field(a: H2Answer, name: string): string | undefined {
  let v: string | undefined;
  for (let i = 0; i < a.fields.length; i += 2) if (a.fields[i] === name) v = a.fields[i + 1];
  return v;
}

const tick = () => new Promise((r) => setImmediate(r));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

// ---- a bare HTTP/2 peer ----------------------------------------------------------------------

interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly sid: number;
  readonly payload: Buffer;
}

function frame(type: number, flags: number, sid: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(sid, 5);
  return Buffer.concat([h, payload]);
}

const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
};

interface BarePeer {
  readonly port: number;
  /** Frames the client sent, in order (after its preface). */
  readonly frames: Frame[];
  send(...frames: Buffer[]): void;
  /** DATA payload octets the client sent on stream `sid`. */
  dataOn(sid: number): number;
}

/** A TCP server that sends SETTINGS (`settings`: id → value) to the one client that connects,
 * records every frame the client sends, and otherwise does only what the test tells it. */
async function barePeer(settings: [number, number][] = []): Promise<BarePeer> {
  const frames: Frame[] = [];
  let socket: net.Socket | undefined;
  const server = net.createServer((s) => {
    socket = s;
    s.on('error', () => undefined);
    const payload = Buffer.concat(settings.map(([id, v]) => Buffer.concat([Buffer.from([id >> 8, id & 0xff]), u32(v)])));
    s.write(frame(SETTINGS, 0, 0, payload));
    let buf = Buffer.alloc(0);
    let prefaceSeen = false;
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!prefaceSeen) {
        if (buf.length < 24) return;
        expect(buf.subarray(0, 24).toString('latin1')).toBe('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
        buf = buf.subarray(24);
        prefaceSeen = true;
      }
      while (buf.length >= 9) {
        const length = buf.readUIntBE(0, 3);
        if (buf.length < 9 + length) break;
        frames.push({ type: buf[3] as number, flags: buf[4] as number, sid: buf.readUInt32BE(5) & 0x7fffffff, payload: Buffer.from(buf.subarray(9, 9 + length)) });
        buf = buf.subarray(9 + length);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    socket?.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    port: (server.address() as AddressInfo).port,
    frames,
    send: (...f) => socket?.write(Buffer.concat(f)),
    dataOn: (sid) => frames.filter((f) => f.type === DATA && f.sid === sid).reduce((n, f) => n + f.payload.length, 0),
  };
}

/** Opens a stream on `c` that collects its DATA and its end. */
function openCollecting(c: RawH2Connection): { st: H2Stream; data: Buffer[]; ended: Promise<H2Answer> } {
  const data: Buffer[] = [];
  let st: H2Stream | undefined;
  const ended = new Promise<H2Answer>((resolve) => {
    st = c.openStream(opening(), (buf, from, to) => data.push(Buffer.from(buf.subarray(from, to))), resolve);
  });
  return { st: st as H2Stream, data, ended };
}

describe('long-lived streams of the lean HTTP/2 client', () => {
  it('streams both ways with node:http2: pieces written over many turns arrive in order, answers arrive as they are sent, the trailers end it', async () => {
    const server = http2.createServer();
    server.on('stream', (stream) => {
      stream.on('error', () => undefined);
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      // Echo every chunk at once, upper-cased, so the answers interleave with our writes.
      stream.on('data', (chunk: Buffer) => stream.write(chunk.toString('latin1').toUpperCase()));
      stream.on('end', () => {
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-done': 'yes' }));
        stream.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const c = await connect((server.address() as AddressInfo).port);
    const { st, data, ended } = openCollecting(c);
    const sent: Buffer[] = [];
    for (let turn = 0; turn < 20; turn++) {
      for (let j = 0; j < 1 + (turn % 4); j++) {
        const piece = Buffer.from(`turn ${turn} piece ${j};`);
        sent.push(piece);
        st.write(piece);
      }
      // Answers to earlier turns arrive while we keep writing.
      if (turn === 10) await until('echoes of the first turns', () => data.length > 0);
      await tick();
    }
    st.end();
    const a = await ended;
    expect(a.error).toBeUndefined();
    expect(a.status).toBe(200);
    expect(field(a, 'grpc-status')).toBe('0');
    expect(field(a, 'x-done')).toBe('yes');
    expect(Buffer.concat(data).toString()).toBe(Buffer.concat(sent).toString().toUpperCase());
    expect(st.unsent).toBe(0);
  });

  it('puts the writes of one turn into shared DATA frames of at most 16 KiB, with END_STREAM on the last', async () => {
    const peer = await barePeer();
    const c = await connect(peer.port);
    // Ten small writes in one turn, then end(): one DATA frame, END_STREAM on it.
    const small = openCollecting(c).st;
    const pieces = Array.from({ length: 10 }, (_, i) => Buffer.alloc(100, i));
    for (const p of pieces) small.write(p);
    small.end();
    // 40 writes of 1000 octets: 16,384 + 16,384 + 7,232 octets.
    const large = openCollecting(c).st;
    const chunks = Array.from({ length: 40 }, (_, i) => Buffer.alloc(1000, 100 + i));
    for (const p of chunks) large.write(p);
    large.end();
    // Writes over two turns, end() in a third with nothing left: two frames, then an empty END_STREAM.
    const spread = openCollecting(c).st;
    spread.write(Buffer.from('one'));
    await tick();
    await tick();
    spread.write(Buffer.from('two'));
    await tick();
    await tick();
    spread.end();
    await until('the frames of all three streams', () => peer.frames.filter((f) => f.type === DATA && f.sid === 5 && f.flags & END_STREAM).length === 1);

    const on = (sid: number) => peer.frames.filter((f) => f.sid === sid && (f.type === DATA || f.type === HEADERS));
    expect(on(1).map((f) => [f.type, f.flags & END_STREAM, f.payload.length])).toEqual([
      [HEADERS, 0, expect.any(Number)],
      [DATA, END_STREAM, 1000],
    ]);
    expect(on(1)[1]?.payload).toEqual(Buffer.concat(pieces));
    expect(on(3).map((f) => [f.type, f.flags & END_STREAM, f.payload.length])).toEqual([
      [HEADERS, 0, expect.any(Number)],
      [DATA, 0, 16_384],
      [DATA, 0, 16_384],
      [DATA, END_STREAM, 7_232],
    ]);
    expect(Buffer.concat(on(3).slice(1).map((f) => f.payload))).toEqual(Buffer.concat(chunks));
    expect(on(5).map((f) => [f.type, f.flags & END_STREAM, f.payload.toString()])).toEqual([
      [HEADERS, 0, expect.any(String)],
      [DATA, 0, 'one'],
      [DATA, 0, 'two'],
      [DATA, END_STREAM, ''],
    ]);
  });

  it('sends no more than the peer’s stream window, and goes on by exactly what each WINDOW_UPDATE grants', async () => {
    const peer = await barePeer([[0x4, 1000]]); // SETTINGS_INITIAL_WINDOW_SIZE
    const c = await connect(peer.port);
    const { st } = openCollecting(c);
    const body = Buffer.from(Array.from({ length: 5000 }, (_, i) => i & 0xff));
    for (let i = 0; i < 5; i++) st.write(body.subarray(1000 * i, 1000 * (i + 1)));
    await until('the first 1,000 octets', () => peer.dataOn(1) === 1000);
    await sleep(100);
    expect(peer.dataOn(1)).toBe(1000);
    expect(st.unsent).toBe(4000);
    peer.send(frame(WINDOW_UPDATE, 0, 1, u32(1500)));
    await until('1,500 more octets', () => peer.dataOn(1) === 2500);
    await sleep(100);
    expect(peer.dataOn(1)).toBe(2500);
    expect(st.unsent).toBe(2500);
    peer.send(frame(WINDOW_UPDATE, 0, 1, u32(100_000)));
    st.end();
    await until('the rest, and END_STREAM', () => peer.frames.some((f) => f.type === DATA && f.flags & END_STREAM));
    expect(st.unsent).toBe(0);
    expect(Buffer.concat(peer.frames.filter((f) => f.type === DATA).map((f) => f.payload))).toEqual(body);
  });

  it('sends no more than the connection window (65,535 octets), and goes on with its WINDOW_UPDATEs', async () => {
    const peer = await barePeer([[0x4, 1_000_000]]); // a large stream window: the connection's binds
    const c = await connect(peer.port);
    const { st } = openCollecting(c);
    for (let i = 0; i < 100; i++) st.write(Buffer.alloc(1000, i));
    await until('65,535 octets', () => peer.dataOn(1) === 65_535);
    await sleep(100);
    expect(peer.dataOn(1)).toBe(65_535);
    expect(st.unsent).toBe(100_000 - 65_535);
    peer.send(frame(WINDOW_UPDATE, 0, 0, u32(10_000)));
    await until('10,000 more octets', () => peer.dataOn(1) === 75_535);
    await sleep(100);
    expect(peer.dataOn(1)).toBe(75_535);
    peer.send(frame(WINDOW_UPDATE, 0, 0, u32(1_000_000)));
    await until('all 100,000 octets', () => peer.dataOn(1) === 100_000);
    expect(st.unsent).toBe(0);
  });

  it('replenishes its receive windows by exactly what it consumed, once half of a window is used', async () => {
    const peer = await barePeer();
    const c = await connect(peer.port, { receiveWindow: 65_535 });
    const { data, ended } = openCollecting(c);
    await until('the opening', () => peer.frames.some((f) => f.type === HEADERS));
    const updates = () => peer.frames.filter((f) => f.type === WINDOW_UPDATE).map((f) => [f.sid, f.payload.readUInt32BE(0)] as const);
    peer.send(frame(HEADERS, END_HEADERS, 1, encodeHeaderBlock([[':status', '200'], ['content-type', 'application/grpc']])));
    // 16,384 octets: a quarter of the windows, nothing to acknowledge yet.
    peer.send(frame(DATA, 0, 1, Buffer.alloc(16_384, 1)));
    await until('the first frame', () => Buffer.concat(data).length === 16_384);
    await sleep(50);
    expect(updates()).toEqual([]);
    // Two more frames, without waiting (16,384 + 7,232): half of each window was used after the
    // second, so both are replenished by the 32,768 octets consumed by then, and not before.
    peer.send(frame(DATA, 0, 1, Buffer.alloc(16_384, 2)), frame(DATA, 0, 1, Buffer.alloc(7_232, 3)));
    await until('our WINDOW_UPDATEs', () => updates().length >= 2);
    await sleep(50);
    expect(updates()).toEqual(expect.arrayContaining([[0, 32_768], [1, 32_768]]));
    expect(updates()).toHaveLength(2);
    // 65,536 more, sent at once, more than the 58,303 octets the windows had left when sent: it
    // fits only because each window is replenished as it is consumed (7,232 + 32,768 = 40,000 at
    // the fifth frame, then 32,768 at the seventh). A client that did not would stall the stream.
    peer.send(...Array.from({ length: 4 }, (_, i) => frame(DATA, 0, 1, Buffer.alloc(16_384, 4 + i))));
    peer.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, encodeHeaderBlock([['grpc-status', '0']])));
    const a = await ended;
    expect(a.error).toBeUndefined();
    expect(Buffer.concat(data).length).toBe(40_000 + 65_536);
    await until('the last WINDOW_UPDATEs', () => updates().length >= 6);
    await sleep(50);
    for (const sid of [0, 1]) expect(updates().filter(([s]) => s === sid).map(([, inc]) => inc)).toEqual([32_768, 40_000, 32_768]);
  });

  it('hands gRPC messages that straddle DATA frames, several to a frame, padding excluded, to a GrpcMessageReader', async () => {
    const peer = await barePeer();
    const c = await connect(peer.port);
    const got: string[] = [];
    const reader = new GrpcMessageReader((buf, from, to) => got.push(buf.toString('utf8', from, to)));
    let st: H2Stream | undefined;
    const ended = new Promise<H2Answer>((resolve) => {
      st = c.openStream(opening(), (buf, from, to) => reader.push(buf, from, to), resolve);
    });
    st?.write(framed(Buffer.from('request')));
    await until('the request', () => peer.dataOn(1) > 0);
    const messages = ['alpha', 'a longer second message', '', 'delta', 'echo'];
    const wire = Buffer.concat(messages.map((m) => framed(Buffer.from(m))));
    // Cut: mid-prefix of the second message; mid-body of the second; then the rest of the second
    // plus the third and fourth whole, in a padded frame; the fifth alone.
    const a = 5 + 5 + 2;
    const b = a + 10;
    const d = 10 + 5 + 23 + 5 + 10;
    const padded = Buffer.concat([Buffer.from([7]), wire.subarray(b, d), Buffer.alloc(7, 0xff)]);
    peer.send(
      frame(HEADERS, END_HEADERS, 1, encodeHeaderBlock([[':status', '200'], ['content-type', 'application/grpc']])),
      frame(DATA, 0, 1, wire.subarray(0, a)),
      frame(DATA, 0, 1, wire.subarray(a, b)),
      frame(DATA, PADDED, 1, padded),
      frame(DATA, 0, 1, wire.subarray(d)),
      frame(HEADERS, END_HEADERS | END_STREAM, 1, encodeHeaderBlock([['grpc-status', '0']])),
    );
    const answer = await ended;
    expect(answer.error).toBeUndefined();
    expect(field(answer, 'grpc-status')).toBe('0');
    expect(got).toEqual(messages);
    expect(reader.pendingOctets).toBe(0);
    // The peer ended the stream before we did: we reset our side rather than leave it open.
    await until('our RST_STREAM', () => peer.frames.some((f) => f.type === RST_STREAM));
    expect(peer.frames.find((f) => f.type === RST_STREAM)?.payload.readUInt32BE(0)).toBe(0x8); // CANCEL
  });

  it('times a stream out only once the call timeout passes with nothing arriving on it', async () => {
    const server = http2.createServer();
    let rstCode: number | undefined;
    server.on('stream', (stream) => {
      stream.on('error', () => undefined);
      stream.on('close', () => (rstCode = stream.rstCode));
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      let n = 0;
      const t = setInterval(() => {
        if (stream.destroyed) return clearInterval(t);
        stream.write(`chunk ${n}`);
        if (++n === 16) clearInterval(t); // then silence
      }, 100);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const c = await connect((server.address() as AddressInfo).port, { callTimeoutMs: 600 });
    const started = Date.now();
    const { data, ended } = openCollecting(c);
    const a = await ended;
    const lasted = Date.now() - started;
    expect(a.error).toBe('timeout');
    // All 16 chunks (1.6 s, well past the 600 ms timeout) arrived before it.
    expect(data.map((d) => d.toString()).join('')).toBe(Array.from({ length: 16 }, (_, i) => `chunk ${i}`).join(''));
    expect(lasted).toBeGreaterThan(1600);
    await until('the server to see CANCEL', () => rstCode !== undefined);
    expect(rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
  });

  it('cancel() resets the stream (CANCEL) and ends it with `cancelled`; writing after end() is a mistake', async () => {
    const server = http2.createServer();
    let rstCode: number | undefined;
    server.on('stream', (stream) => {
      stream.on('error', () => undefined);
      stream.on('data', () => undefined);
      stream.on('close', () => (rstCode = stream.rstCode));
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const c = await connect((server.address() as AddressInfo).port);
    const { st, ended } = openCollecting(c);
    st.write(Buffer.from('x'));
    await sleep(50);
    st.cancel();
    expect((await ended).error).toBe('cancelled');
    await until('the server to see CANCEL', () => rstCode !== undefined);
    expect(rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
    st.write(Buffer.from('ignored')); // the stream has ended: nothing to do

    const other = openCollecting(c);
    other.st.end();
    expect(() => other.st.write(Buffer.from('late'))).toThrow(/after end/);
    other.st.cancel();
    expect((await other.ended).error).toBe('cancelled');
  });
});
