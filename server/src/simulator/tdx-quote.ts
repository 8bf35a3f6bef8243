// Byte layout of an Intel TDX quote v4 (reference/attestation.md §4.1-§4.3, §4.5): header, TD
// report 1.0 body, ECDSA-P256 signature data with certification data type 6 (QE report
// certification data) wrapping type 5 (PCK chain, PEM). Pure encoding plus the two signatures;
// which keys and values go in is decided by mock-attestation.ts.

import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, utf8 } from '../core/bytes.ts';
import { p256SignRaw, type P256KeyPair } from './mock-pki.ts';

/** Intel's QE vendor id (§4.1); verifiers require it, so the mock QE claims it too. */
export const INTEL_QE_VENDOR_ID = Uint8Array.from([
  0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
]);

export const QUOTE_V4_HEADER_LEN = 48;
export const TD_REPORT10_LEN = 584;
export const ENCLAVE_REPORT_LEN = 384;
/** REPORTDATA of a v4 TDX quote sits at [568, 632) (§4.2). */
export const TDX_V4_REPORT_DATA_OFFSET = 568;
export const TDX_V4_SIGNED_LEN = QUOTE_V4_HEADER_LEN + TD_REPORT10_LEN;

class Writer {
  readonly #parts: Uint8Array[] = [];
  bytes(b: Uint8Array, len: number, label: string): this {
    if (b.length !== len) throw new RangeError(`${label}: expected ${len} bytes, got ${b.length}`);
    this.#parts.push(Uint8Array.from(b));
    return this;
  }
  u16(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError('u16 out of range');
    this.#parts.push(Uint8Array.of(v & 0xff, v >>> 8));
    return this;
  }
  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError('u32 out of range');
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, true);
    this.#parts.push(b);
    return this;
  }
  zeros(n: number): this {
    this.#parts.push(new Uint8Array(n));
    return this;
  }
  done(): Uint8Array {
    return concatBytes(...this.#parts);
  }
}

/** §4.1: version 4, attestation key type 2 (ECDSA P-256), TEE type 0x81 (TDX). */
export function encodeQuoteHeaderV4(userData: Uint8Array): Uint8Array {
  return new Writer()
    .u16(4)
    .u16(2)
    .u32(0x81)
    .u16(0) // reserved (qe_svn on SGX)
    .u16(0) // reserved (pce_svn on SGX)
    .bytes(INTEL_QE_VENDOR_ID, 16, 'qe vendor id')
    .bytes(userData, 20, 'user data')
    .done();
}

export interface TdReport10 {
  readonly teeTcbSvn: Uint8Array; // 16
  readonly mrSeam: Uint8Array; // 48
  readonly mrSignerSeam: Uint8Array; // 48
  readonly seamAttributes: Uint8Array; // 8
  readonly tdAttributes: Uint8Array; // 8
  readonly xfam: Uint8Array; // 8
  readonly mrTd: Uint8Array; // 48
  readonly mrConfigId: Uint8Array; // 48
  readonly mrOwner: Uint8Array; // 48
  readonly mrOwnerConfig: Uint8Array; // 48
  readonly rtmrs: readonly [Uint8Array, Uint8Array, Uint8Array, Uint8Array]; // 48 each
  readonly reportData: Uint8Array; // 64
}

/** §4.2, offsets relative to the body start (48 in the quote). */
export function encodeTdReport10(r: TdReport10): Uint8Array {
  const w = new Writer()
    .bytes(r.teeTcbSvn, 16, 'tee_tcb_svn')
    .bytes(r.mrSeam, 48, 'mrseam')
    .bytes(r.mrSignerSeam, 48, 'mrsignerseam')
    .bytes(r.seamAttributes, 8, 'seam attributes')
    .bytes(r.tdAttributes, 8, 'td attributes')
    .bytes(r.xfam, 8, 'xfam')
    .bytes(r.mrTd, 48, 'mrtd')
    .bytes(r.mrConfigId, 48, 'mrconfigid')
    .bytes(r.mrOwner, 48, 'mrowner')
    .bytes(r.mrOwnerConfig, 48, 'mrownerconfig');
  r.rtmrs.forEach((m, i) => w.bytes(m, 48, `rtmr${i}`));
  return w.bytes(r.reportData, 64, 'report data').done();
}

export interface EnclaveReport {
  readonly cpuSvn: Uint8Array; // 16
  readonly miscSelect: number;
  readonly attributes: Uint8Array; // 16
  readonly mrEnclave: Uint8Array; // 32
  readonly mrSigner: Uint8Array; // 32
  readonly isvProdId: number;
  readonly isvSvn: number;
  readonly reportData: Uint8Array; // 64
}

/** SGX enclave report (§4.5), the form of the QE report. */
export function encodeEnclaveReport(r: EnclaveReport): Uint8Array {
  return new Writer()
    .bytes(r.cpuSvn, 16, 'cpusvn')
    .u32(r.miscSelect)
    .zeros(28)
    .bytes(r.attributes, 16, 'attributes')
    .bytes(r.mrEnclave, 32, 'mrenclave')
    .zeros(32)
    .bytes(r.mrSigner, 32, 'mrsigner')
    .zeros(96)
    .u16(r.isvProdId)
    .u16(r.isvSvn)
    .zeros(60)
    .bytes(r.reportData, 64, 'report data')
    .done();
}

/** QE report_data binding (§4.3): SHA-256(attestation key X‖Y ‖ QE auth data) ‖ 32 zero bytes. */
export function qeReportDataFor(attestationPublicKey: Uint8Array, qeAuthData: Uint8Array): Uint8Array {
  const out = new Uint8Array(64);
  out.set(sha256(concatBytes(rawXY(attestationPublicKey), qeAuthData)));
  return out;
}

/** The 64-byte X‖Y form of an uncompressed SEC1 P-256 point. */
export function rawXY(uncompressed: Uint8Array): Uint8Array {
  if (uncompressed.length !== 65 || uncompressed[0] !== 0x04) throw new RangeError('expected an uncompressed P-256 point');
  return uncompressed.subarray(1);
}

/** The QE side, fixed for a QE instance: its report (signed by the PCK key) and the PCK chain. */
export interface QeCertification {
  readonly attestationKey: P256KeyPair;
  readonly qeReport: Uint8Array; // 384
  readonly qeReportSignature: Uint8Array; // 64, by the PCK key over the QE report
  readonly qeAuthData: Uint8Array;
  /** PEM: PCK leaf, PCK CA, root. */
  readonly pckChainPem: string;
}

/** §4.3: a complete v4 quote whose ECDSA signature covers header ‖ TD report. */
export function buildTdxQuoteV4(header: Uint8Array, tdReport: Uint8Array, qe: QeCertification): Uint8Array {
  if (header.length !== QUOTE_V4_HEADER_LEN || tdReport.length !== TD_REPORT10_LEN) throw new RangeError('bad header or TD report');
  const signed = concatBytes(header, tdReport);
  const signature = p256SignRaw(qe.attestationKey.secretKey, signed);
  const pem = utf8(qe.pckChainPem);
  const qeCertData = new Writer()
    .bytes(qe.qeReport, ENCLAVE_REPORT_LEN, 'qe report')
    .bytes(qe.qeReportSignature, 64, 'qe report signature')
    .u16(qe.qeAuthData.length)
    .bytes(qe.qeAuthData, qe.qeAuthData.length, 'qe auth data')
    .u16(5) // PCK certificate chain
    .u32(pem.length)
    .bytes(pem, pem.length, 'pck chain')
    .done();
  const authData = new Writer()
    .bytes(signature, 64, 'quote signature')
    .bytes(rawXY(qe.attestationKey.publicKey), 64, 'attestation key')
    .u16(6) // QE report certification data
    .u32(qeCertData.length)
    .bytes(qeCertData, qeCertData.length, 'qe certification data')
    .done();
  return concatBytes(signed, new Writer().u32(authData.length).done(), authData);
}
