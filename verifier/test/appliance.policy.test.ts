// DESIGN "The verifier" and reference §3.3: verifyAppliance = DCAP authenticity + appliance policy.
// A complete mock appliance (mock PKI, event log, identity key in report_data, KMS chain) verifies;
// each policy rule, changed alone, rejects with its own code. The real dstack quote-report vector
// passes every step up to the key binding it cannot carry.

import { describe, expect, it } from 'vitest';

import { fromHex, toHex } from '../src/bytes.ts';
import { sha256 } from '../src/crypto.ts';
import { type VerifierErrorCode } from '../src/errors.ts';
import { verifyAppliance, type ApplianceEvidence, type AppliancePolicy } from '../src/policy/appliance.ts';
import { checkReportAttributes } from '../src/policy/td-attributes.ts';
import { parseQuote, type QuoteReport } from '../src/quote.ts';
import { APP_ID, COMPOSE_HASH, IDENTITY_KEY, INSTANCE_ID, KMS_ROOT, NONCE, eventLog, mockAppliance, signatureChain } from './helpers/mock-appliance.ts';
import { INTEL_ROOT, expectedVector, vectorCollateral, vectorJson, vectorQuote } from './helpers/vectors.ts';
import { codeOf } from './helpers/codes.ts';

const base = mockAppliance();
const verify = (
  over: { evidence?: Partial<ApplianceEvidence>; policy?: Partial<AppliancePolicy> } = {},
  m = base,
): ReturnType<typeof verifyAppliance> =>
  verifyAppliance({ ...m.evidence, ...over.evidence }, { ...m.policy, ...over.policy } as AppliancePolicy, m.now);
const rejects = (over: Parameters<typeof verify>[0], code: VerifierErrorCode, m = base): void => {
  expect(codeOf(() => verify(over, m))).toBe(code);
};

describe('a conforming appliance', () => {
  it('verifies, and the verdict carries status, measurements, app identity, bound key and KMS keys', () => {
    const v = verify();
    expect(v.status).toBe('UpToDate');
    expect(v.advisoryIds).toEqual([]);
    expect(v.reportType).toBe('td10');
    expect(v.measurements.mrTd).toBe('91'.repeat(48));
    expect(v.measurements.mrConfigId).toBe(`01${toHex(COMPOSE_HASH)}${'00'.repeat(15)}`);
    expect(v.app).toMatchObject({
      appId: toHex(APP_ID),
      composeHash: toHex(COMPOSE_HASH),
      instanceId: toHex(INSTANCE_ID),
      keyProvider: { name: 'kms' },
    });
    expect(v.app.appEvents.map((e) => e.name)).toEqual(['openkey-started']);
    expect(toHex(v.boundKey)).toBe(toHex(IDENTITY_KEY));
    expect(toHex(v.kms!.kmsRootPublicKey)).toBe(toHex(KMS_ROOT));
    expect(v.platform.deviceId).toBe(toHex(sha256(fromHex(v.platform.ppid, 'INVALID_ARGUMENT'))));
    expect(v.validUntil).toBeGreaterThan(base.now);
  });

  it('the event log may also be given parsed; boot RTMRs replay on request', () => {
    expect(verify({ evidence: { eventLog: eventLog() }, policy: { replayBootRtmrs: true } }).status).toBe('UpToDate');
  });

  it('a TD 1.5 (v5) quote verifies and reports its extra fields', () => {
    const v = verify({}, mockAppliance({ version: 5 }));
    expect(v.reportType).toBe('td15');
    expect(v.measurements.mrServiceTd).toBe('00'.repeat(48));
  });
});

describe('trust anchor', () => {
  it('the mock root without dangerouslyAllowCustomTrustAnchor → POLICY_TRUST_ANCHOR', () =>
    rejects({ policy: { dangerouslyAllowCustomTrustAnchor: false } }, 'POLICY_TRUST_ANCHOR'));
  it('the default (Intel) anchor rejects a mock-PKI quote → CERT_CHAIN_UNTRUSTED', () => {
    const { trustAnchorDer: _omit, ...rest } = base.policy;
    expect(codeOf(() => verifyAppliance(base.evidence, rest, base.now))).toBe('CERT_CHAIN_UNTRUSTED');
  });
});

describe('TCB status and advisories', () => {
  const outdated = mockAppliance({
    pckPceSvn: 5,
    tcbLevels: [
      { sgx: [2, 2, 2, 2, 3, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0], pcesvn: 11, tdx: [0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], status: 'UpToDate' },
      { sgx: [2, 2, 2, 2, 3, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0], pcesvn: 5, tdx: [0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], status: 'OutOfDate', advisoryIDs: ['INTEL-SA-00001'] },
    ],
  });
  it('OutOfDate under the default allowlist [UpToDate] → POLICY_TCB_STATUS', () => rejects({}, 'POLICY_TCB_STATUS', outdated));
  it('OutOfDate allowed, its advisory not → POLICY_ADVISORY', () =>
    rejects({ policy: { allowedTcbStatuses: ['UpToDate', 'OutOfDate'] } }, 'POLICY_ADVISORY', outdated));
  it('OutOfDate and its advisory allowed → accepted with the advisory in the verdict', () => {
    const v = verify({ policy: { allowedTcbStatuses: ['OutOfDate'], allowedAdvisoryIds: ['INTEL-SA-00001'] } }, outdated);
    expect([v.status, v.advisoryIds]).toEqual(['OutOfDate', ['INTEL-SA-00001']]);
  });
});

describe('TD attributes', () => {
  const attrs = (bytes: number[]): ReturnType<typeof mockAppliance> => mockAppliance({ tdAttributes: new Uint8Array(bytes) });
  it('DEBUG → POLICY_DEBUG, unless dangerouslyAllowDebug', () => {
    const debug = attrs([1, 0, 0, 0x10, 0, 0, 0, 0]);
    rejects({}, 'POLICY_DEBUG', debug);
    expect(verify({ policy: { dangerouslyAllowDebug: true } }, debug).status).toBe('UpToDate');
  });
  it('a reserved bit → POLICY_TD_ATTRIBUTES', () => rejects({}, 'POLICY_TD_ATTRIBUTES', attrs([0, 1, 0, 0x10, 0, 0, 0, 0])));
  it('SEPT_VE_DISABLE clear → POLICY_TD_ATTRIBUTES', () => rejects({}, 'POLICY_TD_ATTRIBUTES', attrs([0, 0, 0, 0, 0, 0, 0, 0])));
  it('PKS, KL and PERFMON are features, not reserved', () =>
    expect(verify({}, attrs([0, 0, 0, 0xd0, 0, 0, 0, 0x80])).status).toBe('UpToDate'));
  it('TD 1.5 with a service TD → POLICY_SERVICE_TD', () =>
    rejects({}, 'POLICY_SERVICE_TD', mockAppliance({ version: 5, mrServiceTd: new Uint8Array(48).fill(1) })));
  it('MRSIGNERSEAM non-zero → POLICY_SEAM_SIGNER (checked on the report directly)', () => {
    const q = parseQuote(base.evidence.quote);
    if (q.report.type === 'sgx') throw new Error('td expected');
    const report: QuoteReport = { type: 'td10', td: { ...q.report.td, mrSignerSeam: new Uint8Array(48).fill(1) } };
    expect(codeOf(() => checkReportAttributes(report))).toBe('POLICY_SEAM_SIGNER');
  });
  it('an SGX report in debug mode → POLICY_DEBUG', () => {
    const q = parseQuote(vectorQuote('dcapqvl_sgx_v3_quote.bin'));
    if (q.report.type !== 'sgx') throw new Error('sgx expected');
    const sgx = q.report.sgx;
    const attributes = sgx.attributes.slice();
    attributes[0]! |= 0x02;
    expect(codeOf(() => checkReportAttributes({ type: 'sgx', sgx: { ...sgx, attributes } }))).toBe('POLICY_DEBUG');
  });
});

describe('boot measurements', () => {
  it('MRTD not in the allowlist → POLICY_MRTD', () => rejects({ policy: { mrtd: ['00'.repeat(48)] } }, 'POLICY_MRTD'));
  it('RTMR1 not in the allowlist → POLICY_RTMR', () => rejects({ policy: { rtmr1: ['00'.repeat(48)] } }, 'POLICY_RTMR'));
  it('empty allowlists are refused as a policy error unless dangerouslyAllowAnyBootMeasurements', () => {
    rejects({ policy: { mrtd: [] } }, 'INVALID_ARGUMENT');
    expect(verify({ policy: { mrtd: [], rtmr0: [], dangerouslyAllowAnyBootMeasurements: true } }).status).toBe('UpToDate');
  });
  it('hex in either case is accepted', () =>
    expect(verify({ policy: { mrtd: [base.policy.mrtd[0]!.toUpperCase()] } }).status).toBe('UpToDate'));
});

describe('event log and RTMR3', () => {
  it('a tampered runtime event (stripped digest) → RTMR_REPLAY_MISMATCH', () => {
    const log = eventLog();
    const i = log.findIndex((e) => e['event'] === 'compose-hash');
    log[i]!['event_payload'] = '00'.repeat(32);
    rejects({ evidence: { eventLog: JSON.stringify(log) } }, 'RTMR_REPLAY_MISMATCH');
  });
  it('a wrong given digest → EVENT_LOG_DIGEST_MISMATCH', () => {
    const log = eventLog();
    log[5]!['digest'] = '00'.repeat(48);
    rejects({ evidence: { eventLog: log } }, 'EVENT_LOG_DIGEST_MISMATCH');
  });
  it('boot digests that do not replay to RTMR0-2, when asked → RTMR_REPLAY_MISMATCH', () => {
    const log = eventLog();
    log[0]!['digest'] = '00'.repeat(48);
    expect(verify({ evidence: { eventLog: log } }).status).toBe('UpToDate');
    rejects({ evidence: { eventLog: log }, policy: { replayBootRtmrs: true } }, 'RTMR_REPLAY_MISMATCH');
  });
  it('not JSON → EVENT_LOG_MALFORMED', () => rejects({ evidence: { eventLog: '[' } }, 'EVENT_LOG_MALFORMED'));
});

describe('pinned app identity', () => {
  it('another app id → POLICY_APP_ID', () => rejects({ policy: { appId: '00'.repeat(20) } }, 'POLICY_APP_ID'));
  it('another compose hash → POLICY_COMPOSE_HASH', () => rejects({ policy: { composeHashes: ['00'.repeat(32)] } }, 'POLICY_COMPOSE_HASH'));
  it('another OS image → POLICY_OS_IMAGE_HASH', () => rejects({ policy: { osImageHashes: ['00'.repeat(32)] } }, 'POLICY_OS_IMAGE_HASH'));
  it('another key provider name or id → POLICY_KEY_PROVIDER', () => {
    rejects({ policy: { keyProvider: { name: 'local-sgx' } } }, 'POLICY_KEY_PROVIDER');
    rejects({ policy: { keyProvider: { name: 'kms', id: 'ff' } } }, 'POLICY_KEY_PROVIDER');
  });
  it('another instance id → POLICY_INSTANCE_ID', () => rejects({ policy: { instanceIds: ['00'.repeat(20)] } }, 'POLICY_INSTANCE_ID'));
  it('MRCONFIGID inconsistent with the compose hash → MR_CONFIG_ID_MISMATCH (unless dangerouslyIgnoreMrConfigId)', () => {
    const bad = new Uint8Array(48);
    bad[0] = 1;
    const m = mockAppliance({ mrConfigId: bad });
    rejects({}, 'MR_CONFIG_ID_MISMATCH', m);
    expect(verify({ policy: { dangerouslyIgnoreMrConfigId: true } }, m).status).toBe('UpToDate');
  });
});

describe('key binding', () => {
  it('another nonce (a replayed quote) → REPORT_DATA_MISMATCH', () =>
    rejects({ policy: { nonce: new Uint8Array(32).fill(1) } }, 'REPORT_DATA_MISMATCH'));
  it('another identity key → REPORT_DATA_MISMATCH', () =>
    rejects({ evidence: { identityPublicKey: new Uint8Array(33).fill(2) } }, 'REPORT_DATA_MISMATCH'));
  it('a nonce that is not 32 bytes → INVALID_ARGUMENT', () => rejects({ policy: { nonce: NONCE.subarray(0, 16) } }, 'INVALID_ARGUMENT'));
  it('another pinned KMS root → KMS_ROOT_MISMATCH', () =>
    rejects({ policy: { kms: { rootPublicKey: IDENTITY_KEY, keyPurpose: 'openkey-identity' } } }, 'KMS_ROOT_MISMATCH'));
  it('another key purpose → KMS_ROOT_MISMATCH', () =>
    rejects({ policy: { kms: { rootPublicKey: KMS_ROOT, keyPurpose: 'other' } } }, 'KMS_ROOT_MISMATCH'));
  it('a chain issued for another app id → KMS_ROOT_MISMATCH', () =>
    rejects({ evidence: { signatureChain: signatureChain(IDENTITY_KEY, new Uint8Array(20)) } }, 'KMS_ROOT_MISMATCH'));
  it('no chain while the policy pins a KMS → KMS_SIGNATURE_INVALID; no KMS pin → no chain needed', () => {
    const { signatureChain: _omit, ...evidence } = base.evidence;
    expect(codeOf(() => verifyAppliance(evidence, base.policy, base.now))).toBe('KMS_SIGNATURE_INVALID');
    const { kms: _k, ...policy } = base.policy;
    expect(verifyAppliance(evidence, policy, base.now).kms).toBeUndefined();
  });
});

describe('malformed policy and evidence', () => {
  it('are INVALID_ARGUMENT', () => {
    rejects({ policy: { allowedTcbStatuses: ['Revoked'] } }, 'INVALID_ARGUMENT');
    rejects({ policy: { mrtd: ['zz'] } }, 'INVALID_ARGUMENT');
    rejects({ policy: { appId: '00' } }, 'INVALID_ARGUMENT');
    rejects({ policy: { composeHashes: [] } }, 'INVALID_ARGUMENT');
    rejects({ evidence: { quote: 'x' as unknown as Uint8Array } }, 'INVALID_ARGUMENT');
  });
});

describe('the real dstack quote-report vector', () => {
  it('passes every check up to the key binding it cannot carry → REPORT_DATA_MISMATCH', () => {
    const v = expectedVector('dstack_verifier_quote_report');
    const report = vectorJson('dstack_verifier_quote-report.json') as { event_log: string };
    const app = v.event_log_replay!.runtime_events_before_system_ready;
    const kp = JSON.parse(app['key-provider']!) as { name: string; id: string };
    const policy: AppliancePolicy = {
      nonce: NONCE,
      mrtd: [v.quote['mr_td'] as string],
      rtmr0: [v.quote['rtmr0'] as string],
      rtmr1: [v.quote['rtmr1'] as string],
      rtmr2: [v.quote['rtmr2'] as string],
      replayBootRtmrs: true,
      appId: app['app-id']!,
      composeHashes: [app['compose-hash']!],
      instanceIds: [app['instance-id']!],
      keyProvider: kp,
    };
    const evidence: ApplianceEvidence = {
      quote: vectorQuote(v.quote_file),
      eventLog: report.event_log,
      collateral: vectorCollateral(v.collateral_file),
      identityPublicKey: IDENTITY_KEY,
    };
    expect(codeOf(() => verifyAppliance(evidence, policy, v.verify_at))).toBe('REPORT_DATA_MISMATCH');
    // One pin off proves the earlier steps really ran on this vector.
    expect(codeOf(() => verifyAppliance(evidence, { ...policy, composeHashes: ['00'.repeat(32)] }, v.verify_at))).toBe('POLICY_COMPOSE_HASH');
    expect(codeOf(() => verifyAppliance(evidence, policy, v.verify_at + 2))).toBe('CRL_EXPIRED');
  });

  it('an SGX quote → POLICY_REPORT_TYPE', () => {
    const v = expectedVector('dcapqvl_sgx_v3');
    const evidence: ApplianceEvidence = {
      quote: vectorQuote(v.quote_file),
      eventLog: '[]',
      collateral: vectorCollateral(v.collateral_file),
      identityPublicKey: IDENTITY_KEY,
    };
    expect(codeOf(() => verifyAppliance(evidence, { ...base.policy, trustAnchorDer: INTEL_ROOT() }, v.verify_at))).toBe('POLICY_REPORT_TYPE');
  });
});
