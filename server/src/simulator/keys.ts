// dstack key derivation and GetKey signature chains, exactly as the guest agent and KMS do them
// (reference/attestation.md §2.1): HKDF-SHA256 with salt "RATLS", the app k256 key per app id, and
// the two recoverable secp256k1 signatures that vouch for a derived key. Also where the simulator's
// KMS root comes from: a dev seed, or a dstack-style appkeys.json.

import { secp256k1 } from '@noble/curves/secp256k1.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { OpenKeyError } from '../core/errors.ts';
import { bytesOf, concatBytes, fromHex, toHex, utf8 } from '../core/bytes.ts';

export type SimKeyAlgorithm = 'secp256k1' | 'ed25519';

/** What the simulator's "KMS" handed this app: its k256 key and the KMS root's signature over it. */
export interface AppKeyMaterial {
  /** 20 raw bytes. */
  readonly appId: Uint8Array;
  /** The app's k256 root key (secret, 32 bytes). */
  readonly appK256Key: Uint8Array;
  /** KMS root signature over keccak256("dstack-kms-issued:" ‖ app_id ‖ app pubkey), r‖s‖v. */
  readonly kmsSignature: Uint8Array;
  /** Compressed secp256k1 public key of the KMS root (recovered, or computed from the root). */
  readonly kmsRootPublicKey: Uint8Array;
}

export interface DerivedKey {
  readonly key: Uint8Array;
  /** Compressed secp256k1 (33 B) or raw ed25519 (32 B) public key. */
  readonly publicKey: Uint8Array;
  readonly signatureChain: readonly [Uint8Array, Uint8Array];
}

const RATLS_SALT = utf8('RATLS');
const KMS_ISSUED_TAG = utf8('dstack-kms-issued:');

/** dstack `ra-tls/src/kdf.rs` derive_key: HKDF-SHA256(salt "RATLS", ikm, info = concat(parts)). */
export function dstackKdf(ikm: Uint8Array, info: readonly Uint8Array[], length = 32): Uint8Array {
  return hkdf(sha256, ikm, RATLS_SALT, concatBytes(...info), length);
}

/** secp256k1 recoverable signature over keccak256(message): r‖s‖v with v ∈ {0,1}, low-S (§2.1). */
export function signRecoverable(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  const sig = secp256k1.sign(keccak_256(message), secretKey, { lowS: true });
  return concatBytes(sig.toCompactRawBytes(), Uint8Array.of(sig.recovery));
}

/** The message the KMS root signs when it issues an app key (§2.1, `k256_signature`). */
export function kmsIssuedMessage(appId: Uint8Array, appPublicKey: Uint8Array): Uint8Array {
  return concatBytes(KMS_ISSUED_TAG, appId, appPublicKey);
}

function assertSecpSecret(key: Uint8Array, label: string): Uint8Array {
  if (!secp256k1.utils.isValidSecretKey(key)) throw new OpenKeyError('INTERNAL', `${label}: not a valid secp256k1 scalar`);
  return key;
}

/** KMS side (§2.1): app k256 key = HKDF(k256_root, app_id ‖ "app-key"), plus the root's signature. */
export function issueAppKey(kmsRoot: Uint8Array, appId: Uint8Array): AppKeyMaterial {
  bytesOf(appId, 'INTERNAL', 'app id', 20);
  assertSecpSecret(kmsRoot, 'kms root');
  const appK256Key = assertSecpSecret(dstackKdf(kmsRoot, [appId, utf8('app-key')]), 'app key');
  const appPub = secp256k1.getPublicKey(appK256Key, true);
  return {
    appId: Uint8Array.from(appId),
    appK256Key,
    kmsSignature: signRecoverable(kmsRoot, kmsIssuedMessage(appId, appPub)),
    kmsRootPublicKey: secp256k1.getPublicKey(kmsRoot, true),
  };
}

/**
 * The dev KMS root for a seed. Domain-separated from every other seed use; deterministic so that a
 * restarted dev simulator hands out the same keys (sealed dev data stays readable).
 */
export function devKmsRoot(seed: Uint8Array): Uint8Array {
  return assertSecpSecret(hkdf(sha256, seed, utf8('openkey-dev-simulator'), utf8('kms-k256-root'), 32), 'dev kms root');
}

function field(obj: Record<string, unknown>, name: string): string {
  const v = obj[name];
  if (typeof v !== 'string') throw new OpenKeyError('MALFORMED_REQUEST', `appkeys: ${name} missing`);
  return v;
}

/**
 * Key material from a dstack simulator `appkeys.json` (`k256_key` is already the app key,
 * `k256_signature` the KMS root's signature for `appId`). The KMS root public key is recovered
 * from that signature, so a mismatched app id shows up as an unexpected root, not silently.
 */
export function appKeysFromDstackJson(json: string, appIdHex: string): AppKeyMaterial {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (e) {
    throw new OpenKeyError('MALFORMED_REQUEST', 'appkeys: not JSON', { cause: e });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new OpenKeyError('MALFORMED_REQUEST', 'appkeys: not an object');
  }
  const obj: Record<string, unknown> = { ...parsed };
  const appId = bytesOf(fromHex(appIdHex, 'MALFORMED_REQUEST', 'app id'), 'MALFORMED_REQUEST', 'app id', 20);
  const appK256Key = bytesOf(fromHex(field(obj, 'k256_key'), 'MALFORMED_REQUEST', 'k256_key'), 'MALFORMED_REQUEST', 'k256_key', 32);
  if (!secp256k1.utils.isValidSecretKey(appK256Key)) throw new OpenKeyError('MALFORMED_REQUEST', 'appkeys: k256_key out of range');
  const kmsSignature = bytesOf(
    fromHex(field(obj, 'k256_signature'), 'MALFORMED_REQUEST', 'k256_signature'),
    'MALFORMED_REQUEST',
    'k256_signature',
    65,
  );
  const appPub = secp256k1.getPublicKey(appK256Key, true);
  const kmsRootPublicKey = recoverCompressed(kmsSignature, kmsIssuedMessage(appId, appPub));
  return { appId, appK256Key, kmsSignature, kmsRootPublicKey };
}

function recoverCompressed(sig65: Uint8Array, message: Uint8Array): Uint8Array {
  const v = sig65[64];
  if (v !== 0 && v !== 1) throw new OpenKeyError('MALFORMED_REQUEST', 'signature: recovery id not 0/1');
  try {
    return secp256k1.Signature.fromCompact(sig65.subarray(0, 64))
      .addRecoveryBit(v)
      .recoverPublicKey(keccak_256(message))
      .toRawBytes(true);
  } catch (e) {
    throw new OpenKeyError('MALFORMED_REQUEST', 'signature: not recoverable', { cause: e });
  }
}

/**
 * Guest-agent GetKey (§2.1, `rpc_service.rs` get_key): derived = HKDF(app key, utf8(path)); the app
 * key signs "{purpose}:{hex(pubkey)}"; the KMS signature is chain[1]. The same 32 bytes serve both
 * algorithms (only the public key differs); the path is not signed, only the purpose.
 */
export function deriveGetKey(app: AppKeyMaterial, path: string, purpose: string, algorithm: SimKeyAlgorithm): DerivedKey {
  const key = dstackKdf(app.appK256Key, [utf8(path)]);
  let publicKey: Uint8Array;
  if (algorithm === 'ed25519') {
    publicKey = ed25519.getPublicKey(key);
  } else {
    assertSecpSecret(key, 'derived key');
    publicKey = secp256k1.getPublicKey(key, true);
  }
  const appSig = signRecoverable(app.appK256Key, utf8(`${purpose}:${toHex(publicKey)}`));
  return { key, publicKey, signatureChain: [appSig, Uint8Array.from(app.kmsSignature)] };
}
