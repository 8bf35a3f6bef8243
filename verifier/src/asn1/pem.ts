// PEM certificate chains (RFC 7468): split "CERTIFICATE" blocks and base64-decode them strictly.
// Only whitespace and NUL padding may appear outside the blocks (quotes pad the PCK chain with a
// trailing NUL); anything else is rejected rather than skipped.

import { VerifierError, type VerifierErrorCode } from '../errors.ts';

/** Chains longer than this are not Intel's (leaf, CA, root) and are refused. */
export const MAX_PEM_CERTS = 8;
const BEGIN = '-----BEGIN CERTIFICATE-----';
const END = '-----END CERTIFICATE-----';

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < B64.length; i++) B64_INDEX[B64.charCodeAt(i)] = i;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0;
}

/** Strict base64 (standard alphabet, canonical padding); whitespace between characters is ignored. */
export function base64Decode(text: string, code: VerifierErrorCode): Uint8Array {
  const vals: number[] = [];
  let pad = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (isSpace(c)) continue;
    if (c === 0x3d) {
      pad++;
      continue;
    }
    if (pad > 0) throw new VerifierError(code, 'base64 data after padding');
    const v = c < 128 ? B64_INDEX[c]! : -1;
    if (v < 0) throw new VerifierError(code, 'invalid base64 character');
    vals.push(v);
  }
  if ((vals.length + pad) % 4 !== 0 || pad > 2 || vals.length % 4 === 1) {
    throw new VerifierError(code, 'bad base64 length');
  }
  const out = new Uint8Array(Math.floor((vals.length * 6) / 8));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (const v of vals) {
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) throw new VerifierError(code, 'non-canonical base64');
  return out;
}

function asText(pem: string | Uint8Array, code: VerifierErrorCode): string {
  if (typeof pem === 'string') return pem;
  let s = '';
  for (const b of pem) {
    if (b > 0x7f) throw new VerifierError(code, 'non-ASCII byte in PEM');
    s += String.fromCharCode(b);
  }
  return s;
}

function onlySpace(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (!isSpace(s.charCodeAt(i))) return false;
  return true;
}

/** DER bytes of every certificate in a PEM chain, in order. */
export function pemCertificates(pem: string | Uint8Array, code: VerifierErrorCode): Uint8Array[] {
  const text = asText(pem, code);
  const out: Uint8Array[] = [];
  let pos = 0;
  for (;;) {
    const begin = text.indexOf(BEGIN, pos);
    if (begin < 0) {
      if (!onlySpace(text.slice(pos))) throw new VerifierError(code, 'unexpected text in PEM');
      break;
    }
    if (!onlySpace(text.slice(pos, begin))) throw new VerifierError(code, 'unexpected text in PEM');
    const end = text.indexOf(END, begin + BEGIN.length);
    if (end < 0) throw new VerifierError(code, 'unterminated PEM block');
    if (out.length >= MAX_PEM_CERTS) throw new VerifierError(code, 'too many certificates');
    out.push(base64Decode(text.slice(begin + BEGIN.length, end), code));
    pos = end + END.length;
  }
  if (out.length === 0) throw new VerifierError(code, 'no certificate in PEM');
  return out;
}
