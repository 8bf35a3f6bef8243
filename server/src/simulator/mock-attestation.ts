// Dev-only TDX attestation under the mock Intel PKI: validly signed v4 quotes for the simulated
// CVM's measurements, and matching collateral in dcap-qvl `QuoteCollateralV3` shape (reference
// §5.2): PEM issuer chains, hex DER CRLs, signed TCB Info v3 / QE Identity v2 JSON text with hex
// r‖s signatures. It verifies only under the mock root (`rootCaDer`); the real Intel root rejects it.

import { sha256, sha384 } from '@noble/hashes/sha2.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { toHex, utf8 } from '../core/bytes.ts';
import { createMockPki, p256FromSeed, p256SignRaw, pemChain, type MockPki } from './mock-pki.ts';
import {
  buildTdxQuoteV4,
  encodeEnclaveReport,
  encodeQuoteHeaderV4,
  encodeTdReport10,
  qeReportDataFor,
  type QeCertification,
} from './tdx-quote.ts';

/** dcap-qvl `QuoteCollateralV3` in its JSON form (bytes as hex), as in vectors/tdx/*_collateral.json. */
export interface DevQuoteCollateral {
  readonly pck_crl_issuer_chain: string;
  readonly root_ca_crl: string;
  readonly pck_crl: string;
  readonly tcb_info_issuer_chain: string;
  readonly tcb_info: string;
  readonly tcb_info_signature: string;
  readonly qe_identity_issuer_chain: string;
  readonly qe_identity: string;
  readonly qe_identity_signature: string;
}

/** What a TD report measures; the simulator's platform supplies these. */
export interface TdMeasurements {
  readonly mrtd: Uint8Array;
  readonly mrConfigId: Uint8Array;
  readonly mrOwner: Uint8Array;
  readonly mrOwnerConfig: Uint8Array;
  readonly rtmrs: readonly [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
}

export interface MockAttestation {
  /** DER of the mock root CA: the only trust anchor these quotes verify under. */
  readonly rootCaDer: Uint8Array;
  readonly pki: MockPki;
  /** Collateral valid from the start of the previous UTC day for 31 days, relative to `nowMs`. */
  collateral(nowMs: number): DevQuoteCollateral;
  /** A signed v4 quote; `reportData` at most 64 bytes, right-padded with zeros (§1.2). */
  quote(m: TdMeasurements, reportData: Uint8Array): Uint8Array;
}

// Platform TCB the mock PCK and TD report claim, and the collateral levels they match. Shaped
// like a real TDX platform (vectors/tdx tdx_v4) so level matching is exercised, not all zeros.
const FMSPC = Uint8Array.from([0xde, 0x5e, 0x00, 0x00, 0x00, 0x00]);
const PCE_ID = Uint8Array.of(0, 0);
const CPU_SVN = Uint8Array.from([3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0]);
const PCE_SVN = 11;
/** [0] TDX module minor SVN, [1] major version → tdxModuleIdentities "TDX_01" (§4.2, §5.1 step 10). */
const TEE_TCB_SVN = Uint8Array.from([6, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
const LEVEL_SGX = [2, 2, 2, 2, 3, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
const LEVEL_TDX = [5, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const TD_ATTRIBUTES = Uint8Array.from([0, 0, 0, 0x10, 0, 0, 0, 0]); // SEPT_VE_DISABLE (bit 28) only
const XFAM = Uint8Array.from([0xe7, 0x02, 0x06, 0, 0, 0, 0, 0]);
const MR_SEAM = sha384(utf8('openkey-dev-simulator MOCK TDX module'));

// The mock TD QE. Its MRSIGNER is ours, not Intel's: a mock QE must not look like the real one.
const QE_MRSIGNER = sha256(utf8('openkey-dev-simulator MOCK TD QE signer'));
const QE_MRENCLAVE = sha256(utf8('openkey-dev-simulator MOCK TD QE enclave'));
const QE_ISVPRODID = 2;
const QE_ISVSVN = 4;
const QE_ATTRIBUTES = Uint8Array.from([0x11, 0, 0, 0, 0, 0, 0, 0, 0xe7, 0, 0, 0, 0, 0, 0, 0]);
/** 32 bytes 0x00..0x1f, as in the real samples (§4.3). */
const QE_AUTH_DATA = Uint8Array.from({ length: 32 }, (_, i) => i);

const DAY_MS = 86_400_000;
const HEX_UPPER = (b: Uint8Array): string => toHex(b).toUpperCase();
const isoSeconds = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const comps = (svns: readonly number[]): { svn: number }[] => svns.map((svn) => ({ svn }));

/** TCB Info v3 (TDX) text, compact and in Intel's key order (§5.2). */
function tcbInfoText(issueMs: number, nextMs: number): string {
  const zeros48 = '00'.repeat(48);
  return JSON.stringify({
    id: 'TDX',
    version: 3,
    issueDate: isoSeconds(issueMs),
    nextUpdate: isoSeconds(nextMs),
    fmspc: HEX_UPPER(FMSPC),
    pceId: HEX_UPPER(PCE_ID),
    tcbType: 0,
    tcbEvaluationDataNumber: 17,
    tdxModule: { mrsigner: zeros48, attributes: '0000000000000000', attributesMask: 'FFFFFFFFFFFFFFFF' },
    tdxModuleIdentities: [
      {
        id: 'TDX_01',
        mrsigner: zeros48,
        attributes: '0000000000000000',
        attributesMask: 'FFFFFFFFFFFFFFFF',
        tcbLevels: [
          { tcb: { isvsvn: 4 }, tcbDate: '2024-03-13T00:00:00Z', tcbStatus: 'UpToDate' },
          { tcb: { isvsvn: 2 }, tcbDate: '2023-08-09T00:00:00Z', tcbStatus: 'OutOfDate' },
        ],
      },
    ],
    tcbLevels: [
      {
        tcb: { sgxtcbcomponents: comps(LEVEL_SGX), pcesvn: PCE_SVN, tdxtcbcomponents: comps(LEVEL_TDX) },
        tcbDate: '2024-03-13T00:00:00Z',
        tcbStatus: 'UpToDate',
      },
      {
        tcb: { sgxtcbcomponents: comps(LEVEL_SGX), pcesvn: 5, tdxtcbcomponents: comps(LEVEL_TDX) },
        tcbDate: '2018-01-04T00:00:00Z',
        tcbStatus: 'OutOfDate',
        advisoryIDs: ['INTEL-SA-00106'],
      },
    ],
  });
}

/** QE Identity v2 (TD_QE) text (§5.2). */
function qeIdentityText(issueMs: number, nextMs: number): string {
  return JSON.stringify({
    id: 'TD_QE',
    version: 2,
    issueDate: isoSeconds(issueMs),
    nextUpdate: isoSeconds(nextMs),
    tcbEvaluationDataNumber: 17,
    miscselect: '00000000',
    miscselectMask: 'FFFFFFFF',
    attributes: '11000000000000000000000000000000',
    attributesMask: 'FBFFFFFFFFFFFFFF0000000000000000',
    mrsigner: HEX_UPPER(QE_MRSIGNER),
    isvprodid: QE_ISVPRODID,
    tcbLevels: [{ tcb: { isvsvn: QE_ISVSVN }, tcbDate: '2024-03-13T00:00:00Z', tcbStatus: 'UpToDate' }],
  });
}

export interface MockAttestationOptions {
  readonly seed: Uint8Array;
  /** 16 bytes; goes into the PCK certificate (device_id = sha256(PPID), §3.1). */
  readonly ppid: Uint8Array;
}

export function createMockAttestation(o: MockAttestationOptions): MockAttestation {
  const label = (l: string, n: number): Uint8Array => hkdf(sha256, o.seed, utf8('openkey-dev-simulator mock-qe'), utf8(l), n);
  const pki = createMockPki(o.seed, {
    ppid: o.ppid,
    cpuSvn: CPU_SVN,
    pceSvn: PCE_SVN,
    pceId: PCE_ID,
    fmspc: FMSPC,
    sgxType: 1,
    platformInstanceId: label('platform-instance-id', 16),
  });
  // One attestation key per simulated QE (seed-derived): the QE report binding it is signed once.
  const attestationKey = p256FromSeed(o.seed, 'qe-attestation-key');
  const qeReport = encodeEnclaveReport({
    cpuSvn: CPU_SVN,
    miscSelect: 0,
    attributes: QE_ATTRIBUTES,
    mrEnclave: QE_MRENCLAVE,
    mrSigner: QE_MRSIGNER,
    isvProdId: QE_ISVPRODID,
    isvSvn: QE_ISVSVN,
    reportData: qeReportDataFor(attestationKey.publicKey, QE_AUTH_DATA),
  });
  const qe: QeCertification = {
    attestationKey,
    qeReport,
    qeReportSignature: p256SignRaw(pki.pckKey.secretKey, qeReport),
    qeAuthData: QE_AUTH_DATA,
    pckChainPem: pemChain(pki.pckLeafDer, pki.pckCaDer, pki.rootCaDer),
  };
  // user_data: QE ID (16 bytes) then zeros (§4.1).
  const userData = new Uint8Array(20);
  userData.set(label('qe-id', 16));
  const header = encodeQuoteHeaderV4(userData);
  const rootPem = pemChain(pki.rootCaDer);

  return {
    rootCaDer: pki.rootCaDer,
    pki,
    collateral(nowMs: number): DevQuoteCollateral {
      const issue = Math.floor(nowMs / DAY_MS) * DAY_MS - DAY_MS;
      const next = issue + 31 * DAY_MS;
      const tcbInfo = tcbInfoText(issue, next);
      const qeIdentity = qeIdentityText(issue, next);
      return {
        pck_crl_issuer_chain: pemChain(pki.pckCaDer) + rootPem,
        root_ca_crl: toHex(pki.rootCaCrlDer),
        pck_crl: toHex(pki.pckCrlDer),
        tcb_info_issuer_chain: pemChain(pki.tcbSigningDer) + rootPem,
        tcb_info: tcbInfo,
        tcb_info_signature: toHex(p256SignRaw(pki.tcbSigningKey.secretKey, utf8(tcbInfo))),
        qe_identity_issuer_chain: pemChain(pki.qeIdentitySigningDer) + rootPem,
        qe_identity: qeIdentity,
        qe_identity_signature: toHex(p256SignRaw(pki.qeIdentitySigningKey.secretKey, utf8(qeIdentity))),
      };
    },
    quote(m: TdMeasurements, reportData: Uint8Array): Uint8Array {
      if (reportData.length > 64) throw new RangeError('report data longer than 64 bytes');
      const rd = new Uint8Array(64);
      rd.set(reportData);
      const td = encodeTdReport10({
        teeTcbSvn: TEE_TCB_SVN,
        mrSeam: MR_SEAM,
        mrSignerSeam: new Uint8Array(48),
        seamAttributes: new Uint8Array(8),
        tdAttributes: TD_ATTRIBUTES,
        xfam: XFAM,
        mrTd: m.mrtd,
        mrConfigId: m.mrConfigId,
        mrOwner: m.mrOwner,
        mrOwnerConfig: m.mrOwnerConfig,
        rtmrs: m.rtmrs,
        reportData: rd,
      });
      return buildTdxQuoteV4(header, td, qe);
    },
  };
}
