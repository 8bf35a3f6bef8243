// The crypto core's public surface: Ethereum signing (secp256k1, EIP-191, EIP-712), Ed25519,
// addresses and DIDs, HPKE for key import, and principal stamp verification. Everything else in
// this folder is internal to it.

export { keccak256 } from './keccak.ts';
export { hashPersonalMessage } from './eip191.ts';
export {
  createEip712Hasher,
  hashTypedData,
  DEFAULT_EIP712_LIMITS,
  type Eip712CacheStats,
  type Eip712Domain,
  type Eip712Hasher,
  type Eip712HasherOptions,
  type Eip712Limits,
  type TypedDataHash,
} from './eip712.ts';
export {
  createNativeSecp256k1Backend,
  createNobleSecp256k1Backend,
  loadSecp256k1,
  type LoadSecp256k1Options,
  type Secp256k1Backend,
  type Secp256k1BackendName,
} from './secp256k1.ts';
export {
  createEd25519Signer,
  ed25519PublicKey,
  ed25519Verify,
  ED25519_PUBLIC_KEY_LENGTH,
  ED25519_SEED_LENGTH,
  ED25519_SIGNATURE_LENGTH,
  type Ed25519Signer,
} from './ed25519.ts';
export {
  addressBytesFromPublicKey,
  addressFromPublicKey,
  checksumAddress,
  isValidAddress,
  normalizeAddress,
  parseAddress,
} from './address.ts';
export { didKey, didKeyVerificationMethod, didPkh, didPkhFromPublicKey, parseDidKey, parseDidPkh, type DidKeyAlgorithm } from './did.ts';
export {
  createHpkeRecipient,
  hpkeOpen,
  hpkeSeal,
  x25519DeriveKeyPair,
  x25519PublicKey,
  HPKE_AEAD_ID,
  HPKE_KDF_ID,
  HPKE_KEM_ID,
  type HpkeOpenInput,
  type HpkeRecipient,
  type HpkeSealed,
  type HpkeSealInput,
} from './hpke.ts';
export {
  createPrincipalVerifier,
  validatePrincipalPublicKey,
  type PrincipalVerifier,
  type PrincipalVerifierOptions,
} from './principal-signature.ts';
