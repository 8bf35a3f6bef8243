// Intel's SGX extension in PCK certificates (OID 1.2.840.113741.1.13.1, reference §4.6): PPID, the
// TCB (16 SGX component SVNs, PCESVN, CPUSVN), PCE-ID, FMSPC and SGX type. Every item is checked for
// type and size, duplicates are rejected, and the required ones must all be present.

import { VerifierError } from '../errors.ts';
import { DerReader, TAG, derRoot, oidText, smallInteger } from './der.ts';
import { OID, type Certificate } from './x509.ts';

const CODE = 'PCK_EXTENSION_MALFORMED';
const SGX = OID.sgxExtensions;

export interface PckExtension {
  readonly ppid: Uint8Array; // 16 bytes
  /** The 16 SGX TCB component SVNs (.2.1 … .2.16). */
  readonly cpuSvnComponents: readonly number[];
  readonly pceSvn: number;
  readonly cpuSvn: Uint8Array; // 16 bytes (.2.18)
  readonly pceId: Uint8Array; // 2 bytes
  readonly fmspc: Uint8Array; // 6 bytes
  /** 0 standard, 1 scalable, 2 scalable with integrity. */
  readonly sgxType: number;
}

function octets(r: DerReader, length: number, what: string): Uint8Array {
  const el = r.expect(TAG.OCTET_STRING, what);
  if (el.content.length !== length) r.fail(`${what}: expected ${length} bytes`);
  return el.content;
}

function parseTcb(r: DerReader): { components: number[]; pceSvn: number; cpuSvn: Uint8Array } {
  const items = r.sequence('TCB');
  const components: (number | undefined)[] = new Array<number | undefined>(16).fill(undefined);
  let pceSvn: number | undefined;
  let cpuSvn: Uint8Array | undefined;
  while (!items.done) {
    const item = items.sequence('TCB item');
    const oid = oidText(item.expect(TAG.OID, 'TCB item id'), CODE);
    const prefix = `${SGX}.2.`;
    if (!oid.startsWith(prefix)) item.fail(`unexpected TCB item ${oid}`);
    const n = Number(oid.slice(prefix.length));
    if (n >= 1 && n <= 16) {
      if (components[n - 1] !== undefined) item.fail('duplicate TCB component');
      components[n - 1] = smallInteger(item.expect(TAG.INTEGER, 'component svn'), CODE, 255);
    } else if (n === 17) {
      if (pceSvn !== undefined) item.fail('duplicate PCESVN');
      pceSvn = smallInteger(item.expect(TAG.INTEGER, 'PCESVN'), CODE, 0xffff);
    } else if (n === 18) {
      if (cpuSvn !== undefined) item.fail('duplicate CPUSVN');
      cpuSvn = octets(item, 16, 'CPUSVN');
    } else {
      item.fail(`unexpected TCB item ${oid}`);
    }
    item.end('TCB item');
  }
  if (pceSvn === undefined || cpuSvn === undefined || components.some((c) => c === undefined)) {
    throw new VerifierError(CODE, 'incomplete TCB');
  }
  return { components: components.map((c) => c ?? 0), pceSvn, cpuSvn };
}

/** Parses the SGX extension of a PCK leaf certificate. */
export function parsePckExtension(cert: Certificate): PckExtension {
  const ext = cert.extensions.get(SGX);
  if (ext === undefined) throw new VerifierError(CODE, 'PCK certificate has no SGX extension');
  const root = new DerReader(derRoot(ext.value, TAG.SEQUENCE, CODE, 'SGX extensions').content, CODE, 1);
  let ppid: Uint8Array | undefined;
  let tcb: ReturnType<typeof parseTcb> | undefined;
  let pceId: Uint8Array | undefined;
  let fmspc: Uint8Array | undefined;
  let sgxType: number | undefined;
  const seen = new Set<string>();
  while (!root.done) {
    const item = root.sequence('SGX extension item');
    const oid = oidText(item.expect(TAG.OID, 'item id'), CODE);
    if (seen.has(oid)) item.fail(`duplicate item ${oid}`);
    seen.add(oid);
    switch (oid) {
      case `${SGX}.1`:
        ppid = octets(item, 16, 'PPID');
        break;
      case `${SGX}.2`:
        tcb = parseTcb(item);
        break;
      case `${SGX}.3`:
        pceId = octets(item, 2, 'PCE-ID');
        break;
      case `${SGX}.4`:
        fmspc = octets(item, 6, 'FMSPC');
        break;
      case `${SGX}.5`:
        sgxType = smallInteger(item.expect(TAG.ENUMERATED, 'SGX type'), CODE, 255);
        break;
      default:
        // .6 PlatformInstanceID, .7 Configuration (multi-package platforms) and future items are
        // informational for verification; skip their value.
        item.any();
    }
    item.end('SGX extension item');
  }
  if (ppid === undefined || tcb === undefined || pceId === undefined || fmspc === undefined || sgxType === undefined) {
    throw new VerifierError(CODE, 'SGX extension is missing a required item');
  }
  return { ppid, cpuSvnComponents: tcb.components, pceSvn: tcb.pceSvn, cpuSvn: tcb.cpuSvn, pceId, fmspc, sgxType };
}
