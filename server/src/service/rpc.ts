// The appliance's RPC implementation, once, for every transport: connect-node (Connect, gRPC-Web,
// gRPC over HTTP/2) and grpc-js (plain gRPC) both call these methods with a decoded request and
// the call's metadata. Here the request digest is computed for the stamp, wire messages become
// domain inputs (wire.ts), and each response gets its receipt. No business logic lives here.

import { create, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { createHash } from 'node:crypto';
import {
  GetImportKeyResponseSchema,
  GetKeyRequestSchema,
  GetKeyResponseSchema,
  ListKeysRequestSchema,
  ListKeysResponseSchema,
  SealKeyRequestSchema,
  SealKeyResponseSchema,
  type GetImportKeyRequest,
  type GetImportKeyResponse,
  type GetKeyRequest,
  type GetKeyResponse,
  type ListKeysRequest,
  type ListKeysResponse,
  type SealKeyRequest,
  type SealKeyResponse,
} from '../../../proto/gen/openkey/v1/keys_pb.ts';
import {
  CreatePrincipalRequestSchema,
  CreatePrincipalResponseSchema,
  WhoAmIRequestSchema,
  WhoAmIResponseSchema,
  type CreatePrincipalRequest,
  type CreatePrincipalResponse,
  type WhoAmIRequest,
  type WhoAmIResponse,
} from '../../../proto/gen/openkey/v1/principals_pb.ts';
import {
  SignBatchRequestSchema,
  SignBatchResponseSchema,
  SignRequestSchema,
  SignResponseSchema,
  type SignBatchRequest,
  type SignBatchResponse,
  type SignRequest,
  type SignResponse,
} from '../../../proto/gen/openkey/v1/signing_pb.ts';
import { IMPORT_SUITE } from '../../../proto/protocol/key-import.ts';
import type { AttestRequest, AttestResponse } from '../../../proto/gen/openkey/v1/attest_pb.ts';
import type { AttestationService } from '../core/attestation.ts';
import type { Authenticator, AuthRequest } from '../core/auth.ts';
import type { KeyService } from '../core/keys.ts';
import type { PrincipalService } from '../core/principals.ts';
import type { ReceiptSigner } from '../core/receipts.ts';
import type { SignService } from '../core/signing.ts';
import { evidenceToWire, keyAlgorithmFromWire, keyToWire, principalAlgorithmFromWire, principalToWire, receiptToWire, signItemFromWire } from './wire.ts';

/** What a transport knows about a call. */
export interface CallMeta {
  /** The `openkey-stamp` header, if present. */
  readonly stamp: string | undefined;
  /** Correlates log lines of one call; never derived from secrets. */
  readonly requestId: string;
}

export interface ApplianceCore {
  readonly attestation: AttestationService;
  readonly auth: Authenticator;
  readonly principals: PrincipalService;
  readonly keys: KeyService;
  readonly signing: SignService;
  readonly receipts: ReceiptSigner;
}


export const METHODS = {
  sealKey: '/openkey.v1.KeyService/SealKey',
  getKey: '/openkey.v1.KeyService/GetKey',
  listKeys: '/openkey.v1.KeyService/ListKeys',
  getImportKey: '/openkey.v1.KeyService/GetImportKey',
  sign: '/openkey.v1.SignService/Sign',
  signBatch: '/openkey.v1.SignService/SignBatch',
  createPrincipal: '/openkey.v1.PrincipalService/CreatePrincipal',
  whoAmI: '/openkey.v1.PrincipalService/WhoAmI',
  attest: '/openkey.v1.AttestService/Attest',
} as const;

/** SHA-256 of a message's deterministic protobuf encoding: what stamps and receipts sign. */
export function messageDigest<D extends DescMessage>(schema: D, message: MessageShape<D>): Uint8Array {
  return new Uint8Array(createHash('sha256').update(toBinary(schema, message)).digest());
}

export class ApplianceRpc {
  constructor(private readonly core: ApplianceCore) {}

  async sealKey(req: SealKeyRequest, meta: CallMeta): Promise<SealKeyResponse> {
    const ar = authRequest(METHODS.sealKey, messageDigest(SealKeyRequestSchema, req), meta);
    const algorithm = keyAlgorithmFromWire(req.algorithm);
    const auth = await this.core.auth.authenticate(ar);
    const key = await this.core.keys.create(auth, {
      algorithm,
      label: req.label,
      rawDigestSigning: req.allowRawDigestSigning,
      ...(req.import === undefined ? {} : { import: { enc: req.import.enc, ciphertext: req.import.ciphertext } }),
    });
    const res = create(SealKeyResponseSchema, { key: keyToWire(key) });
    res.receipt = this.receipt(ar, SealKeyResponseSchema, res, key.keyId);
    return res;
  }

  async getKey(req: GetKeyRequest, meta: CallMeta): Promise<GetKeyResponse> {
    const auth = await this.core.auth.authenticate(authRequest(METHODS.getKey, messageDigest(GetKeyRequestSchema, req), meta));
    return create(GetKeyResponseSchema, { key: keyToWire(await this.core.keys.get(auth, req.keyId)) });
  }

  async listKeys(req: ListKeysRequest, meta: CallMeta): Promise<ListKeysResponse> {
    const auth = await this.core.auth.authenticate(authRequest(METHODS.listKeys, messageDigest(ListKeysRequestSchema, req), meta));
    const page = await this.core.keys.list(auth, req.pageSize, req.pageToken);
    return create(ListKeysResponseSchema, { keys: page.keys.map(keyToWire), nextPageToken: page.nextPageToken });
  }

  /** Unauthenticated: the import key is public (and, with attestation, bound to the appliance). */
  getImportKey(_req: GetImportKeyRequest, _meta: CallMeta): Promise<GetImportKeyResponse> {
    return Promise.resolve(create(GetImportKeyResponseSchema, { publicKey: this.core.keys.importPublicKey, suite: IMPORT_SUITE }));
  }

  async sign(req: SignRequest, meta: CallMeta): Promise<SignResponse> {
    const ar = authRequest(METHODS.sign, messageDigest(SignRequestSchema, req), meta);
    const auth = await this.core.auth.authenticate(ar);
    const sig = await this.core.signing.sign(auth, signItemFromWire(req));
    const res = create(SignResponseSchema, { signature: sig.signature, digest: sig.digest, keyId: sig.keyId });
    res.receipt = this.receipt(ar, SignResponseSchema, res, sig.keyId);
    return res;
  }

  async signBatch(req: SignBatchRequest, meta: CallMeta): Promise<SignBatchResponse> {
    const ar = authRequest(METHODS.signBatch, messageDigest(SignBatchRequestSchema, req), meta);
    const auth = await this.core.auth.authenticate(ar);
    const sigs = await this.core.signing.signBatch(auth, req.items.map(signItemFromWire));
    const res = create(SignBatchResponseSchema, {
      results: sigs.map((s) => create(SignResponseSchema, { signature: s.signature, digest: s.digest, keyId: s.keyId })),
    });
    res.receipt = this.receipt(ar, SignBatchResponseSchema, res, '');
    return res;
  }

  async createPrincipal(req: CreatePrincipalRequest, meta: CallMeta): Promise<CreatePrincipalResponse> {
    const ar = authRequest(METHODS.createPrincipal, messageDigest(CreatePrincipalRequestSchema, req), meta);
    const principal = await this.core.principals.create(ar, {
      algorithm: principalAlgorithmFromWire(req.algorithm),
      publicKey: req.publicKey,
      name: req.name,
    });
    return create(CreatePrincipalResponseSchema, { principal: principalToWire(principal) });
  }

  async whoAmI(req: WhoAmIRequest, meta: CallMeta): Promise<WhoAmIResponse> {
    const principal = await this.core.principals.whoAmI(authRequest(METHODS.whoAmI, messageDigest(WhoAmIRequestSchema, req), meta));
    return create(WhoAmIResponseSchema, { principal: principalToWire(principal) });
  }

  /** Unauthenticated: evidence is public, and bound to the caller's nonce. */
  async attest(req: AttestRequest, _meta: CallMeta): Promise<AttestResponse> {
    return evidenceToWire(await this.core.attestation.attest(req.nonce));
  }

  /** Receipt over the response as it stands (receipt field unset). */
  private receipt<D extends DescMessage>(ar: AuthRequest, schema: D, res: MessageShape<D>, keyId: string) {
    return receiptToWire(
      this.core.receipts.sign({
        method: ar.method,
        requestDigest: ar.bodyDigest,
        responseDigest: messageDigest(schema, res),
        keyId,
        decision: 'allow',
      }),
    );
  }
}

function authRequest(method: string, bodyDigest: Uint8Array, meta: CallMeta): AuthRequest {
  return { method, bodyDigest, stamp: meta.stamp };
}
