// The appliance's closed set of error codes. Every failure the domain can report is one of these;
// transports map them to RPC codes in exactly one place (transport/error-map.ts). Codes are stable
// API: clients and tests match on them, never on message text.

export const ERROR_CODES = [
  // Input that can never be valid, whoever sends it.
  'MALFORMED_REQUEST', // a field fails its schema rule (bad enum, bad id syntax, bad hex…)
  'MISSING_FIELD', // a required field is absent or an empty bytes/string
  'PAYLOAD_TOO_LARGE', // a message, field or batch exceeds its bound
  'INVALID_DIGEST_LENGTH', // a raw digest that is not exactly 32 bytes
  'INVALID_TYPED_DATA', // an EIP-712 document that does not follow the spec
  'UNSUPPORTED_ALGORITHM', // an algorithm this appliance does not offer
  'ALGORITHM_MISMATCH', // a payload kind the key's algorithm cannot sign (e.g. EIP-191 with Ed25519)
  'INVALID_PUBLIC_KEY', // a principal public key that is not a valid point/encoding
  'INVALID_PRIVATE_KEY', // a private key that is not a valid scalar (secp256k1: zero or ≥ n; wrong length)
  // Authentication of the caller.
  'UNAUTHENTICATED', // no stamp, or a stamp that does not parse
  'STAMP_INVALID', // signature does not verify, unknown principal, wrong method or body digest
  'STAMP_EXPIRED', // timestamp outside the accepted window
  'STAMP_REPLAYED', // nonce already used
  // Authorization. KEY_NOT_FOUND is also what a caller gets for a key it may not use: the two
  // cases are indistinguishable on the wire on purpose.
  'KEY_NOT_FOUND',
  'PERMISSION_DENIED',
  'RAW_SIGNING_DISABLED', // only ever reported to the key's owner
  'PRINCIPAL_EXISTS',
  // Per-key policy (core/policy.ts). Only a principal whose grant permits the exact request can
  // receive these, so they reveal nothing about a key to anyone else.
  'APPROVAL_REQUIRED', // the key's policy needs a passkey approval of this exact request; none (or another request's) came
  'RATE_LIMITED', // the grant's token bucket is empty; retry later
  'CAP_EXCEEDED', // the grant's cumulative cap for the current window is used up
  // Delegations (core/delegation). A well-formed Delegate request that the owner's grant does not
  // allow; decided before anything is signed. Only the grant's delegates and callers see them.
  'DELEGATION_NOT_SUBSET', // a requested resource, ability or caveat branch is not covered by the grant (or the delegate's scope)
  'DELEGATE_NOT_ALLOWED', // the delegate DID matches no rule of the grant (DID list, attestation policy, calling principal)
  'LIFETIME_TOO_LONG', // the requested lifetime exceeds the grant's maximum, or would outlive the grant
  'GRANT_EXPIRED', // the grant's expiry has passed; the owner must approve again
  'GRANT_REVOKED', // the owner revoked the grant
  // Passkeys (core/webauthn.ts, core/passkeys.ts). Specific WebAuthn codes exist only for checks a
  // user or operator can act on; everything else about a response (shape, encoding, signature, an
  // unknown credential) is the one code WEBAUTHN_INVALID.
  'WEBAUTHN_INVALID', // malformed JSON or response shape, bad signature, unknown credential: generic verification failure
  'WEBAUTHN_ORIGIN_MISMATCH', // clientDataJSON.origin is not one of the relying party's origins, or the call was cross-origin
  'WEBAUTHN_RP_ID_MISMATCH', // authenticatorData.rpIdHash is not SHA-256 of the relying party id
  'WEBAUTHN_USER_VERIFICATION_REQUIRED', // the authenticator did not set the UV flag; every passkey ceremony here requires it
  'WEBAUTHN_COUNTER_REGRESSION', // a validly signed signCount did not increase past a non-zero stored one: possibly a cloned authenticator
  'WEBAUTHN_CHALLENGE_INVALID', // the challenge differs from the one issued, or the issued one is unknown, used or expired
  'SESSION_EXPIRED', // the passkey login session has ended; log in again
  'APPROVAL_INVALID', // a passkey approval that does not verify or does not cover this exact request
  'GRANT_NOT_FOUND', // no such grant, or none the caller may see
  'CONFLICT', // a concurrent change to the same record won; re-read and retry
  // Cryptographic envelopes. One code per envelope kind, never a hint about which check failed.
  'IMPORT_DECRYPT_FAILED',
  'SEALED_KEY_CORRUPT', // a stored blob failed authentication or public-key re-derivation
  // Capacity and the environment.
  'RESOURCE_EXHAUSTED',
  'DEADLINE_EXCEEDED',
  'CANCELLED', // the caller cancelled the call before it was decided; nothing was written
  'TEE_UNAVAILABLE',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * The one error type the domain throws. `code` is public; `detail` is for the operator's log only
 * and must never be sent to a client or contain secret material.
 */
export class OpenKeyError extends Error {
  override readonly name = 'OpenKeyError';
  readonly code: ErrorCode;
  readonly detail: string | undefined;

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail === undefined ? code : `${code}: ${detail}`, options);
    this.code = code;
    this.detail = detail;
  }
}

/** RESOURCE_EXHAUSTED from a back-pressure bound, with when to try again. */
export class BusyError extends OpenKeyError {
  constructor(
    readonly retryAfterMs: number,
    detail = 'server at capacity',
  ) {
    super('RESOURCE_EXHAUSTED', detail);
  }
}

export function isOpenKeyError(e: unknown): e is OpenKeyError {
  return e instanceof OpenKeyError;
}

/** Throws `code` unless `condition` holds. Returns nothing; use the asserts in bytes.ts for values. */
export function ensure(condition: unknown, code: ErrorCode, detail?: string): asserts condition {
  if (!condition) throw new OpenKeyError(code, detail);
}
