// The direct encoders must write exactly what protobuf-es `toBinary` writes, or every request
// digest, session MAC and receipt over these messages would stop matching what clients compute.
// Each case is checked against `toBinary` of the same message; shapes the encoders do not cover
// must be refused (undefined) and still come out right through `canonicalBytes`.

import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { PasskeyApprovalSchema, ReceiptSchema, type Receipt } from '../../../proto/gen/openkey/v1/common_pb.ts';
import {
  PersonalMessageSchema,
  SignBatchRequestSchema,
  SignBatchResponseSchema,
  SignPayloadSchema,
  SignRequestSchema,
  SignResponseSchema,
  SignStreamRequestSchema,
  TypedDataSchema,
  type SignPayload,
  type SignRequest,
  type SignResponse,
  type SignStreamRequest,
} from '../../../proto/gen/openkey/v1/signing_pb.ts';
import { canonicalBytes, decodeCanonical, decodeRequest, encodeReceipt, encodeSignBatchRequest, encodeSignBatchResponse, encodeSignRequest, encodeSignResponse } from './canonical.ts';

/** A small deterministic generator (mulberry32), so a failure names a reproducible case. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Lengths around the varint boundaries (0, 127/128, 16383/16384) and some in between. */
const LENGTHS = [0, 1, 32, 65, 127, 128, 129, 300, 16_383, 16_384, 65_536];
/** Batches: 64 items of up to 64 KiB each would only make the test slow, not stronger. */
const SHORT = LENGTHS.filter((n) => n <= 300);
const STRINGS = ['', 'key_0123456789abcdef0123456789abcdef', 'ключ', 'key 🔑', 'lone \ud800 surrogate', '{"types":{}}', 'x'.repeat(200)];

/** Random bytes for the fields: a window of a fixed random pool, at a random offset. */
const POOL = (() => {
  const r = rng(99);
  return Uint8Array.from({ length: 2 * 65_536 }, () => Math.floor(r() * 256));
})();

function bytes(r: () => number, n: number): Uint8Array {
  const at = Math.floor(r() * (POOL.length - n));
  return POOL.slice(at, at + n);
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)] as T;
}

function payload(r: () => number, lengths: readonly number[]): SignPayload['kind'] {
  switch (Math.floor(r() * 5)) {
    case 0:
      return { case: undefined };
    case 1:
      return { case: 'personalMessage', value: create(PersonalMessageSchema, { message: bytes(r, pick(r, lengths)) }) };
    case 2:
      return { case: 'typedData', value: create(TypedDataSchema, { json: pick(r, STRINGS) }) };
    case 3:
      return { case: 'rawDigest', value: bytes(r, pick(r, lengths)) };
    default:
      return { case: 'ed25519Message', value: bytes(r, pick(r, lengths)) };
  }
}

function signRequest(r: () => number, lengths: readonly number[] = LENGTHS): SignRequest {
  const req = create(SignRequestSchema, { keyId: pick(r, STRINGS) });
  if (r() < 0.85) req.payload = create(SignPayloadSchema, { kind: payload(r, lengths) });
  return req;
}

function signResponse(r: () => number): SignResponse {
  return create(SignResponseSchema, { signature: bytes(r, pick(r, [0, 64, 65])), digest: bytes(r, pick(r, [0, 32])), keyId: pick(r, STRINGS) });
}

function receipt(r: () => number): Receipt {
  return create(ReceiptSchema, {
    version: pick(r, [0, 1, 2, 4_294_967_295]),
    method: pick(r, ['', '/openkey.v1.SignService/SignBatch']),
    requestDigest: bytes(r, pick(r, [0, 32])),
    responseDigest: bytes(r, pick(r, [0, 32])),
    keyId: pick(r, STRINGS),
    decision: pick(r, ['', 'allow']),
    timeMs: pick(r, [0n, 1n, 127n, 128n, 1_763_700_000_000n, BigInt(Number.MAX_SAFE_INTEGER)]),
    signature: bytes(r, pick(r, [0, 64])),
    batchIndex: pick(r, [0, 1, 200, 70_000]),
    batchSize: pick(r, [0, 1, 64, 4_294_967_295]),
    batchPath: Array.from({ length: pick(r, [0, 1, 6]) }, () => bytes(r, pick(r, [0, 32]))),
  });
}

/** The direct encoder's bytes equal toBinary's, and decode back to an equal message. */
function agrees<D extends DescMessage>(schema: D, m: MessageShape<D>, direct: (m: MessageShape<D>) => Uint8Array | undefined): void {
  const expected = toBinary(schema, m);
  const got = direct(m);
  expect(got).toBeDefined();
  const same = Buffer.from(got ?? []).equals(Buffer.from(expected));
  if (!same && expected.length < 4096) expect(Buffer.from(got ?? []).toString('hex')).toBe(Buffer.from(expected).toString('hex'));
  expect(same).toBe(true);
  expect(Buffer.from(canonicalBytes(schema, m)).equals(Buffer.from(expected))).toBe(true);
  expect(toBinary(schema, fromBinary(schema, got ?? new Uint8Array()))).toEqual(expected);
}

describe('direct canonical encoders', () => {
  it('SignRequest: every payload kind, empty and non-ASCII fields, lengths across varint boundaries', () => {
    const r = rng(1);
    for (let i = 0; i < 200; i++) agrees(SignRequestSchema, signRequest(r), encodeSignRequest);
  });

  it('SignRequest: a selected oneof member is written even when its value is empty', () => {
    for (const kind of [
      { case: 'rawDigest', value: new Uint8Array() },
      { case: 'ed25519Message', value: new Uint8Array() },
      { case: 'personalMessage', value: create(PersonalMessageSchema) },
      { case: 'typedData', value: create(TypedDataSchema) },
    ] as const) {
      const m = create(SignRequestSchema, { payload: { kind } });
      agrees(SignRequestSchema, m, encodeSignRequest);
      expect(toBinary(SignRequestSchema, m).length).toBeGreaterThan(2); // tag + length of the payload, then of the member
    }
  });

  it('SignBatchRequest and SignBatchResponse: 0, 1 and 64 items', () => {
    const r = rng(2);
    for (const n of [0, 1, 2, 64]) {
      for (let k = 0; k < 10; k++) {
        agrees(SignBatchRequestSchema, create(SignBatchRequestSchema, { items: Array.from({ length: n }, () => signRequest(r, SHORT)) }), encodeSignBatchRequest);
        agrees(SignBatchResponseSchema, create(SignBatchResponseSchema, { results: Array.from({ length: n }, () => signResponse(r)) }), encodeSignBatchResponse);
      }
    }
  });

  it('SignResponse and Receipt: zero, maximal and typical values', () => {
    const r = rng(3);
    for (let i = 0; i < 300; i++) {
      agrees(SignResponseSchema, signResponse(r), encodeSignResponse);
      agrees(ReceiptSchema, receipt(r), encodeReceipt);
    }
  });

  it('refuses what it does not cover, and canonicalBytes still matches toBinary there', () => {
    const approval = create(PasskeyApprovalSchema, { issuedAtMs: 1_763_700_000_000n, assertionJson: '{}' });
    const withApproval = create(SignRequestSchema, { keyId: 'key_a', approval });
    const withUnknown = fromBinary(SignRequestSchema, Uint8Array.from([...toBinary(SignRequestSchema, create(SignRequestSchema, { keyId: 'key_a' })), 0x78, 0x05])); // field 15, varint 5
    expect(withUnknown.$unknown?.length).toBe(1);
    const nested = create(SignRequestSchema, { keyId: 'key_a', payload: fromBinary(SignPayloadSchema, Uint8Array.from([0x78, 0x01])) });
    const negativeTime = create(ReceiptSchema, { version: 1, timeMs: -1n });
    const hugeTime = create(ReceiptSchema, { version: 1, timeMs: 2n ** 60n });
    const receipted = create(SignResponseSchema, { keyId: 'key_a', receipt: create(ReceiptSchema, { version: 1 }) });
    const batchApproval = create(SignBatchRequestSchema, { items: [create(SignRequestSchema, { keyId: 'key_a' })], approval });
    const cases: [DescMessage, MessageShape<DescMessage>, (m: never) => Uint8Array | undefined][] = [
      [SignRequestSchema, withApproval, encodeSignRequest],
      [SignRequestSchema, withUnknown, encodeSignRequest],
      [SignRequestSchema, nested, encodeSignRequest],
      [ReceiptSchema, negativeTime, encodeReceipt],
      [ReceiptSchema, hugeTime, encodeReceipt],
      [SignResponseSchema, receipted, encodeSignResponse],
      [SignBatchRequestSchema, batchApproval, encodeSignBatchRequest],
      [SignBatchRequestSchema, create(SignBatchRequestSchema, { items: [withUnknown] }), encodeSignBatchRequest],
    ];
    for (const [schema, m, direct] of cases) {
      expect(direct(m as never)).toBeUndefined();
      expect(Buffer.from(canonicalBytes(schema, m)).equals(Buffer.from(toBinary(schema, m)))).toBe(true);
    }
  });
});

/** What fromBinary makes of `bytes`, or the error it throws. */
function reference<D extends DescMessage>(schema: D, bytes: Uint8Array): { ok: true; m: MessageShape<D> } | { ok: false } {
  try {
    return { ok: true, m: fromBinary(schema, bytes) };
  } catch {
    return { ok: false };
  }
}

/** decodeRequest gives what fromBinary gives (or throws where it throws); a direct decode is exact. */
function decodesLikeFromBinary<D extends DescMessage>(schema: D, bytes: Uint8Array): 'direct' | 'fallback' | 'invalid' {
  const ref = reference(schema, bytes);
  const direct = decodeCanonical(schema, bytes);
  if (!ref.ok) {
    expect(direct).toBeUndefined();
    expect(() => decodeRequest(schema, bytes)).toThrow();
    return 'invalid';
  }
  expect(decodeRequest(schema, bytes)).toStrictEqual(ref.m);
  if (direct === undefined) return 'fallback';
  expect(direct).toStrictEqual(ref.m);
  // Only canonical bytes are decoded directly: they are what toBinary writes for the message.
  expect(Buffer.from(toBinary(schema, direct)).equals(Buffer.from(bytes))).toBe(true);
  // So the message's digest input is the received bytes themselves, not a second encoding; a
  // stream message's SignRequest (which has a digest of its own) is the span it came from.
  const again = canonicalBytes(schema, direct);
  expect(Buffer.from(again).equals(Buffer.from(bytes))).toBe(true);
  expect(again.buffer).toBe(bytes.buffer);
  const inner = schema.typeName === SignStreamRequestSchema.typeName ? (direct as SignStreamRequest).request : undefined;
  if (inner !== undefined) {
    const innerBytes = canonicalBytes(SignRequestSchema, inner);
    expect(Buffer.from(innerBytes).equals(Buffer.from(toBinary(SignRequestSchema, inner)))).toBe(true);
    expect(innerBytes.buffer).toBe(bytes.buffer);
  }
  return 'direct';
}

function streamRequest(r: () => number): MessageShape<typeof SignStreamRequestSchema> {
  const m = create(SignStreamRequestSchema, { id: pick(r, [0n, 1n, 300n, 2n ** 48n, 2n ** 63n]) });
  if (r() < 0.9) m.request = signRequest(r, SHORT);
  return m;
}

/** One random edit: flip, insert or delete a byte, truncate, or append a field. */
function mutate(r: () => number, b: Uint8Array): Uint8Array {
  const out = Array.from(b);
  const at = Math.floor(r() * (out.length + 1));
  switch (Math.floor(r() * 6)) {
    case 0:
      if (out.length > 0) out[Math.min(at, out.length - 1)] = Math.floor(r() * 256);
      break;
    case 1:
      out.splice(at, 0, Math.floor(r() * 256));
      break;
    case 2:
      out.splice(Math.min(at, out.length - 1), 1);
      break;
    case 3:
      out.length = Math.floor(r() * out.length);
      break;
    case 4:
      out.push(...pick(r, [[0x0a, 0x00], [0x12, 0x00], [0x1a, 0x00], [0x08, 0x01], [0x78, 0x01], [0x00], [0x0a, 0x80, 0x00]]));
      break;
    default:
      out.splice(at, 0, ...pick(r, [[0x0a, 0x00], [0x08, 0x81, 0x00], [0xfa, 0x01, 0x00]]));
  }
  return Uint8Array.from(out);
}

describe('direct decoding of canonical signing requests', () => {
  it('decodes canonical encodings exactly as fromBinary does, and takes the direct path for ASCII shapes', () => {
    const r = rng(4);
    const seen = { direct: 0, fallback: 0, invalid: 0 };
    for (let i = 0; i < 300; i++) {
      const req = signRequest(r, SHORT);
      const path = decodesLikeFromBinary(SignRequestSchema, toBinary(SignRequestSchema, req));
      seen[path]++;
      const ascii = /^[\x00-\x7f]*$/.test(req.keyId) && (req.payload?.kind.case !== 'typedData' || /^[\x00-\x7f]*$/.test(req.payload.kind.value.json));
      expect(path).toBe(ascii ? 'direct' : 'fallback');
      const batch = create(SignBatchRequestSchema, { items: Array.from({ length: pick(r, [0, 1, 64]) }, () => signRequest(r, SHORT)) });
      seen[decodesLikeFromBinary(SignBatchRequestSchema, toBinary(SignBatchRequestSchema, batch))]++;
      seen[decodesLikeFromBinary(SignStreamRequestSchema, toBinary(SignStreamRequestSchema, streamRequest(r)))]++;
    }
    expect(seen.invalid).toBe(0);
    expect(seen.direct).toBeGreaterThan(250);
  });

  it('leaves valid but non-canonical encodings to fromBinary', () => {
    const key = Buffer.from('key_a');
    const cases = [
      [0x0a, 0x00], // an empty key id written out
      [0x12, 0x02, 0x1a, 0x00, 0x0a, 0x05, ...key], // fields out of order (payload before key id)
      [0x0a, 0x05, ...key, 0x0a, 0x05, ...key], // a field twice
      [0x0a, 0x85, 0x00, ...key], // an overlong length
      [0x0a, 0x05, ...key, 0x78, 0x01], // an unknown field
      [0x0a, 0x05, ...key, 0x12, 0x04, 0x1a, 0x00, 0x22, 0x00], // two oneof members (the last wins)
      [0x12, 0x02, 0x0a, 0x02, 0x0a, 0x00], // an empty personal message written out
      [0x1a, 0x02, 0x08, 0x01], // an approval
    ];
    for (const c of cases) expect(decodesLikeFromBinary(SignRequestSchema, Uint8Array.from(c))).toBe('fallback');
    expect(decodesLikeFromBinary(SignStreamRequestSchema, Uint8Array.from([0x08, 0x00]))).toBe('fallback'); // id 0 written out
  });

  it('a changed copy of a decoded request is encoded afresh: only the decoded object itself stands for its bytes', () => {
    const original = create(SignRequestSchema, { keyId: 'key_a', payload: { kind: { case: 'personalMessage', value: { message: Uint8Array.of(1, 2, 3) } } } });
    const bytes = toBinary(SignRequestSchema, original);
    const decoded = decodeCanonical(SignRequestSchema, bytes);
    expect(decoded).toBeDefined();
    const copy = { ...(decoded as SignRequest), keyId: 'key_b' };
    const expected = toBinary(SignRequestSchema, copy);
    expect(Buffer.from(canonicalBytes(SignRequestSchema, copy)).equals(Buffer.from(expected))).toBe(true);
    expect(Buffer.from(expected).equals(Buffer.from(bytes))).toBe(false);
    // A message that came through fromBinary (not canonical) is encoded canonically, not echoed.
    const loose = Uint8Array.from([0x12, 0x07, 0x0a, 0x05, 0x0a, 0x03, 1, 2, 3, 0x0a, 0x05, ...Buffer.from('key_a')]); // payload before key id
    const viaFallback = decodeRequest(SignRequestSchema, loose);
    expect(Buffer.from(canonicalBytes(SignRequestSchema, viaFallback)).equals(Buffer.from(bytes))).toBe(true);
  });

  it('mutated encodings: whatever fromBinary accepts decodes the same, whatever it refuses is refused', () => {
    const r = rng(5);
    const seen = { direct: 0, fallback: 0, invalid: 0 };
    for (let i = 0; i < 3000; i++) {
      const which = i % 3;
      if (which === 0) seen[decodesLikeFromBinary(SignRequestSchema, mutate(r, toBinary(SignRequestSchema, signRequest(r, SHORT))))]++;
      else if (which === 1) seen[decodesLikeFromBinary(SignBatchRequestSchema, mutate(r, toBinary(SignBatchRequestSchema, create(SignBatchRequestSchema, { items: Array.from({ length: pick(r, [1, 3]) }, () => signRequest(r, SHORT)) }))))]++;
      else seen[decodesLikeFromBinary(SignStreamRequestSchema, mutate(r, toBinary(SignStreamRequestSchema, streamRequest(r))))]++;
    }
    // The edits produce all three outcomes, so each branch above was exercised.
    expect(seen.direct).toBeGreaterThan(100);
    expect(seen.fallback).toBeGreaterThan(100);
    expect(seen.invalid).toBeGreaterThan(100);
  });
});
