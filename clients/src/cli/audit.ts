// Audit log export and verification for the `openkey` CLI. `exportAuditLog` pages through
// ExportAudit (at most MAX_AUDIT_EXPORT records a call) and joins the pages into ONE export under the
// last page's signed head — the form `encodeAuditExport` writes and `verifyAuditExport` checks. The
// verifier itself is the appliance's pure one (server/src/core/audit.ts), so the CLI and the
// appliance's own tests judge exports by the same code; this module only words its verdict.

import type { Client } from '@connectrpc/connect';
import {
  AUDIT_EXPORT_VERSION,
  MAX_AUDIT_EXPORT,
  decodeAuditExport,
  verifyAuditExport,
  type AuditBreakCode,
  type AuditExport,
  type AuditVerification,
} from '../../../server/src/core/audit.ts';
import { isOpenKeyError } from '../../../server/src/core/errors.ts';
import type { AuditHead, AuditRecord } from '../../../server/src/core/ports.ts';
import type { AuditService, ExportAuditResponse } from '../../../proto/gen/openkey/v1/audit_pb.ts';
import { fromHexArg } from './format.ts';
import { usage } from './args.ts';

/** Most pages one export fetches (10 million records): a server that never reaches its head stops here. */
const MAX_EXPORT_PAGES = 10_000;

/** Why an export failed to verify, for people; one line per stable code. */
export const AUDIT_BREAK_EXPLANATIONS: Readonly<Record<AuditBreakCode, string>> = {
  MALFORMED_EXPORT: 'the file is not a version-1 audit export, or a field has the wrong shape',
  HEAD_SIGNATURE_INVALID: 'the signed head does not verify under the identity key',
  SEQUENCE_BROKEN: 'a record is missing, duplicated or out of order here (records deleted or reordered)',
  RECORD_HASH_MISMATCH: "the record's contents do not give its hash (the record was edited)",
  CHAIN_LINK_BROKEN: "the record does not link to its predecessor's hash (the record before it was rewritten)",
  TRUNCATED: 'the records end before the record the signed head covers (records removed from the end)',
  HEAD_MISMATCH: "the last record's hash is not the one the identity key signed (the end of the log was rewritten)",
  ANCHOR_MISMATCH: 'a head you trusted earlier disagrees with the chain here (the log was rewritten)',
  ROLLED_BACK: 'the log is shorter than a head you trusted earlier (the log was rolled back)',
};

/** An exact JS number from a uint64; beyond 2^53 it stays inexact, and the verifier rejects it as malformed. */
const num = (v: bigint): number => Number(v);

/** A wire export as the verifier's AuditExport, field for field; nothing is judged here. */
export function auditExportFromWire(res: ExportAuditResponse): AuditExport {
  const h = res.head;
  return {
    version: res.version,
    from: num(res.from),
    records: res.records.map(
      (r): AuditRecord => ({
        seq: num(r.seq),
        time: num(r.timeMs),
        principal: r.principal,
        operation: r.operation,
        keyId: r.keyId,
        requestDigest: r.requestDigest,
        decision: r.decision as AuditRecord['decision'], // judged by the verifier
        reason: r.reason,
        prevHash: r.prevHash,
        hash: r.hash,
        // 0 is the wire's "absent": one decision, as a record without a count.
        ...(r.count === 0 ? {} : { count: r.count }),
      }),
    ),
    // A missing head is an empty one: its signature cannot verify.
    head: { seq: num(h?.seq ?? 0n), hash: h?.hash ?? new Uint8Array(0), logSeq: num(h?.logSeq ?? 0n), time: num(h?.timeMs ?? 0n), signature: h?.signature ?? new Uint8Array(0) },
  };
}

export interface AuditExportResult {
  readonly export: AuditExport;
  /** Pages that do not link to the page before (the verifier will name the seq too). */
  readonly warnings: readonly string[];
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Records [from, to] (to omitted: up to the head, which each call's own read record moves on), one
 * page of at most MAX_AUDIT_EXPORT records a call, as one export under the last page's signed head.
 * Each page's head covers only its own end, so consecutive pages are checked to link (the next
 * page's first prevHash is the previous page's last hash); a break is reported, not hidden, and the
 * records are kept as served so `audit verify` can name where the chain breaks.
 */
export async function exportAuditLog(audit: Client<typeof AuditService>, range: { readonly from: number; readonly to?: number }): Promise<AuditExportResult> {
  const records: AuditRecord[] = [];
  const warnings: string[] = [];
  let from = range.from;
  for (let page = 0; page < MAX_EXPORT_PAGES; page++) {
    const to = range.to === undefined ? undefined : Math.min(range.to, from + MAX_AUDIT_EXPORT - 1);
    const exp = auditExportFromWire(await audit.exportAudit({ from: BigInt(from), to: BigInt(to ?? 0) }));
    if (exp.version !== AUDIT_EXPORT_VERSION) throw new Error(`the appliance sent an audit export of version ${exp.version}; this CLI reads version ${AUDIT_EXPORT_VERSION}`);
    if (exp.from !== from) throw new Error(`asked for records from ${from}, the appliance sent records from ${exp.from}`);
    const last = records.at(-1);
    const first = exp.records[0];
    if (last !== undefined && first !== undefined && !sameBytes(first.prevHash, last.hash)) {
      warnings.push(`page starting at seq ${from} does not link to the record before it`);
    }
    records.push(...exp.records);
    const done = range.to === undefined ? exp.head.seq >= exp.head.logSeq : exp.head.seq >= range.to;
    if (done) return { export: { version: exp.version, from: range.from, records, head: exp.head }, warnings };
    // Nothing left to page but the head is not reached: the server is not following the protocol.
    if (exp.head.seq < from) throw new Error(`the appliance's export stopped at seq ${exp.head.seq} before the head ${exp.head.logSeq}`);
    from = exp.head.seq + 1;
  }
  throw new Error(`audit export of more than ${MAX_EXPORT_PAGES} pages; export it in ranges with --from and --to`);
}

export { encodeAuditExport } from '../../../server/src/core/audit.ts';

/** An export file's text judged by the verifier; text that is no export JSON at all is MALFORMED_EXPORT at seq 0. */
export function verifyAuditFile(text: string, identityPublicKey: Uint8Array, anchors: readonly AuditHead[]): AuditVerification {
  let exp: AuditExport;
  try {
    exp = decodeAuditExport(text);
  } catch (e) {
    if (!isOpenKeyError(e)) throw e; // decodeAuditExport reports bad text only as OpenKeyError
    return { ok: false, code: 'MALFORMED_EXPORT', seq: 0 };
  }
  return verifyAuditExport(exp, identityPublicKey, { anchors });
}

/** "SEQ:HASH" (hash 32 bytes of hex) as a trusted head for `verifyAuditExport`'s anchors. */
export function parseAnchor(s: string): AuditHead {
  const m = /^([0-9]{1,16}):((?:0x)?[0-9a-fA-F]{64})$/.exec(s);
  const seq = m?.[1] === undefined ? NaN : Number(m[1]);
  if (m?.[2] === undefined || !Number.isSafeInteger(seq)) return usage(`--anchor looks like SEQ:HASH (a 32-byte hex hash), got ${JSON.stringify(s)}`);
  return { seq, hash: fromHexArg(m[2], '--anchor') };
}

/**
 * The verdict in words: `VERIFIED: records F..T, head seq T signed at <ISO time>` plus the anchor to
 * keep for later checks, or `BROKEN at seq S: CODE — explanation`.
 */
export function describeAuditVerification(v: AuditVerification): string {
  if (!v.ok) return `BROKEN at seq ${v.seq}: ${v.code} — ${AUDIT_BREAK_EXPLANATIONS[v.code]}\n`;
  const when = new Date(v.time);
  const range = v.to >= v.from ? `records ${v.from}..${v.to}` : `no records (from ${v.from})`;
  return [
    `VERIFIED: ${range}, head seq ${v.to} signed at ${Number.isNaN(when.getTime()) ? `${v.time} ms` : when.toISOString()}`,
    `the log held ${v.logSeq} records when signed; keep --anchor ${v.to}:${Buffer.from(v.hash).toString('hex')} to catch a later rewrite or rollback`,
    '',
  ].join('\n');
}
