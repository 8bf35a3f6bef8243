// Test-only DER encoder (X.690) for building certificates, CRLs and extensions of a mock Intel PKI.
// Not part of the library: the verifier only ever reads DER.

export function tlv(tag: number, content: Uint8Array): Uint8Array {
  const len = content.length;
  let header: number[];
  if (len < 0x80) header = [tag, len];
  else if (len < 0x100) header = [tag, 0x81, len];
  else if (len < 0x10000) header = [tag, 0x82, len >> 8, len & 0xff];
  else header = [tag, 0x83, len >> 16, (len >> 8) & 0xff, len & 0xff];
  const out = new Uint8Array(header.length + len);
  out.set(header, 0);
  out.set(content, header.length);
  return out;
}

export function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export const seq = (...items: Uint8Array[]): Uint8Array => tlv(0x30, cat(...items));
export const set = (...items: Uint8Array[]): Uint8Array => tlv(0x31, cat(...items));
export const octets = (b: Uint8Array): Uint8Array => tlv(0x04, b);
export const explicit = (n: number, inner: Uint8Array): Uint8Array => tlv(0xa0 | n, inner);
export const bool = (v: boolean): Uint8Array => tlv(0x01, new Uint8Array([v ? 0xff : 0]));
export const utf8String = (s: string): Uint8Array => tlv(0x0c, new TextEncoder().encode(s));
export const bitString = (b: Uint8Array, unused = 0): Uint8Array => tlv(0x03, cat(new Uint8Array([unused]), b));

/** Non-negative INTEGER from a number or big-endian bytes (minimal encoding). */
export function int(v: number | Uint8Array, tag = 0x02): Uint8Array {
  let bytes: number[];
  if (typeof v === 'number') {
    bytes = [];
    let n = v;
    do {
      bytes.unshift(n & 0xff);
      n = Math.floor(n / 256);
    } while (n > 0);
  } else {
    bytes = [...v];
    while (bytes.length > 1 && bytes[0] === 0) bytes.shift();
  }
  if ((bytes[0]! & 0x80) !== 0) bytes.unshift(0);
  return tlv(tag, new Uint8Array(bytes));
}

export const enumerated = (v: number): Uint8Array => int(v, 0x0a);

export function oid(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map(Number);
  const out: number[] = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [];
    let n = arc;
    do {
      chunk.unshift(n & 0x7f);
      n = Math.floor(n / 128);
    } while (n > 0);
    for (let i = 0; i < chunk.length - 1; i++) chunk[i]! |= 0x80;
    out.push(...chunk);
  }
  return tlv(0x06, new Uint8Array(out));
}

/** UTCTime before 2050, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5). */
export function time(unixSeconds: number): Uint8Array {
  const d = new Date(unixSeconds * 1000);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  const year = d.getUTCFullYear();
  if (year < 2050) return tlv(0x17, new TextEncoder().encode(`${p(year % 100)}${rest}`));
  return tlv(0x18, new TextEncoder().encode(`${p(year, 4)}${rest}`));
}
