// JSON renderings of wire messages for the CLI: bytes as 0x-hex, enums as names.

import type { AttestedAppliance } from '../attested.ts';
import { KeyAlgorithm, type KeyInfo } from '../../../proto/gen/openkey/v1/common_pb.ts';
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
