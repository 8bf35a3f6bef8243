// A software passkey plus the browser around it, for tests: answers creation and request options
// with the RegistrationResponseJSON / AuthenticationResponseJSON a browser's toJSON() would send
// (WebAuthn L3 §5.8.1 client data, §6.1 authenticator data, §8.7 "none" attestation),
// using ES256 (P-256) keys and DER signatures. Overrides bend single fields for negative tests; the
// rest of the response stays genuine and correctly signed. node:crypto only.

import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';

export interface SoftAuthenticatorOptions {
  /** The page's origin, reported in clientDataJSON. */
  readonly origin: string;
  /** The RP ID hashed into authenticatorData. Default: the options' RP ID, else the origin's host. */
  readonly rpId?: string;
  /** Sets the BE and BS flags, like a synced passkey. Default false: a device-bound credential. */
  readonly backedUp?: boolean;
}

/** Per-ceremony deviations from what an honest browser and authenticator would send. */
export interface CeremonyOverrides {
  readonly origin?: string;
  /** Hashed into authenticatorData instead of the RP ID in use; does not change which credential answers. */
  readonly rpId?: string;
  /** Default true. */
  readonly userPresent?: boolean;
  /** Default true. */
  readonly userVerified?: boolean;
  /** The signCount to report; it also becomes the credential's counter. Default: 0 at registration, +1 per assertion. */
  readonly counter?: number;
  /** The clientDataJSON challenge, verbatim (normally the options' base64url challenge). */
  readonly challenge?: string;
  /** The clientDataJSON type (normally webauthn.create / webauthn.get). */
  readonly type?: string;
  /** Default false. */
  readonly crossOrigin?: boolean;
}

export interface AssertionOverrides extends CeremonyOverrides {
  /** The credential that answers, as if the user picked it in the browser's chooser. */
  readonly credentialId?: string;
}

interface SoftCredential {
  readonly id: string;
  readonly rpId: string;
  readonly userHandle: Uint8Array;
  readonly privateKey: KeyObject;
  signCount: number;
}

const ES256 = -7;
const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_BE = 0x08;
const FLAG_BS = 0x10;
const FLAG_AT = 0x40;
const AAGUID_NONE = new Uint8Array(16);
const CREDENTIAL_ID_LENGTH = 16;

export class SoftAuthenticator {
  readonly #origin: string;
  readonly #rpId: string | undefined;
  readonly #backedUp: boolean;
  readonly #credentials: SoftCredential[] = [];

  constructor(options: SoftAuthenticatorOptions) {
    this.#origin = options.origin;
    this.#rpId = options.rpId;
    this.#backedUp = options.backedUp ?? false;
  }

  /** Ids (base64url) of the credentials created so far, oldest first. */
  get credentialIds(): string[] {
    return this.#credentials.map((c) => c.id);
  }

  /** navigator.credentials.create() with a platform authenticator, then toJSON(). */
  register(options: PublicKeyCredentialCreationOptionsJSON, overrides: CeremonyOverrides = {}): RegistrationResponseJSON {
    if (!options.pubKeyCredParams.some((p) => p.type === 'public-key' && p.alg === ES256)) {
      throw new Error('NotSupportedError: ES256 not offered');
    }
    const rpId = this.#rpIdFor(options.rp.id);
    const excluded = new Set((options.excludeCredentials ?? []).map((c) => c.id));
    if (this.#credentials.some((c) => c.rpId === rpId && excluded.has(c.id))) {
      throw new Error('InvalidStateError: a credential of this authenticator is excluded');
    }

    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const rawId = new Uint8Array(randomBytes(CREDENTIAL_ID_LENGTH));
    const credential: SoftCredential = {
      id: b64u(rawId),
      rpId,
      userHandle: fromB64u(options.user.id),
      privateKey,
      signCount: overrides.counter ?? 0,
    };
    const authData = concat(
      this.#authDataHead(overrides.rpId ?? rpId, overrides, FLAG_AT, credential.signCount),
      AAGUID_NONE,
      u16(rawId.length),
      rawId,
      coseEc2PublicKey(publicKey),
    );
    const attestationObject = cbor(
      new Map<Cbor, Cbor>([
        ['fmt', 'none'],
        ['attStmt', new Map()],
        ['authData', authData],
      ]),
    );
    const clientDataJSON = this.#clientData('webauthn.create', options.challenge, overrides);
    this.#credentials.push(credential);
    return {
      id: credential.id,
      rawId: credential.id,
      type: 'public-key',
      authenticatorAttachment: 'platform',
      clientExtensionResults: { credProps: { rk: true } },
      response: {
        clientDataJSON: b64u(clientDataJSON),
        attestationObject: b64u(attestationObject),
        authenticatorData: b64u(authData),
        transports: ['hybrid', 'internal'],
        publicKeyAlgorithm: ES256,
        publicKey: b64u(publicKey.export({ format: 'der', type: 'spki' })),
      },
    };
  }

  /** navigator.credentials.get(), then toJSON(). Discoverable when allowCredentials is empty. */
  assert(options: PublicKeyCredentialRequestOptionsJSON, overrides: AssertionOverrides = {}): AuthenticationResponseJSON {
    const rpId = this.#rpIdFor(options.rpId);
    const credential = this.#pick(rpId, options, overrides.credentialId);
    credential.signCount = overrides.counter ?? credential.signCount + 1;
    const authData = this.#authDataHead(overrides.rpId ?? rpId, overrides, 0, credential.signCount);
    const clientDataJSON = this.#clientData('webauthn.get', options.challenge, overrides);
    const clientDataHash = createHash('sha256').update(clientDataJSON).digest();
    // §6.3.3: the signature covers authenticatorData ‖ SHA-256(clientDataJSON); ES256 is DER-encoded.
    const signature = sign('sha256', concat(authData, clientDataHash), credential.privateKey);
    return {
      id: credential.id,
      rawId: credential.id,
      type: 'public-key',
      authenticatorAttachment: 'platform',
      clientExtensionResults: {},
      response: {
        clientDataJSON: b64u(clientDataJSON),
        authenticatorData: b64u(authData),
        signature: b64u(signature),
        userHandle: b64u(credential.userHandle),
      },
    };
  }

  #rpIdFor(fromOptions: string | undefined): string {
    return this.#rpId ?? fromOptions ?? new URL(this.#origin).hostname;
  }

  #pick(rpId: string, options: PublicKeyCredentialRequestOptionsJSON, chosen: string | undefined): SoftCredential {
    const allowed = new Set((options.allowCredentials ?? []).map((c) => c.id));
    const candidates = this.#credentials.filter((c) => c.rpId === rpId && (allowed.size === 0 || allowed.has(c.id)));
    const credential = chosen === undefined ? candidates.at(-1) : candidates.find((c) => c.id === chosen);
    if (credential === undefined) throw new Error('NotAllowedError: no matching credential');
    return credential;
  }

  /** §6.1: rpIdHash(32) ‖ flags(1) ‖ signCount(4, big-endian). */
  #authDataHead(rpId: string, overrides: CeremonyOverrides, extraFlags: number, signCount: number): Uint8Array {
    let flags = extraFlags;
    if (overrides.userPresent ?? true) flags |= FLAG_UP;
    if (overrides.userVerified ?? true) flags |= FLAG_UV;
    if (this.#backedUp) flags |= FLAG_BE | FLAG_BS;
    const rpIdHash = createHash('sha256').update(rpId, 'utf8').digest();
    return concat(rpIdHash, Uint8Array.of(flags), u32(signCount));
  }

  /** §5.8.1.1: members in the order type, challenge, origin, crossOrigin, as browsers serialize them. */
  #clientData(type: string, challenge: string, overrides: CeremonyOverrides): Uint8Array {
    const clientData = {
      type: overrides.type ?? type,
      challenge: overrides.challenge ?? challenge,
      origin: overrides.origin ?? this.#origin,
      crossOrigin: overrides.crossOrigin ?? false,
    };
    return new TextEncoder().encode(JSON.stringify(clientData));
  }
}

/** RFC 9053 §7.1.1 / RFC 9052 §7: COSE_Key EC2 {1: kty EC2, 3: alg ES256, -1: crv P-256, -2: x, -3: y}. */
function coseEc2PublicKey(publicKey: KeyObject): Uint8Array {
  const jwk = publicKey.export({ format: 'jwk' });
  if (jwk.x === undefined || jwk.y === undefined) throw new Error('not an EC public key');
  return cbor(
    new Map<Cbor, Cbor>([
      [1, 2],
      [3, ES256],
      [-1, 1],
      [-2, fromB64u(jwk.x)],
      [-3, fromB64u(jwk.y)],
    ]),
  );
}

// ---- A tiny CBOR encoder (RFC 8949): the integers, strings, byte strings and maps WebAuthn needs.
// Maps are written in insertion order; callers insert keys in CTAP2 canonical order.

type Cbor = number | string | Uint8Array | ReadonlyMap<Cbor, Cbor>;

function cbor(v: Cbor): Uint8Array {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new Error(`CBOR: ${v} is not an integer`);
    return v >= 0 ? cborHead(0, v) : cborHead(1, -1 - v);
  }
  if (typeof v === 'string') {
    const bytes = new TextEncoder().encode(v);
    return concat(cborHead(3, bytes.length), bytes);
  }
  if (v instanceof Uint8Array) return concat(cborHead(2, v.length), v);
  const parts = [cborHead(5, v.size)];
  for (const [key, value] of v) parts.push(cbor(key), cbor(value));
  return concat(...parts);
}

/** RFC 8949 §3: major type in the top 3 bits, then the argument in the shortest form. */
function cborHead(major: number, n: number): Uint8Array {
  const m = major << 5;
  if (n < 24) return Uint8Array.of(m | n);
  if (n < 0x100) return Uint8Array.of(m | 24, n);
  if (n < 0x1_0000) return concat(Uint8Array.of(m | 25), u16(n));
  if (n < 0x1_0000_0000) return concat(Uint8Array.of(m | 26), u32(n));
  throw new Error('CBOR: argument too large for this encoder');
}

// ---- Bytes ------------------------------------------------------------------------------------------

function u16(n: number): Uint8Array {
  return Uint8Array.of((n >>> 8) & 0xff, n & 0xff);
}

function u32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, false);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function b64u(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
}

function fromB64u(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'base64url'));
}
