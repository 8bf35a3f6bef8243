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
}

export interface Authenticated {
  readonly principal: PrincipalRecord;
  /** Commit this with the request's state changes (or alone) before acting on the request. */
  readonly nonceChange: Change;
}

export interface AuthenticatorOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly verify: PrincipalSignatureVerifier;
  /** Accepted clock skew either side of `now`, in milliseconds. */
  readonly windowMs: number;
}

export class Authenticator {
  constructor(private readonly o: AuthenticatorOptions) {}

  /** Authenticates a request from a registered principal. */
  async authenticate(req: AuthRequest): Promise<Authenticated> {
    const stamp = this.parse(req);
    const principal = await this.o.store.getPrincipal(stamp.principalId);
    // An unknown principal and a bad signature are the same error on the wire.
    if (principal === undefined) throw new OpenKeyError('STAMP_INVALID', 'unknown principal');
    return this.check(req, stamp, principal);
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

  private check(req: AuthRequest, stamp: StampFields, principal: PrincipalRecord): Authenticated {
    const input = stampSigningInput(req.method, req.bodyDigest, stamp.principalId, stamp.timestampMs, stamp.nonce);
    if (!this.o.verify(principal.algorithm, principal.publicKey, input, stamp.signature)) {
      throw new OpenKeyError('STAMP_INVALID', 'signature');
    }
    // Checked after the signature so an unauthenticated caller learns nothing about our clock.
    const now = this.o.clock.now();
    if (Math.abs(now - stamp.timestampMs) > this.o.windowMs) throw new OpenKeyError('STAMP_EXPIRED');
    return {
      principal,
      nonceChange: {
        kind: 'consumeNonce',
        principalId: principal.id,
        nonce: stamp.nonce,
        // A nonce only needs remembering while its stamp could still be inside the window.
        expiresAt: stamp.timestampMs + this.o.windowMs,
      },
    };
  }
}
