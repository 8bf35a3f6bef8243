// Byte helpers shared by the parsers and checks: strict hex, equality, concatenation, UTF-8.
// Hex decoding is strict (even length, hex digits only) and reports the caller's error code, so a
// malformed field in a quote, collateral or policy fails with the code of the thing being read.

import { VerifierError, type VerifierErrorCode } from './errors.ts';

const HEX_DIGITS = '0123456789abcdef';

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += HEX_DIGITS[b >> 4]! + HEX_DIGITS[b & 15]!;
  return out;
}

function nibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  if (c >= 97 && c <= 102) return c - 87; // a-f
  if (c >= 65 && c <= 70) return c - 55; // A-F
  return -1;
}

/**
 * Decodes hex (either case, no prefix). `expectedLength` (bytes) is checked when given.
 * Throws `code` on any deviation.
 */
export function fromHex(hex: string, code: VerifierErrorCode, expectedLength?: number): Uint8Array {
  if (hex.length % 2 !== 0) throw new VerifierError(code, 'odd-length hex');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = nibble(hex.charCodeAt(2 * i));
    const lo = nibble(hex.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) throw new VerifierError(code, 'non-hex character');
    out[i] = (hi << 4) | lo;
  }
  if (expectedLength !== undefined && out.length !== expectedLength) {
    throw new VerifierError(code, `expected ${expectedLength} bytes, got ${out.length}`);
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Equality whose running time depends only on the lengths (for values a caller may treat as secret). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function isAllZero(a: Uint8Array): boolean {
  for (const b of a) if (b !== 0) return false;
  return true;
}

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const encoder = new TextEncoder();
export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

const strictDecoder = new TextDecoder('utf-8', { fatal: true });
/** Decodes UTF-8, throwing `code` on invalid sequences. */
export function fromUtf8(bytes: Uint8Array, code: VerifierErrorCode): string {
  try {
    return strictDecoder.decode(bytes);
  } catch (e: unknown) {
    throw new VerifierError(code, 'invalid UTF-8', { cause: e });
  }
}

export function le32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n >>> 0, true);
  return out;
}

/** A copy that the caller may keep while the input is mutated. */
export function copyBytes(a: Uint8Array): Uint8Array {
  return a.slice();
}

export function isUint8Array(x: unknown): x is Uint8Array {
  return x instanceof Uint8Array;
}
