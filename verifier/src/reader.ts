// A bounded little-endian reader over a window of a byte array. Every read checks the window first
// and fails with QUOTE_TRUNCATED, so no parser built on it can index out of range or throw a
// RangeError on hostile input (STYLE habit 6).

import { VerifierError } from './errors.ts';

export class BoundedReader {
  readonly #bytes: Uint8Array;
  #pos: number;
  readonly #end: number;

  /** A reader over `bytes[start, end)`. */
  constructor(bytes: Uint8Array, start = 0, end = bytes.length) {
    if (!(0 <= start && start <= end && end <= bytes.length)) {
      throw new VerifierError('INTERNAL', 'reader window out of range');
    }
    this.#bytes = bytes;
    this.#pos = start;
    this.#end = end;
  }

  /** Absolute offset of the next byte in the underlying array. */
  get offset(): number {
    return this.#pos;
  }

  get remaining(): number {
    return this.#end - this.#pos;
  }

  #take(n: number): number {
    if (!Number.isSafeInteger(n) || n < 0 || n > this.#end - this.#pos) {
      throw new VerifierError('QUOTE_TRUNCATED', `need ${n} bytes at offset ${this.#pos}`);
    }
    const at = this.#pos;
    this.#pos += n;
    return at;
  }

  u8(): number {
    return this.#bytes[this.#take(1)]!;
  }

  u16(): number {
    const at = this.#take(2);
    return this.#bytes[at]! | (this.#bytes[at + 1]! << 8);
  }

  u32(): number {
    const at = this.#take(4);
    return (
      (this.#bytes[at]! | (this.#bytes[at + 1]! << 8) | (this.#bytes[at + 2]! << 16) | (this.#bytes[at + 3]! << 24)) >>> 0
    );
  }

  /** A view (not a copy) of the next `n` bytes. */
  bytes(n: number): Uint8Array {
    const at = this.#take(n);
    return this.#bytes.subarray(at, at + n);
  }

  /** A reader over the next `n` bytes; this reader skips past them. */
  sub(n: number): BoundedReader {
    const at = this.#take(n);
    return new BoundedReader(this.#bytes, at, at + n);
  }
}
