// The `openkey policy` and `openkey audit` commands, run for real as separate processes against a
// real appliance: an owner grants a second service a capped, EIP-712-constrained use of its key;
// the grantee's signatures verify with viem, the cap and the chain-id allowlist deny, a revocation
// ends the use; then the exported audit log verifies (by identity key and by attestation) and holds
// each of those decisions in order.

import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { recoverTypedDataAddress, type Hex, type TypedDataDefinition } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeAuditExport } from '../server/src/core/audit.ts';
import { startTestAppliance, type TestAppliance } from './support/appliance.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'clients/src/cli/main.ts');
const tsx = join(root, 'node_modules/.bin/tsx');
const mailFile = join(root, 'clients/examples/mail.json');
const mail = JSON.parse(readFileSync(mailFile, 'utf8')) as TypedDataDefinition & { domain: { verifyingContract: string } };

interface Outcome {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

describe('openkey policy and audit commands', () => {
  let app: TestAppliance;
  let dir: string;
  let keyId = '';
  let address: Hex = '0x';
  let botId = '';
  let ownerId = '';

  /** Runs the CLI as `who` (a credentials file in the temp dir); never throws. */
  const cliAs = async (who: string, ...args: string[]): Promise<Outcome> => {
    const argv = [cli, ...args, '--url', app.connectUrl, '--credentials', join(dir, `${who}.json`)];
    try {
      const { stdout, stderr } = await run(tsx, argv, { cwd: root });
      return { exitCode: 0, stdout, stderr };
    } catch (e) {
      const f = e as { code?: number; stdout?: string; stderr?: string };
      return { exitCode: f.code ?? -1, stdout: f.stdout ?? '', stderr: f.stderr ?? '' };
    }
  };
  const ok = async (who: string, ...args: string[]): Promise<string> => {
    const r = await cliAs(who, ...args);
    expect(r.exitCode, r.stderr).toBe(0);
    return r.stdout;
  };
  const json = async (who: string, ...args: string[]) => JSON.parse(await ok(who, ...args)) as Record<string, unknown>;
  /** The appliance error code the CLI printed for a failed call. */
  const failure = async (who: string, ...args: string[]): Promise<string | undefined> => {
    const r = await cliAs(who, ...args);
    expect(r.exitCode).toBe(1);
    return /^error ([A-Z_]+):/.exec(r.stderr)?.[1];
  };
  const signMail = async (file = mailFile): Promise<Hex> => (await json('bot', 'sign', 'typed-data', '--key', keyId, '--file', file))['signature'] as Hex;

  beforeAll(async () => {
    app = await startTestAppliance();
    dir = mkdtempSync(join(tmpdir(), 'openkey-cli-policy-'));
    for (const who of ['owner', 'bot']) {
      await ok(who, 'principal', 'init');
      await ok(who, 'principal', 'register', '--name', who);
    }
    ownerId = (await json('owner', 'whoami'))['id'] as string;
    botId = (await json('bot', 'whoami'))['id'] as string;
    const key = await json('owner', 'key', 'create', '--label', 'mail');
    keyId = key['keyId'] as string;
    address = key['address'] as Hex;
  });
  afterAll(async () => {
    await app.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('grant: a capped, EIP-712-constrained use by another service, shown back as JSON', async () => {
    const policy = await json(
      'owner',
      ...['policy', 'grant', keyId, '--id', 'mail-bot', '--service', botId, '--ops', 'eip712'],
      ...['--chain-id', '1', '--contract', mail.domain.verifyingContract, '--primary-type', 'Mail', '--cap', '2/day', '--json'],
    );
    expect(policy).toEqual({
      keyId,
      version: 1,
      ownerRule: null,
      grants: [
        {
          id: 'mail-bot',
          principal: { kind: 'service', id: botId },
          operations: ['eip712'],
          eip712: { chainIds: ['1'], verifyingContracts: [mail.domain.verifyingContract.toLowerCase()], primaryTypes: ['Mail'] },
          caps: [{ limit: 2, windowMs: 86_400_000 }],
          requireApproval: false,
        },
      ],
    });
  });

  it('the grantee signs mail.json twice; another chain id is denied; the third is over the cap', async () => {
    const recover = (signature: Hex) => recoverTypedDataAddress({ ...mail, signature });
    expect(await recover(await signMail())).toBe(address);

    const otherChain = join(dir, 'mail-chain-10.json');
    writeFileSync(otherChain, JSON.stringify({ ...mail, domain: { ...mail.domain, chainId: 10 } }));
    // A grantee outside its grant learns no more than "no such key" (the audit log says why).
    expect(await failure('bot', 'sign', 'typed-data', '--key', keyId, '--file', otherChain)).toBe('KEY_NOT_FOUND');

    expect(await recover(await signMail())).toBe(address);
    expect(await failure('bot', 'sign', 'typed-data', '--key', keyId, '--file', mailFile)).toBe('CAP_EXCEEDED');
    // The grant covers EIP-712 only.
    expect(await failure('bot', 'sign', 'personal', '--key', keyId, '--message', 'hi')).toBe('KEY_NOT_FOUND');
  });

  it('policy show prints the grant readably; only the owner may read it', async () => {
    const text = await ok('owner', 'policy', 'show', keyId);
    expect(text).toContain(`policy of ${keyId} (version 1)`);
    expect(text).toMatch(/owner rule\s+none/);
    expect(text).toContain('grant mail-bot');
    expect(text).toMatch(new RegExp(`principal\\s+service ${botId}`));
    expect(text).toMatch(/operations\s+eip712/);
    expect(text).toMatch(/EIP-712 chain ids\s+1\n/);
    expect(text).toMatch(new RegExp(`EIP-712 contracts\\s+${mail.domain.verifyingContract.toLowerCase()}`));
    expect(text).toMatch(/EIP-712 types\s+Mail/);
    expect(text).toMatch(/caps\s+2 per day/);
    expect(text).toMatch(/rate limit\s+none/);
    expect(text).toMatch(/valid\s+always/);
    expect(text).toMatch(/approval\s+not required/);
    expect(await failure('bot', 'policy', 'show', keyId)).toBe('KEY_NOT_FOUND');
  });

  it('owner-rule sets and clears the rule the owner is held to', async () => {
    const set = await ok('owner', 'policy', 'owner-rule', keyId, '--ops', 'personal_sign,eip712', '--rate', '100/minute', '--not-after', '2999-01-01');
    expect(set).toMatch(/owner rule\n\s+operations\s+personal_sign, eip712/);
    expect(set).toMatch(/rate limit\s+100 per minute, bursts of up to 100/);
    expect(set).toMatch(/valid\s+until 2999-01-01T00:00:00.000Z/);
    const cleared = await json('owner', 'policy', 'owner-rule', keyId, '--clear', '--json');
    expect(cleared['ownerRule']).toBeNull();
    expect(cleared['version']).toBe(3);
  });

  it('bad rule options are usage errors (exit 2) and reach no appliance', async () => {
    const bad = async (...args: string[]) => (await cliAs('owner', 'policy', 'grant', keyId, '--id', 'x', '--service', botId, ...args)).exitCode;
    const codes = await Promise.all([
      bad('--ops', 'eip712', '--cap', '2/fortnight'),
      bad('--ops', 'sign_everything'),
      bad('--ops', 'eip712', '--contract', '0x1234'),
      bad('--ops', 'eip712', '--not-before', '2026-01-01T00:00:00'), // no zone: ambiguous
      bad(), // no --ops
    ]);
    expect(codes).toEqual([2, 2, 2, 2, 2]);
    expect((await json('owner', 'policy', 'show', keyId, '--json'))['version']).toBe(3);
  });

  it('revoke: the former grantee gets KEY_NOT_FOUND', async () => {
    const after = await json('owner', 'policy', 'revoke', keyId, 'mail-bot', '--json');
    expect(after['grants']).toEqual([]);
    expect(await failure('bot', 'sign', 'typed-data', '--key', keyId, '--file', mailFile)).toBe('KEY_NOT_FOUND');
  });

  it('audit export + audit verify: VERIFIED, with every decision above in order', async () => {
    const head = await json('owner', 'audit', 'head');
    expect(head['seq']).toBe(head['logSeq']);
    expect(head['hash']).toMatch(/^0x[0-9a-f]{64}$/);

    const file = join(dir, 'audit.json');
    const summary = await json('owner', 'audit', 'export', '--out', file);
    expect(summary['from']).toBe(1);
    const identity = Buffer.from(app.identityPublicKey).toString('hex');
    const verified = await cliAs('owner', 'audit', 'verify', file, '--identity-key', identity);
    expect(verified.exitCode).toBe(0);
    const m = /^VERIFIED: records 1\.\.(\d+), head seq (\d+) signed at (\S+)\n/.exec(verified.stdout);
    expect(m?.[1]).toBe(String(summary['to']));
    expect(m?.[2]).toBe(String(summary['to']));
    expect(Number.isNaN(Date.parse(m?.[3] ?? ''))).toBe(false);
    expect(summary['to']).toBeGreaterThan(head['seq'] as number); // the export's own read is recorded too

    const exp = decodeAuditExport(readFileSync(file, 'utf8'));
    const decisions = exp.records.filter((r) => r.keyId === keyId).map((r) => `${r.principal === botId ? 'bot' : r.principal === ownerId ? 'owner' : r.principal} ${r.operation} ${r.decision} ${r.reason}`);
    expect(decisions).toEqual([
      'owner seal_key allow OWNER',
      'owner grant allow OWNER',
      'bot eip712 allow GRANT',
      'bot eip712 deny EIP712_CHAIN_ID_NOT_ALLOWED',
      'bot eip712 allow GRANT',
      'bot eip712 deny CAP_EXCEEDED',
      'bot personal_sign deny OPERATION_NOT_GRANTED',
      'owner set_owner_rule allow OWNER',
      'owner set_owner_rule allow OWNER',
      'owner revoke allow OWNER',
      'bot eip712 deny NOT_GRANTED',
    ]);
    expect(exp.records.at(-1)).toMatchObject({ principal: ownerId, operation: 'audit_export', decision: 'allow' });

    // Someone else's key does not verify the same export.
    const wrong = await cliAs('owner', 'audit', 'verify', file, '--identity-key', '11'.repeat(32));
    expect(wrong.exitCode).toBe(1);
    expect(wrong.stdout).toMatch(/^BROKEN at seq \d+: HEAD_SIGNATURE_INVALID — /);
  });

  it('audit verify --attest pins the identity key by attesting the appliance', async () => {
    const file = join(dir, 'audit-attest.json');
    await ok('owner', 'audit', 'export', '--out', file);
    const policyFile = join(app.dataDir, 'simulator', 'dev-policy.json');
    const r = await cliAs('owner', 'audit', 'verify', file, '--attest', '--policy', policyFile);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^VERIFIED: records 1\.\.\d+/);
    expect((await cliAs('owner', 'audit', 'verify', file, '--attest')).exitCode).toBe(2); // no policy: no attestation
  });
});
