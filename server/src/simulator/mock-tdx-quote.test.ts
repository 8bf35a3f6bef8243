// Simulator quotes under the mock Intel PKI (issue 3 part 3; reference §4 layout, §5 DCAP steps,
// §3 RTMR3 replay). Oracles: @phala/dcap-qvl (independent DCAP verifier), node:crypto (X.509,
// ECDSA, hashes), a DER reader written here, and the real DstackClient over both transports.

import { createHash, createPublicKey, createVerify, verify as nodeVerify, X509Certificate, type KeyObject } from 'node:crypto';
import * as http from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QuoteVerifier, utils as qvlUtils, type Collateral } from '@phala/dcap-qvl';
import { DstackClient } from '@phala/dstack-sdk';
import { buildSimulatorState, startSimulator, type RunningSimulator } from './simulator.ts';
import { DstackTee } from '../adapters/dstack-tee.ts';

const INTEL_ROOT = readFileSync('/work/shared/vectors/tdx/intel_sgx_root_ca.der');
const NOW_MS = Date.UTC(2026, 10, 21, 12, 0, 0);
const NOW_S = Math.floor(NOW_MS / 1000);
const DAY_S = 86_400;

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

function verifyMock(rootDer: Uint8Array, quote: Uint8Array, collateral: Collateral, nowS = NOW_S): ReturnType<QuoteVerifier['verify']> {
  return QuoteVerifier.newWithRootCa(Buffer.from(rootDer)).verify(quote, collateral, nowS);
}

function td10(v: ReturnType<QuoteVerifier['verify']>): Record<string, Uint8Array> {
  expect(v.report.type).toBe('td10');
  const data: unknown = v.report.data;
  if (typeof data !== 'object' || data === null) throw new Error('no report data');
  const out: Record<string, Uint8Array> = {};
  for (const [k, val] of Object.entries(data)) if (val instanceof Uint8Array) out[k] = val;
  return out;
}

/** A tiny DER TLV reader (definite lengths only), independent of the simulator's writer. */
function tlv(b: Uint8Array, off: number): { tag: number; start: number; end: number; contentStart: number } {
  const tag = b[off] ?? -1;
  let len = b[off + 1] ?? 0;
  let p = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (b[p + i] ?? 0);
    p += n;
  }
  return { tag, start: off, end: p + len, contentStart: p };
}

function children(b: Uint8Array, parent: { contentStart: number; end: number }): ReturnType<typeof tlv>[] {
  const out: ReturnType<typeof tlv>[] = [];
  for (let o = parent.contentStart; o < parent.end; ) {
    const t = tlv(b, o);
    out.push(t);
    o = t.end;
  }
  return out;
}

/** Finds `oid` (DER bytes) among SEQUENCE { OID, value } items; returns the value's TLV. */
function findItem(b: Uint8Array, seq: { contentStart: number; end: number }, oidDer: Uint8Array): ReturnType<typeof tlv> {
  for (const item of children(b, seq)) {
    const [o, v] = children(b, item);
    if (o && v && Buffer.from(b.subarray(o.start, o.end)).equals(Buffer.from(oidDer))) return v;
  }
  throw new Error('item not found');
}

function oidDer(dotted: string): Uint8Array {
  // Test-local OID encoder for the Intel arcs (all < 2^14 except 113741).
  const arcs = dotted.split('.').map(Number);
  const body: number[] = [(arcs[0] ?? 0) * 40 + (arcs[1] ?? 0)];
  for (const a of arcs.slice(2)) {
    const g = [a & 0x7f];
    for (let v = a >> 7; v > 0; v >>= 7) g.unshift(0x80 | (v & 0x7f));
    body.push(...g);
  }
  return Uint8Array.from([0x06, body.length, ...body]);
}

function pemCerts(pem: string): X509Certificate[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g)].map((m) => new X509Certificate(m[0]));
}

function attKeyObject(xy: Uint8Array): KeyObject {
  return createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: Buffer.from(xy.subarray(0, 32)).toString('base64url'), y: Buffer.from(xy.subarray(32, 64)).toString('base64url') },
    format: 'jwk',
  });
}

describe('mock quote layout (reference §4.1-§4.3), checked by hand', () => {
  const s = buildSimulatorState({ seed: utf8('layout-seed') });
  const rd = Uint8Array.from({ length: 40 }, (_, i) => i + 1);
  const q = s.attestation.quote(s.platform, rd);
  const dv = new DataView(q.buffer, q.byteOffset, q.byteLength);

  it('header: v4, ECDSA-P256, TDX, Intel QE vendor id', () => {
    expect(dv.getUint16(0, true)).toBe(4);
    expect(dv.getUint16(2, true)).toBe(2);
    expect(dv.getUint32(4, true)).toBe(0x81);
    expect(hex(q.subarray(12, 28))).toBe('939a7233f79c4ca9940a0db3957f0607');
  });

  it('TD report: measurements at their offsets, report_data right-padded at 568', () => {
    expect(hex(q.subarray(184, 232))).toBe(hex(s.platform.mrtd));
    expect(hex(q.subarray(232, 280))).toBe(hex(s.platform.mrConfigId));
    expect(q[232]).toBe(1); // MRCONFIGID v1 = 0x01 ‖ compose_hash (§3.1)
    expect(hex(q.subarray(233, 265))).toBe(hex(s.platform.composeHash));
    for (let i = 0; i < 4; i++) expect(hex(q.subarray(376 + 48 * i, 424 + 48 * i))).toBe(hex(s.platform.rtmrs[i] ?? new Uint8Array()));
    const padded = new Uint8Array(64);
    padded.set(rd);
    expect(hex(q.subarray(568, 632))).toBe(hex(padded));
    expect(hex(q.subarray(112, 160))).toBe('00'.repeat(48)); // MRSIGNERSEAM 0 (Intel module)
    expect(hex(q.subarray(168, 176))).toBe('0000001000000000'); // SEPT_VE_DISABLE only, no DEBUG
  });

  it('signature data: lengths consistent, type 6 wrapping type 5, QE binding and both signatures verify', () => {
    const authLen = dv.getUint32(632, true);
    expect(636 + authLen).toBe(q.length);
    const attKey = q.subarray(700, 764);
    expect(dv.getUint16(764, true)).toBe(6);
    expect(770 + dv.getUint32(766, true)).toBe(q.length);
    const qeReport = q.subarray(770, 1154);
    const qeSig = q.subarray(1154, 1218);
    const qeAuthLen = dv.getUint16(1218, true);
    const qeAuth = q.subarray(1220, 1220 + qeAuthLen);
    const certOff = 1220 + qeAuthLen;
    expect(dv.getUint16(certOff, true)).toBe(5);
    const pemLen = dv.getUint32(certOff + 2, true);
    expect(certOff + 6 + pemLen).toBe(q.length);
    const [leaf, ca, root] = pemCerts(Buffer.from(q.subarray(certOff + 6)).toString('utf8'));
    if (!leaf || !ca || !root) throw new Error('expected three certificates');
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(ca.verify(root.publicKey)).toBe(true);
    expect(root.verify(root.publicKey)).toBe(true);
    expect(root.subject).toContain('MOCK');
    expect(Buffer.from(root.raw).equals(INTEL_ROOT)).toBe(false);
    // QE report report_data[0..32] = SHA-256(attestation key ‖ QE auth data), [32..64] zero (§4.3).
    const qeRd = qeReport.subarray(320, 384);
    expect(hex(qeRd.subarray(0, 32))).toBe(createHash('sha256').update(attKey).update(qeAuth).digest('hex'));
    expect(hex(qeRd.subarray(32))).toBe('00'.repeat(32));
    expect(nodeVerify('sha256', qeReport, { key: leaf.publicKey, dsaEncoding: 'ieee-p1363' }, qeSig)).toBe(true);
    expect(nodeVerify('sha256', q.subarray(0, 632), { key: attKeyObject(attKey), dsaEncoding: 'ieee-p1363' }, q.subarray(636, 700))).toBe(true);
  });

  it('PCK leaf carries the Intel SGX extension (§4.6): PPID, TCB with PCESVN and CPUSVN, PCEID, FMSPC, SGX type', () => {
    const certOff = 1220 + dv.getUint16(1218, true);
    const [leaf] = pemCerts(Buffer.from(q.subarray(certOff + 6)).toString('utf8'));
    if (!leaf) throw new Error('no leaf');
    const der = new Uint8Array(leaf.raw);
    // dcap-qvl's own extension readers as an oracle for CPUSVN, PCESVN, FMSPC.
    const extSection: unknown = qvlUtils.getIntelExtension(Buffer.from(der));
    expect(hex(qvlUtils.getCpuSvn(extSection))).toBe('03030202040100050000000000000000');
    expect(qvlUtils.getPceSvn(extSection)).toBe(11);
    expect(hex(qvlUtils.getFmspc(extSection))).toBe('de5e00000000');
    // And by hand, including the PPID that binds device_id = sha256(PPID) (§3.1).
    if (!(extSection instanceof Uint8Array)) throw new Error('extension not bytes');
    const top = tlv(extSection, 0);
    const base = '1.2.840.113741.1.13.1';
    const ppid = findItem(extSection, top, oidDer(`${base}.1`));
    expect(ppid.tag).toBe(0x04);
    const ppidBytes = extSection.subarray(ppid.contentStart, ppid.end);
    expect(ppidBytes).toHaveLength(16);
    expect(createHash('sha256').update(ppidBytes).digest('hex')).toBe(hex(s.platform.deviceId));
    const tcb = findItem(extSection, top, oidDer(`${base}.2`));
    expect(children(extSection, tcb)).toHaveLength(18);
    const pceId = findItem(extSection, top, oidDer(`${base}.3`));
    expect(hex(extSection.subarray(pceId.contentStart, pceId.end))).toBe('0000');
    const sgxType = findItem(extSection, top, oidDer(`${base}.5`));
    expect(sgxType.tag).toBe(0x0a); // ENUMERATED
  });
});

describe('dcap-qvl verifies simulator quotes under the mock root only', () => {
  const s = buildSimulatorState({ seed: utf8('dcap-seed') });
  const rd = utf8('openkey nonce binding 0123456789');
  const q = s.attestation.quote(s.platform, rd);
  const col = s.attestation.collateral(NOW_MS);

  it('UpToDate with no advisories; report fields are the platform measurements', () => {
    const v = verifyMock(s.attestation.rootCaDer, q, col);
    expect(v.status).toBe('UpToDate');
    expect(v.advisory_ids).toEqual([]);
    const r = td10(v);
    expect(hex(r['mrTd'] ?? new Uint8Array())).toBe(hex(s.platform.mrtd));
    expect(hex(r['rtMr3'] ?? new Uint8Array())).toBe(hex(s.platform.rtmrs[3]));
    const padded = new Uint8Array(64);
    padded.set(rd);
    expect(hex(r['reportData'] ?? new Uint8Array())).toBe(hex(padded));
  });

  it('the real Intel SGX root CA rejects it', () => {
    expect(() => QuoteVerifier.newWithRootCa(INTEL_ROOT).verify(q, col, NOW_S)).toThrow(/certificate chain/i);
    expect(() => QuoteVerifier.newProd().verify(q, col, NOW_S)).toThrow(/certificate chain/i);
  });

  it('another seed’s mock root rejects it (roots are per seed, deterministic per seed)', () => {
    const other = buildSimulatorState({ seed: utf8('another-seed') });
    expect(hex(other.attestation.rootCaDer)).not.toBe(hex(s.attestation.rootCaDer));
    expect(hex(buildSimulatorState({ seed: utf8('dcap-seed') }).attestation.rootCaDer)).toBe(hex(s.attestation.rootCaDer));
    expect(() => verifyMock(other.attestation.rootCaDer, q, col)).toThrow();
  });

  it('collateral has a validity window that is enforced', () => {
    expect(() => verifyMock(s.attestation.rootCaDer, q, col, NOW_S - 2 * DAY_S)).toThrow(/future/i);
    expect(() => verifyMock(s.attestation.rootCaDer, q, col, NOW_S + 31 * DAY_S)).toThrow(/expired/i);
    expect(verifyMock(s.attestation.rootCaDer, q, col, NOW_S + 29 * DAY_S).status).toBe('UpToDate');
  });

  it('flipping a byte anywhere in a signed region is rejected', () => {
    const certOff = 1220 + (q[1218] ?? 0) + ((q[1219] ?? 0) << 8);
    // header, TD report (incl. report_data), quote signature, attestation key, QE report, QE sig, QE auth data
    const offsets = [0, 20, 47, 48, 200, 520, 570, 631, 640, 699, 710, 763, 780, 1100, 1153, 1160, 1217, 1225, certOff - 1];
    for (const off of offsets) {
      const t = Uint8Array.from(q);
      t[off] = (t[off] ?? 0) ^ 0x01;
      expect(() => verifyMock(s.attestation.rootCaDer, t, col), `offset ${off}`).toThrow();
    }
  });

  it('tampered collateral is rejected', () => {
    const tcb = { ...col, tcb_info: col.tcb_info.replace('"UpToDate"', '"UpToDatf"') };
    expect(() => verifyMock(s.attestation.rootCaDer, q, tcb)).toThrow(/tcb_info/);
    const qe = { ...col, qe_identity: col.qe_identity.replace('"isvprodid":2', '"isvprodid":3') };
    expect(() => verifyMock(s.attestation.rootCaDer, q, qe)).toThrow(/qe_identity/);
  });

  it('CRLs are empty, signed by their issuers and current (checked here; dcap-qvl 0.3.9 does not)', () => {
    const check = (crlHex: string, issuerPem: string): void => {
      const crl = new Uint8Array(Buffer.from(crlHex, 'hex'));
      const outer = tlv(crl, 0);
      const [tbs, alg, sig] = children(crl, outer);
      if (!tbs || !alg || !sig) throw new Error('CRL shape');
      const [issuer] = pemCerts(issuerPem);
      if (!issuer) throw new Error('issuer');
      // BIT STRING: first content byte is the unused-bit count (0).
      const sigDer = crl.subarray(sig.contentStart + 1, sig.end);
      expect(createVerify('sha256').update(crl.subarray(tbs.start, tbs.end)).verify(issuer.publicKey, sigDer)).toBe(true);
      const fields = children(crl, tbs);
      // version, signature, issuer, thisUpdate, nextUpdate, [0] extensions: no revokedCertificates.
      expect(fields.map((f) => f.tag)).toEqual([0x02, 0x30, 0x30, 0x17, 0x17, 0xa0]);
      const nextUpdate = Buffer.from(crl.subarray(fields[4]?.contentStart ?? 0, fields[4]?.end ?? 0)).toString();
      expect(nextUpdate).toBe('491231235959Z');
    };
    check(col.root_ca_crl, col.tcb_info_issuer_chain.slice(col.tcb_info_issuer_chain.indexOf('-----BEGIN', 10)));
    check(col.pck_crl, col.pck_crl_issuer_chain);
    expect(pemCerts(col.pck_crl_issuer_chain)[0]?.subject).toContain('PCK Platform CA');
  });
});

describe('GetQuote through the real DstackClient', () => {
  let dir: string;
  let sim: RunningSimulator;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'okdq-'));
    sim = await startSimulator({ socketPath: join(dir, 'dstack.sock'), tcp: { port: 0 }, now: () => NOW_MS });
  });

  afterAll(async () => {
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Independent RTMR replay (§3.1, §3.3): runtime digests recomputed from the payloads. */
  function replay(events: unknown[], imr: number): string {
    let mr = Buffer.alloc(48);
    for (const e of events) {
      if (typeof e !== 'object' || e === null) throw new Error('event');
      const ev: Record<string, unknown> = { ...e };
      if (ev['imr'] !== imr) continue;
      let d = Buffer.from(String(ev['digest']), 'hex');
      if (ev['event_type'] === 0x08000001) {
        const t = Buffer.alloc(4);
        t.writeUInt32LE(0x08000001);
        const re = createHash('sha384')
          .update(Buffer.concat([t, Buffer.from(`:${String(ev['event'])}:`), Buffer.from(String(ev['event_payload']), 'hex')]))
          .digest();
        expect(re.equals(d)).toBe(true);
        d = re;
      }
      mr = createHash('sha384').update(Buffer.concat([mr, d])).digest();
    }
    return mr.toString('hex');
  }

  it.each(['unix', 'tcp'] as const)('over %s: verifies, report_data round-trips, RTMR3 replays, events match Info', async (kind) => {
    const client = new DstackClient(kind === 'unix' ? sim.socketPath : sim.httpUrl);
    const rd = createHash('sha512').update(`nonce-${kind}`).digest().subarray(0, 48);
    const r = await client.getQuote(rd);
    const quote = Buffer.from(r.quote, 'hex');
    const padded = Buffer.alloc(64);
    rd.copy(padded);
    expect(r.report_data).toBe(padded.toString('hex'));
    const v = verifyMock(sim.mockRootCaDer, quote, sim.collateral());
    expect(v.status).toBe('UpToDate');
    const report = td10(v);
    expect(hex(report['reportData'] ?? new Uint8Array())).toBe(padded.toString('hex'));
    const events: unknown = JSON.parse(r.event_log);
    if (!Array.isArray(events)) throw new Error('event_log');
    for (const i of [0, 1, 2, 3] as const) expect(replay(events, i)).toBe(hex(report[`rtMr${i}`] ?? new Uint8Array()));
    const info = await client.info();
    expect(info.tcb_info.rtmr3).toBe(hex(report['rtMr3'] ?? new Uint8Array()));
    expect(info.tcb_info.mrtd).toBe(hex(report['mrTd'] ?? new Uint8Array()));
    const payload = (name: string): string => {
      const e: unknown = events.find((x: unknown) => typeof x === 'object' && x !== null && 'event' in x && x.event === name);
      if (typeof e !== 'object' || e === null || !('event_payload' in e) || typeof e.event_payload !== 'string') throw new Error(name);
      return e.event_payload;
    };
    expect(payload('app-id')).toBe(info.app_id);
    expect(payload('compose-hash')).toBe(info.compose_hash);
    expect(payload('instance-id')).toBe(info.instance_id);
    expect(Buffer.from(payload('key-provider'), 'hex').toString()).toBe(info.key_provider_info);
    expect(r.vm_config).toBe(info.vm_config);
  });

  it('the adapter quote() returns a quote dcap-qvl accepts under the mock root', async () => {
    const tee = new DstackTee({ endpoint: sim.socketPath ?? '' });
    const rd = Uint8Array.from({ length: 64 }, (_, i) => 255 - i);
    const q = await tee.quote(rd);
    const v = verifyMock(sim.mockRootCaDer, q.quote, sim.collateral());
    expect(v.status).toBe('UpToDate');
    expect(hex(td10(v)['reportData'] ?? new Uint8Array())).toBe(hex(rd));
    expect(JSON.parse(q.eventLog)).toBeInstanceOf(Array);
  });

  it('empty report_data is allowed and means 64 zero bytes', async () => {
    const r = await new DstackClient(sim.httpUrl).getQuote(new Uint8Array(0));
    expect(r.report_data).toBe('00'.repeat(64));
  });

  const post = (path: string, body: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const u = new URL(path, sim.httpUrl);
      const req = http.request(u, { method: 'POST', agent: false }, (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
      });
      req.on('error', reject);
      req.end(body);
    });

  it.each([
    ['65 bytes', JSON.stringify({ report_data: '00'.repeat(65) })],
    ['odd hex', JSON.stringify({ report_data: 'abc' })],
    ['non-hex', JSON.stringify({ report_data: 'zz' })],
    ['not a string', JSON.stringify({ report_data: [1, 2] })],
  ])('GetQuote with report_data %s → 400 {"error"}', async (_n, body) => {
    const r = await post('/GetQuote', body);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body)).toMatchObject({ error: expect.any(String) });
  });

  it('GET /GetQuote?report_data= works like POST', async () => {
    const r = await new Promise<string>((resolve, reject) => {
      http
        .get(new URL('/GetQuote?report_data=abcd', sim.httpUrl), { agent: false }, (res) => {
          let b = '';
          res.on('data', (c: Buffer) => (b += c.toString()));
          res.on('end', () => resolve(b));
        })
        .on('error', reject);
    });
    const parsed: unknown = JSON.parse(r);
    expect(parsed).toMatchObject({ report_data: `abcd${'00'.repeat(62)}` });
  });

  it('dev endpoints serve the mock root and the collateral, which verify a fetched quote', async () => {
    const root: unknown = JSON.parse((await post('/openkey/dev/root-ca', '{}')).body);
    if (typeof root !== 'object' || root === null || !('der' in root) || typeof root.der !== 'string') throw new Error('root');
    expect(root.der).toBe(hex(sim.mockRootCaDer));
    expect(JSON.stringify(root)).toContain('DEV ONLY');
    const colText = (await post('/openkey/dev/collateral', '{}')).body;
    const col: unknown = JSON.parse(colText);
    expect(col).toEqual(sim.collateral(NOW_MS));
    const q = await new DstackClient(sim.httpUrl).getQuote(utf8('fetched'));
    expect(verifyMock(Buffer.from(root.der, 'hex'), Buffer.from(q.quote, 'hex'), sim.collateral()).status).toBe('UpToDate');
  });
});
