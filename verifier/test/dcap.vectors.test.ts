// Reference §5.1 against the real Intel-signed vectors in shared/vectors/tdx (README "Positive
// vectors", "Negative vectors", time-window edges): statuses, advisories and rejection codes.

import { describe, expect, it } from 'vitest';

import { toHex } from '../src/bytes.ts';
import { verifyQuote } from '../src/dcap/verify.ts';
import { type VerifierErrorCode } from '../src/errors.ts';
import { INTEL_SGX_ROOT_CA_SHA256, intelSgxRootCaDer } from '../src/intel-root.ts';
import { sha256 } from '../src/crypto.ts';
import { buildMock } from './helpers/mock-pki.ts';
import { INTEL_ROOT, expectedVector, vectorCollateral, vectorQuote } from './helpers/vectors.ts';
import { codeOf } from './helpers/codes.ts';

const verifyAt = (quoteFile: string, collateralFile: string, now: number, anchor = INTEL_ROOT()) =>
  verifyQuote(vectorQuote(quoteFile), vectorCollateral(collateralFile), { trustAnchorDer: anchor, now });

describe('trust anchor', () => {
  it('the embedded Intel SGX Root CA is the vector file, byte for byte', () => {
    expect(toHex(intelSgxRootCaDer())).toBe(toHex(INTEL_ROOT()));
    expect(toHex(sha256(INTEL_ROOT()))).toBe(INTEL_SGX_ROOT_CA_SHA256);
  });
});

describe('positive vectors verify at their listed time with the listed status and advisories', () => {
  const cases = [
    ['dcapqvl_tdx_v4', 'td10'],
    ['dcapqvl_sgx_v3', 'sgx'],
    ['dcapqvl_near_tdx_v4', 'td10'],
    ['dstack_verifier_quote_report', 'td10'],
  ] as const;
  for (const [id, reportType] of cases) {
    it(id, () => {
      const v = expectedVector(id);
      const r = verifyAt(v.quote_file, v.collateral_file, v.verify_at);
      expect(r.status).toBe(v.expected.status);
      expect([...r.advisoryIds].sort()).toEqual([...(v.expected.advisory_ids ?? [])].sort());
      expect(r.report.type).toBe(reportType);
      expect(toHex(r.pck.fmspc)).toBe(v.quote.pck.fmspc);
      expect(toHex(r.pck.cpuSvn)).toBe(v.quote.pck.cpusvn);
      expect(r.pck.pceSvn).toBe(v.quote.pck.pcesvn);
      expect(r.pck.ppid.length).toBe(16);
      expect(r.validUntil).toBeGreaterThanOrEqual(v.verify_at);
    });
  }

  it('sgx_v3 reports the platform level that carries the advisories and an UpToDate QE', () => {
    const v = expectedVector('dcapqvl_sgx_v3');
    const r = verifyAt(v.quote_file, v.collateral_file, v.verify_at);
    expect(r.platformStatus).toBe('ConfigurationAndSWHardeningNeeded');
    expect(r.qeStatus).toBe('UpToDate');
    expect(r.tdxModuleStatus).toBeUndefined();
  });

  it('tdx_v4 is judged under module identity TDX_01 (TEE_TCB_SVN[1] = 1)', () => {
    const v = expectedVector('dcapqvl_tdx_v4');
    const r = verifyAt(v.quote_file, v.collateral_file, v.verify_at);
    expect(r.tdxModuleStatus).toBe('UpToDate');
    expect(r.pck.issuerCommonName).toBe('Intel SGX PCK Platform CA');
  });
});

describe('collateral windows (README: max(issueDates, thisUpdates) ≤ now ≤ min(nextUpdates)) are inclusive', () => {
  const accept: readonly [string, number][] = [
    ['dcapqvl_tdx_v4', 1750329147],
    ['dcapqvl_tdx_v4', 1752919235],
    ['dcapqvl_sgx_v3', 1750330571],
    ['dcapqvl_sgx_v3', 1752919278],
    ['dcapqvl_near_tdx_v4', 1756798919],
    ['dcapqvl_near_tdx_v4', 1759388631],
    ['dstack_verifier_quote_report', 1771412331],
    ['dstack_verifier_quote_report', 1774003275],
  ];
  for (const [id, now] of accept) {
    it(`${id} verifies at ${now}`, () => {
      const v = expectedVector(id);
      expect(verifyAt(v.quote_file, v.collateral_file, now).status).toBe(v.expected.status);
    });
  }
});

describe('time-window edges are rejected with the code of the item out of its window', () => {
  const reject: readonly [string, number, VerifierErrorCode, string][] = [
    ['dcapqvl_tdx_v4', 1750329146, 'QE_IDENTITY_NOT_YET_VALID', '1 s before the QE identity issueDate'],
    ['dcapqvl_sgx_v3', 1752919279, 'QE_IDENTITY_EXPIRED', 'after the QE identity nextUpdate'],
    ['dcapqvl_tdx_v4', 1752919236, 'CRL_EXPIRED', 'after the PCK CRL nextUpdate (dcap-qvl 0.3.9 accepts)'],
    ['dcapqvl_near_tdx_v4', 1759388632, 'CRL_EXPIRED', 'after the PCK CRL nextUpdate (dcap-qvl 0.3.9 accepts)'],
    ['dstack_verifier_quote_report', 1774003276, 'CRL_EXPIRED', 'after the PCK CRL nextUpdate (dcap-qvl 0.3.9 accepts)'],
    ['dcapqvl_tdx_v4', 1750328162, 'TCB_INFO_NOT_YET_VALID', '1 s before the TCB info issueDate'],
    ['dcapqvl_tdx_v4', 1750327234, 'CRL_NOT_YET_VALID', '1 s before the PCK CRL thisUpdate'],
    ['dcapqvl_tdx_v4', 1738884350, 'CERT_NOT_YET_VALID', '1 s before the PCK certificate notBefore'],
    ['dcapqvl_tdx_v4', 2524608000, 'CERT_EXPIRED', 'in 2050, after the PCK certificate notAfter'],
  ];
  for (const [id, now, code, why] of reject) {
    it(`${id} @${now}: ${code} (${why})`, () => {
      const v = expectedVector(id);
      expect(codeOf(() => verifyAt(v.quote_file, v.collateral_file, now))).toBe(code);
    });
  }
});

describe('negative vectors are rejected with the right code', () => {
  it('tdx_v5_outdated (v5, TD 1.5): PCK CPUSVN byte 7 is 3 but every level needs 5 → TCB_LEVEL_NOT_FOUND', () => {
    const v = expectedVector('dcapqvl_tdx_v5_outdated');
    expect(codeOf(() => verifyAt(v.quote_file, v.collateral_file, v.verify_at))).toBe('TCB_LEVEL_NOT_FOUND');
    // At the window start too (README results).
    expect(codeOf(() => verifyAt(v.quote_file, v.collateral_file, 1771412331))).toBe('TCB_LEVEL_NOT_FOUND');
  });

  it('tappd_tdx_v4 with the tdx_v4 collateral → TCB_LEVEL_NOT_FOUND (never a status "Unknown")', () => {
    const v = expectedVector('dcapqvl_tappd_tdx_v4');
    expect(codeOf(() => verifyAt(v.quote_file, v.collateral_file, v.verify_at))).toBe('TCB_LEVEL_NOT_FOUND');
  });

  it('dstack simulator v0.5.5 quote (valid as stored) against tdx_v4 collateral → TCB_LEVEL_NOT_FOUND', () => {
    const v = expectedVector('dstack_sim_v055');
    expect(codeOf(() => verifyAt(v.quote_file, v.collateral_file, v.verify_at))).toBe('TCB_LEVEL_NOT_FOUND');
  });

  it('the v0.5.5 simulator patches report_data (bytes 568..632) and so breaks the quote signature', () => {
    const v = expectedVector('dstack_sim_v055');
    const q = vectorQuote(v.quote_file);
    q.set(new Uint8Array(64).fill(0xab), 568);
    expect(codeOf(() => verifyQuote(q, vectorCollateral(v.collateral_file), { trustAnchorDer: INTEL_ROOT(), now: v.verify_at }))).toBe(
      'QUOTE_SIGNATURE_INVALID',
    );
  });

  it('dstack simulator fixture: PCK notBefore 2026-01-09 is after the only fitting collateral → CERT_NOT_YET_VALID', () => {
    const v = expectedVector('dstack_sim_fixture');
    expect(codeOf(() => verifyAt(v.quote_file, v.collateral_file, v.verify_at))).toBe('CERT_NOT_YET_VALID');
  });

  it('dstack tdx-lite: PCK notBefore 2026-04-15 is after the 90c06f window → CERT_NOT_YET_VALID', () => {
    const v = expectedVector('dstack_verifier_tdx_lite');
    expect(codeOf(() => verifyAt(v.quote_file, v.collateral_file, v.verify_at))).toBe('CERT_NOT_YET_VALID');
  });

  it('a TDX quote with another platform\'s collateral (near FMSPC 20a06f vs b0c06f) → FMSPC_MISMATCH', () => {
    expect(codeOf(() => verifyAt('dcapqvl_tdx_v4_quote.bin', 'dcapqvl_near_tdx_v4_collateral.json', 1757462400))).toBe('FMSPC_MISMATCH');
  });

  it('an SGX quote (Processor CA) with TDX collateral (Platform CA CRL) → CRL_MISSING for its PCK issuer', () => {
    expect(codeOf(() => verifyAt('dcapqvl_sgx_v3_quote.bin', 'dcapqvl_tdx_v4_collateral.json', 1752919234))).toBe('CRL_MISSING');
  });
});

describe('wrong trust anchor', () => {
  it('an Intel quote against another root (the mock root) → CERT_CHAIN_UNTRUSTED', () => {
    const v = expectedVector('dcapqvl_tdx_v4');
    expect(codeOf(() => verifyAt(v.quote_file, v.collateral_file, v.verify_at, buildMock().rootDer))).toBe('CERT_CHAIN_UNTRUSTED');
  });

  it('a mock-PKI quote against the Intel root → CERT_CHAIN_UNTRUSTED; against the mock root → verifies', () => {
    const m = buildMock();
    expect(codeOf(() => verifyQuote(m.quote, m.collateral, { trustAnchorDer: INTEL_ROOT(), now: m.now }))).toBe('CERT_CHAIN_UNTRUSTED');
    expect(verifyQuote(m.quote, m.collateral, { trustAnchorDer: m.rootDer, now: m.now }).status).toBe('UpToDate');
  });

  it('a non-CA or malformed anchor → TRUST_ANCHOR_INVALID', () => {
    const v = expectedVector('dcapqvl_tdx_v4');
    expect(codeOf(() => verifyAt(v.quote_file, v.collateral_file, v.verify_at, new Uint8Array([0x30, 0x00])))).toBe('TRUST_ANCHOR_INVALID');
  });
});

describe('arguments', () => {
  it('now must be integral Unix seconds', () => {
    const v = expectedVector('dcapqvl_tdx_v4');
    for (const now of [Number.NaN, -1, 1.5, 1e300]) {
      expect(codeOf(() => verifyAt(v.quote_file, v.collateral_file, now))).toBe('INVALID_ARGUMENT');
    }
  });
});
