// secp256k1 ECDSA for Ethereum: 65-byte r‖s‖v signatures, low-S (EIP-2), v = 27 + recovery id,
// deterministic nonces (RFC 6979 §3.2, no extra entropy). Two interchangeable backends: libsecp256k1
// through the `secp256k1` N-API addon (hot path) and @noble/curves (fallback and test oracle); both
// are RFC 6979 deterministic, so they must produce byte-identical signatures.

import { createRequire } from 'node:module';
import { secp256k1 as noble } from '@noble/curves/secp256k1';
import { OpenKeyError } from '../errors.ts';
import { fromHex, equalBytes } from '../bytes.ts';

export type Secp256k1BackendName = 'native' | 'noble';

export interface Secp256k1Backend {
  /** Which implementation this is: 'native' (libsecp256k1) or 'noble' (pure JS). */
  readonly name: Secp256k1BackendName;
  /**
   * Signs a 32-byte digest. Returns r (32) ‖ s (32, low-S) ‖ v (27 or 28).
   * Throws INVALID_DIGEST_LENGTH or INVALID_PRIVATE_KEY.
   */
  sign(digest: Uint8Array, privateKey: Uint8Array): Uint8Array;
  /** SEC1 public key: 33 bytes compressed or 65 bytes uncompressed. Throws INVALID_PRIVATE_KEY. */
  getPublicKey(privateKey: Uint8Array, compressed: boolean): Uint8Array;
  /** True iff `privateKey` is 32 bytes encoding a scalar in [1, n − 1]. Never throws. */
  isValidPrivateKey(privateKey: Uint8Array): boolean;
  /**
   * Recovers the signer's public key (65 bytes uncompressed unless `compressed`) from a 65-byte
   * r‖s‖v signature, v ∈ {27, 28} or {0, 1}. Accepts high-S (as Ethereum's ecrecover does).
   * Throws INVALID_DIGEST_LENGTH, or MALFORMED_REQUEST for a signature that cannot be recovered.
   */
  recover(digest: Uint8Array, signature: Uint8Array, compressed?: boolean): Uint8Array;
}

const SIGNATURE_LENGTH = 65;

function checkDigest(digest: Uint8Array): void {
  if (!(digest instanceof Uint8Array) || digest.length !== 32) throw new OpenKeyError('INVALID_DIGEST_LENGTH', 'digest must be 32 bytes');
}

function checkKeyShape(privateKey: Uint8Array): void {
  if (!(privateKey instanceof Uint8Array) || privateKey.length !== 32) throw new OpenKeyError('INVALID_PRIVATE_KEY', 'private key must be 32 bytes');
}

/** Splits r‖s‖v into the 64-byte compact signature and the recovery id (0 or 1). */
function splitSignature(signature: Uint8Array): { compact: Uint8Array; recid: 0 | 1 } {
  if (!(signature instanceof Uint8Array) || signature.length !== SIGNATURE_LENGTH) throw new OpenKeyError('MALFORMED_REQUEST', 'signature must be 65 bytes');
  const v = signature[64] as number;
  const recid = v === 27 || v === 0 ? 0 : v === 28 || v === 1 ? 1 : -1;
  if (recid === -1) throw new OpenKeyError('MALFORMED_REQUEST', 'signature v must be 27/28 or 0/1');
  return { compact: signature.subarray(0, 64), recid };
}

// ---- @noble/curves backend ---------------------------------------------------------------------

export function createNobleSecp256k1Backend(): Secp256k1Backend {
  const isValidPrivateKey = (k: Uint8Array): boolean => k instanceof Uint8Array && k.length === 32 && noble.utils.isValidPrivateKey(k);
  const backend: Secp256k1Backend = {
    name: 'noble',
    sign(digest, privateKey) {
      checkDigest(digest);
      checkKeyShape(privateKey);
      if (!isValidPrivateKey(privateKey)) throw new OpenKeyError('INVALID_PRIVATE_KEY', 'private key out of range');
      // lowS: s ≤ n/2 (EIP-2); extraEntropy false ⇒ plain RFC 6979 nonce, same as libsecp256k1's default.
      const sig = noble.sign(digest, privateKey, { lowS: true, extraEntropy: false });
      const out = new Uint8Array(SIGNATURE_LENGTH);
      out.set(sig.toCompactRawBytes(), 0);
      out[64] = 27 + sig.recovery;
      return out;
    },
    getPublicKey(privateKey, compressed) {
      checkKeyShape(privateKey);
      if (!isValidPrivateKey(privateKey)) throw new OpenKeyError('INVALID_PRIVATE_KEY', 'private key out of range');
      return noble.getPublicKey(privateKey, compressed);
    },
    isValidPrivateKey,
    recover(digest, signature, compressed = false) {
      checkDigest(digest);
      const { compact, recid } = splitSignature(signature);
      try {
        return noble.Signature.fromCompact(compact).addRecoveryBit(recid).recoverPublicKey(digest).toRawBytes(compressed);
      } catch (e) {
        // r or s out of range, or r not the x-coordinate of a curve point: not a signature.
        throw new OpenKeyError('MALFORMED_REQUEST', 'signature does not recover', { cause: e });
      }
    },
  };
  knownAnswerTest(backend);
  return backend;
}

// ---- libsecp256k1 backend (the `secp256k1` package's N-API addon) ------------------------------

/** The slice of the `secp256k1` package's API this module uses (its lib/index.js wrapper). */
interface NativeSecp256k1 {
  privateKeyVerify(seckey: Uint8Array): boolean;
  publicKeyCreate(seckey: Uint8Array, compressed: boolean): Uint8Array;
  ecdsaSign(msg32: Uint8Array, seckey: Uint8Array, options: Record<string, never>, output: Uint8Array): { signature: Uint8Array; recid: number };
  ecdsaRecover(sig: Uint8Array, recid: number, msg32: Uint8Array, compressed: boolean): Uint8Array;
}

function isNativeSecp256k1(m: unknown): m is NativeSecp256k1 {
  if (typeof m !== 'object' || m === null) return false;
  for (const fn of ['privateKeyVerify', 'publicKeyCreate', 'ecdsaSign', 'ecdsaRecover']) {
    if (typeof (m as Record<string, unknown>)[fn] !== 'function') return false;
  }
  return true;
}

/**
 * Loads libsecp256k1 through `secp256k1/bindings.js`, which requires the compiled addon and never
 * falls back to the package's pure-JS `elliptic` implementation. Throws INTERNAL if the addon is
 * missing or fails the known-answer test below.
 */
export function createNativeSecp256k1Backend(): Secp256k1Backend {
  let lib: unknown;
  try {
    lib = createRequire(import.meta.url)('secp256k1/bindings.js');
  } catch (e) {
    throw new OpenKeyError('INTERNAL', 'native secp256k1 addon did not load', { cause: e });
  }
  if (!isNativeSecp256k1(lib)) throw new OpenKeyError('INTERNAL', 'native secp256k1 addon has an unexpected shape');
  const native = lib;
  const NO_OPTIONS: Record<string, never> = {};
  const isValidPrivateKey = (k: Uint8Array): boolean => k instanceof Uint8Array && k.length === 32 && native.privateKeyVerify(k);

  const backend: Secp256k1Backend = {
    name: 'native',
    sign(digest, privateKey) {
      checkDigest(digest);
      checkKeyShape(privateKey);
      const out = new Uint8Array(SIGNATURE_LENGTH);
      let recid: number;
      try {
        // libsecp256k1 signs with RFC 6979 (nonce_function_rfc6979, no extra data) and always
        // returns a normalized (low-S) signature with the matching recovery id.
        recid = native.ecdsaSign(digest, privateKey, NO_OPTIONS, out.subarray(0, 64)).recid;
      } catch (e) {
        // The only failure libsecp256k1 reports here is an invalid secret key (0 or ≥ n).
        throw new OpenKeyError('INVALID_PRIVATE_KEY', 'private key out of range', { cause: e });
      }
      out[64] = 27 + recid;
      return out;
    },
    getPublicKey(privateKey, compressed) {
      checkKeyShape(privateKey);
      if (!native.privateKeyVerify(privateKey)) throw new OpenKeyError('INVALID_PRIVATE_KEY', 'private key out of range');
      return Uint8Array.from(native.publicKeyCreate(privateKey, compressed));
    },
    isValidPrivateKey,
    recover(digest, signature, compressed = false) {
      checkDigest(digest);
      const { compact, recid } = splitSignature(signature);
      try {
        return Uint8Array.from(native.ecdsaRecover(compact, recid, digest, compressed));
      } catch (e) {
        throw new OpenKeyError('MALFORMED_REQUEST', 'signature does not recover', { cause: e });
      }
    },
  };
  knownAnswerTest(backend);
  return backend;
}

// EIP-712's own example (eips.ethereum.org/EIPS/eip-712, "Mail"): private key keccak256("cow"),
// digest of the example document, and the signature the specification publishes (v = 28).
const KAT_KEY = 'c85ef7d79691fe79573b1a7064c19c1a9819ebdbd1faaab1a8ec92344438aaf4';
const KAT_DIGEST = 'be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2';
const KAT_SIGNATURE =
  '4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b915621c';

function knownAnswerTest(backend: Secp256k1Backend): void {
  const key = fromHex(KAT_KEY);
  const sig = backend.sign(fromHex(KAT_DIGEST), key);
  key.fill(0);
  if (!equalBytes(sig, fromHex(KAT_SIGNATURE))) throw new OpenKeyError('INTERNAL', `${backend.name} secp256k1 failed its known-answer test`);
}

export interface LoadSecp256k1Options {
  /** 'noble' skips the native addon (e.g. to compare rates); default 'native'. */
  readonly prefer?: Secp256k1BackendName;
}

/**
 * The backend for this process: libsecp256k1 when its addon loads and passes the known-answer
 * test, @noble/curves otherwise. `backend.name` says which; `nativeError` why native was not used.
 */
export function loadSecp256k1(options: LoadSecp256k1Options = {}): { backend: Secp256k1Backend; nativeError?: OpenKeyError } {
  if (options.prefer === 'noble') return { backend: createNobleSecp256k1Backend() };
  try {
    return { backend: createNativeSecp256k1Backend() };
  } catch (e) {
    const nativeError = e instanceof OpenKeyError ? e : new OpenKeyError('INTERNAL', 'native secp256k1 unavailable', { cause: e });
    return { backend: createNobleSecp256k1Backend(), nativeError };
  }
}
