// The appliance's report_data binding, shared verbatim by the server (which asks the TEE for a quote
// over it) and by clients (which check it): SHA-512(domain tag ‖ identity public key ‖ nonce). The
// nonce length is fixed so the concatenation is unambiguous for any key length.

import { concatBytes, utf8 } from './bytes.ts';
import { sha512 } from './crypto.ts';
import { ensure } from './errors.ts';

/** Domain tag of the appliance's attestation binding (UTF-8, no terminator). */
export const APPLIANCE_REPORT_DATA_DOMAIN_TAG = 'openkey-attest-v1';
/** Length in bytes of a client attestation nonce. */
export const APPLIANCE_NONCE_LENGTH = 32;
/** Longest identity key accepted (uncompressed SEC1 P-521 is 133 bytes; ours are 32/33). */
const MAX_KEY_LENGTH = 133;

/**
 * The 64-byte report_data an appliance with `identityPublicKey` must put in a quote answering
 * `nonce`. Throws INVALID_ARGUMENT for a nonce that is not 32 bytes or an empty/oversized key.
 */
export function appReportData(identityPublicKey: Uint8Array, nonce: Uint8Array): Uint8Array {
  ensure(identityPublicKey instanceof Uint8Array, 'INVALID_ARGUMENT', 'identityPublicKey must be a Uint8Array');
  ensure(nonce instanceof Uint8Array, 'INVALID_ARGUMENT', 'nonce must be a Uint8Array');
  ensure(identityPublicKey.length > 0 && identityPublicKey.length <= MAX_KEY_LENGTH, 'INVALID_ARGUMENT', 'identity key length');
  ensure(nonce.length === APPLIANCE_NONCE_LENGTH, 'INVALID_ARGUMENT', `nonce must be ${APPLIANCE_NONCE_LENGTH} bytes`);
  return sha512(concatBytes(utf8(APPLIANCE_REPORT_DATA_DOMAIN_TAG), identityPublicKey, nonce));
}
