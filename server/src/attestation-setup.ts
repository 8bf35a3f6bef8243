// Attestation plumbing for the composition root: collateral from a PCCS/PCS in production (through
// the verifier's collateral module, the project's only network code), and in development a policy
// file for the embedded simulator's mock platform, so `openkey verify` can check a dev appliance
// with the mock root passed explicitly.

import { parseQuote } from '@openkey/verifier';
import { collateralToJson, createPcsCollateralSource } from '@openkey/verifier/collateral';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from './adapters/logger.ts';
import type { AttestationService, CollateralProvider } from './core/attestation.ts';
import type { RunningSimulator } from './simulator/simulator.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export function pcsCollateral(baseUrl: string, logger: Logger): CollateralProvider {
  const source = createPcsCollateralSource({ baseUrl });
  return {
    forQuote: async (quote) => {
      try {
        return JSON.stringify(collateralToJson(await source.forQuote(quote)));
      } catch (err) {
        logger.warn({ err, baseUrl }, 'collateral fetch failed; Attest answers without collateral');
        return undefined;
      }
    },
  };
}

/**
 * Writes `<dir>/dev-policy.json`: the simulator's mock root (as the trust anchor, with the
 * "dangerously" flag a custom anchor needs) and the measurements and app identity its quotes carry.
 * Development only; production policies pin real measurements and Intel's root.
 */
export async function writeDevPolicy(dir: string, sim: RunningSimulator, attestation: AttestationService, logger: Logger): Promise<void> {
  const evidence = await attestation.attest(new Uint8Array(randomBytes(32)));
  const q = parseQuote(evidence.quote);
  if (q.report.type === 'sgx') throw new Error('simulator produced an SGX quote');
  const r = q.report.td;
  const policy = {
    note: 'DEVELOPMENT ONLY: trusts the embedded simulator mock Intel root. Never use in production.',
    trustAnchorDerHex: hex(sim.mockRootCaDer),
    dangerouslyAllowCustomTrustAnchor: true,
    allowedTcbStatuses: ['UpToDate'],
    mrtd: [hex(r.mrTd)],
    rtmr0: [hex(r.rtmr0)],
    rtmr1: [hex(r.rtmr1)],
    rtmr2: [hex(r.rtmr2)],
    appId: evidence.appInfo.appId,
    composeHashes: [evidence.appInfo.composeHash],
    keyProvider: { name: 'openkey-dev-simulator' },
    kms: { rootPublicKeyHex: hex(sim.kmsRootPublicKey), keyPurpose: evidence.identity.purpose },
  };
  const file = join(dir, 'dev-policy.json');
  writeFileSync(file, `${JSON.stringify(policy, null, 2)}\n`, { mode: 0o644 });
  logger.info({ file }, 'development attestation policy written');
}
