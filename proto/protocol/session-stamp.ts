// Service sessions: how a high-rate service authenticates a call without a public-key signature.
// A service opens a session once (PrincipalService.OpenSession, stamped with its own key) and
// receives a 32-byte secret sealed to a one-time X25519 key it chose. Each later call carries
//
//   openkey-session: 1.<session id>.<seq>.<base64url HMAC-SHA256(secret, input)>
//
// where the input binds the method, the SHA-256 of the request's deterministic protobuf encoding,
// the session id and a sequence number the caller never reuses. The appliance accepts each
// sequence number at most once per session (out of order within a window of
// SESSION_SEQ_WINDOW), so a recorded call cannot be replayed, and a session dies with the
// appliance process that holds its secret.

import { CanonicalWriter } from './encoding.ts';

export const SESSION_HEADER = 'openkey-session';
export const SESSION_STAMP_VERSION = '1';
/** HPKE `info` for sealing the session secret; the AAD is the session id. */
export const SESSION_SECRET_INFO = 'openkey/v1/session-secret';
export const SESSION_SECRET_BYTES = 32;
/** How far below the highest sequence number seen a late call may still arrive. */
export const SESSION_SEQ_WINDOW = 4096;
const SESSION_TAG = 'openkey-session-v1';
const SESSION_ID_RE = /^ses_[0-9a-f]{32}$/;
const SEQ_RE = /^[1-9][0-9]{0,15}$/;
const MAC_RE = /^[A-Za-z0-9_-]{43}$/;

export interface SessionStampFields {
  readonly sessionId: string;
  readonly seq: number;
  /** base64url, 43 characters (32 bytes). */
  readonly mac: string;
}

export function isSessionId(s: string): boolean {
  return SESSION_ID_RE.test(s);
}

/** The bytes the session secret MACs for one call. */
export function sessionStampInput(method: string, bodyDigest: Uint8Array, sessionId: string, seq: number): Uint8Array {
  return new CanonicalWriter(SESSION_TAG).string(method).bytes(bodyDigest).string(sessionId).u64(seq).finish();
}

export function formatSessionStamp(f: SessionStampFields): string {
  return `${SESSION_STAMP_VERSION}.${f.sessionId}.${f.seq}.${f.mac}`;
}

/** Parses a session header; undefined for anything that is not a well-formed v1 session stamp. */
export function parseSessionStamp(header: string): SessionStampFields | undefined {
  if (header.length > 128) return undefined;
  const parts = header.split('.');
  if (parts.length !== 4) return undefined;
  const [version, sessionId, seq, mac] = parts as [string, string, string, string];
  if (version !== SESSION_STAMP_VERSION || !SESSION_ID_RE.test(sessionId) || !SEQ_RE.test(seq) || !MAC_RE.test(mac)) return undefined;
  const n = Number(seq);
  if (!Number.isSafeInteger(n)) return undefined;
  return { sessionId, seq: n, mac };
}
