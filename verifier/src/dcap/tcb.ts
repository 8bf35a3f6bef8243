// TCB evaluation (reference §5.1 steps 7, 9, 10, 11): the QE's TCB level from the QE identity, the
// platform's level from TCB info (PCK CPUSVN/PCESVN and, for TDX, TEE_TCB_SVN), the TDX module's
// identity and level, and the convergence of the three statuses into one, with advisory ids unioned.

import { bytesEqual, toHex } from '../bytes.ts';
import { VerifierError, ensure } from '../errors.ts';
import type { PckExtension } from '../asn1/pck.ts';
import type { EnclaveReport, TdReport10 } from '../quote.ts';
import {
  isTcbStatus,
  type IsvTcbLevel,
  type PlatformTcbLevel,
  type QeIdentity,
  type TcbInfo,
  type TcbStatus,
  type TdxModule,
} from './tcb-info.ts';

/** Lexicographic comparison of two SVN vectors. */
function compareVectors(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/**
 * Intel's level order, highest first: SGX components, then PCESVN, then TDX components (this is
 * the order Intel's QVL iterates its level set in; Intel also serves the JSON in it). Stable.
 */
function sortPlatformLevels(levels: readonly PlatformTcbLevel[]): PlatformTcbLevel[] {
  return [...levels].sort(
    (a, b) =>
      compareVectors(b.sgxComponents, a.sgxComponents) ||
      b.pceSvn - a.pceSvn ||
      compareVectors(b.tdxComponents ?? [], a.tdxComponents ?? []),
  );
}

function sortIsvLevels(levels: readonly IsvTcbLevel[]): IsvTcbLevel[] {
  return [...levels].sort((a, b) => b.isvSvn - a.isvSvn);
}

/** Step 7: the QE report against the QE identity, then the QE's TCB level. */
export function matchQeIdentity(identity: QeIdentity, qe: EnclaveReport): IsvTcbLevel {
  ensure(bytesEqual(qe.mrSigner, identity.mrSigner), 'QE_IDENTITY_MISMATCH', 'mrsigner');
  ensure(qe.isvProdId === identity.isvProdId, 'QE_IDENTITY_MISMATCH', 'isvprodid');
  ensure(
    ((qe.miscSelect & identity.miscselectMask) >>> 0) === ((identity.miscselect & identity.miscselectMask) >>> 0),
    'QE_IDENTITY_MISMATCH',
    'miscselect',
  );
  for (let i = 0; i < 16; i++) {
    const m = identity.attributesMask[i]!;
    ensure((qe.attributes[i]! & m) === (identity.attributes[i]! & m), 'QE_IDENTITY_MISMATCH', 'attributes');
  }
  // A debug QE would sign anything; the masked comparison already excludes it for Intel's
  // identities, and this holds regardless of what a collateral's mask says.
  ensure((qe.attributes[0]! & 0x02) === 0, 'QE_IDENTITY_MISMATCH', 'debug QE');
  const level = sortIsvLevels(identity.tcbLevels).find((l) => l.isvSvn <= qe.isvSvn);
  ensure(level !== undefined, 'QE_TCB_LEVEL_NOT_FOUND');
  return level;
}

/**
 * Step 9: the first platform level (highest first) whose SGX components and PCESVN are all at or
 * below the PCK's, and, for TDX, whose TDX components are at or below TEE_TCB_SVN. When
 * TEE_TCB_SVN[1] (the TDX module major version) is non-zero, components 0 and 1 belong to the
 * module and are judged by the module identity instead (Intel QVL `isTdxTcbHigherOrEqual`).
 */
export function matchPlatformLevel(info: TcbInfo, pck: PckExtension, teeTcbSvn: Uint8Array | undefined): PlatformTcbLevel {
  for (const level of sortPlatformLevels(info.tcbLevels)) {
    if (pck.pceSvn < level.pceSvn) continue;
    if (pck.cpuSvnComponents.some((svn, i) => svn < level.sgxComponents[i]!)) continue;
    if (teeTcbSvn !== undefined) {
      const tdx = level.tdxComponents;
      if (tdx === undefined) throw new VerifierError('COLLATERAL_MALFORMED', 'TDX level without tdxtcbcomponents');
      const start = teeTcbSvn[1]! > 0 ? 2 : 0;
      let lower = false;
      for (let i = start; i < 16; i++) if (teeTcbSvn[i]! < tdx[i]!) lower = true;
      if (lower) continue;
    }
    return level;
  }
  throw new VerifierError('TCB_LEVEL_NOT_FOUND');
}

/**
 * Step 10: the TDX module. TEE_TCB_SVN[1] selects `tdxModuleIdentities["TDX_%02X"]` (or the base
 * `tdxModule` when it is 0); MRSIGNERSEAM and the masked SEAMATTRIBUTES must match, and the
 * module's level is the first with isvsvn ≤ TEE_TCB_SVN[0]. Returns undefined when no level applies
 * (base module entry).
 */
export function matchTdxModule(info: TcbInfo, td: TdReport10): IsvTcbLevel | undefined {
  const base = info.tdxModule;
  ensure(base !== undefined, 'TCB_INFO_UNSUPPORTED', 'TDX TCB info without tdxModule');
  const minor = td.teeTcbSvn[0]!;
  const major = td.teeTcbSvn[1]!;
  let identity: TdxModule = base;
  let levels: readonly IsvTcbLevel[] | undefined;
  if (major > 0 && info.tdxModuleIdentities.length > 0) {
    const id = `TDX_${toHex(new Uint8Array([major])).toUpperCase()}`;
    const found = info.tdxModuleIdentities.find((m) => m.id.toUpperCase() === id);
    ensure(found !== undefined, 'TDX_MODULE_MISMATCH', `no identity ${id}`);
    identity = found;
    levels = found.tcbLevels;
  }
  ensure(bytesEqual(td.mrSignerSeam, identity.mrSigner), 'TDX_MODULE_MISMATCH', 'MRSIGNERSEAM');
  for (let i = 0; i < 8; i++) {
    const m = identity.attributesMask[i]!;
    ensure((td.seamAttributes[i]! & m) === (identity.attributes[i]! & m), 'TDX_MODULE_MISMATCH', 'SEAMATTRIBUTES');
  }
  if (levels === undefined) return undefined;
  const level = sortIsvLevels(levels).find((l) => l.isvSvn <= minor);
  ensure(level !== undefined, 'TDX_MODULE_TCB_LEVEL_NOT_FOUND');
  return level;
}

type Flag = 'sw' | 'cfg' | 'ood' | 'revoked';
const FLAGS: Readonly<Record<TcbStatus, readonly Flag[]>> = {
  UpToDate: [],
  SWHardeningNeeded: ['sw'],
  ConfigurationNeeded: ['cfg'],
  ConfigurationAndSWHardeningNeeded: ['cfg', 'sw'],
  OutOfDate: ['ood'],
  OutOfDateConfigurationNeeded: ['ood', 'cfg'],
  Revoked: ['revoked'],
};

export function toTcbStatus(s: string): TcbStatus {
  if (!isTcbStatus(s)) throw new VerifierError('TCB_STATUS_UNKNOWN', s);
  return s;
}

/**
 * Step 11: combines statuses as sets of conditions (out of date, configuration needed, software
 * hardening needed, revoked), which reproduces Intel's convergence rules: e.g. a platform needing
 * configuration with an out-of-date QE is OutOfDateConfigurationNeeded.
 */
export function convergeStatuses(statuses: readonly TcbStatus[]): TcbStatus {
  const f = new Set<Flag>(statuses.flatMap((s) => FLAGS[s]));
  if (f.has('revoked')) return 'Revoked';
  if (f.has('ood')) return f.has('cfg') ? 'OutOfDateConfigurationNeeded' : 'OutOfDate';
  if (f.has('cfg')) return f.has('sw') ? 'ConfigurationAndSWHardeningNeeded' : 'ConfigurationNeeded';
  return f.has('sw') ? 'SWHardeningNeeded' : 'UpToDate';
}

export function unionAdvisories(lists: readonly (readonly string[])[]): string[] {
  const out: string[] = [];
  for (const list of lists) for (const a of list) if (!out.includes(a)) out.push(a);
  return out;
}
