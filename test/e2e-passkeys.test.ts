// People end to end (proto/openkey/v1/passkeys.proto, PasskeyApproval in common.proto): passkey
// registration and sign-in against a real appliance with the software authenticator, WebAuthn L3
// §7.1/§7.2 checks (challenge, origin, RP ID, user verification, signature counter), sessions and
// their end, and passkey approvals of single requests (proto/protocol/approval.ts). Every refusal
// is asserted by its code, by the state it left alone (no session, counter, policy version) and by
// the one deny record it added to the verified audit chain. Signatures are checked with viem.

import { create } from '@bufbuild/protobuf';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recoverMessageAddress, recoverTypedDataAddress, type Hex } from 'viem';
import { KeyAlgorithm } from '../proto/gen/openkey/v1/common_pb.ts';
import { GrantRequestSchema, PrincipalKind, SetOwnerRuleRequestSchema, SignOperation, type GrantRequest } from '../proto/gen/openkey/v1/policy_pb.ts';
import { PrincipalRole } from '../proto/gen/openkey/v1/principals_pb.ts';
import { SignBatchRequestSchema, SignRequestSchema, type SignRequest } from '../proto/gen/openkey/v1/signing_pb.ts';
import { openKeyErrorCode, type OpenKeyClient } from '../clients/src/index.ts';
import type { AuditHead, AuditRecord } from '../server/src/core/ports.ts';
import { startTestAppliance, type TestAppliance } from './support/appliance.ts';
import {
  ManualClock,
  ORIGIN,
  PASSKEY_ENV,
  RP_ID,
  anonymous,
  approve,
  auditMark,
  auditSince,
  beginSignIn,
  clientFor,
  creationOptions,
  decisionOf,
  personIdOf,
  registerPerson,
  serviceClient,
  signIn,
  type Service,
  type SignedIn,
} from './support/people.ts';
import { SoftAuthenticator } from './support/soft-authenticator.ts';
import { codeOf } from './support/codes.ts';

const MAIL_JSON = readFileSync(fileURLToPath(new URL('../clients/examples/mail.json', import.meta.url)), 'utf8');
const MAIL = JSON.parse(MAIL_JSON) as Parameters<typeof recoverTypedDataAddress>[0];

/** A fixed instant (a UTC morning), so every time the appliance sees is the test's. */
const T0 = Date.UTC(2031, 0, 6, 1, 0, 0);
const MINUTE = 60_000;
const SIGN = '/openkey.v1.SignService/Sign';
const SIGN_BATCH = '/openkey.v1.SignService/SignBatch';
const GRANT = '/openkey.v1.PolicyService/Grant';
const SET_OWNER_RULE = '/openkey.v1.PolicyService/SetOwnerRule';

const enc = (s: string) => new TextEncoder().encode(s);
const hex = (b: Uint8Array): Hex => `0x${Buffer.from(b).toString('hex')}`;
const personal = (keyId: string, message: string): SignRequest =>
  create(SignRequestSchema, { keyId, payload: { kind: { case: 'personalMessage', value: { message: enc(message) } } } });
const typed = (keyId: string): SignRequest => create(SignRequestSchema, { keyId, payload: { kind: { case: 'typedData', value: { json: MAIL_JSON } } } });


/** Stored counters by credential id, as ListPasskeys reports them. */
async function counters(client: OpenKeyClient): Promise<Record<string, number>> {
  const res = await client.passkeys.listPasskeys({});
  return Object.fromEntries(res.passkeys.map((p) => [p.credentialId, p.counter]));
}

describe('passkeys: registration, sign-in and sessions', () => {
  const clock = new ManualClock(T0);
  let app: TestAppliance;
  let auditor: Service;
  const laptop = new SoftAuthenticator({ origin: ORIGIN });
  const phone = new SoftAuthenticator({ origin: ORIGIN });
  let aliceId = '';
  let laptopId = '';

  const mark = (): Promise<AuditHead> => auditMark(app, auditor.client);
  const since = (m: AuditHead): Promise<AuditRecord[]> => auditSince(app, auditor.client, auditor.id, m);
  const alice = (): Promise<SignedIn> => signIn(app, laptop, { clock, overrides: { credentialId: laptopId } });

  beforeAll(async () => {
    app = await startTestAppliance({ env: PASSKEY_ENV, clock });
    auditor = await serviceClient(app, { clock, name: 'auditor' });
  });
  afterAll(async () => app.dispose());

  it('registers a person and signs in; the session stamps as that person', async () => {
    const m = await mark();
    const reg = await registerPerson(app, laptop, 'Alice', { passkeyName: 'laptop' });
    expect(reg.personId).toMatch(/^usr_[0-9a-f]{32}$/);
    expect(reg.credentialId).toBe(laptop.credentialIds[0]);
    aliceId = reg.personId;
    laptopId = reg.credentialId;

    const s = await alice();
    expect(s.session.personId).toBe(aliceId);
    expect(s.session.id).toBe(s.credentials.principalId);
    expect(s.session.id).toMatch(/^svc_[0-9a-f]{32}$/);
    expect(s.session.expiresAtMs).toBe(BigInt(clock.now() + 15 * MINUTE));
    const me = await s.client.principals.whoAmI({});
    expect(me.principal?.role).toBe(PrincipalRole.PERSON);
    expect(me.principal?.id).toBe(aliceId);

    expect((await since(m)).map(decisionOf)).toEqual([
      { principal: aliceId, operation: 'register_passkey', keyId: '', decision: 'allow', reason: 'OWNER' },
      { principal: aliceId, operation: 'login', keyId: '', decision: 'allow', reason: 'OWNER' },
    ]);
  });

  it('a person holds several passkeys: both sign in, both are listed, counters persist', async () => {
    const s = await alice();
    clock.advance(1_000); // ListPasskeys orders by registration time
    const begin = await s.client.passkeys.beginRegistration({ displayName: 'ignored for an existing person' });
    const options = creationOptions(begin.optionsJson);
    expect(personIdOf(options)).toBe(aliceId);
    expect((options.excludeCredentials ?? []).map((c) => c.id)).toEqual([laptopId]);
    const second = await registerPerson(app, phone, '', { session: s.client, passkeyName: 'phone' });
    expect(second.personId).toBe(aliceId);

    const before = await s.client.passkeys.listPasskeys({});
    expect(before.passkeys.map((p) => [p.credentialId, p.name])).toEqual([
      [laptopId, 'laptop'],
      [second.credentialId, 'phone'],
    ]);
    const laptopBefore = before.passkeys[0]?.counter ?? -1;
    expect(before.passkeys[1]?.counter).toBe(0);
    expect(before.passkeys[1]?.lastUsedAtMs).toBe(0n);

    clock.advance(1_000);
    const viaPhone = await signIn(app, phone, { clock });
    expect(viaPhone.session.personId).toBe(aliceId);
    await alice();
    await alice();
    const after = await viaPhone.client.passkeys.listPasskeys({});
    expect(after.passkeys.map((p) => p.counter)).toEqual([laptopBefore + 2, 1]);
    expect(after.passkeys.map((p) => p.lastUsedAtMs)).toEqual([BigInt(clock.now()), BigInt(clock.now())]);
    // Both sessions act as the same person.
    expect((await viaPhone.client.principals.whoAmI({})).principal?.id).toBe(aliceId);
  });

  it('a registration response is accepted once', async () => {
    const authn = new SoftAuthenticator({ origin: ORIGIN });
    const begin = await anonymous(app).passkeys.beginRegistration({ displayName: 'Replay' });
    const response = JSON.stringify(authn.register(creationOptions(begin.optionsJson)));
    const first = await anonymous(app).passkeys.finishRegistration({ responseJson: response, passkeyName: 'once' });
    const m = await mark();
    expect(await codeOf(anonymous(app).passkeys.finishRegistration({ responseJson: response, passkeyName: 'twice' }))).toBe('WEBAUTHN_CHALLENGE_INVALID');
    // The used challenge is gone before anything else is looked at: no decision about anyone.
    expect(await since(m)).toEqual([]);
    const s = await signIn(app, authn, { clock });
    expect((await s.client.passkeys.listPasskeys({})).passkeys.map((p) => p.credentialId)).toEqual([first.credentialId]);
  });

  it('a sign-in response is accepted once, and makes no second session', async () => {
    const pending = await beginSignIn(app);
    const response = JSON.stringify(laptop.assert(pending.options, { credentialId: laptopId }));
    const fin = await anonymous(app).passkeys.finishLogin({ responseJson: response });
    expect(fin.session?.id).toBe(pending.credentials.principalId);
    const session = clientFor(app, pending.credentials, clock);
    const stored = await counters(session);
    const m = await mark();

    expect(await codeOf(anonymous(app).passkeys.finishLogin({ responseJson: response }))).toBe('WEBAUTHN_CHALLENGE_INVALID');
    // Someone who captured the response starts a sign-in for their own session key and answers it
    // with the captured assertion: its challenge is the old, used one.
    const thief = await beginSignIn(app);
    expect(await codeOf(anonymous(app).passkeys.finishLogin({ responseJson: response }))).toBe('WEBAUTHN_CHALLENGE_INVALID');
    expect(await codeOf(clientFor(app, thief.credentials, clock).principals.whoAmI({}))).toBe('STAMP_INVALID');
    expect(await since(m)).toEqual([]);
    expect(await counters(session)).toEqual(stored);
    expect((await session.principals.whoAmI({})).principal?.id).toBe(aliceId);
  });

  it('a challenge expires five minutes after it was issued', async () => {
    // Just inside: issued at t, answered at t + 5 min − 1 ms.
    const inside = await beginSignIn(app);
    clock.advance(5 * MINUTE - 1);
    await anonymous(app).passkeys.finishLogin({ responseJson: JSON.stringify(laptop.assert(inside.options, { credentialId: laptopId })) });

    const s = await alice();
    const stored = await counters(s.client);
    const login = await beginSignIn(app);
    const authn = new SoftAuthenticator({ origin: ORIGIN });
    const reg = await anonymous(app).passkeys.beginRegistration({ displayName: 'Late' });
    clock.advance(5 * MINUTE);
    const m = await mark();
    expect(await codeOf(anonymous(app).passkeys.finishLogin({ responseJson: JSON.stringify(laptop.assert(login.options, { credentialId: laptopId })) }))).toBe(
      'WEBAUTHN_CHALLENGE_INVALID',
    );
    expect(await codeOf(clientFor(app, login.credentials, clock).principals.whoAmI({}))).toBe('STAMP_INVALID');
    const late = authn.register(creationOptions(reg.optionsJson));
    expect(await codeOf(anonymous(app).passkeys.finishRegistration({ responseJson: JSON.stringify(late), passkeyName: 'late' }))).toBe('WEBAUTHN_CHALLENGE_INVALID');
    expect(await since(m)).toEqual([]);
    expect(await counters(s.client)).toEqual(stored);
    // The late credential was never stored: it cannot sign in.
    const m2 = await mark();
    expect(await codeOf(signIn(app, authn, { clock }))).toBe('WEBAUTHN_INVALID');
    expect((await since(m2)).map(decisionOf)).toEqual([{ principal: '', operation: 'login', keyId: '', decision: 'deny', reason: 'WEBAUTHN_INVALID' }]);
  });

  describe('a response that fails a WebAuthn check changes nothing and is audited', () => {
    const cases: [string, { origin?: string; rpId?: string; userVerified?: boolean; crossOrigin?: boolean }][] = [
      ['WEBAUTHN_ORIGIN_MISMATCH', { origin: 'https://evil.example' }],
      ['WEBAUTHN_ORIGIN_MISMATCH', { origin: 'http://localhost' }],
      ['WEBAUTHN_ORIGIN_MISMATCH', { crossOrigin: true }],
      ['WEBAUTHN_RP_ID_MISMATCH', { rpId: 'evil.example' }],
      ['WEBAUTHN_RP_ID_MISMATCH', { rpId: `sub.${RP_ID}` }],
      ['WEBAUTHN_USER_VERIFICATION_REQUIRED', { userVerified: false }],
    ];

    it.each(cases)('registering a new person: %s %j', async (code, overrides) => {
      const authn = new SoftAuthenticator({ origin: ORIGIN });
      const begin = await anonymous(app).passkeys.beginRegistration({ displayName: 'Mallory' });
      const options = creationOptions(begin.optionsJson);
      const m = await mark();
      const response = authn.register(options, overrides);
      expect(await codeOf(anonymous(app).passkeys.finishRegistration({ responseJson: JSON.stringify(response), passkeyName: 'x' }))).toBe(code);
      expect((await since(m)).map(decisionOf)).toEqual([{ principal: personIdOf(options), operation: 'register_passkey', keyId: '', decision: 'deny', reason: code }]);
      // Not stored: the credential is unknown to sign-in.
      expect(await codeOf(signIn(app, authn, { clock }))).toBe('WEBAUTHN_INVALID');
    });

    it.each(cases)('adding a passkey from a session: %s %j', async (code, overrides) => {
      const s = await alice();
      const before = await s.client.passkeys.listPasskeys({});
      const begin = await s.client.passkeys.beginRegistration({ displayName: '' });
      const m = await mark();
      const response = new SoftAuthenticator({ origin: ORIGIN }).register(creationOptions(begin.optionsJson), overrides);
      expect(await codeOf(anonymous(app).passkeys.finishRegistration({ responseJson: JSON.stringify(response), passkeyName: 'x' }))).toBe(code);
      expect((await since(m)).map(decisionOf)).toEqual([{ principal: aliceId, operation: 'register_passkey', keyId: '', decision: 'deny', reason: code }]);
      expect(await s.client.passkeys.listPasskeys({})).toEqual(before);
    });

    it.each(cases)('signing in: %s %j', async (code, overrides) => {
      const s = await alice();
      const stored = await counters(s.client);
      const pending = await beginSignIn(app);
      const m = await mark();
      const response = laptop.assert(pending.options, { credentialId: laptopId, ...overrides });
      expect(await codeOf(anonymous(app).passkeys.finishLogin({ responseJson: JSON.stringify(response) }))).toBe(code);
      // No session: the session key is unknown to the appliance.
      expect(await codeOf(clientFor(app, pending.credentials, clock).principals.whoAmI({}))).toBe('STAMP_INVALID');
      expect(await counters(s.client)).toEqual(stored);
      expect((await since(m)).map(decisionOf)).toEqual([{ principal: '', operation: 'login', keyId: '', decision: 'deny', reason: code }]);
    });
  });

  it('a signature counter that does not grow past the stored one is refused (cloned authenticator)', async () => {
    const s = await alice();
    const stored = (await counters(s.client))[laptopId] ?? 0;
    expect(stored).toBeGreaterThan(0);
    for (const counter of [stored, stored - 1, 0]) {
      const pending = await beginSignIn(app);
      const m = await mark();
      const response = laptop.assert(pending.options, { credentialId: laptopId, counter });
      expect(await codeOf(anonymous(app).passkeys.finishLogin({ responseJson: JSON.stringify(response) })), `counter ${counter}`).toBe('WEBAUTHN_COUNTER_REGRESSION');
      expect(await codeOf(clientFor(app, pending.credentials, clock).principals.whoAmI({}))).toBe('STAMP_INVALID');
      expect((await counters(s.client))[laptopId]).toBe(stored);
      expect((await since(m)).map(decisionOf)).toEqual([{ principal: '', operation: 'login', keyId: '', decision: 'deny', reason: 'WEBAUTHN_COUNTER_REGRESSION' }]);
    }
    // A counter past the stored one is accepted again, and stored.
    const next = await signIn(app, laptop, { clock, overrides: { credentialId: laptopId, counter: stored + 10 } });
    expect((await counters(next.client))[laptopId]).toBe(stored + 10);
  });

  it('a session ends after its lifetime', async () => {
    const s = await alice();
    const expiresAt = Number(s.session.expiresAtMs);
    expect(expiresAt).toBe(clock.now() + 15 * MINUTE);
    clock.advance(15 * MINUTE - 1);
    expect((await s.client.principals.whoAmI({})).principal?.id).toBe(aliceId);
    clock.advance(1);
    expect(await codeOf(s.client.principals.whoAmI({}))).toBe('SESSION_EXPIRED');
    expect(await codeOf(s.client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1 }))).toBe('SESSION_EXPIRED');
    expect(await codeOf(s.client.passkeys.listPasskeys({}))).toBe('SESSION_EXPIRED');
    // Signing in again gives a new session.
    expect((await (await alice()).client.principals.whoAmI({})).principal?.id).toBe(aliceId);
  });

  it('logout ends only the calling session', async () => {
    const a = await alice();
    const b = await alice();
    const m = await mark();
    await a.client.passkeys.logout({});
    expect(await codeOf(a.client.principals.whoAmI({}))).toBe('SESSION_EXPIRED');
    expect(await codeOf(a.client.passkeys.logout({}))).toBe('SESSION_EXPIRED');
    expect((await b.client.principals.whoAmI({})).principal?.id).toBe(aliceId);
    expect((await since(m)).map(decisionOf)).toEqual([{ principal: aliceId, operation: 'logout', keyId: '', decision: 'allow', reason: 'OWNER' }]);
    // A service is not a session.
    expect(await codeOf(auditor.client.passkeys.logout({}))).toBe('PERMISSION_DENIED');
  });

  it("another person's session cannot see or use your key: the same answer as for no key", async () => {
    const a = await alice();
    const key = (await a.client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1 })).key;
    expect(key?.owner).toBe(aliceId);
    const keyId = key?.keyId ?? '';
    const signature = (await a.client.signing.sign(personal(keyId, 'mine'))).signature;
    expect(await recoverMessageAddress({ message: 'mine', signature: hex(signature) })).toBe(key?.address);

    const bobAuthn = new SoftAuthenticator({ origin: ORIGIN });
    const bobId = (await registerPerson(app, bobAuthn, 'Bob')).personId;
    const bob = await signIn(app, bobAuthn, { clock });
    const unknown = `key_${'0'.repeat(32)}`;
    const m = await mark();
    for (const id of [keyId, unknown]) {
      expect(await codeOf(bob.client.signing.sign(personal(id, 'theirs'))), id).toBe('KEY_NOT_FOUND');
      expect(await codeOf(bob.client.keys.getKey({ keyId: id })), id).toBe('KEY_NOT_FOUND');
      expect(await codeOf(bob.client.policy.getPolicy({ keyId: id })), id).toBe('KEY_NOT_FOUND');
    }
    expect((await since(m)).map(decisionOf)).toEqual([
      { principal: bobId, operation: 'personal_sign', keyId, decision: 'deny', reason: 'NOT_GRANTED' },
      { principal: bobId, operation: 'personal_sign', keyId: unknown, decision: 'deny', reason: 'KEY_UNKNOWN' },
    ]);
    expect((await bob.client.keys.listKeys({})).keys).toEqual([]);
  });

  // Last: the appliance restarts on a new port (OPENKEY_ORIGINS keeps the origin valid).
  it('a challenge survives a restart', async () => {
    const login = await beginSignIn(app);
    const authn = new SoftAuthenticator({ origin: ORIGIN });
    const reg = await anonymous(app).passkeys.beginRegistration({ displayName: 'Restarted' });
    app = await app.restart();
    auditor = { ...auditor, client: clientFor(app, auditor.credentials, clock) };
    const fin = await anonymous(app).passkeys.finishLogin({ responseJson: JSON.stringify(laptop.assert(login.options, { credentialId: laptopId })) });
    expect(fin.session?.personId).toBe(aliceId);
    expect((await clientFor(app, login.credentials, clock).principals.whoAmI({})).principal?.id).toBe(aliceId);
    const registered = await anonymous(app).passkeys.finishRegistration({ responseJson: JSON.stringify(authn.register(creationOptions(reg.optionsJson))), passkeyName: 'r' });
    expect(registered.personId).toBe(personIdOf(creationOptions(reg.optionsJson)));
    expect((await (await signIn(app, authn, { clock })).client.principals.whoAmI({})).principal?.id).toBe(registered.personId);
  });
});

describe('passkey approvals of single requests', () => {
  const clock = new ManualClock(T0);
  let app: TestAppliance;
  let auditor: Service;
  const aliceAuthn = new SoftAuthenticator({ origin: ORIGIN });
  const bobAuthn = new SoftAuthenticator({ origin: ORIGIN });
  let aliceId = '';
  let alice: SignedIn;
  let bob: SignedIn;
  let keyId = '';
  let address = '';
  let otherKeyId = '';

  const mark = (): Promise<AuditHead> => auditMark(app, auditor.client);
  const since = (m: AuditHead): Promise<AuditRecord[]> => auditSince(app, auditor.client, auditor.id, m);
  const aliceCounter = async (): Promise<number> => (await counters(alice.client))[aliceAuthn.credentialIds[0] ?? ''] ?? -1;
  const policyVersion = async (id = keyId): Promise<bigint> => (await alice.client.policy.getPolicy({ keyId: id })).policy?.version ?? -1n;
  const signRecord = (reason: string, decision = 'deny', operation = 'personal_sign', key = keyId) => ({ principal: aliceId, operation, keyId: key, decision, reason });

  beforeAll(async () => {
    // Long sessions: this suite moves the clock past approval windows, not past sessions.
    app = await startTestAppliance({ env: { ...PASSKEY_ENV, OPENKEY_SESSION_TTL_MS: String(24 * 60 * MINUTE) }, clock });
    auditor = await serviceClient(app, { clock, name: 'auditor' });
    aliceId = (await registerPerson(app, aliceAuthn, 'Alice')).personId;
    alice = await signIn(app, aliceAuthn, { clock });
    await registerPerson(app, bobAuthn, 'Bob');
    bob = await signIn(app, bobAuthn, { clock });
    const key = (await alice.client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1 })).key;
    keyId = key?.keyId ?? '';
    address = key?.address ?? '';
    otherKeyId = (await alice.client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1 })).key?.keyId ?? '';
    const rule = { operations: [SignOperation.PERSONAL_SIGN, SignOperation.EIP712], requireApproval: true };
    await alice.client.policy.setOwnerRule({ keyId, rule });
    await alice.client.policy.setOwnerRule({ keyId: otherKeyId, rule });
  });
  afterAll(async () => app.dispose());

  it('an owner rule that requires approval refuses an unapproved Sign', async () => {
    const counter = await aliceCounter();
    const m = await mark();
    expect(await codeOf(alice.client.signing.sign(personal(keyId, 'no approval')))).toBe('APPROVAL_REQUIRED');
    expect((await since(m)).map(decisionOf)).toEqual([signRecord('APPROVAL_REQUIRED')]);
    expect(await aliceCounter()).toBe(counter);
  });

  it("the owner's approval of the exact request lets it through; viem recovers the key's address", async () => {
    const counter = await aliceCounter();
    const req = personal(keyId, 'approved');
    req.approval = approve(aliceAuthn, SIGN, SignRequestSchema, req, clock.now());
    const m = await mark();
    const res = await alice.client.signing.sign(req);
    expect(await recoverMessageAddress({ message: 'approved', signature: hex(res.signature) })).toBe(address);

    const doc = typed(keyId);
    doc.approval = approve(aliceAuthn, SIGN, SignRequestSchema, doc, clock.now());
    const typedRes = await alice.client.signing.sign(doc);
    expect(await recoverTypedDataAddress({ ...MAIL, signature: hex(typedRes.signature) })).toBe(address);

    expect((await since(m)).map(decisionOf)).toEqual([signRecord('OWNER_RULE', 'allow'), signRecord('OWNER_RULE', 'allow', 'eip712')]);
    // Each approval was one assertion by the passkey: its counter moved with it.
    expect(await aliceCounter()).toBe(counter + 2);
  });

  it('an approval is used once (a new stamp does not make it new)', async () => {
    const req = personal(keyId, 'once');
    req.approval = approve(aliceAuthn, SIGN, SignRequestSchema, req, clock.now());
    await alice.client.signing.sign(req);
    const counter = await aliceCounter();
    const m = await mark();
    expect(await codeOf(alice.client.signing.sign(req))).toBe('APPROVAL_INVALID');
    expect((await since(m)).map(decisionOf)).toEqual([signRecord('APPROVAL_INVALID')]);
    expect(await aliceCounter()).toBe(counter);
  });

  it('an approval is used once, also from a passkey that keeps its counter at 0', async () => {
    // Synced passkeys often do not count (WebAuthn §6.1.1): only the single-use marker stops a replay.
    const synced = new SoftAuthenticator({ origin: ORIGIN, backedUp: true });
    const added = await registerPerson(app, synced, '', { session: alice.client, passkeyName: 'synced', overrides: { counter: 0 } });
    const req = personal(keyId, 'once, uncounted');
    req.approval = approve(synced, SIGN, SignRequestSchema, req, clock.now(), { counter: 0 });
    const res = await alice.client.signing.sign(req);
    expect(await recoverMessageAddress({ message: 'once, uncounted', signature: hex(res.signature) })).toBe(address);
    const m = await mark();
    expect(await codeOf(alice.client.signing.sign(req))).toBe('APPROVAL_INVALID');
    expect((await since(m)).map(decisionOf)).toEqual([signRecord('APPROVAL_INVALID')]);
    expect((await counters(alice.client))[added.credentialId]).toBe(0);
  });

  it('concurrent approvals by one passkey: each is signed or refused as APPROVAL_INVALID, and each is audited', async () => {
    // Racing uses of one passkey meet at its counter's compare-and-set: whichever loses is refused
    // like any approval that is no longer good, never with another code, never unaudited.
    const requests = Array.from({ length: 6 }, (_, i) => personal(keyId, `race ${i}`));
    for (const r of requests) r.approval = approve(aliceAuthn, SIGN, SignRequestSchema, r, clock.now());
    const m = await mark();
    const results = await Promise.allSettled(requests.map((r) => alice.client.signing.sign(r)));
    const outcomes = results.map((r) => (r.status === 'fulfilled' ? 'signed' : (openKeyErrorCode(r.reason) ?? 'not-an-appliance-error')));
    for (const o of outcomes) expect(['signed', 'APPROVAL_INVALID']).toContain(o);
    expect(outcomes).toContain('signed');
    const records = (await since(m)).map(decisionOf);
    expect(records).toHaveLength(6);
    const tally = (reason: string) => records.filter((r) => r.reason === reason).length;
    expect(tally('OWNER_RULE')).toBe(outcomes.filter((o) => o === 'signed').length);
    expect(tally('APPROVAL_INVALID')).toBe(outcomes.filter((o) => o === 'APPROVAL_INVALID').length);
  });

  it('an approval covers one exact request: another payload, key, time or method is refused', async () => {
    const req = personal(keyId, 'the approved one');
    const approval = approve(aliceAuthn, SIGN, SignRequestSchema, req, clock.now());
    const counter = await aliceCounter();
    const version = await policyVersion();
    const variants: [string, () => Promise<unknown>, ReturnType<typeof signRecord>][] = [
      ['another payload', () => alice.client.signing.sign({ ...personal(keyId, 'a different one'), approval }), signRecord('APPROVAL_INVALID')],
      ['another key', () => alice.client.signing.sign({ ...personal(otherKeyId, 'the approved one'), approval }), signRecord('APPROVAL_INVALID', 'deny', 'personal_sign', otherKeyId)],
      ['another time', () => alice.client.signing.sign({ ...req, approval: { ...approval, issuedAtMs: approval.issuedAtMs + 1n } }), signRecord('APPROVAL_INVALID')],
      ['another method', () => alice.client.signing.signBatch({ items: [req], approval }), signRecord('APPROVAL_INVALID')],
    ];
    for (const [what, call, record] of variants) {
      const m = await mark();
      expect(await codeOf(call()), what).toBe('APPROVAL_INVALID');
      expect((await since(m)).map(decisionOf), what).toEqual([record]);
    }
    expect(await aliceCounter()).toBe(counter);
    expect(await policyVersion()).toBe(version);
    // The approval itself was never consumed: the request it covers still goes through.
    const res = await alice.client.signing.sign({ ...req, approval });
    expect(await recoverMessageAddress({ message: 'the approved one', signature: hex(res.signature) })).toBe(address);
  });

  it('an approval is valid for five minutes either side of its time', async () => {
    const exactly = personal(keyId, 'five minutes old');
    exactly.approval = approve(aliceAuthn, SIGN, SignRequestSchema, exactly, clock.now());
    const stale = personal(keyId, 'five minutes and a millisecond old');
    stale.approval = approve(aliceAuthn, SIGN, SignRequestSchema, stale, clock.now());
    const future = personal(keyId, 'from the future');
    // Checked at t + 5 min + 1 ms, this one is then 5 min + 1 ms ahead.
    future.approval = approve(aliceAuthn, SIGN, SignRequestSchema, future, clock.now() + 10 * MINUTE + 2);
    clock.advance(5 * MINUTE);
    await alice.client.signing.sign(exactly);
    clock.advance(1);
    const counter = await aliceCounter();
    const m = await mark();
    expect(await codeOf(alice.client.signing.sign(stale))).toBe('APPROVAL_INVALID');
    expect(await codeOf(alice.client.signing.sign(future))).toBe('APPROVAL_INVALID');
    expect((await since(m)).map(decisionOf)).toEqual([signRecord('APPROVAL_INVALID'), signRecord('APPROVAL_INVALID')]);
    expect(await aliceCounter()).toBe(counter);
  });

  it("an approval by another person's passkey does not count: APPROVAL_REQUIRED", async () => {
    const req = personal(keyId, 'bob approves');
    req.approval = approve(bobAuthn, SIGN, SignRequestSchema, req, clock.now());
    const counter = await aliceCounter();
    const m = await mark();
    // The assertion verifies (it is Bob's, of this request), so policy decides: not the owner's.
    expect(await codeOf(alice.client.signing.sign(req))).toBe('APPROVAL_REQUIRED');
    expect((await since(m)).map(decisionOf)).toEqual([signRecord('APPROVAL_MISMATCH')]);
    expect(await aliceCounter()).toBe(counter);
    // Bob sending his own approval of Alice's key learns nothing either.
    const bobs = personal(keyId, 'bob asks');
    bobs.approval = approve(bobAuthn, SIGN, SignRequestSchema, bobs, clock.now());
    expect(await codeOf(bob.client.signing.sign(bobs))).toBe('KEY_NOT_FOUND');
  });

  it('policy changes under an approval-requiring owner rule need the owner’s approval too', async () => {
    const grant = (id: string): GrantRequest =>
      create(GrantRequestSchema, {
        keyId,
        grant: { id, principal: { kind: PrincipalKind.SERVICE, id: auditor.id }, rule: { operations: [SignOperation.PERSONAL_SIGN], requireApproval: true } },
      });
    const version = await policyVersion();
    const grantRecord = (reason: string, decision = 'deny') => ({ principal: aliceId, operation: 'grant', keyId, decision, reason });

    let m = await mark();
    expect(await codeOf(alice.client.policy.grant(grant('svc')))).toBe('APPROVAL_REQUIRED');
    const byBob = grant('svc');
    // (A moment earlier than Alice's below: an approval's single-use marker is its challenge, so
    // Bob's approval of the same request at the same millisecond would use up hers.)
    byBob.approval = approve(bobAuthn, GRANT, GrantRequestSchema, byBob, clock.now() - 1);
    expect(await codeOf(alice.client.policy.grant(byBob))).toBe('APPROVAL_INVALID');
    const forAnother = grant('other');
    forAnother.approval = approve(aliceAuthn, GRANT, GrantRequestSchema, grant('svc'), clock.now());
    expect(await codeOf(alice.client.policy.grant(forAnother))).toBe('APPROVAL_INVALID');
    expect((await since(m)).map(decisionOf)).toEqual([grantRecord('APPROVAL_REQUIRED'), grantRecord('APPROVAL_INVALID'), grantRecord('APPROVAL_INVALID')]);
    expect(await policyVersion()).toBe(version);

    const ok = grant('svc');
    ok.approval = approve(aliceAuthn, GRANT, GrantRequestSchema, ok, clock.now());
    m = await mark();
    const res = await alice.client.policy.grant(ok);
    expect(res.policy?.version).toBe(version + 1n);
    expect(res.policy?.grants.map((g) => g.id)).toEqual(['svc']);
    expect(await codeOf(alice.client.policy.grant(ok))).toBe('APPROVAL_INVALID');
    expect((await since(m)).map(decisionOf)).toEqual([grantRecord('OWNER', 'allow'), grantRecord('APPROVAL_INVALID')]);
    expect(await policyVersion()).toBe(version + 1n);

    // The grant requires approval too: the service signs with the owner's approval of its request.
    const svcReq = personal(keyId, 'service, approved by the owner');
    expect(await codeOf(auditor.client.signing.sign(svcReq))).toBe('APPROVAL_REQUIRED');
    svcReq.approval = approve(aliceAuthn, SIGN, SignRequestSchema, svcReq, clock.now());
    const sig = await auditor.client.signing.sign(svcReq);
    expect(await recoverMessageAddress({ message: 'service, approved by the owner', signature: hex(sig.signature) })).toBe(address);

    // Clearing the owner rule is a change like any other.
    const clear = create(SetOwnerRuleRequestSchema, { keyId: otherKeyId });
    expect(await codeOf(alice.client.policy.setOwnerRule(clear))).toBe('APPROVAL_REQUIRED');
    clear.approval = approve(aliceAuthn, SET_OWNER_RULE, SetOwnerRuleRequestSchema, clear, clock.now());
    expect((await alice.client.policy.setOwnerRule(clear)).policy?.ownerRule).toBeUndefined();
    await alice.client.signing.sign(personal(otherKeyId, 'no approval needed any more'));
  });

  it('concurrent approved policy changes by one passkey: each is applied or refused as APPROVAL_INVALID, and each is audited', async () => {
    const key = (await alice.client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1 })).key?.keyId ?? '';
    await alice.client.policy.setOwnerRule({ keyId: key, rule: { operations: [SignOperation.PERSONAL_SIGN], requireApproval: true } });
    const version = await policyVersion(key);
    const requests = Array.from({ length: 4 }, (_, i) =>
      create(GrantRequestSchema, { keyId: key, grant: { id: `g${i}`, principal: { kind: PrincipalKind.SERVICE, id: auditor.id }, rule: { operations: [SignOperation.PERSONAL_SIGN] } } }),
    );
    for (const r of requests) r.approval = approve(aliceAuthn, GRANT, GrantRequestSchema, r, clock.now());
    const m = await mark();
    const results = await Promise.allSettled(requests.map((r) => alice.client.policy.grant(r)));
    const outcomes = results.map((r) => (r.status === 'fulfilled' ? 'applied' : (openKeyErrorCode(r.reason) ?? 'not-an-appliance-error')));
    for (const o of outcomes) expect(['applied', 'APPROVAL_INVALID']).toContain(o);
    const applied = outcomes.filter((o) => o === 'applied').length;
    expect(applied).toBeGreaterThan(0);
    expect(await policyVersion(key)).toBe(version + BigInt(applied));
    const records = (await since(m)).map(decisionOf);
    expect(records.filter((r) => r.decision === 'allow' && r.reason === 'OWNER')).toHaveLength(applied);
    expect(records.filter((r) => r.decision === 'deny' && r.reason === 'APPROVAL_INVALID')).toHaveLength(4 - applied);
    expect(records).toHaveLength(4);
  });

  it('SignBatch: one approval of the whole batch', async () => {
    const messages = ['batch one', 'batch two'];
    const items = [...messages.map((msg) => personal(keyId, msg)), typed(keyId)];
    const m = await mark();
    expect(await codeOf(alice.client.signing.signBatch({ items }))).toBe('APPROVAL_REQUIRED');
    const itemApproval = approve(aliceAuthn, SIGN, SignRequestSchema, items[0] ?? personal(keyId, ''), clock.now());
    expect(await codeOf(alice.client.signing.signBatch({ items: [{ ...personal(keyId, 'batch one'), approval: itemApproval }] }))).toBe('MALFORMED_REQUEST');

    const batch = create(SignBatchRequestSchema, { items });
    batch.approval = approve(aliceAuthn, SIGN_BATCH, SignBatchRequestSchema, batch, clock.now());
    const res = await alice.client.signing.signBatch(batch);
    expect(res.results).toHaveLength(3);
    for (const [i, msg] of messages.entries()) {
      expect(await recoverMessageAddress({ message: msg, signature: hex(res.results[i]?.signature ?? new Uint8Array()) })).toBe(address);
    }
    expect(await recoverTypedDataAddress({ ...MAIL, signature: hex(res.results[2]?.signature ?? new Uint8Array()) })).toBe(address);
    expect((await since(m)).map(decisionOf)).toEqual([
      // Unapproved: every item denied in one decision; the two personal_sign items are one record.
      { ...signRecord('APPROVAL_REQUIRED'), count: 2 },
      signRecord('APPROVAL_REQUIRED', 'deny', 'eip712'),
      { ...signRecord('OWNER_RULE', 'allow'), count: 2 },
      signRecord('OWNER_RULE', 'allow', 'eip712'),
    ]);
  });
});
