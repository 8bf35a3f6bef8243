// Canonical (deterministic protobuf) encodings of the messages every signature passes through:
// SignRequest and SignBatchRequest (their digests are what stamps, session MACs, audit records and
// receipts cover), SignResponse and SignBatchResponse (what receipts sign and the wire carries) and
// Receipt. protobuf-es encodes by walking the schema at run time; these write the same bytes
// directly, sizing the message first so every call allocates one array.
//
// Same bytes as protobuf-es `toBinary`, field for field: fields in number order; implicit-presence
// scalars omitted when zero or empty; a set message field written even when empty; the selected
// member of a oneof written even when empty. canonical.test.ts checks equality against `toBinary`
// on every shape they handle. What they do not handle (unknown fields, a passkey approval, a value
// out of the fast range) makes them return undefined, and `canonicalBytes` falls back to `toBinary`.
// The signing requests are also decoded directly when the received bytes are canonical, and then
// those bytes are the request's canonical encoding: its digest needs no second encoding.

import { fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { ReceiptSchema, type Receipt } from '../../../proto/gen/openkey/v1/common_pb.ts';
import {
  PersonalMessageSchema,
  SignBatchRequestSchema,
  SignBatchResponseSchema,
  SignPayloadSchema,
  SignRequestSchema,
  SignResponseSchema,
  SignStreamRequestSchema,
  TypedDataSchema,
  type SignBatchRequest,
  type SignBatchResponse,
  type SignPayload,
  type SignRequest,
  type SignResponse,
  type SignStreamRequest,
  type PersonalMessage,
  type TypedData,
} from '../../../proto/gen/openkey/v1/signing_pb.ts';

const WIRE_VARINT = 0;
const WIRE_LEN = 2;

/**
 * The deterministic encoding of `message`: the bytes it was decoded from when the direct decoders
 * took it (they accept canonical bytes only), else a direct encoder when one covers it, else
 * `toBinary`.
 */
export function canonicalBytes<D extends DescMessage>(schema: D, message: MessageShape<D>): Uint8Array {
  const seen = received.get(message);
  if (seen !== undefined) return seen;
  const direct = DIRECT.get(schema.typeName) as ((m: MessageShape<D>) => Uint8Array | undefined) | undefined;
  return (direct === undefined ? undefined : direct(message)) ?? toBinary(schema, message);
}

/**
 * Requests the direct decoders took, and the bytes each came from: its canonical encoding, since
 * the decoders refuse anything else, so a request's digest costs no second encoding. Keyed by the
 * object itself: a copy (`{ ...req, approval: undefined }`) or a message built any other way is
 * encoded as before. A decoded request's fields are views of those same bytes, and nothing changes
 * a request after decoding.
 */
const received = new WeakMap<object, Uint8Array>();

type Direct = (message: never) => Uint8Array | undefined;

const DIRECT = new Map<string, Direct>([
  [SignRequestSchema.typeName, encodeSignRequest],
  [SignBatchRequestSchema.typeName, encodeSignBatchRequest],
  [SignResponseSchema.typeName, encodeSignResponse],
  [SignBatchResponseSchema.typeName, encodeSignBatchResponse],
  [ReceiptSchema.typeName, encodeReceipt],
]);

// ---- the messages ------------------------------------------------------------------------------

export function encodeSignRequest(m: SignRequest): Uint8Array | undefined {
  return encodeOne(m, sizeOfSignRequest, writeSignRequest);
}

export function encodeSignBatchRequest(m: SignBatchRequest): Uint8Array | undefined {
  return hasUnknown(m) || m.approval !== undefined ? undefined : encodeList(m.items, sizeOfSignRequest, writeSignRequest);
}

/** A response whose receipt is set is left to `toBinary` (receipted responses are encoded unset). */
export function encodeSignResponse(m: SignResponse): Uint8Array | undefined {
  return encodeOne(m, sizeOfSignResponse, writeSignResponse);
}

export function encodeSignBatchResponse(m: SignBatchResponse): Uint8Array | undefined {
  return hasUnknown(m) || m.receipt !== undefined ? undefined : encodeList(m.results, sizeOfSignResponse, writeSignResponse);
}

/** One message, given its size (−1: not handled here) and its writer. */
function encodeOne<T>(m: T, sizeOf: (m: T) => number, write: (w: Writer, m: T) => void): Uint8Array | undefined {
  const size = sizeOf(m);
  if (size < 0) return undefined;
  const w = new Writer(size);
  write(w, m);
  return w.done();
}

/** A message whose only field set is repeated message field 1 holding `list`. */
function encodeList<T>(list: readonly T[], sizeOf: (m: T) => number, write: (w: Writer, m: T) => void): Uint8Array | undefined {
  const sizes: number[] = [];
  let size = 0;
  for (const m of list) {
    const n = sizeOf(m);
    if (n < 0) return undefined;
    sizes.push(n);
    size += lenFieldSize(1, n);
  }
  const w = new Writer(size);
  for (const [i, m] of list.entries()) {
    w.tag(1, WIRE_LEN);
    w.varint(sizes[i] as number);
    write(w, m);
  }
  return w.done();
}

export function encodeReceipt(m: Receipt): Uint8Array | undefined {
  if (hasUnknown(m)) return undefined;
  const time = smallInt64(m.timeMs);
  if (time === undefined) return undefined;
  const method = utf8Size(m.method);
  const keyId = utf8Size(m.keyId);
  const decision = utf8Size(m.decision);
  let size =
    uint32FieldSize(1, m.version) +
    optLenFieldSize(2, method) +
    optLenFieldSize(3, m.requestDigest.length) +
    optLenFieldSize(4, m.responseDigest.length) +
    optLenFieldSize(5, keyId) +
    optLenFieldSize(6, decision) +
    (time === 0 ? 0 : 1 + varintSize(time)) +
    optLenFieldSize(8, m.signature.length) +
    uint32FieldSize(9, m.batchIndex) +
    uint32FieldSize(10, m.batchSize);
  for (const p of m.batchPath) size += lenFieldSize(11, p.length);
  const w = new Writer(size);
  w.uint32Field(1, m.version);
  w.stringField(2, m.method, method);
  w.bytesField(3, m.requestDigest);
  w.bytesField(4, m.responseDigest);
  w.stringField(5, m.keyId, keyId);
  w.stringField(6, m.decision, decision);
  if (time !== 0) {
    w.tag(7, WIRE_VARINT);
    w.varint(time);
  }
  w.bytesField(8, m.signature);
  w.uint32Field(9, m.batchIndex);
  w.uint32Field(10, m.batchSize);
  for (const p of m.batchPath) {
    w.tag(11, WIRE_LEN);
    w.varint(p.length);
    w.bytes(p);
  }
  return w.done();
}

// ---- sizes (−1: not handled here) and writers --------------------------------------------------

function sizeOfSignRequest(m: SignRequest): number {
  if (hasUnknown(m) || m.approval !== undefined) return -1;
  let size = optLenFieldSize(1, utf8Size(m.keyId));
  if (m.payload !== undefined) {
    const p = sizeOfPayload(m.payload);
    if (p < 0) return -1;
    size += lenFieldSize(2, p);
  }
  return size;
}

function writeSignRequest(w: Writer, m: SignRequest): void {
  w.stringField(1, m.keyId, utf8Size(m.keyId));
  if (m.payload !== undefined) {
    w.tag(2, WIRE_LEN);
    w.varint(sizeOfPayload(m.payload));
    writePayload(w, m.payload);
  }
}

function sizeOfPayload(m: SignPayload): number {
  if (hasUnknown(m)) return -1;
  const k = m.kind;
  switch (k.case) {
    case undefined:
      return 0;
    case 'personalMessage':
      return hasUnknown(k.value) ? -1 : lenFieldSize(1, optLenFieldSize(1, k.value.message.length));
    case 'typedData':
      return hasUnknown(k.value) ? -1 : lenFieldSize(2, optLenFieldSize(1, utf8Size(k.value.json)));
    case 'rawDigest':
      return lenFieldSize(3, k.value.length);
    case 'ed25519Message':
      return lenFieldSize(4, k.value.length);
    default:
      return -1;
  }
}

function writePayload(w: Writer, m: SignPayload): void {
  const k = m.kind;
  switch (k.case) {
    case 'personalMessage':
      w.tag(1, WIRE_LEN);
      w.varint(optLenFieldSize(1, k.value.message.length));
      w.bytesField(1, k.value.message);
      return;
    case 'typedData': {
      const n = utf8Size(k.value.json);
      w.tag(2, WIRE_LEN);
      w.varint(optLenFieldSize(1, n));
      w.stringField(1, k.value.json, n);
      return;
    }
    case 'rawDigest':
      w.tag(3, WIRE_LEN);
      w.varint(k.value.length);
      w.bytes(k.value);
      return;
    case 'ed25519Message':
      w.tag(4, WIRE_LEN);
      w.varint(k.value.length);
      w.bytes(k.value);
      return;
    default:
      return;
  }
}

function sizeOfSignResponse(m: SignResponse): number {
  if (hasUnknown(m) || m.receipt !== undefined) return -1;
  return optLenFieldSize(1, m.signature.length) + optLenFieldSize(2, m.digest.length) + optLenFieldSize(3, utf8Size(m.keyId));
}

function writeSignResponse(w: Writer, m: SignResponse): void {
  w.bytesField(1, m.signature);
  w.bytesField(2, m.digest);
  w.stringField(3, m.keyId, utf8Size(m.keyId));
}

// ---- wire primitives ---------------------------------------------------------------------------

function hasUnknown(m: object): boolean {
  const u = (m as { $unknown?: readonly unknown[] }).$unknown;
  return u !== undefined && u.length > 0;
}

/** An int64 field's value as a number when it is 0 ≤ v < 2^53, else undefined. */
function smallInt64(v: bigint): number | undefined {
  return v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
}

function varintSize(v: number): number {
  let n = 1;
  while (v > 0x7f) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** A length-delimited field, always written (a set message, a oneof member, a repeated element). */
function lenFieldSize(field: number, length: number): number {
  return varintSize(field << 3) + varintSize(length) + length;
}

/** An implicit-presence bytes or string field: nothing when empty. */
function optLenFieldSize(field: number, length: number): number {
  return length === 0 ? 0 : lenFieldSize(field, length);
}

function uint32FieldSize(field: number, v: number): number {
  return v === 0 ? 0 : varintSize(field << 3) + varintSize(v);
}

/** UTF-8 length of `s` (well-formed: lone surrogates count as U+FFFD, as TextEncoder writes them). */
function utf8Size(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, 'utf8');
  return s.length;
}

const utf8 = new TextEncoder();

class Writer {
  private readonly out: Uint8Array;
  private at = 0;

  constructor(size: number) {
    this.out = new Uint8Array(size);
  }

  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  varint(v: number): void {
    const out = this.out;
    while (v > 0x7f) {
      out[this.at++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    out[this.at++] = v;
  }

  bytes(b: Uint8Array): void {
    this.out.set(b, this.at);
    this.at += b.length;
  }

  bytesField(field: number, b: Uint8Array): void {
    if (b.length === 0) return;
    this.tag(field, WIRE_LEN);
    this.varint(b.length);
    this.bytes(b);
  }

  /** `size` = utf8Size(s). */
  stringField(field: number, s: string, size: number): void {
    if (size === 0) return;
    this.tag(field, WIRE_LEN);
    this.varint(size);
    if (size === s.length) {
      const out = this.out;
      for (let i = 0; i < s.length; i++) out[this.at + i] = s.charCodeAt(i);
    } else {
      utf8.encodeInto(s, this.out.subarray(this.at, this.at + size));
    }
    this.at += size;
  }

  uint32Field(field: number, v: number): void {
    if (v === 0) return;
    this.tag(field, WIRE_VARINT);
    this.varint(v);
  }

  done(): Uint8Array {
    if (this.at !== this.out.length) throw new Error(`canonical encoding wrote ${this.at} of ${this.out.length} bytes`);
    return this.out;
  }
}

// ---- decoding ----------------------------------------------------------------------------------
//
// The signing requests are decoded directly when their bytes are exactly the canonical encoding of
// a shape covered above: every field at most once, in number order, implicit-presence fields only
// when non-empty, minimal varints, strings in ASCII, no unknown fields and no approval. Anything
// else (valid or not) is left to protobuf-es `fromBinary`, which decides and reports. The messages
// built here are what `fromBinary` would build from the same bytes (bytes fields are views of the
// input, as there); canonical.test.ts compares the two on canonical and mutated inputs.

/** The request decoded directly when its bytes allow (see above), else by `fromBinary` (which may throw). */
export function decodeRequest<D extends DescMessage>(schema: D, bytes: Uint8Array): MessageShape<D> {
  return decodeCanonical(schema, bytes) ?? fromBinary(schema, bytes);
}

/** The message if `bytes` are the canonical encoding of a shape decoded directly, else undefined. */
export function decodeCanonical<D extends DescMessage>(schema: D, bytes: Uint8Array): MessageShape<D> | undefined {
  const direct = DECODERS.get(schema.typeName) as ((r: Reader) => MessageShape<D> | undefined) | undefined;
  if (direct === undefined) return undefined;
  const r = new Reader(bytes, 0, bytes.length);
  const m = direct(r);
  if (m === undefined || !r.atEnd()) return undefined;
  received.set(m, bytes);
  return m;
}

const DECODERS = new Map<string, (r: Reader) => object | undefined>([
  [SignRequestSchema.typeName, readSignRequest],
  [SignBatchRequestSchema.typeName, readSignBatchRequest],
  [SignStreamRequestSchema.typeName, readSignStreamRequest],
]);

/** What the readers' tag variables hold once the message's bytes are used up. */
const END = -2;

function readSignBatchRequest(r: Reader): SignBatchRequest | undefined {
  const items: SignRequest[] = [];
  for (let tag = r.next(); tag !== END; tag = r.next()) {
    const item = tag === ((1 << 3) | WIRE_LEN) ? r.message(readSignRequest) : undefined;
    if (item === undefined) return undefined;
    items.push(item);
  }
  return { $typeName: SignBatchRequestSchema.typeName, items };
}

function readSignStreamRequest(r: Reader): SignStreamRequest | undefined {
  const m: SignStreamRequest = { $typeName: SignStreamRequestSchema.typeName, id: 0n };
  let tag = r.next();
  if (tag === ((1 << 3) | WIRE_VARINT)) {
    const id = r.varint();
    if (id === undefined || id === 0) return undefined;
    m.id = BigInt(id);
    tag = r.next();
  }
  if (tag === ((2 << 3) | WIRE_LEN)) {
    // Each stream message's SignRequest has a digest of its own (what its receipt covers).
    const inner = r.sub();
    const request = inner === undefined ? undefined : readSignRequest(inner);
    if (inner === undefined || request === undefined || !inner.atEnd()) return undefined;
    received.set(request, inner.contents());
    m.request = request;
    tag = r.next();
  }
  return tag === END ? m : undefined;
}

function readSignRequest(r: Reader): SignRequest | undefined {
  const m: SignRequest = { $typeName: SignRequestSchema.typeName, keyId: '' };
  let tag = r.next();
  if (tag === ((1 << 3) | WIRE_LEN)) {
    const keyId = r.ascii();
    if (keyId === undefined || keyId === '') return undefined;
    m.keyId = keyId;
    tag = r.next();
  }
  if (tag === ((2 << 3) | WIRE_LEN)) {
    const payload = r.message(readPayload);
    if (payload === undefined) return undefined;
    m.payload = payload;
    tag = r.next();
  }
  return tag === END ? m : undefined;
}

function readPayload(r: Reader): SignPayload | undefined {
  const m: SignPayload = { $typeName: SignPayloadSchema.typeName, kind: { case: undefined } };
  switch (r.next()) {
    case END:
      return m;
    case (1 << 3) | WIRE_LEN: {
      const value = r.message(readPersonalMessage);
      if (value === undefined) return undefined;
      m.kind = { case: 'personalMessage', value };
      break;
    }
    case (2 << 3) | WIRE_LEN: {
      const value = r.message(readTypedData);
      if (value === undefined) return undefined;
      m.kind = { case: 'typedData', value };
      break;
    }
    case (3 << 3) | WIRE_LEN: {
      const value = r.bytes();
      if (value === undefined) return undefined;
      m.kind = { case: 'rawDigest', value };
      break;
    }
    case (4 << 3) | WIRE_LEN: {
      const value = r.bytes();
      if (value === undefined) return undefined;
      m.kind = { case: 'ed25519Message', value };
      break;
    }
    default:
      return undefined;
  }
  return r.atEnd() ? m : undefined;
}

/** Empty, or its one field holding at least one byte (an empty field written out is not canonical). */
function readPersonalMessage(r: Reader): PersonalMessage | undefined {
  const tag = r.next();
  const message = tag === END ? new Uint8Array(0) : tag === ((1 << 3) | WIRE_LEN) ? r.bytes() : undefined;
  if (message === undefined || (tag !== END && message.length === 0) || !r.atEnd()) return undefined;
  return { $typeName: PersonalMessageSchema.typeName, message };
}

/** Empty, or its one field holding non-empty ASCII text. */
function readTypedData(r: Reader): TypedData | undefined {
  const tag = r.next();
  const json = tag === END ? '' : tag === ((1 << 3) | WIRE_LEN) ? r.ascii() : undefined;
  if (json === undefined || (tag !== END && json === '') || !r.atEnd()) return undefined;
  return { $typeName: TypedDataSchema.typeName, json };
}

/** Reads canonical protobuf from `buf[start, end)`; every read returns undefined on anything else. */
class Reader {
  constructor(
    private readonly buf: Uint8Array,
    private readonly start: number,
    private readonly end: number,
    private at = start,
  ) {}

  /** All the bytes this reader covers, as a view of the input. */
  contents(): Uint8Array {
    return this.buf.subarray(this.start, this.end);
  }

  atEnd(): boolean {
    return this.at >= this.end;
  }

  /** The next field's tag (see `tag`), or END once the bytes are used up. */
  next(): number {
    return this.atEnd() ? END : this.tag();
  }

  /** A length-delimited field read as a message by `read`, which must use up exactly its bytes. */
  message<T>(read: (r: Reader) => T | undefined): T | undefined {
    const inner = this.sub();
    const m = inner === undefined ? undefined : read(inner);
    return m !== undefined && inner?.atEnd() === true ? m : undefined;
  }

  /** A field tag of one byte (fields 1–15), or −1 (a longer tag, or field 0, which is invalid). */
  tag(): number {
    const t = this.buf[this.at++] as number;
    return t < 0x80 && t >= 0x08 ? t : -1;
  }

  /** A minimal varint below 2^49 (7 bytes), or undefined. */
  varint(): number | undefined {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 7 && this.at < this.end; i++) {
      const b = this.buf[this.at++] as number;
      v += (b & 0x7f) * scale;
      if (b < 0x80) return i > 0 && b === 0 ? undefined : v;
      scale *= 128;
    }
    return undefined;
  }

  /** A length-delimited field's contents as a reader of their own, its bytes skipped here. */
  sub(): Reader | undefined {
    const n = this.varint();
    if (n === undefined || n > this.end - this.at) return undefined;
    const r = new Reader(this.buf, this.at, this.at + n);
    this.at += n;
    return r;
  }

  /** A length-delimited field's contents, a view of the input (as `fromBinary` returns them). */
  bytes(): Uint8Array | undefined {
    const n = this.varint();
    if (n === undefined || n > this.end - this.at) return undefined;
    const b = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return b;
  }

  /** A string field's contents if all ASCII, else undefined (other text is left to `fromBinary`). */
  ascii(): string | undefined {
    const b = this.bytes();
    if (b === undefined) return undefined;
    let s = '';
    for (let i = 0; i < b.length; i++) {
      const c = b[i] as number;
      if (c >= 0x80) return undefined;
      if (b.length <= 64) s += String.fromCharCode(c);
    }
    return b.length <= 64 ? s : Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
  }
}
