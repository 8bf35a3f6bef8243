// End to end against a real appliance on loopback: a service registers, creates keys, signs every
// payload kind over Connect (HTTP/1.1 and HTTP/2), gRPC-Web and plain gRPC (a @grpc/grpc-js client
// that loads the .proto files), and independent libraries (viem, ethers, node:crypto) verify the
// signatures. Keys survive a restart. Other principals cannot see or use them.

import { create } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ethers } from 'ethers';
import { hashMessage, recoverAddress, verifyMessage, verifyTypedData, type Hex } from 'viem';
import { KeyAlgorithm } from '../proto/gen/openkey/v1/common_pb.ts';
import { PrincipalKeyAlgorithm } from '../proto/gen/openkey/v1/principals_pb.ts';
import { SignRequestSchema } from '../proto/gen/openkey/v1/signing_pb.ts';
import { createOpenKeyClient, generateCredentials, openKeyErrorCode, stampFor, type Credentials, type OpenKeyClient } from '../clients/src/index.ts';
import { exportAuditLog } from '../clients/src/cli/audit.ts';
import { verifyAuditExport } from '../server/src/core/audit.ts';
import { startTestAppliance, type TestAppliance } from './support/appliance.ts';

// EIP-712 v4 example with nested arrays, bytes and arrays of structs (clients/examples).
const MAIL = JSON.parse(readFileSync(fileURLToPath(new URL('../clients/examples/mail-nested.json', import.meta.url)), 'utf8')) as {
  types: Record<string, { name: string; type: string }[]>;
  primaryType: string;
  domain: Record<string, unknown>;
  message: Record<string, unknown>;
};

const hex = (b: Uint8Array): Hex => `0x${Buffer.from(b).toString('hex')}`;

async function register(app: TestAppliance, name: string): Promise<{ creds: Credentials; client: OpenKeyClient }> {
  const creds = generateCredentials('ed25519');
  const client = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: creds });
  await client.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.ED25519, publicKey: creds.publicKey, name });
  return { creds, client };
}

describe('appliance core, end to end', () => {
  let app: TestAppliance;
  let alice: { creds: Credentials; client: OpenKeyClient };
  let secpKeyId = '';
  let secpAddress = '';

  beforeAll(async () => {
    app = await startTestAppliance();
    alice = await register(app, 'alice-service');
    const res = await alice.client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1, label: 'treasury' });
    secpKeyId = res.key?.keyId ?? '';
    secpAddress = res.key?.address ?? '';
  });
  afterAll(async () => app.dispose());

  it('creates a secp256k1 key with an EIP-55 address and a did:pkh', async () => {
    expect(secpKeyId).toMatch(/^key_[0-9a-f]{32}$/);
    expect(ethers.getAddress(secpAddress)).toBe(secpAddress); // checksum is valid EIP-55
    const got = await alice.client.keys.getKey({ keyId: secpKeyId });
    expect(got.key?.did).toBe(`did:pkh:eip155:1:${secpAddress}`);
    expect(ethers.computeAddress(hex(got.key?.publicKey ?? new Uint8Array()))).toBe(secpAddress);
  });

  it('EIP-191 signatures verify with viem and ethers', async () => {
    const message = 'hello from the appliance';
    const res = await alice.client.signing.sign({
      keyId: secpKeyId,
      payload: { kind: { case: 'personalMessage', value: { message: new TextEncoder().encode(message) } } },
    });
    expect(res.signature.length).toBe(65);
    expect([27, 28]).toContain(res.signature[64]);
    expect(hex(res.digest)).toBe(hashMessage(message));
    expect(await verifyMessage({ address: secpAddress as Hex, message, signature: hex(res.signature) })).toBe(true);
    expect(ethers.verifyMessage(message, hex(res.signature))).toBe(secpAddress);
    // low-S: s ≤ n/2
    const s = BigInt(hex(res.signature.subarray(32, 64)));
    expect(s <= 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n).toBe(true);
  });

  it('EIP-712 documents are hashed in the appliance and verify with viem and ethers', async () => {
    const res = await alice.client.signing.sign({
      keyId: secpKeyId,
      payload: { kind: { case: 'typedData', value: { json: JSON.stringify(MAIL) } } },
    });
    const ok = await verifyTypedData({ ...MAIL, address: secpAddress as Hex, signature: hex(res.signature) } as Parameters<typeof verifyTypedData>[0]);
    expect(ok).toBe(true);
    const { EIP712Domain: _, ...types } = MAIL.types;
    const ethersTypes = JSON.parse(JSON.stringify(types)) as Record<string, ethers.TypedDataField[]>;
    expect(ethers.verifyTypedData(MAIL.domain, ethersTypes, MAIL.message, hex(res.signature))).toBe(secpAddress);
  });

  it('raw digests are refused unless the key was created for them', async () => {
    const digest = new Uint8Array(32).fill(7);
    const denied = await alice.client.signing
      .sign({ keyId: secpKeyId, payload: { kind: { case: 'rawDigest', value: digest } } })
      .catch((e: unknown) => e);
    expect(openKeyErrorCode(denied)).toBe('RAW_SIGNING_DISABLED');

    const raw = await alice.client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1, allowRawDigestSigning: true });
    const res = await alice.client.signing.sign({ keyId: raw.key?.keyId ?? '', payload: { kind: { case: 'rawDigest', value: digest } } });
    expect(await recoverAddress({ hash: hex(digest), signature: hex(res.signature) })).toBe(raw.key?.address);
  });

  it('Ed25519 keys sign messages that node:crypto verifies, with a did:key', async () => {
    const created = await alice.client.keys.sealKey({ algorithm: KeyAlgorithm.ED25519 });
    const key = created.key;
    expect(key?.did).toMatch(/^did:key:z6Mk/);
    expect(key?.address).toBe('');
    const msg = new TextEncoder().encode('ed25519 message');
    const res = await alice.client.signing.sign({ keyId: key?.keyId ?? '', payload: { kind: { case: 'ed25519Message', value: msg } } });
    const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(key?.publicKey ?? [])]);
    expect(nodeVerify(null, msg, createPublicKey({ key: spki, format: 'der', type: 'spki' }), res.signature)).toBe(true);
  });

  it('signs a batch in one call, every item verifiable', async () => {
    const messages = Array.from({ length: 8 }, (_, i) => `batch item ${i}`);
    const res = await alice.client.signing.signBatch({
      items: messages.map((m) => ({
        keyId: secpKeyId,
        payload: { kind: { case: 'personalMessage' as const, value: { message: new TextEncoder().encode(m) } } },
      })),
    });
    expect(res.results).toHaveLength(8);
    for (const [i, r] of res.results.entries()) {
      expect(ethers.verifyMessage(messages[i] ?? '', hex(r.signature))).toBe(secpAddress);
    }
    // The audit log holds the batch as ONE record of 8 identical decisions, exported over the wire
    // and verified under the identity key by the CLI's own export and verifier.
    const { export: exp } = await exportAuditLog(alice.client.audit, { from: 1 });
    expect(verifyAuditExport(exp, app.identityPublicKey)).toMatchObject({ ok: true, to: exp.records.length });
    const digest = res.receipt?.requestDigest ?? new Uint8Array();
    const records = exp.records.filter((r) => Buffer.from(r.requestDigest).equals(digest));
    expect(records).toEqual([expect.objectContaining({ operation: 'personal_sign', keyId: secpKeyId, principal: alice.creds.principalId, decision: 'allow', reason: 'OWNER', count: 8 })]);
  });

  it('serves the same Sign over Connect HTTP/2, gRPC-Web and Connect JSON', async () => {
    const variants = [
      createOpenKeyClient({ baseUrl: app.connectUrl, credentials: alice.creds, httpVersion: '2' }),
      createOpenKeyClient({ baseUrl: app.connectUrl, credentials: alice.creds, protocol: 'grpc-web' }),
      createOpenKeyClient({ baseUrl: app.connectUrl, credentials: alice.creds, useBinaryFormat: false }),
      createOpenKeyClient({ baseUrl: `http://${app.grpcTarget}`, credentials: alice.creds, protocol: 'grpc' }),
    ];
    for (const c of variants) {
      const res = await c.signing.sign({
        keyId: secpKeyId,
        payload: { kind: { case: 'personalMessage', value: { message: new TextEncoder().encode('via every protocol') } } },
      });
      expect(ethers.verifyMessage('via every protocol', hex(res.signature))).toBe(secpAddress);
    }
  });

  it('plain gRPC: a @grpc/grpc-js client built from the .proto files signs', async () => {
    const protoRoot = fileURLToPath(new URL('../proto', import.meta.url));
    const def = protoLoader.loadSync('openkey/v1/signing.proto', { includeDirs: [protoRoot], longs: String, defaults: true, oneofs: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      openkey: { v1: { SignService: new (addr: string, creds: grpc.ChannelCredentials) => grpc.Client } };
    };
    const stub = new pkg.openkey.v1.SignService(app.grpcTarget, grpc.credentials.createInsecure());
    try {
      const message = Buffer.from('grpc-js over the wire');
      // The stamp covers the protobuf encoding of exactly this request.
      const stamp = stampFor(alice.creds, '/openkey.v1.SignService/Sign', SignRequestSchema, create(SignRequestSchema, {
        keyId: secpKeyId,
        payload: { kind: { case: 'personalMessage', value: { message } } },
      }));
      const md = new grpc.Metadata();
      md.set('openkey-stamp', stamp);
      const res = await new Promise<{ signature: Buffer }>((resolve, reject) => {
        const s = stub as unknown as Record<string, (req: unknown, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r: { signature: Buffer }) => void) => void>;
        s['Sign']?.call(stub, { keyId: secpKeyId, payload: { personalMessage: { message } } }, md, (e, r) => (e ? reject(e) : resolve(r)));
      });
      expect(ethers.verifyMessage(message, hex(res.signature))).toBe(secpAddress);
    } finally {
      stub.close();
    }
  });

  it('another principal can neither read nor use the key, and learns nothing about it', async () => {
    const mallory = await register(app, 'mallory');
    const read = await mallory.client.keys.getKey({ keyId: secpKeyId }).catch((e: unknown) => e);
    expect(openKeyErrorCode(read)).toBe('KEY_NOT_FOUND');
    const use = await mallory.client.signing
      .sign({ keyId: secpKeyId, payload: { kind: { case: 'personalMessage', value: { message: new Uint8Array([1]) } } } })
      .catch((e: unknown) => e);
    expect(openKeyErrorCode(use)).toBe('KEY_NOT_FOUND');
    const missing = await mallory.client.keys.getKey({ keyId: `key_${'0'.repeat(32)}` }).catch((e: unknown) => e);
    expect(openKeyErrorCode(missing)).toBe('KEY_NOT_FOUND');
    expect((await mallory.client.keys.listKeys({})).keys).toHaveLength(0);
  });

  it('keys survive a restart and sign identically (RFC 6979)', async () => {
    const payload = { kind: { case: 'personalMessage' as const, value: { message: new TextEncoder().encode('before and after') } } };
    const before = await alice.client.signing.sign({ keyId: secpKeyId, payload });
    app = await app.restart();
    const client = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: alice.creds });
    const after = await client.signing.sign({ keyId: secpKeyId, payload });
    expect(hex(after.signature)).toBe(hex(before.signature));
    expect(ethers.verifyMessage('before and after', hex(after.signature))).toBe(secpAddress);
    alice = { creds: alice.creds, client };
  });

  it('never logs secret material', () => {
    const all = app.logs.join('');
    expect(all.length).toBeGreaterThan(0);
    expect(all).not.toMatch(/openkey-stamp|privateKey|sealingKey/);
  });
});
