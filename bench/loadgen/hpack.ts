// HPACK (RFC 7541) for the lean HTTP/2 load generator. The decoder reads what a server sends:
// integers (§5.1), raw or Huffman-coded string literals (§5.2, Appendix B), the static table
// (Appendix A) and the dynamic table with size updates and eviction (§4, §6.3). The encoder writes
// what the generator sends, which needs none of that state: each field is a static-table index or
// a literal that is never added to the table (§6.1, §6.2.2), its strings raw, not Huffman-coded.

/** Why a header block could not be decoded (the HTTP/2 connection error is COMPRESSION_ERROR). */
export type HpackErrorCode =
  | 'TRUNCATED' // the block ends inside a representation
  | 'INTEGER_TOO_LARGE' // an integer beyond MAX_INTEGER (§5.1 leaves the limit to the decoder)
  | 'BAD_INDEX' // index 0, or past the end of the static + dynamic table (§2.3.3)
  | 'BAD_HUFFMAN' // EOS in a string, or padding that is longer than 7 bits or not all ones (§5.2)
  | 'TABLE_SIZE_TOO_LARGE' // a size update above the limit we advertised (§6.3)
  | 'LATE_TABLE_SIZE_UPDATE'; // a size update after the first field of a block (§4.2)

export class HpackError extends Error {
  constructor(readonly code: HpackErrorCode) {
    super(`HPACK: ${code}`);
    this.name = 'HpackError';
  }
}

function fail(code: HpackErrorCode): never {
  throw new HpackError(code);
}

/** Largest integer the decoder accepts: bounds string lengths, indices and table sizes. */
const MAX_INTEGER = 0x7fffffff;
/** Per-entry overhead counted in the dynamic table's size (§4.1). */
const ENTRY_OVERHEAD = 32;

/** RFC 7541 Appendix A, indices 1…61. */
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];
const STATIC_COUNT = STATIC_TABLE.length;

// ---- Huffman code (Appendix B) -----------------------------------------------------------------

/**
 * Code length in bits of each symbol 0…255 and EOS (256), from RFC 7541 Appendix B. The code is
 * canonical — within one length, codes are consecutive in symbol order, and each length starts
 * where the previous one ended, shifted left — so the lengths alone determine every code.
 */
const HUFFMAN_LENGTHS: readonly number[] = [
  // 0x00–0x1f: control characters
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  // ' ' … '/'
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  // '0' … '?'
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  // '@' … 'O'
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  // 'P' … '_'
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  // '`' … 'o'
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  // 'p' … DEL
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  // 0x80–0xff
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  // EOS
  30,
];
const EOS = 256;

/** The Huffman code of each symbol (0…256), as (code, bit length); code aligned to the LSB. */
export const HUFFMAN_CODES: readonly { readonly code: number; readonly bits: number }[] = (() => {
  if (HUFFMAN_LENGTHS.length !== 257) throw new Error('Huffman table: 257 lengths expected');
  const order = HUFFMAN_LENGTHS.map((bits, sym) => ({ sym, bits })).sort((a, b) => a.bits - b.bits || a.sym - b.sym);
  const codes: { code: number; bits: number }[] = new Array(257);
  let code = 0;
  let bits = order[0]?.bits ?? 0;
  let kraft = 0; // Σ 2^-len, in units of 2^-30: exactly 2^30 for a complete prefix code
  for (const o of order) {
    code *= 2 ** (o.bits - bits);
    bits = o.bits;
    if (code >= 2 ** bits) throw new Error('Huffman table: lengths do not form a prefix code');
    codes[o.sym] = { code, bits };
    kraft += 2 ** (30 - bits);
    code++;
  }
  if (kraft !== 2 ** 30) throw new Error('Huffman table: the code is not complete');
  return codes;
})();

// The decoder walks the code tree four bits at a time: state = an internal node (256 of them for
// 257 leaves, the root is 0), and for each state and nibble a precomputed transition gives the
// next state and the symbol completed on the way, if any. Every code is at least 5 bits long, so
// one nibble completes at most one symbol.
const H_EMIT = 1 << 17;
const H_FAIL = 1 << 18;
const { transitions: HUFFMAN_STEP, accepting: HUFFMAN_ACCEPT } = (() => {
  // Tree: child[node * 2 + bit] = internal node id (≥ 0) or −(symbol + 1) for a leaf.
  const child = new Int32Array(256 * 2).fill(0x7fffffff);
  let nodes = 1;
  for (let sym = 0; sym <= EOS; sym++) {
    const { code, bits } = HUFFMAN_CODES[sym] as { code: number; bits: number };
    let node = 0;
    for (let i = bits - 1; i >= 0; i--) {
      const bit = Math.floor(code / 2 ** i) % 2;
      const slot = node * 2 + bit;
      if (i === 0) {
        child[slot] = -(sym + 1);
      } else {
        if (child[slot] === 0x7fffffff) child[slot] = nodes++;
        node = child[slot] as number;
      }
    }
  }
  if (nodes !== 256) throw new Error('Huffman table: 256 internal nodes expected');
  const transitions = new Int32Array(256 * 16);
  for (let state = 0; state < 256; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let out = 0;
      for (let i = 3; i >= 0; i--) {
        const next = child[node * 2 + ((nibble >> i) & 1)] as number;
        if (next >= 0) {
          node = next;
          continue;
        }
        const sym = -next - 1;
        out = sym === EOS ? H_FAIL : H_EMIT | (sym << 8);
        node = 0;
        if (sym === EOS) break;
      }
      transitions[state * 16 + nibble] = out | node;
    }
  }
  // A string may end at the root, or after 1…7 one-bits from it (a prefix of EOS, §5.2).
  const accepting = new Uint8Array(256);
  accepting[0] = 1;
  let node = 0;
  for (let i = 0; i < 7; i++) {
    node = child[node * 2 + 1] as number;
    accepting[node] = 1;
  }
  return { transitions, accepting };
})();

// ---- decoder -----------------------------------------------------------------------------------

/**
 * One HTTP/2 connection's HPACK decoding context. Header blocks must be decoded in the order they
 * arrive, every one of them (even for streams nobody waits for), or the dynamic table goes wrong.
 */
export class HpackDecoder {
  // The dynamic table as a ring, newest entry at `head`; capacity is a power of two.
  private names: string[] = new Array<string>(16);
  private values: string[] = new Array<string>(16);
  private sizes = new Int32Array(16);
  private head = 0;
  private count = 0;
  private used = 0;
  /** Current maximum size, as last set by a size update (§4.2). */
  private maxSize: number;
  /** Huffman output, grown as needed. */
  private scratch = Buffer.allocUnsafe(256);
  private pos = 0;

  /** `limit`: SETTINGS_HEADER_TABLE_SIZE as we advertised it, the most a size update may ask. */
  constructor(private readonly limit = 4096) {
    this.maxSize = limit;
  }

  /** Size of the dynamic table in octets (§4.1). */
  get tableSize(): number {
    return this.used;
  }

  /** The dynamic table, newest entry first (index 62 first). */
  dynamicTable(): [string, string][] {
    const out: [string, string][] = [];
    for (let i = 0; i < this.count; i++) {
      const k = (this.head - i) & (this.names.length - 1);
      out.push([this.names[k] as string, this.values[k] as string]);
    }
    return out;
  }

  /**
   * Decodes the header block `block[start, end)` and appends its fields to `out` as name, value,
   * name, value, … Throws HpackError; after an error the context is unusable (the connection
   * must end), as RFC 9113 §4.3 requires.
   */
  decode(block: Uint8Array, start: number, end: number, out: string[]): void {
    const buf = Buffer.isBuffer(block) ? block : Buffer.from(block.buffer, block.byteOffset, block.byteLength);
    this.pos = start;
    let sizeUpdateAllowed = true;
    while (this.pos < end) {
      const b = buf[this.pos] as number;
      if (b & 0x80) {
        // §6.1 indexed header field
        const index = this.integer(buf, end, 7);
        out.push(this.nameAt(index), this.valueAt(index));
      } else if (b & 0x40) {
        // §6.2.1 literal with incremental indexing
        const index = this.integer(buf, end, 6);
        const name = index === 0 ? this.string(buf, end) : this.nameAt(index);
        const value = this.string(buf, end);
        out.push(name, value);
        this.insert(name, value);
      } else if (b & 0x20) {
        // §6.3 dynamic table size update: only before the block's first field (§4.2)
        if (!sizeUpdateAllowed) fail('LATE_TABLE_SIZE_UPDATE');
        const size = this.integer(buf, end, 5);
        if (size > this.limit) fail('TABLE_SIZE_TOO_LARGE');
        this.maxSize = size;
        this.evictTo(size);
        continue;
      } else {
        // §6.2.2 literal without indexing (0000xxxx), §6.2.3 never indexed (0001xxxx)
        const index = this.integer(buf, end, 4);
        const name = index === 0 ? this.string(buf, end) : this.nameAt(index);
        out.push(name, this.string(buf, end));
      }
      sizeUpdateAllowed = false;
    }
  }

  /** §5.1: an integer with an N-bit prefix starting at this.pos. */
  private integer(buf: Buffer, end: number, prefixBits: number): number {
    const max = (1 << prefixBits) - 1;
    let value = (buf[this.pos++] as number) & max;
    if (value < max) return value;
    let shift = 0;
    for (;;) {
      if (this.pos >= end) fail('TRUNCATED');
      const b = buf[this.pos++] as number;
      value += (b & 0x7f) * 2 ** shift;
      if (value > MAX_INTEGER || shift > 28) fail('INTEGER_TOO_LARGE');
      if ((b & 0x80) === 0) return value;
      shift += 7;
    }
  }

  /** §5.2: a string literal, raw or Huffman-coded, as latin1 (one char per octet). */
  private string(buf: Buffer, end: number): string {
    if (this.pos >= end) fail('TRUNCATED');
    const huffman = ((buf[this.pos] as number) & 0x80) !== 0;
    const length = this.integer(buf, end, 7);
    const from = this.pos;
    if (length > end - from) fail('TRUNCATED');
    this.pos = from + length;
    return huffman ? this.huffman(buf, from, from + length) : buf.toString('latin1', from, from + length);
  }

  private huffman(buf: Buffer, from: number, to: number): string {
    // Codes are ≥ 5 bits: at most 8/5 symbols per octet.
    const cap = Math.ceil(((to - from) * 8) / 5);
    if (this.scratch.length < cap) this.scratch = Buffer.allocUnsafe(Math.max(cap, 2 * this.scratch.length));
    const out = this.scratch;
    let n = 0;
    let state = 0;
    for (let i = from; i < to; i++) {
      const b = buf[i] as number;
      let t = HUFFMAN_STEP[(state << 4) | (b >> 4)] as number;
      if (t & H_FAIL) fail('BAD_HUFFMAN');
      if (t & H_EMIT) out[n++] = (t >> 8) & 0xff;
      state = t & 0xff;
      t = HUFFMAN_STEP[(state << 4) | (b & 0x0f)] as number;
      if (t & H_FAIL) fail('BAD_HUFFMAN');
      if (t & H_EMIT) out[n++] = (t >> 8) & 0xff;
      state = t & 0xff;
    }
    if (HUFFMAN_ACCEPT[state] !== 1) fail('BAD_HUFFMAN');
    return out.toString('latin1', 0, n);
  }

  private nameAt(index: number): string {
    if (index >= 1 && index <= STATIC_COUNT) return (STATIC_TABLE[index - 1] as readonly [string, string])[0];
    return this.names[this.dynamicSlot(index)] as string;
  }

  private valueAt(index: number): string {
    if (index >= 1 && index <= STATIC_COUNT) return (STATIC_TABLE[index - 1] as readonly [string, string])[1];
    return this.values[this.dynamicSlot(index)] as string;
  }

  private dynamicSlot(index: number): number {
    const i = index - STATIC_COUNT - 1;
    if (index < 1 || i >= this.count) fail('BAD_INDEX');
    return (this.head - i) & (this.names.length - 1);
  }

  /** §4.4: evict from the oldest end until the entry fits; an entry larger than the table empties it. */
  private insert(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    if (size > this.maxSize) {
      this.evictTo(0);
      return;
    }
    this.evictTo(this.maxSize - size);
    if (this.count === this.names.length) this.grow();
    const mask = this.names.length - 1;
    this.head = (this.head + 1) & mask;
    this.names[this.head] = name;
    this.values[this.head] = value;
    this.sizes[this.head] = size;
    this.count++;
    this.used += size;
  }

  private evictTo(target: number): void {
    const mask = this.names.length - 1;
    while (this.used > target) {
      const oldest = (this.head - this.count + 1) & mask;
      this.used -= this.sizes[oldest] as number;
      this.names[oldest] = '';
      this.values[oldest] = '';
      this.count--;
    }
  }

  private grow(): void {
    const cap = this.names.length * 2;
    const names = new Array<string>(cap);
    const values = new Array<string>(cap);
    const sizes = new Int32Array(cap);
    // Oldest first at 0 … newest at count − 1.
    for (let i = 0; i < this.count; i++) {
      const k = (this.head - this.count + 1 + i) & (this.names.length - 1);
      names[i] = this.names[k] as string;
      values[i] = this.values[k] as string;
      sizes[i] = this.sizes[k] as number;
    }
    this.names = names;
    this.values = values;
    this.sizes = sizes;
    this.head = this.count - 1;
  }
}

// ---- encoder -----------------------------------------------------------------------------------

const FIELD_VALUE_RE = /^[\t\x20-\x7e\x80-\xff]*$/;
const FIELD_NAME_RE = /^:?[!#$%&'*+\-.^_`|~0-9a-z]+$/;

function staticIndex(name: string, value: string): { full: number; name: number } {
  let byName = 0;
  for (let i = 0; i < STATIC_COUNT; i++) {
    const [n, v] = STATIC_TABLE[i] as readonly [string, string];
    if (n !== name) continue;
    if (v === value) return { full: i + 1, name: i + 1 };
    if (byName === 0) byName = i + 1;
  }
  return { full: 0, name: byName };
}

function integerLength(value: number, prefixBits: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) return 1;
  let n = 2;
  for (let v = value - max; v >= 0x80; v = Math.floor(v / 128)) n++;
  return n;
}

function writeInteger(out: Buffer, at: number, firstByte: number, value: number, prefixBits: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out[at] = firstByte | value;
    return at + 1;
  }
  out[at++] = firstByte | max;
  let v = value - max;
  while (v >= 0x80) {
    out[at++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  out[at] = v;
  return at + 1;
}

/** Octets `encodeField` writes for one field. Throws on a name or value HTTP/2 does not allow. */
export function encodedFieldLength(name: string, value: string): number {
  if (!FIELD_NAME_RE.test(name)) throw new Error(`not a lower-case HTTP/2 field name: ${JSON.stringify(name)}`);
  if (!FIELD_VALUE_RE.test(value)) throw new Error(`field ${name}: value has octets HTTP does not allow`);
  const ix = staticIndex(name, value);
  if (ix.full !== 0) return integerLength(ix.full, 7);
  const nameLength = ix.name !== 0 ? integerLength(ix.name, 4) : 1 + integerLength(name.length, 7) + name.length;
  return nameLength + integerLength(value.length, 7) + value.length;
}

/**
 * Writes one field at `at` and returns the offset after it: an indexed field when the static
 * table holds the pair (§6.1), else a literal without indexing (§6.2.2), with the static table's
 * name index when it has the name; strings raw. The server's dynamic table is never touched.
 */
export function encodeField(out: Buffer, at: number, name: string, value: string): number {
  const ix = staticIndex(name, value);
  if (ix.full !== 0) return writeInteger(out, at, 0x80, ix.full, 7);
  let p: number;
  if (ix.name !== 0) {
    p = writeInteger(out, at, 0x00, ix.name, 4);
  } else {
    out[at] = 0x00;
    p = writeInteger(out, at + 1, 0x00, name.length, 7);
    p += out.write(name, p, 'latin1');
  }
  p = writeInteger(out, p, 0x00, value.length, 7);
  return p + out.write(value, p, 'latin1');
}

/** A whole header block of `fields` in order (see encodeField). */
export function encodeHeaderBlock(fields: readonly (readonly [string, string])[]): Buffer {
  const out = Buffer.allocUnsafe(fields.reduce((n, [name, value]) => n + encodedFieldLength(name, value), 0));
  let at = 0;
  for (const [name, value] of fields) at = encodeField(out, at, name, value);
  return out;
}
