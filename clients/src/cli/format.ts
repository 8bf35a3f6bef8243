// JSON renderings of wire messages for the CLI: bytes as 0x-hex, enums as names.

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
