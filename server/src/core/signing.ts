// Typed signing in the domain. Every payload is checked and hashed (EIP-191, EIP-712 inside the
// appliance) before any key is unsealed; a batch is checked in full before its first signature.
// secp256k1 signatures are 65 bytes r‖s‖v, low-S, v ∈ {27, 28}; Ed25519 signs the message.

import type { Authenticated } from './auth.ts';
import { zeroize } from './bytes.ts';
import { OpenKeyError } from './errors.ts';
import type { UnsealedKeyCache } from './key-cache.ts';
import type { KeyService } from './keys.ts';
import type { KeyAlgorithm, KeyRecord, Store } from './ports.ts';

export const MAX_MESSAGE_BYTES = 64 * 1024;
export const MAX_TYPED_DATA_CHARS = 64 * 1024;
export const MAX_BATCH_ITEMS = 64;

export type SignPayload =
  | { readonly kind: 'personalMessage'; readonly message: Uint8Array }
  | { readonly kind: 'typedData'; readonly json: string }
  | { readonly kind: 'rawDigest'; readonly digest: Uint8Array }
  | { readonly kind: 'ed25519Message'; readonly message: Uint8Array };

export interface SignItem {
  readonly keyId: string;
  readonly payload: SignPayload | undefined;
}

export interface Signature {
  readonly keyId: string;
  readonly signature: Uint8Array;
  /** The 32-byte hash that was signed (secp256k1); empty for Ed25519. */
  readonly digest: Uint8Array;
}

/** Payload hashing (core/key-material.ts). */
export interface PayloadHasher {
  personalMessage(message: Uint8Array): Uint8Array;
  /** Throws INVALID_TYPED_DATA (or PAYLOAD_TOO_LARGE) for a document that breaks EIP-712. */
  typedData(json: string): Uint8Array;
}

export interface SignServiceOptions {
  readonly store: Store;
  readonly keys: KeyService;
  readonly cache: UnsealedKeyCache;
  readonly hash: PayloadHasher;
}

interface Prepared {
  readonly record: KeyRecord;
  /** What the key signs: a digest (secp256k1) or the message (Ed25519). */
  readonly data: Uint8Array;
  readonly digest: Uint8Array;
}

export class SignService {
  constructor(private readonly o: SignServiceOptions) {}

  async sign(auth: Authenticated, item: SignItem): Promise<Signature> {
    const prepared = await this.prepare(auth, item);
    await this.o.store.commit([auth.nonceChange]);
    return this.signPrepared(prepared);
  }

  async signBatch(auth: Authenticated, items: readonly SignItem[]): Promise<Signature[]> {
    if (items.length === 0) throw new OpenKeyError('MISSING_FIELD', 'items');
    if (items.length > MAX_BATCH_ITEMS) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `batch of ${items.length} > ${MAX_BATCH_ITEMS}`);
    const prepared: Prepared[] = [];
    for (const item of items) prepared.push(await this.prepare(auth, item));
    await this.o.store.commit([auth.nonceChange]);
    return prepared.map((p) => this.signPrepared(p));
  }

  private async prepare(auth: Authenticated, item: SignItem): Promise<Prepared> {
    const record = await this.o.keys.owned(auth.principal, item.keyId);
    const payload = item.payload;
    if (payload === undefined) throw new OpenKeyError('MISSING_FIELD', 'payload');
    const need = requiredAlgorithm(payload);
    if (need !== record.algorithm) throw new OpenKeyError('ALGORITHM_MISMATCH', `${payload.kind} needs ${need}`);
    switch (payload.kind) {
      case 'personalMessage': {
        checkMessage(payload.message, 'personal_message.message');
        const digest = this.o.hash.personalMessage(payload.message);
        return { record, data: digest, digest };
      }
      case 'typedData': {
        if (payload.json.length === 0) throw new OpenKeyError('MISSING_FIELD', 'typed_data.json');
        if (payload.json.length > MAX_TYPED_DATA_CHARS) throw new OpenKeyError('PAYLOAD_TOO_LARGE', 'typed_data.json');
        const digest = this.o.hash.typedData(payload.json);
        return { record, data: digest, digest };
      }
      case 'rawDigest': {
        if (payload.digest.length === 0) throw new OpenKeyError('MISSING_FIELD', 'raw_digest');
        if (payload.digest.length !== 32) throw new OpenKeyError('INVALID_DIGEST_LENGTH');
        if (!record.rawDigestSigning) throw new OpenKeyError('RAW_SIGNING_DISABLED');
        const digest = Uint8Array.from(payload.digest);
        return { record, data: digest, digest };
      }
      case 'ed25519Message':
        checkMessage(payload.message, 'ed25519_message');
        return { record, data: Uint8Array.from(payload.message), digest: new Uint8Array(0) };
    }
  }

  private signPrepared(p: Prepared): Signature {
    const signature = this.o.cache.with(
      p.record,
      () => {
        const secret = this.o.keys.unseal(p.record);
        try {
          return this.o.keys.usable(p.record.algorithm, secret);
        } finally {
          zeroize(secret);
        }
      },
      (key) => key.sign(p.data),
    );
    return { keyId: p.record.keyId, signature, digest: p.digest };
  }
}

function requiredAlgorithm(p: SignPayload): KeyAlgorithm {
  return p.kind === 'ed25519Message' ? 'ed25519' : 'secp256k1';
}

function checkMessage(m: Uint8Array, label: string): void {
  if (m.length === 0) throw new OpenKeyError('MISSING_FIELD', label);
  if (m.length > MAX_MESSAGE_BYTES) throw new OpenKeyError('PAYLOAD_TOO_LARGE', label);
}
