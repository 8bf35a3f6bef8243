// Public API of @openkey/verifier: DCAP quote verification (authenticity), the OpenKey appliance
// policy on top of it, and the dstack helpers both use. Everything here is pure and browser-safe;
// collateral fetching (the only network code) is the separate "./collateral" entry point.

export { VERIFIER_ERROR_CODES, VerifierError, isVerifierError, type VerifierErrorCode } from './errors.ts';

export {
  INTEL_QE_VENDOR_ID,
  MAX_QUOTE_BYTES,
  parseQuote,
  type EnclaveReport,
  type ParsedQuote,
  type QuoteAuthData,
  type QuoteHeader,
  type QuoteReport,
  type ReportType,
  type TdReport10,
  type TdReport15,
} from './quote.ts';

export { collateralToJson, parseCollateral, type QuoteCollateral } from './dcap/collateral.ts';
export { TCB_STATUSES, type TcbStatus } from './dcap/tcb-info.ts';
export { verifyQuote, type PckInfo, type VerifiedQuote, type VerifyQuoteOptions } from './dcap/verify.ts';
export { INTEL_SGX_ROOT_CA_SHA256, intelSgxRootCaDer } from './intel-root.ts';

export {
  verifyAppliance,
  type ApplianceAppIdentity,
  type ApplianceEvidence,
  type AppliancePolicy,
  type ApplianceVerdict,
  type KmsPolicy,
  type TdMeasurements,
} from './policy/appliance.ts';
export { checkReportAttributes, type AttributeOptions } from './policy/td-attributes.ts';
export { PolicyError, parsePolicy, type PolicyWithoutNonce } from './policy/policy-json.ts';

export { APPLIANCE_NONCE_LENGTH, APPLIANCE_REPORT_DATA_DOMAIN_TAG, appReportData } from './report-data.ts';

export {
  DSTACK_RUNTIME_EVENT_TYPE,
  eventDigest,
  parseEventLog,
  replayRtmrs,
  runtimeEventPreimage,
  type Rtmrs,
  type TdxEvent,
} from './dstack/event-log.ts';
export {
  checkMrConfigId,
  extractAppIdentity,
  type AppEvent,
  type AppIdentity,
  type KeyProviderInfo,
} from './dstack/app-identity.ts';
export { verifyKmsSignatureChain, type KmsChainInput, type KmsChainResult } from './dstack/kms-chain.ts';
