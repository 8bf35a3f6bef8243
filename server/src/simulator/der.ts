// A minimal DER writer (X.690 §8, §10) for the handful of universal types in the Intel SGX PCK
// extension (reference §4.6): SEQUENCE, OBJECT IDENTIFIER, INTEGER, OCTET STRING, ENUMERATED,
// BOOLEAN. Everything else in the mock PKI goes through @peculiar/asn1-x509.

import { concatBytes } from '../core/bytes.ts';

function length(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

function tlv(tag: number, content: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(tag), length(content.length), content);
}

export function derSequence(...items: Uint8Array[]): Uint8Array {
  return tlv(0x30, concatBytes(...items));
}

export function derOctetString(b: Uint8Array): Uint8Array {
  return tlv(0x04, b);
}

export function derBoolean(v: boolean): Uint8Array {
  return tlv(0x01, Uint8Array.of(v ? 0xff : 0x00));
}

/** Minimal two's-complement encoding of a non-negative integer (X.690 §8.3). */
function unsignedContent(v: number): Uint8Array {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError('DER integer must be a non-negative safe integer');
  const bytes: number[] = [];
  for (let x = v; x > 0; x = Math.floor(x / 256)) bytes.unshift(x & 0xff);
  if (bytes.length === 0 || (bytes[0] as number) & 0x80) bytes.unshift(0);
  return Uint8Array.from(bytes);
}

export function derInteger(v: number): Uint8Array {
  return tlv(0x02, unsignedContent(v));
}

export function derEnumerated(v: number): Uint8Array {
  return tlv(0x0a, unsignedContent(v));
}

/** Dotted OID to DER (X.690 §8.19). */
export function derOid(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map((s) => {
    if (!/^\d+$/.test(s)) throw new RangeError(`bad OID arc: ${s}`);
    return Number(s);
  });
  const [a, b, ...rest] = arcs;
  if (a === undefined || b === undefined || a > 2 || (a < 2 && b > 39)) throw new RangeError(`bad OID: ${dotted}`);
  const out: number[] = [];
  for (const arc of [a * 40 + b, ...rest]) {
    const group: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) group.unshift(0x80 | (v & 0x7f));
    out.push(...group);
  }
  return tlv(0x06, Uint8Array.from(out));
}
