// `verifyAppliance`: authenticity (DCAP, dcap/verify.ts) composed with the appliance policy as
// numbered steps (DESIGN "The verifier"; reference §3.3): TCB status and advisories, TD attributes,
// MRTD/RTMR0-2 allowlists, RTMR3 replay, pinned dstack app identity, report_data binding of the
// identity key and the client's nonce, and optionally the dstack KMS chain of the identity key.

import { bytesEqual, constantTimeEqual, fromHex, isUint8Array, toHex } from '../bytes.ts';
import { sha256 } from '../crypto.ts';
import { VerifierError, ensure, oneFailureChannel } from '../errors.ts';
import { INTEL_SGX_ROOT_CA_SHA256, intelSgxRootCaDer } from '../intel-root.ts';
import type { TdReport10 } from '../quote.ts';
import { APPLIANCE_NONCE_LENGTH, appReportData } from '../report-data.ts';
import type { QuoteCollateral } from '../dcap/collateral.ts';
import { isTcbStatus, type TcbStatus } from '../dcap/tcb-info.ts';
import { verifyQuote, type VerifiedQuote } from '../dcap/verify.ts';
import { checkMrConfigId, extractAppIdentity, type AppIdentity, type KeyProviderInfo } from '../dstack/app-identity.ts';
import { parseEventLog, replayRtmrs } from '../dstack/event-log.ts';
import { verifyKmsSignatureChain, type KmsChainResult } from '../dstack/kms-chain.ts';
import { checkReportAttributes } from './td-attributes.ts';

/** What the appliance's Attest RPC returns, plus the collateral for its quote. */
export interface ApplianceEvidence {
  /** Raw TDX quote. */
  readonly quote: Uint8Array;
  /** dstack event log: GetQuote's `event_log` JSON text, or the parsed array. */
  readonly eventLog: string | readonly unknown[];
  /** DCAP collateral for the quote (from collateral/, or shipped alongside). */
  readonly collateral: QuoteCollateral;
  /** The appliance identity public key the quote is expected to bind. */
  readonly identityPublicKey: Uint8Array;
  /** dstack GetKey signature chain of the identity key ([app sig, KMS sig]); needed when policy.kms is set. */
  readonly signatureChain?: readonly Uint8Array[];
}

/** Pins for the dstack KMS that issued the identity key (reference §2.2). */
export interface KmsPolicy {
  /** The KMS root secp256k1 public key (33-byte compressed or 65-byte uncompressed). */
  readonly rootPublicKey: Uint8Array;
  /** GetKey purpose the appliance derives its identity key with. */
  readonly keyPurpose: string;
}

/**
 * The caller's policy. Hex fields are case-insensitive. Lists are allowlists: the value in the
 * quote must be one of them. Options named `dangerously…` weaken the verification and default off.
 */
export interface AppliancePolicy {
  /** The client's fresh 32-byte nonce for this attestation (never taken from the response). */
  readonly nonce: Uint8Array;
  /** DER trust anchor; default the Intel SGX Root CA. */
  readonly trustAnchorDer?: Uint8Array;
  /** Required to use any anchor other than Intel's (e.g. the simulator's mock root). */
  readonly dangerouslyAllowCustomTrustAnchor?: boolean;
  /** TCB statuses accepted; default ['UpToDate']. Revoked is never accepted. */
  readonly allowedTcbStatuses?: readonly TcbStatus[];
  /** Advisory ids accepted; every advisory of the verdict must be listed. Default none. */
  readonly allowedAdvisoryIds?: readonly string[];
  /** Accept a debug TD (host can read its memory). */
  readonly dangerouslyAllowDebug?: boolean;
  /** Allowed MRTD values (48-byte hex), i.e. allowed virtual firmware. */
  readonly mrtd: readonly string[];
  /** Allowed RTMR0 (virtual hardware), RTMR1 (kernel), RTMR2 (cmdline, initrd) values. */
  readonly rtmr0: readonly string[];
  readonly rtmr1: readonly string[];
  readonly rtmr2: readonly string[];
  /** Accept empty MRTD/RTMR0-2 allowlists as "any boot measurement". */
  readonly dangerouslyAllowAnyBootMeasurements?: boolean;
  /** Also replay RTMR0-2 from the event log's boot digests and require a match. Default false. */
  readonly replayBootRtmrs?: boolean;
  /** The dstack app id (20-byte hex). */
  readonly appId: string;
  /** Allowed compose hashes (32-byte hex). */
  readonly composeHashes: readonly string[];
  /** Allowed OS image hashes (32-byte hex); when set, the os-image-hash event must be present. */
  readonly osImageHashes?: readonly string[];
  /** Required key provider; `id` compared case-insensitively when given. */
  readonly keyProvider?: { readonly name: string; readonly id?: string };
  /** Allowed instance ids (20-byte hex). */
  readonly instanceIds?: readonly string[];
  /** Skip the MRCONFIGID consistency check (needed for dstack MRCONFIGID v3 launches). */
  readonly dangerouslyIgnoreMrConfigId?: boolean;
  /** Require and check the dstack KMS chain of the identity key. */
  readonly kms?: KmsPolicy;
}

export interface TdMeasurements {
  readonly mrTd: string;
  readonly rtmr0: string;
  readonly rtmr1: string;
  readonly rtmr2: string;
  readonly rtmr3: string;
  readonly mrConfigId: string;
  readonly mrOwner: string;
  readonly mrOwnerConfig: string;
  readonly mrSeam: string;
  readonly mrSignerSeam: string;
  readonly seamAttributes: string;
  readonly tdAttributes: string;
  readonly xfam: string;
  readonly teeTcbSvn: string;
  readonly reportData: string;
  /** TD report 1.5 only. */
  readonly teeTcbSvn2?: string;
  readonly mrServiceTd?: string;
}

export interface ApplianceAppIdentity {
  readonly appId: string;
  readonly composeHash: string;
  readonly instanceId: string | undefined;
  readonly osImageHash: string | undefined;
  readonly keyProvider: KeyProviderInfo | undefined;
  /** Events the application emitted after system-ready (payloads are not interpreted). */
  readonly appEvents: readonly { readonly name: string; readonly payload: Uint8Array }[];
}

export interface ApplianceVerdict {
  readonly status: TcbStatus;
  readonly advisoryIds: readonly string[];
  readonly reportType: 'td10' | 'td15';
  readonly measurements: TdMeasurements;
  readonly app: ApplianceAppIdentity;
  /** The identity public key the quote binds: pin it and check every receipt against it. */
  readonly boundKey: Uint8Array;
  /** Recovered KMS chain keys, when policy.kms was given. */
  readonly kms: KmsChainResult | undefined;
  readonly platform: { readonly fmspc: string; readonly ppid: string; readonly deviceId: string };
  /** Earliest expiry of the collateral and certificates used (Unix seconds): re-verify before it. */
  readonly validUntil: number;
}

// ---- Step 1: the policy itself --------------------------------------------------------------------

interface CheckedPolicy {
  readonly trustAnchorDer: Uint8Array;
  readonly statuses: ReadonlySet<TcbStatus>;
  readonly advisories: ReadonlySet<string>;
  readonly mrtd: readonly string[];
  readonly rtmr: readonly [readonly string[], readonly string[], readonly string[]];
  readonly anyBoot: boolean;
  readonly appId: string;
  readonly composeHashes: readonly string[];
  readonly osImageHashes: readonly string[] | undefined;
  readonly instanceIds: readonly string[] | undefined;
}

function hexList(list: unknown, bytes: number, what: string): string[] {
  ensure(Array.isArray(list), 'INVALID_ARGUMENT', `${what} must be an array`);
  ensure(list.length <= 1024, 'INVALID_ARGUMENT', `${what} too long`);
  return list.map((h: unknown) => {
    ensure(typeof h === 'string', 'INVALID_ARGUMENT', `${what} entries must be hex strings`);
    return toHex(fromHex(h, 'INVALID_ARGUMENT', bytes));
  });
}

function step1CheckPolicy(p: AppliancePolicy): CheckedPolicy {
  ensure(typeof p === 'object' && p !== null, 'INVALID_ARGUMENT', 'policy');
  ensure(isUint8Array(p.nonce) && p.nonce.length === APPLIANCE_NONCE_LENGTH, 'INVALID_ARGUMENT', 'policy.nonce');
  let trustAnchorDer = intelSgxRootCaDer();
  if (p.trustAnchorDer !== undefined) {
    ensure(isUint8Array(p.trustAnchorDer), 'INVALID_ARGUMENT', 'policy.trustAnchorDer');
    const isIntel = toHex(sha256(p.trustAnchorDer)) === INTEL_SGX_ROOT_CA_SHA256;
    ensure(isIntel || p.dangerouslyAllowCustomTrustAnchor === true, 'POLICY_TRUST_ANCHOR');
    trustAnchorDer = p.trustAnchorDer;
  }
  const statuses = p.allowedTcbStatuses ?? ['UpToDate'];
  ensure(Array.isArray(statuses) && statuses.every((s) => isTcbStatus(s) && s !== 'Revoked'), 'INVALID_ARGUMENT', 'policy.allowedTcbStatuses');
  const advisories = p.allowedAdvisoryIds ?? [];
  ensure(Array.isArray(advisories) && advisories.every((a) => typeof a === 'string'), 'INVALID_ARGUMENT', 'policy.allowedAdvisoryIds');
  const anyBoot = p.dangerouslyAllowAnyBootMeasurements === true;
  const mrtd = hexList(p.mrtd, 48, 'policy.mrtd');
  const rtmr: [string[], string[], string[]] = [
    hexList(p.rtmr0, 48, 'policy.rtmr0'),
    hexList(p.rtmr1, 48, 'policy.rtmr1'),
    hexList(p.rtmr2, 48, 'policy.rtmr2'),
  ];
  ensure(anyBoot || (mrtd.length > 0 && rtmr.every((l) => l.length > 0)), 'INVALID_ARGUMENT', 'empty boot measurement allowlist');
  ensure(typeof p.appId === 'string', 'INVALID_ARGUMENT', 'policy.appId');
  const composeHashes = hexList(p.composeHashes, 32, 'policy.composeHashes');
  ensure(composeHashes.length > 0, 'INVALID_ARGUMENT', 'policy.composeHashes is empty');
  if (p.keyProvider !== undefined) {
    ensure(typeof p.keyProvider.name === 'string', 'INVALID_ARGUMENT', 'policy.keyProvider.name');
    ensure(p.keyProvider.id === undefined || typeof p.keyProvider.id === 'string', 'INVALID_ARGUMENT', 'policy.keyProvider.id');
  }
  if (p.kms !== undefined) {
    ensure(isUint8Array(p.kms.rootPublicKey), 'INVALID_ARGUMENT', 'policy.kms.rootPublicKey');
    ensure(typeof p.kms.keyPurpose === 'string', 'INVALID_ARGUMENT', 'policy.kms.keyPurpose');
  }
  return {
    trustAnchorDer,
    statuses: new Set(statuses),
    advisories: new Set(advisories),
    mrtd,
    rtmr,
    anyBoot,
    appId: toHex(fromHex(p.appId, 'INVALID_ARGUMENT', 20)),
    composeHashes,
    osImageHashes: p.osImageHashes === undefined ? undefined : hexList(p.osImageHashes, 32, 'policy.osImageHashes'),
    instanceIds: p.instanceIds === undefined ? undefined : hexList(p.instanceIds, 20, 'policy.instanceIds'),
  };
}

function step0CheckEvidence(e: ApplianceEvidence): void {
  ensure(typeof e === 'object' && e !== null, 'INVALID_ARGUMENT', 'evidence');
  ensure(isUint8Array(e.quote), 'INVALID_ARGUMENT', 'evidence.quote');
  ensure(typeof e.eventLog === 'string' || Array.isArray(e.eventLog), 'INVALID_ARGUMENT', 'evidence.eventLog');
  ensure(isUint8Array(e.identityPublicKey), 'INVALID_ARGUMENT', 'evidence.identityPublicKey');
  ensure(
    e.signatureChain === undefined || (Array.isArray(e.signatureChain) && e.signatureChain.every(isUint8Array)),
    'INVALID_ARGUMENT',
    'evidence.signatureChain',
  );
}

// ---- Steps 3-5: TCB and attributes -----------------------------------------------------------------

/** Step 3: the report must be a TD report (the appliance runs in a TDX VM). */
function step3TdReport(v: VerifiedQuote): { td: TdReport10; type: 'td10' | 'td15' } {
  const r = v.report;
  if (r.type === 'sgx') throw new VerifierError('POLICY_REPORT_TYPE');
  return { td: r.td, type: r.type };
}

/** Step 4: TCB status and advisories against the allowlists. */
function step4Tcb(v: VerifiedQuote, p: CheckedPolicy): void {
  ensure(p.statuses.has(v.status), 'POLICY_TCB_STATUS', v.status);
  for (const id of v.advisoryIds) ensure(p.advisories.has(id), 'POLICY_ADVISORY', id);
}

/** Step 6: MRTD and RTMR0-2 allowlists (reference §3.3 step 3). */
function step6BootMeasurements(td: TdReport10, p: CheckedPolicy): void {
  if (p.anyBoot && p.mrtd.length === 0) {
    // No MRTD pin requested.
  } else {
    ensure(p.mrtd.includes(toHex(td.mrTd)), 'POLICY_MRTD');
  }
  const regs = [td.rtmr0, td.rtmr1, td.rtmr2];
  regs.forEach((reg, i) => {
    const allowed = p.rtmr[i]!;
    if (p.anyBoot && allowed.length === 0) return;
    ensure(allowed.includes(toHex(reg)), 'POLICY_RTMR', `rtmr${i}`);
  });
}

// ---- Steps 7-9: event log and app identity --------------------------------------------------------

/** Step 7: replay the event log; RTMR3 (and RTMR0-2 on request) must equal the quote's. */
function step7Replay(td: TdReport10, eventLog: string | readonly unknown[], replayBoot: boolean): AppIdentity {
  const events = parseEventLog(eventLog);
  const replayed = replayRtmrs(events);
  ensure(bytesEqual(replayed[3], td.rtmr3), 'RTMR_REPLAY_MISMATCH', 'rtmr3');
  if (replayBoot) {
    const quoted = [td.rtmr0, td.rtmr1, td.rtmr2];
    quoted.forEach((q, i) => ensure(bytesEqual(replayed[i]!, q), 'RTMR_REPLAY_MISMATCH', `rtmr${i}`));
  }
  return extractAppIdentity(events);
}

/** Step 8: MRCONFIGID consistency, then the pinned app identity (reference §3.3 step 5). */
function step8AppIdentity(td: TdReport10, app: AppIdentity, p: CheckedPolicy, raw: AppliancePolicy): void {
  if (raw.dangerouslyIgnoreMrConfigId !== true) checkMrConfigId(td.mrConfigId, app);
  ensure(toHex(app.appId) === p.appId, 'POLICY_APP_ID');
  ensure(p.composeHashes.includes(toHex(app.composeHash)), 'POLICY_COMPOSE_HASH');
  if (p.osImageHashes !== undefined) {
    ensure(app.osImageHash !== undefined && p.osImageHashes.includes(toHex(app.osImageHash)), 'POLICY_OS_IMAGE_HASH');
  }
  if (p.instanceIds !== undefined) {
    ensure(app.instanceId !== undefined && p.instanceIds.includes(toHex(app.instanceId)), 'POLICY_INSTANCE_ID');
  }
  const want = raw.keyProvider;
  if (want !== undefined) {
    const got = app.keyProvider;
    ensure(got !== undefined && got.name === want.name, 'POLICY_KEY_PROVIDER');
    ensure(want.id === undefined || got.id.toLowerCase() === want.id.toLowerCase(), 'POLICY_KEY_PROVIDER');
  }
}

// ---- Steps 9-10: key binding -------------------------------------------------------------------

/** Step 9: report_data = SHA-512(tag ‖ identity key ‖ nonce). */
function step9ReportData(td: TdReport10, identityKey: Uint8Array, nonce: Uint8Array): void {
  ensure(constantTimeEqual(td.reportData, appReportData(identityKey, nonce)), 'REPORT_DATA_MISMATCH');
}

/** Step 10: the identity key's dstack KMS chain against the pinned KMS root (when required). */
function step10Kms(e: ApplianceEvidence, app: AppIdentity, kms: KmsPolicy | undefined): KmsChainResult | undefined {
  if (kms === undefined) return undefined;
  ensure(e.signatureChain !== undefined, 'KMS_SIGNATURE_INVALID', 'no signature chain');
  return verifyKmsSignatureChain({
    publicKey: e.identityPublicKey,
    purpose: kms.keyPurpose,
    appId: app.appId,
    signatureChain: e.signatureChain,
    kmsRootPublicKey: kms.rootPublicKey,
  });
}

function measurementsOf(td: TdReport10, type: 'td10' | 'td15', v: VerifiedQuote): TdMeasurements {
  const base: TdMeasurements = {
    mrTd: toHex(td.mrTd),
    rtmr0: toHex(td.rtmr0),
    rtmr1: toHex(td.rtmr1),
    rtmr2: toHex(td.rtmr2),
    rtmr3: toHex(td.rtmr3),
    mrConfigId: toHex(td.mrConfigId),
    mrOwner: toHex(td.mrOwner),
    mrOwnerConfig: toHex(td.mrOwnerConfig),
    mrSeam: toHex(td.mrSeam),
    mrSignerSeam: toHex(td.mrSignerSeam),
    seamAttributes: toHex(td.seamAttributes),
    tdAttributes: toHex(td.tdAttributes),
    xfam: toHex(td.xfam),
    teeTcbSvn: toHex(td.teeTcbSvn),
    reportData: toHex(td.reportData),
  };
  if (type === 'td15' && v.report.type === 'td15') {
    return { ...base, teeTcbSvn2: toHex(v.report.td.teeTcbSvn2), mrServiceTd: toHex(v.report.td.mrServiceTd) };
  }
  return base;
}

/**
 * Verifies an appliance's attestation evidence against `policy` at `now` (Unix seconds): the quote
 * is genuine and current (DCAP), runs the pinned code, and binds `evidence.identityPublicKey` to
 * `policy.nonce`. Returns the verdict or throws one VerifierError. Does no I/O.
 */
export function verifyAppliance(evidence: ApplianceEvidence, policy: AppliancePolicy, now: number): ApplianceVerdict {
  return oneFailureChannel(() => {
    step0CheckEvidence(evidence);
    const p = step1CheckPolicy(policy);
    // Step 2: authenticity (reference §5.1).
    const v = verifyQuote(evidence.quote, evidence.collateral, { trustAnchorDer: p.trustAnchorDer, now });
    const { td, type } = step3TdReport(v);
    step4Tcb(v, p);
    // Step 5: TD attributes.
    checkReportAttributes(v.report, { dangerouslyAllowDebug: policy.dangerouslyAllowDebug === true });
    step6BootMeasurements(td, p);
    const app = step7Replay(td, evidence.eventLog, policy.replayBootRtmrs === true);
    step8AppIdentity(td, app, p, policy);
    step9ReportData(td, evidence.identityPublicKey, policy.nonce);
    const kms = step10Kms(evidence, app, policy.kms);
    return {
      status: v.status,
      advisoryIds: v.advisoryIds,
      reportType: type,
      measurements: measurementsOf(td, type, v),
      app: {
        appId: toHex(app.appId),
        composeHash: toHex(app.composeHash),
        instanceId: app.instanceId === undefined ? undefined : toHex(app.instanceId),
        osImageHash: app.osImageHash === undefined ? undefined : toHex(app.osImageHash),
        keyProvider: app.keyProvider,
        appEvents: app.appEvents,
      },
      boundKey: evidence.identityPublicKey.slice(),
      kms,
      platform: { fmspc: toHex(v.pck.fmspc), ppid: toHex(v.pck.ppid), deviceId: toHex(sha256(v.pck.ppid)) },
      validUntil: v.validUntil,
    };
  });
}
