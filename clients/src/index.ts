// Public surface of @openkey/client.
export { createOpenKeyClient, createTransport, openKeyErrorCode, type OpenKeyClient, type OpenKeyClientOptions, type WireProtocol } from './client.ts';
export { credentialsFromPrivateKey, generateCredentials, loadCredentials, saveCredentials, type Credentials } from './credentials.ts';
export { requestDigest, stampFor, stampingInterceptor, STAMP_HEADER } from './stamper.ts';
export { closeServiceSession, openServiceSession, ServiceSession, sessionInterceptor, SESSION_HEADER } from './service-session.ts';
export { openSignStream, SIGN_STREAM_PATH, SignStreamError, type SignStream, type SignStreamOptions } from './sign-stream.ts';
export { encryptKeyForImport, type EncryptedImport } from './key-import.ts';
export {
  AttestationError,
  RECEIPT_ERROR_CODES,
  ReceiptError,
  attestAppliance,
  checkReceipt,
  createVerifiedClient,
  receiptInterceptor,
  type AttestOptions,
  type AttestedAppliance,
  type ReceiptCheckOptions,
  type ReceiptErrorCode,
  type VerifiedClient,
} from './attested.ts';
export { PolicyError, parsePolicy, type PolicyWithoutNonce } from './policy.ts';
export { DelegateKey, TeeBackendError, attestDelegateKey, authorizationCid, ed25519DidKey, parseDelegationWrapper, startTeeBackend, type CapabilityRequest, type CollateralSource, type DelegateEvidence, type TeeBackend, type TeeBackendOptions, type TinyCloudDelegation, type TinyCloudPermission } from './tee-backend.ts';
