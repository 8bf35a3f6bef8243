// Service-principal credentials on the client: an Ed25519 (default) or P-256 stamping key, its
// raw public key and the principal id derived from it. Stored as a JSON file with mode 0600; the
// private key is PKCS#8 DER (base64) and never sent anywhere.

import { createPrivateKey, createPublicKey, generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { principalIdFor, type PrincipalKeyAlgorithmName } from '../../proto/protocol/principal.ts';

export interface Credentials {
  readonly algorithm: PrincipalKeyAlgorithmName;
  readonly principalId: string;
  /** Ed25519: 32 raw bytes. P-256: 33-byte compressed SEC1 point. */
  readonly publicKey: Uint8Array;
  /** Signs a stamp's signing input: Ed25519, or ECDSA P-256/SHA-256 as 64-byte r‖s. */
  sign(message: Uint8Array): Uint8Array;
  /** PKCS#8 DER of the private key, for saving. */
  exportPrivateKey(): Uint8Array;
}

function rawPublicKey(algorithm: PrincipalKeyAlgorithmName, pub: KeyObject): Uint8Array {
  const jwk = pub.export({ format: 'jwk' });
  if (algorithm === 'ed25519') {
    if (typeof jwk.x !== 'string') throw new Error('not an Ed25519 key');
    return new Uint8Array(Buffer.from(jwk.x, 'base64url'));
  }
  if (typeof jwk.x !== 'string' || typeof jwk.y !== 'string') throw new Error('not a P-256 key');
  // Compressed SEC1 (0x02/0x03 by the parity of y): the form principal ids are computed over.
  const y = Buffer.from(jwk.y, 'base64url');
  return new Uint8Array(Buffer.concat([Buffer.from([(y[31] ?? 0) & 1 ? 3 : 2]), Buffer.from(jwk.x, 'base64url')]));
}

export function credentialsFromPrivateKey(algorithm: PrincipalKeyAlgorithmName, pkcs8: Uint8Array): Credentials {
  const priv = createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' });
  const expected = algorithm === 'ed25519' ? 'ed25519' : 'ec';
  if (priv.asymmetricKeyType !== expected) throw new Error(`private key is not ${algorithm}`);
  if (algorithm === 'p256' && priv.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error('EC key is not P-256');
  const publicKey = rawPublicKey(algorithm, createPublicKey(priv));
  const der = Uint8Array.from(pkcs8);
  return {
    algorithm,
    principalId: principalIdFor(algorithm, publicKey),
    publicKey,
    sign: (message) =>
      new Uint8Array(
        algorithm === 'ed25519'
          ? nodeSign(null, message, priv)
          : nodeSign('sha256', message, { key: priv, dsaEncoding: 'ieee-p1363' }),
      ),
    exportPrivateKey: () => Uint8Array.from(der),
  };
}

export function generateCredentials(algorithm: PrincipalKeyAlgorithmName = 'ed25519'): Credentials {
  const { privateKey } =
    algorithm === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return credentialsFromPrivateKey(algorithm, new Uint8Array(privateKey.export({ format: 'der', type: 'pkcs8' })));
}

interface CredentialsFile {
  version: 1;
  algorithm: PrincipalKeyAlgorithmName;
  principalId: string;
  privateKeyPkcs8: string;
}

export function saveCredentials(path: string, c: Credentials): void {
  const body: CredentialsFile = {
    version: 1,
    algorithm: c.algorithm,
    principalId: c.principalId,
    privateKeyPkcs8: Buffer.from(c.exportPrivateKey()).toString('base64'),
  };
  writeFileSync(path, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
}

export function loadCredentials(path: string): Credentials {
  const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
  if (typeof parsed !== 'object' || parsed === null) throw new Error(`${path}: not a credentials file`);
  const f = parsed as Record<string, unknown>;
  const algorithm = f['algorithm'];
  const pkcs8 = f['privateKeyPkcs8'];
  if (f['version'] !== 1 || (algorithm !== 'ed25519' && algorithm !== 'p256') || typeof pkcs8 !== 'string') {
    throw new Error(`${path}: not a version 1 credentials file`);
  }
  const c = credentialsFromPrivateKey(algorithm, new Uint8Array(Buffer.from(pkcs8, 'base64')));
  if (f['principalId'] !== undefined && f['principalId'] !== c.principalId) throw new Error(`${path}: principalId does not match the key`);
  return c;
}
