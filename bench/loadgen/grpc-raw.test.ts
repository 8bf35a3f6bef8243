// The lean gRPC generator against a real appliance (grpc-js server, test/support/appliance.ts):
// a service opens a session, its session-stamped Sign requests are framed before sending as in a
// benchmark run, sent all at once over two connections, and every one succeeds; one answer is
// decoded and its signature recovered by viem; a replayed request is refused with
// STAMP_REPLAYED, read from the answer's trailers.

import { fromBinary } from '@bufbuild/protobuf';
import { recoverMessageAddress, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyAlgorithm } from '../../proto/gen/openkey/v1/common_pb.ts';
import { PrincipalKeyAlgorithm } from '../../proto/gen/openkey/v1/principals_pb.ts';
import { SignRequestSchema, SignResponseSchema } from '../../proto/gen/openkey/v1/signing_pb.ts';
import { createOpenKeyClient, generateCredentials, openServiceSession, type Credentials, type ServiceSession } from '../../clients/src/index.ts';
import { startTestAppliance, type TestAppliance } from '../../test/support/appliance.ts';
import { buildRequestPool, type RequestPool } from '../requests.ts';
import { grpcOutcome, PreparedGrpcRequests, RawGrpcCaller } from './grpc-raw.ts';
import type { Outcome } from './grpc-outcome.ts';
import { RawH2Connection, type H2Answer } from './raw-h2.ts';

const hex = (b: Uint8Array): Hex => `0x${Buffer.from(b).toString('hex')}`;

describe('the lean gRPC generator against the appliance', () => {
  let app: TestAppliance;
  let creds: Credentials;
  let session: ServiceSession;
  let keyId: string;
  let address: string;

  beforeAll(async () => {
    app = await startTestAppliance();
    creds = generateCredentials('ed25519');
    const client = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: creds });
    await client.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.ED25519, publicKey: creds.publicKey, name: 'lean-generator' });
    const key = (await client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1, label: 'lean-generator' })).key;
    keyId = key?.keyId ?? '';
    address = key?.address ?? '';
    session = await openServiceSession(client.principals);
  });
  afterAll(async () => app.dispose());

  const answer = (c: RawH2Connection, p: PreparedGrpcRequests, i: number, keepData = false): Promise<H2Answer> =>
    new Promise((resolve) => c.request(p.headers(i), p.body(i), resolve, keepData));

  it('pipelines N session-stamped Sign calls that all succeed, and refuses a replay with STAMP_REPLAYED', async () => {
    const N = 300;
    const pool: RequestPool = buildRequestPool({ operation: 'sign', payload: 'eip191', batchSize: 1, keyId }, creds, N + 1, session);
    const prepared = PreparedGrpcRequests.build(pool, app.grpcTarget);
    const caller = await RawGrpcCaller.open('127.0.0.1', app.grpcPort, 2, prepared, 10_000);
    try {
      const outcomes = await Promise.all(Array.from({ length: N }, (_, i) => new Promise<Outcome>((resolve) => caller.send(i, i % 2, resolve))));
      expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    } finally {
      await caller.close();
    }

    const c = await RawH2Connection.connect({ host: '127.0.0.1', port: app.grpcPort });
    try {
      // The last request, its answer kept: a SignResponse whose signature recovers to the key.
      const a = await answer(c, prepared, N, true);
      expect(grpcOutcome(a).ok).toBe(true);
      const data = a.data ?? Buffer.alloc(0);
      expect(data.readUInt32BE(1)).toBe(data.length - 5); // one uncompressed gRPC message
      const res = fromBinary(SignResponseSchema, data.subarray(5));
      const req = fromBinary(SignRequestSchema, pool.bodies[N % pool.bodies.length] as Buffer);
      const kind = req.payload?.kind;
      if (kind?.case !== 'personalMessage') throw new Error('the pool builds personal messages');
      expect(await recoverMessageAddress({ message: { raw: kind.value.message }, signature: hex(res.signature) })).toBe(address);

      // Request 7 again: the same session header, the same sequence number.
      const replay = await answer(c, prepared, 7);
      expect(replay.error).toBeUndefined();
      expect(replay.status).toBe(200);
      expect(replay.dataBytes).toBe(0);
      const codes: string[] = [];
      for (let k = 0; k < replay.fields.length; k += 2) if (replay.fields[k] === 'openkey-error-code') codes.push(replay.fields[k + 1] as string);
      expect(codes).toEqual(['STAMP_REPLAYED']);
      expect(grpcOutcome(replay)).toEqual({ ok: false, errorKey: 'grpc-status 16 STAMP_REPLAYED', retryHint: false });
    } finally {
      await c.close();
    }
  });
});
