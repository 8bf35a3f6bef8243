// Decentralized identifiers for appliance keys. did:pkh (CAIP-10 account id under eip155) for
// secp256k1 Ethereum keys; did:key (W3C CCG did:key method) for Ed25519 and secp256k1: multibase
// base58btc ('z') of the multicodec varint (ed25519-pub 0xed, secp256k1-pub 0xe7) and the raw key.

import { ed25519 } from '@noble/curves/ed25519';
import { secp256k1 } from '@noble/curves/secp256k1';
import { OpenKeyError } from '../errors.ts';
import { addressFromPublicKey, normalizeAddress } from './address.ts';
import { base58btcDecode, base58btcEncode } from './base58.ts';

export type DidKeyAlgorithm = 'ed25519' | 'secp256k1';

// Multicodec table codes as unsigned varints: 0xed → ed 01, 0xe7 → e7 01.
const ED25519_PREFIX = [0xed, 0x01] as const;
const SECP256K1_PREFIX = [0xe7, 0x01] as const;
/** Longest did:key we parse: a 35-byte payload is 48 base58 characters; leave room, refuse more. */
const MAX_DID_KEY_LENGTH = 128;

/** `did:pkh:eip155:<chainId>:<EIP-55 address>` (CAIP-2 chain id, CAIP-10 account address). */
export function didPkh(address: string, chainId: number | bigint = 1): string {
  if (!(typeof chainId === 'bigint' ? chainId > 0n : Number.isSafeInteger(chainId) && chainId > 0)) throw new OpenKeyError('MALFORMED_REQUEST', 'chain id must be a positive integer');
  return `did:pkh:eip155:${chainId}:${normalizeAddress(address)}`;
}

/** did:pkh for a secp256k1 public key's Ethereum address. */
export function didPkhFromPublicKey(secp256k1PublicKey: Uint8Array, chainId: number | bigint = 1): string {
  return didPkh(addressFromPublicKey(secp256k1PublicKey), chainId);
}

const DID_PKH_RE = /^did:pkh:eip155:([1-9][0-9]{0,31}):(0x[0-9a-fA-F]{40})$/;

/** Parses an eip155 did:pkh; the address is returned in EIP-55 form. Throws MALFORMED_REQUEST. */
export function parseDidPkh(did: string): { chainId: bigint; address: string } {
  const m = typeof did === 'string' ? DID_PKH_RE.exec(did) : null;
  if (m === null) throw new OpenKeyError('MALFORMED_REQUEST', 'not an eip155 did:pkh');
  return { chainId: BigInt(m[1] as string), address: normalizeAddress(m[2]) };
}

function checkPublicKey(algorithm: DidKeyAlgorithm, publicKey: Uint8Array): void {
  try {
    if (!(publicKey instanceof Uint8Array)) throw new Error('not bytes');
    if (algorithm === 'ed25519') {
      if (publicKey.length !== 32) throw new Error('length');
      ed25519.Point.fromHex(publicKey); // canonical encoding of a curve point (RFC 8032 §5.1.3)
    } else {
      if (publicKey.length !== 33) throw new Error('length');
      secp256k1.Point.fromHex(publicKey);
    }
  } catch (e) {
    throw new OpenKeyError('INVALID_PUBLIC_KEY', `not a ${algorithm} public key for did:key`, { cause: e });
  }
}

/**
 * `did:key:z…` for an Ed25519 key (32 raw bytes) or a secp256k1 key (33-byte compressed SEC1 — the
 * did:key method requires the compressed form; convert 65-byte keys first).
 */
export function didKey(algorithm: DidKeyAlgorithm, publicKey: Uint8Array): string {
  checkPublicKey(algorithm, publicKey);
  const prefix = algorithm === 'ed25519' ? ED25519_PREFIX : SECP256K1_PREFIX;
  const payload = new Uint8Array(2 + publicKey.length);
  payload.set(prefix, 0);
  payload.set(publicKey, 2);
  return `did:key:z${base58btcEncode(payload)}`;
}

/** The did:key verification method id, `did:key:z…#z…` (the fragment repeats the key). */
export function didKeyVerificationMethod(did: string): string {
  const { algorithm, publicKey } = parseDidKey(did);
  const id = didKey(algorithm, publicKey);
  return `${id}#${id.slice('did:key:'.length)}`;
}

/**
 * Parses `did:key:z…` back to its algorithm and public key. MALFORMED_REQUEST for bad syntax,
 * base58 or length; UNSUPPORTED_ALGORITHM for another multicodec; INVALID_PUBLIC_KEY for bytes
 * that are not a point.
 */
export function parseDidKey(did: string): { algorithm: DidKeyAlgorithm; publicKey: Uint8Array } {
  if (typeof did !== 'string' || did.length > MAX_DID_KEY_LENGTH || !did.startsWith('did:key:z')) throw new OpenKeyError('MALFORMED_REQUEST', 'not a base58btc did:key');
  const payload = base58btcDecode(did.slice('did:key:z'.length), MAX_DID_KEY_LENGTH);
  let algorithm: DidKeyAlgorithm;
  let keyLength: number;
  if (payload[0] === ED25519_PREFIX[0] && payload[1] === ED25519_PREFIX[1]) {
    algorithm = 'ed25519';
    keyLength = 32;
  } else if (payload[0] === SECP256K1_PREFIX[0] && payload[1] === SECP256K1_PREFIX[1]) {
    algorithm = 'secp256k1';
    keyLength = 33;
  } else {
    throw new OpenKeyError('UNSUPPORTED_ALGORITHM', 'did:key multicodec is not ed25519-pub or secp256k1-pub');
  }
  if (payload.length !== 2 + keyLength) throw new OpenKeyError('MALFORMED_REQUEST', `did:key ${algorithm} key must be ${keyLength} bytes`);
  const publicKey = payload.slice(2);
  checkPublicKey(algorithm, publicKey);
  // Reject non-canonical spellings (e.g. extra leading '1's would change the bytes; this catches any other).
  if (didKey(algorithm, publicKey) !== did) throw new OpenKeyError('MALFORMED_REQUEST', 'did:key is not in canonical form');
  return { algorithm, publicKey };
}
