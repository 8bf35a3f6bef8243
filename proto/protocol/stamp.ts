// Request stamps: how a service principal authenticates each call end to end. The stamp travels
// in the `openkey-stamp` header (gRPC metadata or HTTP header) and signs the method, the SHA-256 of
// the request's deterministic protobuf encoding, the principal id, a millisecond timestamp and a
// single-use nonce, so it survives TLS termination by a gateway and cannot be replayed.

import { CanonicalWriter } from './encoding.ts';

export const STAMP_HEADER = 'openkey-stamp';
export const STAMP_VERSION = '1';
const STAMP_TAG = 'openkey-stamp-v1';

/** Nonces are 16–64 base64url characters (at least 96 bits when random). */
export const NONCE_RE = /^[A-Za-z0-9_-]{16,64}$/;
const PRINCIPAL_RE = /^svc_[0-9a-f]{32}$/;
const B64URL_RE = /^[A-Za-z0-9_-]+$/;

export interface StampFields {
  readonly principalId: string;
  readonly timestampMs: number;
  readonly nonce: string;
  readonly signature: Uint8Array;
}

/** The bytes a principal signs for one request. */
export function stampSigningInput(
  method: string,
  bodyDigest: Uint8Array,
  principalId: string,
  timestampMs: number,
  nonce: string,
): Uint8Array {
  return new CanonicalWriter(STAMP_TAG)
    .string(method)
    .bytes(bodyDigest)
    .string(principalId)
    .u64(timestampMs)
    .string(nonce)
    .finish();
}

/** `1.<principalId>.<timestampMs>.<nonce>.<base64url signature>` */
export function formatStamp(f: StampFields): string {
  return [STAMP_VERSION, f.principalId, String(f.timestampMs), f.nonce, base64UrlEncode(f.signature)].join('.');
}

/** Parses a stamp header; returns undefined for anything that is not a well-formed v1 stamp. */
export function parseStamp(header: string): StampFields | undefined {
  if (header.length > 512) return undefined;
  const parts = header.split('.');
  if (parts.length !== 5) return undefined;
  const [version, principalId, ts, nonce, sig] = parts as [string, string, string, string, string];
  if (version !== STAMP_VERSION) return undefined;
  if (!PRINCIPAL_RE.test(principalId)) return undefined;
  if (!/^[0-9]{1,16}$/.test(ts)) return undefined;
  const timestampMs = Number(ts);
  if (!Number.isSafeInteger(timestampMs)) return undefined;
  if (!NONCE_RE.test(nonce)) return undefined;
  if (!B64URL_RE.test(sig) || sig.length > 200) return undefined;
  if (sig.length % 4 === 1) return undefined; // not a whole number of bytes
  return { principalId, timestampMs, nonce, signature: base64UrlDecode(sig) };
}

export function base64UrlEncode(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function base64UrlDecode(s: string): Uint8Array {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
