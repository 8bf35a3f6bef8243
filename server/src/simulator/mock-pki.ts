// A deterministic MOCK of Intel's SGX/TDX provisioning PKI (reference §1.6 "mock PKI", §8), for
// dev quotes only: root CA → PCK Platform CA → PCK leaf with the Intel SGX extension (§4.6), plus
// TCB-signing and QE-identity-signing leaves and two empty CRLs, all P-256 / ECDSA-SHA256 DER
// built with @peculiar/asn1-x509. Every name says "MOCK" and "NOT Intel"; no verifier should trust it.

import { createHash } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  CertificateList,
  CRLDistributionPoints,
  CRLNumber,
  DistributionPoint,
  DistributionPointName,
  Extension,
  Extensions,
  GeneralName,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  TBSCertList,
  Time,
  Validity,
  Version,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_cRLDistributionPoints,
  id_ce_cRLNumber,
  id_ce_keyUsage,
  id_ce_subjectKeyIdentifier,
} from '@peculiar/asn1-x509';
import { p256 } from '@noble/curves/nist.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { utf8 } from '../core/bytes.ts';
import { derBoolean, derEnumerated, derInteger, derOctetString, derOid, derSequence } from './der.ts';

const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const OID_P256 = '1.2.840.10045.3.1.7';
const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2';
/** Intel SGX extension and its members (reference §4.6, dcap-qvl `src/oids.rs`). */
export const OID_SGX_EXTENSION = '1.2.840.113741.1.13.1';

export interface P256KeyPair {
  readonly secretKey: Uint8Array;
  /** SEC1 uncompressed, 65 bytes. */
  readonly publicKey: Uint8Array;
}

/** A P-256 key pair from (seed, label); deterministic, domain-separated per label. */
export function p256FromSeed(seed: Uint8Array, label: string): P256KeyPair {
  for (let counter = 0; ; counter++) {
    const sk = hkdf(sha256, seed, utf8('openkey-dev-simulator mock-pki'), utf8(`${label}#${counter}`), 32);
    if (p256.utils.isValidSecretKey(sk)) return { secretKey: sk, publicKey: p256.getPublicKey(sk, false) };
  }
}

/** ECDSA-P256-SHA256 over `message`, raw r‖s (64 bytes), the form quotes and collateral use (§4.3). */
export function p256SignRaw(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  return p256.sign(sha256(message), secretKey).toCompactRawBytes();
}

function p256SignDer(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  return p256.sign(sha256(message), secretKey).toDERRawBytes();
}

/** Values carried by the PCK leaf's Intel SGX extension (§4.6). */
export interface SgxPckExtension {
  readonly ppid: Uint8Array; // 16
  /** CPUSVN, 16 bytes; also the 16 SGX TCB component SVNs (.2.1-.2.16). */
  readonly cpuSvn: Uint8Array;
  readonly pceSvn: number;
  readonly pceId: Uint8Array; // 2
  readonly fmspc: Uint8Array; // 6
  /** 0 Standard, 1 Scalable, 2 Scalable with integrity. */
  readonly sgxType: number;
  readonly platformInstanceId: Uint8Array; // 16
}

/** The SGX extension value, laid out like Intel's PCK certificates (seen in vectors/tdx quotes). */
export function sgxExtensionValue(x: SgxPckExtension): Uint8Array {
  const item = (oid: string, value: Uint8Array): Uint8Array => derSequence(derOid(oid), value);
  const tcb: Uint8Array[] = [];
  for (let i = 0; i < 16; i++) tcb.push(item(`${OID_SGX_EXTENSION}.2.${i + 1}`, derInteger(x.cpuSvn[i] ?? 0)));
  tcb.push(item(`${OID_SGX_EXTENSION}.2.17`, derInteger(x.pceSvn)));
  tcb.push(item(`${OID_SGX_EXTENSION}.2.18`, derOctetString(x.cpuSvn)));
  return derSequence(
    item(`${OID_SGX_EXTENSION}.1`, derOctetString(x.ppid)),
    item(`${OID_SGX_EXTENSION}.2`, derSequence(...tcb)),
    item(`${OID_SGX_EXTENSION}.3`, derOctetString(x.pceId)),
    item(`${OID_SGX_EXTENSION}.4`, derOctetString(x.fmspc)),
    item(`${OID_SGX_EXTENSION}.5`, derEnumerated(x.sgxType)),
    item(`${OID_SGX_EXTENSION}.6`, derOctetString(x.platformInstanceId)),
    item(
      `${OID_SGX_EXTENSION}.7`,
      // Configuration: dynamicPlatform, cachedKeys, SMTEnabled, as on the real PCKs in the vectors.
      derSequence(
        item(`${OID_SGX_EXTENSION}.7.1`, derBoolean(true)),
        item(`${OID_SGX_EXTENSION}.7.2`, derBoolean(true)),
        item(`${OID_SGX_EXTENSION}.7.3`, derBoolean(true)),
      ),
    ),
  );
}

function name(cn: string): Name {
  const rdn = (type: string, value: AttributeValue): RelativeDistinguishedName =>
    new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value })]);
  return new Name([
    rdn('2.5.4.3', new AttributeValue({ utf8String: cn })),
    rdn('2.5.4.10', new AttributeValue({ utf8String: 'OpenKey dev simulator (NOT Intel)' })),
    rdn('2.5.4.6', new AttributeValue({ printableString: 'ZZ' })),
  ]);
}

function ab(b: Uint8Array): ArrayBuffer {
  return Uint8Array.from(b).buffer;
}

const ecdsaSha256 = (): AlgorithmIdentifier => new AlgorithmIdentifier({ algorithm: OID_ECDSA_SHA256 });

function spki(publicKey: Uint8Array): SubjectPublicKeyInfo {
  return new SubjectPublicKeyInfo({
    algorithm: new AlgorithmIdentifier({ algorithm: OID_EC_PUBLIC_KEY, parameters: ab(derOid(OID_P256)) }),
    subjectPublicKey: ab(publicKey),
  });
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. An identifier, not a security check. */
function keyId(publicKey: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha1').update(publicKey).digest());
}

function ext(extnID: string, critical: boolean, value: unknown): Extension {
  return new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

/** Positive 20-byte serial from a label (high bit clear, first byte non-zero). */
function serialOf(seed: Uint8Array, label: string): ArrayBuffer {
  const s = hkdf(sha256, seed, utf8('openkey-dev-simulator mock-pki serial'), utf8(label), 20);
  s[0] = ((s[0] as number) & 0x7f) | 0x01;
  return ab(s);
}

interface Issuer {
  readonly name: Name;
  readonly key: P256KeyPair;
}

interface CertSpec {
  readonly serial: ArrayBuffer;
  readonly subject: Name;
  readonly subjectKey: Uint8Array;
  readonly issuer: Issuer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** undefined = end entity. */
  readonly pathLen: number | undefined;
  readonly crlUrl: string;
  readonly extra?: readonly Extension[];
}

function issueCertificate(c: CertSpec): Uint8Array {
  const ca = c.pathLen !== undefined;
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: c.serial,
    signature: ecdsaSha256(),
    issuer: c.issuer.name,
    validity: new Validity({ notBefore: c.notBefore, notAfter: c.notAfter }),
    subject: c.subject,
    subjectPublicKeyInfo: spki(c.subjectKey),
    extensions: new Extensions([
      ext(id_ce_authorityKeyIdentifier, false, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(keyId(c.issuer.key.publicKey)) })),
      ext(
        id_ce_cRLDistributionPoints,
        false,
        new CRLDistributionPoints([
          new DistributionPoint({
            distributionPoint: new DistributionPointName({ fullName: [new GeneralName({ uniformResourceIdentifier: c.crlUrl })] }),
          }),
        ]),
      ),
      ext(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(keyId(c.subjectKey))),
      ext(
        id_ce_keyUsage,
        true,
        new KeyUsage(ca ? KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign : KeyUsageFlags.digitalSignature | KeyUsageFlags.nonRepudiation),
      ),
      ext(id_ce_basicConstraints, true, ca ? new BasicConstraints({ cA: true, pathLenConstraint: c.pathLen }) : new BasicConstraints({ cA: false })),
      ...(c.extra ?? []),
    ]),
  });
  const tbsDer = new Uint8Array(AsnConvert.serialize(tbs));
  const cert = new Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: ecdsaSha256(),
    signatureValue: ab(p256SignDer(c.issuer.key.secretKey, tbsDer)),
  });
  return new Uint8Array(AsnConvert.serialize(cert));
}

function issueEmptyCrl(issuer: Issuer, thisUpdate: Date, nextUpdate: Date): Uint8Array {
  const tbs = new TBSCertList({
    version: Version.v2,
    signature: ecdsaSha256(),
    issuer: issuer.name,
    thisUpdate: new Time(thisUpdate),
    nextUpdate: new Time(nextUpdate),
    crlExtensions: [
      ext(id_ce_cRLNumber, false, new CRLNumber(1)),
      ext(id_ce_authorityKeyIdentifier, false, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(keyId(issuer.key.publicKey)) })),
    ],
  });
  const tbsDer = new Uint8Array(AsnConvert.serialize(tbs));
  const crl = new CertificateList({
    tbsCertList: tbs,
    signatureAlgorithm: ecdsaSha256(),
    signature: ab(p256SignDer(issuer.key.secretKey, tbsDer)),
  });
  return new Uint8Array(AsnConvert.serialize(crl));
}

export interface MockPki {
  readonly rootCaDer: Uint8Array;
  readonly pckCaDer: Uint8Array;
  readonly pckLeafDer: Uint8Array;
  readonly tcbSigningDer: Uint8Array;
  readonly qeIdentitySigningDer: Uint8Array;
  /** Empty CRL of the root CA (covers PCK CA and the two signing leaves). */
  readonly rootCaCrlDer: Uint8Array;
  /** Empty CRL of the PCK Platform CA (covers the PCK leaf). */
  readonly pckCrlDer: Uint8Array;
  /** Signs the QE report. */
  readonly pckKey: P256KeyPair;
  readonly tcbSigningKey: P256KeyPair;
  readonly qeIdentitySigningKey: P256KeyPair;
}

/** Fixed validity so the mock PKI is byte-identical for a seed on every run (ECDSA is RFC 6979). */
export const MOCK_PKI_NOT_BEFORE = new Date('2020-01-01T00:00:00Z');
export const MOCK_PKI_NOT_AFTER = new Date('2049-12-31T23:59:59Z');

/** `.invalid` (RFC 6761): the CRL distribution points name no host anything could fetch. */
const CRL_BASE = 'https://openkey-dev-simulator.invalid/mock-intel';

export const MOCK_ROOT_CA_CN = 'MOCK Intel SGX Root CA (OpenKey dev simulator)';
export const MOCK_PCK_CA_CN = 'MOCK Intel SGX PCK Platform CA (OpenKey dev simulator)';

export function createMockPki(seed: Uint8Array, sgx: SgxPckExtension): MockPki {
  const root: Issuer = { name: name(MOCK_ROOT_CA_CN), key: p256FromSeed(seed, 'root-ca') };
  const pckCa: Issuer = { name: name(MOCK_PCK_CA_CN), key: p256FromSeed(seed, 'pck-platform-ca') };
  const pckKey = p256FromSeed(seed, 'pck-leaf');
  const tcbSigningKey = p256FromSeed(seed, 'tcb-signing');
  const qeIdentitySigningKey = p256FromSeed(seed, 'qe-identity-signing');
  const common = { notBefore: MOCK_PKI_NOT_BEFORE, notAfter: MOCK_PKI_NOT_AFTER };
  const rootCrlUrl = `${CRL_BASE}/root-ca.crl`;
  const rootCaDer = issueCertificate({
    ...common,
    serial: serialOf(seed, 'root-ca'),
    subject: root.name,
    subjectKey: root.key.publicKey,
    issuer: root,
    pathLen: 1,
    crlUrl: rootCrlUrl,
  });
  const pckCaDer = issueCertificate({
    ...common,
    serial: serialOf(seed, 'pck-platform-ca'),
    subject: pckCa.name,
    subjectKey: pckCa.key.publicKey,
    issuer: root,
    pathLen: 0,
    crlUrl: rootCrlUrl,
  });
  const pckLeafDer = issueCertificate({
    ...common,
    serial: serialOf(seed, 'pck-leaf'),
    subject: name('MOCK Intel SGX PCK Certificate (OpenKey dev simulator)'),
    subjectKey: pckKey.publicKey,
    issuer: pckCa,
    pathLen: undefined,
    crlUrl: `${CRL_BASE}/pck-platform.crl`,
    extra: [new Extension({ extnID: OID_SGX_EXTENSION, critical: false, extnValue: new OctetString(sgxExtensionValue(sgx)) })],
  });
  const tcbSigningDer = issueCertificate({
    ...common,
    serial: serialOf(seed, 'tcb-signing'),
    subject: name('MOCK Intel SGX TCB Signing (OpenKey dev simulator)'),
    subjectKey: tcbSigningKey.publicKey,
    issuer: root,
    pathLen: undefined,
    crlUrl: rootCrlUrl,
  });
  const qeIdentitySigningDer = issueCertificate({
    ...common,
    serial: serialOf(seed, 'qe-identity-signing'),
    subject: name('MOCK Intel SGX QE Identity Signing (OpenKey dev simulator)'),
    subjectKey: qeIdentitySigningKey.publicKey,
    issuer: root,
    pathLen: undefined,
    crlUrl: rootCrlUrl,
  });
  return {
    rootCaDer,
    pckCaDer,
    pckLeafDer,
    tcbSigningDer,
    qeIdentitySigningDer,
    rootCaCrlDer: issueEmptyCrl(root, MOCK_PKI_NOT_BEFORE, MOCK_PKI_NOT_AFTER),
    pckCrlDer: issueEmptyCrl(pckCa, MOCK_PKI_NOT_BEFORE, MOCK_PKI_NOT_AFTER),
    pckKey,
    tcbSigningKey,
    qeIdentitySigningKey,
  };
}

/** PEM chain text (leaf first), 64-column base64, as PCS serves issuer chains. */
export function pemChain(...ders: Uint8Array[]): string {
  return ders
    .map((der) => {
      const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
      return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
    })
    .join('');
}
