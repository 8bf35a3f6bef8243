// The DelegateAttestationVerifier port (core/delegations.ts) on the project's own verifier: a TEE
// backend's TDX quote must pass DCAP and the named verifier policy, and its report_data must bind the
// backend's Ed25519 delegate key and the appliance's single-use nonce (the same binding appliances
// use: SHA-512("openkey-attest-v1" ‖ key ‖ nonce)). Policies come from a JSON file of named policies
// in the verifier's policy-file format (OPENKEY_DELEGATE_POLICIES).

import { readFileSync } from 'node:fs';
import { parseCollateral, parsePolicy, verifyAppliance, type PolicyWithoutNonce } from '@openkey/verifier';
import type { DelegateAttestationVerifier } from '../core/delegations.ts';
import { OpenKeyError } from '../core/errors.ts';

export type NamedPolicies = ReadonlyMap<string, PolicyWithoutNonce>;

/** `{"<name>": <policy>, …}` from a file; throws with the file name and the policy at fault. */
export function loadDelegatePolicies(file: string | undefined): NamedPolicies {
  const out = new Map<string, PolicyWithoutNonce>();
  if (file === undefined) return out;
  const raw = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${file}: expected an object of named verifier policies`);
  for (const [name, policy] of Object.entries(raw)) {
    if (!/^[A-Za-z0-9._:-]{1,128}$/.test(name)) throw new Error(`${file}: policy name ${JSON.stringify(name)} is not valid`);
    try {
      out.set(name, parsePolicy(policy));
    } catch (e) {
      throw new Error(`${file}: policy ${name}: ${(e as Error).message}`);
    }
  }
  return out;
}

export function createDelegateAttestationVerifier(policies: () => NamedPolicies, now: () => number): DelegateAttestationVerifier {
  return (evidence, name, delegatePublicKey) => {
    const policy = policies().get(name);
    if (policy === undefined) throw new OpenKeyError('DELEGATE_NOT_ALLOWED', `no verifier policy named ${name}`);
    const collateral = parseCollateral(evidence.collateralJson);
    verifyAppliance(
      { quote: evidence.quote, eventLog: evidence.eventLog, collateral, identityPublicKey: delegatePublicKey },
      { ...policy, nonce: evidence.nonce },
      Math.floor(now() / 1000),
    );
  };
}
