// Structured command-line values for the `openkey` CLI: usage rules for `policy grant` and
// `policy owner-rule` (operation lists, caps and rates such as "2/day", ISO instants, EIP-712
// allowlists), audit anchors, and the error that means "bad invocation" (exit code 2, usage shown).
// Values are checked strictly here; the appliance validates the rule again (core/policy.ts).

import type { MessageInitShape } from '@bufbuild/protobuf';
import { SignOperation, type UsageRuleSchema } from '../../../proto/gen/openkey/v1/policy_pb.ts';

/** A bad invocation: printed with the usage text, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function usage(msg: string): never {
  throw new UsageError(msg);
}

/** Operation names as the policy engine and the audit log spell them. */
export const OPERATION_NAMES: readonly (readonly [string, SignOperation])[] = [
  ['personal_sign', SignOperation.PERSONAL_SIGN],
  ['eip712', SignOperation.EIP712],
  ['raw_digest', SignOperation.RAW_DIGEST],
  ['ed25519', SignOperation.ED25519],
];

const PERIODS: Readonly<Record<string, number>> = { second: 1_000, minute: 60_000, hour: 3_600_000, day: 86_400_000 };
const POSITIVE_INT_RE = /^[1-9][0-9]{0,15}$/;
const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/;
// A calendar date (UTC midnight), or a date-time with an explicit zone: no local-time guessing.
const ISO_RE = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

export function positiveInt(s: string, label: string): number {
  const n = POSITIVE_INT_RE.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n)) usage(`${label} must be a positive integer, got ${JSON.stringify(s)}`);
  return n;
}

/** "day", "hour", "minute", "second" or "<n>ms", in milliseconds. */
export function period(s: string, label: string): number {
  const named = PERIODS[s];
  if (named !== undefined) return named;
  const m = /^([0-9]+)ms$/.exec(s);
  if (m?.[1] !== undefined) return positiveInt(m[1], label);
  return usage(`${label}: period must be day, hour, minute, second or <n>ms, got ${JSON.stringify(s)}`);
}

/** "N/period" as a count and a period in milliseconds. */
function perPeriod(s: string, label: string): { readonly n: number; readonly ms: number } {
  const slash = s.indexOf('/');
  if (slash < 0) usage(`${label} looks like N/day, N/hour or N/<ms>ms, got ${JSON.stringify(s)}`);
  return { n: positiveInt(s.slice(0, slash), label), ms: period(s.slice(slash + 1), label) };
}

/** An ISO 8601 date ("2026-01-31", UTC midnight) or date-time with a zone, in ms since the epoch. */
export function instant(s: string, label: string): number {
  const t = ISO_RE.test(s) ? Date.parse(s) : NaN;
  if (!Number.isSafeInteger(t) || t < 0) usage(`${label} must be an ISO date or a date-time with a zone (e.g. 2026-01-31T12:00:00Z), got ${JSON.stringify(s)}`);
  return t;
}

/** Comma-separated operation names, e.g. "personal_sign,eip712". */
export function operations(s: string): SignOperation[] {
  const names = s.split(',').map((x) => x.trim());
  return names.map(
    (name) =>
      OPERATION_NAMES.find(([n]) => n === name)?.[1] ??
      usage(`--ops: unknown operation ${JSON.stringify(name)} (use ${OPERATION_NAMES.map(([n]) => n).join(', ')})`),
  );
}

/** A chain id in decimal or 0x-hex, as the decimal string the wire carries. */
export function chainId(s: string): string {
  if (/^[0-9]{1,78}$/.test(s)) return BigInt(s).toString(10);
  if (/^0x[0-9a-fA-F]{1,64}$/.test(s)) return BigInt(s).toString(10);
  return usage(`--chain-id must be a decimal or 0x-hex integer, got ${JSON.stringify(s)}`);
}

/** The rule options of `policy grant` and `policy owner-rule`. */
export interface RuleArgs {
  readonly ops?: string | undefined;
  readonly 'chain-id'?: string[] | undefined;
  readonly contract?: string[] | undefined;
  readonly 'primary-type'?: string[] | undefined;
  readonly 'max-message-bytes'?: string | undefined;
  readonly cap?: string[] | undefined;
  readonly rate?: string | undefined;
  readonly 'not-before'?: string | undefined;
  readonly 'not-after'?: string | undefined;
  readonly 'require-approval'?: boolean | undefined;
}

const RULE_OPTIONS = ['ops', 'chain-id', 'contract', 'primary-type', 'max-message-bytes', 'cap', 'rate', 'not-before', 'not-after', 'require-approval'] as const;

/** Whether any rule option was given (so `--clear` can refuse to be combined with them). */
export function hasRuleArgs(a: RuleArgs): boolean {
  return RULE_OPTIONS.some((o) => a[o] !== undefined);
}

/** The wire UsageRule the options describe; `--ops` is required. */
export function usageRuleFromArgs(a: RuleArgs): MessageInitShape<typeof UsageRuleSchema> {
  if (a.ops === undefined) usage('--ops is required (e.g. --ops personal_sign,eip712)');
  const chainIds = (a['chain-id'] ?? []).map(chainId);
  const verifyingContracts = (a.contract ?? []).map((c) => (ADDRESS_RE.test(c) ? c : usage(`--contract must be a 0x-prefixed 20-byte address, got ${JSON.stringify(c)}`)));
  const primaryTypes = (a['primary-type'] ?? []).map((t) => (t !== '' ? t : usage('--primary-type must not be empty')));
  const eip712 = chainIds.length + verifyingContracts.length + primaryTypes.length > 0 ? { chainIds, verifyingContracts, primaryTypes } : undefined;
  const rate = a.rate === undefined ? undefined : perPeriod(a.rate, '--rate');
  return {
    operations: operations(a.ops),
    ...(eip712 === undefined ? {} : { eip712 }),
    maxMessageBytes: BigInt(a['max-message-bytes'] === undefined ? 0 : positiveInt(a['max-message-bytes'], '--max-message-bytes')),
    // A bucket of N that refills N per period: N per period on average, bursts of up to N.
    ...(rate === undefined ? {} : { rateLimit: { capacity: rate.n, refillTokens: rate.n, refillPeriodMs: BigInt(rate.ms) } }),
    caps: (a.cap ?? []).map((c) => {
      const { n, ms } = perPeriod(c, '--cap');
      return { limit: BigInt(n), windowMs: BigInt(ms) };
    }),
    notBeforeMs: BigInt(a['not-before'] === undefined ? 0 : instant(a['not-before'], '--not-before')),
    notAfterMs: BigInt(a['not-after'] === undefined ? 0 : instant(a['not-after'], '--not-after')),
    requireApproval: a['require-approval'] ?? false,
  };
}
