// Client side of encrypted key import (proto/protocol/key-import.ts): encrypts a private key to
// the appliance's import key with a standard HPKE library (@hpke/core), so the plaintext key never
// travels. Callers should take the import key from a verified appliance (see attestation).

import { Aes256Gcm, CipherSuite, HkdfSha256 } from '@hpke/core';
import { DhkemX25519HkdfSha256 } from '@hpke/dhkem-x25519';
import { IMPORT_INFO, importAad } from '../../proto/protocol/key-import.ts';

const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });

const buf = (b: Uint8Array): ArrayBuffer => b.slice().buffer;

export interface EncryptedImport {
  readonly enc: Uint8Array;
  readonly ciphertext: Uint8Array;
}

export async function encryptKeyForImport(o: {
  readonly importPublicKey: Uint8Array;
  readonly secret: Uint8Array;
  readonly algorithm: 'secp256k1' | 'ed25519';
  readonly principalId: string;
}): Promise<EncryptedImport> {
  if (o.secret.length !== 32) throw new Error('a private key to import is 32 bytes');
  const recipientPublicKey = await suite.kem.deserializePublicKey(buf(o.importPublicKey));
  const sealed = await suite.seal(
    { recipientPublicKey, info: buf(new TextEncoder().encode(IMPORT_INFO)) },
    buf(o.secret),
    buf(importAad(o.algorithm, o.principalId)),
  );
  return { enc: new Uint8Array(sealed.enc), ciphertext: new Uint8Array(sealed.ct) };
}
