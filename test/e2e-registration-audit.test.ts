// Registrations are in the audit log: every CreatePrincipal that authenticated is recorded, allowed
// or refused, in the same commit that creates the principal (or spends the stamp's nonce), and the
// administrators the configuration names are recorded when they are first registered. Checked on
// real appliances, through verified, anchored exports of the log.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrincipalKeyAlgorithm } from '../proto/gen/openkey/v1/principals_pb.ts';
import { createOpenKeyClient, generateCredentials, type OpenKeyClient } from '../clients/src/index.ts';
import type { AuditRecord } from '../server/src/core/ports.ts';
import { startTestAppliance, type TestAppliance } from './support/appliance.ts';
import { codeOf } from './support/codes.ts';
import { auditAll, auditMark, auditSince, stampCapture } from './support/people.ts';

const ED25519 = PrincipalKeyAlgorithm.ED25519;

const summary = (r: AuditRecord) => `${r.principal || '-'} ${r.operation} ${r.keyId || '-'} ${r.decision} ${r.reason}`;

describe('registration is audited (open registration)', () => {
  let app: TestAppliance;
  beforeAll(async () => {
    app = await startTestAppliance();
  });
  afterAll(async () => app.dispose());

  it('records a key registering itself, and a second registration of it as a refusal that writes nothing else', async () => {
    const reader = generateCredentials('ed25519');
    const readerClient = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: reader });
    await readerClient.principals.createPrincipal({ algorithm: ED25519, publicKey: reader.publicKey, name: 'reader' });
    const mark = await auditMark(app, readerClient);

    const svc = generateCredentials('ed25519');
    const svcClient = stampCapture(app, svc);
    const created = await svcClient.client.principals.createPrincipal({ algorithm: ED25519, publicKey: svc.publicKey, name: 'self' });
    expect(created.principal?.id).toBe(svc.principalId);
    expect(await codeOf(svcClient.client.principals.createPrincipal({ algorithm: ED25519, publicKey: svc.publicKey, name: 'again' }))).toBe('PRINCIPAL_EXISTS');
    // The refused request's nonce was spent with its record: the same request again is a replay.
    const raw = createOpenKeyClient({ baseUrl: app.connectUrl });
    const again = raw.principals.createPrincipal({ algorithm: ED25519, publicKey: svc.publicKey, name: 'again' }, { headers: { 'openkey-stamp': svcClient.last() } });
    expect(await codeOf(again)).toBe('STAMP_REPLAYED');
    // The refusal changed nothing: the principal is still the first registration.
    expect((await svcClient.client.principals.whoAmI({})).principal?.name).toBe('self');

    const records = await auditSince(app, readerClient, reader.principalId, mark);
    expect(records.map(summary)).toEqual([
      `${svc.principalId} create_principal ${svc.principalId} allow SELF_REGISTERED`,
      `${svc.principalId} create_principal ${svc.principalId} deny PRINCIPAL_EXISTS`,
    ]);
    // Each record names the request it decided: the two requests differ (another name), so do their digests.
    expect(records[0]?.requestDigest.length).toBe(32);
    expect(Buffer.from(records[0]?.requestDigest ?? []).equals(Buffer.from(records[1]?.requestDigest ?? []))).toBe(false);
  });

  it('leaves unauthenticated registrations out of the log (nothing is known of who sent them)', async () => {
    const reader = generateCredentials('ed25519');
    const readerClient = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: reader });
    await readerClient.principals.createPrincipal({ algorithm: ED25519, publicKey: reader.publicKey, name: 'reader-2' });
    const mark = await auditMark(app, readerClient);
    const thief = generateCredentials('ed25519');
    const victim = generateCredentials('ed25519');
    const thiefClient = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: thief });
    expect(await codeOf(thiefClient.principals.createPrincipal({ algorithm: ED25519, publicKey: victim.publicKey, name: 'steal' }))).toBe('STAMP_INVALID');
    expect(await codeOf(thiefClient.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.P256, publicKey: new Uint8Array(33).fill(5), name: 'bad' }))).toBe('INVALID_PUBLIC_KEY');
    expect(await auditSince(app, readerClient, reader.principalId, mark)).toEqual([]);
  });
});

describe('registration is audited (administrators register services)', () => {
  const admin = generateCredentials('ed25519');
  let app: TestAppliance;
  let adminClient: OpenKeyClient;
  beforeAll(async () => {
    app = await startTestAppliance({
      env: { OPENKEY_REGISTRATION: 'admin', OPENKEY_ADMIN_KEYS: `ed25519:${Buffer.from(admin.publicKey).toString('hex')}` },
    });
    adminClient = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: admin });
  });
  afterAll(async () => app.dispose());

  it('records the configured administrator once, the services it registers, and every refusal', async () => {
    const svc = generateCredentials('ed25519');
    await adminClient.principals.createPrincipal({ algorithm: ED25519, publicKey: svc.publicKey, name: 'payments' });
    const svcClient = stampCapture(app, svc);
    const other = generateCredentials('ed25519');
    // A service may not register others; the refusal is recorded and its nonce spent.
    expect(await codeOf(svcClient.client.principals.createPrincipal({ algorithm: ED25519, publicKey: other.publicKey, name: 'other' }))).toBe('PERMISSION_DENIED');
    const raw = createOpenKeyClient({ baseUrl: app.connectUrl });
    const replay = raw.principals.createPrincipal({ algorithm: ED25519, publicKey: other.publicKey, name: 'other' }, { headers: { 'openkey-stamp': svcClient.last() } });
    expect(await codeOf(replay)).toBe('STAMP_REPLAYED');
    expect(await codeOf(adminClient.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.P256, publicKey: new Uint8Array(33).fill(5), name: 'bad' }))).toBe('INVALID_PUBLIC_KEY');
    expect(await codeOf(adminClient.principals.createPrincipal({ algorithm: ED25519, publicKey: svc.publicKey, name: 'payments again' }))).toBe('PRINCIPAL_EXISTS');
    // Nothing was created by the refusals: `other` is unknown (on the wire, like a bad signature).
    const otherClient = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: other });
    expect(await codeOf(otherClient.principals.whoAmI({}))).toBe('STAMP_INVALID');
    expect((await svcClient.client.principals.whoAmI({})).principal?.name).toBe('payments');

    const expected = [
      `- create_principal ${admin.principalId} allow CONFIGURED`,
      `${admin.principalId} create_principal ${svc.principalId} allow ADMIN`,
      `${svc.principalId} create_principal - deny PERMISSION_DENIED`,
      `${admin.principalId} create_principal - deny INVALID_PUBLIC_KEY`,
      `${admin.principalId} create_principal ${svc.principalId} deny PRINCIPAL_EXISTS`,
    ];
    const log = (await auditAll(app, adminClient)).filter((r) => r.operation === 'create_principal');
    expect(log.map(summary)).toEqual(expected);

    // A restart registers nothing again: the administrator is already there.
    app = await app.restart();
    adminClient = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: admin });
    const after = (await auditAll(app, adminClient)).filter((r) => r.operation === 'create_principal');
    expect(after.map(summary)).toEqual(expected);
  });
});
