// X.509 certificates and CRLs (RFC 5280 §4.1, §5.1), parsed with the bounded DER reader into the
// fields the DCAP chain checks need. Only ECDSA-with-SHA256 over P-256 keys is accepted, which is
// what Intel's SGX PKI uses; signatures are kept as raw r‖s plus the exact signed TBS bytes.

import { bytesEqual, toHex } from '../bytes.ts';
import { derSignatureToRaw } from '../crypto.ts';
import { VerifierError } from '../errors.ts';
import {
  DerReader,
  TAG,
  bitStringBytes,
  booleanValue,
  contextTag,
  derRoot,
  integerBytes,
  namedBits,
  oidText,
  readTime,
  smallInteger,
  type DerElement,
} from './der.ts';

export const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecPublicKey: '1.2.840.10045.2.1',
  prime256v1: '1.2.840.10045.3.1.7',
  commonName: '2.5.4.3',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  crlNumber: '2.5.29.20',
  sgxExtensions: '1.2.840.113741.1.13.1',
} as const;

/** keyUsage bits (RFC 5280 §4.2.1.3). */
export const KEY_USAGE = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;

/** Extensions we interpret; any other extension marked critical makes a certificate unusable. */
const UNDERSTOOD_CRITICAL = new Set<string>([OID.basicConstraints, OID.keyUsage]);

/** Upper bound on CRL entries, far above Intel's real CRLs (tens of entries). */
const MAX_CRL_ENTRIES = 100_000;
/** Upper bound on extensions per certificate. */
const MAX_EXTENSIONS = 32;

export interface Extension {
  readonly critical: boolean;
  readonly value: Uint8Array;
}

export interface Certificate {
  readonly der: Uint8Array;
  /** The exact DER of tbsCertificate (what the issuer signed). */
  readonly tbs: Uint8Array;
  readonly serial: Uint8Array;
  /** Encoded issuer and subject Names; compared byte for byte. */
  readonly issuer: Uint8Array;
  readonly subject: Uint8Array;
  readonly notBefore: number;
  readonly notAfter: number;
  /** SEC1 P-256 point. */
  readonly publicKey: Uint8Array;
  /** Raw r‖s. */
  readonly signature: Uint8Array;
  /** basicConstraints: undefined when the extension is absent. */
  readonly basicConstraints: { readonly ca: boolean; readonly pathLen: number | undefined } | undefined;
  /** keyUsage bit test; undefined when the extension is absent. */
  readonly keyUsage: ((bit: number) => boolean) | undefined;
  readonly extensions: ReadonlyMap<string, Extension>;
  /** OIDs of critical extensions this library does not interpret. */
  readonly unknownCritical: readonly string[];
}

export interface Crl {
  readonly der: Uint8Array;
  readonly tbs: Uint8Array;
  readonly issuer: Uint8Array;
  readonly thisUpdate: number;
  readonly nextUpdate: number;
  /** Hex of the serial numbers listed as revoked. */
  readonly revoked: ReadonlySet<string>;
  readonly signature: Uint8Array;
}

function ecdsaSha256Algorithm(r: DerReader, what: string): void {
  const alg = r.sequence(what);
  if (oidText(alg.expect(TAG.OID, 'algorithm'), r.code) !== OID.ecdsaWithSha256) {
    r.fail(`${what}: only ecdsa-with-SHA256 is supported`);
  }
  // RFC 5758 §3.2: the parameters field MUST be absent.
  alg.end(what);
}

function parseExtensions(el: DerElement, r: DerReader): Map<string, Extension> {
  const outer = r.enter(el);
  const list = outer.sequence('extensions');
  outer.end('extensions');
  const map = new Map<string, Extension>();
  while (!list.done) {
    const ext = list.sequence('extension');
    const oid = oidText(ext.expect(TAG.OID, 'extnID'), r.code);
    const critEl = ext.optional(TAG.BOOLEAN);
    const critical = critEl === undefined ? false : booleanValue(critEl, r.code);
    const value = ext.expect(TAG.OCTET_STRING, 'extnValue').content;
    ext.end('extension');
    if (map.has(oid)) r.fail(`duplicate extension ${oid}`);
    if (map.size >= MAX_EXTENSIONS) r.fail('too many extensions');
    map.set(oid, { critical, value });
  }
  return map;
}

function parseBasicConstraints(value: Uint8Array): { ca: boolean; pathLen: number | undefined } {
  const seqEl = derRoot(value, TAG.SEQUENCE, 'CERT_MALFORMED', 'basicConstraints');
  const r = new DerReader(seqEl.content, 'CERT_MALFORMED', 1);
  const caEl = r.optional(TAG.BOOLEAN);
  const ca = caEl === undefined ? false : booleanValue(caEl, 'CERT_MALFORMED');
  const plEl = r.optional(TAG.INTEGER);
  const pathLen = plEl === undefined ? undefined : smallInteger(plEl, 'CERT_MALFORMED', 255);
  r.end('basicConstraints');
  return { ca, pathLen };
}

function parsePublicKey(r: DerReader): Uint8Array {
  const spki = r.sequence('subjectPublicKeyInfo');
  const alg = spki.sequence('SPKI algorithm');
  if (oidText(alg.expect(TAG.OID, 'key algorithm'), r.code) !== OID.ecPublicKey) r.fail('only EC keys are supported');
  if (oidText(alg.expect(TAG.OID, 'curve'), r.code) !== OID.prime256v1) r.fail('only P-256 keys are supported');
  alg.end('SPKI algorithm');
  const key = bitStringBytes(spki.expect(TAG.BIT_STRING, 'public key'), r.code);
  spki.end('subjectPublicKeyInfo');
  const ok = (key.length === 65 && key[0] === 4) || (key.length === 33 && (key[0] === 2 || key[0] === 3));
  if (!ok) r.fail('bad EC point encoding');
  return key;
}

/** Parses one DER certificate (RFC 5280 §4.1). Throws CERT_MALFORMED. */
export function parseCertificate(der: Uint8Array): Certificate {
  const code = 'CERT_MALFORMED';
  const top = new DerReader(der, code);
  const cert = top.sequence('Certificate');
  top.end('Certificate');
  const tbsEl = cert.expect(TAG.SEQUENCE, 'tbsCertificate');
  ecdsaSha256Algorithm(cert, 'signatureAlgorithm');
  const signature = derSignatureToRaw(bitStringBytes(cert.expect(TAG.BIT_STRING, 'signatureValue'), code), code);
  cert.end('Certificate');

  const tbs = cert.enter(tbsEl);
  const versionEl = tbs.optional(contextTag(0));
  if (versionEl === undefined) throw new VerifierError(code, 'v1 certificates are not supported');
  const vr = tbs.enter(versionEl);
  if (smallInteger(vr.expect(TAG.INTEGER, 'version'), code, 2) !== 2) tbs.fail('only v3 certificates are supported');
  vr.end('version');
  const serial = integerBytes(tbs.expect(TAG.INTEGER, 'serialNumber'), code);
  if (serial.length > 21) tbs.fail('serial number too long'); // RFC 5280 §4.1.2.2: at most 20 octets
  ecdsaSha256Algorithm(tbs, 'tbs signature');
  const issuer = tbs.expect(TAG.SEQUENCE, 'issuer').encoded;
  const validity = tbs.sequence('validity');
  const notBefore = readTime(validity, 'notBefore');
  const notAfter = readTime(validity, 'notAfter');
  validity.end('validity');
  const subject = tbs.expect(TAG.SEQUENCE, 'subject').encoded;
  const publicKey = parsePublicKey(tbs);
  // issuerUniqueID [1] and subjectUniqueID [2] are IMPLICIT primitive; tolerated, unused.
  tbs.optional(0x81);
  tbs.optional(0x82);
  const extEl = tbs.optional(contextTag(3));
  tbs.end('tbsCertificate');

  const extensions = extEl === undefined ? new Map<string, Extension>() : parseExtensions(extEl, tbs);
  const bc = extensions.get(OID.basicConstraints);
  const ku = extensions.get(OID.keyUsage);
  const unknownCritical = [...extensions].filter(([oid, e]) => e.critical && !UNDERSTOOD_CRITICAL.has(oid)).map(([oid]) => oid);
  return {
    der,
    tbs: tbsEl.encoded,
    serial,
    issuer,
    subject,
    notBefore,
    notAfter,
    publicKey,
    signature,
    basicConstraints: bc === undefined ? undefined : parseBasicConstraints(bc.value),
    keyUsage: ku === undefined ? undefined : namedBits(derRoot(ku.value, TAG.BIT_STRING, code, 'keyUsage'), code),
    extensions,
    unknownCritical,
  };
}

/** Parses one DER CRL (RFC 5280 §5.1). nextUpdate is required. Throws CRL_MALFORMED. */
export function parseCrl(der: Uint8Array): Crl {
  const code = 'CRL_MALFORMED';
  const top = new DerReader(der, code);
  const list = top.sequence('CertificateList');
  top.end('CertificateList');
  const tbsEl = list.expect(TAG.SEQUENCE, 'tbsCertList');
  ecdsaSha256Algorithm(list, 'signatureAlgorithm');
  const signature = derSignatureToRaw(bitStringBytes(list.expect(TAG.BIT_STRING, 'signatureValue'), code), code);
  list.end('CertificateList');

  const tbs = list.enter(tbsEl);
  const versionEl = tbs.optional(TAG.INTEGER);
  if (versionEl !== undefined && smallInteger(versionEl, code, 1) !== 1) tbs.fail('bad CRL version');
  ecdsaSha256Algorithm(tbs, 'tbs signature');
  const issuer = tbs.expect(TAG.SEQUENCE, 'issuer').encoded;
  const thisUpdate = readTime(tbs, 'thisUpdate');
  const next = tbs.peekTag();
  if (next !== TAG.UTC_TIME && next !== TAG.GENERALIZED_TIME) tbs.fail('CRL without nextUpdate');
  const nextUpdate = readTime(tbs, 'nextUpdate');
  const revoked = new Set<string>();
  const revokedEl = tbs.optional(TAG.SEQUENCE);
  if (revokedEl !== undefined) {
    const entries = tbs.enter(revokedEl);
    while (!entries.done) {
      const entry = entries.sequence('revoked entry');
      const serial = integerBytes(entry.expect(TAG.INTEGER, 'userCertificate'), code);
      readTime(entry, 'revocationDate');
      const entryExt = entry.optional(TAG.SEQUENCE);
      if (entryExt !== undefined) {
        const exts = entry.enter(entryExt);
        while (!exts.done) {
          const ext = exts.sequence('entry extension');
          ext.expect(TAG.OID, 'extnID');
          const critEl = ext.optional(TAG.BOOLEAN);
          // A critical entry extension (e.g. certificateIssuer of an indirect CRL) changes what the
          // entry means; we do not interpret any, so refuse the CRL rather than misread it.
          if (critEl !== undefined && booleanValue(critEl, code)) ext.fail('critical CRL entry extension');
          ext.expect(TAG.OCTET_STRING, 'extnValue');
          ext.end('entry extension');
        }
      }
      entry.end('revoked entry');
      if (revoked.size >= MAX_CRL_ENTRIES) entries.fail('too many CRL entries');
      revoked.add(toHex(serial));
    }
  }
  const extEl = tbs.optional(contextTag(0));
  tbs.end('tbsCertList');
  if (extEl !== undefined) {
    for (const [oid, ext] of parseExtensions(extEl, tbs)) {
      // Critical CRL extensions we do not implement (issuingDistributionPoint, deltaCRLIndicator)
      // would narrow or redefine the CRL's scope (RFC 5280 §5.2); refuse them.
      if (ext.critical) throw new VerifierError(code, `unsupported critical CRL extension ${oid}`);
    }
  }
  return { der, tbs: tbsEl.encoded, issuer, thisUpdate, nextUpdate, revoked, signature };
}

/** The first commonName in an encoded Name, or undefined. */
export function commonName(name: Uint8Array): string | undefined {
  const code = 'CERT_MALFORMED';
  const rdns = new DerReader(derRoot(name, TAG.SEQUENCE, code, 'Name').content, code, 1);
  while (!rdns.done) {
    const set = rdns.enter(rdns.expect(TAG.SET, 'RDN'));
    while (!set.done) {
      const atv = set.sequence('AttributeTypeAndValue');
      const type = oidText(atv.expect(TAG.OID, 'attribute type'), code);
      const value = atv.any();
      atv.end('AttributeTypeAndValue');
      if (type === OID.commonName && (value.tag === TAG.UTF8_STRING || value.tag === TAG.PRINTABLE_STRING)) {
        return new TextDecoder().decode(value.content);
      }
    }
  }
  return undefined;
}

export function sameName(a: Uint8Array, b: Uint8Array): boolean {
  return bytesEqual(a, b);
}
