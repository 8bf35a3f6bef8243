// A cluster worker decides on cached reads and checks session MACs itself; the store owner
// validates at commit. These tests run the real domain on both sides of the owner channel
// (test-ports.ts: no processes): workers with RemoteStore, RemoteServiceSessions, WorkerReads and
// the SignService; the owner with group commit over a store and the ServiceSessions. They check
// that a stale read is refused at commit and the fresh decision wins, that a revocation landing
// between a worker's read and its commit is never bypassed, that sequence numbers are single-use
// across workers with nothing written for a replay, that an ended session is refused at commit,
// and that a warm Sign costs one message to the owner.

import { createHash, createHmac, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { recoverMessageAddress, type Hex } from 'viem';
import { formatSessionStamp, sessionStampInput } from '../../../proto/protocol/session-stamp.ts';
import { formatStamp, stampSigningInput } from '../../../proto/protocol/stamp.ts';
import { principalIdFor } from '../../../proto/protocol/principal.ts';
import { GroupCommitStore } from '../adapters/group-commit.ts';
import { openMemoryStore } from '../adapters/memory-store.ts';
import { codeOf, keyRecord } from '../adapters/store.contract.ts';
import type { AuditRecord, Change, PrincipalRecord, Random, Store } from '../core/ports.ts';
import { Authenticator, type Authenticated } from '../core/auth.ts';
import { createEd25519Signer, type Ed25519Signer } from '../core/crypto/ed25519.ts';
import { OpenKeyError, isOpenKeyError } from '../core/errors.ts';
import { KeyPolicies } from '../core/key-policies.ts';
import { UnsealedKeyCache } from '../core/key-cache.ts';
import { createApplianceCrypto } from '../core/key-material.ts';
import { KeyService } from '../core/keys.ts';
import { capCounterId, type KeyGrant } from '../core/policy.ts';
import { SealingKeyring, seal, unseal } from '../core/sealing.ts';
import { ServiceSessions } from '../core/service-sessions.ts';
import { MAX_DECISIONS, SignService, type SignItem } from '../core/signing.ts';
import { ChannelClient, serveChannel } from './channel.ts';
import { RemoteServiceSessions, RemoteStore, ownerHandlers } from './remote.ts';
import { portPair, type TestPort } from './test-ports.ts';
import { WorkerReads, staleKeysOf } from './worker-reads.ts';

const SIGN = '/openkey.v1.SignService/Sign';
const SIGN_BATCH = '/openkey.v1.SignService/SignBatch';
const SESSION_TTL_MS = 60_000;
const crypto = createApplianceCrypto();
const random: Random = { bytes: (n) => new Uint8Array(randomBytes(n)) };
const keyring = SealingKeyring.fromSecrets([{ version: 1, secret: new Uint8Array(randomBytes(32)) }], 1);
const text = new TextEncoder();
const hex = (b: Uint8Array): Hex => `0x${Buffer.from(b).toString('hex')}`;
const digestOf = (message: string): Uint8Array => new Uint8Array(createHash('sha256').update(message).digest());
const noApproval = () => Promise.resolve(undefined);

/** A service principal with its Ed25519 key (for stamps). */
interface Service {
  readonly record: PrincipalRecord;
  readonly signer: Ed25519Signer;
}

function service(name: string): Service {
  const signer = createEd25519Signer(new Uint8Array(randomBytes(32)));
  const record: PrincipalRecord = { id: principalIdFor('ed25519', signer.publicKey), role: 'service', algorithm: 'ed25519', publicKey: signer.publicKey, name, createdAt: 1 };
  return { record, signer };
}

/** What a request authenticated outside these tests' subject looks like to the domain. */
function authOf(p: PrincipalRecord): Authenticated {
  return { principal: p, method: '/test', requestDigest: new Uint8Array(32), nonceChanges: [] };
}

/** The owner process: group commit over a store, the service sessions, and a log of every worker commit. */
class Owner {
  time = 1_700_000_000_000;
  readonly clock = { now: () => this.time };
  /** Each worker commit's outcome, in order: 'ok' or the error code. */
  readonly commits: string[] = [];
  /** Runs once, just before the next worker commit reaches the store (something landing meanwhile). */
  beforeNextCommit: (() => Promise<void>) | undefined;
  /** Session secrets as the client received them (the sealer is the test's). */
  readonly secrets = new Map<string, Uint8Array>();
  readonly sessions: ServiceSessions;
  /** Policy changes made elsewhere (as another worker would, but without telling this test's workers). */
  readonly policies: KeyPolicies;
  readonly unexpected: unknown[] = [];
  /** The workers' ends of the owner's "session closed" notice (cluster.ts sends it over IPC). */
  readonly closedListeners: ((sessionId: string) => void)[] = [];

  private constructor(readonly store: Store) {
    this.sessions = new ServiceSessions({
      store,
      clock: this.clock,
      random,
      seal: (o) => {
        this.secrets.set(new TextDecoder().decode(o.aad), Uint8Array.from(o.plaintext));
        return { enc: new Uint8Array(32), ciphertext: new Uint8Array(48) };
      },
      principal: (id) => store.getPrincipal(id),
      defaultTtlMs: SESSION_TTL_MS,
      maxTtlMs: SESSION_TTL_MS,
      maxSessions: 100,
      maxPerPrincipal: 10,
    });
    this.policies = new KeyPolicies({ store, clock: this.clock });
  }

  static async start(): Promise<Owner> {
    return new Owner(new GroupCommitStore(await openMemoryStore()));
  }

  /** The store as workers reach it: every commit logged, `beforeNextCommit` run first. */
  served(): Store {
    const s = this.store;
    return {
      getPrincipal: (id) => s.getPrincipal(id),
      getKey: (id) => s.getKey(id),
      listKeys: (owner, page) => s.listKeys(owner, page),
      commit: async (changes, options) => {
        const before = this.beforeNextCommit;
        this.beforeNextCommit = undefined;
        if (before !== undefined) await before();
        try {
          await s.commit(changes, options);
          this.commits.push('ok');
        } catch (e) {
          this.commits.push(isOpenKeyError(e) ? e.code : 'foreign');
          throw e;
        }
      },
      commitEach: (groups) => s.commitEach(groups),
      pruneNonces: (now) => s.pruneNonces(now),
      getCounter: (c) => s.getCounter(c),
      getTokenBucket: (b) => s.getTokenBucket(b),
      getAuditHead: () => s.getAuditHead(),
      getDoc: (space, id) => s.getDoc(space, id),
      listDocs: (space, page) => s.listDocs(space, page),
      pruneDocs: (now) => s.pruneDocs(now),
      readAudit: (from, to) => s.readAudit(from, to),
      close: () => s.close(),
    };
  }

  async register(...services: Service[]): Promise<void> {
    await this.store.commit(services.map((svc): Change => ({ kind: 'createPrincipal', principal: svc.record })));
  }

  async grant(owner: Service, keyId: string, grant: KeyGrant): Promise<void> {
    await this.policies.change(authOf(owner.record), keyId, { kind: 'grant', grant }, noApproval);
  }

  async revoke(owner: Service, keyId: string, grantId: string): Promise<void> {
    await this.policies.change(authOf(owner.record), keyId, { kind: 'revoke', grantId }, noApproval);
  }

  /** Opens a session for `svc` and returns a stamper holding the secret, as the client would. */
  async openSession(svc: Service): Promise<Stamper> {
    const opened = await this.sessions.open(authOf(svc.record), new Uint8Array(32).fill(1), 0);
    const secret = this.secrets.get(opened.sessionId);
    if (secret === undefined) throw new Error('the sealer saw no secret');
    return new Stamper(opened.sessionId, secret);
  }

  async audit(): Promise<AuditRecord[]> {
    const head = await this.store.getAuditHead();
    return head.seq === 0 ? [] : this.store.readAudit(1, head.seq);
  }
}

/** A client's session: each header with a fresh sequence number, or a given one. */
class Stamper {
  #seq = 0;
  constructor(
    readonly sessionId: string,
    private readonly secret: Uint8Array,
  ) {}
  header(message: string, seq = ++this.#seq, method = SIGN): string {
    const mac = createHmac('sha256', this.secret).update(sessionStampInput(method, digestOf(message), this.sessionId, seq)).digest('base64url');
    return formatSessionStamp({ sessionId: this.sessionId, seq, mac });
  }
}

const personal = (keyId: string, message: string): SignItem => ({ keyId, payload: { kind: 'personalMessage', message: text.encode(message) } });

/** A worker process: the domain over RemoteStore, RemoteServiceSessions and WorkerReads. */
function worker(owner: Owner, now: () => number = owner.clock.now) {
  const [port, ownerPort] = portPair();
  const sessionClosed = (id: string) => {
    for (const tell of owner.closedListeners) tell(id);
  };
  serveChannel(ownerPort, ownerHandlers({ store: owner.served(), sessions: owner.sessions, collateral: undefined, sessionClosed }), (_op, e) => owner.unexpected.push(e));
  const channel = new ChannelClient(port);
  const clock = { now };
  const sessions = new RemoteServiceSessions(channel, { now, localMethods: new Set([SIGN, SIGN_BATCH]) });
  owner.closedListeners.push((id) => sessions.forget(id));
  const store = new RemoteStore(channel, { sessionEnded: (id) => sessions.forget(id) });
  const reads = new WorkerReads(store);
  const policies = new KeyPolicies({ store, clock });
  const keys = new KeyService({
    store,
    clock,
    random,
    material: crypto.material,
    sealer: { seal: (p, secret) => seal({ ...p, keyring, random, secret }), unseal: (p, blob) => unseal({ ...p, keyring, blob }) },
    openImport: () => {
      throw new OpenKeyError('INTERNAL', 'no imports here');
    },
    importPublicKey: new Uint8Array(32),
  });
  const signing = new SignService({ store, clock, keys, policies, cache: new UnsealedKeyCache({ clock, maxEntries: 16, ttlMs: 600_000 }), hash: crypto.hasher, reads });
  const auth = new Authenticator({ store, clock, verify: crypto.verifyPrincipalSignature, windowMs: 60_000, serviceSession: (req) => sessions.authenticate(req) });
  const authenticate = (method: string, message: string, headers: { session?: string; stamp?: string }) =>
    auth.authenticate({ method, bodyDigest: digestOf(message), stamp: headers.stamp, sessionStamp: headers.session });
  return {
    port,
    sessions,
    reads,
    signing,
    /** Creates a secp256k1 key owned by `svc` (through this worker). */
    createKey: (svc: Service) => keys.create(authOf(svc.record), { algorithm: 'secp256k1', label: 'k', rawDigestSigning: false }),
    /** Sign of `message` with a session header (as rpc.ts does: auth still in progress). */
    sign: (session: string, keyId: string, message: string) => signing.sign(authenticate(SIGN, message, { session }), personal(keyId, message)),
    signBatch: (session: string, keyId: string, messages: string[]) =>
      signing.signBatch(authenticate(SIGN_BATCH, messages.join('|'), { session }), messages.map((m) => personal(keyId, m))),
    /** Sign of `message` with a per-request Ed25519 stamp. */
    signStamped: (svc: Service, keyId: string, message: string) => {
      const nonce = Buffer.from(randomBytes(16)).toString('base64url');
      const ts = now();
      const signature = svc.signer.sign(stampSigningInput(SIGN, digestOf(message), svc.record.id, ts, nonce));
      const stamp = formatStamp({ principalId: svc.record.id, timestampMs: ts, nonce, signature });
      return signing.sign(authenticate(SIGN, message, { stamp }), personal(keyId, message));
    },
  };
}

/** How many IPC messages `port` sends while `run` runs. */
async function messagesDuring(port: TestPort, run: () => Promise<unknown>): Promise<number> {
  const before = port.sent;
  await run();
  return port.sent - before;
}

const grantTo = (svc: Service, id = 'g', over: Partial<KeyGrant> = {}): KeyGrant => ({ id, principal: { kind: 'service', id: svc.record.id }, operations: ['personal_sign'], ...over });

let owners: Owner[] = [];
afterEach(() => {
  for (const o of owners) expect(o.unexpected).toEqual([]);
  owners = [];
});

/** An owner, a key owned by `alice`, and `bob` (who has no grant yet) with an open session. */
async function setup() {
  const owner = await Owner.start();
  owners.push(owner);
  const alice = service('alice');
  const bob = service('bob');
  await owner.register(alice, bob);
  const w1 = worker(owner);
  const key = await w1.createKey(alice);
  const bobSession = await owner.openSession(bob);
  return { owner, alice, bob, w1, key, bobSession };
}

describe('a worker decides on its own reads; the owner checks them at commit', () => {
  it('a warm session-authenticated Sign (and SignBatch) sends one message to the owner: the commit', async () => {
    const { owner, alice, bob, w1, key, bobSession } = await setup();
    await owner.grant(alice, key.keyId, grantTo(bob));
    // Cold: the owner authenticates and shares the secret, the key and policy are read (one
    // message), then the commit (another).
    expect(await messagesDuring(w1.port, () => w1.sign(bobSession.header('cold'), key.keyId, 'cold'))).toBe(2);
    let sig: Uint8Array | undefined;
    expect(
      await messagesDuring(w1.port, async () => {
        sig = (await w1.sign(bobSession.header('warm'), key.keyId, 'warm')).signature;
      }),
    ).toBe(1);
    expect(await recoverMessageAddress({ message: 'warm', signature: hex(sig ?? new Uint8Array()) })).toBe(key.address);
    expect(await messagesDuring(w1.port, () => w1.signBatch(bobSession.header('a|b', undefined, SIGN_BATCH), key.keyId, ['a', 'b']))).toBe(1);
    const allowed = (await owner.audit()).filter((r) => r.principal === bob.record.id && r.decision === 'allow');
    // The session's opening, then the signatures; the batch's two identical decisions are one record of two.
    expect(allowed.map((r) => `${r.operation}:${r.reason}×${r.count ?? 1}`)).toEqual(['open_session:OWNER×1', 'personal_sign:GRANT×1', 'personal_sign:GRANT×1', 'personal_sign:GRANT×2']);
  });

  it('a warm stamped Sign also sends one message: the principal, key and policy are kept, the nonce goes with the commit', async () => {
    const { owner, alice, w1, key } = await setup();
    expect(await messagesDuring(w1.port, () => w1.signStamped(alice, key.keyId, 'cold'))).toBe(2);
    expect(await messagesDuring(w1.port, () => w1.signStamped(alice, key.keyId, 'warm'))).toBe(1);
    expect((await owner.audit()).filter((r) => r.operation === 'personal_sign').map((r) => r.reason)).toEqual(['OWNER', 'OWNER']);
  });

  it('a cached policy that changed before the commit: the owner refuses the commit, the worker re-reads, and the fresh decision wins', async () => {
    const { owner, alice, bob, w1, key, bobSession } = await setup();
    expect(await codeOf(w1.sign(bobSession.header('before'), key.keyId, 'before'))).toBe('KEY_NOT_FOUND');
    expect(w1.reads.size).toBe(1); // the key and its (absent) policy are kept
    await owner.grant(alice, key.keyId, grantTo(bob)); // elsewhere: this worker is not told
    const auditBefore = (await owner.audit()).length;
    const commitsBefore = owner.commits.length;
    const res = await w1.sign(bobSession.header('after'), key.keyId, 'after');
    expect(await recoverMessageAddress({ message: 'after', signature: hex(res.signature) })).toBe(key.address);
    // The decision on the stale policy (a denial) was refused and wrote nothing; the fresh one was recorded.
    expect(owner.commits.slice(commitsBefore)).toEqual(['CONFLICT', 'ok']);
    const records = (await owner.audit()).slice(auditBefore);
    expect(records.map((r) => [r.principal, r.decision, r.reason])).toEqual([[bob.record.id, 'allow', 'GRANT']]);
  });

  it('a grant revoked between the read and the commit is refused, from the cache or not: nothing signed, the denial recorded', async () => {
    for (const warm of [true, false]) {
      const { owner, alice, bob, key, bobSession } = await setup();
      const w2 = worker(owner);
      await owner.grant(alice, key.keyId, grantTo(bob));
      if (warm) await w2.sign(bobSession.header('warm-up'), key.keyId, 'warm-up');
      const auditBefore = (await owner.audit()).length;
      const commitsBefore = owner.commits.length;
      owner.beforeNextCommit = () => owner.revoke(alice, key.keyId, 'g');
      expect(await codeOf(w2.sign(bobSession.header('raced'), key.keyId, 'raced'))).toBe('KEY_NOT_FOUND');
      expect(owner.commits.slice(commitsBefore)).toEqual(['CONFLICT', 'ok']);
      const records = (await owner.audit()).slice(auditBefore);
      expect(records.map((r) => [r.operation, r.decision, r.reason])).toEqual([
        ['revoke', 'allow', 'OWNER'],
        ['personal_sign', 'deny', 'NOT_GRANTED'],
      ]);
    }
  });

  it(`reads that change before every commit: CONFLICT after ${MAX_DECISIONS} decisions, nothing written, the sequence number left unspent`, async () => {
    const { owner, alice, bob, w1, key, bobSession } = await setup();
    await owner.grant(alice, key.keyId, grantTo(bob));
    await w1.sign(bobSession.header('warm-up'), key.keyId, 'warm-up');
    const auditBefore = (await owner.audit()).length;
    const commitsBefore = owner.commits.length;
    let flips = 0;
    const flip = async (): Promise<void> => {
      flips++;
      await owner.grant(alice, key.keyId, grantTo(bob, 'g', { maxMessageBytes: 1000 + flips }));
      if (flips < MAX_DECISIONS) owner.beforeNextCommit = flip;
    };
    owner.beforeNextCommit = flip;
    const header = bobSession.header('contended');
    expect(await codeOf(w1.sign(header, key.keyId, 'contended'))).toBe('CONFLICT');
    expect(owner.commits.slice(commitsBefore)).toEqual(Array.from({ length: MAX_DECISIONS }, () => 'CONFLICT'));
    expect((await owner.audit()).slice(auditBefore).every((r) => r.operation === 'grant')).toBe(true);
    // Nothing recorded the decision, so the number was not spent: the same call now goes through, once.
    await w1.sign(header, key.keyId, 'contended');
    expect(await codeOf(w1.sign(header, key.keyId, 'contended'))).toBe('STAMP_REPLAYED');
  });
});

describe('sequence numbers are spent by the owner at commit', () => {
  it('a replayed number is STAMP_REPLAYED on either worker and writes nothing: no audit record, no counter', async () => {
    const { owner, alice, bob, w1, key, bobSession } = await setup();
    const w2 = worker(owner);
    await owner.grant(alice, key.keyId, grantTo(bob, 'g', { caps: [{ limit: 100, windowMs: 86_400_000 }] }));
    // Both workers have seen the session authenticated, so both check its MACs themselves.
    await w1.sign(bobSession.header('w1'), key.keyId, 'w1');
    await w2.sign(bobSession.header('w2'), key.keyId, 'w2');
    const header = bobSession.header('once');
    await w1.sign(header, key.keyId, 'once');
    const counter = capCounterId(key.keyId, { kind: 'service', id: bob.record.id }, 'g', 86_400_000);
    const head = await owner.store.getAuditHead();
    const count = (await owner.store.getCounter(counter))?.count;
    expect(count).toBe(3);
    expect(await codeOf(w1.sign(header, key.keyId, 'once'))).toBe('STAMP_REPLAYED');
    expect(await codeOf(w2.sign(header, key.keyId, 'once'))).toBe('STAMP_REPLAYED');
    expect((await owner.store.getAuditHead()).seq).toBe(head.seq);
    expect((await owner.store.getCounter(counter))?.count).toBe(count);

    // The same header on both workers at once: exactly one is signed.
    const raced = bobSession.header('raced');
    const outcomes = await Promise.allSettled([w1.sign(raced, key.keyId, 'raced'), w2.sign(raced, key.keyId, 'raced')]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const refused = outcomes.find((o) => o.status === 'rejected');
    expect((refused as PromiseRejectedResult | undefined)?.reason).toMatchObject({ code: 'STAMP_REPLAYED' });
    expect((await owner.audit()).filter((r) => Buffer.from(r.requestDigest).equals(Buffer.from(digestOf('raced'))))).toHaveLength(1);
  });

  it('a denial spends its number too: the replay on the other worker is STAMP_REPLAYED and not recorded twice', async () => {
    const { owner, w1, key, bobSession } = await setup();
    const w2 = worker(owner);
    await codeOf(w1.sign(bobSession.header('w1'), key.keyId, 'w1'));
    await codeOf(w2.sign(bobSession.header('w2'), key.keyId, 'w2'));
    const header = bobSession.header('denied');
    expect(await codeOf(w1.sign(header, key.keyId, 'denied'))).toBe('KEY_NOT_FOUND');
    expect(await codeOf(w2.sign(header, key.keyId, 'denied'))).toBe('STAMP_REPLAYED');
    const records = (await owner.audit()).filter((r) => Buffer.from(r.requestDigest).equals(Buffer.from(digestOf('denied'))));
    expect(records.map((r) => [r.decision, r.reason])).toEqual([['deny', 'NOT_GRANTED']]);
  });

  it('a malformed request refused before policy spends its number, with its refusal recorded once', async () => {
    const { owner, w1, key, bobSession } = await setup();
    await codeOf(w1.sign(bobSession.header('warm-up'), key.keyId, 'warm-up'));
    const header = bobSession.header('');
    const empty = () => w1.signing.sign(w1.sessions.authenticate({ method: SIGN, bodyDigest: digestOf(''), stamp: undefined, sessionStamp: header }), personal(key.keyId, ''));
    expect(await codeOf(empty())).toBe('MISSING_FIELD');
    expect(await codeOf(empty())).toBe('STAMP_REPLAYED');
    expect((await owner.audit()).filter((r) => r.reason === 'MISSING_FIELD')).toHaveLength(1);
  });

  it('a session the owner has ended (closed, or expired by its clock) is refused at commit: nothing written, and the worker forgets its secret', async () => {
    for (const ending of ['closed', 'expired'] as const) {
      const { owner, alice, bob, key, bobSession } = await setup();
      // This worker's clock lags the owner's by a minute, so only the owner can tell the session ended.
      const w = worker(owner, () => owner.time - 60_000);
      await owner.grant(alice, key.keyId, grantTo(bob));
      await w.sign(bobSession.header('warm-up'), key.keyId, 'warm-up');
      if (ending === 'closed') owner.sessions.clear();
      else owner.time += SESSION_TTL_MS;
      const head = await owner.store.getAuditHead();
      expect(await codeOf(w.sign(bobSession.header('late'), key.keyId, 'late'))).toBe('SESSION_EXPIRED');
      expect((await owner.store.getAuditHead()).seq).toBe(head.seq);
      expect(w.sessions.remainingMs(bobSession.sessionId)).toBe(0);
    }
  });

  it('CloseSession through one worker: every worker forgets the session, and the next call on any is refused with nothing written', async () => {
    const { owner, alice, bob, w1, key, bobSession } = await setup();
    const w2 = worker(owner);
    await owner.grant(alice, key.keyId, grantTo(bob));
    // Both workers hold the secret after a call each.
    for (const w of [w1, w2]) await w.sign(bobSession.header('warm-up'), key.keyId, 'warm-up');
    expect(w2.sessions.remainingMs(bobSession.sessionId)).toBeGreaterThan(0);
    // Alice may not close Bob's session; Bob may.
    expect(await codeOf(w1.sessions.close(authOf(alice.record), bobSession.sessionId))).toBe('PERMISSION_DENIED');
    expect(w2.sessions.remainingMs(bobSession.sessionId)).toBeGreaterThan(0);
    expect(await w1.sessions.close(authOf(bob.record), bobSession.sessionId)).toBe(true);
    for (const w of [w1, w2]) expect(w.sessions.remainingMs(bobSession.sessionId)).toBe(0);
    const head = await owner.store.getAuditHead();
    const commits = owner.commits.length;
    for (const w of [w1, w2]) expect(await codeOf(w.sign(bobSession.header('after'), key.keyId, 'after'))).toBe('SESSION_EXPIRED');
    // Refused when the owner authenticated them (the workers no longer hold the secret): no commit.
    expect(owner.commits.length).toBe(commits);
    expect((await owner.store.getAuditHead()).seq).toBe(head.seq);
    // Closing it again says it was no longer live, and tells nobody.
    expect(await w2.sessions.close(authOf(bob.record), bobSession.sessionId)).toBe(false);
  });

  it('a call that spent no number in its commit (a SignStream message) is still refused once its session has ended', async () => {
    const { owner, alice, bob, w1, key, bobSession } = await setup();
    await owner.grant(alice, key.keyId, grantTo(bob));
    // What rpc.ts builds for each stream message: the opening's authentication, no sequence number.
    const opened = await w1.sessions.authenticate({ method: '/openkey.v1.SignService/SignStream', bodyDigest: digestOf(''), stamp: undefined, sessionStamp: bobSession.header('', undefined, '/openkey.v1.SignService/SignStream') });
    const message = (m: string) => w1.signing.sign({ ...opened, requestDigest: digestOf(m), nonceChanges: [] }, personal(key.keyId, m));
    await message('in the stream');
    owner.sessions.clear();
    const head = await owner.store.getAuditHead();
    expect(await codeOf(message('after the end'))).toBe('SESSION_EXPIRED');
    expect((await owner.store.getAuditHead()).seq).toBe(head.seq);
  });

  it('hold: a number released after the window has moved past it stays taken by the later number sharing its slot', async () => {
    const { owner, bobSession } = await setup();
    const id = bobSession.sessionId;
    const releaseOne = await owner.sessions.hold(id, 1);
    await owner.sessions.hold(id, 5000); // the window (4096) now starts above 1
    await owner.sessions.hold(id, 4097); // same slot as 1
    releaseOne(); // the commit that held 1 wrote nothing
    expect(await codeOf(owner.sessions.hold(id, 4097))).toBe('STAMP_REPLAYED');
    // Within the window a release does free the number.
    const release = await owner.sessions.hold(id, 4999);
    release();
    await owner.sessions.hold(id, 4999);
    expect(await codeOf(owner.sessions.hold(id, 4999))).toBe('STAMP_REPLAYED');
    expect(await codeOf(owner.sessions.hold(id, 1))).toBe('STAMP_EXPIRED');
    expect(await codeOf(owner.sessions.hold(`ses_${'0'.repeat(32)}`, 1))).toBe('SESSION_EXPIRED');
  });
});

describe('worker read cache', () => {
  it('keeps existing keys only, and a read that started before a forget does not fill it', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const record = keyRecord('key_1', 'svc_a');
    const store = {
      getKey: async (id: string) => {
        await gate;
        return id === 'key_1' ? record : undefined;
      },
      getDoc: () => Promise.resolve(undefined),
    };
    const reads = new WorkerReads(store as unknown as Pick<Store, 'getKey' | 'getDoc'>);
    const pending = reads.read('key_1', false);
    reads.forget(['other']); // e.g. the owner says some key changed
    release();
    expect(await pending.record).toBe(record);
    expect(await pending.policy).toBeUndefined();
    expect(reads.size).toBe(0);
    await reads.read('key_1', false).record;
    await reads.read('key_unknown', false).record;
    expect(reads.size).toBe(1);
  });

  it('the owner tells workers about writes to key records and policies, nothing else', () => {
    const changes: Change[] = [
      { kind: 'putDoc', space: 'policy', id: 'key_a', value: new Uint8Array(1) },
      { kind: 'deleteDoc', space: 'policy', id: 'key_b' },
      { kind: 'putDoc', space: 'session', id: 'key_c', value: new Uint8Array(1) },
      { kind: 'consumeNonce', principalId: 'svc_a', nonce: 'n', expiresAt: 1 },
    ];
    expect(staleKeysOf(changes)?.keyIds).toEqual(['key_a', 'key_b']);
    expect(staleKeysOf(changes.slice(2))).toBeUndefined();
  });
});
