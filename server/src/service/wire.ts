// The one place that converts between generated wire messages (proto/gen) and domain types.
// Enum values outside the known set, unset oneofs and empty required fields are rejected here with
// domain error codes; the domain never sees a proto type.

import { create } from '@bufbuild/protobuf';
import { KeyAlgorithm as WireKeyAlgorithm, KeyInfoSchema, ReceiptSchema, type KeyInfo, type Receipt } from '../../../proto/gen/openkey/v1/common_pb.ts';
import {
  PrincipalKeyAlgorithm as WirePrincipalAlgorithm,
  PrincipalRole as WireRole,
  PrincipalSchema,
  type Principal,
} from '../../../proto/gen/openkey/v1/principals_pb.ts';
import type { SignPayload as WireSignPayload, SignRequest } from '../../../proto/gen/openkey/v1/signing_pb.ts';
import { AppInfoSchema, AttestResponseSchema, type AttestResponse } from '../../../proto/gen/openkey/v1/attest_pb.ts';
import type { AttestationEvidence } from '../core/attestation.ts';
import { OpenKeyError } from '../core/errors.ts';
import type { KeyView } from '../core/keys.ts';
import type { KeyAlgorithm, PrincipalAlgorithm, PrincipalRecord } from '../core/ports.ts';
import type { SignedReceipt } from '../core/receipts.ts';
import type { SignItem, SignPayload } from '../core/signing.ts';

export function keyAlgorithmFromWire(a: WireKeyAlgorithm): KeyAlgorithm {
  switch (a) {
    case WireKeyAlgorithm.SECP256K1:
      return 'secp256k1';
    case WireKeyAlgorithm.ED25519:
      return 'ed25519';
    case WireKeyAlgorithm.UNSPECIFIED:
      throw new OpenKeyError('MISSING_FIELD', 'algorithm');
    default:
      throw new OpenKeyError('UNSUPPORTED_ALGORITHM', `key algorithm ${String(a)}`);
  }
}

export function keyAlgorithmToWire(a: KeyAlgorithm): WireKeyAlgorithm {
  return a === 'secp256k1' ? WireKeyAlgorithm.SECP256K1 : WireKeyAlgorithm.ED25519;
}

export function principalAlgorithmFromWire(a: WirePrincipalAlgorithm): PrincipalAlgorithm {
  switch (a) {
    case WirePrincipalAlgorithm.ED25519:
      return 'ed25519';
    case WirePrincipalAlgorithm.P256:
      return 'p256';
    case WirePrincipalAlgorithm.UNSPECIFIED:
      throw new OpenKeyError('MISSING_FIELD', 'algorithm');
    default:
      throw new OpenKeyError('UNSUPPORTED_ALGORITHM', `principal algorithm ${String(a)}`);
  }
}

export function principalToWire(p: PrincipalRecord): Principal {
  return create(PrincipalSchema, {
    id: p.id,
    role: p.role === 'admin' ? WireRole.ADMIN : WireRole.SERVICE,
    algorithm: p.algorithm === 'ed25519' ? WirePrincipalAlgorithm.ED25519 : WirePrincipalAlgorithm.P256,
    publicKey: p.publicKey,
    name: p.name,
    createdAtMs: BigInt(p.createdAt),
  });
}

export function keyToWire(k: KeyView): KeyInfo {
  return create(KeyInfoSchema, {
    keyId: k.keyId,
    algorithm: keyAlgorithmToWire(k.algorithm),
    publicKey: k.publicKey,
    address: k.address,
    did: k.did,
    owner: k.owner,
    label: k.label,
    rawDigestSigning: k.rawDigestSigning,
    createdAtMs: BigInt(k.createdAt),
  });
}

export function receiptToWire(r: SignedReceipt): Receipt {
  return create(ReceiptSchema, {
    version: r.version,
    method: r.method,
    requestDigest: r.requestDigest,
    responseDigest: r.responseDigest,
    keyId: r.keyId,
    decision: r.decision,
    timeMs: BigInt(r.timeMs),
    signature: r.signature,
  });
}

export function signItemFromWire(req: SignRequest): SignItem {
  return { keyId: req.keyId, payload: req.payload === undefined ? undefined : payloadFromWire(req.payload) };
}

function payloadFromWire(p: WireSignPayload): SignPayload | undefined {
  const k = p.kind;
  switch (k.case) {
    case 'personalMessage':
      return { kind: 'personalMessage', message: k.value.message };
    case 'typedData':
      return { kind: 'typedData', json: k.value.json };
    case 'rawDigest':
      return { kind: 'rawDigest', digest: k.value };
    case 'ed25519Message':
      return { kind: 'ed25519Message', message: k.value };
    case undefined:
      return undefined;
  }
}

export function evidenceToWire(e: AttestationEvidence): AttestResponse {
  const a = e.appInfo;
  return create(AttestResponseSchema, {
    quote: e.quote,
    eventLog: e.eventLog,
    appInfo: create(AppInfoSchema, {
      appId: a.appId,
      instanceId: a.instanceId,
      composeHash: a.composeHash,
      osImageHash: a.osImageHash,
      keyProviderInfo: a.keyProviderInfo,
      appName: a.appName,
      deviceId: a.deviceId,
      vmConfig: e.vmConfig,
    }),
    identityPublicKey: e.identity.publicKey,
    identitySignatureChain: [...e.identity.signatureChain],
    identityKeyPurpose: e.identity.purpose,
    collateralJson: e.collateralJson,
    importPublicKey: e.identity.importPublicKey,
    importKeySignature: e.identity.importKeySignature,
  });
}
