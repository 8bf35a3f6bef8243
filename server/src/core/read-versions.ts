// Versions of what a decision reads, for decisions made on cached reads (a cluster worker's): the
// commit carries the version of each value it used (`expectKey`, `expectDoc` in ports.ts) and the
// store compares it with the stored value inside its atomic section. A version is a SHA-256 over
// the value's content, so it changes exactly when the content does, whatever happened in between
// (a document deleted and written again starts its version counter anew; its content hash does not
// repeat unless the content does, and then the decision would be the same). Empty = absent.

import { CanonicalWriter } from '../../../proto/protocol/encoding.ts';
import type { KeyRecord, StoredDoc } from './ports.ts';
import { sha256 } from './crypto/sha256.ts';

const KEY_TAG = 'openkey-key-record-version-v1';
const ABSENT = new Uint8Array(0);

/** Fingerprint of every field of a key record; empty for no record. */
export function keyRecordVersion(r: KeyRecord | undefined): Uint8Array {
  if (r === undefined) return ABSENT;
  const canonical = new CanonicalWriter(KEY_TAG)
    .string(r.keyId)
    .string(r.owner)
    .string(r.algorithm)
    .bytes(r.publicKey)
    .string(r.label)
    .u64(r.rawDigestSigning ? 1 : 0)
    .u64(r.createdAt)
    .bytes(r.sealed)
    .finish();
  return sha256(canonical);
}

/** Fingerprint of a document's value (what the domain reads of it); empty for no document. */
export function docVersion(d: StoredDoc | undefined): Uint8Array {
  return d === undefined ? ABSENT : sha256(d.value);
}

/** Whether `v` is a version these functions can produce. */
export function isReadVersion(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array && (v.length === 0 || v.length === 32);
}
