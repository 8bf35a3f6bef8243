// The delegation core's public surface: grants and manifests, the subset check, issuing
// (SIWE+ReCap CACAO or UCAN), and the format modules for callers that parse delegations back.
// Pure: no transport, storage, logging or key material; time, randomness and signing are injected.

export { checkGrant, composeGrant, resolveManifest, revokeGrant, DEFAULT_MAX_DELEGATION_LIFETIME_SECONDS, MAX_DELEGATION_LIFETIME_SECONDS, MAX_GRANT_LIFETIME_MS } from './grant.ts';
export type { ComposeGrantParams, DelegateRule, DelegationGrant, ResolvedManifest } from './grant.ts';
export { authorizeDelegation, capabilitySubset, checkDelegationRequest } from './subset.ts';
export type { AuthorizationContext, AuthorizedDelegation, DelegationRequest, SubsetResult, VerifiedDelegateAttestation } from './subset.ts';
export { issueDelegation } from './issue.ts';
export type { IssueParams, IssuedDelegation, OwnerKey, SignFn, SiweCacaoDelegation, TinyCloudDelegationWrapper, UcanDelegation } from './issue.ts';
export { checkCapabilities, fromPermissions, toPermissions } from './capability.ts';
export type { CapabilityEntry, Caveat, Permission } from './capability.ts';
export { parseDelegateDid, parseOwnerDid, parseResource, pathCovers, spaceIdFor } from './resource.ts';
export type { DelegateDid, OwnerDid, ResourceId } from './resource.ts';
export { checkRecapStatement, decodeRecap, encodeRecap, recapStatement } from './recap.ts';
export { formatSiwe, parseSiwe } from './siwe.ts';
export type { SiweFields } from './siwe.ts';
export { blake3RawCid, cacaoFromAuthorization, cacaoMessage, decodeCacao, recoverPersonalSigner, siweFromCacao, verifyCacaoSignature } from './cacao.ts';
export type { SiweCacao } from './cacao.ts';
export { verifyUcan } from './ucan.ts';
export type { VerifiedUcan } from './ucan.ts';
