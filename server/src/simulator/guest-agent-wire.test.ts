// The simulator speaks the dstack guest-agent wire protocol (reference §1.1-§1.4): the real
// @phala/dstack-sdk DstackClient talks to it over a unix socket and over TCP; hostile requests get
// clean {"error"} answers and the server keeps serving. Measurements in Info are checked by
// recomputing them here with node:crypto (independent of platform.ts).

import { spawn } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, hkdfSync } from 'node:crypto';
import * as http from 'node:http';
import * as net from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DstackClient } from '@phala/dstack-sdk';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { startSimulator, type RunningSimulator } from './simulator.ts';

const VECTORS = '/work/shared/vectors/tdx';
const APP_ID = '5bb4ff9a3837357f19dc176407a5709c62eb6c56';
const APP_K256 = 'd6e88992cdeeee35fe70b5db61ab66cdb191fb9b6ec9313757ef162dd7214d5d';
const APP_ROOT_PUB = '02818494263695e8839122dbd88e281d7380622999df4e60a14befa0f2d096fc7c';
const KMS_ROOT_PUB = '0321529e458424ab1f710a3a57ec4dad2fb195ddca572f7469242ba6c7563085b6';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

function recover(sig65: Uint8Array, msg: Uint8Array): string {
  return hex(
    secp256k1.Signature.fromCompact(sig65.subarray(0, 64))
      .addRecoveryBit(sig65[64] ?? -1)
      .recoverPublicKey(keccak_256(msg))
      .toRawBytes(true),
  );
}

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

type Target = { socketPath: string } | { host: string; port: number };

function targetOf(sim: RunningSimulator, kind: 'unix' | 'tcp'): Target {
  if (kind === 'unix') return { socketPath: sim.socketPath ?? '' };
  const u = new URL(sim.httpUrl ?? '');
  return { host: u.hostname, port: Number(u.port) };
}

function raw(target: Target, method: string, path: string, body?: string | Buffer, headers: http.OutgoingHttpHeaders = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...target, method, path, agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function errorBody(r: RawResponse): string {
  const parsed: unknown = JSON.parse(r.body);
  if (typeof parsed !== 'object' || parsed === null || !('error' in parsed) || typeof parsed.error !== 'string') {
    throw new Error(`not an error body: ${r.body}`);
  }
  return parsed.error;
}

/** Event-log replay done here with node:crypto: runtime digests recomputed from payloads (§3.3). */
function replay(events: unknown, imr: number): string {
  if (!Array.isArray(events)) throw new Error('event_log not an array');
  let mr = Buffer.alloc(48);
  for (const e of events) {
    if (typeof e !== 'object' || e === null) throw new Error('bad event');
    const ev: Record<string, unknown> = { ...e };
    if (ev['imr'] !== imr) continue;
    let digest: Buffer;
    if (ev['event_type'] === 0x08000001) {
      const t = Buffer.alloc(4);
      t.writeUInt32LE(0x08000001);
      digest = createHash('sha384')
        .update(Buffer.concat([t, Buffer.from(`:${String(ev['event'])}:`), Buffer.from(String(ev['event_payload']), 'hex')]))
        .digest();
      expect(digest.toString('hex')).toBe(ev['digest']);
    } else {
      digest = Buffer.from(String(ev['digest']), 'hex');
    }
    mr = createHash('sha384').update(Buffer.concat([mr, digest])).digest();
  }
  return mr.toString('hex');
}

function runtimePayload(events: unknown, name: string): string {
  if (!Array.isArray(events)) throw new Error('event_log not an array');
  const found = events.filter((e: unknown) => typeof e === 'object' && e !== null && 'event' in e && e.event === name);
  expect(found).toHaveLength(1);
  const e: unknown = found[0];
  if (typeof e !== 'object' || e === null || !('event_payload' in e) || typeof e.event_payload !== 'string') throw new Error('no payload');
  return e.event_payload;
}

let dir: string;
let sim: RunningSimulator;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'okdsim-'));
  sim = await startSimulator({
    socketPath: join(dir, 'dstack.sock'),
    tcp: { port: 0 },
    appKeys: { json: readFileSync(join(VECTORS, 'dstack_sim_appkeys.json'), 'utf8'), appId: APP_ID },
  });
});

afterAll(async () => {
  await sim.close();
  rmSync(dir, { recursive: true, force: true });
});

describe.each(['unix', 'tcp'] as const)('DstackClient over %s', (kind) => {
  const client = (): DstackClient => new DstackClient(kind === 'unix' ? sim.socketPath : sim.httpUrl);

  it('getKey secp256k1: key is HKDF(app key, path) and the chain recovers to app root and KMS root', async () => {
    const r = await client().getKey('/test/path', 'test-purpose', 'secp256k1');
    const expectedKey = new Uint8Array(hkdfSync('sha256', unhex(APP_K256), utf8('RATLS'), utf8('/test/path'), 32));
    expect(hex(r.key)).toBe(hex(expectedKey));
    expect(r.signature_chain).toHaveLength(2);
    const [c0, c1] = r.signature_chain;
    if (c0 === undefined || c1 === undefined) throw new Error('chain');
    const pub = hex(secp256k1.getPublicKey(r.key, true));
    expect(recover(c0, utf8(`test-purpose:${pub}`))).toBe(APP_ROOT_PUB);
    expect(recover(c1, new Uint8Array([...utf8('dstack-kms-issued:'), ...unhex(APP_ID), ...unhex(APP_ROOT_PUB)]))).toBe(KMS_ROOT_PUB);
    expect(hex(sim.kmsRootPublicKey)).toBe(KMS_ROOT_PUB);
  });

  it('getKey ed25519 (goes through /Version first): chain[0] covers the ed25519 public key', async () => {
    const r = await client().getKey('/sealing', 'seal', 'ed25519');
    const expectedKey = new Uint8Array(hkdfSync('sha256', unhex(APP_K256), utf8('RATLS'), utf8('/sealing'), 32));
    expect(hex(r.key)).toBe(hex(expectedKey));
    // ed25519 public key via node:crypto from the 32-byte seed (PKCS#8 prefix for Ed25519).
    const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(r.key)]);
    const spki = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' });
    const edPub = spki.subarray(spki.length - 32).toString('hex');
    const [c0] = r.signature_chain;
    if (c0 === undefined) throw new Error('chain');
    expect(recover(c0, utf8(`seal:${edPub}`))).toBe(APP_ROOT_PUB);
  });

  it('info: identity, measurements and event log agree', async () => {
    const info = await client().info();
    expect(info.app_id).toBe(APP_ID);
    expect(info.instance_id).toMatch(/^[0-9a-f]{40}$/);
    const kp: unknown = JSON.parse(info.key_provider_info);
    expect(kp).toEqual({ name: 'openkey-dev-simulator', id: KMS_ROOT_PUB });
    const tcb = info.tcb_info;
    expect(info.compose_hash).toBe(createHash('sha256').update(tcb.app_compose).digest('hex'));
    expect(tcb.compose_hash).toBe(info.compose_hash);
    expect(tcb.os_image_hash).toBe(info.os_image_hash);
    expect(tcb.device_id).toBe(info.device_id);
    expect(tcb.mr_aggregated).toBe(info.mr_aggregated);
    for (const i of [0, 1, 2, 3] as const) expect(replay(tcb.event_log, i)).toBe(tcb[`rtmr${i}`]);
    expect(runtimePayload(tcb.event_log, 'app-id')).toBe(APP_ID);
    expect(runtimePayload(tcb.event_log, 'compose-hash')).toBe(info.compose_hash);
    expect(runtimePayload(tcb.event_log, 'instance-id')).toBe(info.instance_id);
    expect(runtimePayload(tcb.event_log, 'os-image-hash')).toBe(info.os_image_hash);
    expect(Buffer.from(runtimePayload(tcb.event_log, 'key-provider'), 'hex').toString()).toBe(info.key_provider_info);
    // mr_aggregated = sha256(mrtd ‖ rtmr0..3 ‖ mrconfigid ‖ mrowner ‖ mrownerconfig), MRCONFIGID v1 (§3.1).
    const mrConfigId = Buffer.concat([Buffer.from([1]), Buffer.from(info.compose_hash, 'hex'), Buffer.alloc(15)]);
    const agg = createHash('sha256')
      .update(Buffer.concat([...[tcb.mrtd, tcb.rtmr0, tcb.rtmr1, tcb.rtmr2, tcb.rtmr3].map((h) => Buffer.from(h, 'hex')), mrConfigId, Buffer.alloc(96)]))
      .digest('hex');
    expect(info.mr_aggregated).toBe(agg);
    const vm: unknown = JSON.parse(info.vm_config ?? '');
    expect(vm).toMatchObject({ os_image_hash: info.os_image_hash });
  });

  it('version', async () => {
    const v = await client().version();
    expect(v.version).toBe('0.5.8');
    expect(typeof v.rev).toBe('string');
  });
});

describe.each(['unix', 'tcp'] as const)('hostile requests over %s', (kind) => {
  const t = (): Target => targetOf(sim, kind);

  async function stillServes(): Promise<void> {
    const r = await raw(t(), 'POST', '/GetKey', JSON.stringify({ path: 'p', purpose: 'q' }), { 'Content-Type': 'application/json' });
    expect(r.status).toBe(200);
    const body: unknown = JSON.parse(r.body);
    expect(body).toMatchObject({ key: expect.stringMatching(/^[0-9a-f]{64}$/) });
  }

  const cases: [string, string, string, string | Buffer | undefined, number][] = [
    ['bad JSON', 'POST', '/GetKey', '{"path":', 400],
    ['JSON array', 'POST', '/GetKey', '[1,2]', 400],
    ['JSON string', 'POST', '/GetKey', '"x"', 400],
    ['invalid UTF-8', 'POST', '/GetKey', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 400],
    ['unsupported algorithm', 'POST', '/GetKey', JSON.stringify({ path: 'a', algorithm: 'rsa' }), 400],
    ['algorithm of wrong type', 'POST', '/GetKey', JSON.stringify({ path: 'a', algorithm: 1 }), 400],
    ['non-string path', 'POST', '/GetKey', JSON.stringify({ path: ['a'] }), 400],
    ['over-long path', 'POST', '/GetKey', JSON.stringify({ path: 'p'.repeat(1025) }), 400],
    ['over-long purpose', 'POST', '/GetKey', JSON.stringify({ path: 'p', purpose: 'é'.repeat(513) }), 400],
    ['oversized body', 'POST', '/GetKey', JSON.stringify({ path: 'a', pad: 'x'.repeat(70 * 1024) }), 400],
    ['unknown method', 'POST', '/Nope', '{}', 404],
    ['unknown prpc method', 'POST', '/prpc/Tappd.DeriveKey', '{}', 404],
    ['wrong HTTP method', 'PUT', '/GetKey', '{}', 405],
    ['over-long URL', 'GET', `/GetKey?path=${'a'.repeat(5000)}`, undefined, 414],
  ];

  it.each(cases)('%s → clean error, then still serving', async (_name, method, path, body, status) => {
    const r = await raw(t(), method, path, body, { 'Content-Type': 'application/json' });
    expect(r.status).toBe(status);
    expect(r.headers['content-length']).toBe(String(Buffer.byteLength(r.body)));
    expect(errorBody(r).length).toBeGreaterThan(0);
    await stillServes();
  });

  it('a lying Content-Length above the limit is refused before the body is read', async () => {
    const r = await raw(t(), 'POST', '/GetKey', '{}', { 'Content-Length': String(10 * 1024 * 1024) }).catch((e: unknown) => e);
    // The server answers 400 at once; the client may see the answer or a reset of its unfinished body.
    if (!(r instanceof Error)) {
      const resp: unknown = r;
      expect(resp).toMatchObject({ status: 400 });
    }
    await stillServes();
  });

  it('garbage that is not HTTP gets a 400 and does not kill the server', async () => {
    const target = t();
    const sock = 'socketPath' in target ? net.createConnection({ path: target.socketPath }) : net.createConnection(target);
    const reply = await new Promise<string>((resolve) => {
      let data = '';
      sock.on('data', (c: Buffer) => (data += c.toString()));
      sock.on('close', () => resolve(data));
      sock.on('error', () => resolve(data));
      sock.write('\x00\x01 not http at all\r\n\r\n');
    });
    expect(reply.startsWith('HTTP/1.1 400')).toBe(true);
    await stillServes();
  });

  it('GET with query parameters answers like POST, with Content-Length and no chunking', async () => {
    const g = await raw(t(), 'GET', '/GetKey?path=%2Ftest%2Fpath&purpose=test-purpose');
    const p = await raw(t(), 'POST', '/GetKey', JSON.stringify({ path: '/test/path', purpose: 'test-purpose' }));
    expect(g.status).toBe(200);
    expect(g.body).toBe(p.body);
    expect(g.headers['transfer-encoding']).toBeUndefined();
    expect(g.headers['content-length']).toBe(String(Buffer.byteLength(g.body)));
  });

  it('/prpc aliases serve the same methods', async () => {
    const a = await raw(t(), 'POST', '/prpc/Worker.Version', '{}');
    const b = await raw(t(), 'POST', '/Version', '{}');
    expect(a.status).toBe(200);
    expect(a.body).toBe(b.body);
  });

  it('an empty POST body means {} (SDK isReachable, Info)', async () => {
    const r = await raw(t(), 'POST', '/Info');
    expect(r.status).toBe(200);
    expect(r.body).toContain(APP_ID);
  });
});

describe('lifecycle and encoding', () => {
  it('non-ASCII app metadata reaches the SDK intact over the unix socket (responses are ASCII JSON)', async () => {
    const d = mkdtempSync(join(tmpdir(), 'okdsim-'));
    const compose = JSON.stringify({ manifest_version: 2, name: 'clé-€-😀', runner: 'docker-compose' });
    const s = await startSimulator({ socketPath: join(d, 's.sock'), appCompose: compose });
    try {
      // Without ASCII escaping the SDK (which counts string chars against a byte Content-Length)
      // only finishes when the server's keep-alive timer closes the socket, seconds later.
      const t0 = Date.now();
      const info = await new DstackClient(s.socketPath).info();
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(info.app_name).toBe('clé-€-😀');
      const r = await raw({ socketPath: s.socketPath ?? '' }, 'POST', '/Info', '{}');
      expect(/^[\x00-\x7f]*$/.test(r.body)).toBe(true);
      expect(info.tcb_info.app_compose).toBe(compose);
    } finally {
      await s.close();
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('replaces a stale socket file, refuses a live socket and a regular file, removes its socket on close', async () => {
    const d = mkdtempSync(join(tmpdir(), 'okdsim-'));
    const p = join(d, 's.sock');
    try {
      // A stale socket: a child process binds it and is SIGKILLed, so nothing unlinks the file.
      const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(p)}, () => console.log('up'))`]);
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await exited;
      expect(existsSync(p)).toBe(true);
      const a = await startSimulator({ socketPath: p });
      expect((await raw({ socketPath: p }, 'POST', '/Version', '{}')).status).toBe(200);
      // A live socket is never taken over.
      await expect(startSimulator({ socketPath: p })).rejects.toMatchObject({ code: 'INTERNAL' });
      await a.close();
      expect(existsSync(p)).toBe(false);
      // A regular file is never deleted.
      writeFileSync(p, 'not a socket');
      await expect(startSimulator({ socketPath: p })).rejects.toMatchObject({ code: 'INTERNAL' });
      expect(readFileSync(p, 'utf8')).toBe('not a socket');
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('needs at least one listener', async () => {
    await expect(startSimulator({})).rejects.toMatchObject({ code: 'MISSING_FIELD' });
  });

  it('close() is idempotent', async () => {
    const s = await startSimulator({ tcp: { port: 0 } });
    await Promise.all([s.close(), s.close()]);
    await expect(raw(targetOf(s, 'tcp'), 'POST', '/Info', '{}')).rejects.toThrow();
  });
});
