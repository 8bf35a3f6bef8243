// The verifier's one error type and its closed set of codes. Every rejection, from a truncated
// quote to a pinned compose hash that does not match, is a VerifierError with one of these codes.
// Codes are stable API: callers and tests match on `code`, never on message text.

export const VERIFIER_ERROR_CODES = [
  // Caller mistakes (bad argument types, malformed policy), independent of the evidence.
  'INVALID_ARGUMENT',
  // Quote parsing (reference §4).
  'QUOTE_TRUNCATED', // a read ran past the end of the quote or of one of its length-delimited parts
  'QUOTE_MALFORMED', // lengths that contradict each other, bytes left over inside a fixed structure
  'QUOTE_TOO_LARGE',
  'UNSUPPORTED_QUOTE_VERSION',
  'UNSUPPORTED_ATTESTATION_KEY_TYPE',
  'UNSUPPORTED_TEE_TYPE',
  'UNSUPPORTED_BODY_TYPE',
  'UNSUPPORTED_CERT_DATA_TYPE',
  'QE_VENDOR_MISMATCH',
  // Signatures inside the quote (reference §5.1 steps 5, 6, 8).
  'QE_REPORT_SIGNATURE_INVALID',
  'QE_REPORT_DATA_MISMATCH',
  'QUOTE_SIGNATURE_INVALID',
  // X.509 certificates and chains (reference §5.1 steps 0, 2-4).
  'TRUST_ANCHOR_INVALID',
  'CERT_MALFORMED',
  'CERT_CHAIN_INVALID', // too short/long, issuer and subject names that do not link
  'CERT_CHAIN_UNTRUSTED', // does not end at the trust anchor
  'CERT_SIGNATURE_INVALID',
  'CERT_CONSTRAINTS', // basicConstraints, pathLen, keyUsage, algorithms, unknown critical extension
  'CERT_NOT_YET_VALID',
  'CERT_EXPIRED',
  'CERT_REVOKED',
  'PCK_EXTENSION_MALFORMED',
  // CRLs.
  'CRL_MALFORMED',
  'CRL_MISSING', // no CRL from the issuer of a certificate in a chain
  'CRL_SIGNATURE_INVALID',
  'CRL_NOT_YET_VALID',
  'CRL_EXPIRED',
  // Collateral: TCB info and QE identity (reference §5.1 steps 2-3, §5.2).
  'COLLATERAL_MALFORMED',
  'TCB_INFO_SIGNATURE_INVALID',
  'TCB_INFO_NOT_YET_VALID',
  'TCB_INFO_EXPIRED',
  'TCB_INFO_UNSUPPORTED', // wrong id/version/tcbType for this quote
  'QE_IDENTITY_SIGNATURE_INVALID',
  'QE_IDENTITY_NOT_YET_VALID',
  'QE_IDENTITY_EXPIRED',
  'QE_IDENTITY_UNSUPPORTED',
  // Matching the quote against the collateral (reference §5.1 steps 7, 9-11).
  'QE_IDENTITY_MISMATCH',
  'QE_TCB_LEVEL_NOT_FOUND',
  'FMSPC_MISMATCH',
  'PCEID_MISMATCH',
  'TCB_LEVEL_NOT_FOUND',
  'TDX_MODULE_MISMATCH',
  'TDX_MODULE_TCB_LEVEL_NOT_FOUND',
  'TCB_REVOKED',
  'TCB_STATUS_UNKNOWN',
  // Policy (authentic evidence that the caller's policy does not accept).
  'POLICY_REPORT_TYPE',
  'POLICY_TCB_STATUS',
  'POLICY_ADVISORY',
  'POLICY_DEBUG',
  'POLICY_TD_ATTRIBUTES',
  'POLICY_SEAM_SIGNER',
  'POLICY_SERVICE_TD',
  'POLICY_MRTD',
  'POLICY_RTMR',
  'POLICY_APP_ID',
  'POLICY_COMPOSE_HASH',
  'POLICY_OS_IMAGE_HASH',
  'POLICY_KEY_PROVIDER',
  'POLICY_INSTANCE_ID',
  'POLICY_TRUST_ANCHOR', // a non-Intel anchor without the dangerous opt-in
  // Event log and dstack app identity (reference §3).
  'EVENT_LOG_MALFORMED',
  'EVENT_LOG_DIGEST_MISMATCH', // a given digest differs from the one recomputed from the payload
  'RTMR_REPLAY_MISMATCH',
  'APP_IDENTITY_INCOMPLETE', // a required dstack event is missing or duplicated
  'MR_CONFIG_ID_MISMATCH',
  'MR_CONFIG_ID_UNSUPPORTED',
  // Key binding.
  'REPORT_DATA_MISMATCH',
  'KMS_SIGNATURE_INVALID',
  'KMS_ROOT_MISMATCH',
  // Collateral fetching (the collateral/ module only).
  'COLLATERAL_FETCH_FAILED',
  'COLLATERAL_TOO_LARGE',
  // Anything else: a bug in this library, never the evidence's fault. Details stay in `cause`.
  'INTERNAL',
] as const;

export type VerifierErrorCode = (typeof VERIFIER_ERROR_CODES)[number];

const CODE_SET: ReadonlySet<string> = new Set(VERIFIER_ERROR_CODES);

/**
 * The one error type of this library. `code` is the stable part; `detail` is a short developer
 * hint (never secret, never needed for decisions).
 */
export class VerifierError extends Error {
  override readonly name = 'VerifierError';
  readonly code: VerifierErrorCode;
  readonly detail: string | undefined;

  constructor(code: VerifierErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail === undefined ? code : `${code}: ${detail}`, options);
    this.code = code;
    this.detail = detail;
  }
}

export function isVerifierError(e: unknown): e is VerifierError {
  return e instanceof VerifierError;
}

export function isVerifierErrorCode(s: unknown): s is VerifierErrorCode {
  return typeof s === 'string' && CODE_SET.has(s);
}

/** Throws `code` unless `condition` holds. */
export function ensure(condition: unknown, code: VerifierErrorCode, detail?: string): asserts condition {
  if (!condition) throw new VerifierError(code, detail);
}

/**
 * Runs `fn` and converts anything that is not a VerifierError into INTERNAL, so a public entry
 * point has exactly one failure channel (STYLE habit 8).
 */
export function oneFailureChannel<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e: unknown) {
    if (e instanceof VerifierError) throw e;
    throw new VerifierError('INTERNAL', 'unexpected exception', { cause: e });
  }
}

export async function oneFailureChannelAsync<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e: unknown) {
    if (e instanceof VerifierError) throw e;
    throw new VerifierError('INTERNAL', 'unexpected exception', { cause: e });
  }
}
