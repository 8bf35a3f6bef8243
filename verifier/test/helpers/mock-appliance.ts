// Test-only: a complete mock appliance attestation (mock-PKI quote + dstack event log + identity key
// bound in report_data + dstack KMS signature chain) and a policy that accepts it.

import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { keccak_256 } from '@noble/hashes/sha3.js';

import { concatBytes, toHex, utf8 } from '../../src/bytes.ts';
import { replayRtmrs, parseEventLog } from '../../src/dstack/event-log.ts';
import type { ApplianceEvidence, AppliancePolicy } from '../../src/policy/appliance.ts';
import { appReportData } from '../../src/report-data.ts';
import { buildMock, type MockOptions } from './mock-pki.ts';

export const APP_ID = new Uint8Array(20).fill(0xa1);
export const COMPOSE_HASH = sha256(utf8('app-compose.json'));
export const INSTANCE_ID = new Uint8Array(20).fill(0x1d);
export const OS_IMAGE_HASH = sha256(utf8('os-image'));
export const KEY_PROVIDER = { name: 'kms', id: '3059301306072a8648ce3d0201' };
export const KEY_PURPOSE = 'openkey-identity';

const kmsSk = sha256(utf8('mock-kms-root'));
const appSk = sha256(utf8('mock-app-root'));
const identitySk = sha256(utf8('mock-identity'));
export const KMS_ROOT = secp256k1.getPublicKey(kmsSk, true);
export const IDENTITY_KEY = secp256k1.getPublicKey(identitySk, true);

function recoverable(sk: Uint8Array, digest: Uint8Array): Uint8Array {
  const sig = secp256k1.sign(digest, sk, { prehash: false });
  return concatBytes(sig.toBytes('compact'), new Uint8Array([sig.recovery]));
}

export function signatureChain(identityKey = IDENTITY_KEY, appId = APP_ID): Uint8Array[] {
  const appPub = secp256k1.getPublicKey(appSk, true);
  return [
    recoverable(appSk, keccak_256(utf8(`${KEY_PURPOSE}:${toHex(identityKey)}`))),
    recoverable(kmsSk, keccak_256(concatBytes(utf8('dstack-kms-issued:'), appId, appPub))),
  ];
}

const runtime = (event: string, payload: Uint8Array): Record<string, unknown> => ({
  imr: 3,
  event_type: 0x08000001,
  digest: '',
  event,
  event_payload: toHex(payload),
});

export function eventLog(): Record<string, unknown>[] {
  const boot = (imr: number, b: number): Record<string, unknown> => ({
    imr,
    event_type: 0x80000001,
    digest: toHex(new Uint8Array(48).fill(b)),
    event: '',
    event_payload: '',
  });
  return [
    boot(0, 1),
    boot(0, 2),
    boot(1, 3),
    boot(2, 4),
    runtime('system-preparing', new Uint8Array()),
    runtime('app-id', APP_ID),
    runtime('compose-hash', COMPOSE_HASH),
    runtime('instance-id', INSTANCE_ID),
    runtime('boot-mr-done', new Uint8Array()),
    runtime('os-image-hash', OS_IMAGE_HASH),
    runtime('key-provider', utf8(JSON.stringify(KEY_PROVIDER))),
    runtime('storage-fs', utf8('zfs')),
    runtime('system-ready', new Uint8Array()),
    runtime('openkey-started', utf8('v1')),
  ];
}

export interface MockAppliance {
  readonly evidence: ApplianceEvidence;
  readonly policy: AppliancePolicy;
  readonly now: number;
}

export const NONCE = new Uint8Array(32).fill(0x4e);

export function mockAppliance(o: MockOptions = {}, log = eventLog()): MockAppliance {
  const rtmrs = replayRtmrs(parseEventLog(eventLog()));
  const mrConfigId = new Uint8Array(48);
  mrConfigId[0] = 1;
  mrConfigId.set(COMPOSE_HASH, 1);
  const m = buildMock({ rtmrs, mrConfigId, reportData: appReportData(IDENTITY_KEY, NONCE), ...o });
  const mrTd = toHex(o.mrTd ?? new Uint8Array(48).fill(0x91));
  return {
    now: m.now,
    evidence: {
      quote: m.quote,
      eventLog: JSON.stringify(log),
      collateral: m.collateral,
      identityPublicKey: IDENTITY_KEY,
      signatureChain: signatureChain(),
    },
    policy: {
      nonce: NONCE,
      trustAnchorDer: m.rootDer,
      dangerouslyAllowCustomTrustAnchor: true,
      mrtd: [mrTd],
      rtmr0: [toHex(rtmrs[0])],
      rtmr1: [toHex(rtmrs[1])],
      rtmr2: [toHex(rtmrs[2])],
      appId: toHex(APP_ID),
      composeHashes: [toHex(COMPOSE_HASH)],
      osImageHashes: [toHex(OS_IMAGE_HASH)],
      keyProvider: KEY_PROVIDER,
      instanceIds: [toHex(INSTANCE_ID)],
      kms: { rootPublicKey: KMS_ROOT, keyPurpose: KEY_PURPOSE },
    },
  };
}
