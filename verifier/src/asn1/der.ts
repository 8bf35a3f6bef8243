// A small bounded DER reader (X.690 §8 and §10), enough for X.509 certificates, CRLs and Intel's
// PCK extension. Single-byte tags only, definite minimal lengths only, every read checked against
// the enclosing element, and every element exposes its exact encoded bytes (for signatures).

import { VerifierError, type VerifierErrorCode } from '../errors.ts';

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Context-specific constructed tag `[n]` (EXPLICIT or constructed IMPLICIT). */
export function contextTag(n: number): number {
  return 0xa0 | n;
}

/** Nesting bound: X.509 structures are shallow; this stops stack-exhaustion inputs. */
const MAX_DEPTH = 32;

export interface DerElement {
  readonly tag: number;
  /** The whole TLV. */
  readonly encoded: Uint8Array;
  /** The V of the TLV. */
  readonly content: Uint8Array;
}

/** Sequential reader over the content of one constructed element (or over a whole buffer). */
export class DerReader {
  readonly #buf: Uint8Array;
  #pos = 0;
  readonly #code: VerifierErrorCode;
  readonly #depth: number;

  constructor(buf: Uint8Array, code: VerifierErrorCode, depth = 0) {
    if (depth > MAX_DEPTH) throw new VerifierError(code, 'DER nesting too deep');
    this.#buf = buf;
    this.#code = code;
    this.#depth = depth;
  }

  get done(): boolean {
    return this.#pos >= this.#buf.length;
  }

  fail(detail: string): never {
    throw new VerifierError(this.#code, detail);
  }

  peekTag(): number | undefined {
    return this.done ? undefined : this.#buf[this.#pos];
  }

  /** Reads the next TLV, whatever its tag. */
  any(): DerElement {
    const start = this.#pos;
    const buf = this.#buf;
    if (start + 2 > buf.length) this.fail('truncated DER header');
    const tag = buf[start]!;
    if ((tag & 0x1f) === 0x1f) this.fail('multi-byte DER tags are not supported');
    let lenByte = buf[start + 1]!;
    let pos = start + 2;
    let length: number;
    if (lenByte < 0x80) {
      length = lenByte;
    } else {
      const n = lenByte & 0x7f;
      if (n === 0) this.fail('indefinite length is not DER');
      if (n > 4) this.fail('DER length too large');
      if (pos + n > buf.length) this.fail('truncated DER length');
      length = 0;
      for (let i = 0; i < n; i++) {
        lenByte = buf[pos + i]!;
        if (i === 0 && lenByte === 0) this.fail('non-minimal DER length');
        length = length * 256 + lenByte;
      }
      if (length < 0x80) this.fail('non-minimal DER length');
      pos += n;
    }
    if (length > buf.length - pos) this.fail('truncated DER value');
    this.#pos = pos + length;
    return { tag, encoded: buf.subarray(start, pos + length), content: buf.subarray(pos, pos + length) };
  }

  /** Reads the next TLV and requires `tag`. */
  expect(tag: number, what: string): DerElement {
    const el = this.any();
    if (el.tag !== tag) this.fail(`expected ${what}`);
    return el;
  }

  /** Reads the next element only when its tag is `tag`. */
  optional(tag: number): DerElement | undefined {
    return this.peekTag() === tag ? this.any() : undefined;
  }

  /** A reader over the content of a constructed element. */
  enter(el: DerElement): DerReader {
    if ((el.tag & 0x20) === 0) this.fail('not a constructed element');
    return new DerReader(el.content, this.#code, this.#depth + 1);
  }

  sequence(what: string): DerReader {
    return this.enter(this.expect(TAG.SEQUENCE, what));
  }

  end(what: string): void {
    if (!this.done) this.fail(`unexpected data after ${what}`);
  }

  get code(): VerifierErrorCode {
    return this.#code;
  }
}

/** Opens a buffer that must hold exactly one element with `tag`. */
export function derRoot(buf: Uint8Array, tag: number, code: VerifierErrorCode, what: string): DerElement {
  const r = new DerReader(buf, code);
  const el = r.expect(tag, what);
  r.end(what);
  return el;
}

/** Content of a DER INTEGER, checked minimal; `allowNegative` false rejects a set sign bit. */
export function integerBytes(el: DerElement, code: VerifierErrorCode, allowNegative = false): Uint8Array {
  const c = el.content;
  if (el.tag !== TAG.INTEGER && el.tag !== TAG.ENUMERATED) throw new VerifierError(code, 'expected INTEGER');
  if (c.length === 0) throw new VerifierError(code, 'empty INTEGER');
  if (c.length > 1 && ((c[0] === 0 && (c[1]! & 0x80) === 0) || (c[0] === 0xff && (c[1]! & 0x80) !== 0))) {
    throw new VerifierError(code, 'non-minimal INTEGER');
  }
  if (!allowNegative && (c[0]! & 0x80) !== 0) throw new VerifierError(code, 'negative INTEGER');
  return c;
}

/** A small non-negative INTEGER (or ENUMERATED) as a number, at most `max`. */
export function smallInteger(el: DerElement, code: VerifierErrorCode, max: number): number {
  const c = integerBytes(el, code);
  if (c.length > 4) throw new VerifierError(code, 'INTEGER too large');
  let v = 0;
  for (const b of c) v = v * 256 + b;
  if (v > max) throw new VerifierError(code, 'INTEGER out of range');
  return v;
}

/** Dotted text of an OBJECT IDENTIFIER (X.690 §8.19). */
export function oidText(el: DerElement, code: VerifierErrorCode): string {
  if (el.tag !== TAG.OID) throw new VerifierError(code, 'expected OID');
  const c = el.content;
  if (c.length === 0 || c.length > 64) throw new VerifierError(code, 'bad OID length');
  const arcs: number[] = [];
  let value = 0;
  let started = false;
  for (let i = 0; i < c.length; i++) {
    const b = c[i]!;
    if (!started && b === 0x80) throw new VerifierError(code, 'non-minimal OID arc');
    started = true;
    value = value * 128 + (b & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 256) throw new VerifierError(code, 'OID arc too large');
    if ((b & 0x80) === 0) {
      arcs.push(value);
      value = 0;
      started = false;
    } else if (i === c.length - 1) {
      throw new VerifierError(code, 'truncated OID');
    }
  }
  const first = arcs[0]!;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}

/** BIT STRING content with zero unused bits. */
export function bitStringBytes(el: DerElement, code: VerifierErrorCode): Uint8Array {
  if (el.tag !== TAG.BIT_STRING || el.content.length < 1) throw new VerifierError(code, 'expected BIT STRING');
  if (el.content[0] !== 0) throw new VerifierError(code, 'BIT STRING with unused bits');
  return el.content.subarray(1);
}

/** Named-bit BIT STRING (e.g. keyUsage) as a bit test function; bit 0 is the first bit. */
export function namedBits(el: DerElement, code: VerifierErrorCode): (bit: number) => boolean {
  if (el.tag !== TAG.BIT_STRING || el.content.length < 1) throw new VerifierError(code, 'expected BIT STRING');
  const unused = el.content[0]!;
  if (unused > 7 || (el.content.length === 1 && unused !== 0)) throw new VerifierError(code, 'bad BIT STRING');
  const bits = el.content.subarray(1);
  return (bit: number) => {
    const byte = bits[bit >> 3];
    return byte !== undefined && (byte & (0x80 >> (bit & 7))) !== 0;
  };
}

export function booleanValue(el: DerElement, code: VerifierErrorCode): boolean {
  if (el.tag !== TAG.BOOLEAN || el.content.length !== 1) throw new VerifierError(code, 'expected BOOLEAN');
  const b = el.content[0];
  if (b === 0) return false;
  if (b === 0xff) return true;
  throw new VerifierError(code, 'non-DER BOOLEAN');
}

function digits(s: string, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return Number.NaN;
    v = v * 10 + c;
  }
  return v;
}

/** UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ) as Unix seconds (RFC 5280 §4.1.2.5). */
export function timeValue(el: DerElement, code: VerifierErrorCode): number {
  let s = '';
  for (const b of el.content) s += String.fromCharCode(b);
  let year: number;
  let rest: number;
  if (el.tag === TAG.UTC_TIME && s.length === 13) {
    const yy = digits(s, 0, 2);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    rest = 2;
  } else if (el.tag === TAG.GENERALIZED_TIME && s.length === 15) {
    year = digits(s, 0, 4);
    rest = 4;
  } else {
    throw new VerifierError(code, 'bad time encoding');
  }
  if (s[s.length - 1] !== 'Z') throw new VerifierError(code, 'time is not UTC');
  const month = digits(s, rest, 2);
  const day = digits(s, rest + 2, 2);
  const hour = digits(s, rest + 4, 2);
  const minute = digits(s, rest + 6, 2);
  const second = digits(s, rest + 8, 2);
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(ms);
  if (
    !Number.isFinite(ms) ||
    check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== month - 1 ||
    check.getUTCDate() !== day ||
    check.getUTCHours() !== hour ||
    check.getUTCMinutes() !== minute ||
    check.getUTCSeconds() !== second
  ) {
    throw new VerifierError(code, 'invalid calendar time');
  }
  return ms / 1000;
}

export function readTime(r: DerReader, what: string): number {
  const tag = r.peekTag();
  if (tag !== TAG.UTC_TIME && tag !== TAG.GENERALIZED_TIME) r.fail(`expected time for ${what}`);
  return timeValue(r.any(), r.code);
}
