// The canonical writer builds every signing input (stamps, session MACs, receipts, audit hashes),
// so its bytes are the protocol. Its buffered implementation is checked against the plain
// definition — tag, then each field: u32-BE length ‖ bytes, UTF-8 for strings, u64 big-endian —
// spelled out here with TextEncoder and DataView, on random and edge-case fields.

import { randomBytes, randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CanonicalWriter } from '../proto/protocol/encoding.ts';

type Field = { readonly kind: 'bytes'; readonly v: Uint8Array } | { readonly kind: 'string'; readonly v: string } | { readonly kind: 'u64'; readonly v: number | bigint };

function reference(tag: string, fields: readonly Field[]): Uint8Array {
  const te = new TextEncoder();
  const parts: Uint8Array[] = [];
  const lp = (b: Uint8Array) => {
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, b.length);
    parts.push(len, b);
  };
  lp(te.encode(tag));
  for (const f of fields) {
    if (f.kind === 'bytes') lp(f.v);
    else if (f.kind === 'string') lp(te.encode(f.v));
    else {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigUint64(0, BigInt(f.v));
      parts.push(b);
    }
  }
  return Uint8Array.from(parts.flatMap((p) => [...p]));
}

function written(tag: string, fields: readonly Field[]): Uint8Array {
  const w = new CanonicalWriter(tag);
  for (const f of fields) {
    if (f.kind === 'bytes') w.bytes(f.v);
    else if (f.kind === 'string') w.string(f.v);
    else w.u64(f.v);
  }
  return w.finish();
}

const STRINGS = ['', 'ascii', 'ünïcödé', '日本語のテキスト', 'emoji 😀😀', 'lone \ud800 surrogate', '\udc00', '\ufeffbom', 'x'.repeat(3000)];
const U64S: (number | bigint)[] = [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER, 2n ** 53n, 2n ** 64n - 1n, 1_700_000_000_123];

function randomField(): Field {
  switch (randomInt(3)) {
    case 0:
      return { kind: 'bytes', v: randomBytes(randomInt(0, 700)) };
    case 1:
      return { kind: 'string', v: STRINGS[randomInt(STRINGS.length)] as string };
    default:
      return { kind: 'u64', v: randomInt(2) === 0 ? (U64S[randomInt(U64S.length)] as number | bigint) : randomInt(0, 2 ** 47) };
  }
}

describe('CanonicalWriter', () => {
  it('writes exactly the plain definition for 2,000 random field lists, growing past its first buffer', () => {
    for (let i = 0; i < 2000; i++) {
      const tag = i % 2 === 0 ? 'openkey-test-v1' : STRINGS[i % STRINGS.length] as string;
      const fields = Array.from({ length: randomInt(0, 12) }, randomField);
      expect(Buffer.from(written(tag, fields)).equals(Buffer.from(reference(tag, fields)))).toBe(true);
    }
  });

  it('writes every edge value of u64 and every kind of string as the definition does', () => {
    for (const v of U64S) expect(written('t', [{ kind: 'u64', v }])).toEqual(reference('t', [{ kind: 'u64', v }]));
    for (const v of STRINGS) expect(written('t', [{ kind: 'string', v }])).toEqual(reference('t', [{ kind: 'string', v }]));
  });

  it('refuses fractions and values outside 0 … 2^64 − 1; finish hands out a result of its own and ends the writer', () => {
    expect(() => new CanonicalWriter('t').u64(1.5)).toThrow(RangeError);
    // Out of range is refused, not wrapped modulo 2^64.
    for (const v of [-1, -1n, 2n ** 64n, -(2n ** 63n)]) expect(() => new CanonicalWriter('t').u64(v)).toThrow(RangeError);
    const w = new CanonicalWriter('t').bytes(new Uint8Array([1, 2]));
    const a = w.finish();
    expect(a).toEqual(reference('t', [{ kind: 'bytes', v: new Uint8Array([1, 2]) }]));
    expect(() => w.finish()).toThrow(/already finished/);
    expect(() => w.string('more')).toThrow(/already finished/);
    // The next writer builds in the buffer this one gave back; the result handed out is not it.
    const b = new CanonicalWriter('t').string('other').finish();
    expect(a).toEqual(reference('t', [{ kind: 'bytes', v: new Uint8Array([1, 2]) }]));
    a.fill(0);
    expect(b).toEqual(reference('t', [{ kind: 'string', v: 'other' }]));
    expect(new CanonicalWriter('t').string('other').finish()).toEqual(b);
  });

  it('writers built inside one another, or abandoned half-way, leave every other result intact', () => {
    for (let i = 0; i < 200; i++) {
      const outer = [randomField(), randomField()];
      const inner = [randomField(), randomField(), randomField()];
      const w = new CanonicalWriter('outer');
      for (const f of outer.slice(0, 1)) written('x', [f]); // a writer started and finished meanwhile
      const nested = written('inner', inner); // another built while `w` is open
      if (i % 3 === 0) expect(() => new CanonicalWriter('abandoned').string('x'.repeat(i)).u64(-1)).toThrow(RangeError);
      for (const f of outer) {
        if (f.kind === 'bytes') w.bytes(f.v);
        else if (f.kind === 'string') w.string(f.v);
        else w.u64(f.v);
      }
      expect(Buffer.from(w.finish()).equals(Buffer.from(reference('outer', outer)))).toBe(true);
      expect(Buffer.from(nested).equals(Buffer.from(reference('inner', inner)))).toBe(true);
    }
  });
});
