// Intel TCB Info (v3, SGX and TDX) and QE/TD_QE Identity (v2) documents, reference §5.2. Parsed from
// the exact signed JSON text only after the signature has been verified; every field is checked for
// type, size and range, and list lengths are bounded.

import { VerifierError } from '../errors.ts';
import {
  asArray,
  asObject,
  getHex,
  getInteger,
  getString,
  parseJsonText,
  parseUtcDate,
  type JsonObject,
} from '../json.ts';

const CODE = 'COLLATERAL_MALFORMED';
const MAX_LEVELS = 256;
const MAX_ADVISORIES = 256;
const MAX_JSON = 256 * 1024;

/** TCB statuses Intel defines for TCB levels, in increasing severity (reference §5.1 step 11). */
export const TCB_STATUSES = [
  'UpToDate',
  'SWHardeningNeeded',
  'ConfigurationNeeded',
  'ConfigurationAndSWHardeningNeeded',
  'OutOfDate',
  'OutOfDateConfigurationNeeded',
  'Revoked',
] as const;
export type TcbStatus = (typeof TCB_STATUSES)[number];

export function isTcbStatus(s: unknown): s is TcbStatus {
  return typeof s === 'string' && (TCB_STATUSES as readonly string[]).includes(s);
}

export interface PlatformTcbLevel {
  readonly sgxComponents: readonly number[]; // 16 SVNs
  readonly pceSvn: number;
  /** Present in TDX TCB info: 16 SVNs compared with TEE_TCB_SVN. */
  readonly tdxComponents: readonly number[] | undefined;
  readonly tcbStatus: string;
  readonly advisoryIds: readonly string[];
}

export interface IsvTcbLevel {
  readonly isvSvn: number;
  readonly tcbStatus: string;
  readonly advisoryIds: readonly string[];
}

export interface TdxModule {
  readonly mrSigner: Uint8Array; // 48
  readonly attributes: Uint8Array; // 8
  readonly attributesMask: Uint8Array; // 8
}

export interface TdxModuleIdentity extends TdxModule {
  readonly id: string;
  readonly tcbLevels: readonly IsvTcbLevel[];
}

export interface TcbInfo {
  readonly id: string;
  readonly version: number;
  readonly issueDate: number;
  readonly nextUpdate: number;
  readonly fmspc: Uint8Array;
  readonly pceId: Uint8Array;
  readonly tcbType: number;
  readonly tcbEvaluationDataNumber: number;
  readonly tdxModule: TdxModule | undefined;
  readonly tdxModuleIdentities: readonly TdxModuleIdentity[];
  readonly tcbLevels: readonly PlatformTcbLevel[];
}

export interface QeIdentity {
  readonly id: string;
  readonly version: number;
  readonly issueDate: number;
  readonly nextUpdate: number;
  readonly tcbEvaluationDataNumber: number;
  readonly miscselect: number;
  readonly miscselectMask: number;
  readonly attributes: Uint8Array; // 16
  readonly attributesMask: Uint8Array; // 16
  readonly mrSigner: Uint8Array; // 32
  readonly isvProdId: number;
  readonly tcbLevels: readonly IsvTcbLevel[];
}

function advisories(o: JsonObject): string[] {
  const v = o['advisoryIDs'];
  if (v === undefined) return [];
  return asArray(v, CODE, 'advisoryIDs', MAX_ADVISORIES).map((a) => {
    if (typeof a !== 'string' || a.length === 0 || a.length > 64) throw new VerifierError(CODE, 'advisory id');
    return a;
  });
}

function svnList(v: unknown, what: string): number[] {
  const list = asArray(v, CODE, what, 16);
  if (list.length !== 16) throw new VerifierError(CODE, `${what}: expected 16 components`);
  return list.map((c) => getInteger(asObject(c, CODE, what), 'svn', CODE, 0, 255));
}

function isvLevels(v: unknown): IsvTcbLevel[] {
  const list = asArray(v, CODE, 'tcbLevels', MAX_LEVELS);
  if (list.length === 0) throw new VerifierError(CODE, 'empty tcbLevels');
  return list.map((item) => {
    const level = asObject(item, CODE, 'tcbLevel');
    const tcb = asObject(level['tcb'], CODE, 'tcb');
    return {
      isvSvn: getInteger(tcb, 'isvsvn', CODE, 0, 0xffff),
      tcbStatus: getString(level, 'tcbStatus', CODE, 64),
      advisoryIds: advisories(level),
    };
  });
}

function tdxModule(v: unknown): TdxModule {
  const o = asObject(v, CODE, 'tdxModule');
  return {
    mrSigner: getHex(o, 'mrsigner', CODE, 48),
    attributes: getHex(o, 'attributes', CODE, 8),
    attributesMask: getHex(o, 'attributesMask', CODE, 8),
  };
}

/** Parses the signed `tcbInfo` JSON text. */
export function parseTcbInfo(text: string): TcbInfo {
  const o = asObject(parseJsonText(text, CODE, MAX_JSON), CODE, 'tcbInfo');
  const levels = asArray(o['tcbLevels'], CODE, 'tcbLevels', MAX_LEVELS);
  if (levels.length === 0) throw new VerifierError(CODE, 'empty tcbLevels');
  const tcbLevels = levels.map((item): PlatformTcbLevel => {
    const level = asObject(item, CODE, 'tcbLevel');
    const tcb = asObject(level['tcb'], CODE, 'tcb');
    const tdx = tcb['tdxtcbcomponents'];
    return {
      sgxComponents: svnList(tcb['sgxtcbcomponents'], 'sgxtcbcomponents'),
      pceSvn: getInteger(tcb, 'pcesvn', CODE, 0, 0xffff),
      tdxComponents: tdx === undefined ? undefined : svnList(tdx, 'tdxtcbcomponents'),
      tcbStatus: getString(level, 'tcbStatus', CODE, 64),
      advisoryIds: advisories(level),
    };
  });
  const identities = o['tdxModuleIdentities'];
  return {
    id: getString(o, 'id', CODE, 16),
    version: getInteger(o, 'version', CODE, 0, 255),
    issueDate: parseUtcDate(getString(o, 'issueDate', CODE, 64), CODE),
    nextUpdate: parseUtcDate(getString(o, 'nextUpdate', CODE, 64), CODE),
    fmspc: getHex(o, 'fmspc', CODE, 6),
    pceId: getHex(o, 'pceId', CODE, 2),
    tcbType: getInteger(o, 'tcbType', CODE, 0, 255),
    tcbEvaluationDataNumber: getInteger(o, 'tcbEvaluationDataNumber', CODE, 0, 0xffffffff),
    tdxModule: o['tdxModule'] === undefined ? undefined : tdxModule(o['tdxModule']),
    tdxModuleIdentities:
      identities === undefined
        ? []
        : asArray(identities, CODE, 'tdxModuleIdentities', 64).map((item) => {
            const io = asObject(item, CODE, 'tdxModuleIdentity');
            return { ...tdxModule(io), id: getString(io, 'id', CODE, 32), tcbLevels: isvLevels(io['tcbLevels']) };
          }),
    tcbLevels,
  };
}

/** Parses the signed `enclaveIdentity` JSON text. */
export function parseQeIdentity(text: string): QeIdentity {
  const o = asObject(parseJsonText(text, CODE, MAX_JSON), CODE, 'enclaveIdentity');
  const u32 = (key: string): number => {
    const b = getHex(o, key, CODE, 4);
    // Intel writes miscselect as big-endian hex of the 32-bit value.
    return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  };
  return {
    id: getString(o, 'id', CODE, 16),
    version: getInteger(o, 'version', CODE, 0, 255),
    issueDate: parseUtcDate(getString(o, 'issueDate', CODE, 64), CODE),
    nextUpdate: parseUtcDate(getString(o, 'nextUpdate', CODE, 64), CODE),
    tcbEvaluationDataNumber: getInteger(o, 'tcbEvaluationDataNumber', CODE, 0, 0xffffffff),
    miscselect: u32('miscselect'),
    miscselectMask: u32('miscselectMask'),
    attributes: getHex(o, 'attributes', CODE, 16),
    attributesMask: getHex(o, 'attributesMask', CODE, 16),
    mrSigner: getHex(o, 'mrsigner', CODE, 32),
    isvProdId: getInteger(o, 'isvprodid', CODE, 0, 0xffff),
    tcbLevels: isvLevels(o['tcbLevels']),
  };
}
