// UCAN 0.10 (TinyCloud's compact form): @ucans/ucans verifies the EdDSA signature and issuer key
// type; TinyCloud's own compact-UCAN rules (js-sdk share-envelope) are re-checked independently with
// @noble/curves and multiformats; our parser round-trips; any changed character is refused.

import { describe, expect, it } from 'vitest';
import * as ucans from '@ucans/ucans';
import { ed25519 } from '@noble/curves/ed25519';
import { blake3 } from '@noble/hashes/blake3';
import { CID } from 'multiformats/cid';
import { isOpenKeyError } from '../errors.ts';
import { checkCapabilities } from './capability.ts';
import { canonicalJson, type JsonValue } from './jcs.ts';
import { finishUcan, isUuidNonce, prepareUcan, signUcan, uuidNonce, verifyUcan, type UcanParams } from './ucan.ts';
import { edKey, expectCode, Prng, res, T0 } from './test-helpers.ts';

const owner = edKey('owner-ed');
const delegate = edKey('backend');
const caps = checkCapabilities([
  { resource: res(owner.did, 'applications', 'kv', 'app/'), ability: 'tinycloud.kv/get' },
  { resource: res(owner.did, 'applications', 'sql', 'app/db.sqlite'), ability: 'tinycloud.sql/read', caveats: [{ tables: ['notes'] }] },
]);
const params: UcanParams = {
  issuerPublicKey: owner.signer.publicKey,
  audience: delegate.did,
  capabilities: caps,
  expiresAt: Math.floor(T0 / 1000) + 3600,
  notBefore: Math.floor(T0 / 1000),
  nonce: uuidNonce(new Prng('nnc').bytes(16)),
};
const signed = await signUcan(params, (m) => owner.signer.sign(m));
const [h64, p64, s64] = signed.jwt.split('.') as [string, string, string];
const json = (seg: string): Record<string, unknown> => JSON.parse(Buffer.from(seg, 'base64url').toString('utf8')) as Record<string, unknown>;

describe('UCAN 0.10 delegations (EdDSA)', () => {
  it('@ucans/ucans verifies the signature and that the issuer key type matches alg', async () => {
    const header = json(h64);
    const payload = json(p64);
    const issuerDid = (payload['iss'] as string).split('#')[0] as string;
    expect(issuerDid).toBe(owner.did);
    expect(ucans.defaults.verifyIssuerAlg(issuerDid, header['alg'] as string)).toBe(true);
    const data = new TextEncoder().encode(`${h64}.${p64}`);
    const sig = new Uint8Array(Buffer.from(s64, 'base64url'));
    expect(await ucans.defaults.verifySignature(issuerDid, data, sig)).toBe(true);
    expect(await ucans.defaults.verifySignature(delegate.did, data, sig)).toBe(false);
    const other = new TextEncoder().encode(`${h64}.${Buffer.from(canonicalJson({ ...(payload as Record<string, JsonValue>), exp: 9_999_999_999 })).toString('base64url')}`);
    expect(await ucans.defaults.verifySignature(issuerDid, other, sig)).toBe(false);
    // Header fields in the shape @ucans/ucans' validator requires (ucv parsed as semver).
    expect(ucans.isUcanHeader({ ...header, ucv: { major: 0, minor: 10, patch: 0 } })).toBe(true);
    // Every payload field @ucans/ucans types (aud, exp, nbf, nnc, prf) has its expected type; only
    // `att` differs: 0.10 (and TinyCloud) use a resource→ability map, @ucans/ucans 0.12 a 0.9 list.
    expect(ucans.isUcanPayload({ ...payload, iss: issuerDid, att: [] })).toBe(true);
    expect(() => ucans.parse(signed.jwt)).toThrow(/payload/);
  });

  it('meets TinyCloud compact-UCAN rules: JCS segments, exact header, JWK binds issuer, strict Ed25519, CID', () => {
    const header = json(h64);
    const payload = json(p64);
    expect(Buffer.from(h64, 'base64url').toString()).toBe(canonicalJson(header as Record<string, JsonValue>));
    expect(Buffer.from(p64, 'base64url').toString()).toBe(canonicalJson(payload as Record<string, JsonValue>));
    expect(header).toEqual({ alg: 'EdDSA', jwk: { alg: 'EdDSA', crv: 'Ed25519', kty: 'OKP', x: Buffer.from(owner.signer.publicKey).toString('base64url') }, typ: 'JWT', ucv: '0.10.0' });
    expect(Object.keys(payload).sort()).toEqual(['att', 'aud', 'exp', 'iss', 'nbf', 'nnc', 'prf']);
    expect(payload).toMatchObject({ iss: owner.didUrl, aud: delegate.did, exp: params.expiresAt, nbf: params.notBefore, prf: [] });
    expect(payload['att']).toEqual({
      [res(owner.did, 'applications', 'kv', 'app/')]: { 'tinycloud.kv/get': [{}] },
      [res(owner.did, 'applications', 'sql', 'app/db.sqlite')]: { 'tinycloud.sql/read': [{ tables: ['notes'] }] },
    });
    expect(isUuidNonce(payload['nnc'] as string)).toBe(true);
    expect(ed25519.verify(new Uint8Array(Buffer.from(s64, 'base64url')), new TextEncoder().encode(`${h64}.${p64}`), owner.signer.publicKey, { zip215: false })).toBe(true);
    const cid = CID.parse(signed.cid);
    expect([cid.version, cid.code, cid.multihash.code]).toEqual([1, 0x55, 0x1e]);
    expect(cid.multihash.digest).toEqual(blake3(new TextEncoder().encode(signed.jwt), { dkLen: 32 }));
  });

  it('round-trips through our verifier', () => {
    const v = verifyUcan(signed.jwt);
    expect(v.capabilities).toEqual(caps);
    expect(v.payload.aud).toBe(delegate.did);
    expect(v.cid).toBe(signed.cid);
    expect(v.issuerPublicKey).toEqual(owner.signer.publicKey);
  });

  it('changing any character of the token is refused', () => {
    const alphabet = 'AQgw_-.x';
    for (let i = 0; i < signed.jwt.length; i++) {
      const c = signed.jwt[i] as string;
      const r = alphabet[(alphabet.indexOf(c) + 1) % alphabet.length] ?? 'A';
      const tampered = signed.jwt.slice(0, i) + (r === c ? 'B' : r) + signed.jwt.slice(i + 1);
      let err: unknown;
      try {
        verifyUcan(tampered);
      } catch (e) {
        err = e;
      }
      expect(isOpenKeyError(err), `char ${i}`).toBe(true);
    }
  });

  it('never attaches a signature that does not verify for the issuer', async () => {
    const unsigned = prepareUcan(params);
    expectCode(() => finishUcan(unsigned, new Uint8Array(64), owner.signer.publicKey), 'INTERNAL');
    expectCode(() => finishUcan(unsigned, delegate.signer.sign(unsigned.signingInput), owner.signer.publicKey), 'INTERNAL');
    let err: unknown;
    try {
      await signUcan(params, (m) => delegate.signer.sign(m));
    } catch (e) {
      err = e;
    }
    expect(isOpenKeyError(err) && err.code).toBe('INTERNAL');
  });

  it('refuses bad parameters', () => {
    expectCode(() => prepareUcan({ ...params, notBefore: params.expiresAt }), 'MALFORMED_REQUEST');
    expectCode(() => prepareUcan({ ...params, expiresAt: 1.5 }), 'MALFORMED_REQUEST');
    expectCode(() => prepareUcan({ ...params, nonce: 'has space' }), 'MALFORMED_REQUEST');
    expectCode(() => prepareUcan({ ...params, capabilities: [] }), 'MISSING_FIELD');
    expectCode(() => prepareUcan({ ...params, audience: delegate.didUrl }), 'MALFORMED_REQUEST');
    expectCode(() => prepareUcan({ ...params, audience: 'did:web:example.com' }), 'MALFORMED_REQUEST');
    expectCode(() => prepareUcan({ ...params, proofs: ['not a cid!'] }), 'MALFORMED_REQUEST');
    expectCode(() => prepareUcan({ ...params, issuerPublicKey: new Uint8Array(31) }), 'INVALID_PUBLIC_KEY');
    expectCode(() => verifyUcan(`${h64}.${p64}`), 'MALFORMED_REQUEST');
    expectCode(() => verifyUcan('x'.repeat(70_000)), 'PAYLOAD_TOO_LARGE');
  });
});
