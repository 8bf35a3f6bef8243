// The dstack KMS signature chain of a GetKey-derived key (reference §2.2): chain[0] is the app root
// key's secp256k1 signature over keccak256("{purpose}:{hex(pubkey)}"); chain[1] is the KMS root's
// over keccak256("dstack-kms-issued:" ‖ app_id ‖ compressed app key). The recovered KMS root must
// equal the caller's pinned one. The derivation path is not covered by either signature.

import { bytesEqual, concatBytes, toHex, utf8 } from '../bytes.ts';
import { keccak_256, recoverSecp256k1 } from '../crypto.ts';
import { VerifierError, ensure } from '../errors.ts';
import { secp256k1 } from '@noble/curves/secp256k1.js';

export interface KmsChainInput {
  /** The derived public key the chain vouches for (bytes as dstack hex-encodes them). */
  readonly publicKey: Uint8Array;
  /** The GetKey purpose the key was derived with. */
  readonly purpose: string;
  /** The 20-byte dstack app id (from the attested app-id event). */
  readonly appId: Uint8Array;
  /** [app-key signature, KMS signature], 65 bytes each (r‖s‖v). */
  readonly signatureChain: readonly Uint8Array[];
  /** The pinned KMS root secp256k1 key (33-byte compressed or 65-byte uncompressed SEC1). */
  readonly kmsRootPublicKey: Uint8Array;
}

export interface KmsChainResult {
  /** The app root key (compressed) that signed the derived key. */
  readonly appRootPublicKey: Uint8Array;
  /** The KMS root key (compressed) that issued the app root key. */
  readonly kmsRootPublicKey: Uint8Array;
}

function compressed(key: Uint8Array): Uint8Array {
  try {
    return secp256k1.Point.fromBytes(key).toBytes(true);
  } catch (e: unknown) {
    throw new VerifierError('INVALID_ARGUMENT', 'pinned KMS root is not a secp256k1 point', { cause: e });
  }
}

/** Verifies the chain and returns the recovered keys; throws KMS_SIGNATURE_INVALID / KMS_ROOT_MISMATCH. */
export function verifyKmsSignatureChain(input: KmsChainInput): KmsChainResult {
  ensure(input.kmsRootPublicKey instanceof Uint8Array, 'INVALID_ARGUMENT', 'kmsRootPublicKey');
  ensure(input.publicKey instanceof Uint8Array && typeof input.purpose === 'string', 'INVALID_ARGUMENT', 'publicKey/purpose');
  ensure(input.appId instanceof Uint8Array && input.appId.length === 20, 'INVALID_ARGUMENT', 'app id must be 20 bytes');
  const pinned = compressed(input.kmsRootPublicKey);
  const chain: readonly unknown[] = Array.isArray(input.signatureChain) ? input.signatureChain : [];
  ensure(chain.length === 2, 'KMS_SIGNATURE_INVALID', 'expected two signatures');
  const [appSig, kmsSig] = chain;
  ensure(appSig instanceof Uint8Array && kmsSig instanceof Uint8Array, 'KMS_SIGNATURE_INVALID');
  const appRoot = recoverSecp256k1(appSig, keccak_256(utf8(`${input.purpose}:${toHex(input.publicKey)}`)));
  ensure(appRoot !== undefined, 'KMS_SIGNATURE_INVALID', 'app key signature');
  const kmsRoot = recoverSecp256k1(kmsSig, keccak_256(concatBytes(utf8('dstack-kms-issued:'), input.appId, appRoot)));
  ensure(kmsRoot !== undefined, 'KMS_SIGNATURE_INVALID', 'KMS signature');
  ensure(bytesEqual(kmsRoot, pinned), 'KMS_ROOT_MISMATCH');
  return { appRootPublicKey: appRoot, kmsRootPublicKey: kmsRoot };
}
