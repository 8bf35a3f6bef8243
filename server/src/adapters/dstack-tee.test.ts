// The dstack `Tee` adapter: real DstackClient against the project's simulator (unix socket and TCP),
// and every failure mode of the agent (absent, refusing, hanging, answering garbage or error bodies)
// surfacing as TEE_UNAVAILABLE, never as the SDK's own TypeError or SyntaxError.

import * as http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { DstackTee } from './dstack-tee.ts';
import { startSimulator, type RunningSimulator } from '../simulator/simulator.ts';
import { isOpenKeyError } from '../core/errors.ts';
import type { TeeKeyAlgorithm } from '../core/ports.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return isOpenKeyError(e) ? e.code : `non-OpenKeyError: ${String(e)}`;
  }
  return 'no error';
}

let dir: string;
let sim: RunningSimulator;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'okdtee-'));
  sim = await startSimulator({ socketPath: join(dir, 'dstack.sock'), tcp: { port: 0 }, seed: utf8('adapter-test-seed') });
});

afterAll(async () => {
  await sim.close();
  rmSync(dir, { recursive: true, force: true });
});

describe.each(['unix', 'tcp'] as const)('DstackTee against the simulator over %s', (kind) => {
  const tee = (): DstackTee => new DstackTee({ endpoint: (kind === 'unix' ? sim.socketPath : sim.httpUrl) ?? '' });

  it('getKey returns the 32-byte key and a chain that ends at the simulator KMS root', async () => {
    const k = await tee().getKey('openkey/identity', 'identity', 'secp256k1');
    expect(k.key).toBeInstanceOf(Uint8Array);
    expect(k.key).toHaveLength(32);
    expect(k.signatureChain).toHaveLength(2);
    const [c0, c1] = k.signatureChain;
    if (c0 === undefined || c1 === undefined) throw new Error('chain');
    const rec = (sig: Uint8Array, msg: Uint8Array): Uint8Array =>
      secp256k1.Signature.fromCompact(sig.subarray(0, 64))
        .addRecoveryBit(sig[64] ?? -1)
        .recoverPublicKey(keccak_256(msg))
        .toRawBytes(true);
    const appPub = rec(c0, utf8(`identity:${hex(secp256k1.getPublicKey(k.key, true))}`));
    const appId = Buffer.from(sim.appId, 'hex');
    expect(hex(rec(c1, new Uint8Array([...utf8('dstack-kms-issued:'), ...appId, ...appPub])))).toBe(hex(sim.kmsRootPublicKey));
    // ed25519 is the same 32 bytes (reference §2.1).
    const e = await tee().getKey('openkey/identity', 'identity', 'ed25519');
    expect(hex(e.key)).toBe(hex(k.key));
  });

  it('info maps every field and keeps tcb_info as JSON text', async () => {
    const i = await tee().info();
    expect(i.appId).toBe(sim.appId);
    expect(i.composeHash).toMatch(/^[0-9a-f]{64}$/);
    expect(i.instanceId).toMatch(/^[0-9a-f]{40}$/);
    expect(JSON.parse(i.keyProviderInfo)).toMatchObject({ name: 'openkey-dev-simulator' });
    const tcb: unknown = JSON.parse(i.tcbInfo);
    expect(tcb).toMatchObject({ compose_hash: i.composeHash, os_image_hash: i.osImageHash, mr_aggregated: i.mrAggregated, device_id: i.deviceId });
    expect(i.appName).toBe('openkey-appliance-dev');
  });

  it('rejects bad inputs before calling the agent', async () => {
    const t = tee();
    expect(await codeOf(t.getKey('clé', 'x', 'secp256k1'))).toBe('MALFORMED_REQUEST');
    expect(await codeOf(t.getKey('a\nb', 'x', 'secp256k1'))).toBe('MALFORMED_REQUEST');
    expect(await codeOf(t.getKey('p'.repeat(1025), 'x', 'secp256k1'))).toBe('PAYLOAD_TOO_LARGE');
    // A caller outside the type system (e.g. config) must still be refused.
    expect(await codeOf(t.getKey('p', 'x', 'rsa' as TeeKeyAlgorithm))).toBe('UNSUPPORTED_ALGORITHM');
    expect(await codeOf(t.quote(new Uint8Array(65)))).toBe('PAYLOAD_TOO_LARGE');
  });
});

/** A fake guest agent answering every request with `body` (Content-Length set), or never. */
async function fakeAgent(body: string | undefined): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    if (body === undefined) return; // hang
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('DstackTee failure mapping', () => {
  it('a missing unix socket is TEE_UNAVAILABLE (the SDK constructor throws)', async () => {
    const tee = new DstackTee({ endpoint: join(dir, 'nope.sock') });
    expect(await codeOf(tee.getKey('p', 'x', 'secp256k1'))).toBe('TEE_UNAVAILABLE');
    expect(await codeOf(tee.info())).toBe('TEE_UNAVAILABLE');
    expect(await codeOf(tee.quote(new Uint8Array(32)))).toBe('TEE_UNAVAILABLE');
  });

  it('a refused TCP port is TEE_UNAVAILABLE', async () => {
    const srv = http.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const { port } = srv.address() as AddressInfo;
    await new Promise<void>((r) => srv.close(() => r()));
    const tee = new DstackTee({ endpoint: `http://127.0.0.1:${port}` });
    expect(await codeOf(tee.getKey('p', 'x', 'secp256k1'))).toBe('TEE_UNAVAILABLE');
    expect(await codeOf(tee.info())).toBe('TEE_UNAVAILABLE');
  });

  it('the default endpoint is the production socket, not the environment', async () => {
    const before = process.env['DSTACK_SIMULATOR_ENDPOINT'];
    process.env['DSTACK_SIMULATOR_ENDPOINT'] = sim.httpUrl ?? '';
    try {
      // No /var/run/dstack.sock here: the adapter must not fall back to the env simulator.
      expect(await codeOf(new DstackTee().info())).toBe('TEE_UNAVAILABLE');
    } finally {
      if (before === undefined) delete process.env['DSTACK_SIMULATOR_ENDPOINT'];
      else process.env['DSTACK_SIMULATOR_ENDPOINT'] = before;
    }
  });

  it.each([
    ['an error body (the SDK crashes with TypeError on getKey)', '{"error":"boom"}'],
    ['not JSON', 'not json'],
    ['a short key', JSON.stringify({ key: 'abcd', signature_chain: ['00'.repeat(65), '00'.repeat(65)] })],
    ['non-hex key (Buffer.from truncates it)', JSON.stringify({ key: 'zz'.repeat(32), signature_chain: ['00'.repeat(65), '00'.repeat(65)] })],
    ['a one-element chain', JSON.stringify({ key: '11'.repeat(32), signature_chain: ['00'.repeat(65)] })],
    ['a short signature', JSON.stringify({ key: '11'.repeat(32), signature_chain: ['00'.repeat(64), '00'.repeat(65)] })],
  ])('getKey on %s is TEE_UNAVAILABLE', async (_name, body) => {
    const agent = await fakeAgent(body);
    try {
      expect(await codeOf(new DstackTee({ endpoint: agent.url }).getKey('p', 'x', 'secp256k1'))).toBe('TEE_UNAVAILABLE');
    } finally {
      await agent.close();
    }
  });

  it('a well-formed getKey answer from the fake agent does pass (the fake is not always-failing)', async () => {
    const agent = await fakeAgent(JSON.stringify({ key: '11'.repeat(32), signature_chain: ['22'.repeat(65), '33'.repeat(65)] }));
    try {
      const k = await new DstackTee({ endpoint: agent.url }).getKey('p', 'x', 'secp256k1');
      expect(hex(k.key)).toBe('11'.repeat(32));
    } finally {
      await agent.close();
    }
  });

  it.each([
    ['an error body', '{"error":"boom"}'],
    ['tcb_info not JSON', JSON.stringify({ app_id: 'ab'.repeat(20), tcb_info: '{' })],
    ['missing fields', JSON.stringify({ app_id: 'ab'.repeat(20), tcb_info: '{}' })],
  ])('info on %s is TEE_UNAVAILABLE', async (_name, body) => {
    const agent = await fakeAgent(body);
    try {
      expect(await codeOf(new DstackTee({ endpoint: agent.url }).info())).toBe('TEE_UNAVAILABLE');
    } finally {
      await agent.close();
    }
  });

  it.each([
    ['an error body', '{"error":"boom"}'],
    ['non-hex quote', JSON.stringify({ quote: 'zz', event_log: '[]' })],
    ['a quote that is not TDX v4/v5', JSON.stringify({ quote: `0300${'00'.repeat(700)}`, event_log: '[]' })],
    ['a v4 quote with other report_data', JSON.stringify({ quote: `0400${'00'.repeat(566)}${'ff'.repeat(64)}`, event_log: '[]' })],
    ['a truncated quote', JSON.stringify({ quote: `0400${'00'.repeat(100)}`, event_log: '[]' })],
  ])('quote on %s is TEE_UNAVAILABLE', async (_name, body) => {
    const agent = await fakeAgent(body);
    try {
      expect(await codeOf(new DstackTee({ endpoint: agent.url }).quote(new Uint8Array(0)))).toBe('TEE_UNAVAILABLE');
    } finally {
      await agent.close();
    }
  });

  it('a v4 quote carrying the padded report_data passes the adapter check', async () => {
    const agent = await fakeAgent(JSON.stringify({ quote: `0400${'00'.repeat(566)}abcd${'00'.repeat(62)}`, event_log: '[]' }));
    try {
      const q = await new DstackTee({ endpoint: agent.url }).quote(Uint8Array.of(0xab, 0xcd));
      expect(q.quote).toHaveLength(632);
      expect(q.vmConfig).toBe('');
    } finally {
      await agent.close();
    }
  });

  it('a hanging agent is TEE_UNAVAILABLE after the adapter deadline', async () => {
    const agent = await fakeAgent(undefined);
    try {
      const t0 = Date.now();
      expect(await codeOf(new DstackTee({ endpoint: agent.url, timeoutMs: 200 }).info())).toBe('TEE_UNAVAILABLE');
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      await agent.close();
    }
  });

  it('rejects a bad configuration', () => {
    expect(() => new DstackTee({ endpoint: '' })).toThrow();
    expect(() => new DstackTee({ timeoutMs: 0 })).toThrow();
  });
});
