// WebAuthn (Level 3) for the appliance's passkeys: options for navigator.credentials.create/get and
// verification of the browser's responses, on top of @simplewebauthn/server. Pure: the caller issues,
// stores and consumes challenges (consume before verifying) and stores credentials. Every failure is
// an OpenKeyError; the specific WEBAUTHN_* codes come from our own checks, run in the order of the
// spec's verification procedures (§7.1 registration, §7.2 assertion) before the library repeats them
// and checks the attestation and signature. Anything the library rejects is WEBAUTHN_INVALID.
//
// Signature counter rule (§6.1.1, §7.2 "signCount"): if the stored and the new counter are both 0 the
// authenticator does not count (most synced passkeys) and the assertion is accepted; otherwise the new
// counter must be greater than the stored one, else WEBAUTHN_COUNTER_REGRESSION. The counter is
// compared only after the signature has verified, as the spec orders it, so a forged response cannot
// probe a credential's stored counter: it gets WEBAUTHN_INVALID.

import { createHash } from 'node:crypto';
import { p256 } from '@noble/curves/p256';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type AuthenticatorTransportFuture,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { cose, decodeAttestationObject, decodeCredentialPublicKey } from '@simplewebauthn/server/helpers';
import { isBytes } from '../core/bytes.ts';
import { OpenKeyError, ensure, type ErrorCode } from '../core/errors.ts';
import type { PasskeyCeremonies } from '../core/people.ts';

export type { PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON };

/** The relying party: the appliance's web origin(s) and the RP ID their credentials are scoped to. */
export interface RelyingParty {
  readonly rpId: string;
  readonly rpName: string;
  /** Exact origins (scheme://host[:port]) the browser may report in clientDataJSON. */
  readonly origins: readonly string[];
}

/** COSE algorithms offered, in order of preference: ES256 (-7), EdDSA (-8). */
export const PASSKEY_ALGORITHMS: readonly number[] = [-7, -8];
/** Ceremony timeout given to the browser (§5.4 `timeout`); challenges should expire no sooner. */
export const CEREMONY_TIMEOUT_MS = 300_000;
/** Challenges are 32 bytes: fresh randomness, or the digest of the request a passkey approves. */
export const CHALLENGE_LENGTH = 32;
/** §5.4.3: user handles are at most 64 bytes; at least 16 so they are not guessable labels. */
export const USER_ID_MIN_LENGTH = 16;
export const USER_ID_MAX_LENGTH = 64;
/** Authenticators may truncate user names to 64 bytes (§6.4.1); longer ones are refused here. */
export const MAX_USER_NAME_BYTES = 64;
/** §4 "Credential ID": at most 1023 bytes. */
export const MAX_CREDENTIAL_ID_LENGTH = 1023;
/** Bound on a response JSON document, ahead of any parsing; attestation chains fit well within it. */
export const MAX_RESPONSE_JSON_LENGTH = 64 * 1024;

export interface RegistrationOptionsInput {
  readonly userId: Uint8Array;
  readonly userName: string;
  readonly userDisplayName: string;
  readonly challenge: Uint8Array;
  /** The user's existing credential ids (base64url), so an authenticator is not registered twice. */
  readonly excludeCredentialIds: readonly string[];
}

export interface AuthenticationOptionsInput {
  readonly challenge: Uint8Array;
  /** Credential ids (base64url) the user may answer with; omit or leave empty for a discoverable login. */
  readonly allowCredentialIds?: readonly string[];
}

export interface VerifiedRegistration {
  /** base64url, canonical (no padding): the key to store the credential under. */
  readonly credentialId: string;
  /** The credential public key as a COSE_Key. */
  readonly publicKey: Uint8Array;
  readonly counter: number;
  /** Transports the browser reported, unknown values dropped (§5.8.4). A hint only. */
  readonly transports: string[];
  readonly backedUp: boolean;
  readonly deviceType: 'singleDevice' | 'multiDevice';
  /** Authenticator model, unattested ("none" attestation): display only, never a trust decision. */
  readonly aaguid: string;
}

/** A stored credential as the caller found it by `parseAssertionCredentialId`. */
export interface StoredCredential {
  readonly id: string;
  readonly publicKey: Uint8Array;
  readonly counter: number;
  /** Accepted so a stored record can be passed as is; verification does not use it. */
  readonly transports?: readonly string[];
}

export interface VerifiedAssertion {
  /** The counter to store (unchanged when it stays 0). */
  readonly newCounter: number;
  /**
   * The user handle the authenticator returned. The caller must check it names the credential's
   * user (§7.2); it is required for a discoverable login and may be absent otherwise.
   */
  readonly userHandle: Uint8Array | undefined;
  readonly credentialId: string;
}

export async function registrationOptions(
  rp: RelyingParty,
  input: RegistrationOptionsInput,
): Promise<PublicKeyCredentialCreationOptionsJSON> {
  checkRelyingParty(rp);
  const userId = callerBytes(input.userId, 'userId', USER_ID_MIN_LENGTH, USER_ID_MAX_LENGTH);
  const challenge = callerBytes(input.challenge, 'challenge', CHALLENGE_LENGTH, CHALLENGE_LENGTH);
  const userName = boundedName(input.userName, 'userName', false);
  const userDisplayName = boundedName(input.userDisplayName, 'userDisplayName', true);
  const excludeCredentials = input.excludeCredentialIds.map((id) => ({ id: callerCredentialId(id) }));
  return await generateRegistrationOptions({
    rpName: rp.rpName,
    rpID: rp.rpId,
    userID: userId,
    userName,
    userDisplayName,
    challenge,
    timeout: CEREMONY_TIMEOUT_MS,
    attestationType: 'none',
    excludeCredentials,
    // A fresh object per call: the library writes requireResidentKey into it.
    authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
    supportedAlgorithmIDs: [...PASSKEY_ALGORITHMS],
  });
}

export async function authenticationOptions(
  rp: RelyingParty,
  input: AuthenticationOptionsInput,
): Promise<PublicKeyCredentialRequestOptionsJSON> {
  checkRelyingParty(rp);
  const challenge = callerBytes(input.challenge, 'challenge', CHALLENGE_LENGTH, CHALLENGE_LENGTH);
  const allowed = (input.allowCredentialIds ?? []).map((id) => ({ id: callerCredentialId(id) }));
  return await generateAuthenticationOptions({
    rpID: rp.rpId,
    challenge,
    timeout: CEREMONY_TIMEOUT_MS,
    userVerification: 'required',
    ...(allowed.length > 0 ? { allowCredentials: allowed } : {}),
  });
}

/** §7.1: verifies a registration response; the caller then refuses a credential id it already has. */
export async function verifyRegistration(
  rp: RelyingParty,
  input: { readonly responseJson: string; readonly expectedChallenge: Uint8Array },
): Promise<VerifiedRegistration> {
  checkRelyingParty(rp);
  const expectedChallenge = toBase64Url(callerBytes(input.expectedChallenge, 'expectedChallenge', CHALLENGE_LENGTH, CHALLENGE_LENGTH));
  const doc = parseResponseJson(input.responseJson);
  const credentialId = credentialIdOf(doc);
  const response = objectField(doc, 'response');
  const clientDataJSON = base64UrlField(response, 'clientDataJSON');
  const attestationObject = base64UrlField(response, 'attestationObject');
  const transports = transportsOf(response['transports']);

  checkClientData(rp, fromBase64Url(clientDataJSON, 'clientDataJSON'), 'webauthn.create', expectedChallenge);
  const authData = authDataOfAttestation(fromBase64Url(attestationObject, 'attestationObject'));
  const head = checkAuthDataHead(rp, authData);
  invalidUnless((head.flags & FLAG_AT) !== 0, 'no attested credential data');
  // The library takes the credential from authData; make sure it is the one the response names.
  invalidUnless(toBase64Url(attestedCredentialId(authData)) === credentialId, 'id differs from attested credential id');

  const forLibrary: RegistrationResponseJSON = {
    id: credentialId,
    rawId: credentialId,
    type: 'public-key',
    response: { clientDataJSON, attestationObject, transports },
    clientExtensionResults: {},
  };
  const result = await libraryCall(() =>
    verifyRegistrationResponse({
      response: forLibrary,
      expectedChallenge,
      expectedOrigin: [...rp.origins],
      expectedRPID: rp.rpId,
      expectedType: 'webauthn.create',
      requireUserPresence: true,
      requireUserVerification: true,
      supportedAlgorithmIDs: [...PASSKEY_ALGORITHMS],
    }),
  );
  invalidUnless(result.verified, 'attestation not verified');
  const info = result.registrationInfo;
  invalidUnless(info.credential.id === credentialId, 'library credential id differs');
  return {
    credentialId,
    publicKey: Uint8Array.from(info.credential.publicKey),
    counter: head.signCount,
    transports,
    backedUp: info.credentialBackedUp,
    deviceType: info.credentialDeviceType,
    aaguid: info.aaguid,
  };
}

/**
 * Reads the credential id and user handle of an assertion response so the caller can look up the
 * stored credential before verifying. Nothing here is authenticated yet.
 */
export function parseAssertionCredentialId(responseJson: string): { credentialId: string; userHandle: Uint8Array | undefined } {
  const doc = parseResponseJson(responseJson);
  const response = objectField(doc, 'response');
  return { credentialId: credentialIdOf(doc), userHandle: userHandleOf(response) };
}

/** §7.2: verifies an assertion by `credential`, the stored credential the response names. */
export async function verifyAssertion(
  rp: RelyingParty,
  input: { readonly responseJson: string; readonly expectedChallenge: Uint8Array; readonly credential: StoredCredential },
): Promise<VerifiedAssertion> {
  checkRelyingParty(rp);
  const expectedChallenge = toBase64Url(callerBytes(input.expectedChallenge, 'expectedChallenge', CHALLENGE_LENGTH, CHALLENGE_LENGTH));
  const stored = checkStoredCredential(input.credential);
  const doc = parseResponseJson(input.responseJson);
  const credentialId = credentialIdOf(doc);
  const response = objectField(doc, 'response');
  const clientDataJSON = base64UrlField(response, 'clientDataJSON');
  const authenticatorData = base64UrlField(response, 'authenticatorData');
  const signature = base64UrlField(response, 'signature');
  const userHandle = userHandleOf(response);
  // The library does not compare the response's id with the credential it is given.
  invalidUnless(credentialId === stored.id, 'response names another credential');

  checkClientData(rp, fromBase64Url(clientDataJSON, 'clientDataJSON'), 'webauthn.get', expectedChallenge);
  const head = checkAuthDataHead(rp, fromBase64Url(authenticatorData, 'authenticatorData'));
  checkSignatureEncoding(stored.publicKey, fromBase64Url(signature, 'signature'));

  const forLibrary: AuthenticationResponseJSON = {
    id: credentialId,
    rawId: credentialId,
    type: 'public-key',
    response: {
      clientDataJSON,
      authenticatorData,
      signature,
      ...(userHandle === undefined ? {} : { userHandle: toBase64Url(userHandle) }),
    },
    clientExtensionResults: {},
  };
  const result = await libraryCall(() =>
    verifyAuthenticationResponse({
      response: forLibrary,
      expectedChallenge,
      expectedOrigin: [...rp.origins],
      expectedRPID: rp.rpId,
      expectedType: 'webauthn.get',
      requireUserVerification: true,
      // Stored counter 0 turns the library's own counter check off; ours runs after the signature.
      credential: { id: stored.id, publicKey: stored.publicKey, counter: 0 },
    }),
  );
  invalidUnless(result.verified, 'signature not verified');
  invalidUnless(result.authenticationInfo.newCounter === head.signCount, 'library counter differs');
  if ((stored.counter > 0 || head.signCount > 0) && head.signCount <= stored.counter) {
    throw new OpenKeyError('WEBAUTHN_COUNTER_REGRESSION', `signCount ${head.signCount} <= stored ${stored.counter}`);
  }
  return { newCounter: head.signCount, userHandle, credentialId };
}

// ---- Checks on the client data and the authenticator data ----------------------------------------

const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_BE = 0x08;
const FLAG_BS = 0x10;
const FLAG_AT = 0x40;
const AUTH_DATA_HEAD_LENGTH = 37; // rpIdHash(32) ‖ flags(1) ‖ signCount(4, big-endian)
const AAGUID_LENGTH = 16;
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** §7.1/§7.2 client data steps: type, challenge, origin, cross-origin; in the spec's order. */
function checkClientData(rp: RelyingParty, clientDataJSON: Uint8Array, type: string, expectedChallenge: string): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(STRICT_UTF8.decode(clientDataJSON));
  } catch (e) {
    throw new OpenKeyError('WEBAUTHN_INVALID', 'clientDataJSON does not parse', { cause: e });
  }
  invalidUnless(isRecord(parsed), 'clientDataJSON is not an object');
  invalidUnless(parsed['type'] === type, 'clientDataJSON type');
  const challenge = parsed['challenge'];
  invalidUnless(typeof challenge === 'string', 'clientDataJSON challenge');
  ensure(challenge === expectedChallenge, 'WEBAUTHN_CHALLENGE_INVALID', 'challenge differs from the one issued');
  const origin = parsed['origin'];
  invalidUnless(typeof origin === 'string', 'clientDataJSON origin');
  ensure(rp.origins.includes(origin), 'WEBAUTHN_ORIGIN_MISMATCH', 'origin');
  // The appliance's page is never framed by another origin (§5.8.1 crossOrigin, topOrigin).
  const crossOrigin = parsed['crossOrigin'];
  invalidUnless(crossOrigin === undefined || typeof crossOrigin === 'boolean', 'clientDataJSON crossOrigin');
  ensure(crossOrigin !== true && parsed['topOrigin'] === undefined, 'WEBAUTHN_ORIGIN_MISMATCH', 'cross-origin call');
}

interface AuthDataHead {
  readonly flags: number;
  readonly signCount: number;
}

/** §6.1 authenticator data head, checked: rpIdHash, UP, UV, and the backup flags' consistency. */
function checkAuthDataHead(rp: RelyingParty, authData: Uint8Array): AuthDataHead {
  invalidUnless(authData.length >= AUTH_DATA_HEAD_LENGTH, 'authenticatorData too short');
  const rpIdHash = authData.subarray(0, 32);
  const expected = createHash('sha256').update(rp.rpId, 'utf8').digest();
  ensure(expected.equals(rpIdHash), 'WEBAUTHN_RP_ID_MISMATCH', 'rpIdHash');
  const flags = authData[32] as number;
  invalidUnless((flags & FLAG_UP) !== 0, 'user not present');
  ensure((flags & FLAG_UV) !== 0, 'WEBAUTHN_USER_VERIFICATION_REQUIRED', 'UV flag not set');
  invalidUnless((flags & FLAG_BE) !== 0 || (flags & FLAG_BS) === 0, 'backed up but not backup eligible');
  const signCount = new DataView(authData.buffer, authData.byteOffset, authData.byteLength).getUint32(33, false);
  return { flags, signCount };
}

/** §6.5.1 attested credential data: aaguid(16) ‖ credentialIdLength(2) ‖ credentialId ‖ COSE key. */
function attestedCredentialId(authData: Uint8Array): Uint8Array {
  const at = AUTH_DATA_HEAD_LENGTH + AAGUID_LENGTH;
  invalidUnless(authData.length >= at + 2, 'attested credential data too short');
  const length = ((authData[at] as number) << 8) | (authData[at + 1] as number);
  invalidUnless(length > 0 && length <= MAX_CREDENTIAL_ID_LENGTH, 'credential id length');
  invalidUnless(authData.length >= at + 2 + length, 'attested credential data too short');
  return authData.subarray(at + 2, at + 2 + length);
}

/**
 * An ES256 signature must be DER (§6.5.6, RFC 3279 ECDSA-Sig-Value). The library's ASN.1 parser
 * also takes non-DER variants (a SEQUENCE length one short verifies), which would let anyone alter
 * a valid signature's bytes; noble's strict DER decoder refuses them.
 */
function checkSignatureEncoding(publicKey: Uint8Array<ArrayBuffer>, signature: Uint8Array): void {
  let alg: unknown;
  try {
    alg = decodeCredentialPublicKey(publicKey).get(cose.COSEKEYS.alg);
  } catch (e) {
    throw new OpenKeyError('WEBAUTHN_INVALID', 'stored public key does not decode', { cause: e });
  }
  if (alg !== cose.COSEALG.ES256) return;
  try {
    p256.Signature.fromDER(signature);
  } catch (e) {
    throw new OpenKeyError('WEBAUTHN_INVALID', 'ES256 signature is not DER', { cause: e });
  }
}

function authDataOfAttestation(attestationObject: Uint8Array): Uint8Array {
  let authData: unknown;
  try {
    authData = decodeAttestationObject(Uint8Array.from(attestationObject)).get('authData');
  } catch (e) {
    throw new OpenKeyError('WEBAUTHN_INVALID', 'attestationObject does not decode', { cause: e });
  }
  invalidUnless(isBytes(authData), 'attestationObject without authData');
  return authData;
}

// ---- The response document ------------------------------------------------------------------------

function parseResponseJson(responseJson: string): Record<string, unknown> {
  invalidUnless(typeof responseJson === 'string', 'response is not a string');
  ensure(responseJson.length <= MAX_RESPONSE_JSON_LENGTH, 'PAYLOAD_TOO_LARGE', 'response JSON');
  let doc: unknown;
  try {
    doc = JSON.parse(responseJson);
  } catch (e) {
    throw new OpenKeyError('WEBAUTHN_INVALID', 'response JSON does not parse', { cause: e });
  }
  invalidUnless(isRecord(doc), 'response JSON is not an object');
  invalidUnless(doc['type'] === 'public-key', 'credential type');
  return doc;
}

/** The credential id, which must be canonical base64url of 1–1023 bytes and equal rawId. */
function credentialIdOf(doc: Record<string, unknown>): string {
  const id = base64UrlField(doc, 'id');
  invalidUnless(doc['rawId'] === id, 'rawId differs from id');
  const bytes = fromBase64Url(id, 'id');
  invalidUnless(bytes.length > 0 && bytes.length <= MAX_CREDENTIAL_ID_LENGTH, 'credential id length');
  return id;
}

/** Absent, null or empty means no user handle (non-discoverable credentials may return none). */
function userHandleOf(response: Record<string, unknown>): Uint8Array | undefined {
  const v = response['userHandle'];
  if (v === undefined || v === null || v === '') return undefined;
  const bytes = fromBase64Url(v, 'userHandle');
  invalidUnless(bytes.length > 0 && bytes.length <= USER_ID_MAX_LENGTH, 'userHandle length');
  return bytes;
}

const KNOWN_TRANSPORTS: readonly AuthenticatorTransportFuture[] = ['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb'];
const MAX_TRANSPORTS = 16;

function transportsOf(v: unknown): AuthenticatorTransportFuture[] {
  if (v === undefined) return [];
  invalidUnless(Array.isArray(v) && v.length <= MAX_TRANSPORTS, 'transports');
  const out: AuthenticatorTransportFuture[] = [];
  for (const t of v) {
    invalidUnless(typeof t === 'string', 'transport');
    const known = KNOWN_TRANSPORTS.find((k) => k === t);
    if (known !== undefined && !out.includes(known)) out.push(known);
  }
  return out;
}

function objectField(doc: Record<string, unknown>, name: string): Record<string, unknown> {
  const v = doc[name];
  invalidUnless(isRecord(v), `${name} is not an object`);
  return v;
}

/** A required, non-empty base64url field, returned as the string. */
function base64UrlField(doc: Record<string, unknown>, name: string): string {
  const v = base64UrlString(doc[name], name);
  invalidUnless(v !== '', `${name} is empty`);
  return v;
}

// ---- Encoding and caller inputs ---------------------------------------------------------------------

const BASE64URL_RE = /^[A-Za-z0-9_-]*$/;

/**
 * `v` if it is strict base64url (RFC 4648 §5: no padding, canonical trailing bits), else `code`.
 * Canonical means one string per byte sequence, so credential ids compare and index as strings.
 */
function base64UrlString(v: unknown, label: string, code: ErrorCode = 'WEBAUTHN_INVALID'): string {
  if (typeof v !== 'string' || !BASE64URL_RE.test(v)) throw new OpenKeyError(code, `${label}: not base64url`);
  if (Buffer.from(v, 'base64url').toString('base64url') !== v) throw new OpenKeyError(code, `${label}: not canonical base64url`);
  return v;
}

function fromBase64Url(v: unknown, label: string, code: ErrorCode = 'WEBAUTHN_INVALID'): Uint8Array {
  return new Uint8Array(Buffer.from(base64UrlString(v, label, code), 'base64url'));
}

function toBase64Url(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
}

function invalidUnless(condition: unknown, detail: string): asserts condition {
  ensure(condition, 'WEBAUTHN_INVALID', detail);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Runs a library call on one failure channel: anything it throws is WEBAUTHN_INVALID. */
async function libraryCall<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    throw new OpenKeyError('WEBAUTHN_INVALID', 'rejected by @simplewebauthn/server', { cause: e });
  }
}

// Values the server itself chose or stored: a bad one is a bug here, so INTERNAL.

function checkRelyingParty(rp: RelyingParty): void {
  ensure(typeof rp.rpId === 'string' && rp.rpId !== '', 'INTERNAL', 'rpId');
  ensure(rp.origins.length > 0 && rp.origins.every((o) => typeof o === 'string' && o !== ''), 'INTERNAL', 'origins');
}

function callerBytes(v: unknown, label: string, min: number, max: number): Uint8Array<ArrayBuffer> {
  ensure(isBytes(v) && v.length >= min && v.length <= max, 'INTERNAL', `${label}: expected ${min}..${max} bytes`);
  return Uint8Array.from(v);
}

function callerCredentialId(id: string): string {
  const bytes = fromBase64Url(id, 'stored credential id', 'INTERNAL');
  ensure(bytes.length > 0 && bytes.length <= MAX_CREDENTIAL_ID_LENGTH, 'INTERNAL', 'stored credential id length');
  return id;
}

function checkStoredCredential(c: StoredCredential): { id: string; publicKey: Uint8Array<ArrayBuffer>; counter: number } {
  const id = callerCredentialId(c.id);
  ensure(isBytes(c.publicKey) && c.publicKey.length > 0, 'INTERNAL', 'stored public key');
  ensure(Number.isSafeInteger(c.counter) && c.counter >= 0 && c.counter <= 0xffff_ffff, 'INTERNAL', 'stored counter');
  return { id, publicKey: Uint8Array.from(c.publicKey), counter: c.counter };
}

/** User names come from people: required (display names may be empty) and bounded. */
function boundedName(v: string, label: string, mayBeEmpty: boolean): string {
  ensure(typeof v === 'string', 'MALFORMED_REQUEST', label);
  ensure(mayBeEmpty || v !== '', 'MISSING_FIELD', label);
  ensure(Buffer.byteLength(v, 'utf8') <= MAX_USER_NAME_BYTES, 'PAYLOAD_TOO_LARGE', label);
  return v;
}

/** The PasskeyCeremonies port (core/people.ts) for one relying party. `rp` is read on every call. */
export function createPasskeyCeremonies(rp: RelyingParty): PasskeyCeremonies {
  return {
    registrationOptions: (input) => registrationOptions(rp, input),
    authenticationOptions: (input) => authenticationOptions(rp, input),
    verifyRegistration: (input) => verifyRegistration(rp, input),
    verifyAssertion: (input) => verifyAssertion(rp, input),
    parseAssertionCredentialId,
  };
}
