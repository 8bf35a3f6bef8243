// Per-key policy end to end (proto/openkey/v1/policy.proto; core/policy.ts): a table of operations
// × principals × constraints against a real appliance, each answer checked by its code and each
// signature by an independent library (viem, node:crypto). Denials to anyone without a permitting
// grant are KEY_NOT_FOUND, the same as for a key that does not exist; the owner, held to its own
// rule, gets PERMISSION_DENIED. Then limits (caps across a restart and under concurrency, token
// buckets with the clock), grant changes, and the audit chain, verified against the identity key,
// holding every one of these decisions with its reason.

import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keccak256, recoverAddress, recoverMessageAddress, recoverTypedDataAddress, stringToBytes, type Hex } from 'viem';
import { KeyAlgorithm, type KeyInfo } from '../proto/gen/openkey/v1/common_pb.ts';
import { PrincipalKind, SignOperation, type KeyGrantSchema, type UsageRuleSchema } from '../proto/gen/openkey/v1/policy_pb.ts';
import { SignRequestSchema, type SignRequest, type SignResponse } from '../proto/gen/openkey/v1/signing_pb.ts';
import { openKeyErrorCode, type Credentials, type OpenKeyClient } from '../clients/src/index.ts';
import { startTestAppliance, type TestAppliance } from './support/appliance.ts';
import { ManualClock, ORIGIN, PASSKEY_ENV, auditAll, auditMark, auditSince, clientFor, decisionOf, registerPerson, serviceClient, signIn } from './support/people.ts';
import { SoftAuthenticator } from './support/soft-authenticator.ts';
import { codeOf } from './support/codes.ts';

// ---- Payloads and their independent checks ------------------------------------------------------

const MAIL_OBJECT = JSON.parse(readFileSync(fileURLToPath(new URL('../clients/examples/mail.json', import.meta.url)), 'utf8')) as Parameters<typeof recoverTypedDataAddress>[0];
/** The EIP-712 document as sent; its length is what maxMessageBytes limits. */
const MAIL_JSON = JSON.stringify(MAIL_OBJECT);
const MESSAGE = 'a message of exactly 33 bytes....';
const DIGEST = keccak256(stringToBytes('a raw digest for the policy matrix'), 'bytes');
const MESSAGE_BYTES = new TextEncoder().encode(MESSAGE);

/** A fixed instant early in a UTC day, so daily cap windows do not roll over by accident. */
const T0 = Date.UTC(2031, 0, 6, 0, 10, 0);
const MINUTE = 60_000;
const DAY = 86_400_000;

type Op = 'personal_sign' | 'eip712' | 'raw_digest' | 'ed25519';
const SECP_OPS: readonly Op[] = ['personal_sign', 'eip712', 'raw_digest'];
const WIRE_OP: Record<Op, SignOperation> = {
  personal_sign: SignOperation.PERSONAL_SIGN,
  eip712: SignOperation.EIP712,
  raw_digest: SignOperation.RAW_DIGEST,
  ed25519: SignOperation.ED25519,
};
const ALL_OPS: readonly Op[] = [...SECP_OPS, 'ed25519'];

const hex = (b: Uint8Array): Hex => `0x${Buffer.from(b).toString('hex')}`;

function request(op: Op, keyId: string): SignRequest {
  switch (op) {
    case 'personal_sign':
      return create(SignRequestSchema, { keyId, payload: { kind: { case: 'personalMessage', value: { message: MESSAGE_BYTES } } } });
    case 'eip712':
      return create(SignRequestSchema, { keyId, payload: { kind: { case: 'typedData', value: { json: MAIL_JSON } } } });
    case 'raw_digest':
      return create(SignRequestSchema, { keyId, payload: { kind: { case: 'rawDigest', value: DIGEST } } });
    case 'ed25519':
      return create(SignRequestSchema, { keyId, payload: { kind: { case: 'ed25519Message', value: MESSAGE_BYTES } } });
  }
}

/** Whether `res` is `key`'s signature of the payload `op` sends, by viem or node:crypto. */
async function signedBy(op: Op, key: KeyInfo, res: SignResponse): Promise<boolean> {
  const signature = hex(res.signature);
  switch (op) {
    case 'personal_sign':
      return (await recoverMessageAddress({ message: MESSAGE, signature })) === key.address;
    case 'eip712':
      return (await recoverTypedDataAddress({ ...MAIL_OBJECT, signature })) === key.address;
    case 'raw_digest':
      return (await recoverAddress({ hash: hex(DIGEST), signature })) === key.address;
    case 'ed25519': {
      const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), key.publicKey]);
      return nodeVerify(null, MESSAGE_BYTES, createPublicKey({ key: spki, format: 'der', type: 'spki' }), res.signature);
    }
  }
}


// ---- The matrix ---------------------------------------------------------------------------------

type RuleInit = MessageInitShape<typeof UsageRuleSchema>;
type GrantInit = MessageInitShape<typeof KeyGrantSchema>;

interface Step {
  /** Clock advance before the step's requests. */
  readonly advance?: number;
  /** The policy reason each operation is denied for; an operation not named is allowed. */
  readonly deny: Partial<Record<Op, string>>;
}

interface Case {
  readonly name: string;
  /** The rule every principal is held to (the owner rule and each grant), without its operations. */
  readonly rule: (now: number) => Omit<RuleInit, 'operations' | '$typeName'>;
  /** Operations of the rule on the secp256k1 and the Ed25519 key. Default: all four. */
  readonly operations?: { readonly secp: readonly Op[]; readonly ed: readonly Op[] };
  /** No owner rule: the owner is unrestricted (reason OWNER). */
  readonly noOwnerRule?: boolean;
  readonly steps: readonly Step[];
}

const L = MAIL_JSON.length;
const CASES: readonly Case[] = [
  { name: 'no constraint', rule: () => ({}), noOwnerRule: true, steps: [{ deny: {} }] },
  { name: 'EIP-712 chainId allowlist, hit', rule: () => ({ eip712: { chainIds: ['10', '1'] } }), steps: [{ deny: {} }] },
  { name: 'EIP-712 chainId allowlist, miss', rule: () => ({ eip712: { chainIds: ['5'] } }), steps: [{ deny: { eip712: 'EIP712_CHAIN_ID_NOT_ALLOWED' } }] },
  {
    name: 'EIP-712 verifyingContract allowlist, hit (any case)',
    rule: () => ({ eip712: { verifyingContracts: [`0x${'1'.repeat(40)}`, `0x${'C'.repeat(40)}`] } }),
    steps: [{ deny: {} }],
  },
  {
    name: 'EIP-712 verifyingContract allowlist, miss',
    rule: () => ({ eip712: { verifyingContracts: [`0x${'1'.repeat(40)}`] } }),
    steps: [{ deny: { eip712: 'EIP712_CONTRACT_NOT_ALLOWED' } }],
  },
  { name: 'EIP-712 primaryType allowlist, hit', rule: () => ({ eip712: { primaryTypes: ['Person', 'Mail'] } }), steps: [{ deny: {} }] },
  { name: 'EIP-712 primaryType allowlist, miss', rule: () => ({ eip712: { primaryTypes: ['Person'] } }), steps: [{ deny: { eip712: 'EIP712_PRIMARY_TYPE_NOT_ALLOWED' } }] },
  { name: 'maxMessageBytes = the document length (under, at the boundary)', rule: () => ({ maxMessageBytes: BigInt(L) }), steps: [{ deny: {} }] },
  { name: 'maxMessageBytes one below the document', rule: () => ({ maxMessageBytes: BigInt(L - 1) }), steps: [{ deny: { eip712: 'MESSAGE_TOO_LARGE' } }] },
  {
    name: 'maxMessageBytes 32: a digest fits, 33-byte messages do not',
    rule: () => ({ maxMessageBytes: 32n }),
    steps: [{ deny: { personal_sign: 'MESSAGE_TOO_LARGE', eip712: 'MESSAGE_TOO_LARGE', ed25519: 'MESSAGE_TOO_LARGE' } }],
  },
  { name: 'validity window around now', rule: (now) => ({ notBeforeMs: BigInt(now - 60 * MINUTE), notAfterMs: BigInt(now + 60 * MINUTE) }), steps: [{ deny: {} }] },
  {
    name: 'validity window [now + 10 min, now + 20 min): before, at the start, at the end',
    rule: (now) => ({ notBeforeMs: BigInt(now + 10 * MINUTE), notAfterMs: BigInt(now + 20 * MINUTE) }),
    steps: [
      { advance: 10 * MINUTE - 1, deny: Object.fromEntries(ALL_OPS.map((op) => [op, 'NOT_YET_VALID'])) },
      { advance: 1, deny: {} },
      { advance: 10 * MINUTE, deny: Object.fromEntries(ALL_OPS.map((op) => [op, 'EXPIRED'])) },
    ],
  },
  {
    name: 'operation not granted',
    rule: () => ({}),
    operations: { secp: ['ed25519'], ed: SECP_OPS },
    steps: [{ deny: Object.fromEntries(ALL_OPS.map((op) => [op, 'OPERATION_NOT_GRANTED'])) }],
  },
];

/** How a principal stands to the matrix keys. */
type Standing = 'owner' | 'grantee' | 'none';

interface Actor {
  readonly name: string;
  readonly standing: Standing;
  /** The principal audit records name: the person for a session. */
  readonly principal: () => string;
  readonly credentials: () => Credentials;
}

interface ExpectedRecord {
  readonly principal: string;
  readonly operation: string;
  readonly keyId: string;
  readonly decision: string;
  readonly reason: string;
}

/** The wire code and the audit record `actor` gets for a request the policy decides with `deny` (undefined: allowed). */
function outcome(actor: Actor, deny: string | undefined, ownerRule: boolean): { code: string; decision: string; reason: string } {
  if (actor.standing === 'none') return { code: 'KEY_NOT_FOUND', decision: 'deny', reason: 'NOT_GRANTED' };
  if (deny === undefined) return { code: 'no-error', decision: 'allow', reason: actor.standing === 'grantee' ? 'GRANT' : ownerRule ? 'OWNER_RULE' : 'OWNER' };
  return { code: actor.standing === 'owner' ? 'PERMISSION_DENIED' : 'KEY_NOT_FOUND', decision: 'deny', reason: deny };
}

describe('key policy: who may sign what, within which limits', () => {
  const clock = new ManualClock(T0);
  let app: TestAppliance;
  const aliceAuthn = new SoftAuthenticator({ origin: ORIGIN });
  const bobAuthn = new SoftAuthenticator({ origin: ORIGIN });
  const carolAuthn = new SoftAuthenticator({ origin: ORIGIN });
  const ids = { alice: '', bob: '', carol: '', carolSession: '' };
  const creds: Record<'alice' | 'bob' | 'carolGranted' | 'carolOther' | 'svc' | 'stranger' | 'auditor', Credentials | undefined> = {
    alice: undefined,
    bob: undefined,
    carolGranted: undefined,
    carolOther: undefined,
    svc: undefined,
    stranger: undefined,
    auditor: undefined,
  };
  const cred = (name: keyof typeof creds): Credentials => {
    const c = creds[name];
    if (c === undefined) throw new Error(`${name} is not set up`);
    return c;
  };
  /** A client for the current appliance instance (its port changes on restart). */
  const as = (name: keyof typeof creds): OpenKeyClient => clientFor(app, cred(name), clock);

  const ACTORS: readonly Actor[] = [
    { name: 'the owner (a person, via a session)', standing: 'owner', principal: () => ids.alice, credentials: () => cred('alice') },
    { name: 'a granted service', standing: 'grantee', principal: () => cred('svc').principalId, credentials: () => cred('svc') },
    { name: 'a granted person (via a session)', standing: 'grantee', principal: () => ids.bob, credentials: () => cred('bob') },
    { name: 'a granted single session', standing: 'grantee', principal: () => ids.carol, credentials: () => cred('carolGranted') },
    { name: "another session of that session's person", standing: 'none', principal: () => ids.carol, credentials: () => cred('carolOther') },
    { name: 'an ungranted service', standing: 'none', principal: () => cred('stranger').principalId, credentials: () => cred('stranger') },
  ];

  /** Every decision about the keys in `tracked`, in order, as the audit log must show it. */
  const expected: ExpectedRecord[] = [];
  const tracked = new Set<string>();
  const record = (principal: string, operation: string, keyId: string, decision: string, reason: string): void => {
    expected.push({ principal, operation, keyId, decision, reason });
  };

  /** A key of Alice's, by default tracked for the audit check. */
  async function sealKey(algorithm: KeyAlgorithm, track = true): Promise<KeyInfo> {
    const key = (await as('alice').keys.sealKey({ algorithm, allowRawDigestSigning: algorithm === KeyAlgorithm.SECP256K1 })).key;
    if (key === undefined) throw new Error('SealKey returned no key');
    if (track) {
      tracked.add(key.keyId);
      record(ids.alice, 'seal_key', key.keyId, 'allow', 'OWNER');
    }
    return key;
  }

  async function grant(keyId: string, g: GrantInit): Promise<bigint> {
    const res = await as('alice').policy.grant({ keyId, grant: g });
    record(ids.alice, 'grant', keyId, 'allow', 'OWNER');
    return res.policy?.version ?? -1n;
  }

  const policyVersion = async (keyId: string): Promise<bigint> => (await as('alice').policy.getPolicy({ keyId })).policy?.version ?? -1n;

  beforeAll(async () => {
    app = await startTestAppliance({ env: { ...PASSKEY_ENV, OPENKEY_SESSION_TTL_MS: String(DAY) }, clock });
    ids.alice = (await registerPerson(app, aliceAuthn, 'Alice')).personId;
    ids.bob = (await registerPerson(app, bobAuthn, 'Bob')).personId;
    ids.carol = (await registerPerson(app, carolAuthn, 'Carol')).personId;
    creds.alice = (await signIn(app, aliceAuthn, { clock })).credentials;
    creds.bob = (await signIn(app, bobAuthn, { clock })).credentials;
    const carolGranted = await signIn(app, carolAuthn, { clock });
    creds.carolGranted = carolGranted.credentials;
    ids.carolSession = carolGranted.session.id;
    creds.carolOther = (await signIn(app, carolAuthn, { clock })).credentials;
    creds.svc = (await serviceClient(app, { clock, name: 'granted service' })).credentials;
    creds.stranger = (await serviceClient(app, { clock, name: 'ungranted service' })).credentials;
    creds.auditor = (await serviceClient(app, { clock, name: 'auditor' })).credentials;
  });
  afterAll(async () => app.dispose());

  const grantees = (): { id: string; principal: { kind: PrincipalKind; id: string } }[] => [
    { id: 'svc', principal: { kind: PrincipalKind.SERVICE, id: cred('svc').principalId } },
    { id: 'bob', principal: { kind: PrincipalKind.PERSON, id: ids.bob } },
    { id: 'carol-session', principal: { kind: PrincipalKind.SESSION, id: ids.carolSession } },
  ];

  for (const c of CASES) it(c.name, async () => {
    const secp = await sealKey(KeyAlgorithm.SECP256K1);
    const ed = await sealKey(KeyAlgorithm.ED25519);
    const constraints = c.rule(clock.now());
    for (const [key, ops] of [
      [secp, c.operations?.secp ?? ALL_OPS],
      [ed, c.operations?.ed ?? ALL_OPS],
    ] as const) {
      const rule: RuleInit = { ...constraints, operations: ops.map((op) => WIRE_OP[op]) };
      if (c.noOwnerRule !== true) {
        await as('alice').policy.setOwnerRule({ keyId: key.keyId, rule });
        record(ids.alice, 'set_owner_rule', key.keyId, 'allow', 'OWNER');
      }
      for (const g of grantees()) await grant(key.keyId, { ...g, rule });
    }

    for (const step of c.steps) {
      clock.advance(step.advance ?? 0);
      for (const op of ALL_OPS) {
        const key = op === 'ed25519' ? ed : secp;
        for (const actor of ACTORS) {
          const label = `${op} by ${actor.name} at +${clock.now() - T0} ms`;
          const want = outcome(actor, step.deny[op], c.noOwnerRule !== true);
          let res: SignResponse | undefined;
          let code = 'no-error';
          try {
            res = await clientFor(app, actor.credentials(), clock).signing.sign(request(op, key.keyId));
          } catch (e) {
            code = openKeyErrorCode(e) ?? 'not-an-appliance-error';
          }
          expect(code, label).toBe(want.code);
          if (res !== undefined) expect(await signedBy(op, key, res), label).toBe(true);
          record(actor.principal(), op, key.keyId, want.decision, want.reason);
        }
      }
    }
  });

  it('an unknown key id gets the same answer as a key one may not use', async () => {
    const unknown = `key_${'0'.repeat(32)}`;
    tracked.add(unknown);
    for (const op of ALL_OPS) {
      for (const who of ['alice', 'svc'] as const) {
        expect(await codeOf(as(who).signing.sign(request(op, unknown))), `${op} by ${who}`).toBe('KEY_NOT_FOUND');
        record(who === 'alice' ? ids.alice : cred('svc').principalId, op, unknown, 'deny', 'KEY_UNKNOWN');
      }
    }
  });

  let cappedKey = '';
  const capSign = async (who: 'svc' | 'bob', want: string, message = MESSAGE): Promise<void> => {
    const req = create(SignRequestSchema, { keyId: cappedKey, payload: { kind: { case: 'personalMessage', value: { message: new TextEncoder().encode(message) } } } });
    expect(await codeOf(as(who).signing.sign(req)), `${who}: ${message.length} bytes`).toBe(want);
    const principal = who === 'svc' ? cred('svc').principalId : ids.bob;
    if (want === 'no-error') record(principal, 'personal_sign', cappedKey, 'allow', 'GRANT');
    else record(principal, 'personal_sign', cappedKey, 'deny', want === 'CAP_EXCEEDED' ? 'CAP_EXCEEDED' : 'MESSAGE_TOO_LARGE');
  };

  it('a cap allows exactly its limit per window, denials do not count, and the count survives a restart', async () => {
    const key = await sealKey(KeyAlgorithm.SECP256K1);
    cappedKey = key.keyId;
    const capped = { operations: [SignOperation.PERSONAL_SIGN], maxMessageBytes: 64n, caps: [{ limit: 3n, windowMs: BigInt(DAY) }] };
    await grant(key.keyId, { id: 'capped', principal: { kind: PrincipalKind.SERVICE, id: cred('svc').principalId }, rule: capped });
    await grant(key.keyId, { id: 'bob-capped', principal: { kind: PrincipalKind.PERSON, id: ids.bob }, rule: capped });

    await capSign('svc', 'no-error');
    await capSign('svc', 'KEY_NOT_FOUND', 'x'.repeat(65)); // denied by the grant: does not count
    await capSign('svc', 'no-error');
    app = await app.restart();
    await capSign('svc', 'no-error');
    await capSign('svc', 'CAP_EXCEEDED');
    await capSign('svc', 'CAP_EXCEEDED');
    // Counters are per (key, principal, grant): Bob's cap is his own.
    for (let i = 0; i < 3; i++) await capSign('bob', 'no-error');
    await capSign('bob', 'CAP_EXCEEDED');
  });

  it('20 concurrent Sign calls against a cap of 5: exactly 5 are signed', async () => {
    // Not tracked: its records arrive in no fixed order, so they are counted here instead.
    const key = await sealKey(KeyAlgorithm.SECP256K1, false);
    await as('alice').policy.grant({
      keyId: key.keyId,
      grant: { id: 'five', principal: { kind: PrincipalKind.SERVICE, id: cred('svc').principalId }, rule: { operations: [SignOperation.PERSONAL_SIGN], caps: [{ limit: 5n, windowMs: BigInt(DAY) }] } },
    });
    const reader = as('auditor');
    const m = await auditMark(app, reader);
    const svc = as('svc');
    const messages = Array.from({ length: 20 }, (_, i) => `concurrent ${i}`);
    const results = await Promise.allSettled(
      messages.map((message) => svc.signing.sign({ keyId: key.keyId, payload: { kind: { case: 'personalMessage', value: { message: new TextEncoder().encode(message) } } } })),
    );
    const signed: number[] = [];
    const codes: string[] = [];
    for (const [i, r] of results.entries()) {
      if (r.status === 'fulfilled') {
        expect(await recoverMessageAddress({ message: messages[i] ?? '', signature: hex(r.value.signature) })).toBe(key.address);
        signed.push(i);
      } else {
        codes.push(openKeyErrorCode(r.reason) ?? 'not-an-appliance-error');
      }
    }
    expect(signed).toHaveLength(5);
    expect(codes).toEqual(Array.from({ length: 15 }, () => 'CAP_EXCEEDED'));
    expect(await codeOf(svc.signing.sign(request('personal_sign', key.keyId)))).toBe('CAP_EXCEEDED');

    const records = (await auditSince(app, reader, cred('auditor').principalId, m)).filter((r) => r.keyId === key.keyId && r.operation === 'personal_sign');
    const tally = (decision: string, reason: string) => records.filter((r) => r.decision === decision && r.reason === reason).length;
    expect(records).toHaveLength(21);
    expect(tally('allow', 'GRANT')).toBe(5);
    expect(tally('deny', 'CAP_EXCEEDED')).toBe(16);
  });

  it('a token bucket of 2: RATE_LIMITED after 2, refilled by the clock, never above its capacity', async () => {
    const key = await sealKey(KeyAlgorithm.SECP256K1);
    const svc = cred('svc').principalId;
    await grant(key.keyId, {
      id: 'bucket',
      principal: { kind: PrincipalKind.SERVICE, id: svc },
      rule: { operations: [SignOperation.PERSONAL_SIGN], rateLimit: { capacity: 2, refillTokens: 1, refillPeriodMs: BigInt(MINUTE) } },
    });
    const expectSigns = async (allowed: number): Promise<void> => {
      for (let i = 0; i < allowed; i++) {
        expect(await codeOf(as('svc').signing.sign(request('personal_sign', key.keyId))), `${i + 1} of ${allowed}`).toBe('no-error');
        record(svc, 'personal_sign', key.keyId, 'allow', 'GRANT');
      }
      expect(await codeOf(as('svc').signing.sign(request('personal_sign', key.keyId))), `after ${allowed}`).toBe('RATE_LIMITED');
      record(svc, 'personal_sign', key.keyId, 'deny', 'RATE_LIMITED');
    };
    await expectSigns(2);
    clock.advance(MINUTE - 1);
    await expectSigns(0);
    clock.advance(1);
    await expectSigns(1);
    clock.advance(10 * MINUTE);
    await expectSigns(2);
  });

  it('Revoke: the grantee is refused from then on; an unknown grant id is GRANT_NOT_FOUND', async () => {
    const key = await sealKey(KeyAlgorithm.SECP256K1);
    const svc = cred('svc').principalId;
    const rule = { operations: [SignOperation.PERSONAL_SIGN] };
    await grant(key.keyId, { id: 'svc', principal: { kind: PrincipalKind.SERVICE, id: svc }, rule });
    // The same id again replaces the grant.
    const version = await grant(key.keyId, { id: 'svc', principal: { kind: PrincipalKind.SERVICE, id: svc }, rule: { operations: [SignOperation.PERSONAL_SIGN, SignOperation.EIP712] } });
    const policy = (await as('alice').policy.getPolicy({ keyId: key.keyId })).policy;
    expect(policy?.grants.map((g) => [g.id, g.rule?.operations])).toEqual([['svc', [SignOperation.PERSONAL_SIGN, SignOperation.EIP712]]]);
    await as('svc').signing.sign(request('eip712', key.keyId));
    record(svc, 'eip712', key.keyId, 'allow', 'GRANT');

    const revoked = await as('alice').policy.revoke({ keyId: key.keyId, grantId: 'svc' });
    record(ids.alice, 'revoke', key.keyId, 'allow', 'OWNER');
    expect(revoked.policy?.version).toBe(version + 1n);
    expect(revoked.policy?.grants).toEqual([]);
    expect(await codeOf(as('svc').signing.sign(request('eip712', key.keyId)))).toBe('KEY_NOT_FOUND');
    record(svc, 'eip712', key.keyId, 'deny', 'NOT_GRANTED');

    for (const grantId of ['svc', 'never-existed']) {
      expect(await codeOf(as('alice').policy.revoke({ keyId: key.keyId, grantId })), grantId).toBe('GRANT_NOT_FOUND');
      record(ids.alice, 'revoke', key.keyId, 'deny', 'GRANT_NOT_FOUND');
    }
    expect(await policyVersion(key.keyId)).toBe(version + 1n);
  });

  it('only the owner reads or changes a policy; everyone else gets KEY_NOT_FOUND', async () => {
    const key = await sealKey(KeyAlgorithm.SECP256K1);
    const svc = cred('svc').principalId;
    const version = await grant(key.keyId, { id: 'svc', principal: { kind: PrincipalKind.SERVICE, id: svc }, rule: { operations: [SignOperation.PERSONAL_SIGN] } });
    const before = (await as('alice').policy.getPolicy({ keyId: key.keyId })).policy;
    const more = { id: 'more', principal: { kind: PrincipalKind.SERVICE, id: svc }, rule: { operations: [SignOperation.EIP712] } };
    const others = [
      ['svc', svc],
      ['bob', ids.bob],
      ['stranger', cred('stranger').principalId],
    ] as const;
    for (const [who, principal] of others) {
      const client = as(who);
      expect(await codeOf(client.policy.grant({ keyId: key.keyId, grant: more })), who).toBe('KEY_NOT_FOUND');
      record(principal, 'grant', key.keyId, 'deny', 'KEY_NOT_FOUND');
      expect(await codeOf(client.policy.revoke({ keyId: key.keyId, grantId: 'svc' })), who).toBe('KEY_NOT_FOUND');
      record(principal, 'revoke', key.keyId, 'deny', 'KEY_NOT_FOUND');
      expect(await codeOf(client.policy.setOwnerRule({ keyId: key.keyId })), who).toBe('KEY_NOT_FOUND');
      record(principal, 'set_owner_rule', key.keyId, 'deny', 'KEY_NOT_FOUND');
      expect(await codeOf(client.policy.getPolicy({ keyId: key.keyId })), who).toBe('KEY_NOT_FOUND');
    }
    expect((await as('alice').policy.getPolicy({ keyId: key.keyId })).policy).toEqual(before);
    expect(before?.version).toBe(version);
  });

  it('malformed grants are refused and leave the policy as it was', async () => {
    const key = await sealKey(KeyAlgorithm.SECP256K1);
    const svc = cred('svc').principalId;
    await grant(key.keyId, { id: 'ok', principal: { kind: PrincipalKind.SERVICE, id: svc }, rule: { operations: [SignOperation.PERSONAL_SIGN] } });
    const before = (await as('alice').policy.getPolicy({ keyId: key.keyId })).policy;
    const principal = { kind: PrincipalKind.SERVICE, id: svc };
    const ops = [SignOperation.PERSONAL_SIGN];
    const day = BigInt(DAY);
    // [what, grant, code, audited]: the domain's checks (core/policy.ts checkKeyPolicy) are decisions
    // and audited; a wire value with no domain meaning (wire.ts) is refused before that.
    const cases: [string, GrantInit | undefined, string, boolean][] = [
      ['empty operations', { id: 'g', principal, rule: { operations: [] } }, 'MALFORMED_REQUEST', true],
      ['duplicate operations', { id: 'g', principal, rule: { operations: [SignOperation.EIP712, SignOperation.EIP712] } }, 'MALFORMED_REQUEST', true],
      ['unspecified operation', { id: 'g', principal, rule: { operations: [SignOperation.UNSPECIFIED] } }, 'MALFORMED_REQUEST', false],
      ['short verifying contract', { id: 'g', principal, rule: { operations: ops, eip712: { verifyingContracts: ['0x1234'] } } }, 'MALFORMED_REQUEST', true],
      ['verifying contract without 0x', { id: 'g', principal, rule: { operations: ops, eip712: { verifyingContracts: ['c'.repeat(40)] } } }, 'MALFORMED_REQUEST', true],
      ['hex chain id', { id: 'g', principal, rule: { operations: ops, eip712: { chainIds: ['0x1'] } } }, 'MALFORMED_REQUEST', false],
      ['duplicate cap windows', { id: 'g', principal, rule: { operations: ops, caps: [{ limit: 1n, windowMs: day }, { limit: 2n, windowMs: day }] } }, 'MALFORMED_REQUEST', true],
      ['cap window under a second', { id: 'g', principal, rule: { operations: ops, caps: [{ limit: 1n, windowMs: 999n }] } }, 'MALFORMED_REQUEST', true],
      ['cap of 0', { id: 'g', principal, rule: { operations: ops, caps: [{ limit: 0n, windowMs: day }] } }, 'MALFORMED_REQUEST', true],
      ['five caps', { id: 'g', principal, rule: { operations: ops, caps: [1, 2, 3, 4, 5].map((d) => ({ limit: 1n, windowMs: BigInt(d) * day })) } }, 'PAYLOAD_TOO_LARGE', true],
      ['rate limit of capacity 0', { id: 'g', principal, rule: { operations: ops, rateLimit: { capacity: 0, refillTokens: 1, refillPeriodMs: 1000n } } }, 'MALFORMED_REQUEST', true],
      ['notBefore after notAfter', { id: 'g', principal, rule: { operations: ops, notBeforeMs: 2000n, notAfterMs: 1000n } }, 'MALFORMED_REQUEST', true],
      ['empty grant id', { id: '', principal, rule: { operations: ops } }, 'MALFORMED_REQUEST', true],
      ['grant id with a space', { id: 'a b', principal, rule: { operations: ops } }, 'MALFORMED_REQUEST', true],
      ['grant id of 65 characters', { id: 'g'.repeat(65), principal, rule: { operations: ops } }, 'MALFORMED_REQUEST', true],
      ['empty principal id', { id: 'g', principal: { kind: PrincipalKind.SERVICE, id: '' }, rule: { operations: ops } }, 'MALFORMED_REQUEST', true],
      ['unspecified principal kind', { id: 'g', principal: { kind: PrincipalKind.UNSPECIFIED, id: svc }, rule: { operations: ops } }, 'MALFORMED_REQUEST', false],
      ['a grant to the owner', { id: 'g', principal: { kind: PrincipalKind.PERSON, id: ids.alice }, rule: { operations: ops } }, 'MALFORMED_REQUEST', true],
      ['no rule', { id: 'g', principal }, 'MISSING_FIELD', false],
      ['no grant', undefined, 'MISSING_FIELD', false],
    ];
    for (const [what, g, code, audited] of cases) {
      expect(await codeOf(as('alice').policy.grant({ keyId: key.keyId, ...(g === undefined ? {} : { grant: g }) })), what).toBe(code);
      if (audited) record(ids.alice, 'grant', key.keyId, 'deny', code);
    }
    expect((await as('alice').policy.getPolicy({ keyId: key.keyId })).policy).toEqual(before);
    // Still working as granted.
    await as('svc').signing.sign(request('personal_sign', key.keyId));
    record(svc, 'personal_sign', key.keyId, 'allow', 'GRANT');
  });

  // Late: moves the clock to the next UTC day, past the sessions' lifetime.
  it('a daily cap opens again in the next UTC day', async () => {
    clock.advance(DAY - (clock.now() % DAY) - 1);
    await capSign('svc', 'CAP_EXCEEDED');
    clock.advance(1);
    for (let i = 0; i < 3; i++) await capSign('svc', 'no-error');
    await capSign('svc', 'CAP_EXCEEDED');
  });

  // Last: reads every decision above back from the log.
  it('the audit log verifies against the identity key and holds every decision above, in order', async () => {
    const all = await auditAll(app, as('auditor'));
    expect(all.length).toBeGreaterThan(expected.length);
    const mine = all.filter((r) => tracked.has(r.keyId)).map(decisionOf);
    expect(mine).toEqual(expected);
  });
});
