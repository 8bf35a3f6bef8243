// Test-only mock Intel PKI and TDX quote generator: root CA → PCK CA → PCK leaf (with the SGX
// extension), a TCB/QE-identity signing cert, both CRLs, signed TCB info and QE identity, and a
// v4 (TD 1.0) or v5 (TD 1.5) quote signed through a QE report. Every knob a negative test needs is
// an option; defaults produce a quote that verifies as UpToDate against the mock root.

import { p256 } from '@noble/curves/nist.js';
import { sha256 } from '@noble/hashes/sha2.js';

import { toHex, utf8 } from '../../src/bytes.ts';
import type { QuoteCollateral } from '../../src/dcap/collateral.ts';
import {
  bitString,
  bool,
  cat,
  enumerated,
  explicit,
  int,
  octets,
  oid,
  seq,
  set,
  time,
  utf8String,
} from './der-writer.ts';

const ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const SGX = '1.2.840.113741.1.13.1';
export const MOCK_NOW = 1_760_000_000; // 2025-10-09
const DAY = 86_400;

export function key(label: string): { sk: Uint8Array; pub: Uint8Array } {
  const sk = sha256(utf8(`mock-pki:${label}`));
  return { sk, pub: p256.getPublicKey(sk, false) };
}

function sign(sk: Uint8Array, msg: Uint8Array, format: 'der' | 'compact'): Uint8Array {
  return p256.sign(sha256(msg), sk, { prehash: false }).toBytes(format);
}

const name = (cn: string): Uint8Array =>
  seq(set(seq(oid('2.5.4.3'), utf8String(cn))), set(seq(oid('2.5.4.10'), utf8String('Mock Intel Corporation'))));

function ext(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));
}

export interface CertSpec {
  readonly serial: number;
  readonly issuerCn: string;
  readonly subjectCn: string;
  readonly pub: Uint8Array;
  readonly signerSk: Uint8Array;
  readonly notBefore: number;
  readonly notAfter: number;
  /** 'ca' (cA true, optional pathLen), 'leaf' (cA false), or 'none' (no basicConstraints). */
  readonly kind: 'ca' | 'leaf' | 'none';
  readonly pathLen?: number;
  readonly extra?: readonly Uint8Array[];
  readonly unknownCritical?: boolean;
}

export function makeCert(s: CertSpec): Uint8Array {
  const exts: Uint8Array[] = [];
  if (s.kind === 'ca') {
    exts.push(ext('2.5.29.19', true, seq(bool(true), ...(s.pathLen === undefined ? [] : [int(s.pathLen)]))));
    exts.push(ext('2.5.29.15', true, bitString(new Uint8Array([0x06]), 1))); // keyCertSign, cRLSign
  } else if (s.kind === 'leaf') {
    exts.push(ext('2.5.29.19', true, seq()));
    exts.push(ext('2.5.29.15', true, bitString(new Uint8Array([0xc0]), 6))); // digitalSignature, nonRepudiation
  }
  if (s.unknownCritical === true) exts.push(ext('1.2.3.4.5', true, seq()));
  exts.push(...(s.extra ?? []));
  const tbs = seq(
    explicit(0, int(2)),
    int(s.serial),
    seq(oid(ECDSA_SHA256)),
    name(s.issuerCn),
    seq(time(s.notBefore), time(s.notAfter)),
    name(s.subjectCn),
    seq(seq(oid('1.2.840.10045.2.1'), oid('1.2.840.10045.3.1.7')), bitString(s.pub)),
    explicit(3, seq(...exts)),
  );
  return seq(tbs, seq(oid(ECDSA_SHA256)), bitString(sign(s.signerSk, tbs, 'der')));
}

export function makeCrl(
  issuerCn: string,
  signerSk: Uint8Array,
  thisUpdate: number,
  nextUpdate: number,
  revoked: readonly number[],
  criticalExtension = false,
): Uint8Array {
  const entries = revoked.map((serial) => seq(int(serial), time(thisUpdate)));
  const tbs = seq(
    int(1),
    seq(oid(ECDSA_SHA256)),
    name(issuerCn),
    time(thisUpdate),
    time(nextUpdate),
    ...(entries.length > 0 ? [seq(...entries)] : []),
    explicit(0, seq(ext('2.5.29.20', false, int(1)), ...(criticalExtension ? [ext('2.5.29.28', true, seq())] : []))),
  );
  return seq(tbs, seq(oid(ECDSA_SHA256)), bitString(sign(signerSk, tbs, 'der')));
}

function sgxExtension(cpuSvn: readonly number[], pceSvn: number, fmspc: Uint8Array): Uint8Array {
  const comps = cpuSvn.map((svn, i) => seq(oid(`${SGX}.2.${i + 1}`), int(svn)));
  return ext(
    SGX,
    false,
    seq(
      seq(oid(`${SGX}.1`), octets(sha256(utf8('ppid')).subarray(0, 16))),
      seq(oid(`${SGX}.2`), seq(...comps, seq(oid(`${SGX}.2.17`), int(pceSvn)), seq(oid(`${SGX}.2.18`), octets(new Uint8Array(cpuSvn))))),
      seq(oid(`${SGX}.3`), octets(new Uint8Array([0, 0]))),
      seq(oid(`${SGX}.4`), octets(fmspc)),
      seq(oid(`${SGX}.5`), enumerated(0)),
    ),
  );
}

function pem(der: Uint8Array): string {
  let b64 = '';
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < der.length; i += 3) {
    const n = (der[i]! << 16) | ((der[i + 1] ?? 0) << 8) | (der[i + 2] ?? 0);
    b64 += alphabet[(n >> 18) & 63]! + alphabet[(n >> 12) & 63]!;
    b64 += i + 1 < der.length ? alphabet[(n >> 6) & 63]! : '=';
    b64 += i + 2 < der.length ? alphabet[n & 63]! : '=';
  }
  return `-----BEGIN CERTIFICATE-----\n${b64.replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
}

const iso = (t: number): string => new Date(t * 1000).toISOString().replace('.000Z', 'Z');
const hex48 = (b = 0): string => toHex(new Uint8Array(48).fill(b));

export interface MockTcbLevel {
  readonly sgx: readonly number[];
  readonly pcesvn: number;
  readonly tdx: readonly number[];
  readonly status: string;
  readonly advisoryIDs?: readonly string[];
}

export interface MockOptions {
  readonly now?: number;
  readonly version?: 4 | 5;
  readonly reportData?: Uint8Array;
  readonly tdAttributes?: Uint8Array;
  readonly teeTcbSvn?: readonly number[];
  readonly mrSignerSeam?: Uint8Array;
  readonly mrServiceTd?: Uint8Array;
  readonly mrTd?: Uint8Array;
  readonly rtmrs?: readonly [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  readonly mrConfigId?: Uint8Array;
  readonly pckCpuSvn?: readonly number[];
  readonly pckPceSvn?: number;
  readonly fmspc?: Uint8Array;
  readonly tcbLevels?: readonly MockTcbLevel[];
  readonly moduleLevels?: readonly { isvsvn: number; status: string; advisoryIDs?: readonly string[] }[];
  readonly qeIsvSvn?: number;
  readonly qeLevels?: readonly { isvsvn: number; status: string; advisoryIDs?: readonly string[] }[];
  readonly qeMrSigner?: Uint8Array;
  readonly qeDebug?: boolean;
  readonly pckLeafWindow?: readonly [number, number];
  readonly pckCaKind?: 'ca' | 'leaf' | 'none';
  readonly pckCaPathLen?: number;
  readonly rootPathLen?: number;
  readonly leafIsCa?: boolean;
  readonly leafUnknownCritical?: boolean;
  readonly revokedPckSerials?: readonly number[];
  readonly revokedRootSerials?: readonly number[];
  readonly pckCrlWindow?: readonly [number, number];
  readonly rootCrlSignerSk?: Uint8Array;
  readonly omitPckCrl?: boolean;
  readonly tcbInfoWindow?: readonly [number, number];
  readonly qeIdentityWindow?: readonly [number, number];
  readonly tcbInfoId?: string;
  readonly qeVendorId?: Uint8Array;
}

export interface MockAttestation {
  readonly quote: Uint8Array;
  readonly collateral: QuoteCollateral;
  readonly rootDer: Uint8Array;
  readonly now: number;
  /** Serial numbers used, for revocation tests. */
  readonly serials: { readonly root: number; readonly pckCa: number; readonly pckLeaf: number; readonly signing: number };
}

const le16 = (n: number): Uint8Array => new Uint8Array([n & 0xff, n >> 8]);
const le32 = (n: number): Uint8Array => new Uint8Array([n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24]);
export const MOCK_SERIALS = { root: 1, pckCa: 2, pckLeaf: 3, signing: 4 } as const;
export const INTEL_VENDOR = new Uint8Array([0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07]);

export function buildMock(o: MockOptions = {}): MockAttestation {
  const now = o.now ?? MOCK_NOW;
  const root = key('root');
  const pckCa = key('pck-ca');
  const leaf = key('pck-leaf');
  const signing = key('tcb-signing');
  const att = key('attestation');
  const longAgo = now - 365 * DAY;
  const farAhead = now + 20 * 365 * DAY;
  const fmspc = o.fmspc ?? new Uint8Array([0x00, 0x90, 0x6e, 0xd5, 0x00, 0x00]);
  const cpuSvn = o.pckCpuSvn ?? [2, 2, 2, 2, 3, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
  const pceSvn = o.pckPceSvn ?? 11;

  const rootDer = makeCert({
    serial: 1,
    issuerCn: 'Mock SGX Root CA',
    subjectCn: 'Mock SGX Root CA',
    pub: root.pub,
    signerSk: root.sk,
    notBefore: longAgo,
    notAfter: farAhead,
    kind: 'ca',
    ...(o.rootPathLen === undefined ? {} : { pathLen: o.rootPathLen }),
  });
  const pckCaDer = makeCert({
    serial: 2,
    issuerCn: 'Mock SGX Root CA',
    subjectCn: 'Mock SGX PCK Platform CA',
    pub: pckCa.pub,
    signerSk: root.sk,
    notBefore: longAgo,
    notAfter: farAhead,
    kind: o.pckCaKind ?? 'ca',
    ...(o.pckCaPathLen === undefined ? { pathLen: 0 } : { pathLen: o.pckCaPathLen }),
  });
  const [leafFrom, leafTo] = o.pckLeafWindow ?? [longAgo, farAhead];
  const leafDer = makeCert({
    serial: 3,
    issuerCn: 'Mock SGX PCK Platform CA',
    subjectCn: 'Mock SGX PCK Certificate',
    pub: leaf.pub,
    signerSk: pckCa.sk,
    notBefore: leafFrom,
    notAfter: leafTo,
    kind: o.leafIsCa === true ? 'ca' : 'leaf',
    unknownCritical: o.leafUnknownCritical === true,
    extra: [sgxExtension(cpuSvn, pceSvn, fmspc)],
  });
  const signingDer = makeCert({ serial: 4, issuerCn: 'Mock SGX Root CA', subjectCn: 'Mock SGX TCB Signing', pub: signing.pub, signerSk: root.sk, notBefore: longAgo, notAfter: farAhead, kind: 'leaf' });

  const [crlFrom, crlTo] = o.pckCrlWindow ?? [now - DAY, now + 30 * DAY];
  const rootCrl = makeCrl('Mock SGX Root CA', o.rootCrlSignerSk ?? root.sk, now - DAY, now + 365 * DAY, o.revokedRootSerials ?? []);
  const pckCrl = o.omitPckCrl === true
    ? makeCrl('Some Other CA', pckCa.sk, crlFrom, crlTo, [])
    : makeCrl('Mock SGX PCK Platform CA', pckCa.sk, crlFrom, crlTo, o.revokedPckSerials ?? []);

  // ---- TCB info and QE identity ----
  const svnList = (l: readonly number[]): { svn: number }[] => l.map((svn) => ({ svn }));
  const levels = o.tcbLevels ?? [
    { sgx: cpuSvn, pcesvn: pceSvn, tdx: [0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], status: 'UpToDate' },
    { sgx: [1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0], pcesvn: 5, tdx: [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], status: 'OutOfDate', advisoryIDs: ['INTEL-SA-00001'] },
  ];
  const [tcbFrom, tcbTo] = o.tcbInfoWindow ?? [now - DAY, now + 30 * DAY];
  const tcbInfo = JSON.stringify({
    id: o.tcbInfoId ?? 'TDX',
    version: 3,
    issueDate: iso(tcbFrom),
    nextUpdate: iso(tcbTo),
    fmspc: toHex(fmspc).toUpperCase(),
    pceId: '0000',
    tcbType: 0,
    tcbEvaluationDataNumber: 17,
    tdxModule: { mrsigner: hex48(), attributes: '0000000000000000', attributesMask: 'FFFFFFFFFFFFFFFF' },
    tdxModuleIdentities: [
      {
        id: 'TDX_01',
        mrsigner: hex48(),
        attributes: '0000000000000000',
        attributesMask: 'FFFFFFFFFFFFFFFF',
        tcbLevels: (o.moduleLevels ?? [{ isvsvn: 3, status: 'UpToDate' }]).map((l) => ({
          tcb: { isvsvn: l.isvsvn },
          tcbDate: '2024-03-13T00:00:00Z',
          tcbStatus: l.status,
          ...(l.advisoryIDs === undefined ? {} : { advisoryIDs: l.advisoryIDs }),
        })),
      },
    ],
    tcbLevels: levels.map((l) => ({
      tcb: { sgxtcbcomponents: svnList(l.sgx), pcesvn: l.pcesvn, tdxtcbcomponents: svnList(l.tdx) },
      tcbDate: '2024-03-13T00:00:00Z',
      tcbStatus: l.status,
      ...(l.advisoryIDs === undefined ? {} : { advisoryIDs: l.advisoryIDs }),
    })),
  });
  const qeMrSigner = o.qeMrSigner ?? new Uint8Array(32).fill(0x44);
  const [qeFrom, qeTo] = o.qeIdentityWindow ?? [now - DAY, now + 30 * DAY];
  const qeIdentity = JSON.stringify({
    id: 'TD_QE',
    version: 2,
    issueDate: iso(qeFrom),
    nextUpdate: iso(qeTo),
    tcbEvaluationDataNumber: 17,
    miscselect: '00000000',
    miscselectMask: 'FFFFFFFF',
    attributes: '11000000000000000000000000000000',
    attributesMask: 'FBFFFFFFFFFFFFFF0000000000000000',
    mrsigner: toHex(new Uint8Array(32).fill(0x44)).toUpperCase(),
    isvprodid: 2,
    tcbLevels: (o.qeLevels ?? [{ isvsvn: 4, status: 'UpToDate' }]).map((l) => ({
      tcb: { isvsvn: l.isvsvn },
      tcbDate: '2024-03-13T00:00:00Z',
      tcbStatus: l.status,
      ...(l.advisoryIDs === undefined ? {} : { advisoryIDs: l.advisoryIDs }),
    })),
  });

  // ---- Quote ----
  const version = o.version ?? 4;
  const header = cat(le16(version), le16(2), le32(0x81), le16(0), le16(0), o.qeVendorId ?? INTEL_VENDOR, new Uint8Array(20));
  const rtmrs = o.rtmrs ?? [new Uint8Array(48).fill(1), new Uint8Array(48).fill(2), new Uint8Array(48).fill(3), new Uint8Array(48)];
  const td10 = cat(
    new Uint8Array(o.teeTcbSvn ?? [3, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    new Uint8Array(48).fill(0x5b), // MRSEAM
    o.mrSignerSeam ?? new Uint8Array(48),
    new Uint8Array(8), // SEAMATTRIBUTES
    o.tdAttributes ?? new Uint8Array([0, 0, 0, 0x10, 0, 0, 0, 0]),
    new Uint8Array([0xe7, 0x02, 0x06, 0, 0, 0, 0, 0]), // XFAM
    o.mrTd ?? new Uint8Array(48).fill(0x91),
    o.mrConfigId ?? new Uint8Array(48),
    new Uint8Array(48), // MROWNER
    new Uint8Array(48), // MROWNERCONFIG
    ...rtmrs,
    o.reportData ?? new Uint8Array(64),
  );
  const body =
    version === 4
      ? td10
      : cat(le16(3), le32(648), td10, new Uint8Array(16), o.mrServiceTd ?? new Uint8Array(48));
  const signed = cat(header, body);
  const quoteSig = sign(att.sk, signed, 'compact');
  const attKey = att.pub.subarray(1);
  const qeAuth = new Uint8Array(32).map((_, i) => i);
  const qeReport = cat(
    new Uint8Array(16), // cpusvn
    le32(0), // miscselect
    new Uint8Array(28),
    new Uint8Array([0x11 | (o.qeDebug === true ? 0x02 : 0), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    new Uint8Array(32), // mrenclave
    new Uint8Array(32),
    qeMrSigner,
    new Uint8Array(96),
    le16(2), // isvprodid
    le16(o.qeIsvSvn ?? 4),
    new Uint8Array(60),
    cat(sha256(cat(attKey, qeAuth)), new Uint8Array(32)),
  );
  const qeSig = sign(leaf.sk, qeReport, 'compact');
  const chainPem = utf8(pem(leafDer) + pem(pckCaDer) + pem(rootDer) + '\0');
  const certData = cat(qeReport, qeSig, le16(qeAuth.length), qeAuth, le16(5), le32(chainPem.length), chainPem);
  const auth = cat(quoteSig, attKey, le16(6), le32(certData.length), certData);
  const quote = cat(signed, le32(auth.length), auth);

  const signingChain = pem(signingDer) + pem(rootDer);
  return {
    quote,
    rootDer,
    now,
    serials: MOCK_SERIALS,
    collateral: {
      pckCrlIssuerChain: pem(pckCaDer) + pem(rootDer),
      rootCaCrl: rootCrl,
      pckCrl,
      tcbInfoIssuerChain: signingChain,
      tcbInfo,
      tcbInfoSignature: sign(signing.sk, utf8(tcbInfo), 'compact'),
      qeIdentityIssuerChain: signingChain,
      qeIdentity,
      qeIdentitySignature: sign(signing.sk, utf8(qeIdentity), 'compact'),
    },
  };
}
