// WebAuthn in the page: the appliance sends ceremony options as JSON (WebAuthn L3 §5.4
// PublicKeyCredentialCreationOptionsJSON, §5.5 PublicKeyCredentialRequestOptionsJSON, binary
// fields base64url); this module checks and decodes them for navigator.credentials, and encodes the
// authenticator's answer as RegistrationResponseJSON / AuthenticationResponseJSON (§5.1.8–5.1.9)
// for the appliance to verify. Options are parsed as `unknown` and checked field by field.

import { base64UrlDecode, base64UrlEncode } from '../../proto/protocol/stamp.ts';
import { browser, type CreationOptions, type CredentialDescriptor, type RequestOptions } from './dom.ts';

/** A failure in the page itself (bad input, a refused passkey prompt), with a stable code. */
export class PageError extends Error {
  override readonly name = 'PageError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type Obj = Readonly<Record<string, unknown>>;

function obj(v: unknown, what: string): Obj {
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Obj;
  throw new PageError('BAD_OPTIONS', `${what} is not an object`);
}

function str(v: unknown, what: string): string {
  if (typeof v === 'string') return v;
  throw new PageError('BAD_OPTIONS', `${what} is not a string`);
}

function list(v: unknown, what: string): readonly unknown[] {
  if (v === undefined) return [];
  if (Array.isArray(v)) return v;
  throw new PageError('BAD_OPTIONS', `${what} is not a list`);
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], what: string): T {
  const found = allowed.find((a) => a === v);
  if (found === undefined) throw new PageError('BAD_OPTIONS', `${what} is not one of ${allowed.join(', ')}`);
  return found;
}

/** base64url → bytes backed by a plain ArrayBuffer (what WebAuthn's BufferSource wants). */
function b64u(v: unknown, what: string): Uint8Array<ArrayBuffer> {
  const s = str(v, what);
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) throw new PageError('BAD_OPTIONS', `${what} is not base64url`);
  return new Uint8Array(base64UrlDecode(s));
}

const enc = (b: ArrayBuffer): string => base64UrlEncode(new Uint8Array(b));

const USER_VERIFICATION = ['required', 'preferred', 'discouraged'] as const;
const RESIDENT_KEY = ['required', 'preferred', 'discouraged'] as const;

function descriptors(v: unknown, what: string): CredentialDescriptor[] {
  return list(v, what).map((d, i) => ({ type: 'public-key', id: b64u(obj(d, `${what}[${i}]`)['id'], `${what}[${i}].id`) }));
}

/** §5.4: creation options for navigator.credentials.create from the appliance's JSON. */
export function creationOptions(json: string): CreationOptions {
  const o = obj(JSON.parse(json) as unknown, 'creation options');
  const rp = obj(o['rp'], 'rp');
  const user = obj(o['user'], 'user');
  const sel = o['authenticatorSelection'] === undefined ? undefined : obj(o['authenticatorSelection'], 'authenticatorSelection');
  const options: CreationOptions = {
    challenge: b64u(o['challenge'], 'challenge'),
    rp: { name: str(rp['name'], 'rp.name'), ...(rp['id'] === undefined ? {} : { id: str(rp['id'], 'rp.id') }) },
    user: { id: b64u(user['id'], 'user.id'), name: str(user['name'], 'user.name'), displayName: str(user['displayName'], 'user.displayName') },
    pubKeyCredParams: list(o['pubKeyCredParams'], 'pubKeyCredParams').map((p, i) => {
      const alg = obj(p, `pubKeyCredParams[${i}]`)['alg'];
      if (typeof alg !== 'number' || !Number.isInteger(alg)) throw new PageError('BAD_OPTIONS', `pubKeyCredParams[${i}].alg is not an integer`);
      return { type: 'public-key', alg };
    }),
    excludeCredentials: descriptors(o['excludeCredentials'], 'excludeCredentials'),
    attestation: 'none',
  };
  if (typeof o['timeout'] === 'number') options.timeout = o['timeout'];
  if (sel !== undefined) {
    options.authenticatorSelection = {
      ...(sel['residentKey'] === undefined ? {} : { residentKey: oneOf(sel['residentKey'], RESIDENT_KEY, 'residentKey') }),
      ...(sel['requireResidentKey'] === true ? { requireResidentKey: true } : {}),
      ...(sel['userVerification'] === undefined ? {} : { userVerification: oneOf(sel['userVerification'], USER_VERIFICATION, 'userVerification') }),
    };
  }
  // credProps tells whether the passkey is discoverable; the only extension the appliance asks for.
  const ext = o['extensions'] === undefined ? undefined : obj(o['extensions'], 'extensions');
  if (ext?.['credProps'] === true) options.extensions = { credProps: true };
  return options;
}

/** §5.5: request options for navigator.credentials.get from the appliance's JSON. */
export function requestOptions(json: string): RequestOptions {
  const o = obj(JSON.parse(json) as unknown, 'request options');
  const options: RequestOptions = {
    challenge: b64u(o['challenge'], 'challenge'),
    allowCredentials: descriptors(o['allowCredentials'], 'allowCredentials'),
    userVerification: o['userVerification'] === undefined ? 'required' : oneOf(o['userVerification'], USER_VERIFICATION, 'userVerification'),
  };
  if (o['rpId'] !== undefined) options.rpId = str(o['rpId'], 'rpId');
  if (typeof o['timeout'] === 'number') options.timeout = o['timeout'];
  return options;
}

/** Registers a passkey; returns RegistrationResponseJSON as text. */
export async function createPasskey(options: CreationOptions): Promise<string> {
  const PublicKeyCredential = webAuthn();
  const cred = await ceremony(() => browser.navigator.credentials.create({ publicKey: options }));
  if (!(cred instanceof PublicKeyCredential) || !(cred.response instanceof browser.AuthenticatorAttestationResponse)) {
    throw new PageError('PASSKEY_FAILED', 'the browser returned no passkey');
  }
  const r = cred.response;
  return JSON.stringify({
    id: cred.id,
    rawId: enc(cred.rawId),
    type: cred.type,
    response: {
      clientDataJSON: enc(r.clientDataJSON),
      attestationObject: enc(r.attestationObject),
      transports: r.getTransports(),
    },
    clientExtensionResults: cred.getClientExtensionResults(),
    ...(cred.authenticatorAttachment === null ? {} : { authenticatorAttachment: cred.authenticatorAttachment }),
  });
}

/** Gets an assertion (sign-in or approval); returns AuthenticationResponseJSON as text. */
export async function getAssertion(options: RequestOptions): Promise<string> {
  const PublicKeyCredential = webAuthn();
  const cred = await ceremony(() => browser.navigator.credentials.get({ publicKey: options }));
  if (!(cred instanceof PublicKeyCredential) || !(cred.response instanceof browser.AuthenticatorAssertionResponse)) {
    throw new PageError('PASSKEY_FAILED', 'the browser returned no passkey assertion');
  }
  const r = cred.response;
  return JSON.stringify({
    id: cred.id,
    rawId: enc(cred.rawId),
    type: cred.type,
    response: {
      clientDataJSON: enc(r.clientDataJSON),
      authenticatorData: enc(r.authenticatorData),
      signature: enc(r.signature),
      ...(r.userHandle === null ? {} : { userHandle: enc(r.userHandle) }),
    },
    clientExtensionResults: cred.getClientExtensionResults(),
    ...(cred.authenticatorAttachment === null ? {} : { authenticatorAttachment: cred.authenticatorAttachment }),
  });
}

/** The PublicKeyCredential class, or a clear error where passkeys cannot work. */
function webAuthn(): NonNullable<typeof browser.PublicKeyCredential> {
  const PublicKeyCredential = browser.PublicKeyCredential;
  if (PublicKeyCredential === undefined || !browser.isSecureContext) {
    throw new PageError('PASSKEYS_UNAVAILABLE', 'passkeys need a browser with WebAuthn and a secure context: open the page over https, or at http://localhost');
  }
  return PublicKeyCredential;
}

/** Runs a browser ceremony, turning its DOMExceptions (§5.1.3, §5.1.4) into clear page errors. */
async function ceremony<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof DOMException)) throw e;
    switch (e.name) {
      case 'NotAllowedError':
        throw new PageError('PASSKEY_CANCELLED', 'the passkey prompt was cancelled or timed out, or no passkey for this site was found');
      case 'InvalidStateError':
        throw new PageError('PASSKEY_EXISTS', 'this authenticator already holds a passkey for you');
      case 'SecurityError':
        throw new PageError('PASSKEY_WRONG_ORIGIN', `this page's address (${browser.location.origin}) does not belong to the appliance's relying party`);
      default:
        throw new PageError('PASSKEY_FAILED', `${e.name}: ${e.message}`);
    }
  }
}
