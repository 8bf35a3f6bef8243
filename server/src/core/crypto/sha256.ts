// SHA-256 and HMAC-SHA256 for the request path, through node:crypto's one-shot `hash`.
//
// Why not `createHash` / `createHmac`: each of those builds a native Hash object that V8 tracks
// through a weak handle, and every scavenge of the young generation walks and finalizes the handles
// that died since the last one. At a few thousand calls a second, with half a dozen hashes a call,
// that walk was 9–13 ms of every scavenge (`--trace-gc-nvp`: heap.external_weak_global_handles), a
// pause that lands on whichever calls are in flight. `hash()` leaves no object behind. HMAC is built
// from it as RFC 2104 defines it: H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m)).

import { hash } from 'node:crypto';

const BLOCK = 64;

/** SHA-256 of the concatenation of `parts`, as a plain Uint8Array. */
export function sha256(...parts: readonly Uint8Array[]): Uint8Array {
  const data = parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts);
  const d = hash('sha256', data, 'buffer');
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** A key's inner and outer padded blocks, computed once for many MACs under it. */
export interface HmacKey {
  readonly inner: Uint8Array;
  readonly outer: Uint8Array;
}

/** The padded blocks of an HMAC-SHA256 key (a key longer than the block is hashed first). */
export function hmacSha256Key(key: Uint8Array): HmacKey {
  const k = new Uint8Array(BLOCK);
  k.set(key.length > BLOCK ? sha256(key) : key);
  const inner = new Uint8Array(BLOCK);
  const outer = new Uint8Array(BLOCK);
  for (let i = 0; i < BLOCK; i++) {
    inner[i] = (k[i] as number) ^ 0x36;
    outer[i] = (k[i] as number) ^ 0x5c;
  }
  k.fill(0);
  return { inner, outer };
}

/**
 * HMAC-SHA256 of `message` under `key`: raw bytes (the padded blocks derived here are zeroed
 * before returning), or blocks from `hmacSha256Key`.
 */
export function hmacSha256(key: Uint8Array | HmacKey, message: Uint8Array): Uint8Array {
  if (!(key instanceof Uint8Array)) return sha256(key.outer, sha256(key.inner, message));
  const blocks = hmacSha256Key(key);
  try {
    return sha256(blocks.outer, sha256(blocks.inner, message));
  } finally {
    blocks.inner.fill(0);
    blocks.outer.fill(0);
  }
}
