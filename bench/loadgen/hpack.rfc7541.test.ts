// The load generator's HPACK decoder against RFC 7541: the examples of Appendix C (C.2 single
// representations, C.3/C.4 three requests on one connection without and with Huffman coding,
// C.5/C.6 three responses with a 256-octet table and evictions), rows of the Huffman code of
// Appendix B, every symbol and random strings through the Huffman decoder, and hostile blocks
// (bad padding, EOS, bad indices, misplaced or oversized table updates, truncation, flipped bits),
// which must end in an HpackError code and never in another exception. The encoder is checked
// against C.2.2 and C.2.4, which use the same representations it writes.

import { describe, expect, it } from 'vitest';
import { encodeHeaderBlock, HpackDecoder, HpackError, HUFFMAN_CODES, type HpackErrorCode } from './hpack.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
type Fields = [string, string][];

function pairs(flat: readonly string[]): Fields {
  const out: Fields = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string]);
  return out;
}

function decode(d: HpackDecoder, block: Uint8Array): Fields {
  const out: string[] = [];
  d.decode(block, 0, block.length, out);
  return pairs(out);
}

function errorOf(d: HpackDecoder, block: Uint8Array): HpackErrorCode | 'no-error' {
  try {
    decode(d, block);
    return 'no-error';
  } catch (e) {
    if (e instanceof HpackError) return e.code;
    throw e;
  }
}

interface Step {
  readonly block: string;
  readonly fields: Fields;
  /** Dynamic table after the block, newest first, and its size. */
  readonly table: Fields;
  readonly size: number;
}

function runSequence(steps: readonly Step[], tableLimit: number): void {
  const d = new HpackDecoder(tableLimit);
  for (const s of steps) {
    expect(decode(d, hex(s.block))).toEqual(s.fields);
    expect(d.dynamicTable()).toEqual(s.table);
    expect(d.tableSize).toBe(s.size);
  }
}

// ---- Appendix C ----------------------------------------------------------------------------------

describe('RFC 7541 C.2: header field representations', () => {
  it('C.2.1 literal with indexing adds the field to the table', () => {
    runSequence([{ block: '400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572', fields: [['custom-key', 'custom-header']], table: [['custom-key', 'custom-header']], size: 55 }], 4096);
  });
  it('C.2.2 literal without indexing leaves the table empty', () => {
    runSequence([{ block: '040c 2f73 616d 706c 652f 7061 7468', fields: [[':path', '/sample/path']], table: [], size: 0 }], 4096);
  });
  it('C.2.3 literal never indexed leaves the table empty', () => {
    runSequence([{ block: '1008 7061 7373 776f 7264 0673 6563 7265 74', fields: [['password', 'secret']], table: [], size: 0 }], 4096);
  });
  it('C.2.4 indexed field from the static table', () => {
    runSequence([{ block: '82', fields: [[':method', 'GET']], table: [], size: 0 }], 4096);
  });
});

const REQUEST_FIELDS: Fields[] = [
  [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
  ],
  [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
    ['cache-control', 'no-cache'],
  ],
  [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':path', '/index.html'],
    [':authority', 'www.example.com'],
    ['custom-key', 'custom-value'],
  ],
];
const REQUEST_TABLES: { table: Fields; size: number }[] = [
  { table: [[':authority', 'www.example.com']], size: 57 },
  {
    table: [
      ['cache-control', 'no-cache'],
      [':authority', 'www.example.com'],
    ],
    size: 110,
  },
  {
    table: [
      ['custom-key', 'custom-value'],
      ['cache-control', 'no-cache'],
      [':authority', 'www.example.com'],
    ],
    size: 164,
  },
];

function requestSteps(blocks: readonly string[]): Step[] {
  return blocks.map((block, i) => ({ block, fields: REQUEST_FIELDS[i] as Fields, ...(REQUEST_TABLES[i] as { table: Fields; size: number }) }));
}

describe('RFC 7541 C.3 and C.4: requests on one connection', () => {
  it('C.3 without Huffman coding', () => {
    runSequence(
      requestSteps(['8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d', '8286 84be 5808 6e6f 2d63 6163 6865', '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65']),
      4096,
    );
  });
  it('C.4 with Huffman coding', () => {
    runSequence(requestSteps(['8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff', '8286 84be 5886 a8eb 1064 9cbf', '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf']), 4096);
  });
});

const DATE_21 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE_22 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const LOCATION = 'https://www.example.com';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const RESPONSE_FIELDS: Fields[] = [
  [
    [':status', '302'],
    ['cache-control', 'private'],
    ['date', DATE_21],
    ['location', LOCATION],
  ],
  [
    [':status', '307'],
    ['cache-control', 'private'],
    ['date', DATE_21],
    ['location', LOCATION],
  ],
  [
    [':status', '200'],
    ['cache-control', 'private'],
    ['date', DATE_22],
    ['location', LOCATION],
    ['content-encoding', 'gzip'],
    ['set-cookie', COOKIE],
  ],
];
const RESPONSE_TABLES: { table: Fields; size: number }[] = [
  {
    table: [
      ['location', LOCATION],
      ['date', DATE_21],
      ['cache-control', 'private'],
      [':status', '302'],
    ],
    size: 222,
  },
  {
    // (":status", "302") was evicted to make room for (":status", "307").
    table: [
      [':status', '307'],
      ['location', LOCATION],
      ['date', DATE_21],
      ['cache-control', 'private'],
    ],
    size: 222,
  },
  {
    table: [
      ['set-cookie', COOKIE],
      ['content-encoding', 'gzip'],
      ['date', DATE_22],
    ],
    size: 215,
  },
];

function responseSteps(blocks: readonly string[]): Step[] {
  return blocks.map((block, i) => ({ block, fields: RESPONSE_FIELDS[i] as Fields, ...(RESPONSE_TABLES[i] as { table: Fields; size: number }) }));
}

const C5 = [
  `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
   2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
   6c65 2e63 6f6d`,
  '4803 3330 37c1 c0bf',
  `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
   54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
   5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
   3d31`,
];
const C6 = [
  `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
   2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
  '4883 640e ffc1 c0bf',
  `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
   77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
   9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
];

describe('RFC 7541 C.5 and C.6: responses with SETTINGS_HEADER_TABLE_SIZE 256 (evictions)', () => {
  it('C.5 without Huffman coding', () => runSequence(responseSteps(C5), 256));
  it('C.6 with Huffman coding', () => runSequence(responseSteps(C6), 256));
});

// ---- Appendix B and Huffman decoding ---------------------------------------------------------

/** Huffman-encodes `bytes` with the code under test, padded with ones (§5.2). */
function huffmanEncode(bytes: Uint8Array, pad = 0xff, padBits?: number): Buffer {
  const bits: number[] = [];
  for (const b of bytes) {
    const { code, bits: n } = HUFFMAN_CODES[b] as { code: number; bits: number };
    for (let i = n - 1; i >= 0; i--) bits.push(Math.floor(code / 2 ** i) % 2);
  }
  const padding = padBits ?? (8 - (bits.length % 8)) % 8;
  for (let i = 0; i < padding; i++) bits.push((pad >> (7 - (i % 8))) & 1);
  const out = Buffer.alloc(Math.ceil(bits.length / 8));
  bits.forEach((bit, i) => {
    if (bit) out[i >> 3] = (out[i >> 3] as number) | (0x80 >> (i & 7));
  });
  return out;
}

/** §5.1 integer with a 7-bit prefix, the first octet's top bit set to `h`. */
function stringLength(n: number, h: number): number[] {
  if (n < 127) return [h | n];
  const out = [h | 127];
  for (n -= 127; n >= 128; n = Math.floor(n / 128)) out.push((n % 128) | 0x80);
  out.push(n);
  return out;
}

/** A header block of one literal-without-indexing field "x" whose value is `huffman` (H bit set). */
function blockWithHuffmanValue(huffman: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([0x00, 0x01, 0x78, ...stringLength(huffman.length, 0x80)]), huffman]);
}

function decodeHuffmanValue(huffman: Uint8Array): string {
  const [field] = decode(new HpackDecoder(), blockWithHuffmanValue(huffman));
  return (field as [string, string])[1];
}

describe('RFC 7541 Appendix B: the Huffman code', () => {
  it('matches rows of the table (code as hex aligned to the LSB, length in bits)', () => {
    const rows: [number, number, number][] = [
      [0, 0x1ff8, 13],
      [1, 0x7fffd8, 23],
      [9, 0xffffea, 24],
      [10, 0x3ffffffc, 30],
      [13, 0x3ffffffd, 30],
      [22, 0x3ffffffe, 30],
      [32, 0x14, 6], // ' '
      [38, 0xf8, 8], // '&'
      [47, 0x18, 6], // '/'
      [48, 0x0, 5], // '0'
      [58, 0x5c, 7], // ':'
      [60, 0x7ffc, 15], // '<'
      [88, 0xfc, 8], // 'X'
      [92, 0x7fff0, 19], // '\'
      [116, 0x9, 5], // 't'
      [123, 0x7ffe, 15], // '{'
      [127, 0xffffffc, 28],
      [128, 0xfffe6, 20],
      [153, 0x1fffdc, 21],
      [195, 0x7fff1, 19],
      [199, 0x1ffffec, 25],
      [203, 0x7ffffde, 27],
      [220, 0xffffffd, 28],
      [249, 0xffffffe, 28],
      [254, 0x7fffff0, 27],
      [255, 0x3ffffee, 26],
      [256, 0x3fffffff, 30], // EOS
    ];
    for (const [sym, code, bits] of rows) expect(HUFFMAN_CODES[sym], `symbol ${sym}`).toEqual({ code, bits });
  });

  it('decodes every symbol alone and all 256 in one string', () => {
    for (let b = 0; b < 256; b++) expect(decodeHuffmanValue(huffmanEncode(Uint8Array.of(b)))).toBe(String.fromCharCode(b));
    const all = Uint8Array.from({ length: 256 }, (_, i) => 255 - i);
    expect(decodeHuffmanValue(huffmanEncode(all))).toBe(Buffer.from(all).toString('latin1'));
  });

  it('round-trips random strings (property, fixed seed)', () => {
    let seed = 0x5eed;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let t = 0; t < 2000; t++) {
      const bytes = Uint8Array.from({ length: rand(40) }, () => (rand(4) === 0 ? rand(256) : 0x20 + rand(95)));
      expect(decodeHuffmanValue(huffmanEncode(bytes))).toBe(Buffer.from(bytes).toString('latin1'));
    }
  });

  it('refuses padding longer than 7 bits, padding that is not ones, and EOS (§5.2)', () => {
    const d = () => new HpackDecoder();
    // 'a' is 00011 (5 bits): 3 bits of padding are right, 11 are too many.
    expect(errorOf(d(), blockWithHuffmanValue(huffmanEncode(Uint8Array.of(0x61))))).toBe('no-error');
    expect(errorOf(d(), blockWithHuffmanValue(huffmanEncode(Uint8Array.of(0x61), 0xff, 11)))).toBe('BAD_HUFFMAN');
    // An empty string followed by a whole octet of ones: 8 bits of padding.
    expect(errorOf(d(), blockWithHuffmanValue(Uint8Array.of(0xff)))).toBe('BAD_HUFFMAN');
    // Padding of zeros decodes as the start of another code: not the EOS prefix.
    expect(errorOf(d(), blockWithHuffmanValue(huffmanEncode(Uint8Array.of(0x61), 0x00)))).toBe('BAD_HUFFMAN');
    // EOS (30 ones) inside a string.
    expect(errorOf(d(), blockWithHuffmanValue(Uint8Array.of(0xff, 0xff, 0xff, 0xff)))).toBe('BAD_HUFFMAN');
  });
});

// ---- hostile blocks --------------------------------------------------------------------------

describe('hostile header blocks end in an HpackError code', () => {
  it('index 0 and indices past the table (§2.3.3, §6.1)', () => {
    expect(errorOf(new HpackDecoder(), hex('80'))).toBe('BAD_INDEX');
    expect(errorOf(new HpackDecoder(), hex('be'))).toBe('BAD_INDEX'); // 62 with an empty dynamic table
    expect(errorOf(new HpackDecoder(), hex('bd'))).toBe('no-error'); // 61, the last static entry
    expect(errorOf(new HpackDecoder(), hex('7e 01 61'))).toBe('BAD_INDEX'); // name index 62
  });

  it('table size updates: only at the start of a block, never above the advertised limit (§4.2, §6.3)', () => {
    expect(errorOf(new HpackDecoder(4096), hex('3fe1 1f'))).toBe('no-error'); // 4096
    expect(errorOf(new HpackDecoder(4096), hex('3fe2 1f'))).toBe('TABLE_SIZE_TOO_LARGE'); // 4097
    expect(errorOf(new HpackDecoder(), hex('20 3fe1 1f 82'))).toBe('no-error'); // two updates, then a field
    expect(errorOf(new HpackDecoder(), hex('82 20'))).toBe('LATE_TABLE_SIZE_UPDATE');
  });

  it('a size update evicts; an entry larger than the table empties it (§4.3, §4.4)', () => {
    const d = new HpackDecoder(256);
    decode(d, hex(C5[0] as string));
    expect(d.tableSize).toBe(222);
    decode(d, hex('3f21')); // size 64: only entries that fit remain, newest first
    expect(d.dynamicTable()).toEqual([['location', LOCATION]]);
    decode(d, hex('20'));
    expect(d.dynamicTable()).toEqual([]);
    const d2 = new HpackDecoder(100);
    decode(d2, hex('82 4103 6162 63')); // :authority: abc (45 octets)
    expect(d2.tableSize).toBe(45);
    decode(d2, Buffer.concat([hex('41 46'), Buffer.alloc(70, 0x61)])); // 112 octets > 100
    expect(d2.dynamicTable()).toEqual([]);
  });

  it('integers beyond the decoder bound, and integers that never end (§5.1)', () => {
    expect(errorOf(new HpackDecoder(), hex('ff ff ff ff ff 0f'))).toBe('INTEGER_TOO_LARGE');
    expect(errorOf(new HpackDecoder(), hex('ff 80 80 80 80 80 80 01'))).toBe('INTEGER_TOO_LARGE');
    expect(errorOf(new HpackDecoder(), hex('ff 80'))).toBe('TRUNCATED');
    expect(errorOf(new HpackDecoder(), hex('00 7f ff ff ff 07'))).toBe('TRUNCATED'); // a huge name length, no octets
  });

  /** A decoder in the state the C.5 or C.6 sequence leaves before block k, and block k. */
  const primed = function* (): Generator<[() => HpackDecoder, Buffer]> {
    for (const seq of [C5, C6]) {
      for (let k = 0; k < seq.length; k++) {
        const before = seq.slice(0, k).map(hex);
        const fresh = () => {
          const d = new HpackDecoder(256);
          for (const b of before) decode(d, b);
          return d;
        };
        yield [fresh, hex(seq[k] as string)];
      }
    }
  };

  it('any truncation of the Appendix C response blocks decodes a prefix or fails with TRUNCATED', () => {
    for (const [fresh, block] of primed()) {
      for (let n = 0; n < block.length; n++) expect(['no-error', 'TRUNCATED']).toContain(errorOf(fresh(), block.subarray(0, n)));
    }
  });

  it('any flipped bit in the Appendix C response blocks decodes or fails with a code, never another exception', () => {
    for (const [fresh, block] of primed()) {
      for (let i = 0; i < block.length; i++) {
        for (let bit = 0; bit < 8; bit++) {
          const mutated = Buffer.from(block);
          mutated[i] = (mutated[i] as number) ^ (1 << bit);
          expect(typeof errorOf(fresh(), mutated)).toBe('string');
        }
      }
    }
  });
});

// ---- the encoder ------------------------------------------------------------------------------

describe('the request encoder', () => {
  it('writes the representations of C.2.2 (literal without indexing, static name) and C.2.4 (indexed)', () => {
    expect(encodeHeaderBlock([[':path', '/sample/path']]).toString('hex')).toBe(hex('040c 2f73 616d 706c 652f 7061 7468').toString('hex'));
    expect(encodeHeaderBlock([[':method', 'GET']]).toString('hex')).toBe('82');
  });

  it('round-trips through the decoder and never touches the dynamic table', () => {
    const fields: Fields = [
      [':method', 'POST'],
      [':scheme', 'http'],
      [':path', '/openkey.v1.SignService/Sign'],
      [':authority', '127.0.0.1:50051'],
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
      ['openkey-session', `1.ses_${'0'.repeat(32)}.7.${'A'.repeat(43)}`],
      ['x-long', 'v'.repeat(300)], // a length that needs a continuation octet
    ];
    const d = new HpackDecoder();
    expect(decode(d, encodeHeaderBlock(fields))).toEqual(fields);
    expect(d.tableSize).toBe(0);
  });

  it('refuses names HTTP/2 does not allow and values with control octets', () => {
    expect(() => encodeHeaderBlock([['Content-Type', 'x']])).toThrow();
    expect(() => encodeHeaderBlock([['x', 'a\r\nb']])).toThrow();
  });
});
