// UCAN delegations as TinyCloud writes them (ssi `ucan::Payload::sign`, js-sdk `compact-ucan.ts`):
// a JWT with JCS-canonical segments, header {alg:"EdDSA", jwk:{Ed25519 OKP public key}, typ:"JWT",
// ucv:"0.10.0"}, payload {att:<ReCap-style resource→ability→caveats>, aud, exp, fct?, iss:<did:key URL>,
// nbf?, nnc:"urn:uuid:…", prf:[…]}. CID = CIDv1(raw, BLAKE3-256 of the JWT text). Signing is injected.

import { OpenKeyError } from '../errors.ts';
import { ed25519Verify } from '../crypto/ed25519.ts';
import { parseDidKey } from '../crypto/did.ts';
import { equalBytes } from '../bytes.ts';
import { base64urlDecode, base64urlEncode } from './base64url.ts';
import { blake3RawCid } from './cacao.ts';
import { canonicalizeEntries, checkCaveats, MAX_CAPABILITIES, type CapabilityEntry } from './capability.ts';
import { canonicalJson, checkJson, decodeUtf8, isPlainObject, parseJsonText, type JsonObject } from './jcs.ts';
import { recapAttenuations } from './recap.ts';
import { ed25519DidUrl, parseAbility, parseDelegateDid, parseResource } from './resource.ts';

export const UCAN_VERSION = '0.10.0';
export const MAX_UCAN_CHARS = 64 * 1024;
const MAX_FACTS = 8;
const MAX_PROOFS = 16;
const UUID_RE = /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const NONCE_RE = /^[\x21-\x7e]{1,128}$/;
const PROOF_RE = /^[A-Za-z0-9]{1,128}$/; // a multibase CID string (base32 'b…' or base58btc 'z…')

/** The audience is a DID without fragment: an Ed25519 did:key or an eip155 did:pkh (resource.ts). */
function checkAudience(aud: unknown): string {
  if (typeof aud !== 'string' || parseDelegateDid(aud).did !== aud) throw new OpenKeyError('MALFORMED_REQUEST', 'UCAN aud must be a DID without fragment');
  return aud;
}

// Type aliases (not interfaces) so they are assignable to JsonObject and serialize without casts.
export type UcanHeader = {
  readonly alg: 'EdDSA';
  readonly jwk: { readonly alg: 'EdDSA'; readonly crv: 'Ed25519'; readonly kty: 'OKP'; readonly x: string };
  readonly typ: 'JWT';
  readonly ucv: typeof UCAN_VERSION;
};

export type UcanPayload = {
  readonly att: JsonObject;
  readonly aud: string;
  /** Seconds since the epoch. */
  readonly exp: number;
  readonly fct?: readonly JsonObject[];
  /** The issuer's DID URL, `did:key:z…#z…`. */
  readonly iss: string;
  readonly nbf?: number;
  readonly nnc: string;
  /** Parent delegation CIDs; empty for a root delegation. */
  readonly prf: readonly string[];
};

export interface UcanParams {
  /** The issuer's 32-byte Ed25519 public key. */
  readonly issuerPublicKey: Uint8Array;
  /** The audience DID (no fragment). */
  readonly audience: string;
  readonly capabilities: readonly CapabilityEntry[];
  /** Seconds since the epoch. */
  readonly expiresAt: number;
  readonly notBefore?: number;
  readonly nonce: string;
  readonly facts?: readonly JsonObject[];
  readonly proofs?: readonly string[];
}

export interface UnsignedUcan {
  readonly header: UcanHeader;
  readonly payload: UcanPayload;
  /** `base64url(header) "." base64url(payload)` as ASCII bytes: what the issuer signs. */
  readonly signingInput: Uint8Array;
}

export interface SignedUcan extends UnsignedUcan {
  readonly jwt: string;
  readonly signature: Uint8Array;
  readonly cid: string;
}

/** `urn:uuid:` + an RFC 9562 version-4 UUID from 16 random bytes. */
export function uuidNonce(random16: Uint8Array): string {
  if (random16.length !== 16) throw new OpenKeyError('INTERNAL', 'uuid needs 16 random bytes');
  const b = Uint8Array.from(random16);
  b[6] = ((b[6] as number) & 0x0f) | 0x40;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  const h = Buffer.from(b).toString('hex');
  return `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function checkSeconds(v: unknown, label: string): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw new OpenKeyError('MALFORMED_REQUEST', `UCAN ${label} must be whole seconds`);
  return v as number;
}

function ucanHeader(issuerPublicKey: Uint8Array): UcanHeader {
  return { alg: 'EdDSA', jwk: { alg: 'EdDSA', crv: 'Ed25519', kty: 'OKP', x: base64urlEncode(issuerPublicKey) }, typ: 'JWT', ucv: UCAN_VERSION };
}

function segment(value: JsonObject): string {
  return base64urlEncode(new TextEncoder().encode(canonicalJson(value)));
}

/** Builds the header, payload and signing input; nothing is signed here. */
export function prepareUcan(params: UcanParams): UnsignedUcan {
  const iss = ed25519DidUrl(params.issuerPublicKey); // checks the key is a valid Ed25519 point
  if (params.capabilities.length === 0) throw new OpenKeyError('MISSING_FIELD', 'UCAN capabilities');
  const exp = checkSeconds(params.expiresAt, 'exp');
  const nbf = params.notBefore === undefined ? undefined : checkSeconds(params.notBefore, 'nbf');
  if (nbf !== undefined && nbf >= exp) throw new OpenKeyError('MALFORMED_REQUEST', 'UCAN nbf must precede exp');
  if (!NONCE_RE.test(params.nonce)) throw new OpenKeyError('MALFORMED_REQUEST', 'UCAN nonce');
  const facts = params.facts?.map((f) => checkJson(f, { maxDepth: 8, maxNodes: 256, maxStringLength: 1024, maxMembers: 64 }, 'UCAN fact') as JsonObject);
  if (facts !== undefined && facts.length > MAX_FACTS) throw new OpenKeyError('PAYLOAD_TOO_LARGE', 'UCAN facts');
  const proofs = [...(params.proofs ?? [])];
  if (proofs.length > MAX_PROOFS) throw new OpenKeyError('PAYLOAD_TOO_LARGE', 'UCAN proofs');
  for (const p of proofs) if (!PROOF_RE.test(p)) throw new OpenKeyError('MALFORMED_REQUEST', 'UCAN proof must be a CID string');
  checkAudience(params.audience);
  const header = ucanHeader(params.issuerPublicKey);
  const payload: UcanPayload = {
    att: recapAttenuations(canonicalizeEntries(params.capabilities)),
    aud: params.audience,
    exp,
    ...(facts !== undefined ? { fct: facts } : {}),
    iss,
    ...(nbf !== undefined ? { nbf } : {}),
    nnc: params.nonce,
    prf: proofs,
  };
  const signingInput = new TextEncoder().encode(`${segment(header)}.${segment(payload)}`);
  if (signingInput.length > MAX_UCAN_CHARS) throw new OpenKeyError('PAYLOAD_TOO_LARGE', 'UCAN too large');
  return { header, payload, signingInput };
}

/**
 * Attaches a 64-byte Ed25519 signature after checking it verifies under the issuer key, so a wrong
 * key or a faulty signer can never yield a token that looks issued.
 */
export function finishUcan(unsigned: UnsignedUcan, signature: Uint8Array, issuerPublicKey: Uint8Array): SignedUcan {
  if (!(signature instanceof Uint8Array) || signature.length !== 64 || !ed25519Verify(issuerPublicKey, unsigned.signingInput, signature)) {
    throw new OpenKeyError('INTERNAL', 'the Ed25519 signer returned a signature that does not verify for the issuer');
  }
  const jwt = `${new TextDecoder().decode(unsigned.signingInput)}.${base64urlEncode(signature)}`;
  return { ...unsigned, jwt, signature: Uint8Array.from(signature), cid: blake3RawCid(new TextEncoder().encode(jwt)) };
}

/** prepareUcan, then the injected signer, then finishUcan. */
export async function signUcan(params: UcanParams, sign: (message: Uint8Array) => Uint8Array | Promise<Uint8Array>): Promise<SignedUcan> {
  const unsigned = prepareUcan(params);
  return finishUcan(unsigned, await sign(unsigned.signingInput), params.issuerPublicKey);
}

export interface VerifiedUcan {
  readonly header: UcanHeader;
  readonly payload: UcanPayload;
  readonly capabilities: CapabilityEntry[];
  readonly issuerPublicKey: Uint8Array;
  readonly cid: string;
}

function checkMembers(v: Record<string, unknown>, required: readonly string[], optional: readonly string[], label: string): void {
  for (const k of required) if (!Object.hasOwn(v, k)) throw new OpenKeyError('MALFORMED_REQUEST', `UCAN ${label} lacks ${k}`);
  for (const k of Object.keys(v)) if (!required.includes(k) && !optional.includes(k)) throw new OpenKeyError('MALFORMED_REQUEST', `UCAN ${label} member ${k}`);
}

/**
 * Parses and verifies a UCAN in the form this module writes: canonical segments, the header above,
 * the JWK binding the issuer's did:key, a valid Ed25519 signature, checked capabilities. Time bounds
 * are the caller's to check against its clock. Every failure, a bad signature included, is
 * MALFORMED_REQUEST (or PAYLOAD_TOO_LARGE for an exceeded bound).
 */
export function verifyUcan(jwt: unknown): VerifiedUcan {
  if (typeof jwt !== 'string') throw new OpenKeyError('MALFORMED_REQUEST', 'UCAN is not text');
  if (jwt.length > MAX_UCAN_CHARS) throw new OpenKeyError('PAYLOAD_TOO_LARGE', 'UCAN too large');
  const parts = jwt.split('.');
  if (parts.length !== 3) throw new OpenKeyError('MALFORMED_REQUEST', 'UCAN must have three segments');
  const [h64, p64, s64] = parts as [string, string, string];
  const headerText = decodeUtf8(base64urlDecode(h64, { padded: false, maxChars: MAX_UCAN_CHARS, label: 'UCAN header' }), 'UCAN header');
  const payloadText = decodeUtf8(base64urlDecode(p64, { padded: false, maxChars: MAX_UCAN_CHARS, label: 'UCAN payload' }), 'UCAN payload');
  const signature = base64urlDecode(s64, { padded: false, maxChars: 128, label: 'UCAN signature' });
  const header = parseJsonText(headerText, MAX_UCAN_CHARS, 'UCAN header');
  const payload = parseJsonText(payloadText, MAX_UCAN_CHARS, 'UCAN payload');
  if (!isPlainObject(header) || !isPlainObject(payload)) throw new OpenKeyError('MALFORMED_REQUEST', 'UCAN segments must be objects');
  checkMembers(header, ['alg', 'jwk', 'typ', 'ucv'], [], 'header');
  const jwk = header['jwk'];
  if (!isPlainObject(jwk)) throw new OpenKeyError('MALFORMED_REQUEST', 'UCAN jwk');
  checkMembers(jwk, ['alg', 'crv', 'kty', 'x'], [], 'jwk');
  if (header['alg'] !== 'EdDSA' || header['typ'] !== 'JWT' || header['ucv'] !== UCAN_VERSION || jwk['alg'] !== 'EdDSA' || jwk['crv'] !== 'Ed25519' || jwk['kty'] !== 'OKP') {
    throw new OpenKeyError('MALFORMED_REQUEST', 'UCAN header values');
  }
  checkMembers(payload, ['att', 'aud', 'exp', 'iss', 'nnc', 'prf'], ['fct', 'nbf'], 'payload');
  const iss = payload['iss'];
  if (typeof iss !== 'string' || !iss.includes('#')) throw new OpenKeyError('MALFORMED_REQUEST', 'UCAN iss must be a did:key URL');
  const { algorithm, publicKey } = parseDidKey(iss.slice(0, iss.indexOf('#')));
  if (algorithm !== 'ed25519' || ed25519DidUrl(publicKey) !== iss) throw new OpenKeyError('MALFORMED_REQUEST', 'UCAN iss must be an Ed25519 did:key URL');
  if (!equalBytes(base64urlDecode(jwk['x'], { padded: false, maxChars: 64, label: 'UCAN jwk x' }), publicKey)) throw new OpenKeyError('MALFORMED_REQUEST', 'UCAN jwk does not bind the issuer');
  if (!ed25519Verify(publicKey, new TextEncoder().encode(`${h64}.${p64}`), signature)) throw new OpenKeyError('MALFORMED_REQUEST', 'UCAN signature does not verify');
  const att = payload['att'];
  if (!isPlainObject(att)) throw new OpenKeyError('MALFORMED_REQUEST', 'UCAN att');
  const entries: CapabilityEntry[] = [];
  for (const [resourceUri, abilities] of Object.entries(att)) {
    const resource = parseResource(resourceUri);
    if (!isPlainObject(abilities)) throw new OpenKeyError('MALFORMED_REQUEST', 'UCAN att abilities');
    for (const [ability, caveats] of Object.entries(abilities)) {
      if (entries.length >= MAX_CAPABILITIES) throw new OpenKeyError('PAYLOAD_TOO_LARGE', 'UCAN capabilities');
      entries.push({ resource: resource.uri, ability: parseAbility(ability, resource.service), caveats: checkCaveats(caveats, 'UCAN caveats') });
    }
  }
  const capabilities = canonicalizeEntries(entries);
  const prf = payload['prf'];
  const fct = payload['fct'];
  if (!Array.isArray(prf) || prf.length > MAX_PROOFS || !prf.every((p: unknown) => typeof p === 'string' && PROOF_RE.test(p))) throw new OpenKeyError('MALFORMED_REQUEST', 'UCAN prf');
  if (fct !== undefined && (!Array.isArray(fct) || fct.length > MAX_FACTS || !fct.every(isPlainObject))) throw new OpenKeyError('MALFORMED_REQUEST', 'UCAN fct');
  if (typeof payload['nnc'] !== 'string' || !NONCE_RE.test(payload['nnc'])) throw new OpenKeyError('MALFORMED_REQUEST', 'UCAN nnc');
  const parsed: UcanPayload = {
    att: recapAttenuations(capabilities),
    aud: checkAudience(payload['aud']),
    exp: checkSeconds(payload['exp'], 'exp'),
    ...(fct !== undefined ? { fct: fct.map((f: unknown) => checkJson(f, { maxDepth: 8, maxNodes: 256, maxStringLength: 1024, maxMembers: 64 }, 'UCAN fact') as JsonObject) } : {}),
    iss,
    ...(payload['nbf'] !== undefined ? { nbf: checkSeconds(payload['nbf'], 'nbf') } : {}),
    nnc: payload['nnc'],
    prf: prf as string[],
  };
  const canonicalHeader = ucanHeader(publicKey);
  if (segment(canonicalHeader) !== h64 || segment(parsed) !== p64) throw new OpenKeyError('MALFORMED_REQUEST', 'UCAN segments are not canonical');
  return { header: canonicalHeader, payload: parsed, capabilities, issuerPublicKey: publicKey, cid: blake3RawCid(new TextEncoder().encode(jwt)) };
}

/** True iff `nonce` has the `urn:uuid:` v4 form this module generates. */
export function isUuidNonce(nonce: string): boolean {
  return UUID_RE.test(nonce);
}
