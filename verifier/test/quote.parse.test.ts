// Reference §4 (quote layout): every vector's parsed fields equal expected.json; hostile lengths
// and truncation at every offset give a clean error code, never a crash; trailing bytes are ignored.

import { describe, expect, it } from 'vitest';

import { toHex } from '../src/bytes.ts';
import { verifyQuote } from '../src/dcap/verify.ts';
import { VERIFIER_ERROR_CODES, type VerifierErrorCode } from '../src/errors.ts';
import { parseQuote, type ParsedQuote } from '../src/quote.ts';
import { EXPECTED, INTEL_ROOT, expectedVector, vectorCollateral, vectorQuote } from './helpers/vectors.ts';
import { codeOf } from './helpers/codes.ts'; // rethrows anything that is not a VerifierError

const FIELD_MAP: readonly [string, (q: ParsedQuote) => Uint8Array | undefined][] = [
  ['tee_tcb_svn', (q) => (q.report.type === 'sgx' ? undefined : q.report.td.teeTcbSvn)],
  ['mr_seam', (q) => (q.report.type === 'sgx' ? undefined : q.report.td.mrSeam)],
  ['mr_signer_seam', (q) => (q.report.type === 'sgx' ? undefined : q.report.td.mrSignerSeam)],
  ['seam_attributes', (q) => (q.report.type === 'sgx' ? undefined : q.report.td.seamAttributes)],
  ['td_attributes', (q) => (q.report.type === 'sgx' ? undefined : q.report.td.tdAttributes)],
  ['xfam', (q) => (q.report.type === 'sgx' ? undefined : q.report.td.xfam)],
  ['mr_td', (q) => (q.report.type === 'sgx' ? undefined : q.report.td.mrTd)],
  ['mr_config_id', (q) => (q.report.type === 'sgx' ? undefined : q.report.td.mrConfigId)],
  ['mr_owner', (q) => (q.report.type === 'sgx' ? undefined : q.report.td.mrOwner)],
  ['mr_owner_config', (q) => (q.report.type === 'sgx' ? undefined : q.report.td.mrOwnerConfig)],
  ['rtmr0', (q) => (q.report.type === 'sgx' ? undefined : q.report.td.rtmr0)],
  ['rtmr1', (q) => (q.report.type === 'sgx' ? undefined : q.report.td.rtmr1)],
  ['rtmr2', (q) => (q.report.type === 'sgx' ? undefined : q.report.td.rtmr2)],
  ['rtmr3', (q) => (q.report.type === 'sgx' ? undefined : q.report.td.rtmr3)],
  ['report_data', (q) => (q.report.type === 'sgx' ? q.report.sgx.reportData : q.report.td.reportData)],
  ['tee_tcb_svn2', (q) => (q.report.type === 'td15' ? q.report.td.teeTcbSvn2 : undefined)],
  ['mr_service_td', (q) => (q.report.type === 'td15' ? q.report.td.mrServiceTd : undefined)],
  ['qe_vendor_id', (q) => q.header.qeVendorId],
  ['user_data', (q) => q.header.userData],
];

describe('parsed fields equal expected.json for every vector', () => {
  for (const v of EXPECTED.vectors) {
    it(v.id, () => {
      const q = parseQuote(vectorQuote(v.quote_file));
      expect(q.header.version).toBe(v.quote.version);
      expect(q.report.type).toBe(v.quote.report_type);
      expect(q.signedLength).toBe(v.quote.signed_length);
      expect(q.auth.certDataType).toBe(5);
      for (const [field, get] of FIELD_MAP) {
        const want = v.quote[field];
        if (typeof want !== 'string') continue;
        expect(toHex(get(q) ?? new Uint8Array()), field).toBe(want);
      }
    });
  }

  it('sgx_v3: MRENCLAVE, MRSIGNER and report data "Hello, world!"', () => {
    const q = parseQuote(vectorQuote('dcapqvl_sgx_v3_quote.bin'));
    if (q.report.type !== 'sgx') throw new Error('expected sgx');
    expect(toHex(q.report.sgx.mrEnclave)).toBe('33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb');
    expect(toHex(q.report.sgx.mrSigner)).toBe('815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6');
    expect(new TextDecoder().decode(q.report.sgx.reportData.subarray(0, 13))).toBe('Hello, world!');
  });

  it('the parsed structure ends at 4936 of 5006 bytes: 70 trailing bytes are tolerated', () => {
    const q = parseQuote(vectorQuote('dcapqvl_tdx_v4_quote.bin'));
    expect(q.parsedLength).toBe(4936);
    expect(q.raw.length).toBe(5006);
  });

  it('parsing copies its input: mutating the caller\'s buffer later changes nothing', () => {
    const raw = vectorQuote('dcapqvl_tdx_v4_quote.bin');
    const q = parseQuote(raw);
    raw.fill(0);
    expect(q.header.version).toBe(4);
    expect(q.raw[0]).toBe(4);
  });
});

describe('truncation at every offset yields QUOTE_TRUNCATED (verifyQuote, not just the parser)', () => {
  const cases = [
    ['dcapqvl_tdx_v4', 4936],
    ['dcapqvl_tdx_v5_outdated', 5006],
    ['dcapqvl_sgx_v3', undefined],
  ] as const;
  for (const [id, structureEnd] of cases) {
    it(id, () => {
      const v = expectedVector(id);
      const full = vectorQuote(v.quote_file);
      const end = structureEnd ?? parseQuote(full).parsedLength;
      const collateral = vectorCollateral(v.collateral_file);
      const anchor = INTEL_ROOT();
      for (let n = 0; n < end; n++) {
        const code = codeOf(() => verifyQuote(full.subarray(0, n), collateral, { trustAnchorDer: anchor, now: v.verify_at }));
        if (code !== 'QUOTE_TRUNCATED') throw new Error(`offset ${n}: ${code}`);
      }
      // Every length from the end of the structure to the end of the file still parses.
      for (let n = end; n <= full.length; n++) expect(parseQuote(full.subarray(0, n)).parsedLength).toBe(end);
    });
  }
});

describe('hostile headers and lengths', () => {
  const base = (): Uint8Array => vectorQuote('dcapqvl_tdx_v4_quote.bin');
  const dv = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);
  const cases: readonly [string, (b: Uint8Array) => void, VerifierErrorCode][] = [
    ['version 2', (b) => dv(b).setUint16(0, 2, true), 'UNSUPPORTED_QUOTE_VERSION'],
    ['version 6', (b) => dv(b).setUint16(0, 6, true), 'UNSUPPORTED_QUOTE_VERSION'],
    ['attestation key type 3 (P-384)', (b) => dv(b).setUint16(2, 3, true), 'UNSUPPORTED_ATTESTATION_KEY_TYPE'],
    ['SGX tee type in a v4 quote', (b) => dv(b).setUint32(4, 0, true), 'UNSUPPORTED_TEE_TYPE'],
    ['TDX tee type in a v3 quote', (b) => dv(b).setUint16(0, 3, true), 'UNSUPPORTED_TEE_TYPE'],
    ['auth data length 0xffffffff', (b) => dv(b).setUint32(632, 0xffffffff, true), 'QUOTE_TRUNCATED'],
    ['auth data length one short', (b) => dv(b).setUint32(632, dv(b).getUint32(632, true) - 1, true), 'QUOTE_TRUNCATED'],
    ['auth data length one long (swallows padding)', (b) => dv(b).setUint32(632, dv(b).getUint32(632, true) + 1, true), 'QUOTE_MALFORMED'],
    ['outer certification type 5', (b) => dv(b).setUint16(764, 5, true), 'UNSUPPORTED_CERT_DATA_TYPE'],
    ['outer certification size 0xffffffff', (b) => dv(b).setUint32(766, 0xffffffff, true), 'QUOTE_TRUNCATED'],
    ['QE auth data size 0xffff', (b) => dv(b).setUint16(1218, 0xffff, true), 'QUOTE_TRUNCATED'],
    ['inner certification type 4', (b) => dv(b).setUint16(1252, 4, true), 'UNSUPPORTED_CERT_DATA_TYPE'],
    ['inner certification size 0xffffffff', (b) => dv(b).setUint32(1254, 0xffffffff, true), 'QUOTE_TRUNCATED'],
    ['inner certification size one short', (b) => dv(b).setUint32(1254, dv(b).getUint32(1254, true) - 1, true), 'QUOTE_MALFORMED'],
  ];
  for (const [name, mutate, code] of cases) {
    it(`${name} → ${code}`, () => {
      const b = base();
      mutate(b);
      expect(codeOf(() => parseQuote(b))).toBe(code);
    });
  }

  it('v5 body descriptors: SGX body type, unknown type, wrong size', () => {
    const mk = (type: number, size: number): Uint8Array => {
      const b = vectorQuote('dcapqvl_tdx_v5_outdated_quote.bin');
      dv(b).setUint16(48, type, true);
      dv(b).setUint32(50, size, true);
      return b;
    };
    expect(codeOf(() => parseQuote(mk(1, 384)))).toBe('UNSUPPORTED_BODY_TYPE');
    expect(codeOf(() => parseQuote(mk(9, 648)))).toBe('UNSUPPORTED_BODY_TYPE');
    expect(codeOf(() => parseQuote(mk(3, 584)))).toBe('QUOTE_MALFORMED');
    // Relabelled as TD 1.0, the auth-data length is read from inside the body: a clean error.
    expect(codeOf(() => parseQuote(mk(2, 584)))).toBe('QUOTE_TRUNCATED');
  });

  it('an oversized input → QUOTE_TOO_LARGE; a non-Uint8Array → INVALID_ARGUMENT', () => {
    expect(codeOf(() => parseQuote(new Uint8Array((1 << 20) + 1)))).toBe('QUOTE_TOO_LARGE');
    expect(codeOf(() => parseQuote('04000200' as unknown as Uint8Array))).toBe('INVALID_ARGUMENT');
  });

  it('random inputs with a valid v4/v5/v3 prefix never crash (seeded fuzz, 3000 cases)', () => {
    let seed = 0x12345678;
    const rnd = (): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 2 ** 32;
    };
    const templates = [vectorQuote('dcapqvl_tdx_v4_quote.bin'), vectorQuote('dcapqvl_tdx_v5_outdated_quote.bin'), vectorQuote('dcapqvl_sgx_v3_quote.bin')];
    const known = new Set<string>(VERIFIER_ERROR_CODES);
    for (let i = 0; i < 3000; i++) {
      const t = templates[i % 3]!.slice();
      const flips = 1 + Math.floor(rnd() * 8);
      for (let f = 0; f < flips; f++) t[Math.floor(rnd() * t.length)] = Math.floor(rnd() * 256);
      const cut = rnd() < 0.5 ? t.length : Math.floor(rnd() * t.length);
      const code = codeOf(() => parseQuote(t.subarray(0, cut)));
      if (code !== 'no error') expect(known.has(code) && code !== 'INTERNAL').toBe(true);
    }
  });
});
