// WebAuthn L3 §7.1 (registration) and §7.2 (assertion) as core/webauthn.ts applies them, driven by a
// software authenticator that answers like a browser: round trips, several credentials, each
// specific rejection with its code, the signature-counter rule, and hostile inputs (flip any byte,
// truncate anywhere, malformed JSON and shapes) that must all end in a WEBAUTHN_* code.

import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SoftAuthenticator, type AssertionOverrides, type CeremonyOverrides } from '../../../test/support/soft-authenticator.ts';
import { isOpenKeyError, type ErrorCode } from '../core/errors.ts';
import {
  CEREMONY_TIMEOUT_MS,
  MAX_RESPONSE_JSON_LENGTH,
  authenticationOptions,
  parseAssertionCredentialId,
  registrationOptions,
  verifyAssertion,
  verifyRegistration,
  type RelyingParty,
  type StoredCredential,
  type VerifiedRegistration,
} from './webauthn.ts';

const ORIGIN = 'https://openkey.example';
const RP: RelyingParty = { rpId: 'openkey.example', rpName: 'OpenKey appliance', origins: [ORIGIN, 'https://admin.openkey.example'] };

const fresh = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
const fromB64u = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64url'));

async function codeOf(run: () => unknown): Promise<ErrorCode | 'no error' | 'not an OpenKeyError'> {
  try {
    await run();
    return 'no error';
  } catch (e) {
    return isOpenKeyError(e) ? e.code : 'not an OpenKeyError';
  }
}

interface Registered {
  readonly userId: Uint8Array;
  readonly verified: VerifiedRegistration;
  readonly stored: StoredCredential;
}

async function register(authenticator: SoftAuthenticator, overrides: CeremonyOverrides = {}): Promise<Registered> {
  const userId = fresh(32);
  const challenge = fresh(32);
  const options = await registrationOptions(RP, { userId, userName: 'alice@example.com', userDisplayName: 'Alice', challenge, excludeCredentialIds: [] });
  const response = authenticator.register(options, overrides);
  const verified = await verifyRegistration(RP, { responseJson: JSON.stringify(response), expectedChallenge: challenge });
  return { userId, verified, stored: { id: verified.credentialId, publicKey: verified.publicKey, counter: verified.counter, transports: verified.transports } };
}

/** One login by `stored`'s credential; returns the response JSON and the challenge it answers. */
async function assertion(authenticator: SoftAuthenticator, stored: StoredCredential, overrides: AssertionOverrides = {}): Promise<{ responseJson: string; challenge: Uint8Array }> {
  const challenge = fresh(32);
  const options = await authenticationOptions(RP, { challenge, allowCredentialIds: [stored.id] });
  return { responseJson: JSON.stringify(authenticator.assert(options, overrides)), challenge };
}

describe('options (§5.4, §5.5)', () => {
  it('asks for a discoverable, user-verified ES256 or EdDSA credential without attestation', async () => {
    const userId = fresh(16);
    const challenge = fresh(32);
    const options = await registrationOptions(RP, { userId, userName: 'alice', userDisplayName: '', challenge, excludeCredentialIds: ['AAECAw'] });
    expect(options.rp).toEqual({ id: RP.rpId, name: RP.rpName });
    expect(options.user).toEqual({ id: b64u(userId), name: 'alice', displayName: '' });
    expect(options.challenge).toBe(b64u(challenge));
    expect(options.pubKeyCredParams.map((p) => p.alg)).toEqual([-7, -8]);
    expect(options.authenticatorSelection).toMatchObject({ residentKey: 'required', requireResidentKey: true, userVerification: 'required' });
    expect(options.attestation).toBe('none');
    expect(options.timeout).toBe(CEREMONY_TIMEOUT_MS);
    expect(options.excludeCredentials).toEqual([{ id: 'AAECAw', type: 'public-key' }]);
  });

  it('asks for user verification on login, with or without an allow list', async () => {
    const challenge = fresh(32);
    const open = await authenticationOptions(RP, { challenge });
    expect(open).toMatchObject({ rpId: RP.rpId, challenge: b64u(challenge), userVerification: 'required', timeout: CEREMONY_TIMEOUT_MS });
    expect(open.allowCredentials).toBeUndefined();
    const listed = await authenticationOptions(RP, { challenge, allowCredentialIds: ['AAECAw'] });
    expect(listed.allowCredentials).toEqual([{ id: 'AAECAw', type: 'public-key' }]);
  });

  it('rejects caller bugs (user id, challenge, stored ids) as INTERNAL and bad user names as request errors', async () => {
    const base = { userId: fresh(16), userName: 'alice', userDisplayName: 'Alice', challenge: fresh(32), excludeCredentialIds: [] };
    expect(await codeOf(() => registrationOptions(RP, { ...base, userId: fresh(15) }))).toBe('INTERNAL');
    expect(await codeOf(() => registrationOptions(RP, { ...base, userId: fresh(65) }))).toBe('INTERNAL');
    expect(await codeOf(() => registrationOptions(RP, { ...base, challenge: fresh(31) }))).toBe('INTERNAL');
    expect(await codeOf(() => registrationOptions(RP, { ...base, excludeCredentialIds: ['AAECAw=='] }))).toBe('INTERNAL');
    expect(await codeOf(() => registrationOptions(RP, { ...base, userName: '' }))).toBe('MISSING_FIELD');
    expect(await codeOf(() => registrationOptions(RP, { ...base, userName: 'a'.repeat(65) }))).toBe('PAYLOAD_TOO_LARGE');
    expect(await codeOf(() => registrationOptions({ ...RP, origins: [] }, base))).toBe('INTERNAL');
    expect(await codeOf(() => authenticationOptions(RP, { challenge: fresh(33) }))).toBe('INTERNAL');
    expect(await codeOf(() => authenticationOptions(RP, { challenge: fresh(32), allowCredentialIds: ['not base64url!'] }))).toBe('INTERNAL');
  });
});

describe('registration and assertion round trip', () => {
  it('registers a passkey and logs in with it, the counter rising each time', async () => {
    const authenticator = new SoftAuthenticator({ origin: ORIGIN });
    const { userId, verified, stored } = await register(authenticator);
    expect(verified.credentialId).toBe(authenticator.credentialIds[0]);
    expect(fromB64u(verified.credentialId)).toHaveLength(16);
    expect(verified.counter).toBe(0);
    expect(verified.aaguid).toBe('00000000-0000-0000-0000-000000000000');
    expect(verified.deviceType).toBe('singleDevice');
    expect(verified.backedUp).toBe(false);
    expect(verified.transports).toEqual(['hybrid', 'internal']);
    expect(verified.publicKey[0]).toBe(0xa5); // a COSE_Key: CBOR map of 5 entries

    let counter = stored.counter;
    for (const expected of [1, 2, 3]) {
      const { responseJson, challenge } = await assertion(authenticator, { ...stored, counter });
      const looked = parseAssertionCredentialId(responseJson);
      expect(looked.credentialId).toBe(stored.id);
      expect(looked.userHandle).toEqual(userId);
      const result = await verifyAssertion(RP, { responseJson, expectedChallenge: challenge, credential: { ...stored, counter } });
      expect(result).toEqual({ newCounter: expected, userHandle: userId, credentialId: stored.id });
      counter = result.newCounter;
    }
  });

  it('accepts any of the relying party origins, and reports a synced passkey as backed up', async () => {
    const authenticator = new SoftAuthenticator({ origin: 'https://admin.openkey.example', rpId: RP.rpId, backedUp: true });
    const { verified, stored } = await register(authenticator);
    expect(verified.deviceType).toBe('multiDevice');
    expect(verified.backedUp).toBe(true);
    const { responseJson, challenge } = await assertion(authenticator, stored);
    expect((await verifyAssertion(RP, { responseJson, expectedChallenge: challenge, credential: stored })).newCounter).toBe(1);
  });

  it('tells several credentials apart: discoverable login finds the right one by id, another one does not verify', async () => {
    const phone = new SoftAuthenticator({ origin: ORIGIN });
    const laptop = new SoftAuthenticator({ origin: ORIGIN });
    const alice1 = await register(phone);
    const alice2 = await register(laptop);
    const bob = await register(phone);
    const byId = new Map([alice1, alice2, bob].map((r) => [r.stored.id, r] as const));
    expect(byId.size).toBe(3);

    for (const [authenticator, who] of [[phone, alice1], [laptop, alice2], [phone, bob]] as const) {
      const challenge = fresh(32);
      const options = await authenticationOptions(RP, { challenge }); // no allow list: discoverable
      const responseJson = JSON.stringify(authenticator.assert(options, { credentialId: who.stored.id }));
      const { credentialId, userHandle } = parseAssertionCredentialId(responseJson);
      const found = byId.get(credentialId);
      expect(found).toBe(who);
      expect(userHandle).toEqual(who.userId);
      const result = await verifyAssertion(RP, { responseJson, expectedChallenge: challenge, credential: who.stored });
      expect(result.credentialId).toBe(who.stored.id);
      // The same response checked against another stored credential: the ids differ.
      const other = who === bob ? alice1 : bob;
      expect(await codeOf(() => verifyAssertion(RP, { responseJson, expectedChallenge: challenge, credential: other.stored }))).toBe('WEBAUTHN_INVALID');
      // … and a stored record carrying this id but another credential's key: the signature fails.
      const forged = { ...other.stored, id: who.stored.id };
      expect(await codeOf(() => verifyAssertion(RP, { responseJson, expectedChallenge: challenge, credential: forged }))).toBe('WEBAUTHN_INVALID');
    }
  });
});

describe('specific rejections', () => {
  const regCode = async (overrides: CeremonyOverrides, options: { challenge?: Uint8Array } = {}): Promise<string> => {
    const authenticator = new SoftAuthenticator({ origin: ORIGIN });
    const challenge = fresh(32);
    const creation = await registrationOptions(RP, { userId: fresh(16), userName: 'a', userDisplayName: 'A', challenge, excludeCredentialIds: [] });
    const responseJson = JSON.stringify(authenticator.register(creation, overrides));
    return await codeOf(() => verifyRegistration(RP, { responseJson, expectedChallenge: options.challenge ?? challenge }));
  };
  const assertCode = async (overrides: AssertionOverrides, storedCounter = 0, options: { challenge?: Uint8Array } = {}): Promise<string> => {
    const authenticator = new SoftAuthenticator({ origin: ORIGIN });
    const { stored } = await register(authenticator);
    const { responseJson, challenge } = await assertion(authenticator, stored, overrides);
    const credential = { ...stored, counter: storedCounter };
    return await codeOf(() => verifyAssertion(RP, { responseJson, expectedChallenge: options.challenge ?? challenge, credential }));
  };

  it('wrong origin → WEBAUTHN_ORIGIN_MISMATCH', async () => {
    for (const origin of ['https://evil.example', 'http://openkey.example', 'https://openkey.example:8443', 'https://openkey.example/']) {
      expect(await regCode({ origin }), origin).toBe('WEBAUTHN_ORIGIN_MISMATCH');
      expect(await assertCode({ origin }), origin).toBe('WEBAUTHN_ORIGIN_MISMATCH');
    }
    expect(await regCode({ crossOrigin: true })).toBe('WEBAUTHN_ORIGIN_MISMATCH');
    expect(await assertCode({ crossOrigin: true })).toBe('WEBAUTHN_ORIGIN_MISMATCH');
  });

  it('wrong RP ID → WEBAUTHN_RP_ID_MISMATCH', async () => {
    for (const rpId of ['evil.example', 'sub.openkey.example', 'example', 'OPENKEY.EXAMPLE']) {
      expect(await regCode({ rpId }), rpId).toBe('WEBAUTHN_RP_ID_MISMATCH');
      expect(await assertCode({ rpId }), rpId).toBe('WEBAUTHN_RP_ID_MISMATCH');
    }
  });

  it('no user verification → WEBAUTHN_USER_VERIFICATION_REQUIRED; no user presence → WEBAUTHN_INVALID', async () => {
    expect(await regCode({ userVerified: false })).toBe('WEBAUTHN_USER_VERIFICATION_REQUIRED');
    expect(await assertCode({ userVerified: false })).toBe('WEBAUTHN_USER_VERIFICATION_REQUIRED');
    expect(await regCode({ userPresent: false })).toBe('WEBAUTHN_INVALID');
    expect(await assertCode({ userPresent: false })).toBe('WEBAUTHN_INVALID');
  });

  it('another challenge → WEBAUTHN_CHALLENGE_INVALID, whichever side differs', async () => {
    const other = b64u(fresh(32));
    expect(await regCode({ challenge: other })).toBe('WEBAUTHN_CHALLENGE_INVALID');
    expect(await assertCode({ challenge: other })).toBe('WEBAUTHN_CHALLENGE_INVALID');
    expect(await regCode({}, { challenge: fresh(32) })).toBe('WEBAUTHN_CHALLENGE_INVALID');
    expect(await assertCode({}, 0, { challenge: fresh(32) })).toBe('WEBAUTHN_CHALLENGE_INVALID');
    expect(await assertCode({ challenge: `${other}==` })).toBe('WEBAUTHN_CHALLENGE_INVALID');
  });

  it('the other ceremony type in clientDataJSON → WEBAUTHN_INVALID', async () => {
    expect(await regCode({ type: 'webauthn.get' })).toBe('WEBAUTHN_INVALID');
    expect(await assertCode({ type: 'webauthn.create' })).toBe('WEBAUTHN_INVALID');
    expect(await assertCode({ type: 'payment.get' })).toBe('WEBAUTHN_INVALID');
  });

  it('signature counter: 0→0 and rising are accepted; not rising past a non-zero stored counter → WEBAUTHN_COUNTER_REGRESSION', async () => {
    expect(await assertCode({ counter: 0 }, 0)).toBe('no error');
    expect(await assertCode({ counter: 7 }, 0)).toBe('no error');
    expect(await assertCode({ counter: 6 }, 5)).toBe('no error');
    expect(await assertCode({ counter: 0xffff_ffff }, 0xffff_fffe)).toBe('no error');
    expect(await assertCode({ counter: 5 }, 5)).toBe('WEBAUTHN_COUNTER_REGRESSION');
    expect(await assertCode({ counter: 3 }, 5)).toBe('WEBAUTHN_COUNTER_REGRESSION');
    expect(await assertCode({ counter: 0 }, 5)).toBe('WEBAUTHN_COUNTER_REGRESSION');
  });

  it('reports a counter regression only for a validly signed response, so forgeries cannot probe the counter', async () => {
    const authenticator = new SoftAuthenticator({ origin: ORIGIN });
    const impostor = new SoftAuthenticator({ origin: ORIGIN });
    const { stored } = await register(authenticator);
    await register(impostor);
    const challenge = fresh(32);
    const options = await authenticationOptions(RP, { challenge });
    const genuine = authenticator.assert(options, { counter: 3 });
    const forged = impostor.assert(options, { counter: 3 });
    const swapped = { ...genuine, response: { ...genuine.response, signature: forged.response.signature } };
    const credential = { ...stored, counter: 5 };
    expect(await codeOf(() => verifyAssertion(RP, { responseJson: JSON.stringify(genuine), expectedChallenge: challenge, credential }))).toBe('WEBAUTHN_COUNTER_REGRESSION');
    expect(await codeOf(() => verifyAssertion(RP, { responseJson: JSON.stringify(swapped), expectedChallenge: challenge, credential }))).toBe('WEBAUTHN_INVALID');
  });

  it('a signature by another key → WEBAUTHN_INVALID', async () => {
    const authenticator = new SoftAuthenticator({ origin: ORIGIN });
    const impostor = new SoftAuthenticator({ origin: ORIGIN });
    const { stored } = await register(authenticator);
    await register(impostor);
    const challenge = fresh(32);
    const options = await authenticationOptions(RP, { challenge });
    const genuine = authenticator.assert(options);
    const forged = impostor.assert(options);
    // Same authenticatorData and clientDataJSON, so only the key differs.
    expect(forged.response.authenticatorData).toBe(genuine.response.authenticatorData);
    expect(forged.response.clientDataJSON).toBe(genuine.response.clientDataJSON);
    const swapped = { ...genuine, response: { ...genuine.response, signature: forged.response.signature } };
    expect(await codeOf(() => verifyAssertion(RP, { responseJson: JSON.stringify(swapped), expectedChallenge: challenge, credential: stored }))).toBe('WEBAUTHN_INVALID');
    // Sanity: the untouched response verifies.
    expect(await codeOf(() => verifyAssertion(RP, { responseJson: JSON.stringify(genuine), expectedChallenge: challenge, credential: stored }))).toBe('no error');
  });
});

describe('hostile input', () => {
  it('malformed JSON → WEBAUTHN_INVALID from every entry point', async () => {
    const authenticator = new SoftAuthenticator({ origin: ORIGIN });
    const { stored } = await register(authenticator);
    const expectedChallenge = fresh(32);
    for (const responseJson of ['', '{', 'null', '[]', '"public-key"', '42', '{"id":', '\u0000']) {
      expect(await codeOf(() => verifyRegistration(RP, { responseJson, expectedChallenge })), responseJson).toBe('WEBAUTHN_INVALID');
      expect(await codeOf(() => verifyAssertion(RP, { responseJson, expectedChallenge, credential: stored })), responseJson).toBe('WEBAUTHN_INVALID');
      expect(await codeOf(() => parseAssertionCredentialId(responseJson)), responseJson).toBe('WEBAUTHN_INVALID');
    }
  });

  it('a response of the wrong shape → WEBAUTHN_INVALID', async () => {
    const authenticator = new SoftAuthenticator({ origin: ORIGIN });
    const challenge = fresh(32);
    const creation = await registrationOptions(RP, { userId: fresh(16), userName: 'a', userDisplayName: 'A', challenge, excludeCredentialIds: [] });
    const registration = authenticator.register(creation);
    const stored = (await verifyRegistration(RP, { responseJson: JSON.stringify(registration), expectedChallenge: challenge })).credentialId;
    const credential: StoredCredential = { id: stored, publicKey: fresh(77), counter: 0 };
    const loginChallenge = fresh(32);
    const login = authenticator.assert(await authenticationOptions(RP, { challenge: loginChallenge }));
    const other = b64u(fresh(16));

    const badRegistrations: Record<string, unknown> = {
      'unknown object': { foo: 1 },
      'an assertion': login,
      'id differs from rawId': { ...registration, rawId: other },
      'id differs from the attested credential': { ...registration, id: other, rawId: other },
      'padded id': { ...registration, id: `${registration.id}==`, rawId: `${registration.id}==` },
      'type not public-key': { ...registration, type: 'password' },
      'response missing': { ...registration, response: undefined },
      'attestationObject missing': { ...registration, response: { ...registration.response, attestationObject: undefined } },
      'attestationObject not CBOR': { ...registration, response: { ...registration.response, attestationObject: b64u(fresh(40)) } },
      'clientDataJSON not JSON': { ...registration, response: { ...registration.response, clientDataJSON: b64u(fresh(40)) } },
      'clientDataJSON not base64url': { ...registration, response: { ...registration.response, clientDataJSON: '***' } },
      'transports not a list': { ...registration, response: { ...registration.response, transports: 'usb' } },
    };
    for (const [name, doc] of Object.entries(badRegistrations)) {
      expect(await codeOf(() => verifyRegistration(RP, { responseJson: JSON.stringify(doc), expectedChallenge: challenge })), name).toBe('WEBAUTHN_INVALID');
    }

    const badAssertions: Record<string, unknown> = {
      'unknown object': { foo: 1 },
      'a registration': registration,
      'id differs from rawId': { ...login, rawId: other },
      'type not public-key': { ...login, type: 'password' },
      'signature missing': { ...login, response: { ...login.response, signature: undefined } },
      'signature a number': { ...login, response: { ...login.response, signature: 7 } },
      'userHandle a number': { ...login, response: { ...login.response, userHandle: 7 } },
      'userHandle too long': { ...login, response: { ...login.response, userHandle: b64u(fresh(65)) } },
      'authenticatorData empty': { ...login, response: { ...login.response, authenticatorData: '' } },
    };
    for (const [name, doc] of Object.entries(badAssertions)) {
      const responseJson = JSON.stringify(doc);
      expect(await codeOf(() => verifyAssertion(RP, { responseJson, expectedChallenge: loginChallenge, credential })), name).toBe('WEBAUTHN_INVALID');
    }
    expect(await codeOf(() => parseAssertionCredentialId(JSON.stringify(badAssertions['userHandle too long'])))).toBe('WEBAUTHN_INVALID');
    expect(await codeOf(() => parseAssertionCredentialId(JSON.stringify({ foo: 1 })))).toBe('WEBAUTHN_INVALID');
  });

  it('refuses an oversized response before parsing it', async () => {
    const responseJson = JSON.stringify({ id: 'AA', pad: 'x'.repeat(MAX_RESPONSE_JSON_LENGTH) });
    expect(await codeOf(() => parseAssertionCredentialId(responseJson))).toBe('PAYLOAD_TOO_LARGE');
    expect(await codeOf(() => verifyRegistration(RP, { responseJson, expectedChallenge: fresh(32) }))).toBe('PAYLOAD_TOO_LARGE');
  });

  it('flip any byte of clientDataJSON, authenticatorData or signature ⇒ rejected with a WEBAUTHN_* code', async () => {
    const authenticator = new SoftAuthenticator({ origin: ORIGIN });
    const { stored } = await register(authenticator);
    const challenge = fresh(32);
    const login = authenticator.assert(await authenticationOptions(RP, { challenge }));
    const fields = ['clientDataJSON', 'authenticatorData', 'signature'] as const;
    for (const field of fields) {
      const bytes = fromB64u(login.response[field]);
      for (let i = 0; i < bytes.length; i++) {
        const flipped = Uint8Array.from(bytes);
        flipped[i] = (flipped[i] as number) ^ 0x01;
        const doc = { ...login, response: { ...login.response, [field]: b64u(flipped) } };
        const code = await codeOf(() => verifyAssertion(RP, { responseJson: JSON.stringify(doc), expectedChallenge: challenge, credential: stored }));
        expect(code, `${field} byte ${i}`).toMatch(/^WEBAUTHN_/);
      }
    }
  });

  it('truncate authenticatorData or signature anywhere ⇒ WEBAUTHN_INVALID', async () => {
    const authenticator = new SoftAuthenticator({ origin: ORIGIN });
    const { stored } = await register(authenticator);
    const challenge = fresh(32);
    const login = authenticator.assert(await authenticationOptions(RP, { challenge }));
    for (const field of ['authenticatorData', 'signature'] as const) {
      const bytes = fromB64u(login.response[field]);
      for (let n = 0; n < bytes.length; n++) {
        const doc = { ...login, response: { ...login.response, [field]: b64u(bytes.subarray(0, n)) } };
        const code = await codeOf(() => verifyAssertion(RP, { responseJson: JSON.stringify(doc), expectedChallenge: challenge, credential: stored }));
        expect(code, `${field} length ${n}`).toBe('WEBAUTHN_INVALID');
      }
    }
  });

  it('rejects a bad stored credential as INTERNAL: a bug in the caller, not in the response', async () => {
    const authenticator = new SoftAuthenticator({ origin: ORIGIN });
    const { stored } = await register(authenticator);
    const { responseJson, challenge } = await assertion(authenticator, stored);
    for (const credential of [{ ...stored, counter: -1 }, { ...stored, counter: 1.5 }, { ...stored, publicKey: new Uint8Array(0) }, { ...stored, id: 'x=' }]) {
      expect(await codeOf(() => verifyAssertion(RP, { responseJson, expectedChallenge: challenge, credential }))).toBe('INTERNAL');
    }
    expect(await codeOf(() => verifyAssertion(RP, { responseJson, expectedChallenge: fresh(16), credential: stored }))).toBe('INTERNAL');
  });
});
