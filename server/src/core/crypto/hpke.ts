// RFC 9180 HPKE, base mode, single shot, one suite: DHKEM(X25519, HKDF-SHA256) (kem 0x0020),
// HKDF-SHA256 (kdf 0x0001), AES-256-GCM (aead 0x0002), on node:crypto. Callers encrypt keys they
// import to the appliance's X25519 key; every failure to open is one indistinguishable
// IMPORT_DECRYPT_FAILED (no hint about which check failed).

import { createCipheriv, createDecipheriv, createHmac, createPrivateKey, createPublicKey, diffieHellman, randomBytes, type KeyObject } from 'node:crypto';
import { OpenKeyError } from '../errors.ts';
import type { Random } from '../ports.ts';

export const HPKE_KEM_ID = 0x0020;
export const HPKE_KDF_ID = 0x0001;
export const HPKE_AEAD_ID = 0x0002;

// RFC 9180 §7.1 (Nsecret, Nenc, Npk, Nsk) and §7.3 (Nk, Nn, Nt) for this suite.
const N_SECRET = 32;
const N_PK = 32;
const N_SK = 32;
const N_K = 32;
const N_N = 12;
const N_T = 16;

/** Bounds on what we accept; an imported key is small. */
export const HPKE_MAX_INFO = 1024;
export const HPKE_MAX_AAD = 64 * 1024;
export const HPKE_MAX_PLAINTEXT = 64 * 1024;

const ascii = (s: string): Buffer => Buffer.from(s, 'latin1');
const i2osp2 = (n: number): Buffer => Buffer.from([(n >> 8) & 0xff, n & 0xff]);

const VERSION = ascii('HPKE-v1');
// §4.1: suite_id = "KEM" ‖ I2OSP(kem_id, 2) inside the KEM; §5.1: "HPKE" ‖ kem_id ‖ kdf_id ‖ aead_id.
const KEM_SUITE_ID = Buffer.concat([ascii('KEM'), i2osp2(HPKE_KEM_ID)]);
const HPKE_SUITE_ID = Buffer.concat([ascii('HPKE'), i2osp2(HPKE_KEM_ID), i2osp2(HPKE_KDF_ID), i2osp2(HPKE_AEAD_ID)]);
const EMPTY = Buffer.alloc(0);

// ---- HKDF-SHA256 (RFC 5869) and the labelled forms of RFC 9180 §4 ---------------------------

/** HKDF-Extract: HMAC-Hash(salt, IKM). An empty salt is HMAC with a zero-length key, which HMAC pads
 *  to the same block as RFC 5869's default of HashLen zero bytes. */
function extract(salt: Uint8Array, ikm: Uint8Array): Buffer {
  return createHmac('sha256', salt).update(ikm).digest();
}

/** HKDF-Expand: T(i) = HMAC-Hash(PRK, T(i−1) ‖ info ‖ i), L ≤ 255·HashLen. */
function expand(prk: Uint8Array, info: Uint8Array, length: number): Buffer {
  const out = Buffer.alloc(length);
  let t: Buffer = EMPTY;
  for (let i = 1, o = 0; o < length; i++) {
    const next = createHmac('sha256', prk).update(t).update(info).update(Buffer.from([i])).digest();
    t.fill(0);
    t = next;
    o += t.copy(out, o, 0, Math.min(t.length, length - o));
  }
  t.fill(0);
  return out;
}

function labeledExtract(suiteId: Buffer, salt: Uint8Array, label: string, ikm: Uint8Array): Buffer {
  const labeledIkm = Buffer.concat([VERSION, suiteId, ascii(label), ikm]);
  try {
    return extract(salt, labeledIkm);
  } finally {
    labeledIkm.fill(0);
  }
}

function labeledExpand(suiteId: Buffer, prk: Uint8Array, label: string, info: Uint8Array, length: number): Buffer {
  return expand(prk, Buffer.concat([i2osp2(length), VERSION, suiteId, ascii(label), info]), length);
}

// ---- X25519 as node:crypto KeyObjects --------------------------------------------------------

// RFC 8410: PKCS#8 and SPKI wrappers for id-X25519 (1.3.101.110).
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

function x25519PrivateKeyObject(sk: Uint8Array): KeyObject {
  if (!(sk instanceof Uint8Array) || sk.length !== N_SK) throw new OpenKeyError('INVALID_PRIVATE_KEY', 'X25519 private key must be 32 bytes');
  const der = Buffer.concat([X25519_PKCS8_PREFIX, sk]);
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}

function x25519PublicKeyObject(pk: Uint8Array): KeyObject {
  if (!(pk instanceof Uint8Array) || pk.length !== N_PK) throw new OpenKeyError('INVALID_PUBLIC_KEY', 'X25519 public key must be 32 bytes');
  try {
    return createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, pk]), format: 'der', type: 'spki' });
  } catch (e) {
    throw new OpenKeyError('INVALID_PUBLIC_KEY', 'not an X25519 public key', { cause: e });
  }
}

function rawX25519PublicKey(sk: KeyObject): Uint8Array {
  const spki = createPublicKey(sk).export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(X25519_SPKI_PREFIX.length));
}

/** DH(sk, pk) per §7.1.4: the all-zero output (a small-order public key) is an error. */
function dh(sk: KeyObject, pk: KeyObject): Buffer {
  let z: Buffer;
  try {
    z = diffieHellman({ privateKey: sk, publicKey: pk });
  } catch (e) {
    // OpenSSL itself refuses an all-zero X25519 result ("failed during derivation").
    throw new OpenKeyError('INVALID_PUBLIC_KEY', 'X25519 derivation failed', { cause: e });
  }
  let acc = 0;
  for (const b of z) acc |= b;
  if (z.length !== 32 || acc === 0) throw new OpenKeyError('INVALID_PUBLIC_KEY', 'X25519 shared secret is zero');
  return z;
}

/** The 32-byte X25519 public key of a 32-byte private key (RFC 7748 §6.1). */
export function x25519PublicKey(privateKey: Uint8Array): Uint8Array {
  return rawX25519PublicKey(x25519PrivateKeyObject(privateKey));
}

/**
 * DeriveKeyPair(ikm) for DHKEM(X25519, HKDF-SHA256), RFC 9180 §7.1.3: sk = LabeledExpand(
 * LabeledExtract("", "dkp_prk", ikm), "sk", "", 32). `ikm` needs at least 32 bytes of entropy. Use it
 * to derive the appliance's encryption key from TEE key material.
 */
export function x25519DeriveKeyPair(ikm: Uint8Array): { privateKey: Uint8Array; publicKey: Uint8Array } {
  if (!(ikm instanceof Uint8Array) || ikm.length < N_SK) throw new OpenKeyError('INVALID_PRIVATE_KEY', 'ikm must be at least 32 bytes');
  const prk = labeledExtract(KEM_SUITE_ID, EMPTY, 'dkp_prk', ikm);
  const sk = labeledExpand(KEM_SUITE_ID, prk, 'sk', EMPTY, N_SK);
  prk.fill(0);
  const privateKey = new Uint8Array(sk);
  sk.fill(0);
  return { privateKey, publicKey: x25519PublicKey(privateKey) };
}

// ---- DHKEM (§4.1) and the base-mode key schedule (§5.1) ---------------------------------------

function extractAndExpand(dhValue: Buffer, kemContext: Uint8Array): Buffer {
  const eaePrk = labeledExtract(KEM_SUITE_ID, EMPTY, 'eae_prk', dhValue);
  try {
    return labeledExpand(KEM_SUITE_ID, eaePrk, 'shared_secret', kemContext, N_SECRET);
  } finally {
    eaePrk.fill(0);
  }
}

/** KeySchedule(mode_base, shared_secret, info, default_psk, default_psk_id) → (key, base_nonce). */
function keySchedule(sharedSecret: Buffer, info: Uint8Array): { key: Buffer; nonce: Buffer } {
  const pskIdHash = labeledExtract(HPKE_SUITE_ID, EMPTY, 'psk_id_hash', EMPTY);
  const infoHash = labeledExtract(HPKE_SUITE_ID, EMPTY, 'info_hash', info);
  const context = Buffer.concat([Buffer.from([0x00]), pskIdHash, infoHash]);
  const secret = labeledExtract(HPKE_SUITE_ID, sharedSecret, 'secret', EMPTY);
  const key = labeledExpand(HPKE_SUITE_ID, secret, 'key', context, N_K);
  // Single shot: sequence number 0, so the nonce is base_nonce itself (§5.2 ComputeNonce).
  const nonce = labeledExpand(HPKE_SUITE_ID, secret, 'base_nonce', context, N_N);
  secret.fill(0);
  return { key, nonce };
}

function checkBounds(info: Uint8Array, aad: Uint8Array): void {
  if (!(info instanceof Uint8Array) || !(aad instanceof Uint8Array)) throw new OpenKeyError('MALFORMED_REQUEST', 'info and aad must be bytes');
  if (info.length > HPKE_MAX_INFO || aad.length > HPKE_MAX_AAD) throw new OpenKeyError('PAYLOAD_TOO_LARGE', 'HPKE info or aad too long');
}

export interface HpkeSealInput {
  readonly recipientPublicKey: Uint8Array;
  readonly plaintext: Uint8Array;
  readonly info?: Uint8Array;
  readonly aad?: Uint8Array;
  /** Source of the ephemeral key's 32-byte ikm (DeriveKeyPair). Defaults to node's CSPRNG. */
  readonly random?: Random;
}

export interface HpkeSealed {
  /** The encapsulated key: the ephemeral X25519 public key, 32 bytes. */
  readonly enc: Uint8Array;
  /** AES-256-GCM ciphertext ‖ 16-byte tag. */
  readonly ciphertext: Uint8Array;
}

/** SealBase (§6.1): Encap to the recipient, then one AEAD seal with sequence number 0. */
export function hpkeSeal(input: HpkeSealInput): HpkeSealed {
  const info = input.info ?? EMPTY;
  const aad = input.aad ?? EMPTY;
  checkBounds(info, aad);
  if (!(input.plaintext instanceof Uint8Array) || input.plaintext.length > HPKE_MAX_PLAINTEXT) throw new OpenKeyError('PAYLOAD_TOO_LARGE', 'HPKE plaintext too long');
  const pkR = x25519PublicKeyObject(input.recipientPublicKey);
  const ikm = input.random ? input.random.bytes(N_SK) : new Uint8Array(randomBytes(N_SK));
  const eph = x25519DeriveKeyPair(ikm);
  ikm.fill(0);
  const skE = x25519PrivateKeyObject(eph.privateKey);
  eph.privateKey.fill(0);
  const enc = eph.publicKey;
  const z = dh(skE, pkR);
  const sharedSecret = extractAndExpand(z, Buffer.concat([enc, input.recipientPublicKey]));
  z.fill(0);
  const { key, nonce } = keySchedule(sharedSecret, info);
  sharedSecret.fill(0);
  try {
    const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: N_T });
    cipher.setAAD(aad);
    const ct = Buffer.concat([cipher.update(input.plaintext), cipher.final(), cipher.getAuthTag()]);
    return { enc, ciphertext: new Uint8Array(ct) };
  } finally {
    key.fill(0);
    nonce.fill(0);
  }
}

export interface HpkeOpenInput {
  readonly enc: Uint8Array;
  readonly ciphertext: Uint8Array;
  readonly info?: Uint8Array;
  readonly aad?: Uint8Array;
}

/** A recipient key held as a KeyObject, for repeated opens (the appliance's import key). */
export interface HpkeRecipient {
  readonly publicKey: Uint8Array;
  /** OpenBase (§6.1). Throws IMPORT_DECRYPT_FAILED for every failure, whatever its cause. */
  open(input: HpkeOpenInput): Uint8Array;
  destroy(): void;
}

const decryptFailed = (): OpenKeyError => new OpenKeyError('IMPORT_DECRYPT_FAILED');

function openWith(skR: KeyObject, pkRm: Uint8Array, input: HpkeOpenInput): Uint8Array {
  try {
    const info = input.info ?? EMPTY;
    const aad = input.aad ?? EMPTY;
    checkBounds(info, aad);
    const { enc, ciphertext } = input;
    if (!(enc instanceof Uint8Array) || enc.length !== N_PK) throw decryptFailed();
    if (!(ciphertext instanceof Uint8Array) || ciphertext.length < N_T || ciphertext.length > HPKE_MAX_PLAINTEXT + N_T) throw decryptFailed();
    // Decap (§4.1): pkE = Deserialize(enc); dh = DH(skR, pkE); kem_context = enc ‖ pkRm.
    const z = dh(skR, x25519PublicKeyObject(enc));
    const sharedSecret = extractAndExpand(z, Buffer.concat([enc, pkRm]));
    z.fill(0);
    const { key, nonce } = keySchedule(sharedSecret, info);
    sharedSecret.fill(0);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: N_T });
      decipher.setAuthTag(ciphertext.subarray(ciphertext.length - N_T));
      decipher.setAAD(aad);
      const head = decipher.update(ciphertext.subarray(0, ciphertext.length - N_T));
      const tail = decipher.final(); // throws unless the tag verifies
      const pt = new Uint8Array(head.length + tail.length);
      pt.set(head, 0);
      pt.set(tail, head.length);
      head.fill(0);
      tail.fill(0);
      return pt;
    } finally {
      key.fill(0);
      nonce.fill(0);
    }
  } catch {
    // Deliberately one error with no cause attached: which step failed must not be observable.
    throw decryptFailed();
  }
}

/** Holds the recipient's private key as a KeyObject; the caller zeroizes its raw copy. */
export function createHpkeRecipient(privateKey: Uint8Array): HpkeRecipient {
  let skR: KeyObject | undefined = x25519PrivateKeyObject(privateKey);
  const publicKey = rawX25519PublicKey(skR);
  return {
    publicKey,
    open(input) {
      if (skR === undefined) throw decryptFailed();
      return openWith(skR, publicKey, input);
    },
    destroy() {
      skR = undefined;
    },
  };
}

/** Single-shot OpenBase with a raw 32-byte recipient private key. Throws IMPORT_DECRYPT_FAILED. */
export function hpkeOpen(input: HpkeOpenInput & { readonly recipientPrivateKey: Uint8Array }): Uint8Array {
  let recipient: HpkeRecipient;
  try {
    recipient = createHpkeRecipient(input.recipientPrivateKey);
  } catch {
    // A malformed recipient key is reported like every other open failure.
    throw decryptFailed();
  }
  try {
    return recipient.open(input);
  } finally {
    recipient.destroy();
  }
}
