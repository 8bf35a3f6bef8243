// DCAP quote verification as numbered steps, one function each (reference §5.1; STYLE: dcap-qvl).
// `verifyQuote(quote, collateral, {trustAnchorDer, now})` does no I/O and trusts nothing but the
// anchor it is given. Signatures over data run first (tampering is refused after one check), then
// the chains behind the signers; all steps must pass, so the order changes only which code a
// doubly-broken input gets. Authenticity only: TD attributes, measurements, report data are policy/.

import { bytesEqual, concatBytes, utf8 } from '../bytes.ts';
import { rawP256Key, sha256, verifyP256 } from '../crypto.ts';
import { ensure, oneFailureChannel } from '../errors.ts';
import { parsePckExtension, type PckExtension } from '../asn1/pck.ts';
import { OID, commonName, type Certificate } from '../asn1/x509.ts';
import { INTEL_QE_VENDOR_ID, parseQuote, type ParsedQuote, type QuoteReport } from '../quote.ts';
import { ChainContext, parseChainPem, parseCrls, parseTrustAnchor, verifyChain } from './chain.ts';
import { assertCollateral, type QuoteCollateral } from './collateral.ts';
import { parseQeIdentity, parseTcbInfo, type QeIdentity, type TcbInfo, type TcbStatus } from './tcb-info.ts';
import {
  convergeStatuses,
  matchPlatformLevel,
  matchQeIdentity,
  matchTdxModule,
  toTcbStatus,
  unionAdvisories,
} from './tcb.ts';

export interface VerifyQuoteOptions {
  /** DER of the root CA every chain must end at (Intel SGX Root CA in production). */
  readonly trustAnchorDer: Uint8Array;
  /** Verification time, Unix seconds. */
  readonly now: number;
}

/** What the PCK certificate says about the platform (reference §4.6). */
export interface PckInfo {
  readonly fmspc: Uint8Array;
  readonly pceId: Uint8Array;
  readonly cpuSvn: Uint8Array;
  readonly pceSvn: number;
  readonly ppid: Uint8Array;
  readonly sgxType: number;
  /** Common name of the PCK issuer ("Intel SGX PCK Platform CA" / "… Processor CA"). */
  readonly issuerCommonName: string | undefined;
}

export interface VerifiedQuote {
  /** Converged TCB status (never Revoked). */
  readonly status: TcbStatus;
  readonly advisoryIds: readonly string[];
  readonly platformStatus: TcbStatus;
  readonly qeStatus: TcbStatus;
  /** Status of the TDX module's own TCB level, when the TCB info has one for it. */
  readonly tdxModuleStatus: TcbStatus | undefined;
  readonly quote: ParsedQuote;
  readonly report: QuoteReport;
  readonly pck: PckInfo;
  /** Earliest expiry (Unix seconds) among the collateral and certificates used. */
  readonly validUntil: number;
}

// ---- Step 0: inputs ----------------------------------------------------------------------------

function step0CheckTime(now: number): number {
  ensure(typeof now === 'number' && Number.isSafeInteger(now) && now >= 0, 'INVALID_ARGUMENT', 'now must be Unix seconds');
  return now;
}

// ---- Step 1: quote header -------------------------------------------------------------------------

/** §5.1 step 1: parse (version/tee/key type checked by the parser), then the QE vendor id. */
function step1ParseQuote(raw: Uint8Array): ParsedQuote {
  const quote = parseQuote(raw);
  ensure(bytesEqual(quote.header.qeVendorId, INTEL_QE_VENDOR_ID), 'QE_VENDOR_MISMATCH');
  return quote;
}

// ---- Steps 5, 6, 8: signatures inside the quote ---------------------------------------------------

/** §5.1 step 5: the QE report is signed by the PCK leaf's key. */
function step5QeReportSignature(quote: ParsedQuote, pckLeaf: Certificate): void {
  ensure(
    verifyP256(quote.auth.qeReportSignature, quote.auth.qeReportRaw, pckLeaf.publicKey),
    'QE_REPORT_SIGNATURE_INVALID',
  );
}

/** §5.1 step 6: the QE binds the attestation key: report_data = SHA-256(key ‖ QE auth data) ‖ 0^32. */
function step6QeReportData(quote: ParsedQuote): void {
  const expected = sha256(concatBytes(quote.auth.attestationKey, quote.auth.qeAuthData));
  const rd = quote.auth.qeReport.reportData;
  ensure(bytesEqual(rd.subarray(0, 32), expected), 'QE_REPORT_DATA_MISMATCH');
  ensure(rd.subarray(32).every((b) => b === 0), 'QE_REPORT_DATA_MISMATCH', 'upper half not zero');
}

/** §5.1 step 8: the attestation key signs header ‖ body. */
function step8QuoteSignature(quote: ParsedQuote): void {
  const signed = quote.raw.subarray(0, quote.signedLength);
  ensure(
    verifyP256(quote.auth.quoteSignature, signed, rawP256Key(quote.auth.attestationKey)),
    'QUOTE_SIGNATURE_INVALID',
  );
}

// ---- Steps 0 and 4: PCK chain with CRLs -----------------------------------------------------------

/** §5.1 step 4: the PCK chain (from the quote) to the anchor at `now`, with CRLs; then its extension. */
function step4PckChain(ctx: ChainContext, chain: readonly Certificate[]): { leaf: Certificate; pck: PckExtension } {
  const leaf = verifyChain(ctx, chain);
  return { leaf, pck: parsePckExtension(leaf) };
}

// ---- Steps 2 and 3: signed collateral ------------------------------------------------------------

type DocumentKind = 'tcbInfo' | 'qeIdentity';

/**
 * §5.1 steps 2-3, first half: the document's signature over its exact text, by the key of its
 * issuer chain's leaf. Checked before any chain work so tampered collateral is refused cheaply;
 * the chain itself is validated in the second half. Returns the parsed issuer chain.
 */
function verifyDocumentSignature(ctx: ChainContext, c: QuoteCollateral, kind: DocumentKind): Certificate[] {
  const [text, signature, pem, code] =
    kind === 'tcbInfo'
      ? ([c.tcbInfo, c.tcbInfoSignature, c.tcbInfoIssuerChain, 'TCB_INFO_SIGNATURE_INVALID'] as const)
      : ([c.qeIdentity, c.qeIdentitySignature, c.qeIdentityIssuerChain, 'QE_IDENTITY_SIGNATURE_INVALID'] as const);
  const chain = parseChainPem(pem);
  ensure(ctx.verify(signature, utf8(text), chain[0]!.publicKey), code);
  return chain;
}

/**
 * §5.1 steps 2-3, second half: the signer's chain to the anchor. Intel's TCB signing certificate
 * is issued by the root directly and is not a PCK certificate: requiring exactly that shape stops
 * a PCK key (held by a platform) from signing TCB info or a QE identity.
 */
function verifySignerChain(ctx: ChainContext, chain: readonly Certificate[]): void {
  const leaf = verifyChain(ctx, chain, 1);
  ensure(!leaf.extensions.has(OID.sgxExtensions), 'CERT_CONSTRAINTS', 'a PCK certificate cannot sign collateral');
}

function checkWindow(
  issueDate: number,
  nextUpdate: number,
  now: number,
  codes: readonly ['TCB_INFO_NOT_YET_VALID', 'TCB_INFO_EXPIRED'] | readonly ['QE_IDENTITY_NOT_YET_VALID', 'QE_IDENTITY_EXPIRED'],
): void {
  ensure(issueDate <= now, codes[0]);
  ensure(now <= nextUpdate, codes[1]);
}

/** §5.1 step 2: TCB info issuer chain, then (verify, then parse) its content, window and kind. */
function step2TcbInfo(ctx: ChainContext, signer: readonly Certificate[], c: QuoteCollateral, quote: ParsedQuote): TcbInfo {
  verifySignerChain(ctx, signer);
  const info = parseTcbInfo(c.tcbInfo);
  checkWindow(info.issueDate, info.nextUpdate, ctx.now, ['TCB_INFO_NOT_YET_VALID', 'TCB_INFO_EXPIRED']);
  const tdx = quote.report.type !== 'sgx';
  ensure(info.id === (tdx ? 'TDX' : 'SGX'), 'TCB_INFO_UNSUPPORTED', `id ${info.id}`);
  ensure(info.version >= 3, 'TCB_INFO_UNSUPPORTED', `version ${info.version}`);
  ensure(info.tcbType === 0, 'TCB_INFO_UNSUPPORTED', `tcbType ${info.tcbType}`);
  return info;
}

/** §5.1 step 3: QE identity issuer chain, then its content, window and kind. */
function step3QeIdentity(ctx: ChainContext, signer: readonly Certificate[], c: QuoteCollateral, quote: ParsedQuote): QeIdentity {
  verifySignerChain(ctx, signer);
  const identity = parseQeIdentity(c.qeIdentity);
  checkWindow(identity.issueDate, identity.nextUpdate, ctx.now, ['QE_IDENTITY_NOT_YET_VALID', 'QE_IDENTITY_EXPIRED']);
  if (quote.report.type === 'sgx') {
    ensure(identity.id === 'QE' && identity.version === 2, 'QE_IDENTITY_UNSUPPORTED');
  } else {
    ensure(identity.id === 'TD_QE' && (identity.version === 2 || identity.version === 3), 'QE_IDENTITY_UNSUPPORTED');
  }
  return identity;
}

// ---- Steps 9-11: TCB -----------------------------------------------------------------------------

/** §5.1 step 9 (first half): the TCB info is for this platform. */
function step9PlatformIdentity(info: TcbInfo, pck: PckExtension): void {
  ensure(bytesEqual(info.fmspc, pck.fmspc), 'FMSPC_MISMATCH');
  ensure(bytesEqual(info.pceId, pck.pceId), 'PCEID_MISMATCH');
}

interface TcbOutcome {
  readonly status: TcbStatus;
  readonly advisoryIds: string[];
  readonly platformStatus: TcbStatus;
  readonly qeStatus: TcbStatus;
  readonly tdxModuleStatus: TcbStatus | undefined;
}

/** §5.1 steps 7, 9, 10, 11: QE level, platform level, TDX module level, converged status. */
function step11Tcb(quote: ParsedQuote, info: TcbInfo, identity: QeIdentity, pck: PckExtension): TcbOutcome {
  const qeLevel = matchQeIdentity(identity, quote.auth.qeReport);
  const td = quote.report.type === 'sgx' ? undefined : quote.report.td;
  const platformLevel = matchPlatformLevel(info, pck, td?.teeTcbSvn);
  const moduleLevel = td === undefined ? undefined : matchTdxModule(info, td);

  const platformStatus = toTcbStatus(platformLevel.tcbStatus);
  const qeStatus = toTcbStatus(qeLevel.tcbStatus);
  const tdxModuleStatus = moduleLevel === undefined ? undefined : toTcbStatus(moduleLevel.tcbStatus);
  const status = convergeStatuses([platformStatus, qeStatus, ...(tdxModuleStatus === undefined ? [] : [tdxModuleStatus])]);
  // Revoked is final: no policy can accept it (§5.1 step 11).
  ensure(status !== 'Revoked', 'TCB_REVOKED');
  const advisoryIds = unionAdvisories([platformLevel.advisoryIds, qeLevel.advisoryIds, moduleLevel?.advisoryIds ?? []]);
  return { status, advisoryIds, platformStatus, qeStatus, tdxModuleStatus };
}

// ---- The pipeline --------------------------------------------------------------------------------

/**
 * Verifies a quote's authenticity and TCB against collateral at `now`. Throws VerifierError with a
 * stable code on any failure; never performs I/O.
 */
export function verifyQuote(quote: Uint8Array, collateral: QuoteCollateral, options: VerifyQuoteOptions): VerifiedQuote {
  return oneFailureChannel(() => {
    ensure(typeof options === 'object' && options !== null, 'INVALID_ARGUMENT', 'options');
    const now = step0CheckTime(options.now);
    const anchor = parseTrustAnchor(options.trustAnchorDer);
    const c = assertCollateral(collateral);

    // Signatures over data first (each one check), then the chains that vouch for the signers.
    const parsed = step1ParseQuote(quote);
    const pckChain = parseChainPem(parsed.auth.pckChainPem);
    step5QeReportSignature(parsed, pckChain[0]!);
    step6QeReportData(parsed);
    step8QuoteSignature(parsed);
    const ctx = new ChainContext(anchor, parseCrls([c.rootCaCrl, c.pckCrl]), now);
    const tcbSigner = verifyDocumentSignature(ctx, c, 'tcbInfo');
    const qeSigner = verifyDocumentSignature(ctx, c, 'qeIdentity');

    const { leaf, pck } = step4PckChain(ctx, pckChain);
    const tcbInfo = step2TcbInfo(ctx, tcbSigner, c, parsed);
    const qeIdentity = step3QeIdentity(ctx, qeSigner, c, parsed);
    step9PlatformIdentity(tcbInfo, pck);
    const tcb = step11Tcb(parsed, tcbInfo, qeIdentity, pck);

    const expiries = [
      tcbInfo.nextUpdate,
      qeIdentity.nextUpdate,
      ...ctx.crls.map((crl) => crl.nextUpdate),
      ...[...pckChain, ...tcbSigner, ...qeSigner].map((cert) => cert.notAfter),
      anchor.cert.notAfter,
    ];
    return {
      ...tcb,
      quote: parsed,
      report: parsed.report,
      pck: {
        fmspc: pck.fmspc,
        pceId: pck.pceId,
        cpuSvn: pck.cpuSvn,
        pceSvn: pck.pceSvn,
        ppid: pck.ppid,
        sgxType: pck.sgxType,
        issuerCommonName: commonName(leaf.issuer),
      },
      validUntil: Math.min(...expiries),
    };
  });
}
