// Service sessions end to end: a service opens a session with its own stamp (the secret arrives
// HPKE-sealed and is opened by @hpke/core, the response's receipt is checked), then signs with
// HMAC session headers over Connect and gRPC; viem recovers every signature. Replays, forged MACs,
// sequence numbers that fell out of the window, ended sessions (expiry, restart), a person's
// session or a session trying to open another, and the session limit each get their own code and
// change nothing; decisions made under a session are audited under the service's id.

import { create } from '@bufbuild/protobuf';
import { createClient, type Client } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recoverMessageAddress, type Hex } from 'viem';
import { KeyAlgorithm } from '../proto/gen/openkey/v1/common_pb.ts';
import { PrincipalKeyAlgorithm, PrincipalService } from '../proto/gen/openkey/v1/principals_pb.ts';
import { SignRequestSchema, SignService } from '../proto/gen/openkey/v1/signing_pb.ts';
import { SESSION_SEQ_WINDOW } from '../proto/protocol/session-stamp.ts';
import {
  closeServiceSession,
  createOpenKeyClient,
  generateCredentials,
  openServiceSession,
  receiptInterceptor,
  requestDigest,
  SESSION_HEADER,
  ServiceSession,
  type Credentials,
  type OpenKeyClient,
} from '../clients/src/index.ts';
import { startTestAppliance, type TestAppliance } from './support/appliance.ts';
import { codeOf } from './support/codes.ts';
import { auditMark, auditSince, ManualClock, ORIGIN, PASSKEY_ENV, registerPerson, signIn, stampCapture } from './support/people.ts';
import { SoftAuthenticator } from './support/soft-authenticator.ts';

const SIGN = '/openkey.v1.SignService/Sign';
const hex = (b: Uint8Array): Hex => `0x${Buffer.from(b).toString('hex')}`;

interface Service {
  creds: Credentials;
  client: OpenKeyClient;
  keyId: string;
  address: string;
}

async function registerService(app: TestAppliance, name: string): Promise<Service> {
  const creds = generateCredentials('ed25519');
  const client = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: creds, interceptors: [receiptInterceptor(app.identityPublicKey)] });
  await client.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.ED25519, publicKey: creds.publicKey, name });
  const key = (await client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1, label: name })).key;
  return { creds, client, keyId: key?.keyId ?? '', address: key?.address ?? '' };
}

function sessionClient(app: TestAppliance, session: ServiceSession): OpenKeyClient {
  return createOpenKeyClient({ baseUrl: app.connectUrl, serviceSession: session, interceptors: [receiptInterceptor(app.identityPublicKey)] });
}

/** A Sign call with a hand-made session header (to replay, reorder or forge). */
async function signWithHeader(app: TestAppliance, keyId: string, message: Uint8Array, header: string) {
  const raw = createOpenKeyClient({ baseUrl: app.connectUrl });
  return raw.signing.sign({ keyId, payload: { kind: { case: 'personalMessage', value: { message } } } }, { headers: { [SESSION_HEADER]: header } });
}

/** A client stamped with `creds` that remembers the last stamp it sent (to replay it). */
function headerFor(session: ServiceSession, keyId: string, message: Uint8Array, seq?: number): string {
  const req = create(SignRequestSchema, { keyId, payload: { kind: { case: 'personalMessage', value: { message } } } });
  return session.stampDigest(SIGN, requestDigest(SignRequestSchema, req), seq);
}

describe('service sessions', () => {
  const clock = new ManualClock(Date.now());
  let app: TestAppliance;
  let svc: Service;
  let session: ServiceSession;

  beforeAll(async () => {
    app = await startTestAppliance({ clock, env: { OPENKEY_MAX_SERVICE_SESSIONS_PER_PRINCIPAL: '4', OPENKEY_SERVICE_SESSION_TTL_MS: '60000' } });
    svc = await registerService(app, 'session-service');
    session = await openServiceSession(svc.client.principals);
  });
  afterAll(async () => app.dispose());

  it('opens a session with a checked receipt, the default lifetime and a secret of its own', async () => {
    expect(session.sessionId).toMatch(/^ses_[0-9a-f]{32}$/);
    expect(session.expiresAt).toBe(clock.now() + 60_000);
    // Each session has its own secret: the same call and sequence number get different MACs.
    const other = await openServiceSession(svc.client.principals);
    const m = new TextEncoder().encode('x');
    expect(headerFor(other, svc.keyId, m, 1).split('.')[3]).not.toBe(headerFor(session, svc.keyId, m, 1).split('.')[3]);
  });

  it('signs over Connect and gRPC under the session; viem recovers the key address', async () => {
    const client = sessionClient(app, session);
    for (let i = 0; i < 5; i++) {
      const message = new TextEncoder().encode(`session call ${i}`);
      const res = await client.signing.sign({ keyId: svc.keyId, payload: { kind: { case: 'personalMessage', value: { message } } } });
      expect(await recoverMessageAddress({ message: { raw: message }, signature: hex(res.signature) })).toBe(svc.address);
    }
    const grpcSigning: Client<typeof SignService> = createClient(
      SignService,
      createGrpcTransport({ baseUrl: `http://${app.grpcTarget}`, interceptors: [receiptInterceptor(app.identityPublicKey)] }),
    );
    const message = new TextEncoder().encode('over grpc');
    const res = await grpcSigning.sign(
      { keyId: svc.keyId, payload: { kind: { case: 'personalMessage', value: { message } } } },
      { headers: { [SESSION_HEADER]: headerFor(session, svc.keyId, message) } },
    );
    expect(await recoverMessageAddress({ message: { raw: message }, signature: hex(res.signature) })).toBe(svc.address);
    expect((await client.principals.whoAmI({})).principal?.id).toBe(svc.creds.principalId);
  });

  it('audits decisions made under a session with the service as principal', async () => {
    const reader = sessionClient(app, session);
    const mark = await auditMark(app, reader);
    const message = new TextEncoder().encode('audited');
    await reader.signing.sign({ keyId: svc.keyId, payload: { kind: { case: 'personalMessage', value: { message } } } });
    const records = await auditSince(app, reader, svc.creds.principalId, mark);
    expect(records.map((r) => [r.operation, r.principal, r.keyId, r.decision])).toEqual([['personal_sign', svc.creds.principalId, svc.keyId, 'allow']]);
  });

  it('accepts calls that overtake each other, and refuses each sequence number the second time', async () => {
    const m = new TextEncoder().encode('reordered');
    const late = session.nextSeq();
    const early = session.nextSeq();
    expect(await codeOf(signWithHeader(app, svc.keyId, m, headerFor(session, svc.keyId, m, early)))).toBe('no-error');
    expect(await codeOf(signWithHeader(app, svc.keyId, m, headerFor(session, svc.keyId, m, late)))).toBe('no-error');
    const reader = sessionClient(app, session);
    const mark = await auditMark(app, reader);
    expect(await codeOf(signWithHeader(app, svc.keyId, m, headerFor(session, svc.keyId, m, late)))).toBe('STAMP_REPLAYED');
    expect(await codeOf(signWithHeader(app, svc.keyId, m, headerFor(session, svc.keyId, m, early)))).toBe('STAMP_REPLAYED');
    // Refused before any decision: nothing recorded.
    expect(await auditSince(app, reader, svc.creds.principalId, mark)).toEqual([]);
  });

  it('refuses a sequence number that fell behind the window', async () => {
    const m = new TextEncoder().encode('old');
    const old = session.nextSeq();
    for (let i = 0; i < SESSION_SEQ_WINDOW; i++) session.nextSeq();
    expect(await codeOf(signWithHeader(app, svc.keyId, m, headerFor(session, svc.keyId, m)))).toBe('no-error');
    expect(await codeOf(signWithHeader(app, svc.keyId, m, headerFor(session, svc.keyId, m, old)))).toBe('STAMP_EXPIRED');
  });

  it('refuses a forged MAC, a MAC over another body or method, and a malformed header', async () => {
    const m = new TextEncoder().encode('forged');
    const good = headerFor(session, svc.keyId, m);
    const parts = good.split('.');
    const mac = parts[3] ?? '';
    parts[3] = `${mac[0] === 'A' ? 'B' : 'A'}${mac.slice(1)}`;
    expect(await codeOf(signWithHeader(app, svc.keyId, m, parts.join('.')))).toBe('STAMP_INVALID');
    expect(await codeOf(signWithHeader(app, svc.keyId, new TextEncoder().encode('other body'), headerFor(session, svc.keyId, m)))).toBe('STAMP_INVALID');
    const whoAmIHeader = session.stampDigest('/openkey.v1.PrincipalService/WhoAmI', requestDigest(SignRequestSchema, create(SignRequestSchema, {})));
    expect(await codeOf(signWithHeader(app, svc.keyId, m, whoAmIHeader))).toBe('STAMP_INVALID');
    expect(await codeOf(signWithHeader(app, svc.keyId, m, 'not a session header'))).toBe('UNAUTHENTICATED');
    // The forged header did not burn the sequence number for the real holder.
    const seq = session.nextSeq();
    const forged = headerFor(session, svc.keyId, m, seq).split('.');
    forged[3] = 'A'.repeat(43);
    expect(await codeOf(signWithHeader(app, svc.keyId, m, forged.join('.')))).toBe('STAMP_INVALID');
    expect(await codeOf(signWithHeader(app, svc.keyId, m, headerFor(session, svc.keyId, m, seq)))).toBe('no-error');
  });

  it('refuses a call that carries both a stamp and a session header', async () => {
    const m = new TextEncoder().encode('both');
    const both = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: svc.creds });
    const p = both.signing.sign({ keyId: svc.keyId, payload: { kind: { case: 'personalMessage', value: { message: m } } } }, { headers: { [SESSION_HEADER]: headerFor(session, svc.keyId, m) } });
    expect(await codeOf(p)).toBe('UNAUTHENTICATED');
  });

  it('does not let a session open another session, and bounds sessions per service', async () => {
    const client = sessionClient(app, session);
    expect(await codeOf(openServiceSession(client.principals))).toBe('PERMISSION_DENIED');
    const fresh = await registerService(app, 'bounded');
    for (let i = 0; i < 4; i++) await openServiceSession(fresh.client.principals);
    expect(await codeOf(openServiceSession(fresh.client.principals))).toBe('RESOURCE_EXHAUSTED');
    // A lifetime above the maximum, and a recipient key that is not X25519, are refused.
    const other = await registerService(app, 'bad-requests');
    expect(await codeOf(other.client.principals.openSession({ recipientPublicKey: new Uint8Array(32).fill(7), ttlSeconds: 10 * 3600 }))).toBe('MALFORMED_REQUEST');
    expect(await codeOf(other.client.principals.openSession({ recipientPublicKey: new Uint8Array(31) }))).toBe('INVALID_PUBLIC_KEY');
    expect(await codeOf(other.client.principals.openSession({ recipientPublicKey: new Uint8Array(0) }))).toBe('MISSING_FIELD');
  });

  it('refuses a replayed OpenSession stamp', async () => {
    const recipientPublicKey = new Uint8Array(32).fill(9);
    const capture = stampCapture(app, svc.creds);
    await capture.client.principals.openSession({ recipientPublicKey });
    const header = capture.last();
    expect(header).not.toBe('');
    const raw = createOpenKeyClient({ baseUrl: app.connectUrl });
    expect(await codeOf(raw.principals.openSession({ recipientPublicKey }, { headers: { 'openkey-stamp': header } }))).toBe('STAMP_REPLAYED');
  });

  it('CloseSession ends a session at once: the session itself or a stamp may close it, over Connect and gRPC', async () => {
    const m = new TextEncoder().encode('before the close');
    const svc = await registerService(app, 'closing');
    const s1 = await openServiceSession(svc.client.principals);
    const s1Client = sessionClient(app, s1);
    expect(await codeOf(s1Client.signing.sign({ keyId: svc.keyId, payload: { kind: { case: 'personalMessage', value: { message: m } } } }))).toBe('no-error');
    const pending = headerFor(s1, svc.keyId, m); // made while the secret is still held here
    // Closed by itself (its own session header), the answer's receipt checked.
    expect(await closeServiceSession(s1Client.principals, s1)).toBe(true);
    expect(await codeOf(signWithHeader(app, svc.keyId, m, pending))).toBe('SESSION_EXPIRED');
    // Closing it again is not an error, and says it was no longer live.
    expect((await svc.client.principals.closeSession({ sessionId: s1.sessionId })).wasLive).toBe(false);
    // Closed by a stamp of its service, over gRPC.
    const s2 = await openServiceSession(svc.client.principals);
    const s2Header = headerFor(s2, svc.keyId, m);
    const grpcStamped = createOpenKeyClient({ baseUrl: `http://${app.grpcTarget}`, protocol: 'grpc', credentials: svc.creds, interceptors: [receiptInterceptor(app.identityPublicKey)] });
    expect((await grpcStamped.principals.closeSession({ sessionId: s2.sessionId })).wasLive).toBe(true);
    expect(await codeOf(signWithHeader(app, svc.keyId, m, s2Header))).toBe('SESSION_EXPIRED');
    // A session id that never existed.
    expect((await svc.client.principals.closeSession({ sessionId: `ses_${'0'.repeat(32)}` })).wasLive).toBe(false);
    // A closed session no longer counts against the service's bound (4 here).
    const open = [];
    for (let i = 0; i < 4; i++) open.push(await openServiceSession(svc.client.principals));
    expect(await codeOf(openServiceSession(svc.client.principals))).toBe('RESOURCE_EXHAUSTED');
    expect(await closeServiceSession(svc.client.principals, open[0] as ServiceSession)).toBe(true);
    expect(await codeOf(openServiceSession(svc.client.principals))).toBe('no-error');
  });

  it('audits every opening and closing, and every refusal, in the verified chain', async () => {
    const svc = await registerService(app, 'audited-sessions');
    const mark = await auditMark(app, svc.client);
    const s1 = await openServiceSession(svc.client.principals);
    await svc.client.principals.closeSession({ sessionId: s1.sessionId });
    expect(await codeOf(svc.client.principals.openSession({ recipientPublicKey: new Uint8Array(0) }))).toBe('MISSING_FIELD');
    expect(await codeOf(svc.client.principals.closeSession({ sessionId: 'ses_x' }))).toBe('MALFORMED_REQUEST');
    const records = (await auditSince(app, svc.client, svc.creds.principalId, mark)).filter((r) => r.principal === svc.creds.principalId);
    expect(records.map((r) => `${r.operation} ${r.decision} ${r.reason}`)).toEqual([
      'open_session allow OWNER',
      'close_session allow OWNER',
      'open_session deny MISSING_FIELD',
      'close_session deny MALFORMED_REQUEST',
    ]);
  });

  it("refuses to close another service's session (which keeps working), a malformed id and a replayed stamp", async () => {
    const m = new TextEncoder().encode('still open');
    const svc = await registerService(app, 'closing-refusals');
    const mine = await openServiceSession(svc.client.principals);
    const other = await registerService(app, 'not-the-owner');
    expect(await codeOf(other.client.principals.closeSession({ sessionId: mine.sessionId }))).toBe('PERMISSION_DENIED');
    expect(await codeOf(signWithHeader(app, svc.keyId, m, headerFor(mine, svc.keyId, m)))).toBe('no-error');
    expect(await codeOf(svc.client.principals.closeSession({ sessionId: '' }))).toBe('MISSING_FIELD');
    expect(await codeOf(svc.client.principals.closeSession({ sessionId: 'ses_not-hex' }))).toBe('MALFORMED_REQUEST');
    // A recorded CloseSession cannot be replayed.
    const capture = stampCapture(app, svc.creds);
    expect((await capture.client.principals.closeSession({ sessionId: mine.sessionId })).wasLive).toBe(true);
    const header = capture.last();
    const raw = createOpenKeyClient({ baseUrl: app.connectUrl });
    expect(await codeOf(raw.principals.closeSession({ sessionId: mine.sessionId }, { headers: { 'openkey-stamp': header } }))).toBe('STAMP_REPLAYED');
  });

  it('ends a session at its expiry', async () => {
    const short = await openServiceSession(svc.client.principals, 5);
    const client = sessionClient(app, short);
    expect((await client.principals.whoAmI({})).principal?.id).toBe(svc.creds.principalId);
    clock.advance(5_000);
    expect(await codeOf(client.principals.whoAmI({}))).toBe('SESSION_EXPIRED');
    clock.advance(-5_000);
  });

  it('ends every session when the appliance restarts', async () => {
    const m = new TextEncoder().encode('after restart');
    app = await app.restart();
    expect(await codeOf(signWithHeader(app, svc.keyId, m, headerFor(session, svc.keyId, m)))).toBe('SESSION_EXPIRED');
    const svcAgain = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: svc.creds, interceptors: [receiptInterceptor(app.identityPublicKey)] });
    session = await openServiceSession(svcAgain.principals);
    expect(await codeOf(signWithHeader(app, svc.keyId, m, headerFor(session, svc.keyId, m)))).toBe('no-error');
  });
});

describe('service sessions are not for people', () => {
  it("refuses OpenSession and CloseSession from a person's passkey session", async () => {
    const app = await startTestAppliance({ env: PASSKEY_ENV });
    try {
      const authn = new SoftAuthenticator({ origin: ORIGIN });
      await registerPerson(app, authn, 'Carol');
      const person = await signIn(app, authn);
      expect((await person.client.principals.whoAmI({})).principal?.id).not.toBe('');
      expect(await codeOf(openServiceSession(person.client.principals))).toBe('PERMISSION_DENIED');
      expect(await codeOf(person.client.principals.closeSession({ sessionId: `ses_${'0'.repeat(32)}` }))).toBe('PERMISSION_DENIED');
    } finally {
      await app.dispose();
    }
  });
});

describe('service sessions switched off', () => {
  it('refuses to open any with OPENKEY_MAX_SERVICE_SESSIONS=0; stamps still work', async () => {
    const app = await startTestAppliance({ env: { OPENKEY_MAX_SERVICE_SESSIONS: '0' } });
    try {
      const svc = await registerService(app, 'no-sessions');
      expect(await codeOf(openServiceSession(svc.client.principals))).toBe('RESOURCE_EXHAUSTED');
      const principals: Client<typeof PrincipalService> = svc.client.principals;
      expect((await principals.whoAmI({})).principal?.id).toBe(svc.creds.principalId);
    } finally {
      await app.dispose();
    }
  });
});
