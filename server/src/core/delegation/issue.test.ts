// Issuing end to end, checked by independent libraries: `siwe` verifies the message and signature,
// viem and ethers recover the owner, the CACAO decodes and its CID recomputes, the ReCap payload is
// exactly the requested subset (not the grant), @ucans/ucans verifies Ed25519-owner UCANs, and a
// faulty or foreign signer never yields a delegation.

import { describe, expect, it } from 'vitest';
import { SiweMessage } from 'siwe';
import { verifyMessage } from 'viem';
import { verifyMessage as ethersVerifyMessage } from 'ethers';
import * as ucans from '@ucans/ucans';
import { OpenKeyError } from '../errors.ts';
import { blake3RawCid, cacaoFromAuthorization, cacaoMessage, decodeCacao } from './cacao.ts';
import { checkGrant } from './grant.ts';
import { issueDelegation, type IssueParams, type IssuedDelegation } from './issue.ts';
import { checkRecapStatement, decodeRecap } from './recap.ts';
import { parseSiwe } from './siwe.ts';
import { checkDelegationRequest } from './subset.ts';
import { verifyUcan } from './ucan.ts';
import { counting, edKey, expectCodeAsync, fixedClock, grantFor, hex0x, res, secpOwner, seededRandom, T0 } from './test-helpers.ts';

const owner = secpOwner();
const backend = edKey('backend');
const grant = grantFor(owner.did);
const R = (path: string): string => res(owner.did, 'applications', 'kv', path);
const requested = [
  { resource: R('app/inbox/'), ability: 'tinycloud.kv/list' },
  { resource: R('app/inbox/'), ability: 'tinycloud.kv/get' },
  { resource: res(owner.did, 'applications', 'sql', 'app/db.sqlite'), ability: 'tinycloud.sql/read', caveats: [{ tables: ['notes'] }] },
];

function params(extra: Partial<IssueParams> = {}, request: Record<string, unknown> = {}): IssueParams {
  return {
    grant,
    request: checkDelegationRequest({ delegate: backend.did, lifetimeSeconds: 900, capabilities: requested, ...request }, grant.owner),
    owner: { algorithm: 'secp256k1', publicKey: owner.publicKey },
    sign: (m) => owner.personalSign(m),
    clock: fixedClock(),
    random: seededRandom(),
    domain: 'openkey.example',
    ...extra,
  };
}

function siweOf(d: IssuedDelegation): Extract<IssuedDelegation, { format: 'siwe-cacao' }> {
  if (d.format !== 'siwe-cacao') throw new Error('expected a SIWE delegation');
  return d;
}

describe('issuing SIWE + ReCap CACAOs for secp256k1 owners', async () => {
  const d = siweOf(await issueDelegation(params({}, { requestId: 'req-42', notBefore: T0 + 5_000 })));
  const w = d.wrapper;

  it('the siwe library parses the message and verifies the signature', async () => {
    const msg = new SiweMessage(d.siwe);
    const ok = await msg.verify({ signature: w.signature as string, domain: 'openkey.example', time: new Date(T0 + 60_000).toISOString() });
    expect(ok.success).toBe(true);
    expect(ok.data.address).toBe(owner.address);
    const late = await msg.verify({ signature: w.signature as string, time: new Date(T0 + 901_000).toISOString() }, { suppressExceptions: true });
    expect(late.success).toBe(false); // expired after the requested 900 s
  });

  it('viem and ethers recover the owner address from the EIP-191 signature', async () => {
    expect(await verifyMessage({ address: owner.address as `0x${string}`, message: d.siwe, signature: w.signature as `0x${string}` })).toBe(true);
    expect(ethersVerifyMessage(d.siwe, w.signature as string)).toBe(owner.address);
    expect(hex0x(d.signature)).toBe(w.signature);
  });

  it('carries the delegate DID URL, the requested times, the request id and exactly one urn:recap resource', () => {
    const f = parseSiwe(d.siwe);
    expect(f).toMatchObject({ domain: 'openkey.example', address: owner.address, uri: backend.didUrl, chainId: 1, version: '1', requestId: 'req-42' });
    expect(f.issuedAt).toBe(new Date(T0).toISOString());
    expect(f.expirationTime).toBe(new Date(T0 + 900_000).toISOString());
    expect(f.notBefore).toBe(new Date(T0 + 5_000).toISOString());
    expect(f.resources).toHaveLength(1);
    checkRecapStatement(f.statement, d.capabilities);
  });

  it('the ReCap payload is exactly the requested subset, not the grant', () => {
    const f = parseSiwe(d.siwe);
    const json = JSON.parse(Buffer.from((f.resources[0] as string).slice('urn:recap:'.length), 'base64url').toString('utf8')) as unknown;
    expect(json).toEqual({
      att: {
        [R('app/inbox/')]: { 'tinycloud.kv/get': [{}], 'tinycloud.kv/list': [{}] },
        [res(owner.did, 'applications', 'sql', 'app/db.sqlite')]: { 'tinycloud.sql/read': [{ tables: ['notes'] }] },
      },
      prf: [],
    });
    expect(decodeRecap(f.resources[0]).capabilities).toEqual(d.capabilities);
  });

  it('the Authorization header decodes to the CACAO of exactly this message, and the CID recomputes', () => {
    const bytes = cacaoFromAuthorization(w.delegationHeader.Authorization);
    expect(bytes).toEqual(d.cacao);
    expect(w.delegationHeader.Authorization).not.toContain('.'); // TinyCloud: no '.' ⇒ CACAO, not UCAN
    const cacao = decodeCacao(bytes);
    expect(cacaoMessage(cacao)).toBe(d.siwe);
    expect(cacao.s.s).toEqual(d.signature);
    expect(blake3RawCid(bytes)).toBe(w.delegationCid);
    expect(d.cid).toBe(w.delegationCid);
  });

  it('fills the TinyCloud wrapper fields', () => {
    expect(w).toMatchObject({
      ownerDid: owner.did,
      address: owner.address,
      chainId: 1,
      spaceId: `tinycloud:${owner.did.slice(4)}:applications`,
      delegateDid: backend.did,
      verificationMethod: backend.didUrl,
      jwk: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(backend.signer.publicKey).toString('base64url') },
      siwe: d.siwe,
      signedMessage: d.siwe,
      issuedAt: new Date(T0).toISOString(),
      expiresAt: new Date(T0 + 900_000).toISOString(),
      expirationTime: new Date(T0 + 900_000).toISOString(),
    });
    expect(w.permissions).toEqual([
      { service: 'tinycloud.kv', space: 'applications', path: 'app/inbox/', actions: ['tinycloud.kv/get', 'tinycloud.kv/list'] },
      { service: 'tinycloud.sql', space: 'applications', path: 'app/db.sqlite', actions: ['tinycloud.sql/read'], caveats: [{ tables: ['notes'] }] },
    ]);
    expect(JSON.parse(JSON.stringify(w)) as unknown).toEqual(w); // plain JSON, ready for the wire
  });

  it('is deterministic for a fixed clock, randomness and key (RFC 6979), and the nonce comes from Random', async () => {
    const again = siweOf(await issueDelegation(params({}, { requestId: 'req-42', notBefore: T0 + 5_000 })));
    expect(again.cid).toBe(d.cid);
    const other = siweOf(await issueDelegation(params({ random: seededRandom('other') }, { requestId: 'req-42', notBefore: T0 + 5_000 })));
    expect(parseSiwe(other.siwe).nonce).not.toBe(parseSiwe(d.siwe).nonce);
  });

  it('prefixes a caller statement before the ReCap statement', async () => {
    const s = siweOf(await issueDelegation(params({ statement: 'Notes backend access.' })));
    expect(parseSiwe(s.siwe).statement?.startsWith('Notes backend access. I further authorize the stated URI')).toBe(true);
    expect((await new SiweMessage(s.siwe).verify({ signature: s.wrapper.signature as string, time: new Date(T0).toISOString() })).success).toBe(true);
  });
});

describe('issuing UCANs for Ed25519 owners', async () => {
  const edOwner = edKey('owner-ed');
  const edGrant = checkGrant({ ...grantFor(edOwner.did), capabilities: [{ resource: res(edOwner.did, 'applications', 'kv', 'app/'), ability: 'tinycloud.kv/get' }] });
  const signer = counting((m: Uint8Array) => edOwner.signer.sign(m));
  const d = await issueDelegation({
    grant: edGrant,
    request: checkDelegationRequest({ delegate: backend.did, lifetimeSeconds: 600, notBefore: T0 + 1500, capabilities: [{ resource: res(edOwner.did, 'applications', 'kv', 'app/x/'), ability: 'tinycloud.kv/get' }] }, edGrant.owner),
    owner: { algorithm: 'ed25519', publicKey: edOwner.signer.publicKey },
    sign: signer.sign,
    clock: fixedClock(),
    random: seededRandom(),
    domain: 'openkey.example',
  });

  it('produces a UCAN that @ucans/ucans and our verifier accept, with the requested capabilities only', async () => {
    expect(d.format).toBe('ucan');
    if (d.format !== 'ucan') return;
    expect(signer.calls()).toBe(1);
    const [h, p, s] = d.ucan.split('.') as [string, string, string];
    expect(await ucans.defaults.verifySignature(edOwner.did, new TextEncoder().encode(`${h}.${p}`), new Uint8Array(Buffer.from(s, 'base64url')))).toBe(true);
    const v = verifyUcan(d.ucan);
    expect(v.capabilities).toEqual([{ resource: res(edOwner.did, 'applications', 'kv', 'app/x/'), ability: 'tinycloud.kv/get', caveats: [{}] }]);
    expect(v.payload).toMatchObject({ iss: edOwner.didUrl, aud: backend.did, exp: Math.floor((T0 + 600_000) / 1000), nbf: Math.ceil((T0 + 1500) / 1000), prf: [] });
    expect(d.wrapper.delegationHeader.Authorization).toBe(d.ucan);
    expect(d.wrapper.delegationCid).toBe(v.cid);
    expect(d.wrapper.ownerDid).toBe(edOwner.did);
    expect(d.wrapper.siwe).toBeUndefined();
  });
});

describe('signer failures', () => {
  it('a signer answering with another key is caught (INTERNAL) and nothing is returned', async () => {
    const stranger = secpOwner('stranger');
    await expectCodeAsync(issueDelegation(params({ sign: (m) => stranger.personalSign(m) })), 'INTERNAL');
    await expectCodeAsync(issueDelegation(params({ sign: () => new Uint8Array(65) })), 'INTERNAL');
    await expectCodeAsync(issueDelegation(params({ sign: (m) => owner.personalSign(m).subarray(0, 64) })), 'INTERNAL');
  });

  it('a signer refusal propagates unchanged', async () => {
    await expectCodeAsync(
      issueDelegation(
        params({
          sign: () => {
            throw new OpenKeyError('KEY_NOT_FOUND');
          },
        }),
      ),
      'KEY_NOT_FOUND',
    );
  });

  it('an owner key of the other algorithm is refused before signing', async () => {
    const signer = counting((m: Uint8Array) => owner.personalSign(m));
    await expectCodeAsync(issueDelegation(params({ owner: { algorithm: 'ed25519', publicKey: edKey('x').signer.publicKey }, sign: signer.sign })), 'PERMISSION_DENIED');
    expect(signer.calls()).toBe(0);
  });
});
