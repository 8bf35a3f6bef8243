// Ethereum addresses: the last 20 bytes of keccak256 of the uncompressed secp256k1 public key
// (Yellow Paper, Appendix F), written with the EIP-55 mixed-case checksum. Parsing accepts all-lower,
// all-upper or correctly checksummed mixed case, and rejects mixed case with a wrong checksum.

import { secp256k1 } from '@noble/curves/secp256k1';
import { OpenKeyError, type ErrorCode } from '../errors.ts';
import { keccak256 } from './keccak.ts';

const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/;
const LOWER_RE = /^[0-9a-f]{40}$/;
const UPPER_RE = /^[0-9A-F]{40}$/;

/** EIP-55: hex digit i is upper-cased iff it is a letter and nibble i of keccak256(lowercase hex) ≥ 8. */
function checksumHex(lowerHex: string): string {
  const hash = keccak256(new TextEncoder().encode(lowerHex));
  let out = '0x';
  for (let i = 0; i < 40; i++) {
    const c = lowerHex[i] as string;
    const nibble = ((hash[i >> 1] as number) >> (i % 2 === 0 ? 4 : 0)) & 0x0f;
    out += nibble >= 8 ? c.toUpperCase() : c;
  }
  return out;
}

/** The EIP-55 form of a 20-byte address. */
export function checksumAddress(address: Uint8Array): string {
  if (!(address instanceof Uint8Array) || address.length !== 20) throw new OpenKeyError('MALFORMED_REQUEST', 'address must be 20 bytes');
  return checksumHex(Buffer.from(address.buffer, address.byteOffset, 20).toString('hex'));
}

/**
 * Parses a 0x-prefixed 40-hex-digit address. All-lowercase and all-uppercase are accepted without a
 * checksum (EIP-55 treats them as unchecksummed); mixed case must be a valid EIP-55 checksum, since a
 * wrong one signals a typo. Throws `code` otherwise.
 */
export function parseAddress(text: unknown, code: ErrorCode = 'MALFORMED_REQUEST'): Uint8Array {
  if (typeof text !== 'string' || !ADDRESS_RE.test(text)) throw new OpenKeyError(code, 'address must be 0x followed by 40 hex digits');
  const body = text.slice(2);
  if (!LOWER_RE.test(body) && !UPPER_RE.test(body) && checksumHex(body.toLowerCase()) !== text) {
    throw new OpenKeyError(code, 'address has an invalid EIP-55 checksum');
  }
  return new Uint8Array(Buffer.from(body, 'hex'));
}

/** True iff `text` parses under the rules of `parseAddress`. */
export function isValidAddress(text: unknown): boolean {
  try {
    parseAddress(text);
    return true;
  } catch {
    // parseAddress only throws OpenKeyError for invalid input; the boolean is the whole answer.
    return false;
  }
}

/** The EIP-55 string form of `text` (which must parse). */
export function normalizeAddress(text: unknown, code: ErrorCode = 'MALFORMED_REQUEST'): string {
  return checksumAddress(parseAddress(text, code));
}

/**
 * The 20-byte address of a secp256k1 public key (33-byte compressed or 65-byte uncompressed SEC1).
 * Throws INVALID_PUBLIC_KEY unless the bytes are a point on the curve.
 */
export function addressBytesFromPublicKey(publicKey: Uint8Array): Uint8Array {
  let uncompressed: Uint8Array;
  try {
    if (!(publicKey instanceof Uint8Array) || (publicKey.length !== 33 && publicKey.length !== 65)) throw new Error('length');
    uncompressed = secp256k1.Point.fromHex(publicKey).toRawBytes(false);
  } catch (e) {
    throw new OpenKeyError('INVALID_PUBLIC_KEY', 'not a secp256k1 public key', { cause: e });
  }
  return keccak256(uncompressed.subarray(1)).slice(12);
}

/** The EIP-55 address of a secp256k1 public key. */
export function addressFromPublicKey(publicKey: Uint8Array): string {
  return checksumAddress(addressBytesFromPublicKey(publicKey));
}
