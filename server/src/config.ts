// Configuration from the environment, validated once at start-up. Every setting has a safe
// default; the development defaults (embedded simulator, open registration) are chosen only when
// no real TEE is configured, and production (OPENKEY_TEE=dstack) defaults to admin registration.

import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { fromHex } from './core/bytes.ts';
import type { PrincipalAlgorithm } from './core/ports.ts';
import type { RegistrationMode } from './core/principals.ts';

/**
 * V8 flags every serving process runs with. `npm start` passes them on its command line (V8 reads
 * them when the heap is created, not later), cluster workers get them from the primary, and the
 * benchmark starts the appliance with them. A 64 MiB semi-space (V8's default is 16 MiB) lets a
 * busy process scavenge a quarter as often: each call allocates tens of short-lived objects, and the
 * collector's share of a signing core fell from about 13 % to 9 %. Memory stays bounded: the new
 * space grows to at most 128 MiB per process (two semi-spaces) instead of 32 MiB.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];

/**
 * The arguments after `node [flags]` that run the appliance as `npm start` does: its TypeScript
 * compiled as it loads by server/boot/register.mjs (esbuild, without tsx's keepNames wrappers),
 * then server/src/main.ts. Absolute, so they work from any directory.
 */
export const SERVER_ARGS: readonly string[] = [
  '--import',
  new URL('../boot/register.mjs', import.meta.url).href,
  fileURLToPath(new URL('./main.ts', import.meta.url)),
];

/** `args` (a process's execArgv) with every NODE_FLAGS flag that is not already set. */
export function withNodeFlags(args: readonly string[]): string[] {
  const name = (flag: string): string => flag.split('=')[0] as string;
  const set = new Set(args.map(name));
  return [...args, ...NODE_FLAGS.filter((f) => !set.has(name(f)))];
}

export interface AdminKey {
  readonly algorithm: PrincipalAlgorithm;
  readonly publicKey: Uint8Array;
}

export type TeeConfig =
  | { readonly kind: 'simulator'; readonly dir: string }
  | { readonly kind: 'dstack'; readonly endpoint: string };

export interface Config {
  readonly dataDir: string;
  readonly host: string;
  readonly connectPort: number;
  readonly grpcPort: number;
  readonly tee: TeeConfig;
  readonly registration: RegistrationMode;
  readonly adminKeys: readonly AdminKey[];
  readonly stampWindowMs: number;
  readonly logLevel: string;
  /** Current sealing-key version: new blobs use it; versions 1..current can unseal. */
  readonly sealingVersion: number;
  readonly keyCacheEntries: number;
  readonly keyCacheTtlMs: number;
  readonly maxRequestBytes: number;
  /** PCCS or Intel PCS base URL for collateral shipped with Attest (production; optional). */
  readonly pccsUrl: string | undefined;
  readonly callTimeoutMs: number;
  /** Calls in progress across all listeners before new ones get RESOURCE_EXHAUSTED. */
  readonly maxInFlight: number;
  /** WebAuthn relying party: passkeys are bound to this domain. */
  readonly rpId: string;
  readonly rpName: string;
  /** Origins allowed in passkey ceremonies; undefined = http://localhost:<Connect port>. */
  readonly origins: readonly string[] | undefined;
  readonly sessionTtlMs: number;
  /** Service sessions (PrincipalService.OpenSession): default and longest lifetime, and bounds. */
  readonly serviceSessionTtlMs: number;
  readonly serviceSessionMaxTtlMs: number;
  readonly maxServiceSessions: number;
  readonly maxServiceSessionsPerPrincipal: number;
  /** Records in the store's write-through read cache (principals, keys, policies, counters). */
  readonly storeCacheEntries: number;
  /** Who may export the audit log: any authenticated principal, or administrators only. */
  readonly auditReaders: 'any' | 'admin';
  /** JSON file of named verifier policies TEE backends must satisfy to receive delegations. */
  readonly delegatePoliciesFile: string | undefined;
  /** The SIWE `domain` of delegations the appliance signs; default the relying-party id. */
  readonly siweDomain: string;
  /** Serve the passkey web page (clients/web) at / on the Connect port. */
  readonly webPage: boolean;
  /**
   * Processes that serve calls (server/src/cluster). 1: one process does everything. n ≥ 2: n
   * workers share the listening ports and one owner process holds the store and service sessions.
   */
  readonly workers: number;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Env = Readonly<Record<string, string | undefined>>;

function int(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  if (!/^[0-9]+$/.test(raw)) throw new ConfigError(`${name} must be an integer`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}`);
  return n;
}

function parseAdminKeys(raw: string | undefined): AdminKey[] {
  if (raw === undefined || raw.trim() === '') return [];
  return raw.split(',').map((item) => {
    const [alg, hex] = item.trim().split(':');
    if ((alg !== 'ed25519' && alg !== 'p256') || hex === undefined) {
      throw new ConfigError('OPENKEY_ADMIN_KEYS entries look like ed25519:<hex> or p256:<hex>');
    }
    try {
      return { algorithm: alg, publicKey: fromHex(hex) };
    } catch {
      throw new ConfigError('OPENKEY_ADMIN_KEYS: public key is not hex');
    }
  });
}

export function loadConfig(env: Env = process.env): Config {
  const dataDir = env['OPENKEY_DATA_DIR'] || './data';
  const teeKind = env['OPENKEY_TEE'] || 'simulator';
  let tee: TeeConfig;
  if (teeKind === 'simulator') tee = { kind: 'simulator', dir: `${dataDir}/simulator` };
  else if (teeKind === 'dstack') tee = { kind: 'dstack', endpoint: env['DSTACK_ENDPOINT'] || '/var/run/dstack.sock' };
  else throw new ConfigError('OPENKEY_TEE must be "simulator" or "dstack"');
  const registration = env['OPENKEY_REGISTRATION'] || (tee.kind === 'simulator' ? 'open' : 'admin');
  if (registration !== 'open' && registration !== 'admin') throw new ConfigError('OPENKEY_REGISTRATION must be "open" or "admin"');
  const adminKeys = parseAdminKeys(env['OPENKEY_ADMIN_KEYS']);
  if (registration === 'admin' && adminKeys.length === 0) {
    throw new ConfigError('OPENKEY_REGISTRATION=admin needs at least one key in OPENKEY_ADMIN_KEYS');
  }
  return {
    dataDir,
    host: env['OPENKEY_HOST'] || '127.0.0.1',
    connectPort: int(env, 'OPENKEY_CONNECT_PORT', 8080, 0, 65535),
    grpcPort: int(env, 'OPENKEY_GRPC_PORT', 8081, 0, 65535),
    tee,
    registration,
    adminKeys,
    stampWindowMs: int(env, 'OPENKEY_STAMP_WINDOW_MS', 60_000, 1_000, 600_000),
    logLevel: env['OPENKEY_LOG_LEVEL'] || 'info',
    sealingVersion: int(env, 'OPENKEY_SEALING_VERSION', 1, 1, 1000),
    keyCacheEntries: int(env, 'OPENKEY_KEY_CACHE_ENTRIES', 1024, 0, 1_000_000),
    keyCacheTtlMs: int(env, 'OPENKEY_KEY_CACHE_TTL_MS', 300_000, 0, 86_400_000),
    pccsUrl: env['OPENKEY_PCCS_URL'] || undefined,
    maxRequestBytes: int(env, 'OPENKEY_MAX_REQUEST_BYTES', 1024 * 1024, 1024, 16 * 1024 * 1024),
    callTimeoutMs: int(env, 'OPENKEY_CALL_TIMEOUT_MS', 10_000, 100, 600_000),
    maxInFlight: int(env, 'OPENKEY_MAX_IN_FLIGHT', 1024, 1, 1_000_000),
    rpId: rpId(env['OPENKEY_RP_ID'] || 'localhost'),
    rpName: env['OPENKEY_RP_NAME'] || 'OpenKey appliance',
    origins: origins(env['OPENKEY_ORIGINS']),
    sessionTtlMs: int(env, 'OPENKEY_SESSION_TTL_MS', 15 * 60_000, 10_000, 24 * 3_600_000),
    serviceSessionTtlMs: int(env, 'OPENKEY_SERVICE_SESSION_TTL_MS', 10 * 60_000, 1_000, 24 * 3_600_000),
    serviceSessionMaxTtlMs: int(env, 'OPENKEY_SERVICE_SESSION_MAX_TTL_MS', 3_600_000, 1_000, 24 * 3_600_000),
    maxServiceSessions: int(env, 'OPENKEY_MAX_SERVICE_SESSIONS', 4096, 0, 1_000_000),
    maxServiceSessionsPerPrincipal: int(env, 'OPENKEY_MAX_SERVICE_SESSIONS_PER_PRINCIPAL', 64, 1, 1_000_000),
    storeCacheEntries: int(env, 'OPENKEY_STORE_CACHE_ENTRIES', 20_000, 0, 10_000_000),
    delegatePoliciesFile: env['OPENKEY_DELEGATE_POLICIES'] || undefined,
    siweDomain: siweDomain(env['OPENKEY_SIWE_DOMAIN'] || env['OPENKEY_RP_ID'] || 'localhost'),
    auditReaders: auditReaders(env['OPENKEY_AUDIT_READERS'] || (tee.kind === 'simulator' ? 'any' : 'admin')),
    webPage: onOff(env, 'OPENKEY_WEB_PAGE', true),
    workers: workers(env['OPENKEY_WORKERS']),
  };
}

/** OPENKEY_WORKERS: a count, or "auto" (the default): one per core the process may use. */
function workers(raw: string | undefined): number {
  if (raw === undefined || raw === '' || raw === 'auto') return Math.max(1, Math.min(64, availableParallelism()));
  if (!/^[0-9]+$/.test(raw) || Number(raw) < 1 || Number(raw) > 64) throw new ConfigError('OPENKEY_WORKERS must be "auto" or an integer between 1 and 64');
  return Number(raw);
}

function rpId(v: string): string {
  if (!/^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(v)) throw new ConfigError('OPENKEY_RP_ID must be a lowercase domain name, e.g. keys.example.com');
  return v;
}

function origins(v: string | undefined): readonly string[] | undefined {
  if (v === undefined || v.trim() === '') return undefined;
  const list = v.split(',').map((o) => o.trim());
  for (const o of list) {
    let u: URL;
    try {
      u = new URL(o);
    } catch {
      throw new ConfigError(`OPENKEY_ORIGINS: ${o} is not a URL`);
    }
    if (u.origin !== o) throw new ConfigError(`OPENKEY_ORIGINS: ${o} is not an origin (scheme://host[:port], no path)`);
  }
  return list;
}

function onOff(env: Env, name: string, def: boolean): boolean {
  const v = env[name];
  if (v === undefined || v === '') return def;
  if (v !== 'on' && v !== 'off') throw new ConfigError(`${name} must be "on" or "off"`);
  return v === 'on';
}

function auditReaders(v: string): 'any' | 'admin' {
  if (v !== 'any' && v !== 'admin') throw new ConfigError('OPENKEY_AUDIT_READERS must be "any" or "admin"');
  return v;
}

function siweDomain(v: string): string {
  if (!/^[A-Za-z0-9.-]+(:[0-9]{1,5})?$/.test(v)) throw new ConfigError('OPENKEY_SIWE_DOMAIN must be host[:port]');
  return v;
}
