// The appliance on every core, end to end: `server/src/main.ts` with OPENKEY_WORKERS=2 as its own
// process tree (one store owner, two workers sharing the ports). Connections land on both workers;
// signatures from either recover (viem) and carry receipts under the one identity key; a service
// session opened through one worker authenticates calls on the other, and its sequence numbers are
// single-use across workers; a revocation is seen at once by every worker; the audit chain written
// by both stays one verified chain; a killed worker is replaced while the other keeps serving; and
// SIGTERM under load drains: every call that got a signature has its audit record, and the process
// tree exits 0. Workers keep key records, policies and session secrets and the owner checks them
// at commit, so the tests also pin connections to workers: a revocation made through one worker is
// honoured by the very next call on the other, and one session header sent to both at once is
// signed and recorded once.

import { create } from '@bufbuild/protobuf';
import { readFileSync } from 'node:fs';
import { createClient } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recoverMessageAddress, type Hex } from 'viem';
import { KeyAlgorithm } from '../proto/gen/openkey/v1/common_pb.ts';
import { PrincipalKind, SignOperation } from '../proto/gen/openkey/v1/policy_pb.ts';
import { CloseSessionRequestSchema, PrincipalKeyAlgorithm } from '../proto/gen/openkey/v1/principals_pb.ts';
import { SignRequestSchema, type SignResponse } from '../proto/gen/openkey/v1/signing_pb.ts';
import { AttestService } from '../proto/gen/openkey/v1/attest_pb.ts';
import { exportAuditLog } from '../clients/src/cli/audit.ts';
import { createOpenKeyClient, generateCredentials, openServiceSession, openSignStream, receiptInterceptor, requestDigest, SESSION_HEADER, SignStreamError, type Credentials, type OpenKeyClient } from '../clients/src/index.ts';
import { NODE_FLAGS, SERVER_ARGS } from '../server/src/config.ts';
import { verifyAuditExport } from '../server/src/core/audit.ts';
import { startClusterAppliance, type ClusterAppliance } from './support/cluster.ts';
import { codeOf } from './support/codes.ts';
import { descendantsGone, descendantsOf } from './support/processes.ts';

const SIGN = '/openkey.v1.SignService/Sign';
const CLOSE_SESSION = '/openkey.v1.PrincipalService/CloseSession';
const text = new TextEncoder();
const hex = (b: Uint8Array): Hex => `0x${Buffer.from(b).toString('hex')}`;
const signRequest = (keyId: string, message: string) => create(SignRequestSchema, { keyId, payload: { kind: { case: 'personalMessage', value: { message: text.encode(message) } } } });

/** `n` gRPC clients, each its own HTTP/2 connection (so round-robin spreads them over the workers). */
function grpcClients(app: ClusterAppliance, n: number, credentials?: Credentials, identity?: Uint8Array): OpenKeyClient[] {
  const interceptors = identity === undefined ? [] : [receiptInterceptor(identity)];
  return Array.from({ length: n }, () => createOpenKeyClient({ baseUrl: app.grpcUrl, protocol: 'grpc', interceptors, ...(credentials ? { credentials } : {}) }));
}

async function identityOf(baseUrl: string): Promise<Uint8Array> {
  const res = await createClient(AttestService, createOpenKeyClient({ baseUrl }).transport).attest({ nonce: new Uint8Array(32).fill(7) });
  return res.identityPublicKey;
}

async function registerService(app: ClusterAppliance, name: string): Promise<{ creds: Credentials; client: OpenKeyClient; keyId: string; address: string }> {
  const creds = generateCredentials('ed25519');
  const client = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: creds });
  await client.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.ED25519, publicKey: creds.publicKey, name });
  const key = (await client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1, label: name })).key;
  return { creds, client, keyId: key?.keyId ?? '', address: key?.address ?? '' };
}

/** The worker pids that logged a rejected call since `from` (each rejected call logs its worker). */
function rejectingWorkers(app: ClusterAppliance, from: number): Set<number> {
  return new Set(app.lines.slice(from).filter((l) => l.msg === 'call rejected' && typeof l.pid === 'number').map((l) => l.pid as number));
}

/** The worker serving `client`'s connection: the one that logs the refusal of a call for no key. */
async function workerOf(app: ClusterAppliance, client: OpenKeyClient): Promise<number> {
  const mark = app.lines.length;
  expect(await codeOf(client.keys.getKey({ keyId: `key_${'0'.repeat(32)}` }))).not.toBe('no-error');
  const line = await app.waitFor((l) => l.msg === 'call rejected' && typeof l.pid === 'number' && app.lines.indexOf(l) >= mark, 5_000);
  return line.pid as number;
}

/** One client (its own connection) on each of the two workers, keyed by worker pid. */
async function onEachWorker(app: ClusterAppliance, make: () => OpenKeyClient): Promise<Map<number, OpenKeyClient>> {
  const byWorker = new Map<number, OpenKeyClient>();
  for (let i = 0; i < 16 && byWorker.size < 2; i++) {
    const c = make();
    const pid = await workerOf(app, c);
    if (!byWorker.has(pid)) byWorker.set(pid, c);
  }
  expect(byWorker.size).toBe(2);
  return byWorker;
}

describe('cluster: two workers and a store owner', () => {
  let app: ClusterAppliance;
  let identity: Uint8Array;
  let svc: Awaited<ReturnType<typeof registerService>>;

  beforeAll(async () => {
    app = await startClusterAppliance({ workers: 2 });
    svc = await registerService(app, 'cluster-service');
    identity = await identityOf(app.connectUrl);
    expect(identity).toHaveLength(32);
  }, 120_000);
  afterAll(async () => app.dispose());

  it('starts two workers on the same ports, and connections reach both', async () => {
    expect(app.workerPids()).toHaveLength(2);
    expect(new Set(app.workerPids()).size).toBe(2);
    // The primary was started without the serving V8 flags; the workers run with them anyway,
    // and load the appliance's TypeScript the way the primary does.
    for (const pid of app.workerPids()) {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      for (const flag of NODE_FLAGS) expect(argv).toContain(flag);
      expect(argv).toContain(SERVER_ARGS[1]);
    }
    // A call with a malformed stamp is rejected and logged by the worker that took the connection.
    const mark = app.lines.length;
    for (const c of grpcClients(app, 8)) {
      expect(await codeOf(c.signing.sign(signRequest(svc.keyId, 'x'), { headers: { 'openkey-stamp': 'garbage' } }))).toBe('UNAUTHENTICATED');
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(rejectingWorkers(app, mark)).toEqual(new Set(app.workerPids()));
  });

  it('keeps no compiler process beside the running tree (server/boot stops esbuild once start-up is over)', async () => {
    const pid = app.process.pid as number;
    expect(descendantsOf(pid).filter((p) => p.command.includes('server/src/main.ts'))).toHaveLength(2); // the workers
    expect(await descendantsGone(pid, (p) => p.command.includes('esbuild'))).toEqual([]);
  });

  it('signs on every worker: viem recovers each signature, every receipt verifies under the one identity key', async () => {
    // The receipt interceptor rejects any response whose receipt does not verify under `identity`.
    const clients = grpcClients(app, 6, svc.creds, identity);
    const results = await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        const req = signRequest(svc.keyId, `cluster message ${i}`);
        const res: SignResponse = await (clients[i % clients.length] as OpenKeyClient).signing.sign(req);
        return { i, req, res };
      }),
    );
    for (const { i, req, res } of results) {
      expect(await recoverMessageAddress({ message: `cluster message ${i}`, signature: hex(res.signature) })).toBe(svc.address);
      expect(Buffer.from(res.receipt?.requestDigest ?? new Uint8Array()).equals(Buffer.from(requestDigest(SignRequestSchema, req)))).toBe(true);
    }
  });

  it('a service session works on every worker, and each sequence number is accepted once across them', async () => {
    const session = await openServiceSession(svc.client.principals);
    const clients = grpcClients(app, 4);
    const req = signRequest(svc.keyId, 'session across workers');
    const digest = requestDigest(SignRequestSchema, req);
    // Every connection (both workers) accepts fresh numbers.
    for (const c of clients) {
      const res = await c.signing.sign(req, { headers: { [SESSION_HEADER]: session.stampDigest(SIGN, digest) } });
      expect(await recoverMessageAddress({ message: 'session across workers', signature: hex(res.signature) })).toBe(svc.address);
    }
    // One header, replayed on every connection: exactly the first use succeeds.
    const header = session.stampDigest(SIGN, digest);
    const codes = [];
    for (const c of clients) codes.push(await codeOf(c.signing.sign(req, { headers: { [SESSION_HEADER]: header } })));
    expect(codes).toEqual(['no-error', 'STAMP_REPLAYED', 'STAMP_REPLAYED', 'STAMP_REPLAYED']);
  });

  it('SignStream runs on every worker under a session the owner holds', async () => {
    const session = await openServiceSession(svc.client.principals);
    const streams = grpcClients(app, 4).map((c) => openSignStream(c.transport, session, { identityPublicKey: identity }));
    const results = await Promise.all(
      streams.flatMap((stream, s) =>
        Array.from({ length: 25 }, async (_, i) => {
          const res = await stream.sign(signRequest(svc.keyId, `stream ${s}.${i}`));
          return { message: `stream ${s}.${i}`, res };
        }),
      ),
    );
    for (const { message, res } of results) expect(await recoverMessageAddress({ message, signature: hex(res.signature) })).toBe(svc.address);
    await Promise.all(streams.map((s) => s.close()));
  });

  it('a revocation is seen at once by every worker', async () => {
    const grantee = generateCredentials('ed25519');
    await createOpenKeyClient({ baseUrl: app.connectUrl, credentials: grantee }).principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.ED25519, publicKey: grantee.publicKey, name: 'grantee' });
    await svc.client.policy.grant({ keyId: svc.keyId, grant: { id: 'g', principal: { kind: PrincipalKind.SERVICE, id: grantee.principalId }, rule: { operations: [SignOperation.PERSONAL_SIGN] } } });
    const clients = grpcClients(app, 4, grantee);
    for (const c of clients) expect(await codeOf(c.signing.sign(signRequest(svc.keyId, 'granted')))).toBe('no-error');
    await svc.client.policy.revoke({ keyId: svc.keyId, grantId: 'g' });
    for (const c of clients) expect(await codeOf(c.signing.sign(signRequest(svc.keyId, 'revoked')))).toBe('KEY_NOT_FOUND');
  });

  it('both workers append to one audit chain, which verifies end to end', async () => {
    const { export: exp } = await exportAuditLog(svc.client.audit, { from: 1 });
    expect(verifyAuditExport(exp, identity)).toMatchObject({ ok: true, from: 1, to: exp.records.length });
    const seqs = exp.records.map((r) => r.seq);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    // 60 + 4 + 1 + 100 (streams) signatures by the service itself so far, all allowed by its ownership.
    expect(exp.records.filter((r) => r.operation === 'personal_sign' && r.principal === svc.creds.principalId && r.decision === 'allow')).toHaveLength(165);
  });

  it('a revocation made through one worker is honoured by the very next call on the other, stamped or session-authenticated', async () => {
    const grantee = generateCredentials('ed25519');
    const granteeConnect = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: grantee });
    await granteeConnect.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.ED25519, publicKey: grantee.publicKey, name: 'grantee across workers' });
    const session = await openServiceSession(granteeConnect.principals);
    const owners = await onEachWorker(app, () => createOpenKeyClient({ baseUrl: app.grpcUrl, protocol: 'grpc', credentials: svc.creds }));
    const stamped = await onEachWorker(app, () => createOpenKeyClient({ baseUrl: app.grpcUrl, protocol: 'grpc', credentials: grantee }));
    const sessioned = await onEachWorker(app, () => createOpenKeyClient({ baseUrl: app.grpcUrl, protocol: 'grpc' }));
    const withSession = (c: OpenKeyClient, message: string) => {
      const req = signRequest(svc.keyId, message);
      return codeOf(c.signing.sign(req, { headers: { [SESSION_HEADER]: session.stampDigest(SIGN, requestDigest(SignRequestSchema, req)) } }));
    };
    const [a, b] = [...owners.keys()] as [number, number];
    for (const [through, other] of [[a, b], [b, a]] as const) {
      const grant = { keyId: svc.keyId, grant: { id: 'across', principal: { kind: PrincipalKind.SERVICE, id: grantee.principalId }, rule: { operations: [SignOperation.PERSONAL_SIGN] } } };
      await owners.get(through)?.policy.grant(grant);
      // The other worker decides with the grant (twice: a session's first call there is checked by the owner, later ones by the worker).
      for (const i of [1, 2]) {
        expect(await codeOf((stamped.get(other) as OpenKeyClient).signing.sign(signRequest(svc.keyId, `granted ${i}`)))).toBe('no-error');
        expect(await withSession(sessioned.get(other) as OpenKeyClient, `granted ${i}`)).toBe('no-error');
      }
      await owners.get(through)?.policy.revoke({ keyId: svc.keyId, grantId: 'across' });
      expect(await codeOf((stamped.get(other) as OpenKeyClient).signing.sign(signRequest(svc.keyId, 'revoked')))).toBe('KEY_NOT_FOUND');
      expect(await withSession(sessioned.get(other) as OpenKeyClient, 'revoked')).toBe('KEY_NOT_FOUND');
    }
  });

  it('one session header sent to both workers at once is signed once and recorded once; a denied one is not recorded twice', async () => {
    const session = await openServiceSession(svc.client.principals);
    const clients = [...(await onEachWorker(app, () => createOpenKeyClient({ baseUrl: app.grpcUrl, protocol: 'grpc' }))).values()];
    const header = (req: ReturnType<typeof signRequest>) => session.stampDigest(SIGN, requestDigest(SignRequestSchema, req));
    // Each worker has seen the session once, so from here on each checks its MACs itself.
    for (const c of clients) expect(await codeOf(c.signing.sign(signRequest(svc.keyId, 'warm'), { headers: { [SESSION_HEADER]: header(signRequest(svc.keyId, 'warm')) } }))).toBe('no-error');
    const digests: string[] = [];
    for (let i = 0; i < 10; i++) {
      const req = signRequest(i < 8 ? svc.keyId : `key_${'0'.repeat(32)}`, `both at once ${i}`);
      const h = header(req);
      digests.push(Buffer.from(requestDigest(SignRequestSchema, req)).toString('hex'));
      const codes = await Promise.all(clients.map((c) => codeOf(c.signing.sign(req, { headers: { [SESSION_HEADER]: h } }))));
      expect(codes.sort()).toEqual(i < 8 ? ['STAMP_REPLAYED', 'no-error'] : ['KEY_NOT_FOUND', 'STAMP_REPLAYED']);
    }
    const { export: exp } = await exportAuditLog(svc.client.audit, { from: 1 });
    expect(verifyAuditExport(exp, identity)).toMatchObject({ ok: true });
    for (const [i, d] of digests.entries()) {
      const records = exp.records.filter((r) => Buffer.from(r.requestDigest).toString('hex') === d);
      expect(records.map((r) => r.decision)).toEqual([i < 8 ? 'allow' : 'deny']);
    }
  });

  it('a session closed through one worker is refused at once on both, and its stream on the other ends', async () => {
    const session = await openServiceSession(svc.client.principals);
    const byWorker = await onEachWorker(app, () => createOpenKeyClient({ baseUrl: app.grpcUrl, protocol: 'grpc' }));
    const [a, b] = [...byWorker.values()] as [OpenKeyClient, OpenKeyClient];
    const header = (req: ReturnType<typeof signRequest>) => session.stampDigest(SIGN, requestDigest(SignRequestSchema, req));
    // Twice on each worker: from the second call on, each checks the session's MACs itself.
    for (const c of [a, b]) for (let i = 0; i < 2; i++) {
      const req = signRequest(svc.keyId, `before the close ${i}`);
      expect(await codeOf(c.signing.sign(req, { headers: { [SESSION_HEADER]: header(req) } }))).toBe('no-error');
    }
    const stream = openSignStream(b.transport, session, { identityPublicKey: identity });
    await stream.sign(signRequest(svc.keyId, 'streamed before the close'));
    const later = [a, b].map((c, i) => ({ c, req: signRequest(svc.keyId, `after the close ${i}`) })).map((x) => ({ ...x, header: header(x.req) }));
    const close = create(CloseSessionRequestSchema, { sessionId: session.sessionId });
    const closed = await a.principals.closeSession(close, { headers: { [SESSION_HEADER]: session.stamp(CLOSE_SESSION, CloseSessionRequestSchema, close) } });
    expect(closed.wasLive).toBe(true);
    for (const { c, req, header: h } of later) expect(await codeOf(c.signing.sign(req, { headers: { [SESSION_HEADER]: h } }))).toBe('SESSION_EXPIRED');
    const refused = await stream.sign(signRequest(svc.keyId, 'streamed after the close')).then(
      () => 'signed',
      (e: unknown) => (e instanceof SignStreamError ? e.code : String(e)),
    );
    expect(refused).toBe('SESSION_EXPIRED');
  });

  it('a killed worker is replaced; the other keeps serving meanwhile', async () => {
    const [victim] = app.workerPids();
    expect(victim).toBeDefined();
    process.kill(victim as number, 'SIGKILL');
    const replaced = app.waitFor((l) => l.msg === 'worker listening' && l.pid !== undefined && !app.workerPids().slice(0, 2).includes(l.pid), 60_000);
    // Once the owner has noticed, fresh connections reach the surviving worker while the
    // replacement starts. (A connection handed out in the instant before is lost with the worker.)
    await app.waitFor((l) => l.msg === 'worker died; starting a replacement', 10_000);
    const during = await Promise.all(grpcClients(app, 3, svc.creds).map((c) => codeOf(c.signing.sign(signRequest(svc.keyId, 'during'), { timeoutMs: 10_000 }))));
    expect(during).toEqual(['no-error', 'no-error', 'no-error']);
    const line = await replaced;
    expect(line.pid).not.toBe(victim);
    const after = await Promise.all(grpcClients(app, 4, svc.creds).map((c) => codeOf(c.signing.sign(signRequest(svc.keyId, 'after'), { timeoutMs: 10_000 }))));
    expect(after).toEqual(['no-error', 'no-error', 'no-error', 'no-error']);
  }, 90_000);
});

describe('cluster: SIGTERM under load', () => {
  it('drains: every signature returned has its audit record, and the tree exits 0', async () => {
    const app = await startClusterAppliance({ workers: 2 });
    try {
      const svc = await registerService(app, 'drain-service');
      const clients = grpcClients(app, 8, svc.creds);
      let stopped = false;
      const signed: string[] = [];
      const failures: string[] = [];
      const loops = clients.map(async (c, w) => {
        for (let i = 0; !stopped; i++) {
          const message = `drain ${w}.${i}`;
          try {
            await c.signing.sign(signRequest(svc.keyId, message));
            signed.push(message);
          } catch (e) {
            failures.push((await codeOf(Promise.reject(e))) ?? 'unknown');
            return; // the listener is closing: this loop is done
          }
        }
      });
      await new Promise((r) => setTimeout(r, 1500));
      const exit = app.stop('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      stopped = true;
      await Promise.all(loops);
      expect(await exit).toEqual({ code: 0, signal: null });
      expect(signed.length).toBeGreaterThan(20);
      // Calls refused while draining fail as unavailable (no status from a closing server), never as a policy error.
      for (const f of failures) expect(f).toMatch(/^status:|^no-error$/);

      // Restart single-process on the same data: every returned signature is in the chain.
      const again = await startClusterAppliance({ workers: 1, dataDir: app.dataDir });
      try {
        const reader = createOpenKeyClient({ baseUrl: again.connectUrl, credentials: svc.creds });
        const { export: exp } = await exportAuditLog(reader.audit, { from: 1 });
        const identity = await identityOf(again.connectUrl);
        expect(verifyAuditExport(exp, identity)).toMatchObject({ ok: true });
        const recorded = new Set(exp.records.filter((r) => r.operation === 'personal_sign' && r.decision === 'allow').map((r) => Buffer.from(r.requestDigest).toString('hex')));
        for (const m of signed) expect(recorded.has(Buffer.from(requestDigest(SignRequestSchema, signRequest(svc.keyId, m))).toString('hex')), m).toBe(true);
      } finally {
        await again.stop('SIGTERM');
      }
    } finally {
      await app.dispose();
    }
  }, 120_000);
});
