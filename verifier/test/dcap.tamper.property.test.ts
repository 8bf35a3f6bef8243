// Property: flipping any byte of a real quote's signed regions, or changing one character of the
// collateral's signed JSON, is rejected (reference §4.3 signed regions; §5.1 steps 2, 3, 5, 6, 8).
// tdx_v4's regions are covered byte by byte; the v5 and SGX quotes every byte of their own fields
// and a dense stride elsewhere; the collateral JSON at a stride plus every character of the values
// an attacker would edit (status, SVNs, dates, FMSPC, MRSIGNER). Budget: about 15 s.

import { describe, expect, it } from 'vitest';

import { verifyQuote } from '../src/dcap/verify.ts';
import { type VerifierErrorCode } from '../src/errors.ts';
import type { QuoteCollateral } from '../src/dcap/collateral.ts';
import { INTEL_ROOT, expectedVector, vectorCollateral, vectorQuote } from './helpers/vectors.ts';
import { codeOf } from './helpers/codes.ts';

interface Region {
  readonly name: string;
  readonly from: number;
  readonly to: number;
}

/** Signed regions of a v4/v5 quote whose body ends at `signed` (§4.3, §4.4). */
function tdxRegions(signed: number, qeAuthLength: number): Region[] {
  const sig = signed + 4;
  return [
    { name: 'header and TD report (signed by the attestation key)', from: 0, to: signed },
    { name: 'quote signature', from: sig, to: sig + 64 },
    { name: 'attestation key (hashed into the QE report)', from: sig + 64, to: sig + 128 },
    { name: 'QE report (signed by the PCK key)', from: sig + 134, to: sig + 134 + 384 },
    { name: 'QE report signature', from: sig + 518, to: sig + 582 },
    { name: 'QE auth data (hashed into the QE report)', from: sig + 584, to: sig + 584 + qeAuthLength },
  ];
}

/** SGX v3 (§4.5): report 48..432, signature at 436, key 500, QE report 564, QE sig 948, auth 1014. */
const SGX_REGIONS: Region[] = [
  { name: 'header and enclave report', from: 0, to: 432 },
  { name: 'quote signature', from: 436, to: 500 },
  { name: 'attestation key', from: 500, to: 564 },
  { name: 'QE report', from: 564, to: 948 },
  { name: 'QE report signature', from: 948, to: 1012 },
  { name: 'QE auth data', from: 1014, to: 1046 },
];

function flipEveryByte(id: string, regions: readonly Region[], stride = 1): void {
  const v = expectedVector(id);
  const original = vectorQuote(v.quote_file);
  const collateral = vectorCollateral(v.collateral_file);
  const anchor = INTEL_ROOT();
  // The untouched quote verifies, so each rejection below is caused by the flip alone.
  expect(verifyQuote(original, collateral, { trustAnchorDer: anchor, now: v.verify_at }).status).toBe(v.expected.status);
  let checked = 0;
  for (const region of regions) {
    for (let i = region.from; i < region.to; i += stride) {
      const q = original.slice();
      q[i]! ^= 0xff;
      const code = codeOf(() => verifyQuote(q, collateral, { trustAnchorDer: anchor, now: v.verify_at }));
      if (code === 'no error' || code === 'INTERNAL') throw new Error(`${region.name}: byte ${i} flipped → ${code}`);
      checked++;
    }
  }
  expect(checked).toBeGreaterThan(0);
}

describe('flipping any byte of a quote\'s signed regions is rejected (every byte)', () => {
  it('TDX v4 (tdx_v4): every byte of header, TD report, signatures, attestation key, QE report, QE auth data', () => {
    flipEveryByte('dcapqvl_tdx_v4', tdxRegions(632, 32));
  });
  it('TDX v5 / TD 1.5 (tdx_v5_outdated): every flip is caught before TCB matching', () => {
    // This genuine quote fails only at TCB matching (TCB_LEVEL_NOT_FOUND); a flip in a signed
    // region must turn that into a signature or structure error, never acceptance.
    const v = expectedVector('dcapqvl_tdx_v5_outdated');
    const original = vectorQuote(v.quote_file);
    const collateral = vectorCollateral(v.collateral_file);
    const anchor = INTEL_ROOT();
    // Every byte of the v5-specific parts (body descriptor, TEE_TCB_SVN2, MRSERVICETD), every 3rd elsewhere.
    const regions = [{ name: 'v5 descriptor and TD 1.5 fields', from: 48, to: 54 }, { name: 'TD 1.5 fields', from: 638, to: 702 }];
    const sparse = tdxRegions(702, 32);
    for (const [region, stride] of [...regions.map((r) => [r, 1] as const), ...sparse.map((r) => [r, 3] as const)]) {
      for (let i = region.from; i < region.to; i += stride) {
        const q = original.slice();
        q[i]! ^= 0xff;
        const code = codeOf(() => verifyQuote(q, collateral, { trustAnchorDer: anchor, now: v.verify_at }));
        if (code === 'no error' || code === 'INTERNAL' || code === 'TCB_LEVEL_NOT_FOUND') {
          throw new Error(`${region.name}: byte ${i} flipped → ${code}`);
        }
      }
    }
  });
  it('SGX v3 (sgx_v3): every 3rd byte of each region', () => {
    flipEveryByte('dcapqvl_sgx_v3', SGX_REGIONS, 3);
  });
});

type TextField = 'tcbInfo' | 'qeIdentity';

function mutateChar(text: string, i: number): string {
  const c = text[i]!;
  let r: string;
  if (/[0-9]/.test(c)) r = String((Number(c) + 1) % 10);
  else if (/[a-z]/.test(c)) r = c.toUpperCase();
  else if (/[A-Z]/.test(c)) r = c.toLowerCase();
  else r = c === ' ' ? '\t' : ' ';
  return text.slice(0, i) + r + text.slice(i + 1);
}

/** Positions: every `stride`-th character plus every character of values an attacker would edit. */
function positions(text: string, stride: number, valueStride: number): number[] {
  const set = new Set<number>();
  for (let i = 0; i < text.length; i += stride) set.add(i);
  for (const m of text.matchAll(/"(tcbStatus|pcesvn|isvsvn|nextUpdate|issueDate|fmspc|mrsigner|isvprodid)":("?[^,}"]*"?)/g)) {
    const start = (m.index ?? 0) + m[0].length - m[2]!.length;
    for (let i = start; i < start + m[2]!.length; i += valueStride) set.add(i);
  }
  return [...set].sort((a, b) => a - b);
}

function tamperCollateral(id: string, field: TextField, stride: number, valueStride: number): number {
  const v = expectedVector(id);
  const quote = vectorQuote(v.quote_file);
  const original = vectorCollateral(v.collateral_file);
  const anchor = INTEL_ROOT();
  const text = original[field];
  let checked = 0;
  for (const i of positions(text, stride, valueStride)) {
    const c: QuoteCollateral = { ...original, [field]: mutateChar(text, i) };
    const code = codeOf(() => verifyQuote(quote, c, { trustAnchorDer: anchor, now: v.verify_at }));
    const want = field === 'tcbInfo' ? 'TCB_INFO_SIGNATURE_INVALID' : 'QE_IDENTITY_SIGNATURE_INVALID';
    if (code !== want) throw new Error(`${field}[${i}] changed → ${code}`);
    checked++;
  }
  return checked;
}

describe('changing one character of the collateral\'s signed JSON is rejected', () => {
  it('tdx_v4 tcb_info', () => {
    expect(tamperCollateral('dcapqvl_tdx_v4', 'tcbInfo', 29, 2)).toBeGreaterThan(200);
  });
  it('tdx_v4 qe_identity', () => {
    expect(tamperCollateral('dcapqvl_tdx_v4', 'qeIdentity', 4, 1)).toBeGreaterThan(150);
  });
  it('sgx_v3 tcb_info', () => {
    expect(tamperCollateral('dcapqvl_sgx_v3', 'tcbInfo', 53, 3)).toBeGreaterThan(100);
  });
});

describe('changing the collateral signatures or CRLs is rejected', () => {
  const v = expectedVector('dcapqvl_tdx_v4');
  const quote = vectorQuote(v.quote_file);
  const original = vectorCollateral(v.collateral_file);
  const run = (c: QuoteCollateral): VerifierErrorCode | 'no error' =>
    codeOf(() => verifyQuote(quote, c, { trustAnchorDer: INTEL_ROOT(), now: v.verify_at }));
  it('every 4th byte of both collateral signatures (r and s)', () => {
    for (const field of ['tcbInfoSignature', 'qeIdentitySignature'] as const) {
      for (let i = 0; i < 64; i += 4) {
        const sig = original[field].slice();
        sig[i]! ^= 0x01;
        const code = run({ ...original, [field]: sig });
        expect(code).toBe(field === 'tcbInfoSignature' ? 'TCB_INFO_SIGNATURE_INVALID' : 'QE_IDENTITY_SIGNATURE_INVALID');
      }
    }
  });
  it('every 17th byte of the root CA CRL and of the PCK CRL', () => {
    for (const field of ['rootCaCrl', 'pckCrl'] as const) {
      for (let i = 0; i < original[field].length; i += 17) {
        const crl = original[field].slice();
        crl[i]! ^= 0x01;
        const code = run({ ...original, [field]: crl });
        if (code === 'no error' || code === 'INTERNAL') throw new Error(`${field}[${i}] → ${code}`);
      }
    }
  });
});
