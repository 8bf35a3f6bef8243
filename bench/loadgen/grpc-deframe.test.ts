// GrpcMessageReader: gRPC messages back out of a byte stream that HTTP/2 cut anywhere — several
// messages in one piece, one message over several pieces, cuts inside the 5-octet prefix, empty
// messages, a message larger than the reader's first buffer — and refusal of compressed or
// oversized messages.

import { describe, expect, it } from 'vitest';
import { GrpcFramingError, GrpcMessageReader } from './grpc-deframe.ts';

/** `body` with the gRPC prefix: flag 0, 4-octet big-endian length. */
function framed(body: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(body.length, 1);
  return Buffer.concat([prefix, body]);
}

/** A reader that copies out every message it is handed. */
function collecting(maxMessage?: number): { reader: GrpcMessageReader; out: Buffer[] } {
  const out: Buffer[] = [];
  const reader = new GrpcMessageReader((buf, from, to) => out.push(Buffer.from(buf.subarray(from, to))), maxMessage);
  return { reader, out };
}

/** Feeds `stream` in pieces ending at `cuts` (ascending offsets), each piece inside a larger buffer
 * with junk around it, as a DATA payload inside a read buffer would be. */
function feed(reader: GrpcMessageReader, stream: Buffer, cuts: readonly number[]): void {
  let from = 0;
  for (const to of [...cuts, stream.length]) {
    const piece = Buffer.concat([Buffer.alloc(3, 0xee), stream.subarray(from, to), Buffer.alloc(4, 0xee)]);
    reader.push(piece, 3, 3 + (to - from));
    from = to;
  }
}

const messages = [Buffer.from('first message'), Buffer.alloc(0), Buffer.from([0, 1, 2, 3, 4, 5, 6]), Buffer.from('the fourth one, a bit longer than the others')];
const stream = Buffer.concat(messages.map(framed));

describe('GrpcMessageReader', () => {
  it('hands over every message of one piece that holds several, in order, empty ones included', () => {
    const { reader, out } = collecting();
    feed(reader, stream, []);
    expect(out).toEqual(messages);
    expect(reader.pendingOctets).toBe(0);
  });

  it('reassembles messages cut at any one offset, inside the prefix too', () => {
    for (let cut = 1; cut < stream.length; cut++) {
      const { reader, out } = collecting();
      feed(reader, stream, [cut]);
      expect(out, `cut at ${cut}`).toEqual(messages);
      expect(reader.pendingOctets).toBe(0);
    }
  });

  it('reassembles messages cut at every pair of offsets, and fed one octet at a time', () => {
    for (let a = 1; a < stream.length; a++) {
      for (let b = a; b < stream.length; b++) {
        const { reader, out } = collecting();
        feed(reader, stream, [a, b]);
        expect(out, `cuts at ${a} and ${b}`).toEqual(messages);
      }
    }
    const { reader, out } = collecting();
    feed(reader, stream, Array.from({ length: stream.length - 1 }, (_, i) => i + 1));
    expect(out).toEqual(messages);
  });

  it('holds what an incomplete message has so far, and nothing once it is complete', () => {
    const { reader, out } = collecting();
    const one = framed(Buffer.from('0123456789'));
    feed(reader, one.subarray(0, 3), []);
    expect(reader.pendingOctets).toBe(3);
    feed(reader, one.subarray(3, 12), []);
    expect(reader.pendingOctets).toBe(12);
    expect(out).toEqual([]);
    feed(reader, one.subarray(12), []);
    expect(reader.pendingOctets).toBe(0);
    expect(out).toEqual([Buffer.from('0123456789')]);
  });

  it('reassembles a 100 KiB message over 16 KiB pieces, between two small ones', () => {
    const big = Buffer.from(Array.from({ length: 100 * 1024 }, (_, i) => (i * 31) & 0xff));
    const all = [Buffer.from('a'), big, Buffer.from('z')];
    const s = Buffer.concat(all.map(framed));
    const cuts = Array.from({ length: Math.floor((s.length - 1) / 16384) }, (_, i) => (i + 1) * 16384);
    const { reader, out } = collecting();
    feed(reader, s, cuts);
    expect(out).toEqual(all);
  });

  it('refuses a compressed message and one over its size limit', () => {
    const compressed = framed(Buffer.from('x'));
    compressed[0] = 1;
    expect(() => collecting().reader.push(compressed, 0, compressed.length)).toThrow(GrpcFramingError);
    const big = framed(Buffer.alloc(101));
    expect(() => collecting(100).reader.push(big, 0, big.length)).toThrow(/exceeds 100/);
    // Also when the prefix arrives in pieces.
    const { reader } = collecting(100);
    reader.push(big, 0, 2);
    expect(() => reader.push(big, 2, 5)).toThrow(GrpcFramingError);
  });
});
