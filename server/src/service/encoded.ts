// A receipted response is encoded once. Its receipt signs SHA-256 of the response's deterministic
// encoding with the receipt field unset; when the receipt is the message's last field, the full
// encoding is exactly those bytes followed by the encoded receipt field. So the bytes hashed for
// the receipt are kept, and a transport that can send bytes (grpc-js) sends them instead of
// encoding the response a second time. Equality with a fresh `toBinary` is tested
// (encoded.test.ts); a response changed after its receipt would fail its receipt anyway.

import { create, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { ReceiptSchema, type Receipt } from '../../../proto/gen/openkey/v1/common_pb.ts';
import { canonicalBytes } from './canonical.ts';
import { sha256 } from '../core/crypto/sha256.ts';
import { SignStreamResponseSchema, type SignStreamResponse } from '../../../proto/gen/openkey/v1/signing_pb.ts';

/** Wire bytes of responses encoded while they were receipted. */
const encodings = new WeakMap<object, Uint8Array>();

/** Per schema: the receipt field's number if it is the last field, else undefined (no shortcut). */
const receiptField = new WeakMap<DescMessage, number | undefined>();

function receiptFieldOf(schema: DescMessage): number | undefined {
  if (receiptField.has(schema)) return receiptField.get(schema);
  const fields = schema.fields;
  const last = fields[fields.length - 1];
  const n = last !== undefined && last.localName === 'receipt' && last.message?.typeName === ReceiptSchema.typeName && fields.every((f) => f.number <= last.number) ? last.number : undefined;
  receiptField.set(schema, n);
  return n;
}

/**
 * Sets `res.receipt` to what `sign` makes of the response's digest (the receipt field unset),
 * and remembers the response's full encoding for `responseBytes`.
 */
export async function attachReceipt<D extends DescMessage>(schema: D, res: MessageShape<D> & { receipt?: Receipt | undefined }, sign: (responseDigest: Uint8Array) => Receipt | Promise<Receipt>): Promise<void> {
  res.receipt = undefined;
  const body = canonicalBytes(schema, res);
  const receipt = await sign(sha256(body));
  res.receipt = receipt;
  const field = receiptFieldOf(schema);
  const unknown = (res as { $unknown?: readonly unknown[] }).$unknown;
  if (field !== undefined && (unknown === undefined || unknown.length === 0)) encodings.set(res, concat(body, lengthDelimited(field, canonicalBytes(ReceiptSchema, receipt))));
}

/**
 * A response's wire bytes: those kept when it was receipted, or a fresh encoding. A SignStream
 * answer is its id field followed by its result's kept bytes (fields are written in number order).
 */
export function responseBytes(schema: DescMessage, v: MessageShape<DescMessage>): Uint8Array {
  const kept = encodings.get(v);
  if (kept !== undefined) return kept;
  if (schema.typeName === SignStreamResponseSchema.typeName) {
    const answer = v as SignStreamResponse;
    const result = answer.outcome.case === 'result' ? encodings.get(answer.outcome.value) : undefined;
    if (result !== undefined) return concat(toBinary(SignStreamResponseSchema, create(SignStreamResponseSchema, { id: answer.id })), lengthDelimited(STREAM_RESULT_FIELD, result));
  }
  return canonicalBytes(schema, v);
}

const STREAM_RESULT_FIELD = numberOf(SignStreamResponseSchema, 'result');

function numberOf(schema: DescMessage, localName: string): number {
  const f = schema.fields.find((x) => x.localName === localName);
  if (f === undefined) throw new Error(`${schema.typeName} has no field ${localName}`);
  return f.number;
}

/** A length-delimited field: its tag, its length, its bytes. */
function lengthDelimited(field: number, bytes: Uint8Array): Uint8Array {
  const head: number[] = [];
  varint(head, (field << 3) | 2);
  varint(head, bytes.length);
  return concat(Uint8Array.from(head), bytes);
}

function varint(out: number[], v: number): void {
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
