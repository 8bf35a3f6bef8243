// Provisions a freshly started appliance for a benchmark round through the public client SDK, as
// a service would: register a throwaway Ed25519 principal (open registration, development mode)
// and seal one secp256k1 and one Ed25519 key owned by it.

import { createOpenKeyClient, generateCredentials, type Credentials } from '../clients/src/index.ts';
import { KeyAlgorithm } from '../proto/gen/openkey/v1/common_pb.ts';
import { PrincipalKeyAlgorithm } from '../proto/gen/openkey/v1/principals_pb.ts';

export interface BenchKey {
  readonly keyId: string;
  readonly publicKeyHex: string;
}

export interface Provisioned {
  readonly credentials: Credentials;
  /** PKCS#8 DER, base64: handed to the load generator, which stamps with the same principal. */
  readonly credentialsPkcs8: string;
  readonly secp256k1: BenchKey;
  readonly ed25519: BenchKey;
}

export async function provision(baseUrl: string): Promise<Provisioned> {
  const credentials = generateCredentials('ed25519');
  const client = createOpenKeyClient({ baseUrl, credentials });
  await client.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.ED25519, publicKey: credentials.publicKey, name: 'bench' });
  const seal = async (algorithm: KeyAlgorithm, label: string): Promise<BenchKey> => {
    const res = await client.keys.sealKey({ algorithm, label });
    if (res.key === undefined || res.key.keyId === '') throw new Error(`SealKey(${label}) returned no key`);
    return { keyId: res.key.keyId, publicKeyHex: Buffer.from(res.key.publicKey).toString('hex') };
  };
  return {
    credentials,
    credentialsPkcs8: Buffer.from(credentials.exportPrivateKey()).toString('base64'),
    secp256k1: await seal(KeyAlgorithm.SECP256K1, 'bench-secp256k1'),
    ed25519: await seal(KeyAlgorithm.ED25519, 'bench-ed25519'),
  };
}
