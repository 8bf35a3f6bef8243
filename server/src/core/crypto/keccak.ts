// Keccak-256 as Ethereum uses it: the original Keccak submission's padding (pad10*1 with domain
// bits 0x01), not FIPS 202 SHA3-256's 0x06. The permutation is Keccak-f[1600] (FIPS 202 §3.3) on
// 32-bit lane halves, unrolled; tests check it against @noble/hashes at every length across block
// boundaries. Hot paths (EIP-712 struct hashing) hash from a buffer region into a buffer region.

const ROUNDS = 24;
/** Rate of Keccak-256 in bytes: 1600 − 2·256 bits (FIPS 202 §6.2 with c = 512). */
const RATE = 136;

// ι round constants (FIPS 202 §3.2.5): bit 2^j − 1 of RC[ir] is rc(j + 7·ir), rc an LFSR over
// GF(2) with feedback x^8 + x^6 + x^5 + x^4 + 1 (Algorithm 5). Stored as 32-bit halves.
const RC_LO = new Int32Array(ROUNDS);
const RC_HI = new Int32Array(ROUNDS);
{
  let r = 1; // R = 10000000, so rc(0) = 1
  const rc: number[] = [];
  for (let t = 0; t < 7 * ROUNDS; t++) {
    rc.push(r & 1);
    r <<= 1; // R = 0 ‖ R
    if (r & 0x100) r ^= 0x171; // R[0,4,5,6] ^= R[8]; Trunc8
  }
  for (let ir = 0; ir < ROUNDS; ir++) {
    for (let j = 0; j <= 6; j++) {
      if (rc[j + 7 * ir] !== 1) continue;
      const bit = (1 << j) - 1;
      if (bit < 32) RC_LO[ir] = (RC_LO[ir] as number) | (1 << bit);
      else RC_HI[ir] = (RC_HI[ir] as number) | (1 << (bit - 32));
    }
  }
}

// Keccak-f[1600] in place on 25 lanes a[x + 5y], each stored as (lo, hi) little-endian 32-bit
// halves. Rotation amounts are the ρ offsets of FIPS 202 Table 2; lane order follows π (§3.2.3):
// b[x + 5y] = a[(x + 3y) mod 5 + 5x]. A 64-bit rotation by r ≥ 32 swaps the halves, then rotates
// by r − 32.
function permute(s: Int32Array): void {
  let a0l = s[0] as number, a0h = s[1] as number, a1l = s[2] as number, a1h = s[3] as number, a2l = s[4] as number, a2h = s[5] as number, a3l = s[6] as number, a3h = s[7] as number, a4l = s[8] as number, a4h = s[9] as number;
  let a5l = s[10] as number, a5h = s[11] as number, a6l = s[12] as number, a6h = s[13] as number, a7l = s[14] as number, a7h = s[15] as number, a8l = s[16] as number, a8h = s[17] as number, a9l = s[18] as number, a9h = s[19] as number;
  let a10l = s[20] as number, a10h = s[21] as number, a11l = s[22] as number, a11h = s[23] as number, a12l = s[24] as number, a12h = s[25] as number, a13l = s[26] as number, a13h = s[27] as number, a14l = s[28] as number, a14h = s[29] as number;
  let a15l = s[30] as number, a15h = s[31] as number, a16l = s[32] as number, a16h = s[33] as number, a17l = s[34] as number, a17h = s[35] as number, a18l = s[36] as number, a18h = s[37] as number, a19l = s[38] as number, a19h = s[39] as number;
  let a20l = s[40] as number, a20h = s[41] as number, a21l = s[42] as number, a21h = s[43] as number, a22l = s[44] as number, a22h = s[45] as number, a23l = s[46] as number, a23h = s[47] as number, a24l = s[48] as number, a24h = s[49] as number;
  for (let round = 0; round < 24; round++) {
    // θ: column parities c, then d[x] = c[x−1] ^ rot(c[x+1], 1)
    const c0l = a0l ^ a5l ^ a10l ^ a15l ^ a20l, c0h = a0h ^ a5h ^ a10h ^ a15h ^ a20h;
    const c1l = a1l ^ a6l ^ a11l ^ a16l ^ a21l, c1h = a1h ^ a6h ^ a11h ^ a16h ^ a21h;
    const c2l = a2l ^ a7l ^ a12l ^ a17l ^ a22l, c2h = a2h ^ a7h ^ a12h ^ a17h ^ a22h;
    const c3l = a3l ^ a8l ^ a13l ^ a18l ^ a23l, c3h = a3h ^ a8h ^ a13h ^ a18h ^ a23h;
    const c4l = a4l ^ a9l ^ a14l ^ a19l ^ a24l, c4h = a4h ^ a9h ^ a14h ^ a19h ^ a24h;
    const d0l = c4l ^ ((c1l << 1) | (c1h >>> 31)), d0h = c4h ^ ((c1h << 1) | (c1l >>> 31));
    const d1l = c0l ^ ((c2l << 1) | (c2h >>> 31)), d1h = c0h ^ ((c2h << 1) | (c2l >>> 31));
    const d2l = c1l ^ ((c3l << 1) | (c3h >>> 31)), d2h = c1h ^ ((c3h << 1) | (c3l >>> 31));
    const d3l = c2l ^ ((c4l << 1) | (c4h >>> 31)), d3h = c2h ^ ((c4h << 1) | (c4l >>> 31));
    const d4l = c3l ^ ((c0l << 1) | (c0h >>> 31)), d4h = c3h ^ ((c0h << 1) | (c0l >>> 31));
    // ρ∘π: b[dest] = rot(a[src] ^ d[src.x], ρ[src]); θ is applied here, as π reads every lane once
    const b0l = a0l ^ d0l, b0h = a0h ^ d0h; // ρ = 0
    const t1l = a6h ^ d1h, t1h = a6l ^ d1l, b1l = (t1l << 12) | (t1h >>> 20), b1h = (t1h << 12) | (t1l >>> 20); // ρ = 44
    const t2l = a12h ^ d2h, t2h = a12l ^ d2l, b2l = (t2l << 11) | (t2h >>> 21), b2h = (t2h << 11) | (t2l >>> 21); // ρ = 43
    const t3l = a18l ^ d3l, t3h = a18h ^ d3h, b3l = (t3l << 21) | (t3h >>> 11), b3h = (t3h << 21) | (t3l >>> 11); // ρ = 21
    const t4l = a24l ^ d4l, t4h = a24h ^ d4h, b4l = (t4l << 14) | (t4h >>> 18), b4h = (t4h << 14) | (t4l >>> 18); // ρ = 14
    const t5l = a3l ^ d3l, t5h = a3h ^ d3h, b5l = (t5l << 28) | (t5h >>> 4), b5h = (t5h << 28) | (t5l >>> 4); // ρ = 28
    const t6l = a9l ^ d4l, t6h = a9h ^ d4h, b6l = (t6l << 20) | (t6h >>> 12), b6h = (t6h << 20) | (t6l >>> 12); // ρ = 20
    const t7l = a10l ^ d0l, t7h = a10h ^ d0h, b7l = (t7l << 3) | (t7h >>> 29), b7h = (t7h << 3) | (t7l >>> 29); // ρ = 3
    const t8l = a16h ^ d1h, t8h = a16l ^ d1l, b8l = (t8l << 13) | (t8h >>> 19), b8h = (t8h << 13) | (t8l >>> 19); // ρ = 45
    const t9l = a22h ^ d2h, t9h = a22l ^ d2l, b9l = (t9l << 29) | (t9h >>> 3), b9h = (t9h << 29) | (t9l >>> 3); // ρ = 61
    const t10l = a1l ^ d1l, t10h = a1h ^ d1h, b10l = (t10l << 1) | (t10h >>> 31), b10h = (t10h << 1) | (t10l >>> 31); // ρ = 1
    const t11l = a7l ^ d2l, t11h = a7h ^ d2h, b11l = (t11l << 6) | (t11h >>> 26), b11h = (t11h << 6) | (t11l >>> 26); // ρ = 6
    const t12l = a13l ^ d3l, t12h = a13h ^ d3h, b12l = (t12l << 25) | (t12h >>> 7), b12h = (t12h << 25) | (t12l >>> 7); // ρ = 25
    const t13l = a19l ^ d4l, t13h = a19h ^ d4h, b13l = (t13l << 8) | (t13h >>> 24), b13h = (t13h << 8) | (t13l >>> 24); // ρ = 8
    const t14l = a20l ^ d0l, t14h = a20h ^ d0h, b14l = (t14l << 18) | (t14h >>> 14), b14h = (t14h << 18) | (t14l >>> 14); // ρ = 18
    const t15l = a4l ^ d4l, t15h = a4h ^ d4h, b15l = (t15l << 27) | (t15h >>> 5), b15h = (t15h << 27) | (t15l >>> 5); // ρ = 27
    const t16l = a5h ^ d0h, t16h = a5l ^ d0l, b16l = (t16l << 4) | (t16h >>> 28), b16h = (t16h << 4) | (t16l >>> 28); // ρ = 36
    const t17l = a11l ^ d1l, t17h = a11h ^ d1h, b17l = (t17l << 10) | (t17h >>> 22), b17h = (t17h << 10) | (t17l >>> 22); // ρ = 10
    const t18l = a17l ^ d2l, t18h = a17h ^ d2h, b18l = (t18l << 15) | (t18h >>> 17), b18h = (t18h << 15) | (t18l >>> 17); // ρ = 15
    const t19l = a23h ^ d3h, t19h = a23l ^ d3l, b19l = (t19l << 24) | (t19h >>> 8), b19h = (t19h << 24) | (t19l >>> 8); // ρ = 56
    const t20l = a2h ^ d2h, t20h = a2l ^ d2l, b20l = (t20l << 30) | (t20h >>> 2), b20h = (t20h << 30) | (t20l >>> 2); // ρ = 62
    const t21l = a8h ^ d3h, t21h = a8l ^ d3l, b21l = (t21l << 23) | (t21h >>> 9), b21h = (t21h << 23) | (t21l >>> 9); // ρ = 55
    const t22l = a14h ^ d4h, t22h = a14l ^ d4l, b22l = (t22l << 7) | (t22h >>> 25), b22h = (t22h << 7) | (t22l >>> 25); // ρ = 39
    const t23l = a15h ^ d0h, t23h = a15l ^ d0l, b23l = (t23l << 9) | (t23h >>> 23), b23h = (t23h << 9) | (t23l >>> 23); // ρ = 41
    const t24l = a21l ^ d1l, t24h = a21h ^ d1h, b24l = (t24l << 2) | (t24h >>> 30), b24h = (t24h << 2) | (t24l >>> 30); // ρ = 2
    // χ: a[x, y] = b[x, y] ^ (¬b[x+1, y] ∧ b[x+2, y])
    a0l = b0l ^ (~b1l & b2l); a0h = b0h ^ (~b1h & b2h);
    a1l = b1l ^ (~b2l & b3l); a1h = b1h ^ (~b2h & b3h);
    a2l = b2l ^ (~b3l & b4l); a2h = b2h ^ (~b3h & b4h);
    a3l = b3l ^ (~b4l & b0l); a3h = b3h ^ (~b4h & b0h);
    a4l = b4l ^ (~b0l & b1l); a4h = b4h ^ (~b0h & b1h);
    a5l = b5l ^ (~b6l & b7l); a5h = b5h ^ (~b6h & b7h);
    a6l = b6l ^ (~b7l & b8l); a6h = b6h ^ (~b7h & b8h);
    a7l = b7l ^ (~b8l & b9l); a7h = b7h ^ (~b8h & b9h);
    a8l = b8l ^ (~b9l & b5l); a8h = b8h ^ (~b9h & b5h);
    a9l = b9l ^ (~b5l & b6l); a9h = b9h ^ (~b5h & b6h);
    a10l = b10l ^ (~b11l & b12l); a10h = b10h ^ (~b11h & b12h);
    a11l = b11l ^ (~b12l & b13l); a11h = b11h ^ (~b12h & b13h);
    a12l = b12l ^ (~b13l & b14l); a12h = b12h ^ (~b13h & b14h);
    a13l = b13l ^ (~b14l & b10l); a13h = b13h ^ (~b14h & b10h);
    a14l = b14l ^ (~b10l & b11l); a14h = b14h ^ (~b10h & b11h);
    a15l = b15l ^ (~b16l & b17l); a15h = b15h ^ (~b16h & b17h);
    a16l = b16l ^ (~b17l & b18l); a16h = b16h ^ (~b17h & b18h);
    a17l = b17l ^ (~b18l & b19l); a17h = b17h ^ (~b18h & b19h);
    a18l = b18l ^ (~b19l & b15l); a18h = b18h ^ (~b19h & b15h);
    a19l = b19l ^ (~b15l & b16l); a19h = b19h ^ (~b15h & b16h);
    a20l = b20l ^ (~b21l & b22l); a20h = b20h ^ (~b21h & b22h);
    a21l = b21l ^ (~b22l & b23l); a21h = b21h ^ (~b22h & b23h);
    a22l = b22l ^ (~b23l & b24l); a22h = b22h ^ (~b23h & b24h);
    a23l = b23l ^ (~b24l & b20l); a23h = b23h ^ (~b24h & b20h);
    a24l = b24l ^ (~b20l & b21l); a24h = b24h ^ (~b20h & b21h);
    // ι
    a0l ^= RC_LO[round] as number;
    a0h ^= RC_HI[round] as number;
  }
  s[0] = a0l; s[1] = a0h; s[2] = a1l; s[3] = a1h; s[4] = a2l; s[5] = a2h; s[6] = a3l; s[7] = a3h; s[8] = a4l; s[9] = a4h;
  s[10] = a5l; s[11] = a5h; s[12] = a6l; s[13] = a6h; s[14] = a7l; s[15] = a7h; s[16] = a8l; s[17] = a8h; s[18] = a9l; s[19] = a9h;
  s[20] = a10l; s[21] = a10h; s[22] = a11l; s[23] = a11h; s[24] = a12l; s[25] = a12h; s[26] = a13l; s[27] = a13h; s[28] = a14l; s[29] = a14h;
  s[30] = a15l; s[31] = a15h; s[32] = a16l; s[33] = a16h; s[34] = a17l; s[35] = a17h; s[36] = a18l; s[37] = a18h; s[38] = a19l; s[39] = a19h;
  s[40] = a20l; s[41] = a20h; s[42] = a21l; s[43] = a21h; s[44] = a22l; s[45] = a22h; s[46] = a23l; s[47] = a23h; s[48] = a24l; s[49] = a24h;
}

const STATE = new Int32Array(50);
const BLOCK = new Uint8Array(RATE);

/** XORs RATE bytes (little-endian lanes) of `src` at `off` into the state. */
function absorbBlock(src: Uint8Array, off: number): void {
  for (let i = 0, j = off; i < 34; i++, j += 4) {
    STATE[i] = (STATE[i] as number) ^ ((src[j] as number) | ((src[j + 1] as number) << 8) | ((src[j + 2] as number) << 16) | ((src[j + 3] as number) << 24));
  }
}

/**
 * keccak256(data[off, off+len)) written to out[outOff, outOff+32). Synchronous and single
 * threaded, so the module-level scratch state is never shared between two calls in flight.
 */
export function keccak256Into(data: Uint8Array, off: number, len: number, out: Uint8Array, outOff: number): void {
  if (off < 0 || len < 0 || off + len > data.length || outOff < 0 || outOff + 32 > out.length) throw new RangeError('keccak256Into: range out of bounds');
  STATE.fill(0);
  let pos = off;
  const end = off + len;
  while (end - pos >= RATE) {
    absorbBlock(data, pos);
    permute(STATE);
    pos += RATE;
  }
  // Final block: remaining bytes, then Keccak padding 0x01 … 0x80 (both in one byte if adjacent).
  const rem = end - pos;
  BLOCK.fill(0);
  BLOCK.set(data.subarray(pos, end));
  BLOCK[rem] = 0x01;
  BLOCK[RATE - 1] = (BLOCK[RATE - 1] as number) | 0x80;
  absorbBlock(BLOCK, 0);
  permute(STATE);
  for (let i = 0; i < 8; i++) {
    const w = STATE[i] as number;
    const o = outOff + 4 * i;
    out[o] = w & 0xff;
    out[o + 1] = (w >>> 8) & 0xff;
    out[o + 2] = (w >>> 16) & 0xff;
    out[o + 3] = w >>> 24;
  }
}

/** Keccak-256 of `data` (the hash Ethereum calls keccak256 / SHA3 before FIPS 202). */
export function keccak256(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(32);
  keccak256Into(data, 0, data.length, out, 0);
  return out;
}
