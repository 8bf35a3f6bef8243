// Issuing one delegation: authorize the request against the grant (subset.ts) — before anything is
// signed — then build the SIWE+ReCap message (secp256k1 owner) or UCAN (Ed25519 owner), have the
// injected signer sign it, check the signature verifies for the owner key, and package the result
// with the fields TinyCloud clients expect. No key material, storage or transport here.

import { OpenKeyError } from '../errors.ts';
import type { Clock, Random } from '../ports.ts';
import { addressFromPublicKey } from '../crypto/address.ts';
import { base58btcEncode } from '../crypto/base58.ts';
import { didKey } from '../crypto/did.ts';
import { toHex } from '../bytes.ts';
import { base64urlEncode } from './base64url.ts';
import { blake3RawCid, cacaoAuthorization, cacaoFromSiwe, encodeCacao, recoverPersonalSigner } from './cacao.ts';
import { toPermissions, withResources, type CapabilityEntry, type Permission } from './capability.ts';
import { encodeRecap, siweStatementWithRecap } from './recap.ts';
import { formatSiwe, isoTime, type SiweFields } from './siwe.ts';
import { authorizeDelegation, type AuthorizedDelegation, type DelegationRequest, type VerifiedDelegateAttestation } from './subset.ts';
import type { DelegationGrant } from './grant.ts';
import { signUcan, uuidNonce } from './ucan.ts';

/** The owner key's public half. secp256k1: 33- or 65-byte SEC1; Ed25519: 32 bytes. */
export type OwnerKey = { readonly algorithm: 'secp256k1'; readonly publicKey: Uint8Array } | { readonly algorithm: 'ed25519'; readonly publicKey: Uint8Array };

/**
 * The injected signer, bound to the owner key. secp256k1: EIP-191 personal_sign over `message`
 * (the SIWE text's UTF-8 bytes) → 65-byte r‖s‖v, v ∈ {27, 28}. Ed25519: a 64-byte signature over
 * `message` (the UCAN signing input). It is called at most once, and only for an allowed request.
 */
export type SignFn = (message: Uint8Array) => Uint8Array | Promise<Uint8Array>;

export interface IssueParams {
  readonly grant: DelegationGrant;
  readonly request: DelegationRequest;
  readonly owner: OwnerKey;
  readonly sign: SignFn;
  readonly clock: Clock;
  /** Nonces (SIWE nonce, UCAN `nnc`). */
  readonly random: Random;
  /** The SIWE domain (RFC 3986 authority) the appliance presents, e.g. "openkey.example". */
  readonly domain: string;
  /** Optional text before the ReCap statement (EIP-4361 statement characters, one line). */
  readonly statement?: string;
  readonly callerPrincipalId?: string;
  readonly attestation?: VerifiedDelegateAttestation;
}

/** The JSON wrapper TinyCloud clients read (OpenKey `/api/delegate`, native `tinycloud_delegation`). */
export interface TinyCloudDelegationWrapper {
  readonly delegationHeader: { readonly Authorization: string };
  readonly delegationCid: string;
  readonly ownerDid: string;
  /** The first space (in canonical order) the delegation covers. */
  readonly spaceId: string;
  readonly delegateDid: string;
  /** The delegate's DID URL (`did:key:z…#z…`): TinyCloud's session verification method. */
  readonly verificationMethod: string;
  /** The delegate's public JWK, for did:key delegates. */
  readonly jwk?: { readonly kty: 'OKP'; readonly crv: 'Ed25519'; readonly x: string };
  readonly permissions: readonly Permission[];
  readonly issuedAt: string;
  readonly expiresAt: string;
  readonly expirationTime: string;
  readonly expiry: string;
  // SIWE (secp256k1 owners) only:
  readonly address?: string;
  readonly chainId?: number;
  readonly siwe?: string;
  readonly signedMessage?: string;
  /** 0x-hex r‖s‖v. */
  readonly signature?: string;
}

interface IssuedBase {
  readonly grantId: string;
  readonly ownerDid: string;
  readonly delegateDid: string;
  readonly capabilities: readonly CapabilityEntry[];
  /** Epoch milliseconds. */
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly notBefore?: number;
  /** CIDv1(raw, BLAKE3-256) of the delegation bytes (the CACAO's DAG-CBOR, or the UCAN's text). */
  readonly cid: string;
  /** The `Authorization` header value TinyCloud nodes take. */
  readonly authorization: string;
  readonly wrapper: TinyCloudDelegationWrapper;
}

export interface SiweCacaoDelegation extends IssuedBase {
  readonly format: 'siwe-cacao';
  readonly siwe: string;
  readonly signature: Uint8Array;
  readonly cacao: Uint8Array;
}

export interface UcanDelegation extends IssuedBase {
  readonly format: 'ucan';
  readonly ucan: string;
}

export type IssuedDelegation = SiweCacaoDelegation | UcanDelegation;

/** The owner key's DID, and that it is the grant's owner (else PERMISSION_DENIED). */
function ownerDidOf(owner: OwnerKey, grant: DelegationGrant, auth: AuthorizedDelegation): string {
  const did =
    owner.algorithm === 'ed25519'
      ? didKey('ed25519', owner.publicKey)
      : auth.owner.method === 'pkh'
        ? `did:pkh:eip155:${auth.owner.chainId}:${addressFromPublicKey(owner.publicKey)}`
        : undefined;
  if (did !== grant.owner) throw new OpenKeyError('PERMISSION_DENIED', 'the key is not the grant owner');
  return did;
}

function wrapperBase(auth: AuthorizedDelegation, ownerDid: string, cid: string, authorization: string): TinyCloudDelegationWrapper {
  const first = withResources(auth.capabilities)[0];
  if (first === undefined) throw new OpenKeyError('INTERNAL', 'no capabilities');
  const exp = isoTime(auth.expiresAt);
  const x = auth.delegate.publicKey;
  return {
    delegationHeader: { Authorization: authorization },
    delegationCid: cid,
    ownerDid,
    spaceId: first.resource.spaceId,
    delegateDid: auth.delegate.did,
    verificationMethod: auth.delegate.didUrl,
    ...(x !== undefined ? { jwk: { kty: 'OKP', crv: 'Ed25519', x: base64urlEncode(x) } as const } : {}),
    permissions: toPermissions(auth.capabilities),
    issuedAt: isoTime(auth.issuedAt),
    expiresAt: exp,
    expirationTime: exp,
    expiry: exp,
  };
}

function issuedBase(auth: AuthorizedDelegation, ownerDid: string, cid: string, authorization: string, wrapper: TinyCloudDelegationWrapper): IssuedBase {
  return {
    grantId: auth.grantId,
    ownerDid,
    delegateDid: auth.delegate.did,
    capabilities: auth.capabilities,
    issuedAt: auth.issuedAt,
    expiresAt: auth.expiresAt,
    ...(auth.notBefore !== undefined ? { notBefore: auth.notBefore } : {}),
    cid,
    authorization,
    wrapper,
  };
}

async function issueSiwe(p: IssueParams, auth: AuthorizedDelegation, ownerDid: string): Promise<SiweCacaoDelegation> {
  if (auth.owner.method !== 'pkh') throw new OpenKeyError('INTERNAL', 'SIWE needs a did:pkh owner');
  const fields: SiweFields = {
    domain: p.domain,
    address: auth.owner.address,
    statement: siweStatementWithRecap(auth.capabilities, p.statement),
    uri: auth.delegate.didUrl,
    version: '1',
    chainId: auth.owner.chainId,
    nonce: base58btcEncode(p.random.bytes(16)), // 128 random bits, alphanumeric (EIP-4361 nonce)
    issuedAt: isoTime(auth.issuedAt),
    expirationTime: isoTime(auth.expiresAt),
    ...(auth.notBefore !== undefined ? { notBefore: isoTime(auth.notBefore) } : {}),
    ...(auth.requestId !== undefined ? { requestId: auth.requestId } : {}),
    resources: [encodeRecap(auth.capabilities)],
  };
  const siwe = formatSiwe(fields); // every field checked before the signer sees anything
  const message = new TextEncoder().encode(siwe);
  const signature = Uint8Array.from(await p.sign(message));
  // A signature that does not recover to the owner address (wrong key, faulty signer) never leaves.
  if (recoverPersonalSigner(message, signature) !== auth.owner.address) throw new OpenKeyError('INTERNAL', 'the secp256k1 signer returned a signature that does not recover to the owner');
  const cacao = encodeCacao(cacaoFromSiwe(fields, signature));
  const cid = blake3RawCid(cacao);
  const authorization = cacaoAuthorization(cacao);
  const sigHex = `0x${toHex(signature)}`;
  const wrapper: TinyCloudDelegationWrapper = {
    ...wrapperBase(auth, ownerDid, cid, authorization),
    address: auth.owner.address,
    chainId: auth.owner.chainId,
    siwe,
    signedMessage: siwe,
    signature: sigHex,
  };
  return { format: 'siwe-cacao', ...issuedBase(auth, ownerDid, cid, authorization, wrapper), siwe, signature, cacao };
}

async function issueUcan(p: IssueParams, auth: AuthorizedDelegation, ownerDid: string): Promise<UcanDelegation> {
  const ucan = await signUcan(
    {
      issuerPublicKey: p.owner.publicKey,
      audience: auth.delegate.did,
      capabilities: auth.capabilities,
      expiresAt: Math.floor(auth.expiresAt / 1000), // never later than authorized
      ...(auth.notBefore !== undefined ? { notBefore: Math.ceil(auth.notBefore / 1000) } : {}), // never earlier
      nonce: uuidNonce(p.random.bytes(16)),
    },
    p.sign,
  );
  const wrapper = wrapperBase(auth, ownerDid, ucan.cid, ucan.jwt);
  return { format: 'ucan', ...issuedBase(auth, ownerDid, ucan.cid, ucan.jwt, wrapper), ucan: ucan.jwt };
}

/**
 * Authorizes `request` under `grant` and, only if allowed, issues the delegation: SIWE+ReCap as a
 * CACAO for a secp256k1 owner (did:pkh), a UCAN for an Ed25519 owner (did:key). Refusals throw the
 * codes of `authorizeDelegation` (plus PERMISSION_DENIED when `owner` is not the grant's owner)
 * without calling `sign`. A signer failure propagates unchanged; a signature that does not verify
 * for the owner key is INTERNAL.
 */
export async function issueDelegation(p: IssueParams): Promise<IssuedDelegation> {
  const auth = authorizeDelegation(p.grant, p.request, {
    now: p.clock.now(),
    ...(p.callerPrincipalId !== undefined ? { callerPrincipalId: p.callerPrincipalId } : {}),
    ...(p.attestation !== undefined ? { attestation: p.attestation } : {}),
  });
  const ownerDid = ownerDidOf(p.owner, p.grant, auth);
  return p.owner.algorithm === 'secp256k1' ? issueSiwe(p, auth, ownerDid) : issueUcan(p, auth, ownerDid);
}
