// Length-prefixed canonical encoding shared by every signed structure of the OpenKey wire
// protocol (request stamps, receipts). Both the appliance and its clients build signing inputs
// with these helpers, so the two sides cannot drift apart.

const encoder = new TextEncoder();

/** A buffer and its view, lent to one writer at a time. */
interface Scratch {
  readonly buf: Uint8Array;
  readonly view: DataView;
}

function scratch(size: number): Scratch {
  const buf = new Uint8Array(size);
  return { buf, view: new DataView(buf.buffer) };
}

/**
 * The buffer the next writer builds in. Signing inputs are built one after another, each finished
 * before the next starts, so one buffer serves them all and building an input allocates only its
 * result. A writer that finds it taken (one built inside another, or one abandoned unfinished)
 * allocates its own, and a finishing writer puts its buffer here when the place is empty.
 */
let spare: Scratch | undefined;
/** Buffers larger than this (grown for an unusually long input) are not kept. */
const MAX_SPARE_BYTES = 4096;
const SPENT: Scratch = scratch(0);
const MAX_U64 = 2n ** 64n - 1n;

/**
 * A builder for `tag ‖ field…` where variable fields are u32-BE length-prefixed. It writes into
 * one growing buffer, borrowed when it can be (these inputs are built on every request). `finish`
 * hands out the bytes and ends the writer: using it again throws.
 */
export class CanonicalWriter {
  private buf: Uint8Array;
  private view: DataView;
  private size = 0;

  constructor(tag: string) {
    const lent = spare ?? scratch(256);
    spare = undefined;
    this.buf = lent.buf;
    this.view = lent.view;
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
      const v = BigInt(n); // a fraction throws here
      if (v < 0n || v > MAX_U64) throw new RangeError(`u64 out of range: ${String(n)}`);
      this.view.setBigUint64(this.size, v);
    }
    this.size += 8;
    return this;
  }

  /** The bytes written (a copy of the writer's own). The writer is spent: using it again throws. */
  finish(): Uint8Array {
    if (this.view === SPENT.view) throw new Error('CanonicalWriter: already finished');
    const out = this.buf.slice(0, this.size);
    if (spare === undefined && this.buf.length <= MAX_SPARE_BYTES) spare = { buf: this.buf, view: this.view };
    this.buf = SPENT.buf;
    this.view = SPENT.view;
    return out;
  }

  private reserve(n: number): void {
    if (this.view === SPENT.view) throw new Error('CanonicalWriter: already finished');
    if (this.size + n <= this.buf.length) return;
    let capacity = this.buf.length * 2;
    while (capacity < this.size + n) capacity *= 2;
    const next = new Uint8Array(capacity);
    next.set(this.buf.subarray(0, this.size));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
}
