// The EIP-712 specification's own example, end to end: its published private key
// (keccak256("cow")) is imported into the appliance encrypted to the import key (HPKE via
// @hpke/core on the client, our own RFC 9180 code in the appliance), and the appliance's signature
// of the spec's Mail document equals the signature the spec publishes.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { keccak256, toBytes, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyAlgorithm } from '../proto/gen/openkey/v1/common_pb.ts';
import { PrincipalKeyAlgorithm } from '../proto/gen/openkey/v1/principals_pb.ts';
import { createOpenKeyClient, encryptKeyForImport, generateCredentials, openKeyErrorCode } from '../clients/src/index.ts';
import { startTestAppliance, type TestAppliance } from './support/appliance.ts';

// EIP-712, "Test cases" (Example.js / Example.sol): the Mail document (the same file the README's
// walk-through signs) and its published digest and signature.
const SPEC_DOC: unknown = JSON.parse(readFileSync(fileURLToPath(new URL('../clients/examples/mail.json', import.meta.url)), 'utf8'));
const SPEC_DIGEST = '0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2';
const SPEC_R = '4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d';
const SPEC_S = '07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562';
const SPEC_V = 28;
const COW_ADDRESS = '0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826';

describe('EIP-712 specification example, imported key', () => {
  let app: TestAppliance;
  beforeAll(async () => {
    app = await startTestAppliance();
  });
  afterAll(async () => app.dispose());

  it('imports keccak256("cow") encrypted and reproduces the published signature', async () => {
    const creds = generateCredentials();
    const client = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: creds });
    await client.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.ED25519, publicKey: creds.publicKey, name: 'spec' });
    const { publicKey: importPublicKey } = await client.keys.getImportKey({});
    const secret = toBytes(keccak256(toBytes('cow')));
    const imp = await encryptKeyForImport({ importPublicKey, secret, algorithm: 'secp256k1', principalId: creds.principalId });

    const created = await client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1, import: imp });
    expect(created.key?.address).toBe(COW_ADDRESS);

    const res = await client.signing.sign({
      keyId: created.key?.keyId ?? '',
      payload: { kind: { case: 'typedData', value: { json: JSON.stringify(SPEC_DOC) } } },
    });
    expect(`0x${Buffer.from(res.digest).toString('hex')}` as Hex).toBe(SPEC_DIGEST);
    expect(Buffer.from(res.signature).toString('hex')).toBe(`${SPEC_R}${SPEC_S}${SPEC_V.toString(16)}`);
  });

  it('an import encrypted for another principal or algorithm is refused and stores nothing', async () => {
    const creds = generateCredentials();
    const client = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: creds });
    await client.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.ED25519, publicKey: creds.publicKey, name: 'other' });
    const { publicKey: importPublicKey } = await client.keys.getImportKey({});
    const secret = toBytes(keccak256(toBytes('cow')));
    const forSomeoneElse = await encryptKeyForImport({ importPublicKey, secret, algorithm: 'secp256k1', principalId: generateCredentials().principalId });
    const e1 = await client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1, import: forSomeoneElse }).catch((e: unknown) => e);
    expect(openKeyErrorCode(e1)).toBe('IMPORT_DECRYPT_FAILED');
    const asEd25519 = await encryptKeyForImport({ importPublicKey, secret, algorithm: 'ed25519', principalId: creds.principalId });
    const e2 = await client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1, import: asEd25519 }).catch((e: unknown) => e);
    expect(openKeyErrorCode(e2)).toBe('IMPORT_DECRYPT_FAILED');
    // A scalar that is not a valid secp256k1 key (zero) is refused after decryption.
    const zero = await encryptKeyForImport({ importPublicKey, secret: new Uint8Array(32), algorithm: 'secp256k1', principalId: creds.principalId });
    const e3 = await client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1, import: zero }).catch((e: unknown) => e);
    expect(openKeyErrorCode(e3)).toBe('INVALID_PRIVATE_KEY');
    expect((await client.keys.listKeys({})).keys).toHaveLength(0);
  });
});
