// JSON renderings of wire messages for the CLI: bytes as 0x-hex, enums as names; and the readable
// renderings (attestation verdict, key policy) printed when no --json is asked for.

import type { AttestedAppliance } from '../attested.ts';
import type { SignedAuditHead } from '../../../proto/gen/openkey/v1/audit_pb.ts';
import { KeyAlgorithm, type KeyInfo } from '../../../proto/gen/openkey/v1/common_pb.ts';
import { PrincipalKind, SignOperation, type KeyPolicy, type UsageRule } from '../../../proto/gen/openkey/v1/policy_pb.ts';
import { PrincipalKeyAlgorithm, PrincipalRole, type Principal } from '../../../proto/gen/openkey/v1/principals_pb.ts';

export const hex = (b: Uint8Array): string => `0x${Buffer.from(b).toString('hex')}`;

export function fromHexArg(s: string, label: string): Uint8Array {
  const body = s.startsWith('0x') ? s.slice(2) : s;
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(body)) throw new Error(`${label} is not hex`);
  return new Uint8Array(Buffer.from(body, 'hex'));
}

export function keyInfoJson(k: KeyInfo): Record<string, unknown> {
  return {
    keyId: k.keyId,
    algorithm: KeyAlgorithm[k.algorithm]?.toLowerCase(),
    publicKey: hex(k.publicKey),
    ...(k.address ? { address: k.address } : {}),
    did: k.did,
    owner: k.owner,
    label: k.label,
    rawDigestSigning: k.rawDigestSigning,
    createdAt: new Date(Number(k.createdAtMs)).toISOString(),
  };
}

export function principalJson(p: Principal): Record<string, unknown> {
  return {
    id: p.id,
    role: PrincipalRole[p.role]?.toLowerCase(),
    algorithm: PrincipalKeyAlgorithm[p.algorithm]?.toLowerCase(),
    publicKey: hex(p.publicKey),
    name: p.name,
    createdAt: new Date(Number(p.createdAtMs)).toISOString(),
  };
}

/** A readable verdict: what was verified, the measurements, the app identity, the bound key. */
export function formatVerdict(a: AttestedAppliance): string {
  const v = a.verdict;
  const m = v.measurements;
  const lines = [
    'VERIFIED: genuine TDX quote, policy satisfied',
    '',
    `TCB status        ${v.status}${v.advisoryIds.length ? ` (advisories: ${v.advisoryIds.join(', ')})` : ''}`,
    `report            ${v.reportType}, FMSPC ${v.platform.fmspc}`,
    `valid until       ${new Date(v.validUntil * 1000).toISOString()} (re-verify before then)`,
    '',
    'measurements',
    `  MRTD            ${m.mrTd}`,
    `  RTMR0           ${m.rtmr0}`,
    `  RTMR1           ${m.rtmr1}`,
    `  RTMR2           ${m.rtmr2}`,
    `  RTMR3           ${m.rtmr3} (replayed from the event log)`,
    `  TD attributes   ${m.tdAttributes}`,
    '',
    'app identity',
    `  app id          ${v.app.appId}`,
    `  compose hash    ${v.app.composeHash}`,
    `  instance id     ${v.app.instanceId ?? '-'}`,
    `  OS image hash   ${v.app.osImageHash ?? '-'}`,
    `  key provider    ${v.app.keyProvider ? `${v.app.keyProvider.name}${v.app.keyProvider.id ? ` (${v.app.keyProvider.id.slice(0, 16)}…)` : ''}` : '-'}`,
    '',
    `identity key      ${hex(a.identityPublicKey)} (pinned; every receipt must verify under it)`,
    `KMS chain         ${v.kms ? 'verified against the pinned KMS root' : 'not checked (no kms in policy)'}`,
    `import key        ${hex(a.importPublicKey)} (signed by the identity key)`,
    '',
  ];
  return lines.join('\n');
}

// ---- Key policies -------------------------------------------------------------------------------

/** A uint64/int64 as a JSON number when it is exact, else as a decimal string. */
const int = (v: bigint): number | string => (v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v.toString(10));
const opName = (op: SignOperation): string => SignOperation[op]?.toLowerCase() ?? `unknown(${op})`;
const kindName = (k: PrincipalKind | undefined): string => (k === undefined ? 'none' : (PrincipalKind[k]?.toLowerCase() ?? `unknown(${k})`));
/** ms since the epoch as ISO 8601; outside Date's range, the number itself. */
function iso(ms: bigint): string {
  const d = new Date(Number(ms));
  return Number.isNaN(d.getTime()) ? `${ms.toString()} ms since the epoch` : d.toISOString();
}

export function usageRuleJson(r: UsageRule): Record<string, unknown> {
  return {
    operations: r.operations.map(opName),
    ...(r.eip712 === undefined ? {} : { eip712: { chainIds: r.eip712.chainIds, verifyingContracts: r.eip712.verifyingContracts, primaryTypes: r.eip712.primaryTypes } }),
    ...(r.maxMessageBytes === 0n ? {} : { maxMessageBytes: int(r.maxMessageBytes) }),
    caps: r.caps.map((c) => ({ limit: int(c.limit), windowMs: int(c.windowMs) })),
    ...(r.rateLimit === undefined ? {} : { rateLimit: { capacity: r.rateLimit.capacity, refillTokens: r.rateLimit.refillTokens, refillPeriodMs: int(r.rateLimit.refillPeriodMs) } }),
    ...(r.notBeforeMs === 0n ? {} : { notBefore: iso(r.notBeforeMs) }),
    ...(r.notAfterMs === 0n ? {} : { notAfter: iso(r.notAfterMs) }),
    requireApproval: r.requireApproval,
  };
}

export function keyPolicyJson(p: KeyPolicy): Record<string, unknown> {
  return {
    keyId: p.keyId,
    version: int(p.version),
    ownerRule: p.ownerRule === undefined ? null : usageRuleJson(p.ownerRule),
    grants: p.grants.map((g) => ({
      id: g.id,
      principal: { kind: kindName(g.principal?.kind), id: g.principal?.id ?? '' },
      ...(g.rule === undefined ? {} : usageRuleJson(g.rule)),
    })),
  };
}

const PERIOD_NAMES: Readonly<Record<string, string>> = { '1000': 'second', '60000': 'minute', '3600000': 'hour', '86400000': 'day' };
const periodText = (ms: bigint): string => PERIOD_NAMES[ms.toString()] ?? `${ms.toString()} ms`;
const anyOr = (list: readonly string[]): string => (list.length === 0 ? 'any' : list.join(', '));

function ruleLines(r: UsageRule, indent: string): string[] {
  const row = (label: string, value: string) => `${indent}${label.padEnd(20)}${value}`;
  const validity =
    r.notBeforeMs === 0n && r.notAfterMs === 0n
      ? 'always'
      : [r.notBeforeMs === 0n ? '' : `from ${iso(r.notBeforeMs)}`, r.notAfterMs === 0n ? '' : `until ${iso(r.notAfterMs)} (exclusive)`].filter(Boolean).join(' ');
  const rate = r.rateLimit;
  return [
    row('operations', r.operations.map(opName).join(', ')),
    row('EIP-712 chain ids', anyOr(r.eip712?.chainIds ?? [])),
    row('EIP-712 contracts', anyOr(r.eip712?.verifyingContracts ?? [])),
    row('EIP-712 types', anyOr(r.eip712?.primaryTypes ?? [])),
    row('max message', r.maxMessageBytes === 0n ? 'no limit beyond 64 KiB' : `${r.maxMessageBytes.toString()} bytes`),
    row('caps', r.caps.length === 0 ? 'none' : r.caps.map((c) => `${c.limit.toString()} per ${periodText(c.windowMs)}`).join(', ')),
    row('rate limit', rate === undefined ? 'none' : `${rate.refillTokens} per ${periodText(rate.refillPeriodMs)}, bursts of up to ${rate.capacity}`),
    row('valid', validity),
    row('approval', r.requireApproval ? "the owner's passkey approval of every use" : 'not required'),
  ];
}

/** A key policy for people: the owner rule, then each grant with its principal, rule and limits. */
export function formatKeyPolicy(p: KeyPolicy): string {
  const lines = [`policy of ${p.keyId} (version ${p.version.toString()})`, ''];
  if (p.ownerRule === undefined) lines.push('owner rule          none: the owner may use every operation the key supports');
  else lines.push('owner rule', ...ruleLines(p.ownerRule, '  '));
  lines.push('', p.grants.length === 0 ? 'grants              none: nobody but the owner may use the key' : `grants (${p.grants.length})`);
  for (const g of p.grants) {
    lines.push(`  grant ${g.id}`, `    ${'principal'.padEnd(20)}${kindName(g.principal?.kind)} ${g.principal?.id ?? ''}`);
    if (g.rule !== undefined) lines.push(...ruleLines(g.rule, '    '));
  }
  lines.push('');
  return lines.join('\n');
}

// ---- Audit --------------------------------------------------------------------------------------

export function signedAuditHeadJson(h: SignedAuditHead): Record<string, unknown> {
  return { seq: int(h.seq), hash: hex(h.hash), logSeq: int(h.logSeq), time: iso(h.timeMs), signature: hex(h.signature) };
}
