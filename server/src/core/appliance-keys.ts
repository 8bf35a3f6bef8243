// The appliance's own secrets, all derived from the TEE key provider (dstack GetKey) at start-up:
// the sealing secret (root of every sealed blob), the identity key (signs receipts; bound into
// attestation quotes) and the X25519 import key (callers encrypt keys to it). Paths are fixed per
// appliance version, so every replica of the same dstack app derives the same secrets.

import type { Tee, TeeDerivedKey } from './ports.ts';

/** Sealing secrets are versioned by path, so the sealing key can rotate (see core/sealing.ts). */
export const sealingKeyPath = (version: number): string => `openkey/v1/sealing/${version}`;
export const IDENTITY_KEY_PATH = 'openkey/v1/identity';
export const IMPORT_KEY_PATH = 'openkey/v1/import';
/** dstack signs `${purpose}:${hex(pubkey)}`: the purpose tells a verifier what the key is for. */
export const IDENTITY_KEY_PURPOSE = 'openkey-identity';

export interface ApplianceSecrets {
  /** Sealing secrets for versions 1..current, index i holding version i + 1. */
  readonly sealing: readonly TeeDerivedKey[];
  readonly identity: TeeDerivedKey;
  readonly importKey: TeeDerivedKey;
}

export async function deriveApplianceSecrets(tee: Tee, sealingVersion: number): Promise<ApplianceSecrets> {
  const sealing: TeeDerivedKey[] = [];
  for (let v = 1; v <= sealingVersion; v++) sealing.push(await tee.getKey(sealingKeyPath(v), 'openkey-sealing', 'secp256k1'));
  const identity = await tee.getKey(IDENTITY_KEY_PATH, IDENTITY_KEY_PURPOSE, 'ed25519');
  const importKey = await tee.getKey(IMPORT_KEY_PATH, 'openkey-import', 'secp256k1');
  return { sealing, identity, importKey };
}
