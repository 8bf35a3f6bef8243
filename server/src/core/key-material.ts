// Binds the crypto modules (core/crypto) to the domain's algorithm-neutral interfaces: key
// generation and public-key derivation, addresses and DIDs, ready-to-use signers, payload
// hashing (EIP-191, EIP-712), principal-signature checks and the HPKE import recipient.

import { zeroize } from './bytes.ts';
import { addressFromPublicKey } from './crypto/address.ts';
import { didKey, didPkhFromPublicKey } from './crypto/did.ts';
import { createEd25519Signer, ed25519PublicKey } from './crypto/ed25519.ts';
import { hashPersonalMessage } from './crypto/eip191.ts';
import { createEip712Hasher } from './crypto/eip712.ts';
import { createHpkeRecipient } from './crypto/hpke.ts';
import { createPrincipalVerifier, validatePrincipalPublicKey } from './crypto/principal-signature.ts';
import { loadSecp256k1, type Secp256k1Backend, type Secp256k1BackendName } from './crypto/secp256k1.ts';
import { OpenKeyError } from './errors.ts';
import { IMPORT_INFO, type ImportOpener, type KeyMaterial, type UsableKey } from './keys.ts';
import type { PrincipalSignatureVerifier } from './auth.ts';
import type { KeyAlgorithm, Random } from './ports.ts';
import type { PublicKeyValidator } from './principals.ts';
import type { PayloadHasher } from './signing.ts';
import { utf8 } from './bytes.ts';

export interface ApplianceCrypto {
  readonly secp256k1Backend: Secp256k1BackendName;
  readonly material: KeyMaterial;
  readonly hasher: PayloadHasher;
  readonly verifyPrincipalSignature: PrincipalSignatureVerifier;
  readonly validatePrincipalPublicKey: PublicKeyValidator;
  /** The HPKE recipient for key imports; `privateKey` stays the caller's to zeroize. */
  importOpener(privateKey: Uint8Array): { readonly publicKey: Uint8Array; readonly open: ImportOpener };
}

function secpMaterial(secp: Secp256k1Backend): Pick<KeyMaterial, 'generate' | 'publicKey'> & { usable(secret: Uint8Array): UsableKey } {
  return {
    generate: (_alg, random) => {
      // Rejection sampling: a random 32-byte string is a valid scalar with overwhelming probability.
      for (let i = 0; i < 16; i++) {
        const candidate = random.bytes(32);
        if (secp.isValidPrivateKey(candidate)) return candidate;
        zeroize(candidate);
      }
      throw new OpenKeyError('INTERNAL', 'randomness source produced no valid secp256k1 scalar');
    },
    publicKey: (_alg, secret) => secp.getPublicKey(secret, true),
    usable: (secret) => {
      let key: Uint8Array | undefined = secret;
      return {
        sign: (digest) => {
          if (key === undefined) throw new OpenKeyError('INTERNAL', 'key used after destroy');
          return secp.sign(digest, key);
        },
        destroy: () => {
          zeroize(key);
          key = undefined;
        },
      };
    },
  };
}

export function createApplianceCrypto(): ApplianceCrypto {
  const { backend: secp } = loadSecp256k1();
  const s = secpMaterial(secp);
  const material: KeyMaterial = {
    generate: (alg: KeyAlgorithm, random: Random) => (alg === 'secp256k1' ? s.generate(alg, random) : random.bytes(32)),
    publicKey: (alg, secret) => (alg === 'secp256k1' ? s.publicKey(alg, secret) : ed25519PublicKey(secret)),
    address: (alg, pub) => (alg === 'secp256k1' ? addressFromPublicKey(pub) : ''),
    did: (alg, pub) => (alg === 'secp256k1' ? didPkhFromPublicKey(pub) : didKey('ed25519', pub)),
    usable: (alg, secret) => {
      if (alg === 'secp256k1') return s.usable(secret);
      const signer = createEd25519Signer(secret);
      zeroize(secret); // the KeyObject holds the key from here on
      return { sign: (m) => signer.sign(m), destroy: () => signer.destroy() };
    },
  };
  const verifier = createPrincipalVerifier();
  const eip712 = createEip712Hasher();
  const info = utf8(IMPORT_INFO);
  return {
    secp256k1Backend: secp.name,
    material,
    hasher: { personalMessage: hashPersonalMessage, typedData: (json) => eip712.hash(json) },
    verifyPrincipalSignature: (alg, pub, msg, sig) => verifier.verify(alg, pub, msg, sig),
    validatePrincipalPublicKey,
    importOpener: (privateKey) => {
      const recipient = createHpkeRecipient(privateKey);
      return { publicKey: recipient.publicKey, open: (enc, ciphertext, aad) => recipient.open({ enc, ciphertext, info, aad }) };
    },
  };
}
