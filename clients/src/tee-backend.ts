// An example TEE backend (issue 5): a service in its own dstack CVM that receives a delegation under
// an owner's grant by proving what it is — no owner interaction. At start-up it makes a fresh Ed25519
// delegate key, binds it and a single-use appliance nonce into a TDX quote from its own dstack guest
// agent (report_data = SHA-512("openkey-attest-v1" ‖ key ‖ nonce), the verifier's appReportData),
// and calls Delegate with that evidence. The delegate key stays in this process and is never logged;
// the returned wrapper must match the delegation bytes (CID recomputed) and name this key.

import { create } from '@bufbuild/protobuf';
import { ed25519 } from '@noble/curves/ed25519';
import { blake3 } from '@noble/hashes/blake3';
import { appReportData } from '@openkey/verifier';
import { DstackClient } from '@phala/dstack-sdk';
import { base58btc } from 'multiformats/bases/base58';
import { CID } from 'multiformats/cid';
import { create as createDigest } from 'multiformats/hashes/digest';
import { DelegateRequestSchema, type DelegateRequest, type DelegateResponse } from '../../proto/gen/openkey/v1/delegation_pb.ts';
import { receiptInterceptor } from './attested.ts';
import { createOpenKeyClient, type WireProtocol } from './client.ts';
import type { Credentials } from './credentials.ts';

export const TEE_BACKEND_ERROR_CODES = ['DSTACK_UNAVAILABLE', 'QUOTE_MALFORMED', 'COLLATERAL_UNAVAILABLE', 'DELEGATION_MALFORMED', 'DELEGATION_MISMATCH'] as const;
export type TeeBackendErrorCode = (typeof TEE_BACKEND_ERROR_CODES)[number];

/** A failure on the backend's side. The appliance's refusals arrive as ConnectErrors (openKeyErrorCode). */
export class TeeBackendError extends Error {
  override readonly name = 'TeeBackendError';
  constructor(
    readonly code: TeeBackendErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${code}: ${message}`, options);
  }
}

// ---- The delegate key ---------------------------------------------------------------------------

const ED25519_MULTICODEC = Uint8Array.of(0xed, 0x01);

/** `did:key:z6Mk…` of an Ed25519 public key (multicodec 0xed, base58btc). */
export function ed25519DidKey(publicKey: Uint8Array): string {
  if (publicKey.length !== 32) throw new TypeError('an Ed25519 public key is 32 bytes');
  const body = new Uint8Array(34);
  body.set(ED25519_MULTICODEC);
  body.set(publicKey, 2);
  return `did:key:${base58btc.encode(body)}`;
}

/**
 * The backend's Ed25519 delegate key. The secret lives in a private field: it is not enumerable,
 * not serialized by JSON.stringify and not shown by util.inspect. `destroy()` overwrites it.
 */
export class DelegateKey {
  readonly publicKey: Uint8Array;
  /** `did:key:z6Mk…`: the audience of the delegation. */
  readonly did: string;
  /** `did:key:z…#z…`: TinyCloud's session verification method. */
  readonly didUrl: string;
  readonly #secret: Uint8Array;
  #destroyed = false;

  private constructor(secret: Uint8Array) {
    this.#secret = secret;
    this.publicKey = ed25519.getPublicKey(secret);
    this.did = ed25519DidKey(this.publicKey);
    this.didUrl = `${this.did}#${this.did.slice('did:key:'.length)}`;
  }

  static generate(): DelegateKey {
    return new DelegateKey(ed25519.utils.randomPrivateKey());
  }

  /** An EdDSA signature (e.g. over a UCAN signing input for invocations and sub-delegations). */
  sign(message: Uint8Array): Uint8Array {
    if (this.#destroyed) throw new Error('the delegate key was destroyed');
    return ed25519.sign(message, this.#secret);
  }

  destroy(): void {
    this.#secret.fill(0);
    this.#destroyed = true;
  }

  toJSON(): { did: string } {
    return { did: this.did };
  }
}

// ---- Attestation --------------------------------------------------------------------------------

/** DCAP collateral for a quote as the verifier's collateral JSON (simulator: its mock collateral; production: PCCS). */
export type CollateralSource = (quote: Uint8Array) => Promise<string>;

export interface AttestDelegateKeyParams {
  /** The backend's own dstack guest agent: a DstackClient, or its socket path / http(s) URL. */
  readonly dstack: DstackClient | string;
  readonly delegatePublicKey: Uint8Array;
  /** From GetDelegationNonce (32 bytes). */
  readonly nonce: Uint8Array;
  readonly collateral: CollateralSource;
}

/** The DelegateAttestation fields: public evidence, safe to log or keep. */
export interface DelegateEvidence {
  readonly quote: Uint8Array;
  readonly eventLog: string;
  readonly collateralJson: string;
  readonly nonce: Uint8Array;
}

const HEX_RE = /^(?:0x)?((?:[0-9a-fA-F]{2})+)$/;

/** Asks the guest agent for a quote binding the delegate key and nonce, and fetches its collateral. */
export async function attestDelegateKey(p: AttestDelegateKeyParams): Promise<DelegateEvidence> {
  const reportData = appReportData(p.delegatePublicKey, p.nonce);
  let res: { quote: string; event_log: string };
  try {
    const client = typeof p.dstack === 'string' ? new DstackClient(p.dstack) : p.dstack;
    res = await client.getQuote(reportData);
  } catch (e) {
    throw new TeeBackendError('DSTACK_UNAVAILABLE', 'the dstack guest agent did not give a quote', { cause: e });
  }
  const m = typeof res.quote === 'string' ? HEX_RE.exec(res.quote) : null;
  if (m === null || typeof res.event_log !== 'string') throw new TeeBackendError('QUOTE_MALFORMED', 'the guest agent answered without a hex quote and an event log');
  const quote = new Uint8Array(Buffer.from(m[1] as string, 'hex'));
  let collateralJson: string;
  try {
    collateralJson = await p.collateral(quote);
  } catch (e) {
    throw new TeeBackendError('COLLATERAL_UNAVAILABLE', 'no collateral for the quote', { cause: e });
  }
  return { quote, eventLog: res.event_log, collateralJson, nonce: Uint8Array.from(p.nonce) };
}

// ---- The delegation -----------------------------------------------------------------------------

/** One row of TinyCloud's permission shape, as the wrapper carries it. */
export interface TinyCloudPermission {
  readonly service: string;
  readonly space: string;
  readonly path: string;
  readonly actions: readonly string[];
  readonly caveats?: readonly unknown[];
}

/** The JSON wrapper TinyCloud clients read (Delegate's wrapper_json), checked field by field. */
export interface TinyCloudDelegation {
  readonly delegationHeader: { readonly Authorization: string };
  readonly delegationCid: string;
  readonly ownerDid: string;
  readonly spaceId: string;
  readonly delegateDid: string;
  readonly verificationMethod: string;
  readonly permissions: readonly TinyCloudPermission[];
  readonly issuedAt: string;
  readonly expiresAt: string;
  /** SIWE (secp256k1 owner) only. */
  readonly address?: string;
  readonly chainId?: number;
  readonly siwe?: string;
  readonly signature?: string;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses wrapper_json into unknown, checks the fields TinyCloud clients rely on, and returns it. */
export function parseDelegationWrapper(json: string): TinyCloudDelegation {
  let v: unknown;
  try {
    v = JSON.parse(json) as unknown;
  } catch (e) {
    throw new TeeBackendError('DELEGATION_MALFORMED', 'wrapper_json is not JSON', { cause: e });
  }
  const bad = (field: string): never => {
    throw new TeeBackendError('DELEGATION_MALFORMED', `wrapper_json: ${field}`);
  };
  if (!isRecord(v)) return bad('not an object');
  const header = v['delegationHeader'];
  if (!isRecord(header) || typeof header['Authorization'] !== 'string' || header['Authorization'] === '') bad('delegationHeader.Authorization');
  for (const f of ['delegationCid', 'ownerDid', 'spaceId', 'delegateDid', 'verificationMethod', 'issuedAt', 'expiresAt']) {
    if (typeof v[f] !== 'string' || v[f] === '') bad(f);
  }
  const perms = v['permissions'];
  if (!Array.isArray(perms) || perms.length === 0) return bad('permissions');
  for (const p of perms as unknown[]) {
    if (!isRecord(p) || typeof p['service'] !== 'string' || typeof p['space'] !== 'string' || typeof p['path'] !== 'string') bad('permissions[]');
    const actions = (p as Record<string, unknown>)['actions'];
    if (!Array.isArray(actions) || !actions.every((a) => typeof a === 'string')) bad('permissions[].actions');
  }
  for (const f of ['address', 'siwe', 'signature']) if (v[f] !== undefined && typeof v[f] !== 'string') bad(f);
  if (v['chainId'] !== undefined && !Number.isSafeInteger(v['chainId'])) bad('chainId');
  return v as unknown as TinyCloudDelegation;
}

/** CIDv1(raw, BLAKE3-256) of the delegation bytes an Authorization header carries (UCAN text, or a padded base64url CACAO). */
export function authorizationCid(authorization: string): string {
  const bytes = authorization.includes('.') ? new TextEncoder().encode(authorization) : new Uint8Array(Buffer.from(authorization, 'base64url'));
  return CID.createV1(0x55, createDigest(0x1e, blake3(bytes, { dkLen: 32 }))).toString();
}

/** A requested capability; `caveats` omitted = unconstrained. */
export interface CapabilityRequest {
  readonly resource: string;
  readonly ability: string;
  readonly caveats?: readonly Record<string, unknown>[];
}

export interface TeeBackendOptions {
  /** The appliance's Connect URL. */
  readonly applianceUrl: string;
  /** The backend's registered service principal; stamps its calls. */
  readonly credentials: Credentials;
  /** The backend's own dstack guest agent (socket path or http(s) URL), used through @phala/dstack-sdk. */
  readonly dstackEndpoint: string;
  readonly keyId: string;
  readonly grantId: string;
  readonly capabilities: readonly CapabilityRequest[];
  readonly lifetimeSeconds: number;
  /** Collateral for the backend's quote: the simulator's mock collateral in development, a PCCS in production. */
  readonly collateral: CollateralSource;
  /** When given, the Delegate receipt must verify under this (attested) appliance identity key. */
  readonly identityPublicKey?: Uint8Array;
  readonly protocol?: WireProtocol;
  /** Carried into the SIWE `Request ID` line. */
  readonly requestId?: string;
}

export interface TeeBackend {
  /** The delegation, as TinyCloud clients read it; its CID recomputed from the delegation bytes. */
  readonly delegation: TinyCloudDelegation;
  /** The key the delegation is to. Keep it in the TEE. */
  readonly delegateKey: DelegateKey;
  /** The Delegate request as sent (its attestation is public evidence) and the response, with its receipt. */
  readonly request: DelegateRequest;
  readonly response: DelegateResponse;
}

/**
 * Generates the delegate key, attests it with a fresh appliance nonce, and asks for `capabilities`
 * under the grant. Throws TeeBackendError for local failures, and the appliance's ConnectError (e.g.
 * DELEGATE_NOT_ALLOWED, DELEGATION_NOT_SUBSET) when it refuses; the key is destroyed on any failure.
 */
export async function startTeeBackend(o: TeeBackendOptions): Promise<TeeBackend> {
  const client = createOpenKeyClient({
    baseUrl: o.applianceUrl,
    credentials: o.credentials,
    ...(o.protocol === undefined ? {} : { protocol: o.protocol }),
    ...(o.identityPublicKey === undefined ? {} : { interceptors: [receiptInterceptor(o.identityPublicKey)] }),
  });
  const delegateKey = DelegateKey.generate();
  try {
    const { nonce } = await client.delegations.getDelegationNonce({});
    const attestation = await attestDelegateKey({ dstack: o.dstackEndpoint, delegatePublicKey: delegateKey.publicKey, nonce, collateral: o.collateral });
    const request = create(DelegateRequestSchema, {
      keyId: o.keyId,
      grantId: o.grantId,
      delegateDid: delegateKey.did,
      capabilities: o.capabilities.map((c) => ({ resource: c.resource, ability: c.ability, caveatsJson: c.caveats === undefined ? '' : JSON.stringify(c.caveats) })),
      lifetimeSeconds: o.lifetimeSeconds,
      requestId: o.requestId ?? '',
      attestation,
    });
    const response = await client.delegations.delegate(request);
    const delegation = parseDelegationWrapper(response.wrapperJson);
    // Trust the signed bytes, not the JSON around them (TinyCloud clients do the same).
    const auth = delegation.delegationHeader.Authorization;
    if (auth !== response.authorization || delegation.delegationCid !== response.cid || authorizationCid(auth) !== response.cid) {
      throw new TeeBackendError('DELEGATION_MISMATCH', 'the wrapper does not match the delegation bytes');
    }
    if (delegation.delegateDid !== delegateKey.did) throw new TeeBackendError('DELEGATION_MISMATCH', 'the delegation is not to this backend’s key');
    return { delegation, delegateKey, request, response };
  } catch (e) {
    delegateKey.destroy();
    throw e;
  }
}
