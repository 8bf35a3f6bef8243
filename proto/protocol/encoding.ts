// Length-prefixed canonical encoding shared by every signed structure of the OpenKey wire
// protocol (request stamps, receipts). Both the appliance and its clients build signing inputs
// with these helpers, so the two sides cannot drift apart.

const encoder = new TextEncoder();

/**
 * A builder for `tag ‖ field…` where variable fields are u32-BE length-prefixed. It writes into
 * one growing buffer (these inputs are built on every request, so no per-field allocations).
 */
export class CanonicalWriter {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  private size = 0;

  constructor(tag: string) {
    this.string(tag);
  }

  /** A length-prefixed byte string. */
  bytes(b: Uint8Array): this {
    this.reserve(4 + b.length);
    this.view.setUint32(this.size, b.length);
    this.buf.set(b, this.size + 4);
    this.size += 4 + b.length;
    return this;
  }

  /** A length-prefixed UTF-8 string (a lone surrogate becomes U+FFFD, as TextEncoder has it). */
  string(s: string): this {
    // One UTF-16 unit never takes more than 3 bytes of UTF-8.
    this.reserve(4 + 3 * s.length);
    const { written } = encoder.encodeInto(s, this.buf.subarray(this.size + 4));
    this.view.setUint32(this.size, written);
    this.size += 4 + written;
    return this;
  }

  /** An unsigned 64-bit big-endian integer (milliseconds, counters). */
  u64(n: number | bigint): this {
    this.reserve(8);
    if (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0) {
      this.view.setUint32(this.size, Math.floor(n / 0x1_0000_0000));
      this.view.setUint32(this.size + 4, n >>> 0);
    } else {
      this.view.setBigUint64(this.size, BigInt(n));
    }
    this.size += 8;
    return this;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.size);
  }

  private reserve(n: number): void {
    if (this.size + n <= this.buf.length) return;
    let capacity = this.buf.length * 2;
    while (capacity < this.size + n) capacity *= 2;
    const next = new Uint8Array(capacity);
    next.set(this.buf.subarray(0, this.size));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
}
