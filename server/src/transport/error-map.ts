// The one mapping from domain error codes to RPC status codes (gRPC and Connect share the numeric
// code space). The domain code travels in the `openkey-error-code` trailer/header and as the
// message; detail text never leaves the process. Anything that is not an OpenKeyError reaches the
// client only as INTERNAL "internal error" and is logged with the request id.

import { BusyError, isOpenKeyError, type ErrorCode } from '../core/errors.ts';

export const ERROR_CODE_HEADER = 'openkey-error-code';
export const RETRY_AFTER_HEADER = 'openkey-retry-after-ms';

/** gRPC status codes (identical numbering in Connect's Code enum). */
export const Status = {
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

const STATUS_OF: Record<ErrorCode, number> = {
  MALFORMED_REQUEST: Status.INVALID_ARGUMENT,
  MISSING_FIELD: Status.INVALID_ARGUMENT,
  PAYLOAD_TOO_LARGE: Status.INVALID_ARGUMENT,
  INVALID_DIGEST_LENGTH: Status.INVALID_ARGUMENT,
  INVALID_TYPED_DATA: Status.INVALID_ARGUMENT,
  UNSUPPORTED_ALGORITHM: Status.INVALID_ARGUMENT,
  ALGORITHM_MISMATCH: Status.INVALID_ARGUMENT,
  INVALID_PUBLIC_KEY: Status.INVALID_ARGUMENT,
  INVALID_PRIVATE_KEY: Status.INVALID_ARGUMENT,
  IMPORT_DECRYPT_FAILED: Status.INVALID_ARGUMENT,
  UNAUTHENTICATED: Status.UNAUTHENTICATED,
  STAMP_INVALID: Status.UNAUTHENTICATED,
  STAMP_EXPIRED: Status.UNAUTHENTICATED,
  STAMP_REPLAYED: Status.UNAUTHENTICATED,
  KEY_NOT_FOUND: Status.NOT_FOUND,
  PERMISSION_DENIED: Status.PERMISSION_DENIED,
  RAW_SIGNING_DISABLED: Status.PERMISSION_DENIED,
  PRINCIPAL_EXISTS: Status.ALREADY_EXISTS,
  APPROVAL_REQUIRED: Status.PERMISSION_DENIED,
  RATE_LIMITED: Status.RESOURCE_EXHAUSTED,
  CAP_EXCEEDED: Status.RESOURCE_EXHAUSTED,
  // Delegations: exceeding the grant is a permission problem; a grant that no longer stands is a
  // state the owner must change (approve again), which FAILED_PRECONDITION says without retrying.
  DELEGATION_NOT_SUBSET: Status.PERMISSION_DENIED,
  DELEGATE_NOT_ALLOWED: Status.PERMISSION_DENIED,
  LIFETIME_TOO_LONG: Status.PERMISSION_DENIED,
  GRANT_EXPIRED: Status.FAILED_PRECONDITION,
  GRANT_REVOKED: Status.FAILED_PRECONDITION,
  // Passkeys: a ceremony that does not verify is a failed authentication, whatever the reason; an
  // approval that does not cover the request is a permission problem; a lost race is ABORTED.
  WEBAUTHN_INVALID: Status.UNAUTHENTICATED,
  WEBAUTHN_ORIGIN_MISMATCH: Status.UNAUTHENTICATED,
  WEBAUTHN_RP_ID_MISMATCH: Status.UNAUTHENTICATED,
  WEBAUTHN_USER_VERIFICATION_REQUIRED: Status.UNAUTHENTICATED,
  WEBAUTHN_COUNTER_REGRESSION: Status.UNAUTHENTICATED,
  WEBAUTHN_CHALLENGE_INVALID: Status.UNAUTHENTICATED,
  SESSION_EXPIRED: Status.UNAUTHENTICATED,
  APPROVAL_INVALID: Status.PERMISSION_DENIED,
  GRANT_NOT_FOUND: Status.NOT_FOUND,
  CONFLICT: Status.ABORTED,
  SEALED_KEY_CORRUPT: Status.DATA_LOSS,
  RESOURCE_EXHAUSTED: Status.RESOURCE_EXHAUSTED,
  DEADLINE_EXCEEDED: Status.DEADLINE_EXCEEDED,
  CANCELLED: Status.CANCELLED,
  TEE_UNAVAILABLE: Status.UNAVAILABLE,
  INTERNAL: Status.INTERNAL,
};

export interface WireError {
  readonly status: number;
  /** The domain code, or "INTERNAL" for anything unexpected. */
  readonly code: ErrorCode;
  /** Safe to send: the code itself, never detail text. */
  readonly message: string;
  /** True when the error was not an OpenKeyError and must be logged as a bug. */
  readonly unexpected: boolean;
  /** Back-pressure: when to retry, sent as the `openkey-retry-after-ms` header/trailer. */
  readonly retryAfterMs?: number;
}

export function toWireError(e: unknown): WireError {
  if (e instanceof BusyError) return { status: STATUS_OF[e.code], code: e.code, message: e.code, unexpected: false, retryAfterMs: e.retryAfterMs };
  if (isOpenKeyError(e)) return { status: STATUS_OF[e.code], code: e.code, message: e.code, unexpected: e.code === 'INTERNAL' };
  return { status: Status.INTERNAL, code: 'INTERNAL', message: 'internal error', unexpected: true };
}
