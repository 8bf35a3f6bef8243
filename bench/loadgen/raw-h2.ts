// A minimal HTTP/2 client (RFC 9113) on one node:net socket, for the load generator. It sends
// requests whose HEADERS frames were encoded before the timed window (the stream id is written in
// as the frame is copied out), many per socket write, and reads answers with a frame parser over
// a reused buffer and an HPACK decoder (hpack.ts). It does what unary gRPC calls and long-lived
// (bidirectional streaming) gRPC calls need and no more: the preface and SETTINGS exchange, PING
// answers, GOAWAY and RST_STREAM (reported as failed calls), the peer's MAX_CONCURRENT_STREAMS
// (calls beyond it wait their turn), the connection and stream send windows (DATA waits for
// WINDOW_UPDATE), and receive windows replenished in batches. A long-lived stream (openStream) is
// written to piece by piece, its DATA handed to the caller as it arrives, and it times out only
// when nothing has arrived on it for the call timeout. No server push, no priorities, no TLS; h2c
// with prior knowledge only.

import * as net from 'node:net';
import { HpackDecoder, HpackError } from './hpack.ts';

// Frame types (§6) and flags.
const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PUSH_PROMISE = 0x5;
const PING = 0x6;
const GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;
const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

// SETTINGS parameters (§6.5.2).
const SETTINGS_HEADER_TABLE_SIZE = 0x1;
const SETTINGS_ENABLE_PUSH = 0x2;
const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTINGS_MAX_FRAME_SIZE = 0x5;

/** Error codes (§7), by number. */
const ERROR_NAMES = [
  'NO_ERROR',
  'PROTOCOL_ERROR',
  'INTERNAL_ERROR',
  'FLOW_CONTROL_ERROR',
  'SETTINGS_TIMEOUT',
  'STREAM_CLOSED',
  'FRAME_SIZE_ERROR',
  'REFUSED_STREAM',
  'CANCEL',
  'COMPRESSION_ERROR',
  'CONNECT_ERROR',
  'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY',
  'HTTP_1_1_REQUIRED',
] as const;
type ErrorName = (typeof ERROR_NAMES)[number];
const errorName = (code: number): string => ERROR_NAMES[code] ?? `error 0x${code.toString(16)}`;
const errorCode = (name: ErrorName): number => ERROR_NAMES.indexOf(name);

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADER = 9;
/** Initial flow-control window (§6.9.2) and the largest one (§6.9.1). */
const DEFAULT_WINDOW = 65_535;
const MAX_WINDOW = 0x7fffffff;
/** The frame payload size every peer accepts (§4.2); we neither send nor accept larger frames. */
const MAX_FRAME_PAYLOAD = 16_384;
/** Our HPACK decoder's table size, as advertised (the default, stated explicitly). */
const HEADER_TABLE_SIZE = 4096;
/** A header block (HEADERS + CONTINUATION) larger than this ends the connection. */
const MAX_HEADER_BLOCK = 256 * 1024;
/** Size of each connection's read buffer. */
const READ_BUFFER = 64 * 1024;
/** Send buffer allocated after each flush. */
const OUT_CHUNK = 16 * 1024;
const TIMEOUT_SWEEP_MS = 500;

export interface RawH2Options {
  readonly host: string;
  readonly port: number;
  /** Our receive window for each stream and for the connection, octets (default 16 MiB). */
  readonly receiveWindow?: number;
  /** A call unanswered for this long is reset (CANCEL) and fails with `timeout` (default 10 s); for
   * a stream from openStream(), that long without a frame arriving on it. */
  readonly callTimeoutMs?: number;
  /** Connecting, including the peer's first SETTINGS, must take less than this (default 10 s). */
  readonly connectTimeoutMs?: number;
}

/** What one request got back. */
export interface H2Answer {
  /** `:status` of the answer's first header block; 0 if none arrived. */
  readonly status: number;
  /** The regular fields of every header block of the answer (headers, then trailers), in order,
   * flat: name, value, name, value, … Pseudo-headers are left out. */
  readonly fields: readonly string[];
  /** DATA payload octets received (padding excluded). */
  readonly dataBytes: number;
  /** The DATA payload, when the request asked to keep it. */
  readonly data: Buffer | undefined;
  /** Undefined when the answer ended normally (END_STREAM); otherwise why not, e.g.
   * `RST_STREAM REFUSED_STREAM`, `GOAWAY ENHANCE_YOUR_CALM`, `connection closed`, `timeout`,
   * `connection error PROTOCOL_ERROR` (the peer broke the protocol; we sent GOAWAY). */
  readonly error: string | undefined;
}

export type AnswerHandler = (answer: H2Answer) => void;

/** DATA payload of a stream from openStream(), as it arrives (padding excluded): `buf[from, to)`,
 * valid only during the call. It must not throw; it may write to, end or cancel any stream. */
export type DataHandler = (buf: Buffer, from: number, to: number) => void;

/** A long-lived stream (openStream): written piece by piece, ended or cancelled by the caller. */
export interface H2Stream {
  /** The stream id; 0 while it waits for a slot under the peer's MAX_CONCURRENT_STREAMS. */
  readonly id: number;
  /** Octets written and not yet sent: waiting for a flow-control window (or for the stream to start). */
  readonly unsent: number;
  /** Sends `data` as DATA (not copied: it must stay unchanged until sent). Several writes of one
   * turn of the event loop share DATA frames, up to 16 KiB each, as the windows allow. Writing to a
   * stream that has ended does nothing; writing after end() is a mistake and throws. */
  write(data: Uint8Array): void;
  /** Half-closes: END_STREAM goes out after the last octet written. */
  end(): void;
  /** Resets the stream (RST_STREAM CANCEL); it ends with the error `cancelled`. */
  cancel(): void;
}

// Frames of every connection collect in its send buffer and go out once per turn of the event loop
// (setImmediate runs after the loop has handled all sockets that were ready): the answers read in
// one turn, and the requests they release, cost one write per connection, not one each.
const dirty: (() => void)[] = [];
let flushScheduled = false;
function flushAll(): void {
  flushScheduled = false;
  for (let i = 0; i < dirty.length; i++) (dirty[i] as () => void)();
  dirty.length = 0;
}

/** Thrown inside the frame parser: the peer broke the protocol; the connection ends (§5.4.1). */
class ConnectionError extends Error {
  constructor(readonly h2code: ErrorName) {
    super(h2code);
  }
}

/**
 * A HEADERS frame (END_HEADERS set, stream id 0) around an encoded header block, for
 * RawH2Connection.request: the stream id and END_STREAM are written in when it is sent.
 */
export function headersFrame(block: Uint8Array): Buffer {
  const f = Buffer.allocUnsafe(FRAME_HEADER + block.length);
  writeHeadersFrameHeader(f, 0, block.length);
  f.set(block, FRAME_HEADER);
  return f;
}

/** The 9-octet header of such a HEADERS frame, at `at`, for a block of `blockLength` octets that
 * the caller writes right after it (to build many frames in one buffer). */
export function writeHeadersFrameHeader(out: Buffer, at: number, blockLength: number): void {
  if (blockLength > MAX_FRAME_PAYLOAD) throw new Error(`header block of ${blockLength} octets does not fit one frame`);
  writeFrameHeader(out, at, blockLength, HEADERS, FLAG_END_HEADERS, 0);
}

function writeFrameHeader(b: Buffer, at: number, length: number, type: number, flags: number, streamId: number): void {
  b[at] = length >>> 16;
  b[at + 1] = (length >>> 8) & 0xff;
  b[at + 2] = length & 0xff;
  b[at + 3] = type;
  b[at + 4] = flags;
  b.writeUInt32BE(streamId, at + 5);
}

const EMPTY = new Uint8Array(0);

/** The payload length of the frame whose header is at `b[at]`. */
function frameLength(b: Buffer, at: number): number {
  return ((b[at] as number) << 16) | ((b[at + 1] as number) << 8) | (b[at + 2] as number);
}

class Stream implements H2Answer {
  id = 0;
  status = 0;
  readonly fields: string[] = [];
  dataBytes = 0;
  data: Buffer | undefined = undefined;
  error: string | undefined = undefined;
  /** The chunk being sent and its octets sent so far; chunks written after it wait in `queue`
   * (from queueHead on). A unary request has one chunk, its body. */
  body: Uint8Array;
  sent = 0;
  queue: Uint8Array[] | undefined = undefined;
  queueHead = 0;
  /** Octets written and not yet sent. */
  unsent: number;
  /** END_STREAM is to follow the last octet written; it has gone out. */
  endLocal: boolean;
  localClosed = false;
  /** The call has ended (its handler has run or is running). */
  ended = false;
  /** What the peer still lets us send on this stream. */
  sendWindow = 0;
  /** What we still let the peer send, and what it sent since our last WINDOW_UPDATE. */
  recvWindow = 0;
  recvUnacked = 0;
  /** Waiting in the blocked list for a send window. */
  blocked = false;
  /** Started at this sweep tick (for the call timeout); for a long-lived stream, the tick of the
   * last frame that arrived on it. */
  startedTick = 0;
  chunks: Buffer[] | undefined;

  constructor(
    readonly headers: Uint8Array,
    body: Uint8Array,
    readonly done: AnswerHandler,
    keepData: boolean,
    /** Set for a long-lived stream (openStream): gets the DATA as it arrives. */
    readonly onData: DataHandler | undefined,
  ) {
    this.body = body;
    this.unsent = body.length;
    this.endLocal = onData === undefined;
    this.chunks = keepData ? [] : undefined;
  }

  /** Moves to the next queued chunk; false when nothing is queued. */
  nextChunk(): boolean {
    const q = this.queue;
    if (q === undefined || this.queueHead >= q.length) return false;
    this.body = q[this.queueHead] as Uint8Array;
    q[this.queueHead++] = EMPTY;
    this.sent = 0;
    if (this.queueHead === q.length) {
      q.length = 0;
      this.queueHead = 0;
    }
    return true;
  }
}

export class RawH2Connection {
  private readonly decoder = new HpackDecoder(HEADER_TABLE_SIZE);
  private readonly streams = new Map<number, Stream>();
  private readonly receiveWindow: number;
  private readonly timeoutTicks: number;
  private nextStreamId = 1;
  private active = 0;
  /** Requests waiting for a stream slot, FIFO from pendingHead. */
  private pending: Stream[] = [];
  private pendingHead = 0;
  /** Started streams whose body waits for a send window. */
  private blockedStreams: Stream[] = [];
  private peerMaxStreams = Number.POSITIVE_INFINITY;
  private peerInitialWindow = DEFAULT_WINDOW;
  private connSendWindow = DEFAULT_WINDOW;
  private connRecvWindow = DEFAULT_WINDOW;
  private connRecvUnacked = 0;
  // Outgoing frames collect here and go out in one write per turn of the event loop (flushAll).
  private out = Buffer.allocUnsafe(OUT_CHUNK);
  private outLen = 0;
  /** Offset in `out` of the last frame there when it is a DATA frame without END_STREAM (of stream
   * tailStream), which later writes of that stream may extend; -1 otherwise. */
  private tailData = -1;
  private tailStream = 0;
  /** In the `dirty` list. */
  private queued = false;
  // Incoming octets not yet parsed (a partial frame), and a header block being continued.
  private rbuf = Buffer.allocUnsafe(FRAME_HEADER + MAX_FRAME_PAYLOAD);
  private rlen = 0;
  private contStream = 0;
  private contEndStream = false;
  private contBuf = Buffer.allocUnsafe(0);
  private contLen = 0;
  private readonly blockFields: string[] = [];
  /** Set once no new stream may start (GOAWAY received, closing, or dead): why. */
  private refusing: string | undefined;
  /** The peer sent GOAWAY; we have sent ours (and ended our side of the socket). */
  private goneAway = false;
  private ending = false;
  /** Set once the socket is unusable: why. */
  private dead: string | undefined;
  private tick = 0;
  private readonly sweeper: NodeJS.Timeout;
  private settled = false;
  private readonly closed: Promise<void>;
  private resolveReady: ((c: RawH2Connection) => void) | undefined;
  private rejectReady: ((e: Error) => void) | undefined;

  private readonly socket: net.Socket;

  private constructor(o: RawH2Options) {
    // Reads land in one buffer of this connection's (no stream machinery, no buffer per read).
    const inbuf = Buffer.allocUnsafe(READ_BUFFER);
    this.socket = net.connect({
      host: o.host,
      port: o.port,
      noDelay: true,
      onread: {
        buffer: inbuf,
        callback: (n: number) => {
          this.onData(inbuf, n);
          return true;
        },
      },
    });
    const socket = this.socket;
    this.receiveWindow = Math.min(MAX_WINDOW, Math.max(DEFAULT_WINDOW, Math.floor(o.receiveWindow ?? 16 * 1024 * 1024)));
    this.timeoutTicks = Math.max(1, Math.ceil((o.callTimeoutMs ?? 10_000) / TIMEOUT_SWEEP_MS));
    this.sweeper = setInterval(() => this.sweep(), TIMEOUT_SWEEP_MS);
    this.sweeper.unref();
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', (e: Error & { code?: string }) => this.die(`connection ${e.code ?? 'error'}`));
    socket.on('close', () => this.die('connection closed'));
  }

  /** Opens a connection; resolves once the peer's first SETTINGS frame has been applied. */
  static connect(o: RawH2Options): Promise<RawH2Connection> {
    return new Promise((resolve, reject) => {
      const c = new RawH2Connection(o);
      const timer = setTimeout(() => c.die('connect timeout'), o.connectTimeoutMs ?? 10_000);
      c.resolveReady = (x) => {
        clearTimeout(timer);
        resolve(x);
      };
      c.rejectReady = (e) => {
        clearTimeout(timer);
        reject(e);
      };
      c.socket.once('connect', () => c.sendPreface());
    });
  }

  /**
   * Sends one request: `headers` is a HEADERS frame from headersFrame() (copied, not modified),
   * `body` the request body (END_STREAM on its last DATA frame; on HEADERS when empty). `done`
   * runs once, never synchronously inside this call. With `keepData`, the answer's DATA payload
   * is kept and handed over as `data`.
   */
  request(headers: Uint8Array, body: Uint8Array, done: AnswerHandler, keepData = false): void {
    this.begin(new Stream(headers, body, done, keepData, undefined));
  }

  /**
   * Opens a long-lived stream (a bidirectional gRPC call): `headers` is a HEADERS frame from
   * headersFrame(), sent without END_STREAM; the returned stream takes writes (sent as the windows
   * allow), end() and cancel(). Its DATA goes to `onData` as it arrives, and `done` runs once when
   * the stream ends — END_STREAM from the peer (its header blocks in `fields`), or a failure as for
   * request(), or `timeout` after the call timeout without a frame arriving on it — never
   * synchronously inside this call.
   */
  openStream(headers: Uint8Array, onData: DataHandler, done: AnswerHandler): H2Stream {
    const s = new Stream(headers, EMPTY, done, false, onData);
    this.begin(s);
    return {
      get id() {
        return s.id;
      },
      get unsent() {
        return s.unsent;
      },
      write: (data) => this.write(s, data),
      end: () => this.endLocal(s),
      cancel: () => this.cancel(s),
    };
  }

  private begin(s: Stream): void {
    if (this.refusing !== undefined) {
      const why = this.refusing;
      process.nextTick(() => this.finish(s, why));
      return;
    }
    if (this.active < this.peerMaxStreams && this.pendingHead === this.pending.length) this.start(s);
    else this.pending.push(s);
  }

  private write(s: Stream, data: Uint8Array): void {
    if (s.endLocal) throw new Error('write after end() of an HTTP/2 stream');
    if (s.ended || data.length === 0) return;
    s.unsent += data.length;
    if (s.sent === s.body.length && (s.queue === undefined || s.queueHead === s.queue.length)) {
      s.body = data;
      s.sent = 0;
    } else {
      (s.queue ??= []).push(data);
    }
    if (s.id !== 0 && !s.blocked) this.sendBody(s);
  }

  private endLocal(s: Stream): void {
    if (s.endLocal || s.ended) return;
    s.endLocal = true;
    if (s.id !== 0 && !s.blocked) this.sendBody(s);
  }

  private cancel(s: Stream): void {
    if (s.ended) return;
    // A stream still waiting for a slot is skipped when its turn comes (startPending).
    if (s.id !== 0 && this.streams.get(s.id) === s && this.dead === undefined) this.rstStream(s.id, 'CANCEL');
    s.localClosed = true;
    this.finish(s, 'cancelled');
  }

  /** Ends the connection politely (GOAWAY NO_ERROR); calls still open fail with `connection closed`. */
  close(): Promise<void> {
    this.shutdown();
    return this.closed;
  }

  /** GOAWAY NO_ERROR (we take no streams from the peer), then our end of the socket. */
  private shutdown(): void {
    if (this.ending || this.dead !== undefined) return;
    this.ending = true;
    this.refusing ??= 'connection closed';
    const at = this.reserve(FRAME_HEADER + 8);
    writeFrameHeader(this.out, at, 8, GOAWAY, 0, 0);
    this.out.writeUInt32BE(0, at + FRAME_HEADER);
    this.out.writeUInt32BE(errorCode('NO_ERROR'), at + FRAME_HEADER + 4);
    this.flush();
    this.socket.end();
    // A peer that never closes its side must not hold us up.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  // ---- sending ---------------------------------------------------------------------------------

  private sendPreface(): void {
    const settings: [number, number][] = [
      [SETTINGS_HEADER_TABLE_SIZE, HEADER_TABLE_SIZE],
      [SETTINGS_ENABLE_PUSH, 0],
      [SETTINGS_INITIAL_WINDOW_SIZE, this.receiveWindow],
    ];
    let at = this.reserve(PREFACE.length + FRAME_HEADER + 6 * settings.length);
    PREFACE.copy(this.out, at);
    at += PREFACE.length;
    writeFrameHeader(this.out, at, 6 * settings.length, SETTINGS, 0, 0);
    at += FRAME_HEADER;
    for (const [id, value] of settings) {
      this.out.writeUInt16BE(id, at);
      this.out.writeUInt32BE(value, at + 2);
      at += 6;
    }
    // The connection window is not a setting: raise it with a WINDOW_UPDATE (§6.9.2).
    const raise = this.receiveWindow - DEFAULT_WINDOW;
    if (raise > 0) {
      this.windowUpdate(0, raise);
      this.connRecvWindow += raise;
    }
  }

  /** Room for n octets at the end of the send buffer, which goes out once this turn of the event
   * loop has handled everything that was ready. */
  private reserve(n: number): number {
    if (this.outLen + n > this.out.length) {
      const bigger = Buffer.allocUnsafe(Math.max(2 * this.out.length, this.outLen + n));
      this.out.copy(bigger, 0, 0, this.outLen);
      this.out = bigger;
    }
    const at = this.outLen;
    this.outLen += n;
    this.tailData = -1;
    if (!this.queued) {
      this.queued = true;
      dirty.push(this.flush);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushAll);
      }
    }
    return at;
  }

  private readonly flush = (): void => {
    this.queued = false;
    if (this.outLen === 0 || this.dead !== undefined) return;
    const chunk = this.out.subarray(0, this.outLen);
    // The socket keeps `chunk` until written: the next frames go to a new buffer.
    this.out = Buffer.allocUnsafe(Math.max(OUT_CHUNK, this.out.length));
    this.outLen = 0;
    this.tailData = -1;
    this.socket.write(chunk);
  };

  private windowUpdate(streamId: number, increment: number): void {
    const at = this.reserve(FRAME_HEADER + 4);
    writeFrameHeader(this.out, at, 4, WINDOW_UPDATE, 0, streamId);
    this.out.writeUInt32BE(increment, at + FRAME_HEADER);
  }

  private rstStream(streamId: number, code: ErrorName): void {
    const at = this.reserve(FRAME_HEADER + 4);
    writeFrameHeader(this.out, at, 4, RST_STREAM, 0, streamId);
    this.out.writeUInt32BE(errorCode(code), at + FRAME_HEADER);
  }

  private start(s: Stream): void {
    const id = this.nextStreamId;
    if (id > MAX_WINDOW) {
      // Stream ids are spent (§5.1.1): this connection takes no more requests.
      this.refusing ??= 'stream ids exhausted';
      process.nextTick(() => this.finish(s, 'stream ids exhausted'));
      return;
    }
    this.nextStreamId += 2;
    s.id = id;
    s.sendWindow = this.peerInitialWindow;
    s.recvWindow = this.receiveWindow;
    s.startedTick = this.tick;
    this.streams.set(id, s);
    this.active++;
    const h = s.headers;
    const at = this.reserve(h.length);
    this.out.set(h, at);
    const endNow = s.endLocal && s.unsent === 0;
    this.out[at + 4] = FLAG_END_HEADERS | (endNow ? FLAG_END_STREAM : 0);
    this.out.writeUInt32BE(id, at + 5);
    if (endNow) s.localClosed = true;
    else if (s.unsent > 0 || s.endLocal) this.sendBody(s);
  }

  /**
   * Sends as much of what was written as the windows allow, then END_STREAM if asked for and all
   * has gone out; a stream left with more waits in the blocked list. Octets written in one turn of
   * the event loop extend this stream's DATA frame at the end of the send buffer, up to 16 KiB.
   */
  private sendBody(s: Stream): void {
    for (;;) {
      if (s.sent === s.body.length && !s.nextChunk()) break;
      const body = s.body;
      let n = Math.min(body.length - s.sent, this.connSendWindow, s.sendWindow);
      if (n <= 0) {
        if (!s.blocked) {
          s.blocked = true;
          this.blockedStreams.push(s);
        }
        return;
      }
      const tail = this.tailStream === s.id ? this.tailData : -1;
      const tailLength = tail < 0 ? MAX_FRAME_PAYLOAD : frameLength(this.out, tail);
      let at: number;
      if (tailLength < MAX_FRAME_PAYLOAD) {
        n = Math.min(n, MAX_FRAME_PAYLOAD - tailLength);
        at = this.reserve(n);
        const grown = tailLength + n;
        this.out[tail] = grown >>> 16;
        this.out[tail + 1] = (grown >>> 8) & 0xff;
        this.out[tail + 2] = grown & 0xff;
        this.tailData = tail;
      } else {
        n = Math.min(n, MAX_FRAME_PAYLOAD);
        const h = this.reserve(FRAME_HEADER + n);
        writeFrameHeader(this.out, h, n, DATA, 0, s.id);
        at = h + FRAME_HEADER;
        this.tailData = h;
      }
      this.tailStream = s.id;
      this.out.set(n === body.length ? body : body.subarray(s.sent, s.sent + n), at);
      s.sent += n;
      s.unsent -= n;
      s.sendWindow -= n;
      this.connSendWindow -= n;
    }
    if (s.endLocal && !s.localClosed) {
      s.localClosed = true;
      // On this stream's last DATA frame when it is still the last frame; otherwise an empty one.
      const tail = this.tailStream === s.id ? this.tailData : -1;
      if (tail >= 0) {
        this.out[tail + 4] = (this.out[tail + 4] as number) | FLAG_END_STREAM;
      } else {
        const h = this.reserve(FRAME_HEADER); // first: it may move `out`
        writeFrameHeader(this.out, h, 0, DATA, FLAG_END_STREAM, s.id);
      }
      this.tailData = -1;
    }
  }

  /** A window grew: bodies that were waiting go on, in the order they stopped. */
  private unblock(): void {
    if (this.blockedStreams.length === 0) return;
    const waiting = this.blockedStreams;
    this.blockedStreams = [];
    for (const s of waiting) {
      s.blocked = false;
      if (this.streams.get(s.id) === s) this.sendBody(s);
    }
  }

  private startPending(): void {
    while (this.active < this.peerMaxStreams && this.pendingHead < this.pending.length && this.refusing === undefined) {
      const s = this.pending[this.pendingHead++] as Stream;
      if (!s.ended) this.start(s); // cancelled while it waited
    }
    if (this.pendingHead === this.pending.length) {
      if (this.pendingHead > 0) {
        this.pending = [];
        this.pendingHead = 0;
      }
    } else if (this.pendingHead > 1024 && this.pendingHead * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.pendingHead);
      this.pendingHead = 0;
    }
  }

  // ---- ending calls ----------------------------------------------------------------------------

  /** Ends one call: an answer (error undefined) or a failure. */
  private finish(s: Stream, error: string | undefined): void {
    if (s.ended) return;
    s.ended = true;
    if (s.id !== 0 && this.streams.get(s.id) === s) {
      this.streams.delete(s.id);
      this.active--;
      // The answer ended before our side did (§8.1): stop the stream instead of sending the rest.
      if (error === undefined && !s.localClosed && this.dead === undefined) this.rstStream(s.id, 'CANCEL');
    }
    s.error = error;
    if (s.chunks !== undefined) {
      s.data = Buffer.concat(s.chunks);
      s.chunks = undefined;
    }
    s.done(s);
    if (this.refusing === undefined) this.startPending();
    // After a GOAWAY, the connection ends once its last stream has.
    else if (this.goneAway && this.streams.size === 0) this.shutdown();
  }

  /** Fails every waiting request, and every open stream above `aboveId`. */
  private failAll(why: string, aboveId: number): void {
    const waiting = this.pending.slice(this.pendingHead);
    this.pending = [];
    this.pendingHead = 0;
    const open = [...this.streams.values()].filter((s) => s.id > aboveId);
    for (const s of open) this.finish(s, why);
    for (const s of waiting) this.finish(s, why);
  }

  /** The socket is gone (or must go): every call still open fails. `ending`: socket.end() was
   * called with a last frame, which must get out; the socket is destroyed a little later. */
  private die(why: string, ending = false): void {
    if (this.dead !== undefined) return;
    this.dead = why;
    this.refusing ??= why;
    clearInterval(this.sweeper);
    if (ending) setTimeout(() => this.socket.destroy(), 1000).unref();
    else this.socket.destroy();
    if (!this.settled) {
      this.settled = true;
      this.rejectReady?.(new Error(`HTTP/2 connection to the server failed: ${why}`));
    }
    this.failAll(why, 0);
  }

  /** The peer broke the protocol: GOAWAY with the error code, then end the connection (§5.4.1). */
  private connectionError(code: ErrorName): void {
    if (this.dead !== undefined) return;
    const goaway = Buffer.allocUnsafe(FRAME_HEADER + 8);
    writeFrameHeader(goaway, 0, 8, GOAWAY, 0, 0);
    goaway.writeUInt32BE(0, FRAME_HEADER);
    goaway.writeUInt32BE(errorCode(code), FRAME_HEADER + 4);
    this.flush();
    this.ending = true;
    this.socket.end(goaway);
    this.die(`connection error ${code}`, true);
  }

  private sweep(): void {
    this.tick++;
    const limit = this.tick - this.timeoutTicks;
    const late: Stream[] = [];
    for (const s of this.streams.values()) if (s.startedTick <= limit) late.push(s);
    for (const s of late) {
      this.rstStream(s.id, 'CANCEL');
      this.finish(s, 'timeout');
    }
  }

  // ---- receiving -------------------------------------------------------------------------------

  private onData(input: Buffer, n: number): void {
    try {
      this.parse(input, n);
    } catch (e) {
      if (e instanceof ConnectionError) this.connectionError(e.h2code);
      else if (e instanceof HpackError) this.connectionError('COMPRESSION_ERROR');
      else throw e; // a bug here, or in a caller's answer handler: let it surface
    }
  }

  /** Parses the frames in `input[0, n)` after what is left of the last read. */
  private parse(input: Buffer, n: number): void {
    let buf: Buffer;
    let end: number;
    if (this.rlen === 0) {
      buf = input;
      end = n;
    } else {
      if (this.rlen + n > this.rbuf.length) {
        const bigger = Buffer.allocUnsafe(this.rlen + n);
        this.rbuf.copy(bigger, 0, 0, this.rlen);
        this.rbuf = bigger;
      }
      input.copy(this.rbuf, this.rlen, 0, n);
      this.rlen += n;
      buf = this.rbuf;
      end = this.rlen;
    }
    let off = 0;
    while (end - off >= FRAME_HEADER) {
      const length = ((buf[off] as number) << 16) | ((buf[off + 1] as number) << 8) | (buf[off + 2] as number);
      if (length > MAX_FRAME_PAYLOAD) throw new ConnectionError('FRAME_SIZE_ERROR');
      if (end - off - FRAME_HEADER < length) break;
      const start = off + FRAME_HEADER;
      this.frame(buf[off + 3] as number, buf[off + 4] as number, buf.readUInt32BE(off + 5) & MAX_WINDOW, buf, start, start + length);
      if (this.dead !== undefined) return;
      off = start + length;
    }
    // Keep the partial frame for the next read.
    const rest = end - off;
    if (buf === this.rbuf) {
      if (rest > 0 && off > 0) buf.copyWithin(0, off, end);
    } else if (rest > 0) {
      if (rest > this.rbuf.length) this.rbuf = Buffer.allocUnsafe(rest);
      buf.copy(this.rbuf, 0, off, end);
    }
    this.rlen = rest;
  }

  /** One frame; `buf[start, end)` is its payload, valid only during this call. */
  private frame(type: number, flags: number, sid: number, buf: Buffer, start: number, end: number): void {
    // Between HEADERS without END_HEADERS and the last CONTINUATION nothing else may come (§6.10).
    if (this.contStream !== 0 && (type !== CONTINUATION || sid !== this.contStream)) throw new ConnectionError('PROTOCOL_ERROR');
    switch (type) {
      case DATA:
        this.onDataFrame(flags, sid, buf, start, end);
        return;
      case HEADERS:
        this.onHeaders(flags, sid, buf, start, end);
        return;
      case CONTINUATION:
        if (this.contStream === 0) throw new ConnectionError('PROTOCOL_ERROR');
        this.appendBlock(buf, start, end);
        if (flags & FLAG_END_HEADERS) {
          const id = this.contStream;
          this.contStream = 0;
          this.headerBlock(id, this.contEndStream, this.contBuf, 0, this.contLen);
        }
        return;
      case RST_STREAM: {
        if (sid === 0) throw new ConnectionError('PROTOCOL_ERROR');
        if (end - start !== 4) throw new ConnectionError('FRAME_SIZE_ERROR');
        this.checkNotIdle(sid);
        const s = this.streams.get(sid);
        if (s !== undefined) this.finish(s, `RST_STREAM ${errorName(buf.readUInt32BE(start))}`);
        return;
      }
      case SETTINGS:
        this.onSettings(flags, sid, buf, start, end);
        return;
      case PUSH_PROMISE:
        // We sent SETTINGS_ENABLE_PUSH = 0 (§8.4).
        throw new ConnectionError('PROTOCOL_ERROR');
      case PING:
        if (sid !== 0) throw new ConnectionError('PROTOCOL_ERROR');
        if (end - start !== 8) throw new ConnectionError('FRAME_SIZE_ERROR');
        if ((flags & FLAG_ACK) === 0) {
          const at = this.reserve(FRAME_HEADER + 8);
          writeFrameHeader(this.out, at, 8, PING, FLAG_ACK, 0);
          buf.copy(this.out, at + FRAME_HEADER, start, end);
        }
        return;
      case GOAWAY: {
        if (sid !== 0) throw new ConnectionError('PROTOCOL_ERROR');
        if (end - start < 8) throw new ConnectionError('FRAME_SIZE_ERROR');
        const lastId = buf.readUInt32BE(start) & MAX_WINDOW;
        const why = `GOAWAY ${errorName(buf.readUInt32BE(start + 4))}`;
        // Streams above lastId were not processed; the rest may still be answered (§6.8).
        this.refusing ??= why;
        this.goneAway = true;
        this.failAll(why, lastId);
        if (this.streams.size === 0) this.shutdown();
        return;
      }
      case WINDOW_UPDATE: {
        if (end - start !== 4) throw new ConnectionError('FRAME_SIZE_ERROR');
        const increment = buf.readUInt32BE(start) & MAX_WINDOW;
        if (sid === 0) {
          if (increment === 0) throw new ConnectionError('PROTOCOL_ERROR');
          this.connSendWindow += increment;
          if (this.connSendWindow > MAX_WINDOW) throw new ConnectionError('FLOW_CONTROL_ERROR');
          this.unblock();
          return;
        }
        this.checkNotIdle(sid);
        const s = this.streams.get(sid);
        if (s === undefined) return; // a stream that has ended: nothing to send on it
        if (increment === 0 || s.sendWindow + increment > MAX_WINDOW) {
          // A stream error (§6.9, §6.9.1): reset that stream only.
          this.rstStream(sid, increment === 0 ? 'PROTOCOL_ERROR' : 'FLOW_CONTROL_ERROR');
          this.finish(s, `stream error ${increment === 0 ? 'PROTOCOL_ERROR' : 'FLOW_CONTROL_ERROR'}`);
          return;
        }
        s.sendWindow += increment;
        if (s.blocked) this.unblock();
        return;
      }
      default:
        // PRIORITY and frame types we do not know are ignored (§5.3.2, §4.1).
        return;
    }
  }

  /** A frame for a stream we never opened is a connection error (§5.1: idle, or server-initiated). */
  private checkNotIdle(sid: number): void {
    if (sid >= this.nextStreamId || sid % 2 === 0) throw new ConnectionError('PROTOCOL_ERROR');
  }

  private onSettings(flags: number, sid: number, buf: Buffer, start: number, end: number): void {
    if (sid !== 0) throw new ConnectionError('PROTOCOL_ERROR');
    if (flags & FLAG_ACK) {
      if (end !== start) throw new ConnectionError('FRAME_SIZE_ERROR');
      return;
    }
    if ((end - start) % 6 !== 0) throw new ConnectionError('FRAME_SIZE_ERROR');
    for (let p = start; p < end; p += 6) {
      const id = buf.readUInt16BE(p);
      const value = buf.readUInt32BE(p + 2);
      if (id === SETTINGS_MAX_CONCURRENT_STREAMS) {
        this.peerMaxStreams = value;
      } else if (id === SETTINGS_INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW) throw new ConnectionError('FLOW_CONTROL_ERROR');
        // Applies to every open stream, as a change of its window (§6.9.2); windows may go negative.
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const s of this.streams.values()) {
          s.sendWindow += delta;
          if (s.sendWindow > MAX_WINDOW) throw new ConnectionError('FLOW_CONTROL_ERROR');
        }
      } else if (id === SETTINGS_MAX_FRAME_SIZE) {
        if (value < MAX_FRAME_PAYLOAD || value > 0xffffff) throw new ConnectionError('PROTOCOL_ERROR');
        // We keep sending frames of at most 16 KiB, which every peer accepts.
      } else if (id === SETTINGS_ENABLE_PUSH) {
        if (value > 1) throw new ConnectionError('PROTOCOL_ERROR');
      }
      // HEADER_TABLE_SIZE limits an encoder that indexes; ours never does. MAX_HEADER_LIST_SIZE is
      // advisory; our header blocks are small. Unknown settings are ignored (§6.5.2).
    }
    const at = this.reserve(FRAME_HEADER);
    writeFrameHeader(this.out, at, 0, SETTINGS, FLAG_ACK, 0);
    if (!this.settled) {
      this.settled = true;
      this.resolveReady?.(this);
    }
    this.unblock();
    this.startPending();
  }

  private onDataFrame(flags: number, sid: number, buf: Buffer, start: number, end: number): void {
    if (sid === 0) throw new ConnectionError('PROTOCOL_ERROR');
    this.checkNotIdle(sid);
    // Flow control counts the whole payload, padding included (§6.9.1).
    const length = end - start;
    this.connRecvWindow -= length;
    if (this.connRecvWindow < 0) throw new ConnectionError('FLOW_CONTROL_ERROR');
    this.connRecvUnacked += length;
    if (this.connRecvUnacked >= this.receiveWindow / 2) {
      this.windowUpdate(0, this.connRecvUnacked);
      this.connRecvWindow += this.connRecvUnacked;
      this.connRecvUnacked = 0;
    }
    let to = end;
    let from = start;
    if (flags & FLAG_PADDED) {
      if (length < 1) throw new ConnectionError('PROTOCOL_ERROR');
      const pad = buf[start] as number;
      from = start + 1;
      to = end - pad;
      if (to < from) throw new ConnectionError('PROTOCOL_ERROR');
    }
    const s = this.streams.get(sid);
    if (s === undefined) return; // a stream that has ended (reset or timed out): the octets are dropped
    s.recvWindow -= length;
    if (s.recvWindow < 0) {
      this.rstStream(sid, 'FLOW_CONTROL_ERROR');
      this.finish(s, 'stream error FLOW_CONTROL_ERROR');
      return;
    }
    s.dataBytes += to - from;
    if (s.chunks !== undefined && to > from) s.chunks.push(Buffer.from(buf.subarray(from, to)));
    if (s.onData !== undefined) {
      s.startedTick = this.tick;
      if (to > from) {
        s.onData(buf, from, to);
        // The handler may have cancelled the stream, or ended the connection.
        if (s.ended || this.dead !== undefined) return;
      }
    }
    if (flags & FLAG_END_STREAM) {
      this.finish(s, undefined);
      return;
    }
    s.recvUnacked += length;
    if (s.recvUnacked >= this.receiveWindow / 2) {
      this.windowUpdate(sid, s.recvUnacked);
      s.recvWindow += s.recvUnacked;
      s.recvUnacked = 0;
    }
  }

  private onHeaders(flags: number, sid: number, buf: Buffer, start: number, end: number): void {
    if (sid === 0) throw new ConnectionError('PROTOCOL_ERROR');
    this.checkNotIdle(sid);
    let from = start;
    let to = end;
    if (flags & FLAG_PADDED) {
      if (to - from < 1) throw new ConnectionError('PROTOCOL_ERROR');
      to -= buf[from] as number;
      from++;
    }
    if (flags & FLAG_PRIORITY) from += 5;
    if (to < from) throw new ConnectionError('PROTOCOL_ERROR');
    const endStream = (flags & FLAG_END_STREAM) !== 0;
    if (flags & FLAG_END_HEADERS) {
      this.headerBlock(sid, endStream, buf, from, to);
      return;
    }
    this.contStream = sid;
    this.contEndStream = endStream;
    this.contLen = 0;
    this.appendBlock(buf, from, to);
  }

  private appendBlock(buf: Buffer, from: number, to: number): void {
    const n = to - from;
    if (this.contLen + n > MAX_HEADER_BLOCK) throw new ConnectionError('ENHANCE_YOUR_CALM');
    if (this.contLen + n > this.contBuf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(2 * this.contBuf.length, this.contLen + n, 1024));
      this.contBuf.copy(bigger, 0, 0, this.contLen);
      this.contBuf = bigger;
    }
    buf.copy(this.contBuf, this.contLen, from, to);
    this.contLen += n;
  }

  /** A complete header block: decoded whatever the stream's state, to keep the HPACK context right. */
  private headerBlock(sid: number, endStream: boolean, block: Buffer, from: number, to: number): void {
    const fields = this.blockFields;
    fields.length = 0;
    this.decoder.decode(block, from, to, fields);
    const s = this.streams.get(sid);
    if (s === undefined) return; // the stream has ended (reset or timed out)
    if (s.onData !== undefined) s.startedTick = this.tick;
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i] as string;
      const value = fields[i + 1] as string;
      if (name.charCodeAt(0) !== 0x3a) s.fields.push(name, value);
      else if (name === ':status' && s.status === 0) s.status = Number(value);
    }
    if (endStream) this.finish(s, undefined);
  }
}
