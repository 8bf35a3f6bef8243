// The appliance's RPC implementation, once, for every transport: connect-node (Connect, gRPC-Web,
// gRPC over HTTP/2) and grpc-js (plain gRPC) both call these methods with a decoded request and
// the call's metadata. Here the request digest is computed for the stamp, wire messages become
// domain inputs (wire.ts), and each response gets its receipt. No business logic lives here.

import { create, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
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
  OpenSessionRequestSchema,
  OpenSessionResponseSchema,
  CloseSessionRequestSchema,
  CloseSessionResponseSchema,
  type CloseSessionRequest,
  type CloseSessionResponse,
  type OpenSessionRequest,
  type OpenSessionResponse,
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
import {
  ExportAuditRequestSchema,
  GetAuditHeadRequestSchema,
  GetAuditHeadResponseSchema,
  type ExportAuditRequest,
  type ExportAuditResponse,
  type GetAuditHeadRequest,
  type GetAuditHeadResponse,
} from '../../../proto/gen/openkey/v1/audit_pb.ts';
import type { PasskeyApproval, Receipt } from '../../../proto/gen/openkey/v1/common_pb.ts';
import {
  BeginLoginResponseSchema,
  BeginRegistrationRequestSchema,
  BeginRegistrationResponseSchema,
  FinishLoginResponseSchema,
  FinishRegistrationResponseSchema,
  ListPasskeysRequestSchema,
  ListPasskeysResponseSchema,
  LogoutRequestSchema,
  LogoutResponseSchema,
  type BeginLoginRequest,
  type BeginLoginResponse,
  type BeginRegistrationRequest,
  type BeginRegistrationResponse,
  type FinishLoginRequest,
  type FinishLoginResponse,
  type FinishRegistrationRequest,
  type FinishRegistrationResponse,
  type ListPasskeysRequest,
  type ListPasskeysResponse,
  type LogoutRequest,
  type LogoutResponse,
} from '../../../proto/gen/openkey/v1/passkeys_pb.ts';
import {
  GetPolicyRequestSchema,
  GetPolicyResponseSchema,
  GrantRequestSchema,
  GrantResponseSchema,
  RevokeRequestSchema,
  RevokeResponseSchema,
  SetOwnerRuleRequestSchema,
  SetOwnerRuleResponseSchema,
  type GetPolicyRequest,
  type GetPolicyResponse,
  type GrantRequest,
  type GrantResponse,
  type RevokeRequest,
  type RevokeResponse,
  type SetOwnerRuleRequest,
  type SetOwnerRuleResponse,
} from '../../../proto/gen/openkey/v1/policy_pb.ts';
import {
  CreateGrantRequestSchema,
  CreateGrantResponseSchema,
  DelegateRequestSchema,
  DelegateResponseSchema,
  GetDelegationNonceResponseSchema,
  ListDelegationsRequestSchema,
  ListDelegationsResponseSchema,
  ListGrantsRequestSchema,
  ListGrantsResponseSchema,
  RevokeGrantRequestSchema,
  RevokeGrantResponseSchema,
  type CreateGrantRequest,
  type CreateGrantResponse,
  type DelegateRequest,
  type DelegateResponse,
  type GetDelegationNonceRequest,
  type GetDelegationNonceResponse,
  type ListDelegationsRequest,
  type ListDelegationsResponse,
  type ListGrantsRequest,
  type ListGrantsResponse,
  type RevokeGrantRequest,
  type RevokeGrantResponse,
} from '../../../proto/gen/openkey/v1/delegation_pb.ts';
import type { AuditLog } from '../core/audit.ts';
import type { Delegations } from '../core/delegations.ts';
import type { KeyPolicies, PolicyChange, StoredPolicy } from '../core/key-policies.ts';
import type { ApprovalCheck, People } from '../core/people.ts';
import { OpenKeyError } from '../core/errors.ts';
import type { AttestRequest, AttestResponse } from '../../../proto/gen/openkey/v1/attest_pb.ts';
import type { AttestationService } from '../core/attestation.ts';
import type { Authenticated, Authenticator, AuthRequest } from '../core/auth.ts';
import type { KeyService } from '../core/keys.ts';
import type { PrincipalService } from '../core/principals.ts';
import type { ReceiptSigner } from '../core/receipts.ts';
import { attachReceipt } from './encoded.ts';
import { canonicalBytes } from './canonical.ts';
import { sha256 } from '../core/crypto/sha256.ts';
import type { ServiceSessionsPort } from '../core/service-sessions.ts';
import type { SignService } from '../core/signing.ts';
import {
  auditExportToWire,
  delegateInputFromWire,
  delegationGrantToWire,
  delegationToWire,
  issuedRecordToWire,
  newGrantFromWire,
  evidenceToWire,
  keyAlgorithmFromWire,
  keyGrantFromWire,
  keyPolicyToWire,
  keyToWire,
  passkeyToWire,
  principalAlgorithmFromWire,
  principalToWire,
  receiptToWire,
  sessionToWire,
  signedHeadToWire,
  signBatchResponseToWire,
  signItemFromWire,
  signResponseToWire,
  usageRuleFromWire,
} from './wire.ts';

/** What a transport knows about a call. */
export interface CallMeta {
  /** The `openkey-stamp` header, if present. */
  readonly stamp: string | undefined;
  /** The `openkey-session` header (service session), if present. */
  readonly sessionStamp?: string | undefined;
  /** Aborted when the call times out or the caller cancels it (transport/invoke.ts). */
  readonly signal?: AbortSignal | undefined;
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
  readonly people: People;
  readonly policies: KeyPolicies;
  readonly audit: AuditLog;
  readonly delegations: Delegations;
  readonly serviceSessions: ServiceSessionsPort;
  /** Who may read the audit log: any authenticated principal, or administrators only. */
  readonly auditReaders: 'any' | 'admin';
}


export const METHODS = {
  sealKey: '/openkey.v1.KeyService/SealKey',
  getKey: '/openkey.v1.KeyService/GetKey',
  listKeys: '/openkey.v1.KeyService/ListKeys',
  getImportKey: '/openkey.v1.KeyService/GetImportKey',
  sign: '/openkey.v1.SignService/Sign',
  signBatch: '/openkey.v1.SignService/SignBatch',
  signStream: '/openkey.v1.SignService/SignStream',
  createPrincipal: '/openkey.v1.PrincipalService/CreatePrincipal',
  whoAmI: '/openkey.v1.PrincipalService/WhoAmI',
  openSession: '/openkey.v1.PrincipalService/OpenSession',
  closeSession: '/openkey.v1.PrincipalService/CloseSession',
  attest: '/openkey.v1.AttestService/Attest',
  beginRegistration: '/openkey.v1.PasskeyService/BeginRegistration',
  finishRegistration: '/openkey.v1.PasskeyService/FinishRegistration',
  beginLogin: '/openkey.v1.PasskeyService/BeginLogin',
  finishLogin: '/openkey.v1.PasskeyService/FinishLogin',
  logout: '/openkey.v1.PasskeyService/Logout',
  listPasskeys: '/openkey.v1.PasskeyService/ListPasskeys',
  getPolicy: '/openkey.v1.PolicyService/GetPolicy',
  grant: '/openkey.v1.PolicyService/Grant',
  revoke: '/openkey.v1.PolicyService/Revoke',
  setOwnerRule: '/openkey.v1.PolicyService/SetOwnerRule',
  getAuditHead: '/openkey.v1.AuditService/GetAuditHead',
  exportAudit: '/openkey.v1.AuditService/ExportAudit',
  createGrant: '/openkey.v1.DelegationService/CreateGrant',
  revokeGrant: '/openkey.v1.DelegationService/RevokeGrant',
  listGrants: '/openkey.v1.DelegationService/ListGrants',
  getDelegationNonce: '/openkey.v1.DelegationService/GetDelegationNonce',
  delegate: '/openkey.v1.DelegationService/Delegate',
  listDelegations: '/openkey.v1.DelegationService/ListDelegations',
} as const;

/** SHA-256 of a message's deterministic protobuf encoding: what stamps and receipts sign. */
export function messageDigest<D extends DescMessage>(schema: D, message: MessageShape<D>): Uint8Array {
  return sha256(canonicalBytes(schema, message));
}

/** SHA-256 of the empty string: the body digest a SignStream's opening session header covers. */
const EMPTY_BODY_DIGEST = sha256(new Uint8Array(0));

/**
 * A SignStream after its one authentication. transport/sign-stream.ts drives it: it asks
 * `remainingMs` before each message and hands each message to `sign`.
 */
export interface SignStreamSession {
  /** How long the stream's service session still lives, milliseconds; 0 once it has ended. */
  remainingMs(): number;
  /** Decides and signs one message exactly like unary Sign, under the stream's authentication. */
  sign(req: SignRequest | undefined, signal: AbortSignal): Promise<SignResponse>;
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
    await this.attachReceipt(ar, SealKeyResponseSchema, res, key.keyId);
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
    // Not awaited here: signing reads the key and its policy while the caller is authenticated.
    const auth = this.core.auth.authenticate(ar);
    auth.catch(() => undefined); // handled below, whichever await reaches it first
    const item = await afterAuth(auth, () => signItemFromWire(req));
    const approval = this.approvalOf(METHODS.sign, SignRequestSchema, req);
    const sig = await this.core.signing.sign(auth, item, approval);
    const res = signResponseToWire(sig);
    await this.attachReceipt(ar, SignResponseSchema, res, sig.keyId);
    return res;
  }

  async signBatch(req: SignBatchRequest, meta: CallMeta): Promise<SignBatchResponse> {
    const ar = authRequest(METHODS.signBatch, messageDigest(SignBatchRequestSchema, req), meta);
    const auth = this.core.auth.authenticate(ar);
    auth.catch(() => undefined); // handled below, whichever await reaches it first
    if (req.items.some((i) => i.approval !== undefined)) {
      await auth;
      throw new OpenKeyError('MALFORMED_REQUEST', 'items[].approval: approve the batch instead');
    }
    const items = await afterAuth(auth, () => req.items.map(signItemFromWire));
    const approval = this.approvalOf(METHODS.signBatch, SignBatchRequestSchema, req);
    const sigs = await this.core.signing.signBatch(auth, items, approval);
    const res = signBatchResponseToWire(sigs);
    await this.attachReceipt(ar, SignBatchResponseSchema, res, '');
    return res;
  }

  /**
   * Authenticates a SignStream once, when it opens: only a service session will do, its header
   * computed over the method and the empty body. Authenticating consumes the header's sequence
   * number, so the same opening cannot be replayed; the messages that follow belong to this
   * authenticated stream and carry no MAC of their own.
   */
  async openSignStream(meta: CallMeta): Promise<SignStreamSession> {
    if (meta.sessionStamp === undefined || meta.sessionStamp === '') throw new OpenKeyError('UNAUTHENTICATED', 'SignStream requires a service session');
    const auth = await this.core.auth.authenticate(authRequest(METHODS.signStream, EMPTY_BODY_DIGEST, meta));
    const session = auth.serviceSession;
    // Only a service session reaches here today; refuse anything else should that ever change.
    if (session === undefined || auth.principal.role === 'person') throw new OpenKeyError('PERMISSION_DENIED', 'SignStream requires a service session');
    const sessions = this.core.serviceSessions;
    return {
      remainingMs: () => sessions.remainingMs(session.id),
      sign: (req, signal) => this.signInStream(auth, req, signal),
    };
  }

  /**
   * One stream message: the same decision as unary Sign, audited under the stream's principal,
   * with this message's own request digest and no nonce (the session's sequence number was spent
   * when the stream opened). Approvals belong to unary Sign, where the approved request is the call.
   */
  private async signInStream(opened: Authenticated, req: SignRequest | undefined, signal: AbortSignal): Promise<SignResponse> {
    if (req === undefined) throw new OpenKeyError('MISSING_FIELD', 'request');
    if (req.approval !== undefined) throw new OpenKeyError('MALFORMED_REQUEST', 'request.approval: approve through unary Sign');
    const requestDigest = messageDigest(SignRequestSchema, req);
    const auth: Authenticated = { ...opened, requestDigest, nonceChanges: [], signal };
    const sig = await this.core.signing.sign(auth, signItemFromWire(req));
    const res = signResponseToWire(sig);
    await this.attachReceipt({ method: METHODS.signStream, bodyDigest: requestDigest }, SignResponseSchema, res, sig.keyId);
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

  /** Stamped with the service's own key; the response's receipt binds the sealed secret to it. */
  async openSession(req: OpenSessionRequest, meta: CallMeta): Promise<OpenSessionResponse> {
    const ar = authRequest(METHODS.openSession, messageDigest(OpenSessionRequestSchema, req), meta);
    const opened = await this.core.serviceSessions.open(await this.core.auth.authenticate(ar), req.recipientPublicKey, req.ttlSeconds);
    const res = create(OpenSessionResponseSchema, {
      sessionId: opened.sessionId,
      enc: opened.enc,
      sealedSecret: opened.sealedSecret,
      expiresAtMs: BigInt(opened.expiresAt),
    });
    await this.attachReceipt(ar, OpenSessionResponseSchema, res, '');
    return res;
  }

  /** Stamped, or with a session of the same service; the receipt binds the answer to the request. */
  async closeSession(req: CloseSessionRequest, meta: CallMeta): Promise<CloseSessionResponse> {
    const ar = authRequest(METHODS.closeSession, messageDigest(CloseSessionRequestSchema, req), meta);
    const wasLive = await this.core.serviceSessions.close(await this.core.auth.authenticate(ar), req.sessionId);
    const res = create(CloseSessionResponseSchema, { wasLive });
    await this.attachReceipt(ar, CloseSessionResponseSchema, res, '');
    return res;
  }

  /** Unauthenticated: evidence is public, and bound to the caller's nonce. */
  async attest(req: AttestRequest, _meta: CallMeta): Promise<AttestResponse> {
    return evidenceToWire(await this.core.attestation.attest(req.nonce));
  }

  // ---- passkeys ----

  /** Unstamped: a new person (open registration). Stamped by a session: another passkey. */
  async beginRegistration(req: BeginRegistrationRequest, meta: CallMeta): Promise<BeginRegistrationResponse> {
    const auth = meta.stamp === undefined || meta.stamp === '' ? undefined : await this.core.auth.authenticate(authRequest(METHODS.beginRegistration, messageDigest(BeginRegistrationRequestSchema, req), meta));
    return create(BeginRegistrationResponseSchema, { optionsJson: await this.core.people.beginRegistration(auth, req.displayName) });
  }

  async finishRegistration(req: FinishRegistrationRequest, _meta: CallMeta): Promise<FinishRegistrationResponse> {
    const r = await this.core.people.finishRegistration(req.responseJson, req.passkeyName);
    return create(FinishRegistrationResponseSchema, r);
  }

  async beginLogin(req: BeginLoginRequest, _meta: CallMeta): Promise<BeginLoginResponse> {
    const optionsJson = await this.core.people.beginLogin(principalAlgorithmFromWire(req.sessionAlgorithm), req.sessionPublicKey);
    return create(BeginLoginResponseSchema, { optionsJson });
  }

  async finishLogin(req: FinishLoginRequest, _meta: CallMeta): Promise<FinishLoginResponse> {
    return create(FinishLoginResponseSchema, { session: sessionToWire(await this.core.people.finishLogin(req.responseJson)) });
  }

  async logout(req: LogoutRequest, meta: CallMeta): Promise<LogoutResponse> {
    const auth = await this.core.auth.authenticate(authRequest(METHODS.logout, messageDigest(LogoutRequestSchema, req), meta));
    await this.core.people.logout(auth);
    return create(LogoutResponseSchema, {});
  }

  async listPasskeys(req: ListPasskeysRequest, meta: CallMeta): Promise<ListPasskeysResponse> {
    const auth = await this.core.auth.authenticate(authRequest(METHODS.listPasskeys, messageDigest(ListPasskeysRequestSchema, req), meta));
    return create(ListPasskeysResponseSchema, { passkeys: (await this.core.people.listPasskeys(auth)).map(passkeyToWire) });
  }

  // ---- policy ----

  async getPolicy(req: GetPolicyRequest, meta: CallMeta): Promise<GetPolicyResponse> {
    const auth = await this.core.auth.authenticate(authRequest(METHODS.getPolicy, messageDigest(GetPolicyRequestSchema, req), meta));
    return create(GetPolicyResponseSchema, { policy: keyPolicyToWire(req.keyId, await this.core.policies.get(auth, req.keyId)) });
  }

  async grant(req: GrantRequest, meta: CallMeta): Promise<GrantResponse> {
    const { ar, policy } = await this.changePolicy(METHODS.grant, GrantRequestSchema, req, meta, () => ({ kind: 'grant', grant: keyGrantFromWire(req.grant) }));
    const res = create(GrantResponseSchema, { policy: keyPolicyToWire(req.keyId, policy) });
    await this.attachReceipt(ar, GrantResponseSchema, res, req.keyId);
    return res;
  }

  async revoke(req: RevokeRequest, meta: CallMeta): Promise<RevokeResponse> {
    const { ar, policy } = await this.changePolicy(METHODS.revoke, RevokeRequestSchema, req, meta, () => {
      if (req.grantId === '') throw new OpenKeyError('MISSING_FIELD', 'grant_id');
      return { kind: 'revoke', grantId: req.grantId };
    });
    const res = create(RevokeResponseSchema, { policy: keyPolicyToWire(req.keyId, policy) });
    await this.attachReceipt(ar, RevokeResponseSchema, res, req.keyId);
    return res;
  }

  async setOwnerRule(req: SetOwnerRuleRequest, meta: CallMeta): Promise<SetOwnerRuleResponse> {
    const { ar, policy } = await this.changePolicy(METHODS.setOwnerRule, SetOwnerRuleRequestSchema, req, meta, () => ({
      kind: 'set_owner_rule',
      rule: req.rule === undefined ? undefined : usageRuleFromWire(req.rule),
    }));
    const res = create(SetOwnerRuleResponseSchema, { policy: keyPolicyToWire(req.keyId, policy) });
    await this.attachReceipt(ar, SetOwnerRuleResponseSchema, res, req.keyId);
    return res;
  }

  private async changePolicy<D extends DescMessage>(
    method: string,
    schema: D,
    req: MessageShape<D> & { keyId: string; approval?: PasskeyApproval | undefined },
    meta: CallMeta,
    change: () => PolicyChange,
  ): Promise<{ ar: AuthRequest; policy: StoredPolicy }> {
    const ar = authRequest(method, messageDigest(schema, req), meta);
    const auth = await this.core.auth.authenticate(ar);
    const c = change();
    const policy = await this.core.policies.change(auth, req.keyId, c, this.approvalOf(method, schema, req));
    return { ar, policy };
  }

  // ---- delegations ----

  async createGrant(req: CreateGrantRequest, meta: CallMeta): Promise<CreateGrantResponse> {
    const ar = authRequest(METHODS.createGrant, messageDigest(CreateGrantRequestSchema, req), meta);
    const auth = await this.core.auth.authenticate(ar);
    const grant = await this.core.delegations.createGrant(auth, newGrantFromWire(req), this.approvalOf(METHODS.createGrant, CreateGrantRequestSchema, req));
    const res = create(CreateGrantResponseSchema, { grant: delegationGrantToWire(req.keyId, grant) });
    await this.attachReceipt(ar, CreateGrantResponseSchema, res, req.keyId);
    return res;
  }

  async revokeGrant(req: RevokeGrantRequest, meta: CallMeta): Promise<RevokeGrantResponse> {
    const ar = authRequest(METHODS.revokeGrant, messageDigest(RevokeGrantRequestSchema, req), meta);
    const auth = await this.core.auth.authenticate(ar);
    const grant = await this.core.delegations.revokeGrant(auth, req.keyId, req.grantId, this.approvalOf(METHODS.revokeGrant, RevokeGrantRequestSchema, req));
    const res = create(RevokeGrantResponseSchema, { grant: delegationGrantToWire(req.keyId, grant) });
    await this.attachReceipt(ar, RevokeGrantResponseSchema, res, req.keyId);
    return res;
  }

  async listGrants(req: ListGrantsRequest, meta: CallMeta): Promise<ListGrantsResponse> {
    const auth = await this.core.auth.authenticate(authRequest(METHODS.listGrants, messageDigest(ListGrantsRequestSchema, req), meta));
    const grants = await this.core.delegations.listGrants(auth, req.keyId);
    return create(ListGrantsResponseSchema, { grants: grants.map((g) => delegationGrantToWire(req.keyId, g)) });
  }

  /** Unauthenticated: a nonce is useless without a quote that binds it, and single use. */
  async getDelegationNonce(_req: GetDelegationNonceRequest, _meta: CallMeta): Promise<GetDelegationNonceResponse> {
    return create(GetDelegationNonceResponseSchema, { nonce: await this.core.delegations.nonce() });
  }

  async delegate(req: DelegateRequest, meta: CallMeta): Promise<DelegateResponse> {
    const ar = authRequest(METHODS.delegate, messageDigest(DelegateRequestSchema, req), meta);
    const auth = await this.core.auth.authenticate(ar);
    const d = await this.core.delegations.delegate(auth, delegateInputFromWire(req));
    const res = delegationToWire(d);
    await this.attachReceipt(ar, DelegateResponseSchema, res, req.keyId);
    return res;
  }

  async listDelegations(req: ListDelegationsRequest, meta: CallMeta): Promise<ListDelegationsResponse> {
    const auth = await this.core.auth.authenticate(authRequest(METHODS.listDelegations, messageDigest(ListDelegationsRequestSchema, req), meta));
    const list = await this.core.delegations.listDelegations(auth, req.keyId, req.grantId);
    return create(ListDelegationsResponseSchema, { delegations: list.map(issuedRecordToWire) });
  }

  // ---- audit ----

  async getAuditHead(req: GetAuditHeadRequest, meta: CallMeta): Promise<GetAuditHeadResponse> {
    await this.auditReader(METHODS.getAuditHead, messageDigest(GetAuditHeadRequestSchema, req), meta);
    return create(GetAuditHeadResponseSchema, { head: signedHeadToWire(await this.core.audit.signedHead()) });
  }

  async exportAudit(req: ExportAuditRequest, meta: CallMeta): Promise<ExportAuditResponse> {
    await this.auditReader(METHODS.exportAudit, messageDigest(ExportAuditRequestSchema, req), meta);
    const big = BigInt(Number.MAX_SAFE_INTEGER);
    if (req.from > big || req.to > big) throw new OpenKeyError('MALFORMED_REQUEST', 'from/to out of range');
    const exp = await this.core.audit.export(Number(req.from), req.to === 0n ? undefined : Number(req.to));
    return auditExportToWire(exp);
  }

  private async auditReader(method: string, digest: Uint8Array, meta: CallMeta): Promise<void> {
    const auth = await this.core.auth.authenticate(authRequest(method, digest, meta));
    if (this.core.auditReaders === 'admin' && auth.principal.role !== 'admin') throw new OpenKeyError('PERMISSION_DENIED', 'the audit log is for administrators');
    await this.core.audit.recordRead(auth);
  }

  /**
   * The verifier of `req.approval` (if any): the challenge is recomputed from the request as
   * received with its approval field cleared, so an approval of any other request fails.
   */
  private approvalOf<D extends DescMessage>(method: string, schema: D, req: MessageShape<D> & { approval?: PasskeyApproval | undefined }): () => Promise<ApprovalCheck | undefined> {
    const a = req.approval;
    if (a === undefined) return () => Promise.resolve(undefined);
    const unapproved = messageDigest(schema, { ...req, approval: undefined });
    const issuedAtMs = a.issuedAtMs > BigInt(Number.MAX_SAFE_INTEGER) || a.issuedAtMs < 0n ? -1 : Number(a.issuedAtMs);
    return () => this.core.people.verifyApproval(method, unapproved, { issuedAtMs, assertionJson: a.assertionJson });
  }

  /** Sets the response's receipt, over the response as it stands (receipt field unset). */
  private attachReceipt<D extends DescMessage>(ar: Pick<AuthRequest, 'method' | 'bodyDigest'>, schema: D, res: MessageShape<D> & { receipt?: Receipt | undefined }, keyId: string): Promise<void> {
    return attachReceipt(schema, res, async (responseDigest) =>
      receiptToWire(await this.core.receipts.sign({ method: ar.method, requestDigest: ar.bodyDigest, responseDigest, keyId, decision: 'allow' })),
    );
  }
}

/**
 * `convert()`'s value, or its error once `auth` has settled: an unauthenticated caller hears
 * about its authentication first, whatever else is wrong with the request.
 */
async function afterAuth<T>(auth: Promise<unknown>, convert: () => T): Promise<T> {
  try {
    return convert();
  } catch (e) {
    await auth;
    throw e;
  }
}

function authRequest(method: string, bodyDigest: Uint8Array, meta: CallMeta): AuthRequest {
  return { method, bodyDigest, stamp: meta.stamp, sessionStamp: meta.sessionStamp, signal: meta.signal };
}
