// Reference §5.1, one step at a time, with a mock Intel PKI (test/helpers/mock-pki.ts) so every
// rejection path can be reached: CRLs (signature, window, revocation by serial and issuer), CA
// constraints, validity windows, TCB info / QE identity checks, TCB level matching, the TDX
// module identity, and status convergence.

import { describe, expect, it } from 'vitest';

import { verifyQuote, type VerifiedQuote } from '../src/dcap/verify.ts';
import { type VerifierErrorCode } from '../src/errors.ts';
import { p256 } from '@noble/curves/nist.js';
import { sha256 } from '@noble/hashes/sha2.js';

import { utf8 } from '../src/bytes.ts';
import { parseQuote } from '../src/quote.ts';
import { buildMock, key, makeCrl, MOCK_NOW, type MockOptions } from './helpers/mock-pki.ts';
import { codeOf } from './helpers/codes.ts';

const DAY = 86_400;

function run(o: MockOptions = {}, mutate?: (m: ReturnType<typeof buildMock>) => ReturnType<typeof buildMock>): VerifiedQuote {
  let m = buildMock(o);
  if (mutate !== undefined) m = mutate(m);
  return verifyQuote(m.quote, m.collateral, { trustAnchorDer: m.rootDer, now: m.now });
}

const reject = (o: MockOptions, code: VerifierErrorCode, mutate?: Parameters<typeof run>[1]): void => {
  expect(codeOf(() => run(o, mutate))).toBe(code);
};

describe('baseline', () => {
  it('v4 (TD 1.0) and v5 (TD 1.5) mock quotes verify UpToDate against the mock root', () => {
    expect(run().status).toBe('UpToDate');
    const v5 = run({ version: 5 });
    expect(v5.status).toBe('UpToDate');
    expect(v5.report.type).toBe('td15');
    expect(v5.quote.signedLength).toBe(702);
  });
});

describe('step 1: header', () => {
  it('a QE vendor id other than Intel\'s → QE_VENDOR_MISMATCH', () => reject({ qeVendorId: new Uint8Array(16) }, 'QE_VENDOR_MISMATCH'));
});

describe('steps 0 and 4: PCK chain, CRLs, constraints, windows', () => {
  it('PCK leaf serial in the PCK CRL → CERT_REVOKED', () => reject({ revokedPckSerials: [3] }, 'CERT_REVOKED'));
  it('PCK CA serial in the root CA CRL → CERT_REVOKED', () => reject({ revokedRootSerials: [2] }, 'CERT_REVOKED'));
  it('TCB signing cert serial in the root CA CRL → CERT_REVOKED', () => reject({ revokedRootSerials: [4] }, 'CERT_REVOKED'));
  it('a revoked serial of another issuer does not revoke (serial + issuer)', () => {
    // Serial 3 is the PCK leaf's, but listed by the root's CRL, which does not speak for it.
    expect(run({ revokedRootSerials: [3] }).status).toBe('UpToDate');
  });
  it('the anchor listed in its own CRL → CERT_REVOKED', () => reject({ revokedRootSerials: [1] }, 'CERT_REVOKED'));
  it('root CA CRL signed by another key → CRL_SIGNATURE_INVALID', () =>
    reject({ rootCrlSignerSk: key('intruder').sk }, 'CRL_SIGNATURE_INVALID'));
  it('PCK CRL with a corrupted signature → CRL_SIGNATURE_INVALID', () =>
    reject({}, 'CRL_SIGNATURE_INVALID', (m) => {
      const pckCrl = m.collateral.pckCrl.slice();
      pckCrl[pckCrl.length - 5]! ^= 0x01;
      return { ...m, collateral: { ...m.collateral, pckCrl } };
    }));
  it('no CRL from the PCK CA → CRL_MISSING', () => reject({ omitPckCrl: true }, 'CRL_MISSING'));
  it('PCK CRL before thisUpdate → CRL_NOT_YET_VALID', () => reject({ pckCrlWindow: [MOCK_NOW + 1, MOCK_NOW + DAY] }, 'CRL_NOT_YET_VALID'));
  it('PCK CRL after nextUpdate → CRL_EXPIRED', () => reject({ pckCrlWindow: [MOCK_NOW - 2 * DAY, MOCK_NOW - 1] }, 'CRL_EXPIRED'));
  it('PCK leaf not yet valid → CERT_NOT_YET_VALID', () => reject({ pckLeafWindow: [MOCK_NOW + 1, MOCK_NOW + DAY] }, 'CERT_NOT_YET_VALID'));
  it('PCK leaf expired → CERT_EXPIRED', () => reject({ pckLeafWindow: [MOCK_NOW - DAY, MOCK_NOW - 1] }, 'CERT_EXPIRED'));
  it('intermediate without basicConstraints → CERT_CONSTRAINTS', () => reject({ pckCaKind: 'none' }, 'CERT_CONSTRAINTS'));
  it('intermediate with cA false → CERT_CONSTRAINTS', () => reject({ pckCaKind: 'leaf' }, 'CERT_CONSTRAINTS'));
  it('root pathLenConstraint 0 forbids the PCK CA below it → CERT_CONSTRAINTS', () => reject({ rootPathLen: 0 }, 'CERT_CONSTRAINTS'));
  it('a CA as the PCK leaf → CERT_CONSTRAINTS', () => reject({ leafIsCa: true }, 'CERT_CONSTRAINTS'));
  it('an unknown critical extension in the leaf → CERT_CONSTRAINTS', () => reject({ leafUnknownCritical: true }, 'CERT_CONSTRAINTS'));
  it('a CRL with a critical extension this verifier does not implement → CRL_MALFORMED', () =>
    reject({}, 'CRL_MALFORMED', (m) => ({
      ...m,
      collateral: { ...m.collateral, rootCaCrl: makeCrl('Mock SGX Root CA', key('root').sk, MOCK_NOW - DAY, MOCK_NOW + DAY, [], true) },
    })));
});

describe('steps 2 and 3: TCB info and QE identity', () => {
  it('TCB info before issueDate → TCB_INFO_NOT_YET_VALID', () => reject({ tcbInfoWindow: [MOCK_NOW + 1, MOCK_NOW + DAY] }, 'TCB_INFO_NOT_YET_VALID'));
  it('TCB info after nextUpdate → TCB_INFO_EXPIRED', () => reject({ tcbInfoWindow: [MOCK_NOW - DAY, MOCK_NOW - 1] }, 'TCB_INFO_EXPIRED'));
  it('QE identity after nextUpdate → QE_IDENTITY_EXPIRED', () => reject({ qeIdentityWindow: [MOCK_NOW - DAY, MOCK_NOW - 1] }, 'QE_IDENTITY_EXPIRED'));
  it('SGX TCB info for a TDX quote → TCB_INFO_UNSUPPORTED', () => reject({ tcbInfoId: 'SGX' }, 'TCB_INFO_UNSUPPORTED'));
  it('TCB info signature by a key that is not the issuer chain leaf → TCB_INFO_SIGNATURE_INVALID', () =>
    reject({}, 'TCB_INFO_SIGNATURE_INVALID', (m) => ({
      ...m,
      collateral: { ...m.collateral, tcbInfoSignature: m.collateral.qeIdentitySignature },
    })));
  it('TCB info signed by a PCK leaf (a valid chain, but not a collateral signer) → CERT_CHAIN_INVALID', () =>
    reject({}, 'CERT_CHAIN_INVALID', (m) => {
      const forged = m.collateral.tcbInfo.replace('"OutOfDate"', '"UpToDate"');
      const sig = p256.sign(sha256(utf8(forged)), key('pck-leaf').sk, { prehash: false }).toBytes('compact');
      const pckChain = new TextDecoder().decode(pemOfQuote(m.quote));
      return { ...m, collateral: { ...m.collateral, tcbInfo: forged, tcbInfoSignature: sig, tcbInfoIssuerChain: pckChain } };
    }));
  it('QE identity signed by another key than its chain leaf → QE_IDENTITY_SIGNATURE_INVALID', () =>
    reject({}, 'QE_IDENTITY_SIGNATURE_INVALID', (m) => ({
      ...m,
      collateral: { ...m.collateral, qeIdentitySignature: m.collateral.tcbInfoSignature },
    })));
});

describe('step 7: QE identity match and QE TCB level', () => {
  it('QE MRSIGNER differs → QE_IDENTITY_MISMATCH', () => reject({ qeMrSigner: new Uint8Array(32).fill(0x45) }, 'QE_IDENTITY_MISMATCH'));
  it('debug QE → QE_IDENTITY_MISMATCH', () => reject({ qeDebug: true }, 'QE_IDENTITY_MISMATCH'));
  it('QE ISVSVN below every level → QE_TCB_LEVEL_NOT_FOUND', () => reject({ qeIsvSvn: 1 }, 'QE_TCB_LEVEL_NOT_FOUND'));
  it('QE OutOfDate converges with an UpToDate platform to OutOfDate, advisories united', () => {
    const r = run({
      qeIsvSvn: 3,
      qeLevels: [
        { isvsvn: 4, status: 'UpToDate' },
        { isvsvn: 2, status: 'OutOfDate', advisoryIDs: ['INTEL-SA-00615'] },
      ],
    });
    expect([r.status, r.platformStatus, r.qeStatus]).toEqual(['OutOfDate', 'UpToDate', 'OutOfDate']);
    expect(r.advisoryIds).toEqual(['INTEL-SA-00615']);
  });
});

describe('steps 9-11: platform level, TDX module, convergence', () => {
  const cpu = [2, 2, 2, 2, 3, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
  const tdx = (first: number, third = 2): number[] => [first, 0, third, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

  it('FMSPC differing from the TCB info → FMSPC_MISMATCH', () =>
    reject({}, 'FMSPC_MISMATCH', (m) => {
      const other = buildMock({ fmspc: new Uint8Array([1, 2, 3, 4, 5, 6]) });
      return { ...m, collateral: { ...m.collateral, tcbInfo: other.collateral.tcbInfo, tcbInfoSignature: other.collateral.tcbInfoSignature } };
    }));

  const defaultLevels = [
    { sgx: cpu, pcesvn: 11, tdx: tdx(0), status: 'UpToDate' },
    { sgx: [1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0], pcesvn: 5, tdx: tdx(0, 1), status: 'OutOfDate', advisoryIDs: ['INTEL-SA-00001'] },
  ];

  it('PCESVN below every level → TCB_LEVEL_NOT_FOUND', () => reject({ pckPceSvn: 4, tcbLevels: defaultLevels }, 'TCB_LEVEL_NOT_FOUND'));

  it('the first matching level wins: a lower CPUSVN falls to the OutOfDate level with its advisories', () => {
    const r = run({ pckCpuSvn: [1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0], tcbLevels: defaultLevels });
    expect([r.status, r.advisoryIds]).toEqual(['OutOfDate', ['INTEL-SA-00001']]);
  });

  it('TEE_TCB_SVN below the TDX components of a level moves to the next level', () => {
    const r = run({ teeTcbSvn: [3, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] });
    expect(r.status).toBe('OutOfDate');
  });

  it('with a module major version, TDX components 0-1 are left to the module identity (Intel QVL)', () => {
    const levels = [{ sgx: cpu, pcesvn: 11, tdx: tdx(9), status: 'UpToDate' }];
    // TEE_TCB_SVN[0] = 3 < 9, but [1] = 1 selects TDX_01 whose level (isvsvn 3) judges it.
    expect(run({ tcbLevels: levels }).status).toBe('UpToDate');
  });

  it('without a module major version, TDX component 0 is compared like the others', () => {
    const levels = [{ sgx: cpu, pcesvn: 11, tdx: tdx(9), status: 'UpToDate' }];
    reject({ tcbLevels: levels, teeTcbSvn: [3, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] }, 'TCB_LEVEL_NOT_FOUND');
  });

  it('a module major version without a TDX_%02X identity → TDX_MODULE_MISMATCH', () =>
    reject({ teeTcbSvn: [3, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] }, 'TDX_MODULE_MISMATCH'));

  it('MRSIGNERSEAM that is not the identity\'s → TDX_MODULE_MISMATCH', () =>
    reject({ mrSignerSeam: new Uint8Array(48).fill(1) }, 'TDX_MODULE_MISMATCH'));

  it('module ISVSVN below every module level → TDX_MODULE_TCB_LEVEL_NOT_FOUND', () =>
    reject({ teeTcbSvn: [2, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] }, 'TDX_MODULE_TCB_LEVEL_NOT_FOUND'));

  it('an OutOfDate module converges with a ConfigurationNeeded platform to OutOfDateConfigurationNeeded', () => {
    const r = run({
      tcbLevels: [{ sgx: cpu, pcesvn: 11, tdx: tdx(0), status: 'ConfigurationNeeded', advisoryIDs: ['INTEL-SA-00002'] }],
      moduleLevels: [
        { isvsvn: 5, status: 'UpToDate' },
        { isvsvn: 2, status: 'OutOfDate', advisoryIDs: ['INTEL-SA-00003'] },
      ],
    });
    expect([r.status, r.platformStatus, r.tdxModuleStatus]).toEqual(['OutOfDateConfigurationNeeded', 'ConfigurationNeeded', 'OutOfDate']);
    expect(r.advisoryIds).toEqual(['INTEL-SA-00002', 'INTEL-SA-00003']);
  });

  it('SWHardeningNeeded + ConfigurationNeeded converge to ConfigurationAndSWHardeningNeeded', () => {
    const r = run({
      tcbLevels: [{ sgx: cpu, pcesvn: 11, tdx: tdx(0), status: 'SWHardeningNeeded' }],
      moduleLevels: [{ isvsvn: 3, status: 'ConfigurationNeeded' }],
    });
    expect(r.status).toBe('ConfigurationAndSWHardeningNeeded');
  });

  it('a Revoked platform level → TCB_REVOKED', () =>
    reject({ tcbLevels: [{ sgx: cpu, pcesvn: 11, tdx: tdx(0), status: 'Revoked' }] }, 'TCB_REVOKED'));

  it('a Revoked QE level → TCB_REVOKED', () => reject({ qeLevels: [{ isvsvn: 4, status: 'Revoked' }] }, 'TCB_REVOKED'));

  it('an unknown status string → TCB_STATUS_UNKNOWN', () =>
    reject({ tcbLevels: [{ sgx: cpu, pcesvn: 11, tdx: tdx(0), status: 'Unknown' }] }, 'TCB_STATUS_UNKNOWN'));

  it('levels are matched in Intel\'s order even when the JSON lists a lower level first', () => {
    const r = run({
      tcbLevels: [
        { sgx: [1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0], pcesvn: 5, tdx: tdx(0, 1), status: 'OutOfDate' },
        { sgx: cpu, pcesvn: 11, tdx: tdx(0), status: 'UpToDate' },
      ],
    });
    expect(r.status).toBe('UpToDate');
  });
});

// ---- helpers -------------------------------------------------------------------------------------

function pemOfQuote(quote: Uint8Array): Uint8Array {
  return parseQuote(quote).auth.pckChainPem;
}
