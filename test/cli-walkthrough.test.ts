// The README walk-through, run for real: the `openkey` CLI (a separate process) registers a
// principal, creates a key, signs an EIP-191 message and the EIP-712 example document, and prints
// stamps that let curl-style clients call the appliance. viem verifies what the CLI printed.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyMessage, verifyTypedData, type Hex } from 'viem';
import { startTestAppliance, type TestAppliance } from './support/appliance.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'clients/src/cli/main.ts');
const tsx = join(root, 'node_modules/.bin/tsx');

describe('CLI walk-through from the README', () => {
  let app: TestAppliance;
  let dir: string;
  const openkey = async (...args: string[]): Promise<Record<string, unknown>> => {
    const { stdout } = await run(tsx, [cli, ...args, '--url', app.connectUrl, '--credentials', join(dir, 'creds.json')], { cwd: root });
    return JSON.parse(stdout) as Record<string, unknown>;
  };

  beforeAll(async () => {
    app = await startTestAppliance();
    dir = mkdtempSync(join(tmpdir(), 'openkey-cli-'));
  });
  afterAll(async () => {
    await app.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('init, register, create a key, sign EIP-191 and EIP-712, verify with viem', async () => {
    const init = await openkey('principal', 'init');
    expect(init['principalId']).toMatch(/^svc_[0-9a-f]{32}$/);
    const reg = await openkey('principal', 'register', '--name', 'cli-test');
    expect(reg['id']).toBe(init['principalId']);
    const key = await openkey('key', 'create', '--algorithm', 'secp256k1', '--label', 'treasury');
    const address = key['address'] as Hex;
    const keyId = key['keyId'] as string;

    const personal = await openkey('sign', 'personal', '--key', keyId, '--message', 'hello');
    expect(await verifyMessage({ address, message: 'hello', signature: personal['signature'] as Hex })).toBe(true);

    const doc = join(root, 'clients/examples/mail.json');
    const typed = await openkey('sign', 'typed-data', '--key', keyId, '--file', doc);
    const parsed = JSON.parse(readFileSync(doc, 'utf8')) as Parameters<typeof verifyTypedData>[0];
    expect(await verifyTypedData({ ...parsed, address, signature: typed['signature'] as Hex })).toBe(true);

    const list = await openkey('key', 'list');
    expect((list['keys'] as unknown[]).length).toBe(1);
  });

  it('openkey verify prints the verdict for the dev policy, and fails for a wrong one', async () => {
    const policyFile = join(app.dataDir, 'simulator', 'dev-policy.json');
    const { stdout } = await run(tsx, [cli, 'verify', '--policy', policyFile, '--url', app.connectUrl], { cwd: root });
    expect(stdout).toMatch(/^VERIFIED/);
    expect(stdout).toMatch(/TCB status\s+UpToDate/);
    expect(stdout).toMatch(/key provider\s+openkey-dev-simulator/);
    const bad = JSON.parse(readFileSync(policyFile, 'utf8')) as Record<string, unknown>;
    bad['composeHashes'] = ['00'.repeat(32)];
    const badFile = join(dir, 'bad-policy.json');
    writeFileSync(badFile, JSON.stringify(bad));
    const failed = await run(tsx, [cli, 'verify', '--policy', badFile, '--url', app.connectUrl], { cwd: root }).then(
      () => undefined,
      (e: { code?: number; stderr?: string }) => e,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toMatch(/COMPOSE_HASH/);
  });

  it('a printed stamp lets plain HTTP (curl-style) Connect JSON calls through, once', async () => {
    const key = (await openkey('key', 'list'))['keys'] as { keyId: string; address: Hex }[];
    const first = key[0];
    if (first === undefined) throw new Error('no key');
    const body = JSON.stringify({ keyId: first.keyId, payload: { personalMessage: { message: Buffer.from('curl').toString('base64') } } });
    const { stdout: stamp } = await run(tsx, [cli, 'stamp', 'SignService/Sign', body, '--credentials', join(dir, 'creds.json')], { cwd: root });
    const post = () =>
      fetch(`${app.connectUrl}/openkey.v1.SignService/Sign`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'openkey-stamp': stamp.trim() },
        body,
      });
    const res = await post();
    expect(res.status).toBe(200);
    const json = (await res.json()) as { signature: string };
    const sig = `0x${Buffer.from(json.signature, 'base64').toString('hex')}` as Hex;
    expect(await verifyMessage({ address: first.address, message: 'curl', signature: sig })).toBe(true);
    const again = await post();
    expect(again.headers.get('openkey-error-code')).toBe('STAMP_REPLAYED');
  });
});
