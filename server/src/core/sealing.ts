// Sealed-key envelopes: AES-256-GCM under keys derived (HKDF-SHA256) from the dstack sealing secret,
// with AAD that binds the blob to its key id, algorithm, public key and owner. Owns the envelope byte
// layout, the sealing keyring (current + older key versions, so secrets can rotate) and rewrapping.
// Every unseal failure is the one code SEALED_KEY_CORRUPT (jose habit: no decryption oracle).
//
// Envelope v1 (67 bytes, fixed length; integers big-endian):
//   offset  len  field
//   0       2    magic 0x4F 0x4B ("OK")
//   2       1    envelope version = 0x01
//   3       4    sealing key version (u32, >= 1) — selects the keyring entry
//   7       12   GCM nonce, fresh from the injected Random port per seal
//   19      32   AES-256-GCM ciphertext of the 32-byte secret key
//   51      16   GCM tag
// AAD v1 = concatenation of fields, each encoded as u32 length ‖ bytes:
//   "openkey/sealed-key" ‖ [envelope version] ‖ u32(key version) ‖ utf8(keyId) ‖ utf8(algorithm)
//   ‖ publicKey ‖ utf8(owner)
// Sealing key for key version n = HKDF-SHA256(ikm = sealing secret n, salt = "openkey/v1/seal/salt",
//   info = "openkey/v1/seal" ‖ u32(n), L = 32).

import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { concatBytes, utf8, zeroize } from './bytes.ts';
import { OpenKeyError } from './errors.ts';
import type { KeyAlgorithm, Random } from './ports.ts';

export const ENVELOPE_MAGIC: readonly number[] = [0x4f, 0x4b];
export const ENVELOPE_VERSION_1 = 0x01;
export const SEALED_SECRET_LENGTH = 32;
export const ENVELOPE_V1_LENGTH = 2 + 1 + 4 + 12 + SEALED_SECRET_LENGTH + 16;

const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;
const HEADER_LENGTH = 7;
const MAX_KEY_VERSION = 0xffff_ffff;
const HKDF_SALT = utf8('openkey/v1/seal/salt');
const HKDF_INFO_PREFIX = utf8('openkey/v1/seal');
const AAD_LABEL = utf8('openkey/sealed-key');
const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ['secp256k1', 'ed25519'];
const STRICT_UTF8 = new TextDecoder('utf-8', { ignoreBOM: true }); // keep a leading U+FEFF

/** One generation of the dstack sealing secret and the key version it is known by. */
export interface SealingSecret {
  readonly version: number;
  /** 32 bytes from dstack GetKey. Copied into a derived key; the caller zeroizes its own copy. */
  readonly secret: Uint8Array;
}

// Derived AES keys live here, reachable only from this module (not as a property of the keyring).
const derivedKeys = new WeakMap<SealingKeyring, ReadonlyMap<number, KeyObject>>();

/**
 * The sealing keys, by key version. New blobs are sealed under `currentVersion`; any version held
 * can unseal, so a rotated secret stays readable until every blob has been rewrapped.
 */
export class SealingKeyring {
  readonly currentVersion: number;
  /** Every key version held, ascending. */
  readonly versions: readonly number[];

  private constructor(currentVersion: number, keys: ReadonlyMap<number, KeyObject>) {
    this.currentVersion = currentVersion;
    this.versions = Object.freeze([...keys.keys()].sort((a, b) => a - b));
    derivedKeys.set(this, keys);
    Object.freeze(this);
  }

  /** Derives one AES-256 key per secret. Configuration errors are INTERNAL (operator problem). */
  static fromSecrets(secrets: readonly SealingSecret[], currentVersion: number): SealingKeyring {
    const keys = new Map<number, KeyObject>();
    for (const { version, secret } of secrets) {
      if (!isKeyVersion(version)) throw new OpenKeyError('INTERNAL', `sealing key version ${String(version)} is not an integer in 1..2^32-1`);
      if (keys.has(version)) throw new OpenKeyError('INTERNAL', `sealing key version ${version} given twice`);
      if (!(secret instanceof Uint8Array) || secret.length !== 32) throw new OpenKeyError('INTERNAL', `sealing secret ${version} must be 32 bytes`);
      if (secret.every((b) => b === 0)) throw new OpenKeyError('INTERNAL', `sealing secret ${version} is all zero`);
      keys.set(version, deriveSealingKey(secret, version));
    }
    if (!keys.has(currentVersion)) throw new OpenKeyError('INTERNAL', `current sealing key version ${String(currentVersion)} is not in the keyring`);
    return new SealingKeyring(currentVersion, keys);
  }

  has(version: number): boolean {
    return keysOf(this).has(version);
  }
}

function keysOf(keyring: SealingKeyring): ReadonlyMap<number, KeyObject> {
  const keys = derivedKeys.get(keyring);
  if (keys === undefined) throw new OpenKeyError('INTERNAL', 'not a SealingKeyring built by fromSecrets');
  return keys;
}

function deriveSealingKey(secret: Uint8Array, version: number): KeyObject {
  const okm = new Uint8Array(hkdfSync('sha256', secret, HKDF_SALT, concatBytes(HKDF_INFO_PREFIX, u32(version)), 32));
  try {
    return createSecretKey(okm);
  } finally {
    zeroize(okm);
  }
}

/** What a sealed blob is bound to. All of it goes into the AAD; none of it is stored in the blob. */
export interface SealBinding {
  readonly keyId: string;
  readonly algorithm: KeyAlgorithm;
  readonly publicKey: Uint8Array;
  /** The owning principal's id. */
  readonly owner: string;
}

export interface SealInput extends SealBinding {
  readonly keyring: SealingKeyring;
  readonly random: Random;
  /** The 32-byte private key (secp256k1 scalar or Ed25519 seed). Not modified; the caller zeroizes. */
  readonly secret: Uint8Array;
}

export interface UnsealInput extends SealBinding {
  readonly keyring: SealingKeyring;
  readonly blob: Uint8Array;
}

export interface RewrapInput extends UnsealInput {
  readonly random: Random;
}

/** Seals `secret` under the keyring's current version. Bad arguments are INTERNAL (caller bug). */
export function seal(input: SealInput): Uint8Array {
  return sealWith(input, input.keyring.currentVersion);
}

/**
 * Returns the 32-byte secret (a fresh buffer the caller must zeroize). Throws SEALED_KEY_CORRUPT for
 * every failure — malformed blob, unknown version, authentication failure, different binding. The
 * caller must still re-derive the public key from the secret and compare it with `publicKey`.
 */
export function unseal(input: UnsealInput): Uint8Array {
  const { blob } = input;
  const corrupt = (detail: string, cause?: unknown): OpenKeyError =>
    new OpenKeyError('SEALED_KEY_CORRUPT', detail, cause === undefined ? undefined : { cause });
  // The detail (operator log only) separates facts anyone holding the blob can read from its header
  // (format, key version) from the one secret-dependent outcome, "authentication failed".
  if (!(blob instanceof Uint8Array)) throw corrupt('envelope is not bytes');
  const keyVersion = parseHeader(blob);
  if (keyVersion === undefined) throw corrupt('malformed envelope');
  const key = keysOf(input.keyring).get(keyVersion);
  if (key === undefined) throw corrupt(`unknown sealing key version ${keyVersion}`);
  let aad: Uint8Array;
  try {
    aad = encodeAad(ENVELOPE_VERSION_1, keyVersion, input);
  } catch (e) {
    throw corrupt('authentication failed', e);
  }
  const nonce = blob.subarray(HEADER_LENGTH, HEADER_LENGTH + NONCE_LENGTH);
  const ciphertext = blob.subarray(HEADER_LENGTH + NONCE_LENGTH, HEADER_LENGTH + NONCE_LENGTH + SEALED_SECRET_LENGTH);
  const tag = blob.subarray(ENVELOPE_V1_LENGTH - TAG_LENGTH);
  let head: Buffer | undefined;
  let tail: Buffer | undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LENGTH });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    head = decipher.update(ciphertext);
    tail = decipher.final(); // throws unless the tag verifies
    if (head.length + tail.length !== SEALED_SECRET_LENGTH) throw new Error('unexpected plaintext length');
    const secret = new Uint8Array(SEALED_SECRET_LENGTH);
    secret.set(head, 0);
    secret.set(tail, head.length);
    return secret;
  } catch (e) {
    throw corrupt('authentication failed', e);
  } finally {
    zeroize(head, tail);
  }
}

/**
 * Unseals with whichever key version the blob names and seals again under the keyring's current
 * version (fresh nonce). Errors as `unseal`. Use `sealedKeyVersion` to skip blobs already current.
 */
export function rewrap(input: RewrapInput): Uint8Array {
  const secret = unseal(input);
  try {
    return sealWith({ ...input, secret }, input.keyring.currentVersion);
  } finally {
    zeroize(secret);
  }
}

/** The sealing key version a blob names (unauthenticated header read). SEALED_KEY_CORRUPT if malformed. */
export function sealedKeyVersion(blob: Uint8Array): number {
  const v = blob instanceof Uint8Array ? parseHeader(blob) : undefined;
  if (v === undefined) throw new OpenKeyError('SEALED_KEY_CORRUPT', 'malformed envelope');
  return v;
}

function sealWith(input: SealInput, keyVersion: number): Uint8Array {
  const key = keysOf(input.keyring).get(keyVersion);
  if (key === undefined) throw new OpenKeyError('INTERNAL', `sealing key version ${keyVersion} not in keyring`);
  const { secret } = input;
  if (!(secret instanceof Uint8Array) || secret.length !== SEALED_SECRET_LENGTH) {
    throw new OpenKeyError('INTERNAL', `secret to seal must be ${SEALED_SECRET_LENGTH} bytes`);
  }
  const aad = encodeAad(ENVELOPE_VERSION_1, keyVersion, input);
  const drawn: unknown = input.random.bytes(NONCE_LENGTH);
  if (!(drawn instanceof Uint8Array) || drawn.length !== NONCE_LENGTH) throw new OpenKeyError('INTERNAL', 'Random returned a bad nonce');
  const nonce = Uint8Array.from(drawn);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LENGTH });
  cipher.setAAD(aad);
  const ct = concatBytes(cipher.update(secret), cipher.final());
  const tag = cipher.getAuthTag();
  const header = concatBytes(Uint8Array.from(ENVELOPE_MAGIC), Uint8Array.of(ENVELOPE_VERSION_1), u32(keyVersion));
  const out = concatBytes(header, nonce, ct, tag);
  if (out.length !== ENVELOPE_V1_LENGTH) throw new OpenKeyError('INTERNAL', 'envelope length');
  return out;
}

/** The key version of a well-formed v1 envelope, or undefined. Checks magic, version and length. */
function parseHeader(blob: Uint8Array): number | undefined {
  if (blob.length !== ENVELOPE_V1_LENGTH) return undefined;
  if (blob[0] !== ENVELOPE_MAGIC[0] || blob[1] !== ENVELOPE_MAGIC[1]) return undefined;
  if (blob[2] !== ENVELOPE_VERSION_1) return undefined;
  const v = new DataView(blob.buffer, blob.byteOffset + 3, 4).getUint32(0, false);
  return isKeyVersion(v) ? v : undefined;
}

/** Canonical AAD: every field length-prefixed, so no two different bindings encode the same. */
function encodeAad(envelopeVersion: number, keyVersion: number, b: SealBinding): Uint8Array {
  if (!KEY_ALGORITHMS.includes(b.algorithm)) throw new OpenKeyError('INTERNAL', 'unknown key algorithm');
  if (!(b.publicKey instanceof Uint8Array) || b.publicKey.length === 0) throw new OpenKeyError('INTERNAL', 'public key missing');
  const fields = [
    AAD_LABEL,
    Uint8Array.of(envelopeVersion),
    u32(keyVersion),
    text(b.keyId, 'keyId'),
    utf8(b.algorithm),
    b.publicKey,
    text(b.owner, 'owner'),
  ];
  return concatBytes(...fields.flatMap((f) => [u32(f.length), f]));
}

/** UTF-8 of a non-empty, well-formed string (lone surrogates would collapse to U+FFFD and collide). */
function text(s: unknown, label: string): Uint8Array {
  if (typeof s !== 'string' || s.length === 0) throw new OpenKeyError('INTERNAL', `${label} missing`);
  const b = utf8(s);
  if (STRICT_UTF8.decode(b) !== s) throw new OpenKeyError('INTERNAL', `${label} is not well-formed Unicode`);
  return b;
}

function isKeyVersion(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_KEY_VERSION;
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, false);
  return b;
}
