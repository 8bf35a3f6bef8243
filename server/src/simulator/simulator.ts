// The project's dstack guest-agent simulator: resolves its identity (dev seed or dstack appkeys),
// implements the guest-agent methods on top of keys.ts / platform.ts / mock-attestation.ts, and
// serves them over a unix socket and/or TCP with the real wire protocol (wire.ts), so
// `@phala/dstack-sdk` runs unchanged. DEV ONLY: everything it attests to is made up, and it says so
// (key provider "openkey-dev-simulator", quotes that chain only to a MOCK Intel root).

import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type * as http from 'node:http';
import { OpenKeyError } from '../core/errors.ts';
import { fromHex, toHex, utf8 } from '../core/bytes.ts';
import { appKeysFromDstackJson, deriveGetKey, devKmsRoot, issueAppKey, type AppKeyMaterial, type SimKeyAlgorithm } from './keys.ts';
import { buildPlatform, DEV_OS_IMAGE_HASH, tcbInfoJson, type SimulatedPlatform } from './platform.ts';
import { createMockAttestation, type DevQuoteCollateral, type MockAttestation } from './mock-attestation.ts';
import {
  closeServer,
  createRpcListener,
  createRpcServer,
  DEFAULT_WIRE_LIMITS,
  listen,
  prepareSocketPath,
  type RpcHandler,
  type RpcParams,
  type WireLimits,
} from './wire.ts';

/** Key provider name in Info and the RTMR3 `key-provider` event. No production policy should accept it. */
export const DEV_KEY_PROVIDER_NAME = 'openkey-dev-simulator';

/** The default dev seed. Public on purpose: dev keys are not secrets. */
export const DEV_DEFAULT_SEED: Uint8Array = utf8('openkey-dev-simulator default seed v1');

/** The guest-agent version this simulator speaks (OS ≥ 0.5.7 has /Version, reference §1.2). */
export const SIMULATED_AGENT_VERSION = '0.5.8';

export const DEV_APP_COMPOSE = JSON.stringify({
  manifest_version: 2,
  name: 'openkey-appliance-dev',
  runner: 'docker-compose',
  docker_compose_file: '# openkey-dev-simulator: development only, nothing here is measured\n',
  kms_enabled: true,
  key_provider: 'kms',
  gateway_enabled: false,
  public_logs: false,
  public_sysinfo: false,
  public_tcbinfo: true,
  allowed_envs: [],
  no_instance_id: false,
  secure_time: false,
});

/** Bounds on GetKey inputs (dstack has none; ours keep a hostile caller from costing much). */
export const MAX_KEY_PATH_BYTES = 1024;
export const MAX_KEY_PURPOSE_BYTES = 1024;

export interface SimulatorIdentityOptions {
  /** Dev seed; derives the KMS root, instance id and PPID. Default DEV_DEFAULT_SEED. */
  readonly seed?: Uint8Array;
  /**
   * dstack simulator `appkeys.json` text and the app id it belongs to: GetKey then uses exactly that
   * key material (reproduces dstack's own simulator). Otherwise the seed's dev KMS root issues the key.
   */
  readonly appKeys?: { readonly json: string; readonly appId: string };
  /** App id (hex, 20 bytes) in seed mode. Default sha256(app-compose)[:20], dstack's rule without a pinned id. */
  readonly appId?: string;
  /** The exact app-compose.json text. Default DEV_APP_COMPOSE. */
  readonly appCompose?: string;
}

export interface SimulatorOptions extends SimulatorIdentityOptions {
  /** Unix socket to listen on (a stale socket file there is replaced; a live one is an error). */
  readonly socketPath?: string;
  /** TCP listener. Host defaults to 127.0.0.1; port 0 picks a free port. */
  readonly tcp?: { readonly host?: string; readonly port: number };
  readonly limits?: Partial<WireLimits>;
  /** Wall clock in ms for the dev collateral's validity window. Default Date.now. */
  readonly now?: () => number;
}

export interface SimulatorState {
  readonly keys: AppKeyMaterial;
  readonly platform: SimulatedPlatform;
  readonly attestation: MockAttestation;
}

export interface RunningSimulator {
  readonly socketPath?: string;
  /** e.g. http://127.0.0.1:8090 */
  readonly httpUrl?: string;
  /** Compressed secp256k1 public key of the (dev or appkeys) KMS root that signs chain[1]. */
  readonly kmsRootPublicKey: Uint8Array;
  /** hex, 20 bytes, no 0x. */
  readonly appId: string;
  /** DEV ONLY: DER of the mock Intel SGX root CA that the simulator's quotes chain to. */
  readonly mockRootCaDer: Uint8Array;
  /** DEV ONLY: collateral for the simulator's quotes, valid around `nowMs` (default: the clock). */
  collateral(nowMs?: number): DevQuoteCollateral;
  close(): Promise<void>;
}

function subSeed(seed: Uint8Array, label: string): Uint8Array {
  return hkdf(sha256, seed, utf8('openkey-dev-simulator'), utf8(label), 32);
}

/** Builds the simulator's keys, measured platform and mock attestation from its options. No I/O. */
export function buildSimulatorState(o: SimulatorIdentityOptions = {}): SimulatorState {
  const seed = o.seed ?? DEV_DEFAULT_SEED;
  if (seed.length === 0) throw new OpenKeyError('MISSING_FIELD', 'seed');
  const appCompose = o.appCompose ?? DEV_APP_COMPOSE;
  let keys: AppKeyMaterial;
  if (o.appKeys !== undefined) {
    if (o.appId !== undefined) throw new OpenKeyError('MALFORMED_REQUEST', 'appId and appKeys.appId are exclusive');
    keys = appKeysFromDstackJson(o.appKeys.json, o.appKeys.appId);
  } else {
    const appId =
      o.appId !== undefined
        ? fromHex(o.appId, 'MALFORMED_REQUEST', 'app id')
        : sha256(utf8(appCompose)).subarray(0, 20);
    if (appId.length !== 20) throw new OpenKeyError('MALFORMED_REQUEST', 'app id must be 20 bytes');
    keys = issueAppKey(devKmsRoot(seed), appId);
  }
  // instance id = sha256(instance seed ‖ app id)[:20], as dstack derives it (§3.2 item 6).
  const instanceId = sha256(Uint8Array.from([...subSeed(seed, 'instance-id-seed'), ...keys.appId])).subarray(0, 20);
  const ppid = subSeed(seed, 'ppid').subarray(0, 16);
  const platform = buildPlatform({
    appId: keys.appId,
    instanceId,
    appCompose,
    osImageHash: DEV_OS_IMAGE_HASH,
    keyProvider: { name: DEV_KEY_PROVIDER_NAME, id: toHex(keys.kmsRootPublicKey) },
    ppid,
  });
  return { keys, platform, attestation: createMockAttestation({ seed, ppid }) };
}

function optionalString(params: RpcParams, name: string, maxBytes: number): string {
  const v = params[name];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new OpenKeyError('MALFORMED_REQUEST', `${name} must be a string`);
  if (Buffer.byteLength(v) > maxBytes) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `${name} longer than ${maxBytes} bytes`);
  return v;
}

/** dstack GetKey accepts "secp256k1", "k256" or "" for secp256k1, and "ed25519" (§1.2). */
function parseAlgorithm(params: RpcParams): SimKeyAlgorithm {
  const v = params['algorithm'];
  if (v === undefined || v === null || v === '' || v === 'secp256k1' || v === 'k256') return 'secp256k1';
  if (v === 'ed25519') return 'ed25519';
  throw new OpenKeyError('UNSUPPORTED_ALGORITHM', 'unsupported algorithm');
}

/** GetQuote report_data: hex, at most 64 bytes; the agent right-pads it with zeros (§1.2). */
function parseReportData(params: RpcParams): Uint8Array {
  const v = optionalString(params, 'report_data', 1024);
  const rd = fromHex(v, 'MALFORMED_REQUEST', 'report_data');
  if (rd.length > 64) throw new OpenKeyError('PAYLOAD_TOO_LARGE', 'report_data longer than 64 bytes');
  const padded = new Uint8Array(64);
  padded.set(rd);
  return padded;
}

/** The guest-agent methods (§1.2) for a state, keyed by method name. */
export function simulatorMethods(state: SimulatorState): ReadonlyMap<string, RpcHandler> {
  const { keys, platform, attestation } = state;
  const eventLogText = JSON.stringify(platform.eventLog);
  const info = {
    app_id: toHex(platform.appId),
    instance_id: toHex(platform.instanceId),
    app_cert: '',
    tcb_info: tcbInfoJson(platform),
    app_name: platform.appName,
    device_id: toHex(platform.deviceId),
    mr_aggregated: toHex(platform.mrAggregated),
    os_image_hash: toHex(platform.osImageHash),
    key_provider_info: platform.keyProviderInfo,
    compose_hash: toHex(platform.composeHash),
    vm_config: platform.vmConfig,
    cloud_vendor: 'openkey-dev-simulator',
    cloud_product: 'openkey-dev-simulator',
  };
  const version = { version: SIMULATED_AGENT_VERSION, rev: 'openkey-dev-simulator' };
  return new Map<string, RpcHandler>([
    [
      'GetKey',
      (params) => {
        const path = optionalString(params, 'path', MAX_KEY_PATH_BYTES);
        const purpose = optionalString(params, 'purpose', MAX_KEY_PURPOSE_BYTES);
        const d = deriveGetKey(keys, path, purpose, parseAlgorithm(params));
        return { key: toHex(d.key), signature_chain: d.signatureChain.map(toHex) };
      },
    ],
    [
      'GetQuote',
      (params) => {
        const rd = parseReportData(params);
        return {
          quote: toHex(attestation.quote(platform, rd)),
          event_log: eventLogText,
          report_data: toHex(rd),
          vm_config: platform.vmConfig,
        };
      },
    ],
    ['Info', () => info],
    ['Version', () => version],
  ]);
}

/**
 * DEV-ONLY routes, outside the guest-agent API: the mock Intel root and matching collateral, so a
 * dev client can verify simulator quotes. A real guest agent has no such endpoints; a verifier
 * must accept this root only under an explicitly dangerous option.
 */
export function devAttestationRoutes(attestation: MockAttestation, now: () => number): ReadonlyMap<string, RpcHandler> {
  const root = {
    warning: 'DEV ONLY: mock Intel SGX root CA of the OpenKey dstack simulator; never trust it in production',
    der: toHex(attestation.rootCaDer),
  };
  return new Map<string, RpcHandler>([
    ['/openkey/dev/root-ca', () => root],
    ['/openkey/dev/collateral', () => attestation.collateral(now())],
  ]);
}

/** Route table: `/Method`, `/prpc/Method`, and the Worker aliases for Info and Version (§1.1). */
export function simulatorRoutes(methods: ReadonlyMap<string, RpcHandler>): ReadonlyMap<string, RpcHandler> {
  const routes = new Map<string, RpcHandler>();
  for (const [name, h] of methods) {
    routes.set(`/${name}`, h);
    routes.set(`/prpc/${name}`, h);
    if (name === 'Info' || name === 'Version') routes.set(`/prpc/Worker.${name}`, h);
  }
  return routes;
}

/** Starts the simulator on a unix socket, a TCP port, or both. */
export async function startSimulator(options: SimulatorOptions): Promise<RunningSimulator> {
  if (options.socketPath === undefined && options.tcp === undefined) {
    throw new OpenKeyError('MISSING_FIELD', 'socketPath or tcp');
  }
  const state = buildSimulatorState(options);
  const limits: WireLimits = { ...DEFAULT_WIRE_LIMITS, ...options.limits };
  const now = options.now ?? Date.now;
  const routes = new Map([...simulatorRoutes(simulatorMethods(state)), ...devAttestationRoutes(state.attestation, now)]);
  const listener = createRpcListener(routes, limits);
  const servers: http.Server[] = [];
  const closeAll = async (): Promise<void> => {
    await Promise.all(servers.map(closeServer));
  };
  let socketPath: string | undefined;
  let httpUrl: string | undefined;
  try {
    if (options.socketPath !== undefined) {
      await prepareSocketPath(options.socketPath);
      const s = createRpcServer(listener);
      servers.push(s);
      await listen(s, { path: options.socketPath });
      socketPath = options.socketPath;
    }
    if (options.tcp !== undefined) {
      const host = options.tcp.host ?? '127.0.0.1';
      const s = createRpcServer(listener);
      servers.push(s);
      await listen(s, { host, port: options.tcp.port });
      const addr = s.address();
      if (addr === null || typeof addr === 'string') throw new OpenKeyError('INTERNAL', 'tcp listener has no address');
      httpUrl = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
    }
  } catch (e) {
    await closeAll().catch(() => undefined); // already failing; the original error is the one to report
    throw e;
  }
  let closed: Promise<void> | undefined;
  return {
    ...(socketPath !== undefined ? { socketPath } : {}),
    ...(httpUrl !== undefined ? { httpUrl } : {}),
    kmsRootPublicKey: Uint8Array.from(state.keys.kmsRootPublicKey),
    appId: toHex(state.keys.appId),
    mockRootCaDer: Uint8Array.from(state.attestation.rootCaDer),
    collateral: (nowMs?: number) => state.attestation.collateral(nowMs ?? now()),
    close: () => (closed ??= closeAll()),
  };
}
