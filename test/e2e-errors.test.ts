// Bad input against the running appliance: every kind of malformed, oversize, unauthenticated,
// replayed, mismatched or tampered request gets its specific error code, the store is left as it
// was, and the process keeps serving. Also covers blobs tampered on disk by the host.

import { create, toBinary } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { ClassicLevel } from 'classic-level';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyAlgorithm } from '../proto/gen/openkey/v1/common_pb.ts';
import { PrincipalKeyAlgorithm } from '../proto/gen/openkey/v1/principals_pb.ts';
import { SignRequestSchema, type SignRequest } from '../proto/gen/openkey/v1/signing_pb.ts';
import { STAMP_HEADER, formatStamp, parseStamp } from '../proto/protocol/stamp.ts';
import { createOpenKeyClient, generateCredentials, stampFor, type Credentials, type OpenKeyClient } from '../clients/src/index.ts';
import { startTestAppliance, type TestAppliance } from './support/appliance.ts';
import { codeOf } from './support/codes.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const personal = (keyId: string, message = enc('hi')) =>
  ({ keyId, payload: { kind: { case: 'personalMessage' as const, value: { message } } } });


/** POSTs a stamped Connect unary request with an explicit body, for hand-made stamps. */
async function postSign(app: TestAppliance, body: Uint8Array, stamp: string | undefined): Promise<{ status: number; code: string | null }> {
  const res = await fetch(`${app.connectUrl}/openkey.v1.SignService/Sign`, {
    method: 'POST',
    headers: { 'content-type': 'application/proto', ...(stamp === undefined ? {} : { [STAMP_HEADER]: stamp }) },
    body,
  });
  await res.arrayBuffer();
  return { status: res.status, code: res.headers.get('openkey-error-code') };
}

describe('bad input is refused with a specific code and changes nothing', () => {
  let app: TestAppliance;
  let creds: Credentials;
  let client: OpenKeyClient;
  let secp = '';
  let ed = '';

  const keyCount = async () => (await client.keys.listKeys({})).keys.length;

  beforeAll(async () => {
    app = await startTestAppliance();
    creds = generateCredentials('p256');
    client = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: creds });
    await client.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.P256, publicKey: creds.publicKey, name: 'p256 service' });
    secp = (await client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1 })).key?.keyId ?? '';
    ed = (await client.keys.sealKey({ algorithm: KeyAlgorithm.ED25519 })).key?.keyId ?? '';
  });
  afterAll(async () => app.dispose());

  it('payload errors: missing, empty, oversize, wrong length, wrong algorithm, unknown key', async () => {
    const before = await keyCount();
    const cases: [string, SignRequest | Parameters<typeof client.signing.sign>[0]][] = [
      ['MISSING_FIELD', { keyId: secp }],
      ['MISSING_FIELD', personal(secp, new Uint8Array(0))],
      ['MISSING_FIELD', personal('')],
      ['PAYLOAD_TOO_LARGE', personal(secp, new Uint8Array(64 * 1024 + 1))],
      ['MISSING_FIELD', { keyId: secp, payload: { kind: { case: 'rawDigest', value: new Uint8Array(0) } } }],
      ['INVALID_DIGEST_LENGTH', { keyId: secp, payload: { kind: { case: 'rawDigest', value: new Uint8Array(31) } } }],
      ['INVALID_DIGEST_LENGTH', { keyId: secp, payload: { kind: { case: 'rawDigest', value: new Uint8Array(33) } } }],
      ['ALGORITHM_MISMATCH', personal(ed)],
      ['ALGORITHM_MISMATCH', { keyId: secp, payload: { kind: { case: 'ed25519Message', value: enc('x') } } }],
      ['KEY_NOT_FOUND', personal(`key_${'a'.repeat(32)}`)],
      ['KEY_NOT_FOUND', personal('not-a-key-id')],
      ['MISSING_FIELD', { keyId: secp, payload: { kind: { case: 'typedData', value: { json: '' } } } }],
    ];
    for (const [code, req] of cases) expect(await codeOf(client.signing.sign(req)), JSON.stringify(code)).toBe(code);
    expect(await keyCount()).toBe(before);
  });

  it('invalid EIP-712 documents', async () => {
    const docs = [
      '{',
      '[]',
      JSON.stringify({ types: {}, primaryType: 'Mail', domain: {}, message: {} }),
      JSON.stringify({ types: { EIP712Domain: [], M: [{ name: 'a', type: 'uint8' }] }, primaryType: 'M', domain: {}, message: { a: 256 } }),
      JSON.stringify({ types: { EIP712Domain: [], M: [{ name: 'a', type: 'Nope' }] }, primaryType: 'M', domain: {}, message: { a: 1 } }),
      JSON.stringify({ types: { EIP712Domain: [], M: [{ name: 'a', type: 'address' }] }, primaryType: 'M', domain: {}, message: { a: '0x12' } }),
    ];
    for (const json of docs) {
      expect(await codeOf(client.signing.sign({ keyId: secp, payload: { kind: { case: 'typedData', value: { json } } } })), json).toBe('INVALID_TYPED_DATA');
    }
  });

  it('SealKey errors leave no key behind', async () => {
    const before = await keyCount();
    expect(await codeOf(client.keys.sealKey({}))).toBe('MISSING_FIELD');
    expect(await codeOf(client.keys.sealKey({ algorithm: 99 as KeyAlgorithm }))).toBe('UNSUPPORTED_ALGORITHM');
    expect(await codeOf(client.keys.sealKey({ algorithm: KeyAlgorithm.ED25519, allowRawDigestSigning: true }))).toBe('ALGORITHM_MISMATCH');
    expect(await codeOf(client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1, label: 'x'.repeat(129) }))).toBe('PAYLOAD_TOO_LARGE');
    expect(
      await codeOf(client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1, import: { enc: new Uint8Array(32).fill(9), ciphertext: new Uint8Array(48).fill(1) } })),
    ).toBe('IMPORT_DECRYPT_FAILED');
    expect(await codeOf(client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1, import: { enc: new Uint8Array(0), ciphertext: new Uint8Array(48) } }))).toBe(
      'MISSING_FIELD',
    );
    expect(await keyCount()).toBe(before);
  });

  it('stamps: missing, malformed, wrong key, wrong body, wrong method, stale, replayed', async () => {
    const req = create(SignRequestSchema, personal(secp));
    const body = toBinary(SignRequestSchema, req);
    const good = () => stampFor(creds, '/openkey.v1.SignService/Sign', SignRequestSchema, req);

    expect((await postSign(app, body, undefined)).code).toBe('UNAUTHENTICATED');
    expect((await postSign(app, body, 'garbage')).code).toBe('UNAUTHENTICATED');
    // Signed by someone else's key under our principal id.
    const other = generateCredentials('p256');
    const forged = parseStamp(stampFor(other, '/openkey.v1.SignService/Sign', SignRequestSchema, req));
    expect(forged).toBeDefined();
    if (forged) expect((await postSign(app, body, formatStamp({ ...forged, principalId: creds.principalId }))).code).toBe('STAMP_INVALID');
    // A stamp for a different body, and for a different method.
    const otherBody = create(SignRequestSchema, personal(secp, enc('other')));
    expect((await postSign(app, body, stampFor(creds, '/openkey.v1.SignService/Sign', SignRequestSchema, otherBody))).code).toBe('STAMP_INVALID');
    expect((await postSign(app, body, stampFor(creds, '/openkey.v1.SignService/SignBatch', SignRequestSchema, req))).code).toBe('STAMP_INVALID');
    // Stale and future timestamps.
    const stale = stampFor(creds, '/openkey.v1.SignService/Sign', SignRequestSchema, req, { now: () => Date.now() - 10 * 60_000 });
    expect((await postSign(app, body, stale)).code).toBe('STAMP_EXPIRED');
    const future = stampFor(creds, '/openkey.v1.SignService/Sign', SignRequestSchema, req, { now: () => Date.now() + 10 * 60_000 });
    expect((await postSign(app, body, future)).code).toBe('STAMP_EXPIRED');
    // A good stamp works once.
    const stamp = good();
    expect(await postSign(app, body, stamp)).toEqual({ status: 200, code: null });
    expect((await postSign(app, body, stamp)).code).toBe('STAMP_REPLAYED');
    // An unregistered principal.
    const stranger = generateCredentials('ed25519');
    expect((await postSign(app, body, stampFor(stranger, '/openkey.v1.SignService/Sign', SignRequestSchema, req))).code).toBe('STAMP_INVALID');
  });

  it('malformed and oversize messages over Connect and gRPC; the server keeps serving', async () => {
    const stamp = stampFor(creds, '/openkey.v1.SignService/Sign', SignRequestSchema, create(SignRequestSchema));
    // connect-node 2.1 reports an undecodable binary body as "internal" (its serializer's choice,
    // before any handler runs); JSON bodies get invalid_argument. Either way nothing reaches the
    // domain. Plain gRPC callers (port 2) get INVALID_ARGUMENT / MALFORMED_REQUEST below.
    const garbage = await postSign(app, new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]), stamp);
    expect(garbage.status).toBe(500);
    const badJson = await fetch(`${app.connectUrl}/openkey.v1.SignService/Sign`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [STAMP_HEADER]: stamp },
      body: '{"keyId": ',
    });
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as { code: string }).code).toBe('invalid_argument');
    const huge = await postSign(app, new Uint8Array(2 * 1024 * 1024), stamp);
    expect([413, 429, 400]).toContain(huge.status);

    const stub = new grpc.Client(app.grpcTarget, grpc.credentials.createInsecure());
    try {
      const call = (bytes: Buffer) =>
        new Promise<grpc.ServiceError | null>((resolve) => {
          stub.makeUnaryRequest('/openkey.v1.SignService/Sign', (b: Buffer) => b, (b: Buffer) => b, bytes, new grpc.Metadata(), (e) => resolve(e));
        });
      const bad = await call(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]));
      expect(bad?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(bad?.metadata.get('openkey-error-code')).toEqual(['MALFORMED_REQUEST']);
      const big = await call(Buffer.alloc(2 * 1024 * 1024));
      expect(big?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    } finally {
      stub.close();
    }
    // Still up and signing.
    const ok = await client.signing.sign(personal(secp));
    expect(ok.signature.length).toBe(65);
  });

  it('registration: same key twice, bad public key, stamp by another key', async () => {
    const c = generateCredentials('ed25519');
    const cc = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: c });
    await cc.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.ED25519, publicKey: c.publicKey, name: 'once' });
    expect(await codeOf(cc.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.ED25519, publicKey: c.publicKey, name: 'twice' }))).toBe('PRINCIPAL_EXISTS');
    expect(await codeOf(cc.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.P256, publicKey: new Uint8Array(33).fill(5), name: 'bad' }))).toBe('INVALID_PUBLIC_KEY');
    // Registering a key you do not hold: the stamp is by c, the key is someone else's.
    const victim = generateCredentials('ed25519');
    expect(await codeOf(cc.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.ED25519, publicKey: victim.publicKey, name: 'steal' }))).toBe('STAMP_INVALID');
  });

  it('a sealed blob tampered on disk is detected, other keys keep working', async () => {
    const victim = (await client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1 })).key?.keyId ?? '';
    await client.signing.sign(personal(victim)); // warm: would be cached if not restarted
    await app.close();
    const db = new ClassicLevel<string, string>(join(app.dataDir, 'store'), { valueEncoding: 'utf8', keyEncoding: 'utf8' });
    let tampered = 0;
    for await (const [k, v] of db.iterator()) {
      if (!k.startsWith('k!') || !v.includes(`"keyId":"${victim}"`)) continue; // the key record, not audit records naming it
      const rec = JSON.parse(v) as { sealed: string };
      const blob = Buffer.from(rec.sealed, 'base64');
      blob[blob.length - 20] = (blob[blob.length - 20] ?? 0) ^ 0x01;
      rec.sealed = blob.toString('base64');
      await db.put(k, JSON.stringify(rec));
      tampered++;
    }
    await db.close();
    expect(tampered).toBe(1);
    app = await app.restart();
    client = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: creds });
    expect(await codeOf(client.signing.sign(personal(victim)))).toBe('SEALED_KEY_CORRUPT');
    expect((await client.signing.sign(personal(secp))).signature.length).toBe(65);
  });
});
