// Splits the DATA of a gRPC stream back into its messages ("Length-Prefixed-Message": a flag octet,
// a 4-octet big-endian length, the message). HTTP/2 cuts the byte stream wherever it likes: one
// DATA frame may hold several messages, and a message (even its 5-octet prefix) may straddle any
// number of frames. Complete messages inside one frame are handed over in place, without a copy;
// only a message cut by a frame boundary is gathered in a buffer of the reader's own.

/** The peer sent something that is not an uncompressed gRPC message stream. */
export class GrpcFramingError extends Error {
  override readonly name = 'GrpcFramingError';
}

/** Gets one message: `buf[from, to)`, valid only during the call. */
export type MessageHandler = (buf: Buffer, from: number, to: number) => void;

const PREFIX = 5;
/** grpc-js's default limit on a received message. */
const DEFAULT_MAX_MESSAGE = 4 * 1024 * 1024;

export class GrpcMessageReader {
  /** A message cut by a frame boundary: its first `held` octets (prefix included). */
  private partial = Buffer.allocUnsafe(1024);
  private held = 0;
  /** Prefix + length of that message, once its prefix is complete; 0 before. */
  private need = 0;

  constructor(
    private readonly onMessage: MessageHandler,
    private readonly maxMessage = DEFAULT_MAX_MESSAGE,
  ) {}

  /** Octets of an incomplete message waiting for the next DATA. */
  get pendingOctets(): number {
    return this.held;
  }

  /** Takes the next piece of the stream, `buf[from, to)`; throws GrpcFramingError on a compressed
   * or oversized message (the reader is unusable afterwards). */
  push(buf: Buffer, from: number, to: number): void {
    let p = from;
    if (this.held > 0) {
      if (this.need === 0) {
        const take = Math.min(PREFIX - this.held, to - p);
        buf.copy(this.partial, this.held, p, p + take);
        this.held += take;
        p += take;
        if (this.held < PREFIX) return;
        this.need = PREFIX + this.messageLength(this.partial, 0);
        if (this.partial.length < this.need) {
          const bigger = Buffer.allocUnsafe(this.need);
          this.partial.copy(bigger, 0, 0, this.held);
          this.partial = bigger;
        }
      }
      const take = Math.min(this.need - this.held, to - p);
      buf.copy(this.partial, this.held, p, p + take);
      this.held += take;
      p += take;
      if (this.held < this.need) return;
      const end = this.need;
      this.held = 0;
      this.need = 0;
      this.onMessage(this.partial, PREFIX, end);
    }
    while (to - p >= PREFIX) {
      const length = this.messageLength(buf, p);
      if (to - p - PREFIX < length) break;
      this.onMessage(buf, p + PREFIX, p + PREFIX + length);
      p += PREFIX + length;
    }
    if (p === to) return;
    // The start of a message that goes on in the next DATA.
    const rest = to - p;
    this.need = rest >= PREFIX ? PREFIX + this.messageLength(buf, p) : 0;
    const size = Math.max(rest, this.need);
    if (this.partial.length < size) this.partial = Buffer.allocUnsafe(size);
    buf.copy(this.partial, 0, p, to);
    this.held = rest;
  }

  /** The length in the prefix at `b[at]`, after checking the flag and the limit. */
  private messageLength(b: Buffer, at: number): number {
    if (b[at] !== 0) throw new GrpcFramingError(`gRPC message flag ${b[at]} (compressed messages were not asked for)`);
    const length = b.readUInt32BE(at + 1);
    if (length > this.maxMessage) throw new GrpcFramingError(`gRPC message of ${length} octets exceeds ${this.maxMessage}`);
    return length;
  }
}
