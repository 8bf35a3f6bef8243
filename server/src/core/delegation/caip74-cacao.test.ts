// CAIP-74 CACAOs of signed SIWE messages: @didtools/cacao and @ipld/dag-cbor decode ours to the
// same object @didtools builds from the SIWE text, the CID recomputes as CIDv1(raw, BLAKE3-256) with
// multiformats, viem recovers the owner, and any flipped or truncated byte is refused cleanly.

import { describe, expect, it } from 'vitest';
import * as dagCbor from '@ipld/dag-cbor';
import { blake3 } from '@noble/hashes/blake3';
import { Cacao, SiweMessage as DidtoolsSiwe } from '@didtools/cacao';
import { CID } from 'multiformats/cid';
import { SiweMessage as SpruceSiwe } from 'siwe';
import { verifyMessage } from 'viem';
import { isOpenKeyError } from '../errors.ts';
import { concatBytes } from '../bytes.ts';
import { blake3RawCid, cacaoAuthorization, cacaoFromAuthorization, cacaoFromSiwe, cacaoMessage, decodeCacao, encodeCacao, verifyCacaoSignature } from './cacao.ts';
import { checkCapabilities } from './capability.ts';
import { encodeRecap, siweStatementWithRecap } from './recap.ts';
import { formatSiwe, isoTime, type SiweFields } from './siwe.ts';
import { edKey, expectCode, hex0x, res, secpOwner, T0 } from './test-helpers.ts';

const owner = secpOwner();
const delegate = edKey('backend');
const caps = checkCapabilities([{ resource: res(owner.did, 'applications', 'kv', 'app/'), ability: 'tinycloud.kv/get' }]);
const fields: SiweFields = {
  domain: 'openkey.example',
  address: owner.address,
  statement: siweStatementWithRecap(caps),
  uri: delegate.didUrl,
  version: '1',
  chainId: 1,
  nonce: 'Kx7dQ2mZp9VwR4tY',
  issuedAt: isoTime(T0),
  expirationTime: isoTime(T0 + 3_600_000),
  resources: [encodeRecap(caps)],
};
const text = formatSiwe(fields);
const signature = owner.personalSign(new TextEncoder().encode(text));
const bytes = encodeCacao(cacaoFromSiwe(fields, signature));

describe('CAIP-74 CACAO (SIWE / EIP-191)', () => {
  it('decodes with @ipld/dag-cbor to what @didtools/cacao builds from the signed SIWE text', () => {
    const decoded = dagCbor.decode(bytes) as { h: unknown; p: unknown; s: { t: string; s: Uint8Array } };
    // @didtools/siwx's text parser drops `Expiration Time` (its own bug), so the fields come from the
    // spruce `siwe` parser — also independent of ours — and @didtools builds the CACAO from them.
    const parsed = new SpruceSiwe(text);
    const theirs = Cacao.fromSiweMessage(
      new DidtoolsSiwe({
        domain: parsed.domain,
        address: parsed.address,
        ...(parsed.statement !== undefined ? { statement: parsed.statement } : {}),
        uri: parsed.uri,
        version: parsed.version,
        chainId: String(parsed.chainId),
        nonce: parsed.nonce,
        issuedAt: parsed.issuedAt as string,
        expirationTime: parsed.expirationTime as string,
        resources: parsed.resources as string[],
        signature: hex0x(signature),
      }),
    );
    expect(decoded.h).toEqual(theirs.h);
    expect(decoded.p).toEqual(theirs.p);
    expect(decoded.s.t).toBe(theirs.s?.t);
    expect(hex0x(decoded.s.s)).toBe(theirs.s?.s); // TinyCloud (Rust cacao) stores the 65 bytes, @didtools hex
    expect(decoded.p).toMatchObject({ iss: owner.did, aud: delegate.didUrl, version: '1' });
  });

  it('@didtools/cacao rebuilds the exact SIWE text from our CACAO, and viem recovers the owner', async () => {
    const decoded = decodeCacao(bytes);
    const back = DidtoolsSiwe.fromCacao({ h: decoded.h, p: { ...decoded.p, resources: [...decoded.p.resources] }, s: { t: 'eip191', s: hex0x(decoded.s.s) } });
    expect(back.signMessage()).toBe(text);
    expect(cacaoMessage(decoded)).toBe(text);
    expect(await verifyMessage({ address: owner.address as `0x${string}`, message: text, signature: hex0x(decoded.s.s) })).toBe(true);
    expect(verifyCacaoSignature(decoded)).toBe(true);
  });

  it('has CID = CIDv1(raw 0x55, BLAKE3-256 0x1e) of the DAG-CBOR bytes, recomputed with multiformats', () => {
    const cid = CID.parse(blake3RawCid(bytes));
    expect(cid.version).toBe(1);
    expect(cid.code).toBe(0x55);
    expect(cid.multihash.code).toBe(0x1e);
    expect(cid.multihash.digest).toEqual(blake3(bytes, { dkLen: 32 }));
    expect(blake3RawCid(bytes).startsWith('bafkr4i')).toBe(true); // base32, raw, blake3-256
  });

  it('travels as padded base64url (Rust URL_SAFE) in the Authorization header', () => {
    const auth = cacaoAuthorization(bytes);
    expect(auth.length % 4).toBe(0);
    expect(auth).not.toMatch(/[+/]/);
    expect(new Uint8Array(Buffer.from(auth, 'base64url'))).toEqual(bytes);
    expect(cacaoFromAuthorization(auth)).toEqual(bytes);
    if (auth.endsWith('=')) expectCode(() => cacaoFromAuthorization(auth.replace(/=+$/, '')), 'MALFORMED_REQUEST');
    expectCode(() => cacaoFromAuthorization(`${auth}====`), 'MALFORMED_REQUEST');
    expectCode(() => cacaoFromAuthorization(Buffer.from(bytes).toString('base64')), 'MALFORMED_REQUEST');
  });

  it('flipping any bit of any byte is refused: by the decoder, or by the signature check', () => {
    let decoderRefusals = 0;
    for (let i = 0; i < bytes.length; i++) {
      const tampered = Uint8Array.from(bytes);
      tampered[i] = (tampered[i] as number) ^ (1 << i % 8);
      try {
        expect(verifyCacaoSignature(decodeCacao(tampered)), `byte ${i}`).toBe(false);
      } catch (e) {
        expect(isOpenKeyError(e), `byte ${i}: ${String(e)}`).toBe(true);
        decoderRefusals++;
      }
    }
    expect(decoderRefusals).toBeGreaterThan(0);
  });

  it('truncating anywhere or appending a byte is a clean refusal', () => {
    for (let cut = 0; cut < bytes.length; cut++) expectCode(() => decodeCacao(bytes.subarray(0, cut)), 'MALFORMED_REQUEST');
    expectCode(() => decodeCacao(concatBytes(bytes, new Uint8Array([0]))), 'MALFORMED_REQUEST');
  });

  it('refuses non-canonical or foreign CACAOs', () => {
    const value = dagCbor.decode(bytes) as { h: Record<string, unknown>; p: Record<string, unknown>; s: Record<string, unknown> };
    const enc = (v: unknown): Uint8Array => dagCbor.encode(v);
    // Same members, map keys out of DAG-CBOR order (s, p, h).
    const unsorted = concatBytes(new Uint8Array([0xa3]), enc('s'), enc(value.s), enc('p'), enc(value.p), enc('h'), enc(value.h));
    expectCode(() => decodeCacao(unsorted), 'MALFORMED_REQUEST');
    const cases: unknown[] = [
      { ...value, h: { t: 'caip122' } },
      { ...value, s: { ...value.s, t: 'eip1271' } },
      { ...value, s: { ...value.s, s: (value.s['s'] as Uint8Array).subarray(0, 64) } },
      { ...value, p: { ...value.p, extra: 'x' } },
      { ...value, p: { ...value.p, version: 1 } },
      { ...value, p: { ...value.p, iss: owner.did.toLowerCase() } },
      { ...value, p: { ...value.p, iss: delegate.did } },
      { ...value, p: { ...value.p, iat: 'yesterday' } },
      { ...value, p: { ...value.p, statement: 'two\nlines' } },
      { h: value.h, p: value.p },
      [value.h, value.p, value.s],
    ];
    for (const c of cases) expectCode(() => decodeCacao(enc(c)), 'MALFORMED_REQUEST');
    expectCode(() => decodeCacao(new Uint8Array(64 * 1024 + 1)), 'PAYLOAD_TOO_LARGE');
  });
});
