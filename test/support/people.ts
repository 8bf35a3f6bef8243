// People and their passkeys against a running appliance, for end-to-end tests: register a person
// with the software authenticator, sign in for a P-256 session, approve one exact request with a
// passkey (proto/protocol/approval.ts), register a service principal, and read the audit log with
// its signed head checked against the appliance identity key (core/audit.ts verifyAuditExport).

import { create, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import type { PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { PasskeyApprovalSchema, type PasskeyApproval } from '../../proto/gen/openkey/v1/common_pb.ts';
import type { SignedAuditHead as WireSignedAuditHead } from '../../proto/gen/openkey/v1/audit_pb.ts';
import type { Session } from '../../proto/gen/openkey/v1/passkeys_pb.ts';
import { PrincipalKeyAlgorithm } from '../../proto/gen/openkey/v1/principals_pb.ts';
import { approvalChallenge } from '../../proto/protocol/approval.ts';
import { createOpenKeyClient, generateCredentials, requestDigest, stampingInterceptor, type Credentials, type OpenKeyClient } from '../../clients/src/index.ts';
import { auditExportFromWire } from '../../clients/src/cli/audit.ts';
import { verifyAuditExport, type SignedAuditHead } from '../../server/src/core/audit.ts';
import type { AuditHead, AuditRecord, Clock } from '../../server/src/core/ports.ts';
import type { TestAppliance } from './appliance.ts';
import type { AssertionOverrides, CeremonyOverrides, SoftAuthenticator } from './soft-authenticator.ts';

/** The relying party the software authenticator plays against (its origin is https://localhost). */
export const RP_ID = 'localhost';
export const ORIGIN = 'https://localhost';
export const PASSKEY_ENV: Readonly<Record<string, string>> = { OPENKEY_RP_ID: RP_ID, OPENKEY_ORIGINS: ORIGIN };

/** A clock the test moves by hand; the appliance and the clients' stamps both read it. */
export class ManualClock implements Clock {
  #now: number;
  constructor(start: number) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): number {
    this.#now += ms;
    return this.#now;
  }
}

/** A stamping client; with a clock its stamps carry that clock's time (the appliance checks them against it). */
export function clientFor(app: TestAppliance, credentials: Credentials, clock?: Clock): OpenKeyClient {
  if (clock === undefined) return createOpenKeyClient({ baseUrl: app.connectUrl, credentials });
  return createOpenKeyClient({ baseUrl: app.connectUrl, interceptors: [stampingInterceptor(credentials, { now: () => clock.now() })] });
}

/** An unstamped client, for the unauthenticated ceremony calls. */
export const anonymous = (app: TestAppliance): OpenKeyClient => createOpenKeyClient({ baseUrl: app.connectUrl });

// ---- Ceremony options (parsed from JSON, then checked) ------------------------------------------

function record(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what} is not an object`);
  return v as Record<string, unknown>;
}

export function creationOptions(json: string): PublicKeyCredentialCreationOptionsJSON {
  const o = record(JSON.parse(json), 'creation options');
  if (typeof o['challenge'] !== 'string' || !Array.isArray(o['pubKeyCredParams'])) throw new Error('creation options without challenge or algorithms');
  const user = record(o['user'], 'creation options user');
  if (typeof user['id'] !== 'string') throw new Error('creation options without user id');
  return o as unknown as PublicKeyCredentialCreationOptionsJSON;
}

export function requestOptions(json: string): PublicKeyCredentialRequestOptionsJSON {
  const o = record(JSON.parse(json), 'request options');
  if (typeof o['challenge'] !== 'string') throw new Error('request options without challenge');
  return o as unknown as PublicKeyCredentialRequestOptionsJSON;
}

/** The person id a creation options document is for ("usr_" + hex of the WebAuthn user handle). */
export function personIdOf(options: PublicKeyCredentialCreationOptionsJSON): string {
  return `usr_${Buffer.from(options.user.id, 'base64url').toString('hex')}`;
}

// ---- Registration and sign-in -------------------------------------------------------------------

export interface RegisterOptions {
  /** A session's client: registers another passkey for that session's person. Default: a new person. */
  readonly session?: OpenKeyClient;
  readonly passkeyName?: string;
  readonly overrides?: CeremonyOverrides;
}

export interface Registered {
  readonly personId: string;
  readonly credentialId: string;
}

/** BeginRegistration → the authenticator creates a credential → FinishRegistration. */
export async function registerPerson(app: TestAppliance, authn: SoftAuthenticator, name: string, o: RegisterOptions = {}): Promise<Registered> {
  const begin = await (o.session ?? anonymous(app)).passkeys.beginRegistration({ displayName: name });
  const response = authn.register(creationOptions(begin.optionsJson), o.overrides);
  const fin = await anonymous(app).passkeys.finishRegistration({ responseJson: JSON.stringify(response), passkeyName: o.passkeyName ?? name });
  return { personId: fin.personId, credentialId: fin.credentialId };
}

export interface PendingSignIn {
  /** The session key the sign-in is for (P-256, like a browser's non-extractable WebCrypto key). */
  readonly credentials: Credentials;
  readonly options: PublicKeyCredentialRequestOptionsJSON;
}

export async function beginSignIn(app: TestAppliance): Promise<PendingSignIn> {
  const credentials = generateCredentials('p256');
  const begin = await anonymous(app).passkeys.beginLogin({ sessionAlgorithm: PrincipalKeyAlgorithm.P256, sessionPublicKey: credentials.publicKey });
  return { credentials, options: requestOptions(begin.optionsJson) };
}

export interface SignInOptions {
  /** Stamps of the returned client carry this clock's time. */
  readonly clock?: Clock;
  readonly overrides?: AssertionOverrides;
}

export interface SignedIn {
  readonly session: Session;
  readonly credentials: Credentials;
  /** Stamps with the session key: acts as the session's person. */
  readonly client: OpenKeyClient;
}

/** BeginLogin for a fresh P-256 session key → the authenticator asserts → FinishLogin. */
export async function signIn(app: TestAppliance, authn: SoftAuthenticator, o: SignInOptions = {}): Promise<SignedIn> {
  const pending = await beginSignIn(app);
  const assertion = authn.assert(pending.options, o.overrides);
  const fin = await anonymous(app).passkeys.finishLogin({ responseJson: JSON.stringify(assertion) });
  if (fin.session === undefined) throw new Error('FinishLogin returned no session');
  return { session: fin.session, credentials: pending.credentials, client: clientFor(app, pending.credentials, o.clock) };
}

// ---- Approvals ----------------------------------------------------------------------------------

/**
 * A passkey approval of exactly `request` sent to `method`: the assertion's challenge is
 * approvalChallenge(method, SHA-256 of the request with its approval cleared, issuedAtMs).
 */
export function approve<D extends DescMessage>(
  authn: SoftAuthenticator,
  method: string,
  schema: D,
  request: MessageShape<D> & { approval?: PasskeyApproval | undefined },
  issuedAtMs: number = Date.now(),
  overrides: AssertionOverrides = {},
): PasskeyApproval {
  const challenge = approvalChallenge(method, requestDigest(schema, { ...request, approval: undefined }), issuedAtMs);
  const options: PublicKeyCredentialRequestOptionsJSON = {
    challenge: Buffer.from(challenge).toString('base64url'),
    rpId: RP_ID,
    allowCredentials: [],
    userVerification: 'required',
  };
  return create(PasskeyApprovalSchema, { issuedAtMs: BigInt(issuedAtMs), assertionJson: JSON.stringify(authn.assert(options, overrides)) });
}

// ---- Service principals -------------------------------------------------------------------------

export interface Service {
  readonly id: string;
  readonly credentials: Credentials;
  readonly client: OpenKeyClient;
}

/** Registers a service principal (open registration: the stamp proves possession of the key). */
export async function serviceClient(app: TestAppliance, o: { readonly clock?: Clock; readonly name?: string } = {}): Promise<Service> {
  const credentials = generateCredentials('ed25519');
  const client = clientFor(app, credentials, o.clock);
  const res = await client.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.ED25519, publicKey: credentials.publicKey, name: o.name ?? 'service' });
  if (res.principal?.id !== credentials.principalId) throw new Error('CreatePrincipal returned another id');
  return { id: credentials.principalId, credentials, client };
}

// ---- The audit log ------------------------------------------------------------------------------

function headFromWire(h: WireSignedAuditHead | undefined): SignedAuditHead {
  if (h === undefined) throw new Error('audit response without a head');
  return { seq: Number(h.seq), hash: h.hash, logSeq: Number(h.logSeq), time: Number(h.timeMs), signature: h.signature };
}

/** The current head (signed; checked). Reading it is itself audited, so the head includes that read. */
export async function auditMark(app: TestAppliance, reader: OpenKeyClient): Promise<AuditHead> {
  const res = await reader.audit.getAuditHead({});
  const head = headFromWire(res.head);
  const check = verifyAuditExport({ version: 1, from: head.seq + 1, records: [], head }, app.identityPublicKey, { anchors: [{ seq: head.seq, hash: head.hash }] });
  if (!check.ok) throw new Error(`audit head does not verify: ${check.code}`);
  return { seq: head.seq, hash: head.hash };
}

/**
 * The records appended after `mark`, verified as a chain continuing from it and signed by the
 * identity key, without the reader's own trailing audit_export record. Throws if the export does
 * not verify.
 */
export async function auditSince(app: TestAppliance, reader: OpenKeyClient, readerId: string, mark: AuditHead): Promise<AuditRecord[]> {
  const exp = auditExportFromWire(await reader.audit.exportAudit({ from: BigInt(mark.seq + 1) }));
  const check = verifyAuditExport(exp, app.identityPublicKey, { anchors: [mark] });
  if (!check.ok) throw new Error(`audit export does not verify: ${check.code} at ${check.seq}`);
  const last = exp.records.at(-1);
  if (last?.operation !== 'audit_export' || last.principal !== readerId) throw new Error('audit export does not end with its own read');
  return exp.records.slice(0, -1);
}

/** The whole log, page by page, each page verified and anchored to the previous one. */
export async function auditAll(app: TestAppliance, reader: OpenKeyClient): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  let anchor: AuditHead | undefined;
  for (;;) {
    const exp = auditExportFromWire(await reader.audit.exportAudit({ from: BigInt(out.length + 1) }));
    const check = verifyAuditExport(exp, app.identityPublicKey, anchor === undefined ? {} : { anchors: [anchor] });
    if (!check.ok) throw new Error(`audit export does not verify: ${check.code} at ${check.seq}`);
    out.push(...exp.records);
    anchor = { seq: check.to, hash: check.hash };
    if (check.to >= check.logSeq) return out;
  }
}

/** The fields of a record a test compares. */
export const decisionOf = (r: AuditRecord): { principal: string; operation: string; keyId: string; decision: string; reason: string; count?: number } => ({
  principal: r.principal,
  operation: r.operation,
  keyId: r.keyId,
  decision: r.decision,
  reason: r.reason,
  ...(r.count === undefined ? {} : { count: r.count }),
});

/**
 * A client with `creds` that remembers the stamp header of its last call, whether or not the call
 * succeeded (to replay it). Read outside the stamping interceptor: the header is on the request
 * once `next` has run.
 */
export function stampCapture(app: TestAppliance, creds: Credentials): { client: OpenKeyClient; last: () => string } {
  let header = '';
  const client = createOpenKeyClient({
    baseUrl: app.connectUrl,
    credentials: creds,
    interceptors: [(next) => async (req) => {
      try {
        return await next(req);
      } finally {
        header = req.header.get('openkey-stamp') ?? '';
      }
    }],
  });
  return { client, last: () => header };
}
