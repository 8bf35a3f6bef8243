// Parsing of DCAP quotes: SGX v3, TDX v4 and v5 (TD report 1.0 and 1.5), offsets per reference §4.
// Parsing checks structure only (versions, types, lengths); it verifies nothing cryptographic.
// The input is copied first, trailing bytes after the auth data are tolerated (§4.3), and any
// truncation is a QUOTE_TRUNCATED error from the bounded reader.

import { copyBytes } from './bytes.ts';
import { VerifierError, ensure } from './errors.ts';
import { BoundedReader } from './reader.ts';

/** Upper bound on a quote we are willing to parse. Real quotes are about 5 KB. */
export const MAX_QUOTE_BYTES = 1 << 20;

export const TEE_TYPE_SGX = 0x00000000;
export const TEE_TYPE_TDX = 0x00000081;
export const ATTESTATION_KEY_TYPE_ECDSA_P256 = 2;
/** Intel's QE vendor id, `939A7233F79C4CA9940A0DB3957F0607` (reference §4.1). */
export const INTEL_QE_VENDOR_ID = new Uint8Array([
  0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
]);

const HEADER_LEN = 48;
const ENCLAVE_REPORT_LEN = 384;
const TD_REPORT10_LEN = 584;
const TD_REPORT15_LEN = 648;
const BODY_TYPE_SGX = 1;
const BODY_TYPE_TD10 = 2;
const BODY_TYPE_TD15 = 3;
const CERT_TYPE_PCK_CHAIN = 5;
const CERT_TYPE_QE_REPORT = 6;

export interface QuoteHeader {
  readonly version: 3 | 4 | 5;
  readonly attestationKeyType: number;
  readonly teeType: number;
  readonly qeSvn: number;
  readonly pceSvn: number;
  readonly qeVendorId: Uint8Array;
  readonly userData: Uint8Array;
}

/** SGX enclave report (384 bytes, §4.5); also the layout of the QE report. */
export interface EnclaveReport {
  readonly cpuSvn: Uint8Array;
  readonly miscSelect: number;
  readonly attributes: Uint8Array;
  readonly mrEnclave: Uint8Array;
  readonly mrSigner: Uint8Array;
  readonly isvProdId: number;
  readonly isvSvn: number;
  readonly reportData: Uint8Array;
}

/** TD report 1.0 fields (§4.2). */
export interface TdReport10 {
  readonly teeTcbSvn: Uint8Array;
  readonly mrSeam: Uint8Array;
  readonly mrSignerSeam: Uint8Array;
  readonly seamAttributes: Uint8Array;
  readonly tdAttributes: Uint8Array;
  readonly xfam: Uint8Array;
  readonly mrTd: Uint8Array;
  readonly mrConfigId: Uint8Array;
  readonly mrOwner: Uint8Array;
  readonly mrOwnerConfig: Uint8Array;
  readonly rtmr0: Uint8Array;
  readonly rtmr1: Uint8Array;
  readonly rtmr2: Uint8Array;
  readonly rtmr3: Uint8Array;
  readonly reportData: Uint8Array;
}

/** TD report 1.5 adds TEE_TCB_SVN2 and MRSERVICETD (§4.4). */
export interface TdReport15 extends TdReport10 {
  readonly teeTcbSvn2: Uint8Array;
  readonly mrServiceTd: Uint8Array;
}

export type QuoteReport =
  | { readonly type: 'sgx'; readonly sgx: EnclaveReport }
  | { readonly type: 'td10'; readonly td: TdReport10 }
  | { readonly type: 'td15'; readonly td: TdReport15 };

export type ReportType = QuoteReport['type'];

/** The ECDSA-P256 signature data that follows the signed region (§4.3, §4.5). */
export interface QuoteAuthData {
  /** r‖s over SHA-256 of the signed region, by the attestation key. */
  readonly quoteSignature: Uint8Array;
  /** Raw X‖Y of the P-256 attestation key. */
  readonly attestationKey: Uint8Array;
  /** The raw 384-byte QE report, exactly as signed by the PCK key. */
  readonly qeReportRaw: Uint8Array;
  readonly qeReport: EnclaveReport;
  readonly qeReportSignature: Uint8Array;
  readonly qeAuthData: Uint8Array;
  /** The certification data type that carried the PCK chain (always 5). */
  readonly certDataType: 5;
  /** PEM text of the PCK chain, leaf first (bytes as found in the quote). */
  readonly pckChainPem: Uint8Array;
}

export interface ParsedQuote {
  /** A private copy of the input. */
  readonly raw: Uint8Array;
  readonly header: QuoteHeader;
  readonly report: QuoteReport;
  /** Length of the region the attestation key signs: header (+ body descriptor) + body. */
  readonly signedLength: number;
  readonly auth: QuoteAuthData;
  /** Offset where the parsed structure ends; bytes after it are ignored. */
  readonly parsedLength: number;
}

function parseHeader(r: BoundedReader): QuoteHeader {
  const version = r.u16();
  const attestationKeyType = r.u16();
  const teeType = r.u32();
  const qeSvn = r.u16();
  const pceSvn = r.u16();
  const qeVendorId = r.bytes(16);
  const userData = r.bytes(20);
  if (version !== 3 && version !== 4 && version !== 5) {
    throw new VerifierError('UNSUPPORTED_QUOTE_VERSION', `version ${version}`);
  }
  ensure(attestationKeyType === ATTESTATION_KEY_TYPE_ECDSA_P256, 'UNSUPPORTED_ATTESTATION_KEY_TYPE');
  // §5.1 step 1: SGX quotes are v3; TDX quotes are v4 or v5.
  if (version === 3) ensure(teeType === TEE_TYPE_SGX, 'UNSUPPORTED_TEE_TYPE', 'v3 quotes are SGX');
  else ensure(teeType === TEE_TYPE_TDX, 'UNSUPPORTED_TEE_TYPE', 'v4/v5 quotes must be TDX');
  return { version, attestationKeyType, teeType, qeSvn, pceSvn, qeVendorId, userData };
}

/** Parses a 384-byte SGX report (§4.5). */
export function parseEnclaveReport(r: BoundedReader): EnclaveReport {
  const cpuSvn = r.bytes(16);
  const miscSelect = r.u32();
  r.bytes(28);
  const attributes = r.bytes(16);
  const mrEnclave = r.bytes(32);
  r.bytes(32);
  const mrSigner = r.bytes(32);
  r.bytes(96);
  const isvProdId = r.u16();
  const isvSvn = r.u16();
  r.bytes(60);
  const reportData = r.bytes(64);
  return { cpuSvn, miscSelect, attributes, mrEnclave, mrSigner, isvProdId, isvSvn, reportData };
}

function parseTdReport10(r: BoundedReader): TdReport10 {
  return {
    teeTcbSvn: r.bytes(16),
    mrSeam: r.bytes(48),
    mrSignerSeam: r.bytes(48),
    seamAttributes: r.bytes(8),
    tdAttributes: r.bytes(8),
    xfam: r.bytes(8),
    mrTd: r.bytes(48),
    mrConfigId: r.bytes(48),
    mrOwner: r.bytes(48),
    mrOwnerConfig: r.bytes(48),
    rtmr0: r.bytes(48),
    rtmr1: r.bytes(48),
    rtmr2: r.bytes(48),
    rtmr3: r.bytes(48),
    reportData: r.bytes(64),
  };
}

function parseTdReport15(r: BoundedReader): TdReport15 {
  const base = parseTdReport10(r);
  return { ...base, teeTcbSvn2: r.bytes(16), mrServiceTd: r.bytes(48) };
}

/** Requires that a fixed-size or length-delimited structure was consumed exactly. */
function ensureConsumed(r: BoundedReader, what: string): void {
  ensure(r.remaining === 0, 'QUOTE_MALFORMED', `${r.remaining} unexpected bytes after ${what}`);
}

function parseQeReportAndChain(
  r: BoundedReader,
  quoteSignature: Uint8Array,
  attestationKey: Uint8Array,
  pckChainCertType: number,
  pckChainPem: Uint8Array,
  qeReportRaw: Uint8Array,
  qeReportSignature: Uint8Array,
  qeAuthData: Uint8Array,
): QuoteAuthData {
  ensure(pckChainCertType === CERT_TYPE_PCK_CHAIN, 'UNSUPPORTED_CERT_DATA_TYPE', `inner type ${pckChainCertType}`);
  ensure(r.remaining === 0, 'QUOTE_MALFORMED', 'bytes after the PCK chain');
  const qeReport = parseEnclaveReport(new BoundedReader(qeReportRaw));
  return {
    quoteSignature,
    attestationKey,
    qeReportRaw,
    qeReport,
    qeReportSignature,
    qeAuthData,
    certDataType: 5,
    pckChainPem,
  };
}

/** v4/v5 auth data: signature, key, then certification data type 6 wrapping type 5 (§4.3). */
function parseAuthDataV4(r: BoundedReader): QuoteAuthData {
  const quoteSignature = r.bytes(64);
  const attestationKey = r.bytes(64);
  const certType = r.u16();
  const certSize = r.u32();
  ensure(certType === CERT_TYPE_QE_REPORT, 'UNSUPPORTED_CERT_DATA_TYPE', `outer type ${certType}`);
  const cert = r.sub(certSize);
  ensureConsumed(r, 'certification data');
  const qeReportRaw = cert.bytes(ENCLAVE_REPORT_LEN);
  const qeReportSignature = cert.bytes(64);
  const qeAuthData = cert.bytes(cert.u16());
  const innerType = cert.u16();
  const innerSize = cert.u32();
  const pem = cert.bytes(innerSize);
  return parseQeReportAndChain(
    cert,
    quoteSignature,
    attestationKey,
    innerType,
    pem,
    qeReportRaw,
    qeReportSignature,
    qeAuthData,
  );
}

/** v3 auth data: the QE report comes first and the PCK chain is type 5 directly (§4.5). */
function parseAuthDataV3(r: BoundedReader): QuoteAuthData {
  const quoteSignature = r.bytes(64);
  const attestationKey = r.bytes(64);
  const qeReportRaw = r.bytes(ENCLAVE_REPORT_LEN);
  const qeReportSignature = r.bytes(64);
  const qeAuthData = r.bytes(r.u16());
  const certType = r.u16();
  const certSize = r.u32();
  const pem = r.bytes(certSize);
  return parseQeReportAndChain(
    r,
    quoteSignature,
    attestationKey,
    certType,
    pem,
    qeReportRaw,
    qeReportSignature,
    qeAuthData,
  );
}

/**
 * Step 1 (reference §5.1): parse a quote. Checks version/tee type/key type pairing and every
 * length; does not check the QE vendor id or any signature (see dcap.ts).
 */
export function parseQuote(input: Uint8Array): ParsedQuote {
  ensure(input instanceof Uint8Array, 'INVALID_ARGUMENT', 'quote must be a Uint8Array');
  ensure(input.length <= MAX_QUOTE_BYTES, 'QUOTE_TOO_LARGE');
  const raw = copyBytes(input);
  const r = new BoundedReader(raw);
  const header = parseHeader(r.sub(HEADER_LEN));

  let report: QuoteReport;
  if (header.version === 3) {
    report = { type: 'sgx', sgx: parseEnclaveReport(r.sub(ENCLAVE_REPORT_LEN)) };
  } else if (header.version === 4) {
    report = { type: 'td10', td: parseTdReport10(r.sub(TD_REPORT10_LEN)) };
  } else {
    // v5: a body descriptor (type u16, size u32) precedes the body (§4.4).
    const bodyType = r.u16();
    const bodySize = r.u32();
    if (bodyType === BODY_TYPE_TD10) {
      ensure(bodySize === TD_REPORT10_LEN, 'QUOTE_MALFORMED', 'TD 1.0 body size');
      report = { type: 'td10', td: parseTdReport10(r.sub(TD_REPORT10_LEN)) };
    } else if (bodyType === BODY_TYPE_TD15) {
      ensure(bodySize === TD_REPORT15_LEN, 'QUOTE_MALFORMED', 'TD 1.5 body size');
      report = { type: 'td15', td: parseTdReport15(r.sub(TD_REPORT15_LEN)) };
    } else {
      // Type 1 (an SGX report inside a v5 quote) is not a TDX quote; anything else is unknown.
      throw new VerifierError('UNSUPPORTED_BODY_TYPE', `body type ${bodyType === BODY_TYPE_SGX ? 'sgx' : bodyType}`);
    }
  }
  const signedLength = r.offset;

  const authLength = r.u32();
  const authReader = r.sub(authLength);
  const auth = header.version === 3 ? parseAuthDataV3(authReader) : parseAuthDataV4(authReader);
  return { raw, header, report, signedLength, auth, parsedLength: r.offset };
}
