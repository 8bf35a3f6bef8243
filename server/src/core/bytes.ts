// Byte helpers and labelled asserts for the domain core. Each assert checks, copies where the input
// may be aliased by a caller, and returns the checked value, so validation and use are one step.

import { OpenKeyError, type ErrorCode } from './errors.ts';

export function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}

/** A checked copy of `v`, which must be a Uint8Array of exactly `len` bytes (any length if omitted). */
export function bytesOf(v: unknown, code: ErrorCode, label: string, len?: number): Uint8Array {
  if (!isBytes(v)) throw new OpenKeyError(code, `${label}: not bytes`);
  if (len !== undefined && v.length !== len) throw new OpenKeyError(code, `${label}: expected ${len} bytes, got ${v.length}`);
  return Uint8Array.from(v);
}

/** `v` must be non-empty bytes no longer than `max`. Empty means missing (proto3 default). */
export function requiredBytes(v: Uint8Array, label: string, max: number): Uint8Array {
  if (v.length === 0) throw new OpenKeyError('MISSING_FIELD', label);
  if (v.length > max) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `${label}: ${v.length} > ${max}`);
  return v;
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;
/** Strict hex decoding (optional 0x prefix); throws `code` on odd length or a non-hex digit. */
export function fromHex(s: string, code: ErrorCode = 'MALFORMED_REQUEST', label = 'hex'): Uint8Array {
  const body = s.startsWith('0x') || s.startsWith('0X') ? s.slice(2) : s;
  if (!HEX_RE.test(body)) throw new OpenKeyError(code, `${label}: not hex`);
  return new Uint8Array(Buffer.from(body, 'hex'));
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Constant-time equality for secrets and MACs. Lengths are not secret. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= (a[i] as number) ^ (b[i] as number);
  return d === 0;
}

/** Overwrites a buffer that held secret material. Best effort: JS cannot reach copies the VM made. */
export function zeroize(...bufs: (Uint8Array | undefined)[]): void {
  for (const b of bufs) b?.fill(0);
}
