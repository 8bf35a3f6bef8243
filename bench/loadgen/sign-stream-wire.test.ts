// The SignStream wire helpers against @bufbuild/protobuf (the generated schema is the reference): a
// framed SignStreamRequest is byte for byte what toBinary writes, behind a gRPC prefix, for ids of
// every varint length; readStreamAnswer reads what toBinary writes for results, StreamErrors and
// answers without an outcome, skips fields it does not know, and refuses truncated input.

import { create, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { SignRequestSchema, SignStreamRequestSchema, SignStreamResponseSchema, type SignStreamResponse } from '../../proto/gen/openkey/v1/signing_pb.ts';
import { framedStreamRequestLength, OUTCOME_ERROR, OUTCOME_NONE, OUTCOME_RESULT, readStreamAnswer, StreamAnswerView, WireError, writeFramedStreamRequest } from './sign-stream-wire.ts';

const request = create(SignRequestSchema, { keyId: 'key_0123456789abcdef', payload: { kind: { case: 'personalMessage', value: { message: new Uint8Array(36).fill(7) } } } });
const requestBytes = toBinary(SignRequestSchema, request);

function read(message: SignStreamResponse | Uint8Array, extra: Uint8Array = new Uint8Array(0)): StreamAnswerView {
  const bytes = message instanceof Uint8Array ? message : toBinary(SignStreamResponseSchema, message);
  // Inside a larger buffer, as in a DATA frame.
  const buf = Buffer.concat([Buffer.from([9, 9]), bytes, extra, Buffer.from([9])]);
  const view = new StreamAnswerView();
  readStreamAnswer(buf, 2, 2 + bytes.length + extra.length, view);
  return view;
}

describe('SignStream wire helpers', () => {
  it('frames SignStreamRequest{id, request} exactly as toBinary encodes it, for ids of every varint length', () => {
    for (const id of [1, 127, 128, 300, 16_383, 16_384, 2 ** 31 - 1, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
      const expected = toBinary(SignStreamRequestSchema, create(SignStreamRequestSchema, { id: BigInt(id), request }));
      const out = Buffer.alloc(framedStreamRequestLength(id, requestBytes.length) + 4, 0xaa);
      const end = writeFramedStreamRequest(out, 2, id, requestBytes);
      expect(end, `id ${id}`).toBe(2 + 5 + expected.length);
      expect(out[2]).toBe(0);
      expect(out.readUInt32BE(3)).toBe(expected.length);
      expect(out.subarray(7, end)).toEqual(Buffer.from(expected));
      expect(out[end]).toBe(0xaa); // nothing written past the message
    }
    expect(() => writeFramedStreamRequest(Buffer.alloc(100), 0, 0, requestBytes)).toThrow(RangeError);
  });

  it('reads the id and the result of an answer, and where the result lies', () => {
    const result = { signature: new Uint8Array(65).fill(1), digest: new Uint8Array(32).fill(2), keyId: 'key_x' };
    const msg = create(SignStreamResponseSchema, { id: 300n, outcome: { case: 'result', value: result } });
    const bytes = toBinary(SignStreamResponseSchema, msg);
    const view = read(bytes);
    expect(view.id).toBe(300);
    expect(view.outcome).toBe(OUTCOME_RESULT);
    expect(view.code).toBe('');
    // The bounds (in the padded buffer) cover exactly the encoded SignResponse.
    const inner = toBinary(SignStreamResponseSchema, create(SignStreamResponseSchema, { outcome: { case: 'result', value: result } }));
    expect(view.outcomeTo - view.outcomeFrom).toBe(inner.length - 2); // tag and one-octet length
  });

  it('reads a StreamError’s code and retry hint, and an answer with no outcome', () => {
    const refused = read(create(SignStreamResponseSchema, { id: 2n ** 40n, outcome: { case: 'error', value: { code: 'RESOURCE_EXHAUSTED', message: 'stream in-progress bound', retryAfterMs: 50 } } }));
    expect(refused).toMatchObject({ id: 2 ** 40, outcome: OUTCOME_ERROR, code: 'RESOURCE_EXHAUSTED', retryAfterMs: 50 });
    const noHint = read(create(SignStreamResponseSchema, { id: 7n, outcome: { case: 'error', value: { code: 'KEY_NOT_FOUND', message: 'KEY_NOT_FOUND' } } }));
    expect(noHint).toMatchObject({ id: 7, outcome: OUTCOME_ERROR, code: 'KEY_NOT_FOUND', retryAfterMs: 0 });
    expect(read(create(SignStreamResponseSchema, { id: 9n }))).toMatchObject({ id: 9, outcome: OUTCOME_NONE });
  });

  it('skips fields it does not know, of every wire type', () => {
    const msg = toBinary(SignStreamResponseSchema, create(SignStreamResponseSchema, { id: 5n, outcome: { case: 'error', value: { code: 'DEADLINE_EXCEEDED', message: 'x' } } }));
    // Field 9 varint, field 10 fixed64, field 11 length-delimited, field 12 fixed32.
    const unknown = Uint8Array.from([0x48, 0x96, 0x01, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 0x5a, 3, 0x61, 0x62, 0x63, 0x65, 1, 2, 3, 4]);
    expect(read(msg, unknown)).toMatchObject({ id: 5, outcome: OUTCOME_ERROR, code: 'DEADLINE_EXCEEDED' });
  });

  it('refuses truncated answers and unknown wire types', () => {
    const msg = toBinary(SignStreamResponseSchema, create(SignStreamResponseSchema, { id: 300n, outcome: { case: 'error', value: { code: 'KEY_NOT_FOUND', message: 'm' } } }));
    for (let cut = 1; cut < msg.length; cut++) {
      // Every proper prefix either fails to parse or lacks what the whole carries.
      let view: StreamAnswerView | undefined;
      try {
        view = read(msg.subarray(0, cut));
      } catch (e) {
        expect(e).toBeInstanceOf(WireError);
        continue;
      }
      expect(view.outcome === OUTCOME_ERROR && view.code === 'KEY_NOT_FOUND', `cut at ${cut}`).toBe(false);
    }
    expect(() => read(Uint8Array.from([0x0b]))).toThrow(WireError); // wire type 3 (group)
    expect(() => read(Uint8Array.from([0x08, 0x80]))).toThrow(WireError);
  });
});
