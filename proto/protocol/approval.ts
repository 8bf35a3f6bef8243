// Passkey approvals of one exact request. The WebAuthn challenge a person's passkey signs is
// SHA-256 of a canonical statement naming the RPC method, the SHA-256 of the request's
// deterministic protobuf encoding with its `approval` field cleared, and the approval time. The
// appliance recomputes it from the request it received, so an approval cannot be moved to another
// request, and it is single use and short-lived, so it cannot be replayed.

import { sha256 } from '@noble/hashes/sha2';
import { CanonicalWriter } from './encoding.ts';

const APPROVAL_TAG = 'openkey-approval-v1';
/** How long an approval stays usable after `issuedAtMs` (and how far in the future it may be). */
export const APPROVAL_WINDOW_MS = 5 * 60_000;

/** The 32-byte WebAuthn challenge for approving `method` with the request whose digest is given. */
export function approvalChallenge(method: string, unapprovedRequestDigest: Uint8Array, issuedAtMs: number): Uint8Array {
  return sha256(new CanonicalWriter(APPROVAL_TAG).string(method).bytes(unapprovedRequestDigest).u64(issuedAtMs).finish());
}
