// Attestation policy as a JSON file (hex strings), for the CLI, for clients and for the appliance's
// own configuration (policies a TEE backend must satisfy to receive delegations): parsed into
// unknown, checked, and turned into the verifier's AppliancePolicy (without the nonce, which is
// always fresh per attestation). Field meanings are documented in the README and verifier/.

import type { TcbStatus } from '../dcap/tcb-info.ts';
import type { AppliancePolicy } from './appliance.ts';

export type PolicyWithoutNonce = Omit<AppliancePolicy, 'nonce'>;

export class PolicyError extends Error {
  override readonly name = 'PolicyError';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function hexBytes(v: unknown, field: string): Uint8Array {
  if (typeof v !== 'string' || !/^(?:0x)?(?:[0-9a-fA-F]{2})+$/.test(v)) throw new PolicyError(`${field} must be hex`);
  const h = v.replace(/^0x/, '');
  return Uint8Array.from({ length: h.length / 2 }, (_, i) => parseInt(h.slice(2 * i, 2 * i + 2), 16));
}

function strings(v: unknown, field: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new PolicyError(`${field} must be an array of strings`);
  return v as string[];
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string' || v === '') throw new PolicyError(`${field} is required`);
  return v;
}

function bool(v: unknown, field: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new PolicyError(`${field} must be true or false`);
  return v;
}

const BOOL_FIELDS = [
  'dangerouslyAllowCustomTrustAnchor',
  'dangerouslyAllowDebug',
  'dangerouslyAllowAnyBootMeasurements',
  'replayBootRtmrs',
  'dangerouslyIgnoreMrConfigId',
] as const;

export function parsePolicy(input: unknown): PolicyWithoutNonce {
  let o: unknown = input;
  if (typeof input === 'string') {
    try {
      o = JSON.parse(input) as unknown;
    } catch {
      throw new PolicyError('policy is not JSON');
    }
  }
  if (!isObject(o)) throw new PolicyError('policy must be a JSON object');
  const policy: Record<string, unknown> = {
    mrtd: strings(o['mrtd'], 'mrtd'),
    rtmr0: strings(o['rtmr0'], 'rtmr0'),
    rtmr1: strings(o['rtmr1'], 'rtmr1'),
    rtmr2: strings(o['rtmr2'], 'rtmr2'),
    appId: str(o['appId'], 'appId'),
    composeHashes: strings(o['composeHashes'], 'composeHashes'),
  };
  if (o['trustAnchorDerHex'] !== undefined) policy['trustAnchorDer'] = hexBytes(o['trustAnchorDerHex'], 'trustAnchorDerHex');
  if (o['allowedTcbStatuses'] !== undefined) policy['allowedTcbStatuses'] = strings(o['allowedTcbStatuses'], 'allowedTcbStatuses') as TcbStatus[];
  if (o['allowedAdvisoryIds'] !== undefined) policy['allowedAdvisoryIds'] = strings(o['allowedAdvisoryIds'], 'allowedAdvisoryIds');
  if (o['osImageHashes'] !== undefined) policy['osImageHashes'] = strings(o['osImageHashes'], 'osImageHashes');
  if (o['instanceIds'] !== undefined) policy['instanceIds'] = strings(o['instanceIds'], 'instanceIds');
  for (const f of BOOL_FIELDS) {
    const b = bool(o[f], f);
    if (b !== undefined) policy[f] = b;
  }
  const kp = o['keyProvider'];
  if (kp !== undefined) {
    if (!isObject(kp)) throw new PolicyError('keyProvider must be an object');
    policy['keyProvider'] = { name: str(kp['name'], 'keyProvider.name'), ...(kp['id'] === undefined ? {} : { id: str(kp['id'], 'keyProvider.id') }) };
  }
  const kms = o['kms'];
  if (kms !== undefined) {
    if (!isObject(kms)) throw new PolicyError('kms must be an object');
    policy['kms'] = { rootPublicKey: hexBytes(kms['rootPublicKeyHex'], 'kms.rootPublicKeyHex'), keyPurpose: str(kms['keyPurpose'], 'kms.keyPurpose') };
  }
  return policy as unknown as PolicyWithoutNonce;
}
