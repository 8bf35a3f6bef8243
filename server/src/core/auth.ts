// Authentication of service principals by request stamps (proto/protocol/stamp.ts). Verifies the
// signature, the time window and the principal, and returns the nonce-consumption change that the
// caller commits atomically with whatever state the request changes, so a replayed stamp can
// never change state twice.

import { parseStamp, stampSigningInput, type StampFields } from '../../../proto/protocol/stamp.ts';
import { OpenKeyError } from './errors.ts';
import type { Change, Clock, PrincipalAlgorithm, PrincipalRecord, Store } from './ports.ts';

/** Verifies a principal's signature; false (never a throw) for any bad signature or key. */
export type PrincipalSignatureVerifier = (
  algorithm: PrincipalAlgorithm,
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
) => boolean;

export interface AuthRequest {
  /** Fully qualified RPC method, e.g. "/openkey.v1.SignService/Sign". */
  readonly method: string;
  /** SHA-256 of the request's deterministic protobuf encoding. */
  readonly bodyDigest: Uint8Array;
  /** The `openkey-stamp` header value, if any. */
  readonly stamp: string | undefined;
  /** The `openkey-session` header value (a service session's HMAC stamp), if any. */
  readonly sessionStamp?: string | undefined;
  /** Aborted when the call times out or the caller cancels it. */
  readonly signal?: AbortSignal | undefined;
}

export interface Authenticated {
  /** Who acts: a service or admin, or, for a session, the person it belongs to (role "person"). */
  readonly principal: PrincipalRecord;
  /** Set when a person's session stamped the request. */
  readonly session?: { readonly id: string; readonly expiresAt: number };
  /** Set when a service session (core/service-sessions.ts) authenticated the request. */
  readonly serviceSession?: { readonly id: string; readonly expiresAt: number };
  /** The method and body digest the stamp covered (what audit records and receipts name). */
  readonly method: string;
  readonly requestDigest: Uint8Array;
  /**
   * Commit these with the request's state changes (or alone) before acting on the request: the
   * stamp's nonce. Empty for a service session, whose sequence numbers are consumed in memory
   * when the call is authenticated.
   */
  readonly nonceChanges: readonly Change[];
  /** The call's cancellation (AuthRequest.signal): queued commits of a dead call are dropped. */
  readonly signal?: AbortSignal | undefined;
}

export interface AuthenticatorOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly verify: PrincipalSignatureVerifier;
  /** Accepted clock skew either side of `now`, in milliseconds. */
  readonly windowMs: number;
  /** Looks up a person's session by its principal id, expired or not (core/people.ts). */
  readonly session?: (id: string) => Promise<SessionLookup | undefined>;
  /** Authenticates a call carrying a service-session header (core/service-sessions.ts). */
  readonly serviceSession?: (req: AuthRequest & { readonly sessionStamp: string }) => Promise<Authenticated>;
}

/** What the authenticator needs of a session. */
export interface SessionLookup {
  readonly id: string;
  readonly personId: string;
  readonly algorithm: PrincipalAlgorithm;
  readonly publicKey: Uint8Array;
  readonly createdAt: number;
  readonly expiresAt: number;
}

export class Authenticator {
  constructor(private readonly o: AuthenticatorOptions) {}

  /** Authenticates a request from a registered principal. */
  async authenticate(req: AuthRequest): Promise<Authenticated> {
    const sessionStamp = req.sessionStamp;
    if (sessionStamp !== undefined && sessionStamp !== '') {
      if (req.stamp !== undefined && req.stamp !== '') throw new OpenKeyError('UNAUTHENTICATED', 'a call carries a stamp or a session header, not both');
      if (this.o.serviceSession === undefined) throw new OpenKeyError('UNAUTHENTICATED', 'service sessions are not enabled');
      return { ...(await this.o.serviceSession({ ...req, sessionStamp })), signal: req.signal };
    }
    const stamp = this.parse(req);
    const principal = await this.o.store.getPrincipal(stamp.principalId);
    if (principal !== undefined) return this.check(req, stamp, principal);
    const session = await this.o.session?.(stamp.principalId);
    // An unknown principal and a bad signature are the same error on the wire.
    if (session === undefined) throw new OpenKeyError('STAMP_INVALID', 'unknown principal');
    const person: PrincipalRecord = {
      id: session.personId,
      role: 'person',
      algorithm: session.algorithm,
      publicKey: session.publicKey,
      name: '',
      createdAt: session.createdAt,
    };
    const auth = this.check(req, stamp, person, session.id);
    // After the signature, so only the session's holder learns that it ended.
    if (session.expiresAt <= this.o.clock.now()) throw new OpenKeyError('SESSION_EXPIRED');
    return { ...auth, session: { id: session.id, expiresAt: session.expiresAt } };
  }

  /**
   * Authenticates a request stamped by a principal that is being registered by this very request
   * (proof of possession of `candidate`'s key).
   */
  authenticateCandidate(req: AuthRequest, candidate: PrincipalRecord): Authenticated {
    const stamp = this.parse(req);
    if (stamp.principalId !== candidate.id) throw new OpenKeyError('STAMP_INVALID', 'stamp principal is not the key being registered');
    return this.check(req, stamp, candidate);
  }

  private parse(req: AuthRequest): StampFields {
    if (req.stamp === undefined || req.stamp === '') throw new OpenKeyError('UNAUTHENTICATED', 'missing stamp');
    const stamp = parseStamp(req.stamp);
    if (stamp === undefined) throw new OpenKeyError('UNAUTHENTICATED', 'malformed stamp');
    return stamp;
  }

  /** `keyId` is the principal id the stamp names: the principal's own, or its session's. */
  private check(req: AuthRequest, stamp: StampFields, principal: PrincipalRecord, keyId = principal.id): Authenticated {
    if (stamp.principalId !== keyId) throw new OpenKeyError('INTERNAL', 'stamp principal mismatch');
    const input = stampSigningInput(req.method, req.bodyDigest, stamp.principalId, stamp.timestampMs, stamp.nonce);
    if (!this.o.verify(principal.algorithm, principal.publicKey, input, stamp.signature)) {
      throw new OpenKeyError('STAMP_INVALID', 'signature');
    }
    // Checked after the signature so an unauthenticated caller learns nothing about our clock.
    const now = this.o.clock.now();
    if (Math.abs(now - stamp.timestampMs) > this.o.windowMs) throw new OpenKeyError('STAMP_EXPIRED');
    return {
      principal,
      method: req.method,
      requestDigest: req.bodyDigest,
      signal: req.signal,
      nonceChanges: [
        {
          kind: 'consumeNonce',
          principalId: keyId,
          nonce: stamp.nonce,
          // A nonce only needs remembering while its stamp could still be inside the window.
          expiresAt: stamp.timestampMs + this.o.windowMs,
        },
      ],
    };
  }
}
