// The dstack application identity carried by RTMR3 runtime events (reference §3.2, §3.3 step 5):
// app-id, compose-hash, instance-id, os-image-hash and key-provider, read from the events before
// `system-ready` (the ones dstack itself emitted). Later events are the application's own. Only
// meaningful once RTMR3 has been replayed and matched against the quote.

import { fromUtf8, isAllZero, bytesEqual, concatBytes, fromHex, toHex } from '../bytes.ts';
import { keccak_256 } from '../crypto.ts';
import { VerifierError, ensure } from '../errors.ts';
import { asObject, getString, parseJsonText } from '../json.ts';
import { isRuntimeEvent, type TdxEvent } from './event-log.ts';

const SYSTEM_READY = 'system-ready';
/** dstack system events that occur at most once before system-ready. */
const SINGLE_EVENTS = new Set([
  'system-preparing',
  'app-id',
  'compose-hash',
  'instance-id',
  'boot-mr-done',
  'os-image-hash',
  'key-provider',
  'storage-fs',
  'gpu-policy-hash',
]);

export interface KeyProviderInfo {
  /** e.g. "kms", "local-sgx", "tpm", "none". */
  readonly name: string;
  /** Provider id as dstack writes it (hex: the KMS CA SPKI DER, or the local-sgx MR enclave). */
  readonly id: string;
}

export interface AppEvent {
  readonly name: string;
  readonly payload: Uint8Array;
}

export interface AppIdentity {
  readonly appId: Uint8Array; // 20
  readonly composeHash: Uint8Array; // 32
  /** 20 bytes, or undefined when the app runs without an instance id. */
  readonly instanceId: Uint8Array | undefined;
  /** 32 bytes; absent in older dstack releases (v0.5.x local-sgx). */
  readonly osImageHash: Uint8Array | undefined;
  readonly keyProvider: KeyProviderInfo | undefined;
  /** Runtime events after system-ready, in order: emitted by the application, not by dstack. */
  readonly appEvents: readonly AppEvent[];
}

function parseKeyProvider(payload: Uint8Array): KeyProviderInfo {
  const code = 'EVENT_LOG_MALFORMED';
  const o = asObject(parseJsonText(fromUtf8(payload, code), code, 64 * 1024), code, 'key-provider');
  return { name: getString(o, 'name', code, 64), id: getString(o, 'id', code, 4096) };
}

function sized(e: TdxEvent, lengths: readonly number[]): Uint8Array {
  ensure(lengths.includes(e.payload.length), 'EVENT_LOG_MALFORMED', `${e.event} payload length`);
  return e.payload;
}

/**
 * Extracts the app identity from a parsed event log (RTMR3 runtime events). Requires
 * `system-ready`, one `app-id` and one `compose-hash`; a repeated system event before
 * system-ready is refused (dstack emits each once).
 */
export function extractAppIdentity(events: readonly TdxEvent[]): AppIdentity {
  const runtime = events.filter((e) => e.imr === 3 && isRuntimeEvent(e));
  const ready = runtime.findIndex((e) => e.event === SYSTEM_READY);
  ensure(ready >= 0, 'APP_IDENTITY_INCOMPLETE', 'no system-ready event');
  const found = new Map<string, TdxEvent>();
  for (const e of runtime.slice(0, ready)) {
    if (!SINGLE_EVENTS.has(e.event)) continue;
    ensure(!found.has(e.event), 'APP_IDENTITY_INCOMPLETE', `duplicate ${e.event}`);
    found.set(e.event, e);
  }
  const appIdEvent = found.get('app-id');
  const composeEvent = found.get('compose-hash');
  ensure(appIdEvent !== undefined && composeEvent !== undefined, 'APP_IDENTITY_INCOMPLETE', 'app-id or compose-hash missing');
  const instance = found.get('instance-id');
  const osImage = found.get('os-image-hash');
  const kp = found.get('key-provider');
  const instanceId = instance === undefined ? undefined : sized(instance, [0, 20]);
  return {
    appId: sized(appIdEvent, [20]),
    composeHash: sized(composeEvent, [32]),
    instanceId: instanceId === undefined || instanceId.length === 0 ? undefined : instanceId,
    osImageHash: osImage === undefined ? undefined : sized(osImage, [32]),
    keyProvider: kp === undefined ? undefined : parseKeyProvider(kp.payload),
    appEvents: runtime.slice(ready + 1).map((e) => ({ name: e.event, payload: e.payload })),
  };
}

/** dstack's key-provider kind byte (`mr_config.rs`). */
function keyProviderKind(name: string | undefined): number {
  switch (name) {
    case undefined:
    case 'none':
      return 0;
    case 'local-sgx':
    case 'local':
      return 1;
    case 'kms':
      return 2;
    case 'tpm':
      return 3;
    default:
      throw new VerifierError('MR_CONFIG_ID_MISMATCH', `unknown key provider ${name}`);
  }
}

/**
 * MRCONFIGID consistency (reference §3.1, §3.3 step 5). Zero: unused. v1: `01 ‖ compose_hash ‖ 0…`.
 * v2: `02 ‖ keccak256(compose_hash ‖ app_id ‖ kind ‖ key_provider_id) ‖ 0…`, with the provider id
 * taken as the hex-decoded key-provider event id. Other versions (v3 hashes a document this
 * verifier is not given) are MR_CONFIG_ID_UNSUPPORTED.
 */
export function checkMrConfigId(mrConfigId: Uint8Array, app: AppIdentity): void {
  if (isAllZero(mrConfigId)) return;
  const version = mrConfigId[0];
  ensure(isAllZero(mrConfigId.subarray(33)), 'MR_CONFIG_ID_MISMATCH', 'non-zero tail');
  const body = mrConfigId.subarray(1, 33);
  if (version === 1) {
    ensure(bytesEqual(body, app.composeHash), 'MR_CONFIG_ID_MISMATCH');
    return;
  }
  if (version === 2) {
    const providerId = app.keyProvider === undefined ? new Uint8Array(0) : fromHex(app.keyProvider.id, 'MR_CONFIG_ID_MISMATCH');
    const kind = keyProviderKind(app.keyProvider?.name);
    const expected = keccak_256(concatBytes(app.composeHash, app.appId, new Uint8Array([kind]), providerId));
    ensure(bytesEqual(body, expected), 'MR_CONFIG_ID_MISMATCH');
    return;
  }
  throw new VerifierError('MR_CONFIG_ID_UNSUPPORTED', `version ${toHex(mrConfigId.subarray(0, 1))}`);
}
