// The collateral a DCAP verification consumes (dcap-qvl's QuoteCollateralV3, reference §5.2), and
// its JSON bundle form: snake_case keys, bytes as hex strings (number arrays are also accepted).
// `tcbInfo` and `qeIdentity` stay the exact signed JSON text; they are parsed only after their
// signatures verify (see tcb-info.ts, qe-identity.ts).

import { fromHex, toHex } from '../bytes.ts';
import { VerifierError } from '../errors.ts';
import { asObject, parseJsonText, type JsonObject } from '../json.ts';

export interface QuoteCollateral {
  /** PEM chain of the PCK CRL issuer (informational: the PCK CRL is checked against the PCK chain). */
  readonly pckCrlIssuerChain: string;
  /** DER CRL issued by the root CA. */
  readonly rootCaCrl: Uint8Array;
  /** DER CRL issued by the PCK (Platform or Processor) CA. */
  readonly pckCrl: Uint8Array;
  readonly tcbInfoIssuerChain: string;
  /** The exact JSON text of the `tcbInfo` object that Intel signed. */
  readonly tcbInfo: string;
  /** Raw r‖s (64 bytes). */
  readonly tcbInfoSignature: Uint8Array;
  readonly qeIdentityIssuerChain: string;
  /** The exact JSON text of the `enclaveIdentity` object that Intel signed. */
  readonly qeIdentity: string;
  readonly qeIdentitySignature: Uint8Array;
  /** Optional PCK chain shipped with the collateral; unused when the quote carries its own. */
  readonly pckCertificateChain?: string;
}

/** Bounds per field of a bundle. */
const MAX_TEXT = 256 * 1024;
const MAX_CRL = 2 * 1024 * 1024;
/** Bound on a bundle's JSON text. */
export const MAX_COLLATERAL_JSON = 8 * 1024 * 1024;

const CODE = 'COLLATERAL_MALFORMED';

function text(o: JsonObject, key: string): string {
  const v = o[key];
  if (typeof v !== 'string') throw new VerifierError(CODE, `${key}: expected string`);
  if (v.length > MAX_TEXT) throw new VerifierError(CODE, `${key}: too long`);
  return v;
}

function bytes(o: JsonObject, key: string, max: number, exact?: number): Uint8Array {
  const v = o[key];
  let out: Uint8Array;
  if (typeof v === 'string') {
    if (v.length > 2 * max) throw new VerifierError(CODE, `${key}: too long`);
    out = fromHex(v, CODE);
  } else if (Array.isArray(v)) {
    if (v.length > max) throw new VerifierError(CODE, `${key}: too long`);
    out = new Uint8Array(v.length);
    v.forEach((b: unknown, i) => {
      if (typeof b !== 'number' || !Number.isInteger(b) || b < 0 || b > 255) throw new VerifierError(CODE, `${key}: bad byte`);
      out[i] = b;
    });
  } else if (v instanceof Uint8Array) {
    if (v.length > max) throw new VerifierError(CODE, `${key}: too long`);
    out = v.slice();
  } else {
    throw new VerifierError(CODE, `${key}: expected hex string or byte array`);
  }
  if (exact !== undefined && out.length !== exact) throw new VerifierError(CODE, `${key}: expected ${exact} bytes`);
  return out;
}

/**
 * Checks and copies a collateral bundle: a QuoteCollateralV3-shaped object or its JSON text.
 * Throws COLLATERAL_MALFORMED.
 */
export function parseCollateral(input: unknown): QuoteCollateral {
  const value = typeof input === 'string' ? parseJsonText(input, CODE, MAX_COLLATERAL_JSON) : input;
  const o = asObject(value, CODE, 'collateral');
  const pck = o['pck_certificate_chain'];
  const base = {
    pckCrlIssuerChain: text(o, 'pck_crl_issuer_chain'),
    rootCaCrl: bytes(o, 'root_ca_crl', MAX_CRL),
    pckCrl: bytes(o, 'pck_crl', MAX_CRL),
    tcbInfoIssuerChain: text(o, 'tcb_info_issuer_chain'),
    tcbInfo: text(o, 'tcb_info'),
    tcbInfoSignature: bytes(o, 'tcb_info_signature', 64, 64),
    qeIdentityIssuerChain: text(o, 'qe_identity_issuer_chain'),
    qeIdentity: text(o, 'qe_identity'),
    qeIdentitySignature: bytes(o, 'qe_identity_signature', 64, 64),
  };
  if (pck === undefined || pck === null) return base;
  return { ...base, pckCertificateChain: text(o, 'pck_certificate_chain') };
}

/** The JSON bundle form of a collateral (hex bytes), suitable for shipping next to a quote. */
export function collateralToJson(c: QuoteCollateral): Record<string, string> {
  const out: Record<string, string> = {
    pck_crl_issuer_chain: c.pckCrlIssuerChain,
    root_ca_crl: toHex(c.rootCaCrl),
    pck_crl: toHex(c.pckCrl),
    tcb_info_issuer_chain: c.tcbInfoIssuerChain,
    tcb_info: c.tcbInfo,
    tcb_info_signature: toHex(c.tcbInfoSignature),
    qe_identity_issuer_chain: c.qeIdentityIssuerChain,
    qe_identity: c.qeIdentity,
    qe_identity_signature: toHex(c.qeIdentitySignature),
  };
  if (c.pckCertificateChain !== undefined) out['pck_certificate_chain'] = c.pckCertificateChain;
  return out;
}

/** Runtime check that a value already has the QuoteCollateral shape (for the public API). */
export function assertCollateral(c: unknown): QuoteCollateral {
  const o = asObject(c, 'INVALID_ARGUMENT', 'collateral');
  const strings = ['pckCrlIssuerChain', 'tcbInfoIssuerChain', 'tcbInfo', 'qeIdentityIssuerChain', 'qeIdentity'];
  const byteFields = ['rootCaCrl', 'pckCrl', 'tcbInfoSignature', 'qeIdentitySignature'];
  for (const k of strings) if (typeof o[k] !== 'string') throw new VerifierError('INVALID_ARGUMENT', `collateral.${k}`);
  for (const k of byteFields) if (!(o[k] instanceof Uint8Array)) throw new VerifierError('INVALID_ARGUMENT', `collateral.${k}`);
  return c as QuoteCollateral;
}
