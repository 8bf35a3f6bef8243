// Certificate path validation for the DCAP chains (reference §5.1 steps 0, 2-4): PCK leaf → PCK CA →
// anchor, and TCB/QE-identity signing cert → anchor. Checks names, signatures, CA constraints,
// validity at `now`, and revocation against CRLs that are themselves signature- and time-checked.
// Every non-anchor certificate needs a CRL from its issuer (unknown revocation status is refused).

import { bytesEqual, toHex } from '../bytes.ts';
import { sha256, verifyP256 } from '../crypto.ts';
import { VerifierError, ensure } from '../errors.ts';
import { KEY_USAGE, parseCertificate, parseCrl, sameName, type Certificate, type Crl } from '../asn1/x509.ts';
import { pemCertificates } from '../asn1/pem.ts';

/** Longest chain accepted below the anchor (Intel's deepest is leaf + one intermediate). */
export const MAX_CHAIN_LENGTH = 4;

export interface TrustAnchor {
  readonly cert: Certificate;
}

/** Parses the caller's trust anchor (DER). It must be a CA certificate. */
export function parseTrustAnchor(der: Uint8Array): TrustAnchor {
  ensure(der instanceof Uint8Array, 'INVALID_ARGUMENT', 'trustAnchorDer must be a Uint8Array');
  let cert: Certificate;
  try {
    cert = parseCertificate(der.slice());
  } catch (e: unknown) {
    throw new VerifierError('TRUST_ANCHOR_INVALID', 'trust anchor does not parse', { cause: e });
  }
  ensure(cert.basicConstraints?.ca === true, 'TRUST_ANCHOR_INVALID', 'trust anchor is not a CA');
  return { cert };
}

/**
 * Per-verification state: the anchor, the parsed CRLs, the time, and a memo of signature checks so
 * a certificate or CRL that appears in several chains is verified once per call (never across
 * calls: nothing here outlives one verification).
 */
export class ChainContext {
  readonly anchor: TrustAnchor;
  readonly crls: readonly Crl[];
  readonly now: number;
  readonly #memo = new Map<string, boolean>();

  constructor(anchor: TrustAnchor, crls: readonly Crl[], now: number) {
    this.anchor = anchor;
    this.crls = crls;
    this.now = now;
  }

  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
    const key = `${toHex(publicKey)}:${toHex(sha256(message))}:${toHex(signature)}`;
    let ok = this.#memo.get(key);
    if (ok === undefined) {
      ok = verifyP256(signature, message, publicKey);
      this.#memo.set(key, ok);
    }
    return ok;
  }
}

/** Parses the DER CRLs of a collateral bundle. */
export function parseCrls(ders: readonly Uint8Array[]): Crl[] {
  return ders.map((d) => parseCrl(d));
}

/** Parses a PEM chain (leaf first) into certificates. */
export function parseChainPem(pem: string | Uint8Array): Certificate[] {
  return pemCertificates(pem, 'CERT_MALFORMED').map((der) => parseCertificate(der));
}

function checkTime(cert: Certificate, now: number): void {
  ensure(cert.notBefore <= now, 'CERT_NOT_YET_VALID');
  ensure(now <= cert.notAfter, 'CERT_EXPIRED');
}

/**
 * The CRL that speaks for certificates issued by `issuer`: same issuer name and a valid signature
 * by `issuer`'s key, inside its window at `now`.
 */
function crlFor(ctx: ChainContext, issuer: Certificate): Crl {
  const named = ctx.crls.filter((c) => sameName(c.issuer, issuer.subject));
  ensure(named.length > 0, 'CRL_MISSING');
  const crl = named.find((c) => ctx.verify(c.signature, c.tbs, issuer.publicKey));
  ensure(crl !== undefined, 'CRL_SIGNATURE_INVALID');
  // A CRL issuer with a keyUsage extension must be allowed to sign CRLs (RFC 5280 §4.2.1.3).
  ensure(issuer.keyUsage === undefined || issuer.keyUsage(KEY_USAGE.cRLSign), 'CERT_CONSTRAINTS', 'issuer may not sign CRLs');
  ensure(crl.thisUpdate <= ctx.now, 'CRL_NOT_YET_VALID');
  ensure(ctx.now <= crl.nextUpdate, 'CRL_EXPIRED');
  return crl;
}

/**
 * Validates `chain` (leaf first; copies of the anchor at its end are ignored) up to the anchor at
 * `ctx.now`. Returns the leaf. The leaf must be an end-entity certificate usable for signatures.
 * `depth`, when given, is the exact number of certificates required below the anchor.
 */
export function verifyChain(ctx: ChainContext, chain: readonly Certificate[], depth?: number): Certificate {
  const anchor = ctx.anchor.cert;
  let n = chain.length;
  while (n > 0 && bytesEqual(chain[n - 1]!.der, anchor.der)) n--;
  ensure(n >= 1, 'CERT_CHAIN_INVALID', 'chain holds no certificate below the anchor');
  ensure(n <= MAX_CHAIN_LENGTH, 'CERT_CHAIN_INVALID', 'chain too long');
  ensure(depth === undefined || n === depth, 'CERT_CHAIN_INVALID', `expected ${depth} certificates below the anchor`);
  const path = [...chain.slice(0, n), anchor];

  // Links: names, issuer constraints, signatures (RFC 5280 §6.1.3, §6.1.4).
  for (let i = 0; i < n; i++) {
    const child = path[i]!;
    const parent = path[i + 1]!;
    const parentIsAnchor = i + 1 === n;
    ensure(child.unknownCritical.length === 0, 'CERT_CONSTRAINTS', 'unknown critical extension');
    if (!sameName(child.issuer, parent.subject)) {
      throw new VerifierError(parentIsAnchor ? 'CERT_CHAIN_UNTRUSTED' : 'CERT_CHAIN_INVALID', 'issuer name does not link');
    }
    ensure(parent.basicConstraints?.ca === true, 'CERT_CONSTRAINTS', 'issuer is not a CA');
    const pathLen = parent.basicConstraints.pathLen;
    // `i` intermediate CA certificates sit between `parent` and the leaf.
    ensure(pathLen === undefined || i <= pathLen, 'CERT_CONSTRAINTS', 'pathLenConstraint exceeded');
    ensure(parent.keyUsage === undefined || parent.keyUsage(KEY_USAGE.keyCertSign), 'CERT_CONSTRAINTS', 'issuer may not sign certificates');
    if (!ctx.verify(child.signature, child.tbs, parent.publicKey)) {
      throw new VerifierError(parentIsAnchor ? 'CERT_CHAIN_UNTRUSTED' : 'CERT_SIGNATURE_INVALID');
    }
  }
  const leaf = path[0]!;
  ensure(leaf.basicConstraints?.ca !== true, 'CERT_CONSTRAINTS', 'leaf is a CA');
  ensure(leaf.keyUsage === undefined || leaf.keyUsage(KEY_USAGE.digitalSignature), 'CERT_CONSTRAINTS', 'leaf may not sign');

  // Validity windows, the anchor's included.
  for (const cert of path) checkTime(cert, ctx.now);

  // Revocation by serial and issuer: each certificate against its issuer's CRL.
  for (let i = 0; i < n; i++) {
    const crl = crlFor(ctx, path[i + 1]!);
    ensure(!crl.revoked.has(toHex(path[i]!.serial)), 'CERT_REVOKED');
  }
  // The anchor itself must not appear in a CRL it issued (dcap-qvl checks the root the same way).
  for (const crl of ctx.crls) {
    if (sameName(crl.issuer, anchor.subject) && ctx.verify(crl.signature, crl.tbs, anchor.publicKey)) {
      ensure(!crl.revoked.has(toHex(anchor.serial)), 'CERT_REVOKED', 'trust anchor revoked');
    }
  }
  return leaf;
}
