// Report attribute policy (reference §3.3 step 2, §5.1 step 12): a TD must not be debuggable, must
// have no reserved TDATTRIBUTES bit set, must have SEPT_VE_DISABLE, must run an Intel-signed TDX
// module (MRSIGNERSEAM zero) and, for TD 1.5, no service TD (MRSERVICETD zero). SGX: no debug.

import { isAllZero } from '../bytes.ts';
import { ensure } from '../errors.ts';
import type { QuoteReport } from '../quote.ts';

export interface AttributeOptions {
  /** Accept a debug TD/enclave. Its memory is readable by the host: never for production. */
  readonly dangerouslyAllowDebug?: boolean;
}

/** TDATTRIBUTES bits (Intel TDX module ABI; reference §4.2). */
const DEBUG_BIT = 0n;
const SEPT_VE_DISABLE_BIT = 28n;
/** Bits 1-27, 29 and 32-62 are reserved; 30 (PKS), 31 (KL) and 63 (PERFMON) are features. */
const RESERVED_MASK = (((1n << 28n) - 1n) & ~1n) | (1n << 29n) | (((1n << 63n) - 1n) & ~((1n << 32n) - 1n));

function le64(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  return v;
}

export function checkReportAttributes(report: QuoteReport, options: AttributeOptions = {}): void {
  const allowDebug = options.dangerouslyAllowDebug === true;
  if (report.type === 'sgx') {
    ensure(allowDebug || (report.sgx.attributes[0]! & 0x02) === 0, 'POLICY_DEBUG');
    return;
  }
  const td = report.td;
  const attrs = le64(td.tdAttributes);
  ensure(allowDebug || ((attrs >> DEBUG_BIT) & 1n) === 0n, 'POLICY_DEBUG');
  ensure((attrs & RESERVED_MASK) === 0n, 'POLICY_TD_ATTRIBUTES', 'reserved bit set');
  ensure(((attrs >> SEPT_VE_DISABLE_BIT) & 1n) === 1n, 'POLICY_TD_ATTRIBUTES', 'SEPT_VE_DISABLE not set');
  ensure(isAllZero(td.mrSignerSeam), 'POLICY_SEAM_SIGNER');
  if (report.type === 'td15') ensure(isAllZero(report.td.mrServiceTd), 'POLICY_SERVICE_TD');
}
