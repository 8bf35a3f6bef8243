// Length-prefixed canonical encoding shared by every signed structure of the OpenKey wire
// protocol (request stamps, receipts). Both the appliance and its clients build signing inputs
// with these helpers, so the two sides cannot drift apart.

const encoder = new TextEncoder();

/** A builder for `tag ‖ field…` where variable fields are u32-BE length-prefixed. */
export class CanonicalWriter {
  private readonly parts: Uint8Array[] = [];
  private size = 0;

  constructor(tag: string) {
    this.bytes(encoder.encode(tag));
  }

  /** A length-prefixed byte string. */
  bytes(b: Uint8Array): this {
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, b.length);
    this.push(len);
    this.push(b);
    return this;
  }

  /** A length-prefixed UTF-8 string. */
  string(s: string): this {
    return this.bytes(encoder.encode(s));
  }

  /** An unsigned 64-bit big-endian integer (milliseconds, counters). */
  u64(n: number | bigint): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(n));
    this.push(b);
    return this;
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  private push(b: Uint8Array): void {
    this.parts.push(b);
    this.size += b.length;
  }
}
