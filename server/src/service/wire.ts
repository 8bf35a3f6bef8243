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
import {
  SignBatchResponseSchema,
  SignResponseSchema,
  type SignBatchResponse,
  type SignPayload as WireSignPayload,
  type SignRequest,
  type SignResponse,
} from '../../../proto/gen/openkey/v1/signing_pb.ts';
import { AppInfoSchema, AttestResponseSchema, type AttestResponse } from '../../../proto/gen/openkey/v1/attest_pb.ts';
import {
  AuditRecordSchema,
  ExportAuditResponseSchema,
  SignedAuditHeadSchema,
  type ExportAuditResponse,
  type SignedAuditHead as WireSignedAuditHead,
} from '../../../proto/gen/openkey/v1/audit_pb.ts';
import { PasskeySchema, SessionSchema, type Passkey as WirePasskey, type Session as WireSession } from '../../../proto/gen/openkey/v1/passkeys_pb.ts';
import {
  KeyGrantSchema,
  KeyPolicySchema,
  PrincipalKind as WirePrincipalKind,
  SignOperation as WireSignOperation,
  UsageRuleSchema,
  type KeyGrant as WireKeyGrant,
  type KeyPolicy as WireKeyPolicy,
  type UsageRule as WireUsageRule,
} from '../../../proto/gen/openkey/v1/policy_pb.ts';
import {
  CapabilitySchema,
  DelegateResponseSchema,
  DelegateRuleSchema,
  DelegationGrantSchema,
  IssuedDelegationSchema,
  type Capability as WireCapability,
  type CreateGrantRequest,
  type DelegateRequest,
  type DelegateResponse,
  type DelegateRule as WireDelegateRule,
  type DelegationGrant as WireDelegationGrant,
  type IssuedDelegation as WireIssuedDelegation,
} from '../../../proto/gen/openkey/v1/delegation_pb.ts';
import type { AttestationEvidence } from '../core/attestation.ts';
import type { DelegateInput, IssuedRecord, NewGrant } from '../core/delegations.ts';
import type { DelegateRule, DelegationGrant, IssuedDelegation } from '../core/delegation/index.ts';
import type { CapabilityEntry } from '../core/delegation/capability.ts';
import type { AuditExport, SignedAuditHead } from '../core/audit.ts';
import type { StoredPolicy } from '../core/key-policies.ts';
import type { PasskeyInfo, SessionRecord } from '../core/people.ts';
import type { KeyGrant, PrincipalKind, SignOperation, UsageRule } from '../core/policy.ts';
import { OpenKeyError } from '../core/errors.ts';
import type { KeyView } from '../core/keys.ts';
import type { KeyAlgorithm, PrincipalAlgorithm, PrincipalRecord } from '../core/ports.ts';
import type { SignedReceipt } from '../core/receipts.ts';
import type { Signature, SignItem, SignPayload } from '../core/signing.ts';

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
    role: p.role === 'admin' ? WireRole.ADMIN : p.role === 'person' ? WireRole.PERSON : WireRole.SERVICE,
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
    ...(r.batch === undefined ? {} : { batchIndex: r.batch.index, batchSize: r.batch.size, batchPath: [...r.batch.path] }),
  });
}

/**
 * A signature as the SignResponse that carries it: the object `create(SignResponseSchema, …)`
 * builds (wire.test.ts checks they are equal), written out, since `create` walks the schema and
 * every signature passes through here.
 */
export function signResponseToWire(s: Signature): SignResponse {
  return { $typeName: SignResponseSchema.typeName, signature: s.signature, digest: s.digest, keyId: s.keyId };
}

/** A batch's signatures as its SignBatchResponse, built as signResponseToWire builds each. */
export function signBatchResponseToWire(sigs: readonly Signature[]): SignBatchResponse {
  return { $typeName: SignBatchResponseSchema.typeName, results: sigs.map(signResponseToWire) };
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

// ---- Policy -------------------------------------------------------------------------------------

const OPS: readonly [WireSignOperation, SignOperation][] = [
  [WireSignOperation.PERSONAL_SIGN, 'personal_sign'],
  [WireSignOperation.EIP712, 'eip712'],
  [WireSignOperation.RAW_DIGEST, 'raw_digest'],
  [WireSignOperation.ED25519, 'ed25519'],
];
const KINDS: readonly [WirePrincipalKind, PrincipalKind][] = [
  [WirePrincipalKind.PERSON, 'person'],
  [WirePrincipalKind.SERVICE, 'service'],
  [WirePrincipalKind.SESSION, 'session'],
];

const bad = (detail: string): never => {
  throw new OpenKeyError('MALFORMED_REQUEST', detail);
};

/** A wire rule as the domain's unchecked shape; checkKeyPolicy (core/policy.ts) validates it. */
export function usageRuleFromWire(r: WireUsageRule): UsageRule {
  const operations = r.operations.map((op) => OPS.find(([w]) => w === op)?.[1] ?? bad('rule.operations'));
  const e = r.eip712;
  const eip712 =
    e === undefined
      ? undefined
      : {
          ...(e.chainIds.length === 0 ? {} : { chainIds: e.chainIds.map((c) => (/^[0-9]{1,78}$/.test(c) ? BigInt(c) : bad('rule.eip712.chain_ids'))) }),
          ...(e.verifyingContracts.length === 0 ? {} : { verifyingContracts: e.verifyingContracts }),
          ...(e.primaryTypes.length === 0 ? {} : { primaryTypes: e.primaryTypes }),
        };
  const num = (v: bigint, label: string): number => (v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= 0n ? Number(v) : bad(label));
  return {
    operations,
    ...(eip712 === undefined ? {} : { eip712 }),
    ...(r.maxMessageBytes === 0n ? {} : { maxMessageBytes: num(r.maxMessageBytes, 'rule.max_message_bytes') }),
    ...(r.rateLimit === undefined
      ? {}
      : { rateLimit: { capacity: r.rateLimit.capacity, refillTokens: r.rateLimit.refillTokens, refillPeriodMs: num(r.rateLimit.refillPeriodMs, 'rule.rate_limit.refill_period_ms') } }),
    ...(r.caps.length === 0 ? {} : { caps: r.caps.map((c) => ({ limit: num(c.limit, 'rule.caps.limit'), windowMs: num(c.windowMs, 'rule.caps.window_ms') })) }),
    ...(r.notBeforeMs === 0n ? {} : { notBefore: num(r.notBeforeMs, 'rule.not_before_ms') }),
    ...(r.notAfterMs === 0n ? {} : { notAfter: num(r.notAfterMs, 'rule.not_after_ms') }),
    ...(r.requireApproval ? { requireApproval: true } : {}),
  };
}

export function keyGrantFromWire(g: WireKeyGrant | undefined): KeyGrant {
  if (g === undefined) throw new OpenKeyError('MISSING_FIELD', 'grant');
  if (g.principal === undefined) throw new OpenKeyError('MISSING_FIELD', 'grant.principal');
  if (g.rule === undefined) throw new OpenKeyError('MISSING_FIELD', 'grant.rule');
  const kind = KINDS.find(([w]) => w === g.principal?.kind)?.[1] ?? bad('grant.principal.kind');
  return { id: g.id, principal: { kind, id: g.principal.id }, ...usageRuleFromWire(g.rule) };
}

function usageRuleToWire(r: UsageRule): WireUsageRule {
  return create(UsageRuleSchema, {
    operations: r.operations.map((op) => OPS.find(([, d]) => d === op)?.[0] ?? WireSignOperation.UNSPECIFIED),
    ...(r.eip712 === undefined
      ? {}
      : {
          eip712: {
            chainIds: (r.eip712.chainIds ?? []).map(String),
            verifyingContracts: [...(r.eip712.verifyingContracts ?? [])],
            primaryTypes: [...(r.eip712.primaryTypes ?? [])],
          },
        }),
    maxMessageBytes: BigInt(r.maxMessageBytes ?? 0),
    ...(r.rateLimit === undefined ? {} : { rateLimit: { ...r.rateLimit, refillPeriodMs: BigInt(r.rateLimit.refillPeriodMs) } }),
    caps: (r.caps ?? []).map((c) => ({ limit: BigInt(c.limit), windowMs: BigInt(c.windowMs) })),
    notBeforeMs: BigInt(r.notBefore ?? 0),
    notAfterMs: BigInt(r.notAfter ?? 0),
    requireApproval: r.requireApproval === true,
  });
}

export function keyPolicyToWire(keyId: string, p: StoredPolicy): WireKeyPolicy {
  return create(KeyPolicySchema, {
    keyId,
    ...(p.policy.owner === undefined ? {} : { ownerRule: usageRuleToWire(p.policy.owner) }),
    grants: p.policy.grants.map((g) =>
      create(KeyGrantSchema, {
        id: g.id,
        principal: { kind: KINDS.find(([, d]) => d === g.principal.kind)?.[0] ?? WirePrincipalKind.UNSPECIFIED, id: g.principal.id },
        rule: usageRuleToWire(g),
      }),
    ),
    version: BigInt(p.version),
  });
}

// ---- Audit --------------------------------------------------------------------------------------

export function signedHeadToWire(h: SignedAuditHead): WireSignedAuditHead {
  return create(SignedAuditHeadSchema, { seq: BigInt(h.seq), hash: h.hash, logSeq: BigInt(h.logSeq), timeMs: BigInt(h.time), signature: h.signature });
}

export function auditExportToWire(e: AuditExport): ExportAuditResponse {
  return create(ExportAuditResponseSchema, {
    version: e.version,
    from: BigInt(e.from),
    records: e.records.map((r) =>
      create(AuditRecordSchema, {
        seq: BigInt(r.seq),
        timeMs: BigInt(r.time),
        principal: r.principal,
        operation: r.operation,
        keyId: r.keyId,
        requestDigest: r.requestDigest,
        decision: r.decision,
        reason: r.reason,
        prevHash: r.prevHash,
        hash: r.hash,
        count: r.count ?? 0,
      }),
    ),
    head: signedHeadToWire(e.head),
  });
}

// ---- Passkeys -----------------------------------------------------------------------------------

export function sessionToWire(s: SessionRecord): WireSession {
  return create(SessionSchema, { id: s.id, personId: s.personId, expiresAtMs: BigInt(s.expiresAt) });
}

export function passkeyToWire(p: PasskeyInfo): WirePasskey {
  return create(PasskeySchema, { credentialId: p.credentialId, name: p.name, createdAtMs: BigInt(p.createdAt), lastUsedAtMs: BigInt(p.lastUsedAt), counter: p.counter });
}

// ---- Delegations --------------------------------------------------------------------------------

function caveatsFromWire(json: string, label: string): unknown {
  if (json === '') return undefined;
  try {
    return JSON.parse(json) as unknown;
  } catch {
    throw new OpenKeyError('MALFORMED_REQUEST', `${label}.caveats_json is not JSON`);
  }
}

function capabilitiesFromWire(caps: readonly WireCapability[], label: string): unknown[] {
  return caps.map((c) => {
    const caveats = caveatsFromWire(c.caveatsJson, label);
    return { resource: c.resource, ability: c.ability, ...(caveats === undefined ? {} : { caveats }) };
  });
}

function capabilitiesToWire(caps: readonly CapabilityEntry[]): WireCapability[] {
  return caps.map((c) => create(CapabilitySchema, { resource: c.resource, ability: c.ability, caveatsJson: JSON.stringify(c.caveats) }));
}

function ruleFromWire(r: WireDelegateRule): unknown {
  const scope = r.scope.length === 0 ? {} : { scope: capabilitiesFromWire(r.scope, 'delegates.scope') };
  switch (r.kind.case) {
    case 'did':
      return { kind: 'did', did: r.kind.value, ...scope };
    case 'attestationPolicy':
      return { kind: 'attested', policy: r.kind.value, ...scope };
    case 'principalId':
      return { kind: 'principal', principalId: r.kind.value, ...scope };
    default:
      throw new OpenKeyError('MISSING_FIELD', 'delegates.kind');
  }
}

function ruleToWire(r: DelegateRule): WireDelegateRule {
  const kind =
    r.kind === 'did'
      ? { case: 'did' as const, value: r.did }
      : r.kind === 'attested'
        ? { case: 'attestationPolicy' as const, value: r.policy }
        : { case: 'principalId' as const, value: r.principalId };
  return create(DelegateRuleSchema, { kind, scope: capabilitiesToWire(r.scope ?? []) });
}

const safeNumber = (v: bigint, label: string): number => {
  if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw new OpenKeyError('MALFORMED_REQUEST', label);
  return Number(v);
};

export function newGrantFromWire(req: CreateGrantRequest): NewGrant {
  const manifests = req.manifestsJson.map((m, i) => {
    try {
      return JSON.parse(m) as unknown;
    } catch {
      throw new OpenKeyError('MALFORMED_REQUEST', `manifests_json[${i}] is not JSON`);
    }
  });
  if (req.capabilities.length === 0 && manifests.length === 0) throw new OpenKeyError('MISSING_FIELD', 'capabilities or manifests_json');
  return {
    keyId: req.keyId,
    grantId: req.grantId,
    capabilities: capabilitiesFromWire(req.capabilities, 'capabilities'),
    manifests,
    delegates: req.delegates.map(ruleFromWire),
    ...(req.maxLifetimeSeconds === 0 ? {} : { maxLifetimeSeconds: req.maxLifetimeSeconds }),
    ...(req.expiresAtMs === 0n ? {} : { expiresAt: safeNumber(req.expiresAtMs, 'expires_at_ms') }),
    chainId: req.chainId === 0n ? 1 : safeNumber(req.chainId, 'chain_id'),
  };
}

export function delegationGrantToWire(keyId: string, g: DelegationGrant): WireDelegationGrant {
  return create(DelegationGrantSchema, {
    id: g.id,
    keyId,
    ownerDid: g.owner,
    capabilities: capabilitiesToWire(g.capabilities),
    delegates: g.delegates.map(ruleToWire),
    maxLifetimeSeconds: g.maxLifetimeSeconds,
    createdAtMs: BigInt(g.createdAt),
    expiresAtMs: BigInt(g.expiresAt),
    revoked: g.revoked,
  });
}

export function delegateInputFromWire(req: DelegateRequest): DelegateInput {
  const a = req.attestation;
  return {
    keyId: req.keyId,
    grantId: req.grantId,
    delegateDid: req.delegateDid,
    capabilities: capabilitiesFromWire(req.capabilities, 'capabilities'),
    lifetimeSeconds: req.lifetimeSeconds,
    ...(req.notBeforeMs === 0n ? {} : { notBefore: safeNumber(req.notBeforeMs, 'not_before_ms') }),
    ...(req.requestId === '' ? {} : { requestId: req.requestId }),
    ...(a === undefined ? {} : { evidence: { quote: a.quote, eventLog: a.eventLog, collateralJson: a.collateralJson, nonce: a.nonce } }),
  };
}

export function delegationToWire(d: IssuedDelegation): DelegateResponse {
  return create(DelegateResponseSchema, {
    format: d.format,
    cid: d.cid,
    authorization: d.authorization,
    ...(d.format === 'siwe-cacao' ? { siwe: d.siwe, signature: d.signature, cacao: d.cacao } : { ucan: d.ucan }),
    wrapperJson: JSON.stringify(d.wrapper),
    issuedAtMs: BigInt(d.issuedAt),
    expiresAtMs: BigInt(d.expiresAt),
  });
}

export function issuedRecordToWire(r: IssuedRecord): WireIssuedDelegation {
  return create(IssuedDelegationSchema, {
    cid: r.cid,
    grantId: r.grantId,
    delegateDid: r.delegateDid,
    issuedAtMs: BigInt(r.issuedAt),
    expiresAtMs: BigInt(r.expiresAt),
    status: r.status,
    capabilities: capabilitiesToWire(r.capabilities),
    format: r.format,
  });
}
