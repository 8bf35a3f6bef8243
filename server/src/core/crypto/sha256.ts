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

/** HMAC-SHA256 of `message` under `key`; the key material derived here is zeroed before returning. */
export function hmacSha256(key: Uint8Array, message: Uint8Array): Uint8Array {
  const inner = new Uint8Array(BLOCK);
  const outer = new Uint8Array(BLOCK);
  const hashed = key.length > BLOCK ? sha256(key) : undefined; // a key longer than a block is hashed first
  inner.set(hashed ?? key);
  hashed?.fill(0);
  outer.set(inner);
  for (let i = 0; i < BLOCK; i++) {
    inner[i] = (inner[i] as number) ^ 0x36;
    outer[i] = (outer[i] as number) ^ 0x5c;
  }
  try {
    return sha256(outer, sha256(inner, message));
  } finally {
    inner.fill(0);
    outer.fill(0);
  }
}
