// The `Tee` port on the dstack guest agent, through the real `DstackClient` of @phala/dstack-sdk
// (reference/attestation.md §1.4). Owns endpoint choice (explicit, never from the environment),
// a per-call deadline, and turning every SDK failure or malformed answer into TEE_UNAVAILABLE.
// The same code path talks to production dstack and to the project's simulator.

import { DstackClient } from '@phala/dstack-sdk';
import { isOpenKeyError, OpenKeyError } from '../core/errors.ts';
import { fromHex } from '../core/bytes.ts';
import type { Tee, TeeAppInfo, TeeDerivedKey, TeeKeyAlgorithm, TeeQuote } from '../core/ports.ts';

/** The production guest-agent socket (§1.1). */
export const DSTACK_DEFAULT_SOCKET = '/var/run/dstack.sock';

export const DEFAULT_TEE_TIMEOUT_MS = 10_000;

/** Bounds on GetKey inputs; appliance key paths are short fixed strings. */
export const MAX_TEE_KEY_PATH = 1024;

export interface DstackTeeOptions {
  /**
   * A unix-socket path or an http(s):// base URL (the SDK drops any path prefix of the URL).
   * Default DSTACK_DEFAULT_SOCKET. `DSTACK_SIMULATOR_ENDPOINT` is deliberately not consulted:
   * which TEE the appliance trusts is configuration, not ambient environment.
   */
  readonly endpoint?: string;
  /** Deadline per call in ms (the SDK's own is 30 s). Default DEFAULT_TEE_TIMEOUT_MS. */
  readonly timeoutMs?: number;
}

const ALGORITHMS: ReadonlySet<string> = new Set<TeeKeyAlgorithm>(['secp256k1', 'ed25519']);
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

function unavailable(detail: string, cause?: unknown): OpenKeyError {
  return new OpenKeyError('TEE_UNAVAILABLE', detail, cause === undefined ? undefined : { cause });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringField(r: Record<string, unknown>, name: string, op: string): string {
  const v = r[name];
  if (typeof v !== 'string') throw unavailable(`${op}: ${name} missing`);
  return v;
}

/**
 * Checks a key-path-like argument. The SDK's unix-socket client sends the JS string length as
 * Content-Length, so anything outside printable ASCII would be cut off on the wire (§1.4 quirks).
 */
function keyText(v: unknown, label: string): string {
  if (typeof v !== 'string') throw new OpenKeyError('MALFORMED_REQUEST', `${label}: not a string`);
  if (v.length > MAX_TEE_KEY_PATH) throw new OpenKeyError('PAYLOAD_TOO_LARGE', label);
  if (!PRINTABLE_ASCII.test(v)) throw new OpenKeyError('MALFORMED_REQUEST', `${label}: printable ASCII only`);
  return v;
}

/** Offset of REPORTDATA in a TDX quote: 568 in v4, 574 in v5 (§4.2, §4.4); undefined otherwise. */
function reportDataOffset(quote: Uint8Array): number | undefined {
  if (quote.length < 2) return undefined;
  const version = (quote[0] as number) | ((quote[1] as number) << 8);
  if (version === 4) return 568;
  if (version === 5) return 574;
  return undefined;
}

export class DstackTee implements Tee {
  readonly #endpoint: string;
  readonly #timeoutMs: number;
  #client: DstackClient | undefined;

  constructor(options: DstackTeeOptions = {}) {
    const endpoint = options.endpoint ?? DSTACK_DEFAULT_SOCKET;
    if (endpoint.length === 0) throw new OpenKeyError('MISSING_FIELD', 'tee endpoint');
    const timeoutMs = options.timeoutMs ?? DEFAULT_TEE_TIMEOUT_MS;
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new OpenKeyError('MALFORMED_REQUEST', 'tee timeout');
    this.#endpoint = endpoint;
    this.#timeoutMs = timeoutMs;
  }

  /** Created on first use: the SDK constructor throws if the socket is not there (yet). */
  #clientNow(): DstackClient {
    this.#client ??= new DstackClient(this.#endpoint);
    return this.#client;
  }

  /** One failure channel: any SDK throw, timeout or non-OpenKeyError becomes TEE_UNAVAILABLE. */
  async #call<T>(op: string, f: (c: DstackClient) => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(unavailable(`${op}: timed out`)), this.#timeoutMs);
      });
      return await Promise.race([f(this.#clientNow()), deadline]);
    } catch (e) {
      if (isOpenKeyError(e)) throw e;
      throw unavailable(`${op} failed`, e);
    } finally {
      clearTimeout(timer);
    }
  }

  async getKey(path: string, purpose: string, algorithm: TeeKeyAlgorithm): Promise<TeeDerivedKey> {
    const p = keyText(path, 'key path');
    const u = keyText(purpose, 'key purpose');
    if (!ALGORITHMS.has(algorithm)) throw new OpenKeyError('UNSUPPORTED_ALGORITHM', 'tee key algorithm');
    const r: unknown = await this.#call('getKey', (c) => c.getKey(p, u, algorithm));
    if (!isRecord(r)) throw unavailable('getKey: malformed response');
    const key = r['key'];
    const chain = r['signature_chain'];
    // The SDK decodes hex with Buffer.from(hex, 'hex'), which truncates garbage silently: lengths
    // are the only evidence the agent answered well-formed hex.
    if (!(key instanceof Uint8Array) || key.length !== 32) throw unavailable('getKey: bad key');
    if (!Array.isArray(chain) || chain.length !== 2) throw unavailable('getKey: bad signature chain');
    const signatureChain: Uint8Array[] = [];
    for (const s of chain) {
      if (!(s instanceof Uint8Array) || s.length !== 65) throw unavailable('getKey: bad signature chain');
      signatureChain.push(Uint8Array.from(s));
    }
    const out = Uint8Array.from(key);
    key.fill(0); // the SDK's copy is ours alone; do not leave it for the GC
    return { key: out, signatureChain };
  }

  async info(): Promise<TeeAppInfo> {
    const r: unknown = await this.#call('info', (c) => c.info());
    if (!isRecord(r)) throw unavailable('info: malformed response');
    // The SDK has already JSON-parsed tcb_info; the port carries it as text again.
    const tcb = r['tcb_info'];
    if (!isRecord(tcb)) throw unavailable('info: tcb_info missing');
    const appId = stringField(r, 'app_id', 'info');
    if (!/^[0-9a-fA-F]{40}$/.test(appId)) throw unavailable('info: bad app_id');
    return {
      appId,
      instanceId: stringField(r, 'instance_id', 'info'),
      composeHash: stringField(r, 'compose_hash', 'info'),
      osImageHash: stringField(r, 'os_image_hash', 'info'),
      keyProviderInfo: stringField(r, 'key_provider_info', 'info'),
      appName: stringField(r, 'app_name', 'info'),
      deviceId: stringField(r, 'device_id', 'info'),
      mrAggregated: stringField(r, 'mr_aggregated', 'info'),
      tcbInfo: JSON.stringify(tcb),
    };
  }

  async quote(reportData: Uint8Array): Promise<TeeQuote> {
    if (!(reportData instanceof Uint8Array)) throw new OpenKeyError('MALFORMED_REQUEST', 'report data: not bytes');
    if (reportData.length > 64) throw new OpenKeyError('PAYLOAD_TOO_LARGE', 'report data > 64 bytes');
    // Bytes, not a string: the SDK hex-encodes a string's UTF-8 text (§0 item 1).
    const rd = Uint8Array.from(reportData);
    const r: unknown = await this.#call('quote', (c) => c.getQuote(rd));
    if (!isRecord(r)) throw unavailable('quote: malformed response');
    const quote = fromHex(stringField(r, 'quote', 'quote'), 'TEE_UNAVAILABLE', 'quote');
    const eventLog = stringField(r, 'event_log', 'quote');
    const vm = r['vm_config'];
    if (vm !== undefined && typeof vm !== 'string') throw unavailable('quote: bad vm_config');
    // The guest agent right-pads report_data to 64 bytes (§1.2); a quote carrying anything else
    // is not an answer to this request.
    const off = reportDataOffset(quote);
    if (off === undefined || quote.length < off + 64) throw unavailable('quote: not a TDX v4/v5 quote');
    const got = quote.subarray(off, off + 64);
    const want = new Uint8Array(64);
    want.set(rd);
    for (let i = 0; i < 64; i++) if (got[i] !== want[i]) throw unavailable('quote: report_data mismatch');
    return { quote, eventLog, vmConfig: vm ?? '' };
  }
}

export function createDstackTee(options: DstackTeeOptions = {}): Tee {
  return new DstackTee(options);
}
