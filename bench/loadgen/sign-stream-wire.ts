// The two SignStream messages at the protobuf wire level (proto/openkey/v1/signing.proto), for the
// stream load generator: a SignStreamRequest is written around an already encoded SignRequest
// (field 1, the id, as a varint; field 2, the request, length-delimited — the order and form the
// deterministic encoding uses), and a SignStreamResponse is read only as far as the generator needs
// it: the id, which outcome it holds, where the result lies, and a StreamError's code and retry
// hint. Answers that are kept for verification are decoded in full by @bufbuild/protobuf instead.

/** A SignStreamResponse that is not valid protobuf (or not what the schema says). */
export class WireError extends Error {
  override readonly name = 'WireError';
}

// SignStreamResponse.outcome, by field number.
export const OUTCOME_NONE = 0;
export const OUTCOME_RESULT = 2;
export const OUTCOME_ERROR = 3;

function varintLength(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

function writeVarint(out: Buffer, at: number, v: number): number {
  while (v >= 0x80) {
    out[at++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  out[at++] = v;
  return at;
}

/** Octets of the gRPC-framed SignStreamRequest{id, request} around a `requestLength`-octet SignRequest. */
export function framedStreamRequestLength(id: number, requestLength: number): number {
  return 5 + 1 + varintLength(id) + 1 + varintLength(requestLength) + requestLength;
}

/**
 * Writes the gRPC-framed SignStreamRequest{id, request: the SignRequest encoded in `request`} at
 * `out[at]` (flag 0, 4-octet length, then the message); returns the offset after it. `id` is a
 * positive safe integer.
 */
export function writeFramedStreamRequest(out: Buffer, at: number, id: number, request: Uint8Array): number {
  if (!Number.isSafeInteger(id) || id <= 0) throw new RangeError(`stream message id ${id}`);
  const length = framedStreamRequestLength(id, request.length) - 5;
  out[at] = 0;
  out.writeUInt32BE(length, at + 1);
  let p = at + 5;
  out[p++] = 0x08; // field 1, varint
  p = writeVarint(out, p, id);
  out[p++] = 0x12; // field 2, length-delimited
  p = writeVarint(out, p, request.length);
  out.set(request, p);
  return p + request.length;
}

/** What readStreamAnswer found; one object is reused for every answer. */
export class StreamAnswerView {
  id = 0;
  /** OUTCOME_NONE, OUTCOME_RESULT or OUTCOME_ERROR (the last outcome field seen wins, as in protobuf). */
  outcome = OUTCOME_NONE;
  /** The outcome's encoded message: buf[outcomeFrom, outcomeTo). */
  outcomeFrom = 0;
  outcomeTo = 0;
  /** A StreamError's code and retry hint (ms); '' and 0 otherwise. */
  code = '';
  retryAfterMs = 0;
}

/** A cursor over one encoded message. */
class Reader {
  constructor(
    readonly buf: Buffer,
    public p: number,
    readonly end: number,
  ) {}

  /** A varint up to 2^53 − 1 (ids and lengths; larger values are refused). */
  varint(): number {
    const b = this.buf;
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (this.p >= this.end) throw new WireError('truncated varint');
      const x = b[this.p++] as number;
      v += (x & 0x7f) * scale;
      if (x < 0x80) {
        if (!Number.isSafeInteger(v)) throw new WireError('varint beyond 2^53');
        return v;
      }
      scale *= 0x80;
    }
    throw new WireError('varint beyond 2^53');
  }

  /** The bounds of a length-delimited field's content; moves past it. */
  delimited(): number {
    const length = this.varint();
    const from = this.p;
    if (length > this.end - from) throw new WireError('truncated length-delimited field');
    this.p = from + length;
    return from;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.p += 8;
        break;
      case 2:
        this.delimited();
        return;
      case 5:
        this.p += 4;
        break;
      default:
        throw new WireError(`wire type ${wireType}`);
    }
    if (this.p > this.end) throw new WireError('truncated fixed-size field');
  }
}

/** Reads the SignStreamResponse in `buf[from, to)` into `view`; throws WireError when malformed. */
export function readStreamAnswer(buf: Buffer, from: number, to: number, view: StreamAnswerView): void {
  view.id = 0;
  view.outcome = OUTCOME_NONE;
  view.outcomeFrom = view.outcomeTo = 0;
  view.code = '';
  view.retryAfterMs = 0;
  const r = new Reader(buf, from, to);
  while (r.p < to) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (field === 1 && wireType === 0) {
      view.id = r.varint();
    } else if ((field === OUTCOME_RESULT || field === OUTCOME_ERROR) && wireType === 2) {
      const start = r.delimited();
      view.outcome = field;
      view.outcomeFrom = start;
      view.outcomeTo = r.p;
    } else if (field === 0) {
      throw new WireError('field number 0');
    } else {
      r.skip(wireType);
    }
  }
  if (view.outcome === OUTCOME_ERROR) readStreamError(buf, view.outcomeFrom, view.outcomeTo, view);
}

/** StreamError{code = 1, message = 2, retry_after_ms = 3}: the code and the hint. */
function readStreamError(buf: Buffer, from: number, to: number, view: StreamAnswerView): void {
  const r = new Reader(buf, from, to);
  while (r.p < to) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (field === 1 && wireType === 2) {
      const start = r.delimited();
      view.code = buf.toString('utf8', start, r.p);
    } else if (field === 3 && wireType === 0) {
      view.retryAfterMs = r.varint();
    } else if (field === 0) {
      throw new WireError('field number 0');
    } else {
      r.skip(wireType);
    }
  }
}
