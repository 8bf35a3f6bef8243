// Clients that verify before they trust, end to end against the running appliance (simulator with
// its mock Intel PKI): attest with a fresh nonce, verify quote + collateral + policy, pin the
// identity key, check every receipt. A replayed quote, a wrong app id or compose hash, the real
// Intel root, a tampered receipt or a receipt from another appliance all make the client refuse.

import { clone, create } from '@bufbuild/protobuf';
import type { Interceptor } from '@connectrpc/connect';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ethers } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttestResponseSchema, type AttestResponse } from '../proto/gen/openkey/v1/attest_pb.ts';
import { KeyAlgorithm } from '../proto/gen/openkey/v1/common_pb.ts';
import { PrincipalKeyAlgorithm } from '../proto/gen/openkey/v1/principals_pb.ts';
import { SignService, SignRequestSchema, SignResponseSchema } from '../proto/gen/openkey/v1/signing_pb.ts';
import {
  AttestationError,
  ReceiptError,
  attestAppliance,
  checkReceipt,
  createTransport,
  createOpenKeyClient,
  createVerifiedClient,
  generateCredentials,
  receiptInterceptor,
  parsePolicy,
  type PolicyWithoutNonce,
} from '../clients/src/index.ts';
import { startTestAppliance, type TestAppliance } from './support/appliance.ts';

async function attestError(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof AttestationError) return e.code;
    throw e;
  }
  return 'no-error';
}

describe('attestation and receipts, end to end', () => {
  let app: TestAppliance;
  let other: TestAppliance;
  let policy: PolicyWithoutNonce;

  beforeAll(async () => {
    [app, other] = await Promise.all([startTestAppliance(), startTestAppliance()]);
    policy = parsePolicy(readFileSync(join(app.dataDir, 'simulator', 'dev-policy.json'), 'utf8'));
  });
  afterAll(async () => Promise.all([app.dispose(), other.dispose()]));

  it('attests, pins the identity key, and checks the receipt of every signature', async () => {
    const creds = generateCredentials();
    const client = await createVerifiedClient({ baseUrl: app.connectUrl, credentials: creds, policy });
    expect(client.appliance.verdict.status).toBe('UpToDate');
    expect(client.appliance.verdict.app.keyProvider?.name).toBe('openkey-dev-simulator');
    expect(Buffer.from(client.appliance.identityPublicKey).equals(Buffer.from(app.identityPublicKey))).toBe(true);
    expect(client.appliance.verdict.kms).toBeDefined();

    await client.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.ED25519, publicKey: creds.publicKey, name: 'verified' });
    const key = await client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1 });
    expect(key.receipt?.keyId).toBe(key.key?.keyId);
    const res = await client.signing.sign({
      keyId: key.key?.keyId ?? '',
      payload: { kind: { case: 'personalMessage', value: { message: new TextEncoder().encode('checked') } } },
    });
    expect(res.receipt?.method).toBe('/openkey.v1.SignService/Sign');
    expect(ethers.verifyMessage('checked', `0x${Buffer.from(res.signature).toString('hex')}`)).toBe(key.key?.address);
  });

  it('refuses a policy that pins another app id or compose hash', async () => {
    const t = createTransport({ baseUrl: app.connectUrl });
    expect(await attestError(attestAppliance(t, { ...policy, appId: '00'.repeat(20) }))).not.toBe('no-error');
    expect(await attestError(attestAppliance(t, { ...policy, composeHashes: ['11'.repeat(32)] }))).not.toBe('no-error');
    expect(await attestError(attestAppliance(t, { ...policy, mrtd: ['22'.repeat(48)] }))).not.toBe('no-error');
    // The same policy still passes, so the refusals above are about the changed field.
    await attestAppliance(t, policy);
  });

  it('refuses the simulator unless its mock root is passed explicitly', async () => {
    const t = createTransport({ baseUrl: app.connectUrl });
    const { trustAnchorDer: _a, dangerouslyAllowCustomTrustAnchor: _b, ...intelOnly } = policy;
    const code = await attestError(attestAppliance(t, intelOnly));
    expect(code).toMatch(/CERT_CHAIN_UNTRUSTED|TRUST_ANCHOR|CERT_CHAIN_INVALID/);
    const { dangerouslyAllowCustomTrustAnchor: _c, ...notDangerous } = policy;
    expect(await attestError(attestAppliance(t, notDangerous))).not.toBe('no-error');
  });

  it('refuses a replayed quote (answer to another nonce)', async () => {
    let captured: AttestResponse | undefined;
    const capture: Interceptor = (next) => async (req) => {
      const res = await next(req);
      if (!res.stream && req.method.name === 'Attest') captured = create(AttestResponseSchema, res.message as AttestResponse);
      return res;
    };
    await attestAppliance(createTransport({ baseUrl: app.connectUrl, interceptors: [capture] }), policy);
    expect(captured).toBeDefined();
    const replay: Interceptor = (next) => async (req) => {
      const res = await next(req);
      if (!res.stream && req.method.name === 'Attest' && captured) return { ...res, message: captured };
      return res;
    };
    expect(await attestError(attestAppliance(createTransport({ baseUrl: app.connectUrl, interceptors: [replay] }), policy))).toMatch(/REPORT_DATA/);
  });

  it('refuses an identity key swapped in the evidence', async () => {
    const swap: Interceptor = (next) => async (req) => {
      const res = await next(req);
      if (!res.stream && req.method.name === 'Attest') {
        const m = create(AttestResponseSchema, res.message as AttestResponse);
        m.identityPublicKey = Uint8Array.from(other.identityPublicKey);
        return { ...res, message: m };
      }
      return res;
    };
    expect(await attestError(attestAppliance(createTransport({ baseUrl: app.connectUrl, interceptors: [swap] }), policy))).not.toBe('no-error');
  });

  it('refuses tampered receipts and receipts signed by another appliance', async () => {
    const creds = generateCredentials();
    const client = await createVerifiedClient({ baseUrl: app.connectUrl, credentials: creds, policy });
    await client.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.ED25519, publicKey: creds.publicKey, name: 'r' });
    const key = await client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1 });
    const req = create(SignRequestSchema, {
      keyId: key.key?.keyId ?? '',
      payload: { kind: { case: 'personalMessage', value: { message: new Uint8Array([1, 2, 3]) } } },
    });
    const res = await client.signing.sign(req);
    const pinned = client.appliance.identityPublicKey;
    const method = SignService.method.sign;
    const check = (r: typeof res, k = pinned) => {
      try {
        checkReceipt(k, SignService, method, req, r);
        return 'ok';
      } catch (e) {
        if (e instanceof ReceiptError) return e.code;
        throw e;
      }
    };
    expect(check(res)).toBe('ok');
    const mutate = (f: (r: typeof res) => void) => {
      const r = clone(SignResponseSchema, res);
      f(r);
      return r;
    };
    expect(check(mutate((r) => r.signature[0] = (r.signature[0] ?? 0) ^ 1))).toBe('RECEIPT_MISMATCH');
    expect(check(mutate((r) => { if (r.receipt) r.receipt.signature = Uint8Array.from(r.receipt.signature).fill(0, 0, 4); }))).toBe('RECEIPT_SIGNATURE_INVALID');
    expect(check(mutate((r) => { if (r.receipt) r.receipt.keyId = 'key_other'; }))).toBe('RECEIPT_SIGNATURE_INVALID');
    expect(check(mutate((r) => { if (r.receipt) r.receipt.method = '/openkey.v1.SignService/SignBatch'; }))).toBe('RECEIPT_MISMATCH');
    expect(check(mutate((r) => { if (r.receipt) r.receipt.timeMs -= 3_600_000n; }))).toBe('RECEIPT_STALE');
    expect(check(mutate((r) => { delete (r as { receipt?: unknown }).receipt; }))).toBe('RECEIPT_MISSING');
    expect(check(res, other.identityPublicKey)).toBe('RECEIPT_SIGNATURE_INVALID');

    // Through the client: a client pinned to the other appliance refuses this one's receipts.
    const pinnedToOther = await createVerifiedClient({ baseUrl: other.connectUrl, credentials: creds, policy: parsePolicy(readFileSync(join(other.dataDir, 'simulator', 'dev-policy.json'), 'utf8')) });
    const wrong = createOpenKeyClient({
      baseUrl: app.connectUrl,
      credentials: creds,
      interceptors: [receiptInterceptor(pinnedToOther.appliance.identityPublicKey)],
    });
    // connect-es wraps errors thrown by interceptors in a ConnectError; the cause is ours.
    const err = await wrong.signing.sign(req).then(() => undefined, (e: unknown) => e);
    expect((err as { cause?: unknown }).cause).toBeInstanceOf(ReceiptError);
    expect(((err as { cause: ReceiptError }).cause).code).toBe('RECEIPT_SIGNATURE_INVALID');
  });
  it('signs the receipts of concurrent calls together: each carries a proof to one signed root, and a tampered proof fails', async () => {
    const creds = generateCredentials();
    const client = await createVerifiedClient({ baseUrl: app.connectUrl, credentials: creds, policy });
    await client.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.ED25519, publicKey: creds.publicKey, name: 'batch' });
    const key = await client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1 });
    const reqs = Array.from({ length: 24 }, (_, i) =>
      create(SignRequestSchema, { keyId: key.key?.keyId ?? '', payload: { kind: { case: 'personalMessage', value: { message: new Uint8Array([i]) } } } }),
    );
    // The verified client's interceptor has already checked every receipt on the way in.
    const all = await Promise.all(reqs.map((r) => client.signing.sign(r)));
    const batched = all.map((res, i) => ({ res, req: reqs[i] as typeof reqs[number] })).filter(({ res }) => res.receipt?.version === 2);
    expect(batched.length).toBeGreaterThan(1);
    const signatures = new Set(batched.map(({ res }) => Buffer.from(res.receipt?.signature ?? []).toString('hex')));
    expect(signatures.size).toBeLessThan(batched.length); // one signature covers several receipts
    const pinned = client.appliance.identityPublicKey;
    const method = SignService.method.sign;
    const check = (req: (typeof reqs)[number], r: (typeof all)[number]) => {
      try {
        checkReceipt(pinned, SignService, method, req, r);
        return 'ok';
      } catch (e) {
        if (e instanceof ReceiptError) return e.code;
        throw e;
      }
    };
    const { res, req } = batched.find(({ res }) => (res.receipt?.batchPath.length ?? 0) > 0) as (typeof batched)[number];
    const size = res.receipt?.batchSize ?? 0;
    expect(size).toBeGreaterThan(1);
    const mutate = (f: (r: NonNullable<typeof res.receipt>) => void) => {
      const r = clone(SignResponseSchema, res);
      if (r.receipt) f(r.receipt);
      return r;
    };
    expect(check(req, res)).toBe('ok');
    expect(check(req, mutate((r) => (r.batchIndex = (r.batchIndex + 1) % size)))).not.toBe('ok');
    expect(check(req, mutate((r) => (r.batchSize = r.batchSize + 1)))).not.toBe('ok');
    expect(check(req, mutate((r) => (r.batchPath[0] = Uint8Array.from(r.batchPath[0] ?? []).fill(7, 0, 1))))).toBe('RECEIPT_SIGNATURE_INVALID');
    expect(check(req, mutate((r) => r.batchPath.pop()))).not.toBe('ok');
    expect(check(req, mutate((r) => (r.batchIndex = size)))).toBe('RECEIPT_MISMATCH');
    expect(check(req, mutate((r) => (r.version = 1)))).toBe('RECEIPT_MISMATCH');
    // Another response's receipt, though validly signed, does not cover this response.
    const { res: otherRes } = batched.find((b) => b.res !== res) as (typeof batched)[number];
    expect(check(req, { ...res, receipt: otherRes.receipt })).toBe('RECEIPT_MISMATCH');
  });
});
