// Base64url (RFC 4648 §5), unpadded (JWT segments, ReCap resources) and padded (the CACAO
// Authorization header, which TinyCloud writes with Rust's URL_SAFE engine). Decoding is strict: the
// alphabet only, padding only in the padded variant, and the text must be the one canonical spelling
// of the bytes it decodes to (no stray trailing bits), so a value cannot be re-spelled.

import { OpenKeyError, type ErrorCode } from '../errors.ts';

const UNPADDED_RE = /^[A-Za-z0-9_-]*$/;
const PADDED_RE = /^[A-Za-z0-9_-]*={0,2}$/;

export function base64urlEncode(bytes: Uint8Array, padded = false): string {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
  return padded ? text + '='.repeat((4 - (text.length % 4)) % 4) : text;
}

export interface Base64urlDecodeOptions {
  readonly padded: boolean;
  /** Longest text accepted; longer is PAYLOAD_TOO_LARGE. */
  readonly maxChars: number;
  readonly code?: ErrorCode;
  readonly label?: string;
}

export function base64urlDecode(text: unknown, options: Base64urlDecodeOptions): Uint8Array {
  const code = options.code ?? 'MALFORMED_REQUEST';
  const label = options.label ?? 'base64url';
  if (typeof text !== 'string') throw new OpenKeyError(code, `${label}: not a string`);
  if (text.length > options.maxChars) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `${label}: ${text.length} > ${options.maxChars} characters`);
  if (options.padded ? !PADDED_RE.test(text) || text.length % 4 !== 0 : !UNPADDED_RE.test(text) || text.length % 4 === 1) {
    throw new OpenKeyError(code, `${label}: not ${options.padded ? 'padded' : 'unpadded'} base64url`);
  }
  const bytes = new Uint8Array(Buffer.from(text, 'base64url'));
  if (base64urlEncode(bytes, options.padded) !== text) throw new OpenKeyError(code, `${label}: not the canonical encoding`);
  return bytes;
}
