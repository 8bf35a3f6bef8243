// Per-key policy (issue 4 item 3): the decision matrix (operation × principal kind × constraint →
// allow/deny + reason) as one table, the single client-facing denial error, policy validation, and
// caps and rate limits enforced through a real LevelDB store: across a restart, under 50 concurrent
// requests, and against an injected clock.

import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openLevelStore } from '../adapters/level-store.ts';
import { commitAudited } from './audit.ts';
import { createEip712Hasher } from './crypto/eip712.ts';
import { isOpenKeyError, type ErrorCode } from './errors.ts';
import {
  capCounterId,
  checkKeyPolicy,
  denialError,
  evaluatePolicy,
  rateBucketId,
  SIGN_OPERATIONS,
  PRINCIPAL_KINDS,
  type KeyGrant,
  type KeyPolicy,
  type PolicyKey,
  type PolicyReason,
  type PolicyRequest,
  type PrincipalKind,
  type PrincipalRef,
  type SignOperation,
  type Standing,
  type UsageRule,
} from './policy.ts';
import type { Store } from './ports.ts';

const root = await mkdtemp(join(tmpdir(), 'openkey-policy-'));
let dirs = 0;
const freshDir = (): string => join(root, `db${++dirs}`);
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const NOW = Date.UTC(2025, 5, 1, 12, 0, 0);
const DAY = 86_400_000;
const sha256 = (s: string): Uint8Array => new Uint8Array(createHash('sha256').update(s).digest());
const DIGEST = sha256('the canonical request');

const OWNER = 'svc_owner';
const keys = {
  secp: { keyId: 'key_secp', owner: OWNER, algorithm: 'secp256k1', rawDigestSigning: false },
  secpRaw: { keyId: 'key_raw', owner: OWNER, algorithm: 'secp256k1', rawDigestSigning: true },
  ed: { keyId: 'key_ed', owner: OWNER, algorithm: 'ed25519', rawDigestSigning: false },
} as const satisfies Record<string, PolicyKey>;
type KeyName = keyof typeof keys;
const keyFor = (op: SignOperation): KeyName => (op === 'ed25519' ? 'ed' : op === 'raw_digest' ? 'secpRaw' : 'secp');
const who = (kind: PrincipalKind): PrincipalRef => ({ kind, id: `${kind}_1` });
const owner: PrincipalRef = { kind: 'service', id: OWNER };

// The EIP-712 specification's example addresses (valid EIP-55 checksums).
const CONTRACT = '0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC';
const OTHER_CONTRACT = '0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB';
const hasher = createEip712Hasher();
function permit(domain: Record<string, unknown>, primaryType = 'Permit'): ReturnType<typeof hasher.hash> {
  const domainType = [
    { name: 'name', type: 'string' },
    ...('chainId' in domain ? [{ name: 'chainId', type: 'uint256' }] : []),
    { name: 'verifyingContract', type: 'address' },
  ];
  const fields = [
    { name: 'owner', type: 'address' },
    { name: 'value', type: 'uint256' },
  ];
  return hasher.hash(
    JSON.stringify({
      types: { EIP712Domain: domainType, Permit: fields, Transfer: fields },
      primaryType,
      domain: { name: 'Token', verifyingContract: CONTRACT, ...domain },
      message: { owner: '0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826', value: '1' },
    }),
  );
}
const mainnetPermit = permit({ chainId: 1 });

// ---- The matrix -----------------------------------------------------------------------------------

interface Row {
  readonly name: string;
  readonly principal: PrincipalRef;
  readonly op: SignOperation;
  readonly key?: KeyName;
  /** The grant held by `principal` (id "g1"); operations default to [op]. Absent: no grant. */
  readonly grant?: Partial<UsageRule> & { readonly to?: PrincipalRef };
  readonly ownerRule?: UsageRule;
  readonly req?: Partial<PolicyRequest>;
  readonly expect: readonly ['allow' | 'deny', PolicyReason, Standing];
}

const otherOps = (op: SignOperation): SignOperation[] => SIGN_OPERATIONS.filter((o) => o !== op);

const generated: Row[] = SIGN_OPERATIONS.flatMap((op): Row[] => [
  { name: `owner · ${op} · no policy`, principal: owner, op, expect: ['allow', 'OWNER', 'owner'] },
  ...PRINCIPAL_KINDS.flatMap((kind): Row[] => [
    { name: `${kind} · ${op} · granted`, principal: who(kind), op, grant: {}, expect: ['allow', 'GRANT', 'grantee'] },
    { name: `${kind} · ${op} · no grant`, principal: who(kind), op, expect: ['deny', 'NOT_GRANTED', 'none'] },
    {
      name: `${kind} · ${op} · grant covers only other operations`,
      principal: who(kind),
      op,
      grant: { operations: otherOps(op) },
      expect: ['deny', 'OPERATION_NOT_GRANTED', 'grantee'],
    },
    {
      name: `${kind} · ${op} · same id, other principal kind`,
      principal: who(kind),
      op,
      grant: { to: { kind: kind === 'service' ? 'person' : 'service', id: who(kind).id } },
      expect: ['deny', 'NOT_GRANTED', 'none'],
    },
  ]),
]);

const constraints: Row[] = [
  // Key capabilities
  { name: 'raw digest granted, key does not enable raw digests', principal: who('service'), op: 'raw_digest', key: 'secp', grant: {}, expect: ['deny', 'RAW_DIGEST_DISABLED', 'grantee'] },
  { name: 'owner · raw digest on a key without raw digests', principal: owner, op: 'raw_digest', key: 'secp', expect: ['deny', 'RAW_DIGEST_DISABLED', 'owner'] },
  { name: 'ed25519 granted on a secp256k1 key', principal: who('service'), op: 'ed25519', key: 'secp', grant: {}, expect: ['deny', 'ALGORITHM_MISMATCH', 'grantee'] },
  { name: 'owner · personal_sign on an Ed25519 key', principal: owner, op: 'personal_sign', key: 'ed', expect: ['deny', 'ALGORITHM_MISMATCH', 'owner'] },
  // Validity period: [notBefore, notAfter)
  { name: 'notBefore in the future', principal: who('session'), op: 'personal_sign', grant: { notBefore: NOW + 1 }, expect: ['deny', 'NOT_YET_VALID', 'grantee'] },
  { name: 'notBefore = now', principal: who('session'), op: 'personal_sign', grant: { notBefore: NOW }, expect: ['allow', 'GRANT', 'grantee'] },
  { name: 'notAfter = now', principal: who('session'), op: 'personal_sign', grant: { notAfter: NOW }, expect: ['deny', 'EXPIRED', 'grantee'] },
  { name: 'notAfter just ahead', principal: who('session'), op: 'personal_sign', grant: { notBefore: NOW - DAY, notAfter: NOW + 1 }, expect: ['allow', 'GRANT', 'grantee'] },
  // Message size
  { name: 'message at maxMessageBytes', principal: who('service'), op: 'ed25519', grant: { maxMessageBytes: 100 }, req: { messageBytes: 100 }, expect: ['allow', 'GRANT', 'grantee'] },
  { name: 'message over maxMessageBytes', principal: who('service'), op: 'ed25519', grant: { maxMessageBytes: 100 }, req: { messageBytes: 101 }, expect: ['deny', 'MESSAGE_TOO_LARGE', 'grantee'] },
  { name: 'typed data over maxMessageBytes', principal: who('person'), op: 'eip712', grant: { maxMessageBytes: 10 }, req: { messageBytes: 11, eip712: mainnetPermit }, expect: ['deny', 'MESSAGE_TOO_LARGE', 'grantee'] },
  // EIP-712, on the hasher's parsed fields
  { name: 'eip712 chain id allowed', principal: who('service'), op: 'eip712', grant: { eip712: { chainIds: [10n, 1n] } }, req: { eip712: mainnetPermit }, expect: ['allow', 'GRANT', 'grantee'] },
  { name: 'eip712 chain id not allowed', principal: who('service'), op: 'eip712', grant: { eip712: { chainIds: [5n] } }, req: { eip712: mainnetPermit }, expect: ['deny', 'EIP712_CHAIN_ID_NOT_ALLOWED', 'grantee'] },
  { name: 'eip712 document without a chain id', principal: who('service'), op: 'eip712', grant: { eip712: { chainIds: [1n] } }, req: { eip712: permit({}) }, expect: ['deny', 'EIP712_CHAIN_ID_NOT_ALLOWED', 'grantee'] },
  { name: 'eip712 huge chain id compared exactly', principal: who('service'), op: 'eip712', grant: { eip712: { chainIds: [2n ** 200n] } }, req: { eip712: permit({ chainId: (2n ** 200n + 1n).toString() }) }, expect: ['deny', 'EIP712_CHAIN_ID_NOT_ALLOWED', 'grantee'] },
  { name: 'eip712 contract allowed (checksummed in the policy)', principal: who('service'), op: 'eip712', grant: { eip712: { verifyingContracts: [CONTRACT] } }, req: { eip712: mainnetPermit }, expect: ['allow', 'GRANT', 'grantee'] },
  { name: 'eip712 contract not allowed', principal: who('service'), op: 'eip712', grant: { eip712: { verifyingContracts: [OTHER_CONTRACT] } }, req: { eip712: mainnetPermit }, expect: ['deny', 'EIP712_CONTRACT_NOT_ALLOWED', 'grantee'] },
  { name: 'eip712 primary type allowed', principal: who('session'), op: 'eip712', grant: { eip712: { primaryTypes: ['Permit'] } }, req: { eip712: mainnetPermit }, expect: ['allow', 'GRANT', 'grantee'] },
  { name: 'eip712 primary type not allowed', principal: who('session'), op: 'eip712', grant: { eip712: { primaryTypes: ['Permit'] } }, req: { eip712: permit({ chainId: 1 }, 'Transfer') }, expect: ['deny', 'EIP712_PRIMARY_TYPE_NOT_ALLOWED', 'grantee'] },
  { name: 'eip712 all three constraints hold', principal: who('person'), op: 'eip712', grant: { eip712: { chainIds: [1n], verifyingContracts: [CONTRACT.toLowerCase()], primaryTypes: ['Permit'] } }, req: { eip712: mainnetPermit }, expect: ['allow', 'GRANT', 'grantee'] },
  { name: 'eip712 constrained, parsed fields not supplied', principal: who('service'), op: 'eip712', grant: { eip712: { chainIds: [1n] } }, expect: ['deny', 'EIP712_FIELDS_MISSING', 'grantee'] },
  { name: 'eip712 constraints do not restrict personal_sign', principal: who('service'), op: 'personal_sign', grant: { operations: ['personal_sign', 'eip712'], eip712: { chainIds: [5n] } }, expect: ['allow', 'GRANT', 'grantee'] },
  // Passkey approval of the exact request
  { name: 'approval required, none supplied', principal: who('service'), op: 'personal_sign', grant: { requireApproval: true }, expect: ['deny', 'APPROVAL_REQUIRED', 'grantee'] },
  { name: 'approval of another request', principal: who('service'), op: 'personal_sign', grant: { requireApproval: true }, req: { approval: { approver: OWNER, requestDigest: sha256('another request') } }, expect: ['deny', 'APPROVAL_MISMATCH', 'grantee'] },
  { name: 'approval by someone not the owner', principal: who('service'), op: 'personal_sign', grant: { requireApproval: true }, req: { approval: { approver: 'person_1', requestDigest: DIGEST } }, expect: ['deny', 'APPROVAL_MISMATCH', 'grantee'] },
  { name: 'approval of this request by the owner', principal: who('service'), op: 'personal_sign', grant: { requireApproval: true }, req: { approval: { approver: OWNER, requestDigest: DIGEST } }, expect: ['allow', 'GRANT', 'grantee'] },
  // Limits a single request can never fit
  { name: 'batch larger than the rate-limit burst', principal: who('service'), op: 'personal_sign', grant: { rateLimit: { capacity: 2, refillTokens: 1, refillPeriodMs: 1_000 } }, req: { count: 3 }, expect: ['deny', 'RATE_LIMITED', 'grantee'] },
  { name: 'batch larger than a cap', principal: who('service'), op: 'personal_sign', grant: { caps: [{ limit: 2, windowMs: DAY }] }, req: { count: 3 }, expect: ['deny', 'CAP_EXCEEDED', 'grantee'] },
  { name: 'batch within limits', principal: who('service'), op: 'personal_sign', grant: { rateLimit: { capacity: 3, refillTokens: 1, refillPeriodMs: 1_000 }, caps: [{ limit: 3, windowMs: DAY }] }, req: { count: 3 }, expect: ['allow', 'GRANT', 'grantee'] },
  // The owner's own rule
  { name: 'owner rule excludes the operation', principal: owner, op: 'personal_sign', ownerRule: { operations: ['eip712'] }, expect: ['deny', 'OPERATION_NOT_GRANTED', 'owner'] },
  { name: 'owner rule requires approval, none', principal: owner, op: 'personal_sign', ownerRule: { operations: ['personal_sign'], requireApproval: true }, expect: ['deny', 'APPROVAL_REQUIRED', 'owner'] },
  { name: 'owner rule requires approval, approved', principal: owner, op: 'personal_sign', ownerRule: { operations: ['personal_sign'], requireApproval: true }, req: { approval: { approver: OWNER, requestDigest: DIGEST } }, expect: ['allow', 'OWNER_RULE', 'owner'] },
  { name: 'owner rule constrains EIP-712', principal: owner, op: 'eip712', ownerRule: { operations: ['eip712'], eip712: { chainIds: [5n] } }, req: { eip712: mainnetPermit }, expect: ['deny', 'EIP712_CHAIN_ID_NOT_ALLOWED', 'owner'] },
  { name: 'owner is not bound by grants naming it', principal: owner, op: 'personal_sign', grant: { to: owner, operations: ['eip712'] }, expect: ['allow', 'OWNER', 'owner'] },
  // Keys and policies that do not exist or do not parse
  { name: 'no such key', principal: who('service'), op: 'personal_sign', grant: {}, req: { key: undefined }, expect: ['deny', 'KEY_UNKNOWN', 'none'] },
  { name: 'owner · no such key', principal: owner, op: 'personal_sign', req: { key: undefined }, expect: ['deny', 'KEY_UNKNOWN', 'none'] },
  {
    name: 'unreadable policy allows nobody, not even the owner',
    principal: owner,
    op: 'personal_sign',
    req: { policy: { grants: [{ id: 'g1', principal: who('service'), operations: ['personal_sign'], notAfter: Number.NaN }] } as unknown as KeyPolicy },
    expect: ['deny', 'POLICY_INVALID', 'none'],
  },
];

function requestFor(row: Row): PolicyRequest {
  const grants: KeyGrant[] = [];
  if (row.grant !== undefined) {
    const { to, ...rule } = row.grant;
    grants.push({ id: 'g1', principal: to ?? row.principal, operations: [row.op], ...rule });
  }
  const policy: KeyPolicy = row.ownerRule === undefined ? { grants } : { owner: row.ownerRule, grants };
  return {
    principal: row.principal,
    key: keys[row.key ?? keyFor(row.op)],
    policy,
    operation: row.op,
    messageBytes: 32,
    requestDigest: DIGEST,
    now: NOW,
    ...(row.op === 'eip712' && row.grant?.eip712 === undefined && row.ownerRule?.eip712 === undefined ? { eip712: mainnetPermit } : {}),
    ...row.req,
  };
}

describe('policy matrix: operation × principal kind × constraint', () => {
  it.each([...generated, ...constraints].map((r) => [r.name, r] as const))('%s', (_name, row) => {
    const d = evaluatePolicy(requestFor(row));
    expect([d.decision, d.reason, d.standing]).toEqual(row.expect);
    if (d.decision === 'deny') expect(d.counterUpdates).toEqual([]);
  });

  it('covers every operation for every principal kind, allowed and denied', () => {
    for (const op of SIGN_OPERATIONS) {
      for (const kind of PRINCIPAL_KINDS) {
        const rows = generated.filter((r) => r.op === op && r.principal.kind === kind && r.principal.id !== OWNER);
        expect(new Set(rows.map((r) => r.expect[0]))).toEqual(new Set(['allow', 'deny']));
      }
    }
  });

  it('among several grants, the first that allows wins; otherwise the one that got furthest is reported', () => {
    const s = who('service');
    const policy: KeyPolicy = {
      grants: [
        { id: 'sign-only', principal: s, operations: ['personal_sign'] },
        { id: 'permits', principal: s, operations: ['eip712'], eip712: { chainIds: [5n] } },
        { id: 'mainnet', principal: s, operations: ['eip712'], eip712: { chainIds: [1n] }, caps: [{ limit: 10, windowMs: DAY }] },
      ],
    };
    const base = { principal: s, key: keys.secp, policy, operation: 'eip712', messageBytes: 10, requestDigest: DIGEST, now: NOW } as const;
    expect(evaluatePolicy({ ...base, eip712: mainnetPermit })).toMatchObject({ decision: 'allow', grantId: 'mainnet' });
    expect(evaluatePolicy({ ...base, eip712: permit({ chainId: 137 }) })).toMatchObject({ decision: 'deny', reason: 'EIP712_CHAIN_ID_NOT_ALLOWED', grantId: 'permits' });
  });

  it('an allowed decision carries the rate-limit and cap changes for this principal, key and grant', () => {
    const s = who('session');
    const rule = { rateLimit: { capacity: 5, refillTokens: 1, refillPeriodMs: 1_000 }, caps: [{ limit: 100, windowMs: DAY }, { limit: 10, windowMs: 3_600_000 }] };
    const d = evaluatePolicy({ ...requestFor({ name: '', principal: s, op: 'personal_sign', grant: rule, expect: ['allow', 'GRANT', 'grantee'] }), count: 2 });
    expect(d.counterUpdates).toEqual([
      { kind: 'takeTokens', bucket: rateBucketId('key_secp', s, 'g1'), now: NOW, tokens: 2, capacity: 5, refillTokens: 1, refillPeriodMs: 1_000 },
      { kind: 'incrementCounter', counter: capCounterId('key_secp', s, 'g1', DAY), windowStart: Date.UTC(2025, 5, 1), by: 2, limit: 100 },
      { kind: 'incrementCounter', counter: capCounterId('key_secp', s, 'g1', 3_600_000), windowStart: NOW, by: 2, limit: 10 },
    ]);
    // Counter ids cannot collide across principals that differ only in kind.
    expect(rateBucketId('k', { kind: 'person', id: 'x' }, 'g')).not.toBe(rateBucketId('k', { kind: 'session', id: 'x' }, 'g'));
  });

  it('malformed engine inputs are caller bugs: INTERNAL, never an allow', () => {
    const base = requestFor({ name: '', principal: who('service'), op: 'personal_sign', grant: {}, expect: ['allow', 'GRANT', 'grantee'] });
    for (const over of [{ count: 0 }, { count: 1.5 }, { now: Number.NaN }, { messageBytes: -1 }, { operation: 'sign_anything' as SignOperation }]) {
      expect(() => evaluatePolicy({ ...base, ...over }), JSON.stringify(over)).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
    }
  });
});

// ---- What the client sees -----------------------------------------------------------------------

describe('denial errors', () => {
  it('anyone without standing, and a grantee failing a constraint, sees KEY_NOT_FOUND: existence is not revealed', () => {
    const denials = [...generated, ...constraints].map((r) => evaluatePolicy(requestFor(r))).filter((d) => d.decision === 'deny');
    for (const d of denials) {
      const code = denialError(d).code;
      const expected: ErrorCode =
        d.reason === 'RATE_LIMITED' || d.reason === 'CAP_EXCEEDED'
          ? d.reason
          : d.reason === 'APPROVAL_REQUIRED' || d.reason === 'APPROVAL_MISMATCH'
            ? 'APPROVAL_REQUIRED'
            : d.standing !== 'owner'
              ? 'KEY_NOT_FOUND'
              : d.reason === 'RAW_DIGEST_DISABLED'
                ? 'RAW_SIGNING_DISABLED'
                : d.reason === 'ALGORITHM_MISMATCH'
                  ? 'ALGORITHM_MISMATCH'
                  : 'PERMISSION_DENIED';
      expect(code, `${d.reason}/${d.standing}`).toBe(expected);
      expect(denialError(d).detail).toBeUndefined(); // the reason goes to the audit log only
    }
    // A non-existent key and an existing key the caller may not use are the same error.
    const missing = evaluatePolicy(requestFor({ name: '', principal: who('service'), op: 'personal_sign', req: { key: undefined }, expect: ['deny', 'KEY_UNKNOWN', 'none'] }));
    const foreign = evaluatePolicy(requestFor({ name: '', principal: who('service'), op: 'personal_sign', expect: ['deny', 'NOT_GRANTED', 'none'] }));
    expect(denialError(missing)).toEqual(denialError(foreign));
  });

  it('an allowed decision has no denial error', () => {
    const d = evaluatePolicy(requestFor({ name: '', principal: owner, op: 'personal_sign', expect: ['allow', 'OWNER', 'owner'] }));
    expect(() => denialError(d)).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
  });
});

// ---- Policy validation --------------------------------------------------------------------------

describe('checkKeyPolicy', () => {
  const g = (over: Record<string, unknown>): KeyPolicy => ({ grants: [{ id: 'g1', principal: who('service'), operations: ['eip712'], ...over }] }) as unknown as KeyPolicy;

  it('normalizes addresses to lowercase, freezes the result, and accepts its own output', () => {
    const p = checkKeyPolicy(g({ eip712: { verifyingContracts: [CONTRACT] } }));
    expect(p.grants[0]?.eip712?.verifyingContracts).toEqual([CONTRACT.toLowerCase()]);
    expect(Object.isFrozen(p.grants[0]?.eip712?.verifyingContracts)).toBe(true);
    expect(checkKeyPolicy(p)).toBe(p);
  });

  const hostile: [string, unknown, ErrorCode][] = [
    ['not an object', null, 'MALFORMED_REQUEST'],
    ['grants not an array', { grants: {} }, 'MALFORMED_REQUEST'],
    ['too many grants', { grants: Array.from({ length: 65 }, (_, i) => ({ id: `g${i}`, principal: who('service'), operations: ['eip712'] })) }, 'PAYLOAD_TOO_LARGE'],
    ['duplicate grant id', { grants: [g({}).grants[0], g({}).grants[0]] }, 'MALFORMED_REQUEST'],
    ['bad grant id', g({ id: 'has space' }), 'MALFORMED_REQUEST'],
    ['unknown principal kind', g({ principal: { kind: 'robot', id: 'r' } }), 'MALFORMED_REQUEST'],
    ['principal id with a space', g({ principal: { kind: 'service', id: 'a b' } }), 'MALFORMED_REQUEST'],
    ['no operations', g({ operations: [] }), 'MALFORMED_REQUEST'],
    ['unknown operation', g({ operations: ['sign_bytes'] }), 'MALFORMED_REQUEST'],
    ['duplicate operation', g({ operations: ['eip712', 'eip712'] }), 'MALFORMED_REQUEST'],
    ['empty chain allowlist', g({ eip712: { chainIds: [] } }), 'MALFORMED_REQUEST'],
    ['chain id as number', g({ eip712: { chainIds: [1] } }), 'MALFORMED_REQUEST'],
    ['negative chain id', g({ eip712: { chainIds: [-1n] } }), 'MALFORMED_REQUEST'],
    ['chain id above uint256', g({ eip712: { chainIds: [2n ** 256n] } }), 'MALFORMED_REQUEST'],
    ['short address', g({ eip712: { verifyingContracts: ['0x1234'] } }), 'MALFORMED_REQUEST'],
    ['too many contracts', g({ eip712: { verifyingContracts: new Array(65).fill(CONTRACT) } }), 'PAYLOAD_TOO_LARGE'],
    ['empty primary type', g({ eip712: { primaryTypes: [''] } }), 'MALFORMED_REQUEST'],
    ['zero maxMessageBytes', g({ maxMessageBytes: 0 }), 'MALFORMED_REQUEST'],
    ['fractional rate', g({ rateLimit: { capacity: 1.5, refillTokens: 1, refillPeriodMs: 1 } }), 'MALFORMED_REQUEST'],
    ['rate period over a day', g({ rateLimit: { capacity: 1, refillTokens: 1, refillPeriodMs: DAY + 1 } }), 'MALFORMED_REQUEST'],
    ['cap window under a second', g({ caps: [{ limit: 1, windowMs: 999 }] }), 'MALFORMED_REQUEST'],
    ['two caps on one window', g({ caps: [{ limit: 1, windowMs: DAY }, { limit: 2, windowMs: DAY }] }), 'MALFORMED_REQUEST'],
    ['too many caps', g({ caps: [1, 2, 3, 4, 5].map((i) => ({ limit: 1, windowMs: i * 1000 })) }), 'PAYLOAD_TOO_LARGE'],
    ['NaN notAfter', g({ notAfter: Number.NaN }), 'MALFORMED_REQUEST'],
    ['empty validity period', g({ notBefore: 5, notAfter: 5 }), 'MALFORMED_REQUEST'],
    ['approval flag as string', g({ requireApproval: 'yes' }), 'MALFORMED_REQUEST'],
    ['bad owner rule', { grants: [], owner: { operations: 'all' } }, 'MALFORMED_REQUEST'],
  ];
  it.each(hostile)('%s ⇒ %s', (_name, policy, code) => {
    let got: unknown;
    try {
      checkKeyPolicy(policy as KeyPolicy);
    } catch (e) {
      got = e;
    }
    expect(isOpenKeyError(got) && got.code).toBe(code);
  });
});

// ---- Limits through the store -------------------------------------------------------------------

const service = who('service');

/** One Sign attempt the way the Sign RPC will make it: evaluate, then commit [nonce, counters, audit]. */
async function attempt(store: Store, policy: KeyPolicy, now: number, n: number): Promise<'allowed' | ErrorCode> {
  const requestDigest = sha256(`request ${n}`);
  const decision = evaluatePolicy({ principal: service, key: keys.secp, policy, operation: 'personal_sign', messageBytes: 5, requestDigest, now });
  try {
    await commitAudited(store, {
      time: now,
      items: [{ decision, principal: service.id, operation: 'personal_sign', keyId: keys.secp.keyId, requestDigest }],
      always: [{ kind: 'consumeNonce', principalId: service.id, nonce: `nonce-${n}`, expiresAt: now + 60_000 }],
    });
    return 'allowed';
  } catch (e) {
    if (isOpenKeyError(e)) return e.code;
    throw e;
  }
}

const tally = (results: readonly string[]): Record<string, number> => results.reduce<Record<string, number>>((t, r) => ({ ...t, [r]: (t[r] ?? 0) + 1 }), {});

describe('caps through a LevelDB store', () => {
  const CAP = 20;
  const policy = checkKeyPolicy({ grants: [{ id: 'daily', principal: service, operations: ['personal_sign'], caps: [{ limit: CAP, windowMs: DAY }] }] });

  it('hold across a restart and under 50 concurrent requests: exactly N allowed per day, each decision audited', async () => {
    const dir = freshDir();
    const before = await openLevelStore(dir);
    for (let n = 0; n < 8; n++) expect(await attempt(before, policy, NOW + n, n)).toBe('allowed');
    await before.close();

    const store = await openLevelStore(dir); // restart: the count is on disk, not in memory
    try {
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => attempt(store, policy, NOW + 100, 100 + i)));
      expect(tally(results)).toEqual({ allowed: CAP - 8, CAP_EXCEEDED: 50 - (CAP - 8) });
      expect(await store.getCounter(capCounterId(keys.secp.keyId, service, 'daily', DAY))).toEqual({ windowStart: Date.UTC(2025, 5, 1), count: CAP });

      // Every decision, allowed or denied, has its record; the denied ones say why.
      const records = await store.readAudit(1, 1000);
      expect(records).toHaveLength(58);
      expect(tally(records.map((r) => `${r.decision}:${r.reason}`))).toEqual({ 'allow:GRANT': CAP, 'deny:CAP_EXCEEDED': 58 - CAP });
      // Denied requests consumed their nonces (a replay is a replay, not a second record).
      expect(await attempt(store, policy, NOW + 200, 149)).toBe('STAMP_REPLAYED');

      // The next UTC day is a new window.
      expect(await attempt(store, policy, Date.UTC(2025, 5, 2), 500)).toBe('allowed');
    } finally {
      await store.close();
    }
  });
});

describe('rate limits with an injected clock', () => {
  it('a token bucket: burst of 3, then one per second, never more than the burst after idling', async () => {
    const policy = checkKeyPolicy({
      grants: [{ id: 'rl', principal: service, operations: ['personal_sign'], rateLimit: { capacity: 3, refillTokens: 1, refillPeriodMs: 1_000 } }],
    });
    const clock = { t: NOW, now(): number { return this.t; } };
    const store = await openLevelStore(freshDir());
    let n = 0;
    const at = async (t: number, times: number): Promise<string[]> => {
      clock.t = t;
      const out: string[] = [];
      for (let i = 0; i < times; i++) out.push(await attempt(store, policy, clock.now(), n++));
      return out;
    };
    try {
      expect(await at(NOW, 4)).toEqual(['allowed', 'allowed', 'allowed', 'RATE_LIMITED']);
      expect(await at(NOW + 999, 1)).toEqual(['RATE_LIMITED']);
      expect(await at(NOW + 1_000, 2)).toEqual(['allowed', 'RATE_LIMITED']);
      expect(await at(NOW + 2_500, 2)).toEqual(['allowed', 'RATE_LIMITED']); // 1.5 tokens accrued
      expect(await at(NOW + 3_000, 1)).toEqual(['allowed']); // the half token carried over
      expect(await at(NOW + 60_000, 4)).toEqual(['allowed', 'allowed', 'allowed', 'RATE_LIMITED']);
      // 50 concurrent requests at one instant after a long idle: exactly the burst passes.
      clock.t = NOW + 600_000;
      const burst = await Promise.all(Array.from({ length: 50 }, () => attempt(store, policy, clock.now(), n++)));
      expect(tally(burst)).toEqual({ allowed: 3, RATE_LIMITED: 47 });
      const records = await store.readAudit(1, 1000);
      expect(records.filter((r) => r.reason === 'RATE_LIMITED' && r.decision === 'deny')).toHaveLength(5 + 47);
    } finally {
      await store.close();
    }
  });

  it('rate limits are per principal: another grantee of the same key has its own bucket', async () => {
    const other: PrincipalRef = { kind: 'service', id: 'svc_other' };
    const rateLimit = { capacity: 1, refillTokens: 1, refillPeriodMs: 60_000 };
    const policy = checkKeyPolicy({
      grants: [
        { id: 'a', principal: service, operations: ['personal_sign'], rateLimit },
        { id: 'b', principal: other, operations: ['personal_sign'], rateLimit },
      ],
    });
    const store = await openLevelStore(freshDir());
    try {
      expect(await attempt(store, policy, NOW, 1)).toBe('allowed');
      expect(await attempt(store, policy, NOW, 2)).toBe('RATE_LIMITED');
      const d = evaluatePolicy({ principal: other, key: keys.secp, policy, operation: 'personal_sign', messageBytes: 1, requestDigest: DIGEST, now: NOW });
      await store.commit([...d.counterUpdates]);
      expect(await store.getTokenBucket(rateBucketId(keys.secp.keyId, other, 'b'))).toMatchObject({ level: 0 });
    } finally {
      await store.close();
    }
  });
});
