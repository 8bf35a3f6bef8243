// Key lifecycle in the domain: generate or import a key, seal it, store it with its owner, and
// unseal it for use with the public key re-derived and compared. A key is visible only to its
// owner; for anyone else it does not exist (KEY_NOT_FOUND either way).

import type { Authenticated } from './auth.ts';
import { importAad } from '../../../proto/protocol/key-import.ts';
import { equalBytes, zeroize } from './bytes.ts';
import { appendAudit } from './audit.ts';
import { OpenKeyError, isOpenKeyError, type ErrorCode } from './errors.ts';
import { checkKeyId, newKeyId } from './ids.ts';
import type { Change, Clock, KeyAlgorithm, KeyRecord, PrincipalRecord, Random, Store } from './ports.ts';

export const MAX_LABEL_LENGTH = 128;
export const MAX_PAGE_SIZE = 500;
export const DEFAULT_PAGE_SIZE = 100;
export { IMPORT_INFO, importAad } from '../../../proto/protocol/key-import.ts';

/** Algorithm-specific key math (core/key-material.ts). */
export interface KeyMaterial {
  generate(algorithm: KeyAlgorithm, random: Random): Uint8Array;
  /** Public key of a secret; throws INVALID_PRIVATE_KEY for a secret that is not a valid key. */
  publicKey(algorithm: KeyAlgorithm, secret: Uint8Array): Uint8Array;
  address(algorithm: KeyAlgorithm, publicKey: Uint8Array): string;
  did(algorithm: KeyAlgorithm, publicKey: Uint8Array): string;
  /** A ready-to-use signer that takes ownership of `secret` (zeroized by `destroy`). */
  usable(algorithm: KeyAlgorithm, secret: Uint8Array): UsableKey;
}

/** An unsealed key prepared for repeated use inside the appliance. */
export interface UsableKey {
  /** secp256k1: signs a 32-byte digest (65-byte r‖s‖v). Ed25519: signs the message. */
  sign(data: Uint8Array): Uint8Array;
  destroy(): void;
}

export interface SealParams {
  readonly keyId: string;
  readonly algorithm: KeyAlgorithm;
  readonly publicKey: Uint8Array;
  readonly owner: string;
}

/** Sealing envelopes (core/sealing.ts), bound to the appliance's sealing keyring. */
export interface Sealer {
  seal(params: SealParams, secret: Uint8Array): Uint8Array;
  /** Throws SEALED_KEY_CORRUPT for every failure. */
  unseal(params: SealParams, blob: Uint8Array): Uint8Array;
}

/** Opens an HPKE-encrypted import; throws IMPORT_DECRYPT_FAILED for every failure. */
export type ImportOpener = (enc: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array) => Uint8Array;

export interface KeyServiceOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly random: Random;
  readonly material: KeyMaterial;
  readonly sealer: Sealer;
  readonly openImport: ImportOpener;
  readonly importPublicKey: Uint8Array;
}

export interface NewKey {
  readonly algorithm: KeyAlgorithm;
  readonly label: string;
  readonly rawDigestSigning: boolean;
  readonly import?: { readonly enc: Uint8Array; readonly ciphertext: Uint8Array };
}

export interface KeyView extends Omit<KeyRecord, 'sealed'> {
  readonly address: string;
  readonly did: string;
}

export class KeyService {
  constructor(private readonly o: KeyServiceOptions) {}

  get importPublicKey(): Uint8Array {
    return Uint8Array.from(this.o.importPublicKey);
  }

  /** Creates (or imports) a key for the caller. Audited as seal_key, allowed or denied. */
  async create(auth: Authenticated, input: NewKey): Promise<KeyView> {
    const audit = (keyId: string, decision: 'allow' | 'deny', reason: ErrorCode | 'OWNER'): Change =>
      appendAudit({ time: this.o.clock.now(), principal: auth.principal.id, operation: 'seal_key', keyId, requestDigest: auth.requestDigest, decision, reason });
    try {
      return await this.createAudited(auth, input, (keyId) => audit(keyId, 'allow', 'OWNER'));
    } catch (e) {
      if (isOpenKeyError(e) && e.code !== 'INTERNAL' && e.code !== 'STAMP_REPLAYED') await this.o.store.commit([...auth.nonceChanges, audit('', 'deny', e.code)]);
      throw e;
    }
  }

  private async createAudited(auth: Authenticated, input: NewKey, allowed: (keyId: string) => Change): Promise<KeyView> {
    if (input.label.length > MAX_LABEL_LENGTH) throw new OpenKeyError('PAYLOAD_TOO_LARGE', 'label');
    if (input.rawDigestSigning && input.algorithm !== 'secp256k1') {
      throw new OpenKeyError('ALGORITHM_MISMATCH', 'raw digest signing is for secp256k1 keys');
    }
    const owner = auth.principal.id;
    const secret = input.import
      ? this.openImport(input.algorithm, owner, input.import.enc, input.import.ciphertext)
      : this.o.material.generate(input.algorithm, this.o.random);
    try {
      const publicKey = this.o.material.publicKey(input.algorithm, secret);
      const keyId = newKeyId(this.o.random);
      const params: SealParams = { keyId, algorithm: input.algorithm, publicKey, owner };
      const record: KeyRecord = {
        ...params,
        label: input.label,
        rawDigestSigning: input.rawDigestSigning,
        createdAt: this.o.clock.now(),
        sealed: this.o.sealer.seal(params, secret),
      };
      await this.o.store.commit([...auth.nonceChanges, { kind: 'createKey', key: record }, allowed(keyId)]);
      return this.view(record);
    } finally {
      zeroize(secret);
    }
  }

  /** The caller's key, or KEY_NOT_FOUND (also when the key exists but belongs to someone else). */
  async owned(principal: PrincipalRecord, keyId: string): Promise<KeyRecord> {
    const record = await this.o.store.getKey(checkKeyId(keyId));
    if (record === undefined || record.owner !== principal.id) throw new OpenKeyError('KEY_NOT_FOUND');
    return record;
  }

  async get(auth: Authenticated, keyId: string): Promise<KeyView> {
    const record = await this.owned(auth.principal, keyId);
    await this.o.store.commit(auth.nonceChanges);
    return this.view(record);
  }

  async list(auth: Authenticated, pageSize: number, pageToken: string): Promise<{ keys: KeyView[]; nextPageToken: string }> {
    if (!Number.isInteger(pageSize) || pageSize < 0 || pageSize > MAX_PAGE_SIZE) {
      throw new OpenKeyError('MALFORMED_REQUEST', 'page_size');
    }
    if (pageToken !== '') checkKeyId(pageToken);
    const limit = pageSize === 0 ? DEFAULT_PAGE_SIZE : pageSize;
    // One extra row tells whether another page exists.
    const rows = await this.o.store.listKeys(auth.principal.id, pageToken === '' ? { limit: limit + 1 } : { limit: limit + 1, after: pageToken });
    await this.o.store.commit(auth.nonceChanges);
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return { keys: page.map((r) => this.view(r)), nextPageToken: rows.length > limit && last ? last.keyId : '' };
  }

  /** Unseals a stored key and checks it is the key the record describes. Caller zeroizes. */
  unseal(record: KeyRecord): Uint8Array {
    const params: SealParams = { keyId: record.keyId, algorithm: record.algorithm, publicKey: record.publicKey, owner: record.owner };
    const secret = this.o.sealer.unseal(params, record.sealed);
    let derived: Uint8Array;
    try {
      derived = this.o.material.publicKey(record.algorithm, secret);
    } catch {
      // A secret that is not a valid key can only come from a corrupt or forged blob.
      zeroize(secret);
      throw new OpenKeyError('SEALED_KEY_CORRUPT', 'unsealed secret is not a valid key');
    }
    if (!equalBytes(derived, record.publicKey)) {
      zeroize(secret);
      throw new OpenKeyError('SEALED_KEY_CORRUPT', 'public key mismatch');
    }
    return secret;
  }

  /** A signer for an unsealed secret; `secret` stays the caller's to zeroize. */
  usable(algorithm: KeyAlgorithm, secret: Uint8Array): UsableKey {
    return this.o.material.usable(algorithm, Uint8Array.from(secret));
  }

  view(r: KeyRecord): KeyView {
    return {
      keyId: r.keyId,
      owner: r.owner,
      algorithm: r.algorithm,
      publicKey: r.publicKey,
      label: r.label,
      rawDigestSigning: r.rawDigestSigning,
      createdAt: r.createdAt,
      address: this.o.material.address(r.algorithm, r.publicKey),
      did: this.o.material.did(r.algorithm, r.publicKey),
    };
  }

  private openImport(algorithm: KeyAlgorithm, owner: string, enc: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (enc.length === 0) throw new OpenKeyError('MISSING_FIELD', 'import.enc');
    if (ciphertext.length === 0) throw new OpenKeyError('MISSING_FIELD', 'import.ciphertext');
    const secret = this.o.openImport(enc, ciphertext, importAad(algorithm, owner));
    if (secret.length !== 32) {
      zeroize(secret);
      throw new OpenKeyError('IMPORT_DECRYPT_FAILED');
    }
    return secret;
  }
}
