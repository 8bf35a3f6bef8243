// SignStream end to end, on a real appliance over loopback: a service opens one stream with its
// service session and pipelines hundreds of Sign requests over gRPC (the grpc-js listener) and over
// the Connect listener (Connect protocol and gRPC, both HTTP/2). viem recovers every signature,
// every receipt verifies and binds that message's own request, and the audit log holds one allow
// record per message under the service. Openings without a valid, unused service session are
// refused before anything is signed; a refused message is answered on its own and the stream goes
// on; the per-stream bound, the call timeout, session expiry, a client that cancels and a server
// that shuts down each behave as documented in proto/openkey/v1/signing.proto.

import { create, toBinary } from '@bufbuild/protobuf';
import { Code, createClient, type Transport } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport } from '@connectrpc/connect-node';
import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { recoverMessageAddress, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyAlgorithm } from '../proto/gen/openkey/v1/common_pb.ts';
import {
  SignRequestSchema,
  SignResponseSchema,
  SignService,
  SignStreamRequestSchema,
  type SignRequest,
  type SignResponse,
  type SignStreamResponse,
} from '../proto/gen/openkey/v1/signing_pb.ts';
import {
  checkReceipt,
  openServiceSession,
  openSignStream,
  SESSION_HEADER,
  SIGN_STREAM_PATH,
  SignStreamError,
  STAMP_HEADER,
  stampFor,
  type ServiceSession,
  type SignStream,
} from '../clients/src/index.ts';
import { MAX_STREAM_IN_PROGRESS } from '../server/src/transport/sign-stream.ts';
import type { Change, CommitOptions, Store } from '../server/src/core/ports.ts';
import { startTestAppliance, type TestAppliance } from './support/appliance.ts';
import { codeOf } from './support/codes.ts';
import { auditMark, auditSince, ManualClock, ORIGIN, PASSKEY_ENV, registerPerson, serviceClient, signIn, type Service } from './support/people.ts';
import { SoftAuthenticator } from './support/soft-authenticator.ts';

const te = new TextEncoder();
const hex = (b: Uint8Array): Hex => `0x${Buffer.from(b).toString('hex')}`;
const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const EMPTY_DIGEST = new Uint8Array(createHash('sha256').digest());
/** What a receipt of a stream answer covers (clients/src/sign-stream.ts checks the same). */
const RECEIPT_METHOD = { name: 'SignStream', input: SignRequestSchema, output: SignResponseSchema } as const;

const personal = (keyId: string, message: Uint8Array): SignRequest => create(SignRequestSchema, { keyId, payload: { kind: { case: 'personalMessage', value: { message } } } });

interface Signer extends Service {
  readonly keyId: string;
  readonly address: string;
}

async function signer(app: TestAppliance, clock: ManualClock | undefined, name: string): Promise<Signer> {
  const svc = await serviceClient(app, { name, ...(clock === undefined ? {} : { clock }) });
  const key = (await svc.client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1, label: name })).key;
  if (key === undefined) throw new Error('SealKey returned no key');
  return { ...svc, keyId: key.keyId, address: key.address };
}

/** The three ways to reach SignStream: the grpc-js listener, and the Connect listener over HTTP/2. */
const viaGrpcListener = (app: TestAppliance): Transport => createGrpcTransport({ baseUrl: `http://${app.grpcTarget}` });
const viaConnectH2 = (app: TestAppliance): Transport => createConnectTransport({ baseUrl: app.connectUrl, httpVersion: '2' });
const viaGrpcOnConnectListener = (app: TestAppliance): Transport => createGrpcTransport({ baseUrl: app.connectUrl });
const TRANSPORTS: readonly [string, (app: TestAppliance) => Transport][] = [
  ['gRPC listener (grpc-js)', viaGrpcListener],
  ['Connect listener, Connect protocol over h2c', viaConnectH2],
  ['Connect listener, gRPC protocol', viaGrpcOnConnectListener],
];

/** A SignStream with hand-made headers: sends `requests`, half-closes, and reports what came back. */
async function rawStream(transport: Transport, headers: Record<string, string>, requests: readonly SignRequest[]): Promise<{ answers: SignStreamResponse[]; code: string | undefined }> {
  async function* messages() {
    for (const [i, request] of requests.entries()) yield create(SignStreamRequestSchema, { id: BigInt(i + 1), request });
  }
  const answers: SignStreamResponse[] = [];
  const code = await codeOf(
    (async () => {
      for await (const a of createClient(SignService, transport).signStream(messages(), { headers })) answers.push(a);
    })(),
  );
  return { answers, code };
}

/** The error code a stream request rejected with ('no-error' if it was signed). */
async function streamCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'no-error';
  } catch (e) {
    return e instanceof SignStreamError ? e.code : `not a SignStreamError: ${String(e)}`;
  }
}

async function waitFor(what: string, done: () => boolean, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('SignStream', () => {
  const clock = new ManualClock(Date.now());
  let app: TestAppliance;
  let svc: Signer;
  let other: Signer;
  let session: ServiceSession;

  beforeAll(async () => {
    app = await startTestAppliance({ clock });
    svc = await signer(app, clock, 'stream-service');
    other = await signer(app, clock, 'someone-else');
    session = await openServiceSession(svc.client.principals);
  });
  afterAll(async () => app.dispose());

  it.each(TRANSPORTS)('signs 240 pipelined messages over the %s: viem recovers each, each receipt binds its message, one allow record each', async (_name, transportOf) => {
    const N = 240;
    const requests = Array.from({ length: N }, (_, i) => personal(svc.keyId, te.encode(`stream message ${i} over ${_name}`)));
    const mark = await auditMark(app, svc.client);
    const stream = openSignStream(transportOf(app), session, { identityPublicKey: app.identityPublicKey });
    const pending = requests.map((r) => stream.sign(r));
    expect(stream.outstanding).toBe(N); // all sent before the first answer: pipelined
    const results = await Promise.all(pending);
    await stream.close();

    for (const [i, res] of results.entries()) {
      const request = requests[i] as SignRequest;
      const message = request.payload?.kind.case === 'personalMessage' ? request.payload.kind.value.message : new Uint8Array(0);
      expect(await recoverMessageAddress({ message: { raw: message }, signature: hex(res.signature) })).toBe(svc.address);
      expect(res.keyId).toBe(svc.keyId);
      // The receipt names SignStream and this message's own SignRequest, and verifies.
      expect(res.receipt?.method).toBe(SIGN_STREAM_PATH);
      expect(Buffer.from(res.receipt?.requestDigest ?? []).toString('hex')).toBe(sha256Hex(toBinary(SignRequestSchema, request)));
      expect(() => checkReceipt(app.identityPublicKey, SignService, RECEIPT_METHOD, request, res)).not.toThrow();
    }
    // A receipt does not verify for another message of the same stream.
    expect(() => checkReceipt(app.identityPublicKey, SignService, RECEIPT_METHOD, requests[1] as SignRequest, results[0] as SignResponse)).toThrow(/request digest/);

    const records = (await auditSince(app, svc.client, svc.id, mark)).filter((r) => r.operation === 'personal_sign');
    expect(records).toHaveLength(N);
    expect(new Set(records.map((r) => `${r.principal} ${r.keyId} ${r.decision}`))).toEqual(new Set([`${svc.id} ${svc.keyId} allow`]));
    expect(new Set(records.map((r) => Buffer.from(r.requestDigest).toString('hex')))).toEqual(new Set(requests.map((r) => sha256Hex(toBinary(SignRequestSchema, r)))));
  });

  it('answers a refused message with its own code and goes on signing the next ones', async () => {
    const mark = await auditMark(app, svc.client);
    const stream = openSignStream(viaGrpcListener(app), session, { identityPublicKey: app.identityPublicKey });
    const ok = (i: number) => stream.sign(personal(svc.keyId, te.encode(`fine ${i}`)));
    const outcomes = await Promise.all([
      streamCode(ok(1)),
      streamCode(stream.sign(personal(other.keyId, te.encode('not my key')))), // no grant: policy denies
      streamCode(ok(2)),
      streamCode(stream.sign({ keyId: svc.keyId, payload: { kind: { case: 'rawDigest', value: new Uint8Array(32) } } })), // raw digests off
      streamCode(stream.sign(personal(svc.keyId, new Uint8Array(64 * 1024 + 1)))),
      streamCode(stream.sign({ keyId: svc.keyId, payload: { kind: { case: 'personalMessage', value: { message: te.encode('approved?') } } }, approval: { issuedAtMs: 1n, assertionJson: '{}' } })),
      streamCode(stream.sign({ keyId: svc.keyId })),
      streamCode(stream.sign(personal('not-a-key-id', te.encode('x')))),
      streamCode(ok(3)),
    ]);
    expect(outcomes).toEqual(['no-error', 'KEY_NOT_FOUND', 'no-error', 'RAW_SIGNING_DISABLED', 'PAYLOAD_TOO_LARGE', 'MALFORMED_REQUEST', 'MISSING_FIELD', 'KEY_NOT_FOUND', 'no-error']);
    expect(await streamCode(ok(4))).toBe('no-error');
    await stream.close();
    // Every decision is audited like a unary Sign's; the approval was refused before any decision.
    const records = await auditSince(app, svc.client, svc.id, mark);
    const decisions = records.filter((r) => r.principal === svc.id && (r.operation === 'personal_sign' || r.operation === 'raw_digest')).map((r) => `${r.decision} ${r.reason}`);
    expect(decisions.filter((d) => d.startsWith('allow'))).toHaveLength(4);
    expect(decisions.filter((d) => d.startsWith('deny')).map((d) => d.split(' ')[1]).sort()).toEqual(['KEY_NOT_FOUND', 'MISSING_FIELD', 'NOT_GRANTED', 'PAYLOAD_TOO_LARGE', 'RAW_DIGEST_DISABLED']);
  });

  describe.each(TRANSPORTS)('refuses to open a stream without a fresh service session, and signs nothing (%s)', (_name, transportOf) => {
    const one = () => [personal(svc.keyId, te.encode('should never be signed'))];
    const refused = async (headers: Record<string, string>, expected: string) => {
      const mark = await auditMark(app, svc.client);
      const out = await rawStream(transportOf(app), headers, one());
      expect(out).toEqual({ answers: [], code: expected });
      expect((await auditSince(app, svc.client, svc.id, mark)).filter((r) => r.operation === 'personal_sign')).toEqual([]);
    };

    it('no authentication at all: UNAUTHENTICATED', () => refused({}, 'UNAUTHENTICATED'));

    it('a valid request stamp instead of a session: UNAUTHENTICATED', () => {
      const stamp = stampFor(svc.credentials, SIGN_STREAM_PATH, SignRequestSchema, create(SignRequestSchema), { now: () => clock.now() });
      return refused({ [STAMP_HEADER]: stamp }, 'UNAUTHENTICATED');
    });

    it('a forged session MAC: STAMP_INVALID', () => {
      const parts = session.stampDigest(SIGN_STREAM_PATH, EMPTY_DIGEST).split('.');
      parts[3] = 'A'.repeat(43);
      return refused({ [SESSION_HEADER]: parts.join('.') }, 'STAMP_INVALID');
    });

    it('a session header for another method, or over a non-empty body: STAMP_INVALID', async () => {
      await refused({ [SESSION_HEADER]: session.stampDigest('/openkey.v1.SignService/Sign', EMPTY_DIGEST) }, 'STAMP_INVALID');
      await refused({ [SESSION_HEADER]: session.stampDigest(SIGN_STREAM_PATH, new Uint8Array(32).fill(1)) }, 'STAMP_INVALID');
    });

    it('an opening header used a second time: STAMP_REPLAYED', async () => {
      const header = session.stampDigest(SIGN_STREAM_PATH, EMPTY_DIGEST);
      const first = await rawStream(transportOf(app), { [SESSION_HEADER]: header }, one());
      expect(first.code).toBe('no-error');
      expect(first.answers.map((a) => a.outcome.case)).toEqual(['result']);
      await refused({ [SESSION_HEADER]: header }, 'STAMP_REPLAYED');
    });

    it('the sequence number of an earlier unary call: STAMP_REPLAYED', async () => {
      const seq = session.nextSeq();
      const message = te.encode('unary first');
      const unary = createClient(SignService, transportOf(app));
      await unary.sign(personal(svc.keyId, message), { headers: { [SESSION_HEADER]: session.stampDigest('/openkey.v1.SignService/Sign', createHash('sha256').update(toBinary(SignRequestSchema, personal(svc.keyId, message))).digest(), seq) } });
      await refused({ [SESSION_HEADER]: session.stampDigest(SIGN_STREAM_PATH, EMPTY_DIGEST, seq) }, 'STAMP_REPLAYED');
    });
  });

  it('ends the stream with MALFORMED_REQUEST on a message that is not protobuf (grpc-js)', async () => {
    const identity = (b: Buffer): Buffer => b;
    const Client = grpc.makeGenericClientConstructor(
      { signStream: { path: SIGN_STREAM_PATH, requestStream: true, responseStream: true, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity } },
      'SignService',
    );
    const client = new Client(app.grpcTarget, grpc.credentials.createInsecure());
    try {
      const md = new grpc.Metadata();
      md.set(SESSION_HEADER, session.stampDigest(SIGN_STREAM_PATH, EMPTY_DIGEST));
      const call = (client as unknown as { signStream(md: grpc.Metadata): grpc.ClientDuplexStream<Buffer, Buffer> }).signStream(md);
      const status = new Promise<{ code: number; appCode: unknown; answers: number }>((resolve) => {
        let answers = 0;
        call.on('data', () => answers++);
        call.on('error', (e: grpc.ServiceError) => resolve({ code: e.code, appCode: e.metadata.get('openkey-error-code')[0], answers }));
        call.on('end', () => resolve({ code: grpc.status.OK, appCode: undefined, answers }));
      });
      call.write(Buffer.from([0xff, 0xff, 0xff]));
      expect(await status).toEqual({ code: grpc.status.INVALID_ARGUMENT, appCode: 'MALFORMED_REQUEST', answers: 0 });
    } finally {
      client.close();
    }
  });

  it('is not served over HTTP/1.1 (bidirectional streaming needs HTTP/2), and signs nothing', async () => {
    const mark = await auditMark(app, svc.client);
    const http1 = createConnectTransport({ baseUrl: app.connectUrl, httpVersion: '1.1' });
    const out = await rawStream(http1, { [SESSION_HEADER]: session.stampDigest(SIGN_STREAM_PATH, EMPTY_DIGEST) }, [personal(svc.keyId, te.encode('h1'))]);
    expect(out.answers).toEqual([]);
    expect(out.code).toBe(`status:${Code.Unknown}`); // how connect-es reports an HTTP 505
    const raw = await fetch(`${app.connectUrl}${SIGN_STREAM_PATH}`, { method: 'POST', headers: { 'content-type': 'application/connect+proto' }, body: new Uint8Array(0) });
    expect(raw.status).toBe(505);
    expect((await auditSince(app, svc.client, svc.id, mark)).filter((r) => r.operation === 'personal_sign')).toEqual([]);
  });

  it('ends the stream with SESSION_EXPIRED once its session has ended', async () => {
    const short = await openServiceSession(svc.client.principals, 5);
    const stream = openSignStream(viaGrpcListener(app), short, { identityPublicKey: app.identityPublicKey });
    expect(await streamCode(stream.sign(personal(svc.keyId, te.encode('in time'))))).toBe('no-error');
    clock.advance(5_000);
    try {
      const mark = await auditMark(app, svc.client);
      expect(await streamCode(stream.sign(personal(svc.keyId, te.encode('too late'))))).toBe('SESSION_EXPIRED');
      expect(await streamCode(stream.sign(personal(svc.keyId, te.encode('after the end'))))).toBe('SESSION_EXPIRED');
      expect((await auditSince(app, svc.client, svc.id, mark)).filter((r) => r.operation === 'personal_sign')).toEqual([]);
    } finally {
      clock.advance(-5_000);
    }
  });

  it('ends the stream with SESSION_EXPIRED once its session is closed, and signs nothing after', async () => {
    const closing = await openServiceSession(svc.client.principals);
    const stream = openSignStream(viaGrpcListener(app), closing, { identityPublicKey: app.identityPublicKey });
    expect(await streamCode(stream.sign(personal(svc.keyId, te.encode('before the close'))))).toBe('no-error');
    const mark = await auditMark(app, svc.client);
    expect((await svc.client.principals.closeSession({ sessionId: closing.sessionId })).wasLive).toBe(true);
    expect(await streamCode(stream.sign(personal(svc.keyId, te.encode('after the close'))))).toBe('SESSION_EXPIRED');
    expect((await auditSince(app, svc.client, svc.id, mark)).filter((r) => r.operation === 'personal_sign')).toEqual([]);
  });
});

describe('SignStream is not for people', () => {
  it("refuses a person's passkey session (a stamp, not a service session), and signs nothing", async () => {
    const app = await startTestAppliance({ env: PASSKEY_ENV });
    try {
      const authn = new SoftAuthenticator({ origin: ORIGIN });
      await registerPerson(app, authn, 'Dana');
      const person = await signIn(app, authn);
      const key = (await person.client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1, label: 'dana' })).key;
      const mark = await auditMark(app, person.client);
      const stamp = stampFor(person.credentials, SIGN_STREAM_PATH, SignRequestSchema, create(SignRequestSchema));
      for (const [, transportOf] of TRANSPORTS) {
        const out = await rawStream(transportOf(app), { [STAMP_HEADER]: stamp }, [personal(key?.keyId ?? '', te.encode('mine'))]);
        expect(out).toEqual({ answers: [], code: 'UNAUTHENTICATED' });
      }
      expect((await auditSince(app, person.client, person.session.personId, mark)).filter((r) => r.operation === 'personal_sign')).toEqual([]);
      // The same person signs fine through unary Sign.
      expect(await codeOf(person.client.signing.sign(personal(key?.keyId ?? '', te.encode('unary'))))).toBe('no-error');
    } finally {
      await app.dispose();
    }
  });
});

const isSignDecision = (changes: readonly Change[]): boolean => changes.some((c) => c.kind === 'appendAudit' && c.entry.operation === 'personal_sign');

describe('SignStream under load, timeouts, cancellation and shutdown', () => {
  let app: TestAppliance;
  let svc: Signer;
  let session: ServiceSession;
  // Sign decisions wait here (before the group-commit queue, with their call's signal) while held.
  let hold: Promise<void> | undefined;
  let release = (): void => undefined;
  let waiting = 0;
  const holdDecisions = (): void => {
    hold = new Promise((r) => (release = () => {
      hold = undefined;
      r();
    }));
  };
  const heldStore = (store: Store): Store =>
    new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'commit') {
          return async (changes: readonly Change[], options?: CommitOptions) => {
            if (hold !== undefined && isSignDecision(changes)) {
              waiting++;
              await hold;
              waiting--;
            }
            return target.commit(changes, options);
          };
        }
        const v: unknown = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });

  beforeAll(async () => {
    app = await startTestAppliance({ env: { OPENKEY_CALL_TIMEOUT_MS: '1500' }, storeDecorator: heldStore });
    svc = await signer(app, undefined, 'loaded');
    session = await openServiceSession(svc.client.principals);
  });
  afterAll(async () => {
    release();
    await app.dispose();
  });

  const open = (via: (app: TestAppliance) => Transport = viaGrpcListener): SignStream => openSignStream(via(app), session, { identityPublicKey: app.identityPublicKey });
  const msg = (text: string) => personal(svc.keyId, te.encode(text));

  it(`refuses messages beyond ${MAX_STREAM_IN_PROGRESS} in progress at once with RESOURCE_EXHAUSTED and a retry hint; the others are signed`, async () => {
    const stream = open();
    holdDecisions();
    const admitted = Array.from({ length: MAX_STREAM_IN_PROGRESS }, (_, i) => stream.sign(msg(`held ${i}`)));
    await waitFor('every admitted message to reach its commit', () => waiting === MAX_STREAM_IN_PROGRESS);
    const excess = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => stream.sign(msg(`excess ${i}`))));
    expect(excess.map((r) => (r.status === 'rejected' && r.reason instanceof SignStreamError ? [r.reason.code, (r.reason.retryAfterMs ?? 0) > 0] : r.status))).toEqual(
      Array.from({ length: 8 }, () => ['RESOURCE_EXHAUSTED', true]),
    );
    expect(stream.outstanding).toBe(MAX_STREAM_IN_PROGRESS);
    release();
    const signed = await Promise.all(admitted);
    expect(signed.every((s) => s.signature.length === 65)).toBe(true);
    expect(await recoverMessageAddress({ message: `held ${MAX_STREAM_IN_PROGRESS - 1}`, signature: hex((signed.at(-1) as SignResponse).signature) })).toBe(svc.address);
    expect(await streamCode(stream.sign(msg('room again')))).toBe('no-error');
    await stream.close();
  });

  it('gives each message the call timeout: a late one is DEADLINE_EXCEEDED, recorded nowhere, and the stream goes on', async () => {
    const stream = open(viaConnectH2);
    const mark = await auditMark(app, svc.client);
    holdDecisions();
    const late = streamCode(stream.sign(msg('stuck behind a slow disk')));
    await waitFor('the message to reach its commit', () => waiting === 1);
    expect(await late).toBe('DEADLINE_EXCEEDED');
    release();
    expect(await streamCode(stream.sign(msg('next one')))).toBe('no-error');
    await stream.close();
    const records = (await auditSince(app, svc.client, svc.id, mark)).filter((r) => r.operation === 'personal_sign');
    expect(records.map((r) => r.requestDigest).map((d) => Buffer.from(d).toString('hex'))).toEqual([sha256Hex(toBinary(SignRequestSchema, msg('next one')))]);
  });

  it('drops the queued work of a client that cancels mid-stream; the appliance goes on', async () => {
    const stream = open();
    const mark = await auditMark(app, svc.client);
    holdDecisions();
    const inFlight = Array.from({ length: 20 }, (_, i) => streamCode(stream.sign(msg(`abandoned ${i}`))));
    await waitFor('the messages to reach their commits', () => waiting === 20);
    stream.cancel();
    expect(new Set(await Promise.all(inFlight))).toEqual(new Set(['CANCELLED']));
    await waitFor('the appliance to see the stream go', () => app.logs.some((l) => l.includes('"code":"CANCELLED"') && l.includes('stream ended')));
    release();
    await waitFor('the dropped commits to pass', () => waiting === 0);
    // Nothing of the cancelled messages was written; a unary Sign and a new stream work.
    expect((await auditSince(app, svc.client, svc.id, mark)).filter((r) => r.operation === 'personal_sign')).toEqual([]);
    expect(await codeOf(svc.client.signing.sign(msg('unary after cancel')))).toBe('no-error');
    const again = open();
    expect(await streamCode(again.sign(msg('stream after cancel')))).toBe('no-error');
    await again.close();
  });

  it('on shutdown answers every message in progress before the stream ends (both listeners)', async () => {
    const streams = [open(viaGrpcListener), open(viaConnectH2)];
    holdDecisions();
    const inProgress = streams.flatMap((s, j) => Array.from({ length: 10 }, (_, i) => s.sign(msg(`draining ${j}.${i}`))));
    await waitFor('the messages to reach their commits', () => waiting === 20);
    const closing = app.close();
    await new Promise((r) => setTimeout(r, 100));
    release();
    const signed = await Promise.all(inProgress);
    expect(await recoverMessageAddress({ message: 'draining 1.9', signature: hex((signed.at(-1) as SignResponse).signature) })).toBe(svc.address);
    await closing;
    // The streams have ended: nothing more is accepted.
    for (const s of streams) {
      await s.close();
      expect(await streamCode(s.sign(msg('after shutdown')))).toBe('STREAM_CLOSED');
    }
  });
});
