// The dstack TDX event log (reference §1.3, §3): parsing both JSON forms (v0.5 entries with digests,
// and the OS 0.6 "stripped" form whose runtime entries have empty digests), recomputing every
// runtime-event digest from its payload (V1, or V2 for `"version":2` entries), and replaying RTMRs.
// A given runtime digest that differs from the recomputed one is an error, never silently replaced.

import { bytesEqual, concatBytes, fromHex, le32, toHex, utf8 } from '../bytes.ts';
import { sha384 } from '../crypto.ts';
import { VerifierError, ensure } from '../errors.ts';
import { asArray, asObject, getInteger, getString, parseJsonText } from '../json.ts';

/** dstack runtime events (RTMR3) use this event type (`DSTACK_RUNTIME_EVENT_TYPE`). */
export const DSTACK_RUNTIME_EVENT_TYPE = 0x08000001;

const CODE = 'EVENT_LOG_MALFORMED';
const MAX_EVENTS = 1024;
const MAX_EVENT_NAME = 256;
const MAX_PAYLOAD_HEX = 128 * 1024;
const MAX_LOG_TEXT = 4 * 1024 * 1024;
const DIGEST_LEN = 48;

export interface TdxEvent {
  /** 0-based RTMR index (0 = RTMR0). */
  readonly imr: 0 | 1 | 2 | 3;
  readonly eventType: number;
  /** The digest as given (48 bytes), or empty when the log omits it (stripped runtime events). */
  readonly givenDigest: Uint8Array;
  readonly event: string;
  readonly payload: Uint8Array;
  /** Runtime-event digest format: 1 (binary preimage) or 2 (JCS JSON preimage). */
  readonly version: 1 | 2;
}

export function isRuntimeEvent(e: TdxEvent): boolean {
  return e.eventType === DSTACK_RUNTIME_EVENT_TYPE;
}

/** True when a string has no unpaired UTF-16 surrogate (so it has one UTF-8 encoding). */
function wellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return false;
    }
  }
  return true;
}

function parseEntry(item: unknown, index: number): TdxEvent {
  const o = asObject(item, CODE, `event ${index}`);
  const imr = getInteger(o, 'imr', CODE, 0, 3) as 0 | 1 | 2 | 3;
  const eventType = getInteger(o, 'event_type', CODE, 0, 0xffffffff);
  const digestHex = o['digest'] === undefined ? '' : getString(o, 'digest', CODE, 2 * DIGEST_LEN);
  const givenDigest = fromHex(digestHex, CODE);
  const event = o['event'] === undefined ? '' : getString(o, 'event', CODE, MAX_EVENT_NAME);
  ensure(wellFormed(event), CODE, 'event name is not well-formed Unicode');
  const payloadHex = o['event_payload'] === undefined ? '' : getString(o, 'event_payload', CODE, MAX_PAYLOAD_HEX);
  const payload = fromHex(payloadHex, CODE);
  const versionRaw = o['version'];
  let version: 1 | 2 = 1;
  if (versionRaw !== undefined) {
    const v = getInteger(o, 'version', CODE, 1, 2);
    version = v === 2 ? 2 : 1;
  }
  const runtime = eventType === DSTACK_RUNTIME_EVENT_TYPE;
  if (runtime) {
    ensure(givenDigest.length === 0 || givenDigest.length === DIGEST_LEN, CODE, 'runtime digest length');
  } else {
    // Boot events can only be replayed from their digest: it must be there.
    ensure(givenDigest.length === DIGEST_LEN, CODE, 'boot event without a 48-byte digest');
    ensure(versionRaw === undefined || version === 1, CODE, 'version 2 applies to runtime events only');
  }
  return { imr, eventType, givenDigest, event, payload, version };
}

/**
 * Parses a dstack event log: the JSON text returned by GetQuote (`event_log`) or the array it
 * holds. Throws EVENT_LOG_MALFORMED.
 */
export function parseEventLog(input: string | readonly unknown[]): TdxEvent[] {
  const value = typeof input === 'string' ? parseJsonText(input, CODE, MAX_LOG_TEXT) : input;
  return asArray(value, CODE, 'event log', MAX_EVENTS).map(parseEntry);
}

/**
 * The exact bytes whose SHA-384 a runtime event extends into its RTMR (dstack
 * `runtime_events.rs`): V1 `le32(0x08000001) ‖ ":" ‖ name ‖ ":" ‖ payload`; V2 the JCS text
 * `{"name":…,"payload":"<lower hex>","type":134217729}`.
 */
export function runtimeEventPreimage(name: string, payload: Uint8Array, version: 1 | 2): Uint8Array {
  if (version === 2) {
    // Keys are already in JCS order; JSON.stringify's string escaping is JCS's (RFC 8785 §3.2.2.2).
    return utf8(`{"name":${JSON.stringify(name)},"payload":"${toHex(payload)}","type":${DSTACK_RUNTIME_EVENT_TYPE}}`);
  }
  return concatBytes(le32(DSTACK_RUNTIME_EVENT_TYPE), utf8(':'), utf8(name), utf8(':'), payload);
}

/**
 * The digest an event extends: recomputed for runtime events (and checked against a given one),
 * the given digest for boot events (whose payloads dstack does not define).
 */
export function eventDigest(e: TdxEvent): Uint8Array {
  if (!isRuntimeEvent(e)) return e.givenDigest;
  const digest = sha384(runtimeEventPreimage(e.event, e.payload, e.version));
  if (e.givenDigest.length !== 0 && !bytesEqual(e.givenDigest, digest)) {
    throw new VerifierError('EVENT_LOG_DIGEST_MISMATCH', `event "${e.event}"`);
  }
  return digest;
}

export type Rtmrs = readonly [Uint8Array, Uint8Array, Uint8Array, Uint8Array];

/** Replays all four RTMRs from zero: RTMR[i] = SHA-384(RTMR[i] ‖ digest) per event (reference §3.1). */
export function replayRtmrs(events: readonly TdxEvent[]): Rtmrs {
  const regs: Uint8Array[] = [new Uint8Array(48), new Uint8Array(48), new Uint8Array(48), new Uint8Array(48)];
  for (const e of events) regs[e.imr] = sha384(concatBytes(regs[e.imr]!, eventDigest(e)));
  return [regs[0]!, regs[1]!, regs[2]!, regs[3]!];
}
