// `openkey delegation`, run for real as a separate process like the README walk-through: the owner
// grants (capabilities + a DID rule, and a manifest + a principal rule), requests a delegation and
// gets the TinyCloud wrapper (checked here with siwe and viem), lists it, revokes the grant, and the
// next request is refused with GRANT_REVOKED. Bad invocations exit 2.

import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SiweMessage } from 'siwe';
import { verifyMessage, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DelegateKey } from '../clients/src/index.ts';
import { startTestAppliance, type TestAppliance } from './support/appliance.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'clients/src/cli/main.ts');
const tsx = join(root, 'node_modules/.bin/tsx');

describe('openkey delegation', () => {
  let app: TestAppliance;
  let dir: string;
  const session = DelegateKey.generate();
  const args = (a: string[]) => [cli, ...a, '--url', app.connectUrl, '--credentials', join(dir, 'creds.json')];
  const openkey = async (...a: string[]): Promise<Record<string, unknown>> => JSON.parse((await run(tsx, args(a), { cwd: root })).stdout) as Record<string, unknown>;
  const failing = (...a: string[]) =>
    run(tsx, args(a), { cwd: root }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code?: number; stderr?: string }) => ({ code: e.code, stderr: e.stderr ?? '' }),
    );

  beforeAll(async () => {
    app = await startTestAppliance();
    dir = mkdtempSync(join(tmpdir(), 'openkey-cli-deleg-'));
  });
  afterAll(async () => {
    await app.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('grant → request → list → revoke → request refused', async () => {
    const { principalId } = (await openkey('principal', 'init')) as { principalId: string };
    await openkey('principal', 'register', '--name', 'owner');
    const key = (await openkey('key', 'create', '--algorithm', 'secp256k1')) as { keyId: string; address: Hex };
    const space = `tinycloud:pkh:eip155:1:${key.address}:applications`;

    const grant = await openkey(
      'delegation', 'grant', key.keyId, '--id', 'g1',
      '--capability', `${space}/kv/app/|tinycloud.kv/get`,
      '--capability', `${space}/kv/app/|tinycloud.kv/list`,
      '--delegate-did', session.did, '--max-lifetime', '3600',
    );
    expect(grant).toMatchObject({
      id: 'g1',
      keyId: key.keyId,
      ownerDid: `did:pkh:eip155:1:${key.address}`,
      capabilities: [
        { resource: `${space}/kv/app/`, ability: 'tinycloud.kv/get', caveats: [{}] },
        { resource: `${space}/kv/app/`, ability: 'tinycloud.kv/list', caveats: [{}] },
      ],
      delegates: [{ did: session.did }],
      maxLifetimeSeconds: 3600,
      revoked: false,
    });

    const manifest = join(dir, 'notes.json');
    writeFileSync(manifest, JSON.stringify({ manifest_version: 1, app_id: 'com.example.notes', name: 'Notes', defaults: false, permissions: [{ service: 'tinycloud.kv', path: 'notes/', actions: ['get'] }] }));
    const composed = await openkey('delegation', 'grant', key.keyId, '--id', 'notes', '--manifest', manifest, '--capability', `${space}/kv/shared/|tinycloud.kv/get|[{"maxBytes":1024}]`, '--delegate-principal', principalId);
    expect((composed['capabilities'] as { resource: string; caveats: unknown }[]).map((c) => [c.resource.slice(space.length + 1), c.caveats])).toEqual([
      ['capabilities', [{}]],
      ['kv/com.example.notes/notes/', [{}]],
      ['kv/shared/', [{ maxBytes: 1024 }]],
    ]);
    expect(((await openkey('delegation', 'grants', key.keyId))['grants'] as { id: string }[]).map((g) => g.id)).toEqual(['g1', 'notes']);

    const out = join(dir, 'wrapper.json');
    const { stdout } = await run(tsx, args(['delegation', 'request', key.keyId, 'g1', '--to', session.did, '--capability', `${space}/kv/app/inbox/|tinycloud.kv/get`, '--lifetime', '600', '--request-id', 'cli-1', '--out', out]), { cwd: root });
    expect(readFileSync(out, 'utf8')).toBe(stdout);
    const wrapper = JSON.parse(stdout) as { siwe: string; signature: Hex; delegationCid: string; delegateDid: string; ownerDid: string; permissions: unknown[]; delegationHeader: { Authorization: string } };
    expect(wrapper).toMatchObject({ delegateDid: session.did, ownerDid: `did:pkh:eip155:1:${key.address}`, permissions: [{ service: 'tinycloud.kv', space: 'applications', path: 'app/inbox/', actions: ['tinycloud.kv/get'] }] });
    expect(await verifyMessage({ address: key.address, message: wrapper.siwe, signature: wrapper.signature })).toBe(true);
    const siwe = new SiweMessage(wrapper.siwe);
    expect(siwe).toMatchObject({ uri: session.didUrl, requestId: 'cli-1' });
    expect((await siwe.verify({ signature: wrapper.signature, time: siwe.issuedAt as string })).success).toBe(true);

    const listed = (await openkey('delegation', 'list', key.keyId, '--grant', 'g1'))['delegations'] as Record<string, unknown>[];
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ cid: wrapper.delegationCid, grantId: 'g1', delegateDid: session.did, format: 'siwe-cacao', status: 'active', capabilities: [{ resource: `${space}/kv/app/inbox/`, ability: 'tinycloud.kv/get', caveats: [{}] }] });

    expect(await openkey('delegation', 'revoke', key.keyId, 'g1')).toMatchObject({ id: 'g1', revoked: true });
    expect(((await openkey('delegation', 'list', key.keyId))['delegations'] as { status: string }[]).map((d) => d.status)).toEqual(['revoked']);

    const refused = await failing('delegation', 'request', key.keyId, 'g1', '--to', session.did, '--capability', `${space}/kv/app/inbox/|tinycloud.kv/get`, '--lifetime', '600');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^error GRANT_REVOKED/);
    expect(((await openkey('delegation', 'list', key.keyId))['delegations'] as unknown[]).length).toBe(1);
  });

  it('bad invocations exit 2 with the usage', async () => {
    const [noAbility, badCaveats, noLifetime, unknown] = await Promise.all([
      failing('delegation', 'request', 'key_x', 'g1', '--to', session.did, '--capability', 'tinycloud:pkh:eip155:1:0x0:applications/kv/app/', '--lifetime', '60'),
      failing('delegation', 'grant', 'key_x', '--id', 'g', '--capability', 'r|tinycloud.kv/get|{"not":"a list"}', '--delegate-did', session.did),
      failing('delegation', 'request', 'key_x', 'g1', '--to', session.did, '--capability', 'r|tinycloud.kv/get'),
      failing('delegation', 'frobnicate'),
    ]);
    expect(noAbility.code).toBe(2);
    expect(noAbility.stderr).toMatch(/--capability must be RESOURCE\|ABILITY/);
    expect(badCaveats).toMatchObject({ code: 2, stderr: expect.stringMatching(/caveats must be a JSON list/) as unknown });
    expect(noLifetime).toMatchObject({ code: 2, stderr: expect.stringMatching(/--lifetime SECONDS is required/) as unknown });
    expect(unknown).toMatchObject({ code: 2, stderr: expect.stringMatching(/unknown command: delegation frobnicate/) as unknown });
  });
});
