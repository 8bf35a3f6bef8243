// A crash between decision and response loses no record. The real appliance runs in a child
// process (test/support/crash-after-sign-commit.ts) that SIGKILLs itself the moment a Sign
// decision's commit is durable, before any response. The client's call fails without a signature;
// a fresh appliance on the same data directory then shows the decision in a chain that verifies,
// and the request's nonce consumed: replaying the exact stamped request is STAMP_REPLAYED.

import { create, toBinary } from '@bufbuild/protobuf';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyAlgorithm } from '../proto/gen/openkey/v1/common_pb.ts';
import { PrincipalKeyAlgorithm } from '../proto/gen/openkey/v1/principals_pb.ts';
import { SignRequestSchema } from '../proto/gen/openkey/v1/signing_pb.ts';
import { exportAuditLog } from '../clients/src/cli/audit.ts';
import { createOpenKeyClient, generateCredentials, requestDigest, stampFor, STAMP_HEADER } from '../clients/src/index.ts';
import { verifyAuditExport } from '../server/src/core/audit.ts';
import { startTestAppliance, type TestAppliance } from './support/appliance.ts';

const child = fileURLToPath(new URL('./support/crash-after-sign-commit.ts', import.meta.url));
const root = fileURLToPath(new URL('..', import.meta.url));
const SIGN_PATH = '/openkey.v1.SignService/Sign';

/** POSTs a stamped Connect (binary) Sign request as given; the status, or the transport error. */
async function postSign(baseUrl: string, body: Uint8Array, stamp: string): Promise<{ status: number; code: string | null } | { failed: unknown }> {
  try {
    const res = await fetch(`${baseUrl}${SIGN_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/proto', [STAMP_HEADER]: stamp },
      body: Uint8Array.from(body),
    });
    await res.arrayBuffer();
    return { status: res.status, code: res.headers.get('openkey-error-code') };
  } catch (e) {
    return { failed: e };
  }
}

describe('a crash between decision and response (SIGKILL after the durable commit)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'openkey-crash-'));
  let proc: ChildProcessByStdio<null, Readable, Readable> | undefined;
  let fresh: TestAppliance | undefined;
  afterAll(async () => {
    if (proc !== undefined && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); // only if the test failed early
    if (fresh !== undefined) await fresh.dispose();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('loses no record: the decision is in a verifying chain and its nonce is spent', async () => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, dataDir], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    proc = p;
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => p.on('exit', (code, signal) => resolve({ code, signal })));
    const ready = await new Promise<{ connectPort: number; identityPublicKey: string }>((resolve, reject) => {
      let out = '';
      p.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n')[0];
        if (out.includes('\n') && line !== undefined) resolve(JSON.parse(line) as { connectPort: number; identityPublicKey: string });
      });
      void exited.then(({ code, signal }) => reject(new Error(`appliance exited early (${code ?? signal}): ${stderr}`)));
    });
    const baseUrl = `http://127.0.0.1:${ready.connectPort}`;

    const creds = generateCredentials('ed25519');
    const client = createOpenKeyClient({ baseUrl, credentials: creds });
    await client.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.ED25519, publicKey: creds.publicKey, name: 'crash' });
    const keyId = (await client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1 })).key?.keyId ?? '';
    expect(keyId).not.toBe('');

    // One stamped request, kept byte for byte for the replay.
    const request = create(SignRequestSchema, { keyId, payload: { kind: { case: 'personalMessage', value: { message: new TextEncoder().encode('crash') } } } });
    const body = toBinary(SignRequestSchema, request);
    const stamp = stampFor(creds, SIGN_PATH, SignRequestSchema, request);
    const outcome = await postSign(baseUrl, body, stamp);
    expect(outcome).toHaveProperty('failed'); // the connection died: no status, no signature
    expect(await exited).toEqual({ code: null, signal: 'SIGKILL' });

    fresh = await startTestAppliance({ dataDir });
    expect(Buffer.from(fresh.identityPublicKey).toString('hex')).toBe(ready.identityPublicKey);
    const reader = createOpenKeyClient({ baseUrl: fresh.connectUrl, credentials: creds });
    const { export: exp } = await exportAuditLog(reader.audit, { from: 1 });
    expect(verifyAuditExport(exp, fresh.identityPublicKey)).toMatchObject({ ok: true, from: 1, to: exp.records.length });
    const signs = exp.records.filter((r) => r.operation === 'personal_sign');
    expect(signs).toHaveLength(1);
    expect(signs[0]).toMatchObject({ principal: creds.principalId, keyId, decision: 'allow', reason: 'OWNER', requestDigest: requestDigest(SignRequestSchema, request) });

    expect(await postSign(fresh.connectUrl, body, stamp)).toEqual({ status: 401, code: 'STAMP_REPLAYED' });
    // The appliance itself is fine: a new stamp of the same request is signed.
    expect((await reader.signing.sign(request)).signature).toHaveLength(65);
  });
});
