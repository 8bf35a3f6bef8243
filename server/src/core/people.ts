// People: passkey registration and sign-in, the sessions a sign-in yields, and passkey approvals of
// single requests (issue 4 items 1–2). WebAuthn verification is core/webauthn.ts; this module owns
// the state around it. Every challenge is stored, and consumed (a durable compare-and-delete) before
// the response that answers it is verified, so a challenge works once whatever the outcome, survives
// a restart and is shared by replicas of one store. Every outcome is audited.

import { approvalChallenge, APPROVAL_WINDOW_MS } from '../../../proto/protocol/approval.ts';
import { appendAudit } from './audit.ts';
import type { Authenticated } from './auth.ts';
import { toHex, utf8 } from './bytes.ts';
import { OpenKeyError, isOpenKeyError, type ErrorCode } from './errors.ts';
import { principalIdFor } from './ids.ts';
import { IssuanceBound } from './issuance-bound.ts';
import type { Change, Clock, PrincipalAlgorithm, Random, Store, StoredDoc } from './ports.ts';
import type { PublicKeyValidator, RegistrationMode } from './principals.ts';

export const CHALLENGE_TTL_MS = 5 * 60_000;
export const DEFAULT_SESSION_TTL_MS = 15 * 60_000;
export const MAX_PASSKEYS_PER_PERSON = 16;
export const MAX_DISPLAY_NAME = 128;
const PERSON_ID_RE = /^usr_[0-9a-f]{32}$/;
const CREDENTIAL_ID_RE = /^[A-Za-z0-9_-]{16,1364}$/;

export const isPersonId = (s: string): boolean => PERSON_ID_RE.test(s);

// ---- Stored documents (JSON, checked on read) ---------------------------------------------------

const SPACE = {
  person: 'person',
  passkey: 'passkey', // by credential id
  personPasskey: 'person-passkey', // `${personId}/${credentialId}` → {} (listing, excludeCredentials)
  challenge: 'challenge', // by base64url challenge
  session: 'session', // by session principal id
  approval: 'approval', // used approvals by challenge, until they expire
} as const;

interface PersonDoc {
  readonly name: string;
  readonly createdAt: number;
}

interface PasskeyDoc {
  readonly personId: string;
  readonly name: string;
  readonly publicKey: string; // base64url COSE key
  readonly counter: number;
  readonly transports: readonly string[];
  readonly createdAt: number;
  readonly lastUsedAt: number;
}

type ChallengeDoc =
  | { readonly purpose: 'register'; readonly personId: string; readonly newPerson: boolean; readonly displayName: string; readonly expiresAt: number }
  | { readonly purpose: 'login'; readonly algorithm: PrincipalAlgorithm; readonly publicKey: string; readonly expiresAt: number };

export interface SessionRecord {
  readonly id: string;
  readonly personId: string;
  readonly algorithm: PrincipalAlgorithm;
  readonly publicKey: Uint8Array;
  readonly createdAt: number;
  readonly expiresAt: number;
}

export interface PasskeyInfo {
  readonly credentialId: string;
  readonly name: string;
  readonly createdAt: number;
  readonly lastUsedAt: number;
  readonly counter: number;
}

const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
const unb64u = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64url'));
const encodeDoc = (v: unknown): Uint8Array => utf8(JSON.stringify(v));

function parseDoc(doc: StoredDoc, what: string): Readonly<Record<string, unknown>> {
  try {
    const v: unknown = JSON.parse(Buffer.from(doc.value).toString('utf8'));
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Readonly<Record<string, unknown>>;
  } catch {
    // fall through
  }
  throw new OpenKeyError('INTERNAL', `corrupt ${what} document`);
}

const isStr = (v: unknown): v is string => typeof v === 'string';
const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function passkeyFrom(doc: StoredDoc): PasskeyDoc {
  const o = parseDoc(doc, 'passkey');
  const { personId, name, publicKey, counter, transports, createdAt, lastUsedAt } = o;
  if (!isStr(personId) || !isStr(name) || !isStr(publicKey) || !isTime(counter) || !Array.isArray(transports) || !transports.every(isStr) || !isTime(createdAt) || !isTime(lastUsedAt)) {
    throw new OpenKeyError('INTERNAL', 'corrupt passkey document');
  }
  return { personId, name, publicKey, counter, transports, createdAt, lastUsedAt };
}

function challengeFrom(doc: StoredDoc): ChallengeDoc {
  const o = parseDoc(doc, 'challenge');
  if (o['purpose'] === 'register' && isStr(o['personId']) && typeof o['newPerson'] === 'boolean' && isStr(o['displayName']) && isTime(o['expiresAt'])) {
    return { purpose: 'register', personId: o['personId'], newPerson: o['newPerson'], displayName: o['displayName'], expiresAt: o['expiresAt'] };
  }
  if (o['purpose'] === 'login' && (o['algorithm'] === 'ed25519' || o['algorithm'] === 'p256') && isStr(o['publicKey']) && isTime(o['expiresAt'])) {
    return { purpose: 'login', algorithm: o['algorithm'], publicKey: o['publicKey'], expiresAt: o['expiresAt'] };
  }
  throw new OpenKeyError('INTERNAL', 'corrupt challenge document');
}

function sessionFrom(id: string, doc: StoredDoc): SessionRecord {
  const o = parseDoc(doc, 'session');
  const { personId, algorithm, publicKey, createdAt, expiresAt } = o;
  if (!isStr(personId) || (algorithm !== 'ed25519' && algorithm !== 'p256') || !isStr(publicKey) || !isTime(createdAt) || !isTime(expiresAt)) {
    throw new OpenKeyError('INTERNAL', 'corrupt session document');
  }
  return { id, personId, algorithm, publicKey: unb64u(publicKey), createdAt, expiresAt };
}

/** The challenge inside a WebAuthn response's clientDataJSON, to find its stored record. */
function challengeOf(responseJson: string): string {
  if (responseJson.length === 0) throw new OpenKeyError('MISSING_FIELD', 'response_json');
  if (responseJson.length > 64 * 1024) throw new OpenKeyError('PAYLOAD_TOO_LARGE', 'response_json');
  try {
    const r = JSON.parse(responseJson) as { response?: { clientDataJSON?: unknown } };
    const cd = r.response?.clientDataJSON;
    if (typeof cd === 'string') {
      const client = JSON.parse(Buffer.from(cd, 'base64url').toString('utf8')) as { challenge?: unknown };
      if (typeof client.challenge === 'string' && /^[A-Za-z0-9_-]{43}$/.test(client.challenge)) return client.challenge;
    }
  } catch {
    // fall through
  }
  throw new OpenKeyError('WEBAUTHN_INVALID', 'response has no readable challenge');
}

// ---- The WebAuthn port (adapters/webauthn.ts) ----------------------------------------------------

/**
 * WebAuthn options and verification for one relying party. Verification failures are OpenKeyErrors
 * with specific WEBAUTHN_* codes; the caller owns challenges (consumed before verifying) and
 * credentials, and checks that a returned user handle names the credential's person.
 */
export interface PasskeyCeremonies {
  registrationOptions(input: {
    readonly userId: Uint8Array;
    readonly userName: string;
    readonly userDisplayName: string;
    readonly challenge: Uint8Array;
    readonly excludeCredentialIds: readonly string[];
  }): Promise<unknown>;
  authenticationOptions(input: { readonly challenge: Uint8Array; readonly allowCredentialIds?: readonly string[] }): Promise<unknown>;
  verifyRegistration(input: { readonly responseJson: string; readonly expectedChallenge: Uint8Array }): Promise<{
    readonly credentialId: string;
    readonly publicKey: Uint8Array;
    readonly counter: number;
    readonly transports: readonly string[];
  }>;
  verifyAssertion(input: {
    readonly responseJson: string;
    readonly expectedChallenge: Uint8Array;
    readonly credential: { readonly id: string; readonly publicKey: Uint8Array; readonly counter: number };
  }): Promise<{ readonly newCounter: number; readonly userHandle: Uint8Array | undefined; readonly credentialId: string }>;
  parseAssertionCredentialId(responseJson: string): { readonly credentialId: string };
}

// ---- The service --------------------------------------------------------------------------------

export interface PeopleOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly random: Random;
  readonly webauthn: PasskeyCeremonies;
  /** "open": anyone may register as a new person; "admin": only an administrator may start it. */
  readonly registration: RegistrationMode;
  readonly sessionTtlMs: number;
  readonly validatePublicKey: PublicKeyValidator;
}

/** A verified approval and the changes its use makes (counter, single-use marker). */
export interface ApprovalCheck {
  readonly approver: string;
  readonly challenge: Uint8Array;
  readonly changes: readonly Change[];
}

export interface ApprovalInput {
  readonly issuedAtMs: number;
  readonly assertionJson: string;
}

/** Outstanding sign-in and registration challenges per process (unauthenticated callers create them). */
export const MAX_OUTSTANDING_CHALLENGES = 10_000;

export class People {
  readonly #challenges = new IssuanceBound(MAX_OUTSTANDING_CHALLENGES, CHALLENGE_TTL_MS);

  constructor(private readonly o: PeopleOptions) {}

  // -- registration --

  /**
   * Creation options for a new person (`auth` undefined) or another passkey of the session's person.
   * In "admin" mode a new person needs an administrator's stamp (`auth` of an admin).
   */
  async beginRegistration(auth: Authenticated | undefined, displayName: string): Promise<string> {
    if (displayName.length > MAX_DISPLAY_NAME) throw new OpenKeyError('PAYLOAD_TOO_LARGE', 'display_name');
    let personId: string;
    let newPerson: boolean;
    let name: string;
    const exclude: string[] = [];
    if (auth !== undefined && auth.principal.role === 'person') {
      personId = auth.principal.id;
      newPerson = false;
      const person = await this.o.store.getDoc(SPACE.person, personId);
      name = person === undefined ? displayName : (parseDoc(person, 'person')['name'] as string);
      const existing = await this.o.store.listDocs(SPACE.personPasskey, { prefix: `${personId}/`, limit: MAX_PASSKEYS_PER_PERSON + 1 });
      if (existing.length >= MAX_PASSKEYS_PER_PERSON) throw new OpenKeyError('RESOURCE_EXHAUSTED', `at most ${MAX_PASSKEYS_PER_PERSON} passkeys per person`);
      for (const e of existing) exclude.push(e.id.slice(personId.length + 1));
      await this.o.store.commit(auth.nonceChanges);
    } else {
      if (this.o.registration !== 'open') {
        if (auth?.principal.role !== 'admin') throw new OpenKeyError('PERMISSION_DENIED', 'registration requires an administrator');
        await this.o.store.commit(auth.nonceChanges);
      }
      if (displayName.trim() === '') throw new OpenKeyError('MISSING_FIELD', 'display_name');
      personId = `usr_${toHex(this.o.random.bytes(16))}`;
      newPerson = true;
      name = displayName;
    }
    const challenge = this.o.random.bytes(32);
    const expiresAt = this.#challenges.take(this.o.clock.now());
    const doc: ChallengeDoc = { purpose: 'register', personId, newPerson, displayName: name, expiresAt };
    await this.o.store.commit([{ kind: 'putDoc', space: SPACE.challenge, id: b64u(challenge), value: encodeDoc(doc), ifVersion: 0, expiresAt }]);
    const options = await this.o.webauthn.registrationOptions({
      userId: Buffer.from(personId.slice(4), 'hex'),
      userName: name,
      userDisplayName: name,
      challenge,
      excludeCredentialIds: exclude,
    });
    return JSON.stringify(options);
  }

  async finishRegistration(responseJson: string, passkeyName: string): Promise<{ personId: string; credentialId: string }> {
    if (passkeyName.length > MAX_DISPLAY_NAME) throw new OpenKeyError('PAYLOAD_TOO_LARGE', 'passkey_name');
    const { ch, challenge } = await this.consumeChallenge(responseJson);
    if (ch.purpose !== 'register') throw new OpenKeyError('WEBAUTHN_CHALLENGE_INVALID', 'not a registration challenge');
    const now = this.o.clock.now();
    const audit = (decision: 'allow' | 'deny', reason: string): Change =>
      appendAudit({ time: now, principal: ch.personId, operation: 'register_passkey', keyId: '', requestDigest: new Uint8Array(0), decision, reason: reason as ErrorCode });
    let verified: Awaited<ReturnType<PasskeyCeremonies['verifyRegistration']>>;
    try {
      verified = await this.o.webauthn.verifyRegistration({ responseJson, expectedChallenge: challenge });
    } catch (e) {
      await this.o.store.commit([audit('deny', codeOf(e))]);
      throw e;
    }
    if (!CREDENTIAL_ID_RE.test(verified.credentialId)) {
      await this.o.store.commit([audit('deny', 'WEBAUTHN_INVALID')]);
      throw new OpenKeyError('WEBAUTHN_INVALID', 'credential id');
    }
    const passkey: PasskeyDoc = {
      personId: ch.personId,
      name: passkeyName === '' ? 'passkey' : passkeyName,
      publicKey: b64u(verified.publicKey),
      counter: verified.counter,
      transports: [...verified.transports],
      createdAt: now,
      lastUsedAt: 0,
    };
    const changes: Change[] = [];
    if (ch.newPerson) changes.push({ kind: 'putDoc', space: SPACE.person, id: ch.personId, value: encodeDoc({ name: ch.displayName, createdAt: now } satisfies PersonDoc), ifVersion: 0 });
    changes.push(
      // A credential id registered before (by anyone) is refused, not overwritten.
      { kind: 'putDoc', space: SPACE.passkey, id: verified.credentialId, value: encodeDoc(passkey), ifVersion: 0, conflict: 'WEBAUTHN_INVALID' },
      { kind: 'putDoc', space: SPACE.personPasskey, id: `${ch.personId}/${verified.credentialId}`, value: encodeDoc({}), ifVersion: 0, conflict: 'WEBAUTHN_INVALID' },
      audit('allow', 'OWNER'),
    );
    await this.commitOrAudit(changes, (reason) => audit('deny', reason));
    return { personId: ch.personId, credentialId: verified.credentialId };
  }

  // -- sign-in and sessions --

  async beginLogin(algorithm: PrincipalAlgorithm, sessionPublicKey: Uint8Array): Promise<string> {
    if (sessionPublicKey.length === 0) throw new OpenKeyError('MISSING_FIELD', 'session_public_key');
    const publicKey = this.o.validatePublicKey(algorithm, sessionPublicKey);
    const challenge = this.o.random.bytes(32);
    const expiresAt = this.#challenges.take(this.o.clock.now());
    const doc: ChallengeDoc = { purpose: 'login', algorithm, publicKey: b64u(publicKey), expiresAt };
    await this.o.store.commit([{ kind: 'putDoc', space: SPACE.challenge, id: b64u(challenge), value: encodeDoc(doc), ifVersion: 0, expiresAt }]);
    return JSON.stringify(await this.o.webauthn.authenticationOptions({ challenge }));
  }

  async finishLogin(responseJson: string): Promise<SessionRecord> {
    const { ch, challenge } = await this.consumeChallenge(responseJson);
    if (ch.purpose !== 'login') throw new OpenKeyError('WEBAUTHN_CHALLENGE_INVALID', 'not a sign-in challenge');
    const now = this.o.clock.now();
    const audit = (principal: string, decision: 'allow' | 'deny', reason: string): Change =>
      appendAudit({ time: now, principal, operation: 'login', keyId: '', requestDigest: new Uint8Array(0), decision, reason: reason as ErrorCode });
    let personId = '';
    let used: { changes: Change[]; personId: string };
    try {
      used = await this.verifyAssertionOf(responseJson, challenge, now);
      personId = used.personId;
    } catch (e) {
      await this.o.store.commit([audit(personId, 'deny', codeOf(e))]);
      throw e;
    }
    const publicKey = unb64u(ch.publicKey);
    const session: SessionRecord = { id: principalIdFor(ch.algorithm, publicKey), personId, algorithm: ch.algorithm, publicKey, createdAt: now, expiresAt: now + this.o.sessionTtlMs };
    const doc = { personId, algorithm: session.algorithm, publicKey: ch.publicKey, createdAt: now, expiresAt: session.expiresAt };
    await this.commitOrAudit(
      [...used.changes, { kind: 'putDoc', space: SPACE.session, id: session.id, value: encodeDoc(doc), ifVersion: 0, expiresAt: session.expiresAt, conflict: 'WEBAUTHN_INVALID' }, audit(personId, 'allow', 'OWNER')],
      (reason) => audit(personId, 'deny', reason),
    );
    return session;
  }

  /** A session on record, live or ended (the authenticator checks `expiresAt` after the stamp). */
  async session(id: string): Promise<SessionRecord | undefined> {
    const doc = await this.o.store.getDoc(SPACE.session, id);
    return doc === undefined ? undefined : sessionFrom(id, doc);
  }

  /** Ends the calling session: it stays on record as expired (so its stamps get SESSION_EXPIRED) until pruned. */
  async logout(auth: Authenticated): Promise<void> {
    const sessionId = auth.session?.id;
    if (sessionId === undefined) throw new OpenKeyError('PERMISSION_DENIED', 'not a session');
    const now = this.o.clock.now();
    const doc = await this.o.store.getDoc(SPACE.session, sessionId);
    if (doc === undefined) throw new OpenKeyError('SESSION_EXPIRED');
    const s = sessionFrom(sessionId, doc);
    const ended = { personId: s.personId, algorithm: s.algorithm, publicKey: b64u(s.publicKey), createdAt: s.createdAt, expiresAt: now };
    await this.o.store.commit([
      ...auth.nonceChanges,
      { kind: 'putDoc', space: SPACE.session, id: sessionId, value: encodeDoc(ended), ifVersion: doc.version, expiresAt: now + CHALLENGE_TTL_MS },
      appendAudit({ time: now, principal: auth.principal.id, operation: 'logout', keyId: '', requestDigest: auth.requestDigest, decision: 'allow', reason: 'OWNER' }),
    ]);
  }

  async listPasskeys(auth: Authenticated): Promise<PasskeyInfo[]> {
    if (auth.principal.role !== 'person') throw new OpenKeyError('PERMISSION_DENIED', 'not a person');
    await this.o.store.commit(auth.nonceChanges);
    const personId = auth.principal.id;
    const index = await this.o.store.listDocs(SPACE.personPasskey, { prefix: `${personId}/`, limit: MAX_PASSKEYS_PER_PERSON });
    const out: PasskeyInfo[] = [];
    for (const e of index) {
      const credentialId = e.id.slice(personId.length + 1);
      const doc = await this.o.store.getDoc(SPACE.passkey, credentialId);
      if (doc === undefined) continue;
      const p = passkeyFrom(doc);
      out.push({ credentialId, name: p.name, createdAt: p.createdAt, lastUsedAt: p.lastUsedAt, counter: p.counter });
    }
    return out.sort((a, b) => a.createdAt - b.createdAt);
  }

  // -- approvals --

  /**
   * Verifies a passkey approval of `method` + the request digest (approval field cleared). Returns
   * who approved and the changes to commit with the decision (counter, single-use marker). Throws
   * APPROVAL_INVALID for anything wrong; `reason` on the error's detail names the specific check.
   */
  async verifyApproval(method: string, unapprovedDigest: Uint8Array, approval: ApprovalInput): Promise<ApprovalCheck> {
    const now = this.o.clock.now();
    if (approval.assertionJson === '') throw new OpenKeyError('APPROVAL_INVALID', 'MISSING_FIELD');
    if (!isTime(approval.issuedAtMs) || Math.abs(now - approval.issuedAtMs) > APPROVAL_WINDOW_MS) throw new OpenKeyError('APPROVAL_INVALID', 'STAMP_EXPIRED');
    const challenge = approvalChallenge(method, unapprovedDigest, approval.issuedAtMs);
    let used: { changes: Change[]; personId: string };
    try {
      used = await this.verifyAssertionOf(approval.assertionJson, challenge, now);
    } catch (e) {
      throw new OpenKeyError('APPROVAL_INVALID', codeOf(e), { cause: e });
    }
    // Single use: a second use of the same approval (even by an authenticator whose counter stays 0)
    // fails this create-once condition inside the atomic commit.
    const expiresAt = approval.issuedAtMs + APPROVAL_WINDOW_MS;
    const single: Change = { kind: 'putDoc', space: SPACE.approval, id: b64u(challenge), value: encodeDoc({ personId: used.personId }), ifVersion: 0, expiresAt, conflict: 'APPROVAL_INVALID' };
    return { approver: used.personId, challenge, changes: [...used.changes, single] };
  }

  // -- internals --

  /**
   * Finds the stored challenge a response answers and consumes it (compare-and-delete) before the
   * response is verified: a response can be tried once, whatever its outcome.
   */
  private async consumeChallenge(responseJson: string): Promise<{ ch: ChallengeDoc; challenge: Uint8Array }> {
    const id = challengeOf(responseJson);
    const doc = await this.o.store.getDoc(SPACE.challenge, id);
    if (doc === undefined) throw new OpenKeyError('WEBAUTHN_CHALLENGE_INVALID', 'unknown or used challenge');
    await this.o.store.commit([{ kind: 'deleteDoc', space: SPACE.challenge, id, ifVersion: doc.version, conflict: 'WEBAUTHN_CHALLENGE_INVALID' }]);
    const ch = challengeFrom(doc);
    if (ch.expiresAt <= this.o.clock.now()) throw new OpenKeyError('WEBAUTHN_CHALLENGE_INVALID', 'expired challenge');
    return { ch, challenge: unb64u(id) };
  }

  /** Verifies an assertion by a stored passkey; returns its person and the counter update. */
  private async verifyAssertionOf(responseJson: string, challenge: Uint8Array, now: number): Promise<{ changes: Change[]; personId: string }> {
    const { credentialId } = this.o.webauthn.parseAssertionCredentialId(responseJson);
    const doc = credentialId.length > 1364 ? undefined : await this.o.store.getDoc(SPACE.passkey, credentialId);
    if (doc === undefined) throw new OpenKeyError('WEBAUTHN_INVALID', 'unknown credential');
    const passkey = passkeyFrom(doc);
    const r = await this.o.webauthn.verifyAssertion({
      responseJson,
      expectedChallenge: challenge,
      credential: { id: credentialId, publicKey: unb64u(passkey.publicKey), counter: passkey.counter },
    });
    if (r.userHandle !== undefined && `usr_${toHex(r.userHandle)}` !== passkey.personId) throw new OpenKeyError('WEBAUTHN_INVALID', 'user handle does not match the credential');
    const next: PasskeyDoc = { ...passkey, counter: r.newCounter, lastUsedAt: now };
    // Compare-and-set on the version read: two uses racing with one counter cannot both pass.
    return {
      personId: passkey.personId,
      changes: [{ kind: 'putDoc', space: SPACE.passkey, id: credentialId, value: encodeDoc(next), ifVersion: doc.version, conflict: 'WEBAUTHN_COUNTER_REGRESSION' }],
    };
  }

  /** Commits `changes`; if a condition fails, commits a denial record instead and rethrows. */
  private async commitOrAudit(changes: Change[], deny: (reason: string) => Change): Promise<void> {
    try {
      await this.o.store.commit(changes);
    } catch (e) {
      if (isOpenKeyError(e) && e.code !== 'INTERNAL') await this.o.store.commit([deny(e.code)]);
      throw e;
    }
  }
}

function codeOf(e: unknown): ErrorCode {
  return isOpenKeyError(e) ? e.code : 'INTERNAL';
}

