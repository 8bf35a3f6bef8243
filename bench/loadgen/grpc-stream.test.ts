// The SignStream generator against a real appliance (grpc-js server, test/support/appliance.ts): a
// service opens a session, two streams are opened with headers computed before the run, and a
// short closed-loop run keeps 32 messages in flight on each; every message is answered with a
// signature, the kept answers pass the run's own check and viem recovers the key's address from
// them; the check refuses the same answers under another key or with a signature octet changed.
// StreamError answers are counted by their code, a replayed opening fails every message it
// carried, and the whole run as the load-generator process does it (runStreamLoad: pool,
// pre-flight through the project's client, load, check) comes out clean.

import { fromBinary } from '@bufbuild/protobuf';
import { recoverMessageAddress, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyAlgorithm } from '../../proto/gen/openkey/v1/common_pb.ts';
import { PrincipalKeyAlgorithm } from '../../proto/gen/openkey/v1/principals_pb.ts';
import { SignRequestSchema, SignStreamResponseSchema } from '../../proto/gen/openkey/v1/signing_pb.ts';
import { createOpenKeyClient, generateCredentials, openServiceSession, type ServiceSession } from '../../clients/src/index.ts';
import { startTestAppliance, type TestAppliance } from '../../test/support/appliance.ts';
import { buildStreamPool } from '../requests.ts';
import { checkKeptAnswers, PreparedStreamMessages, runSignStreams, runStreamLoad, type KeptAnswer } from './grpc-stream.ts';
import type { RunResult, RunSpec } from './protocol.ts';
import { MeasurementWindow } from './window.ts';

const hex = (b: Uint8Array): Hex => `0x${Buffer.from(b).toString('hex')}`;

describe('the SignStream generator against the appliance', () => {
  let app: TestAppliance;
  let session: ServiceSession;
  let keyId: string;
  let address: string;
  let publicKeyHex: string;
  let otherPublicKeyHex: string;

  beforeAll(async () => {
    app = await startTestAppliance();
    const creds = generateCredentials('ed25519');
    const client = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: creds });
    await client.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.ED25519, publicKey: creds.publicKey, name: 'stream-generator' });
    const key = (await client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1, label: 'stream-generator' })).key;
    const other = (await client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1, label: 'another' })).key;
    keyId = key?.keyId ?? '';
    address = key?.address ?? '';
    publicKeyHex = Buffer.from(key?.publicKey ?? new Uint8Array()).toString('hex');
    otherPublicKeyHex = Buffer.from(other?.publicKey ?? new Uint8Array()).toString('hex');
    session = await openServiceSession(client.principals);
  });
  afterAll(async () => app.dispose());

  const specOf = (o: Partial<RunSpec> = {}): RunSpec => ({
    transport: 'grpc',
    host: '127.0.0.1',
    port: app.grpcPort,
    operation: 'signStream',
    payload: 'eip191',
    batchSize: 1,
    keyId,
    keyPublicKeyHex: publicKeyHex,
    concurrency: 64,
    streams: 2,
    warmupMs: 200,
    durationMs: 600,
    maxRequests: 50_000,
    serverPid: process.pid, // the appliance runs in this process
    credentialsPkcs8: '',
    auth: 'session',
    grpcGenerator: 'raw-h2',
    ...o,
  });

  const windowOf = (spec: RunSpec) => new MeasurementWindow({ serverPid: spec.serverPid, warmupMs: spec.warmupMs, durationMs: spec.durationMs, capacity: spec.maxRequests });

  /** A short run over `streams` fresh openings (or `prepared`), window W per stream. */
  async function run(spec: RunSpec, streams: number, window: number, prepared?: PreparedStreamMessages) {
    const p = prepared ?? PreparedStreamMessages.build(buildStreamPool({ operation: 'signStream', payload: 'eip191', batchSize: 1, keyId: spec.keyId }, session, streams, spec.maxRequests), app.grpcTarget);
    const win = windowOf(spec);
    const out = await runSignStreams(p, { host: spec.host, port: spec.port, window }, win);
    const result: RunResult = win.result({ batchSize: 1, poolSize: p.messages, poolBuildMs: 0, sent: out.sent, preflight: 'ok' });
    return { prepared: p, out, result };
  }

  it('keeps 2 streams × 32 messages in flight: every message is answered with a signature that recovers to the key', async () => {
    const spec = specOf();
    const { prepared, out, result } = await run(spec, 2, 32);
    expect(result.errors).toEqual({});
    expect(out.sent).toBeGreaterThan(64); // the closed loop went round, not just the first window
    expect(out.answered).toBe(out.sent);
    expect(result.completed).toBeGreaterThan(0);
    expect(Number.isFinite(result.latency.p50)).toBe(true);
    // The first 8 of each stream at least, and every 128th.
    expect(out.kept.length).toBeGreaterThanOrEqual(16);
    expect(new Set(out.kept.map((k) => k.id)).size).toBe(out.kept.length);
    expect(checkKeptAnswers(spec, prepared, out.kept)).toBe('ok');

    // Independently of verify.ts: each kept answer names its message, and viem recovers the key's
    // address from the signature over that message's own payload.
    for (const k of out.kept.slice(0, 6)) {
      const res = fromBinary(SignStreamResponseSchema, k.answer);
      expect(res.id).toBe(BigInt(k.id));
      if (res.outcome.case !== 'result') throw new Error(`answer ${k.id} holds no result`);
      const payload = fromBinary(SignRequestSchema, prepared.request(k.id)).payload?.kind;
      if (payload?.case !== 'personalMessage') throw new Error('the pool builds personal messages');
      expect(await recoverMessageAddress({ message: { raw: payload.value.message }, signature: hex(res.outcome.value.signature) })).toBe(address);
      expect(res.outcome.value.receipt?.method).toBe('/openkey.v1.SignService/SignStream');
    }

    // The check is not a formality: another key's public key, or one changed octet, fails it.
    expect(checkKeptAnswers(specOf({ keyPublicKeyHex: otherPublicKeyHex }), prepared, out.kept)).toMatch(/recovers to another key/);
    const first = out.kept[0] as KeptAnswer;
    const tampered = Buffer.from(first.answer);
    const decoded = fromBinary(SignStreamResponseSchema, first.answer);
    if (decoded.outcome.case !== 'result') throw new Error('a kept answer holds a result');
    const sigAt = tampered.indexOf(Buffer.from(decoded.outcome.value.signature));
    expect(sigAt).toBeGreaterThan(0);
    tampered[sigAt + 10] = (tampered[sigAt + 10] as number) ^ 0x01;
    expect(checkKeptAnswers(spec, prepared, [{ id: first.id, answer: tampered }])).not.toBe('ok');
    // Matched to the wrong message, a right answer is wrong too.
    expect(checkKeptAnswers(spec, prepared, [{ id: first.id + 1, answer: first.answer }])).toMatch(/answer id/);
    expect(checkKeptAnswers(spec, prepared, [])).not.toBe('ok');
  });

  it('counts StreamError answers by code, and a replayed opening as the failure of every message it carried', async () => {
    const refused = await run(specOf({ keyId: 'key_0000000000000000000000000000dead' }), 1, 8);
    const keys = Object.keys(refused.result.errors);
    expect(keys).toEqual(['StreamError KEY_NOT_FOUND']);
    expect(refused.result.errors['StreamError KEY_NOT_FOUND']).toBe(refused.out.sent);
    expect(refused.out.answered).toBe(refused.out.sent);
    expect(refused.result.completed).toBe(0);
    expect(refused.out.kept).toEqual([]);

    // The same prepared opening twice: its sequence number was spent the first time.
    const spec = specOf({ durationMs: 200 });
    const once = await run(spec, 1, 16);
    expect(once.result.errors).toEqual({});
    const again = await run(spec, 1, 16, once.prepared);
    expect(again.result.errors).toEqual({ 'grpc-status 16 STAMP_REPLAYED': 16 });
    expect(again.out.answered).toBe(0);
    expect(again.result.completed).toBe(0);
  });

  it('runs as the load-generator process does: pre-flight through the project’s client, load, check', async () => {
    const spec = specOf({ streams: 1, concurrency: 64 });
    const win = windowOf(spec);
    const out = await runStreamLoad(spec, session, win);
    const r = win.result({ batchSize: 1, poolSize: out.poolSize, poolBuildMs: out.poolBuildMs, sent: out.sent, preflight: out.preflight, checkedAnswers: out.checkedAnswers });
    expect(r.preflight).toBe('ok');
    expect(r.errors).toEqual({});
    expect(r.checkedAnswers).toBeGreaterThanOrEqual(8);
    expect(r.completed).toBeGreaterThan(0);

    // A pre-flight answer checked against another key does not pass, and the run says so.
    const wrong = specOf({ streams: 1, concurrency: 8, durationMs: 200, keyPublicKeyHex: otherPublicKeyHex });
    const w = windowOf(wrong);
    expect((await runStreamLoad(wrong, session, w)).preflight).toMatch(/recovers to another key/);
  });
});
