// Test helpers: hex conversion, a seeded deterministic PRNG for property tests (so a failure
// reproduces), and an assertion that a call throws a given OpenKeyError code.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { isOpenKeyError, type ErrorCode } from '../../errors.ts';

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.startsWith('0x') ? s.slice(2) : s, 'hex'));
export const hex0x = (b: Uint8Array): `0x${string}` => `0x${hex(b)}`;

/** SHA-256 in counter mode: a reproducible byte stream for generated test cases. */
export class Prng {
  private counter = 0;
  private pool = new Uint8Array(0);
  private pos = 0;
  constructor(private readonly seed: string) {}
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      if (this.pos >= this.pool.length) {
        this.pool = new Uint8Array(createHash('sha256').update(`${this.seed}:${this.counter++}`).digest());
        this.pos = 0;
      }
      out[i] = this.pool[this.pos++] as number;
    }
    return out;
  }
  /** Integer in [0, n) (modulo bias is irrelevant for test-case generation). */
  int(n: number): number {
    const b = this.bytes(4);
    const x = ((b[0] as number) * 2 ** 24 + ((b[1] as number) << 16) + ((b[2] as number) << 8) + (b[3] as number));
    return x % n;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
  bool(): boolean {
    return this.int(2) === 1;
  }
}

/** Asserts that `f` throws an OpenKeyError with `code` (and returns the error). */
export function expectCode(f: () => unknown, code: ErrorCode): void {
  let thrown: unknown;
  try {
    f();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `expected ${code}`).toBeDefined();
  expect(isOpenKeyError(thrown), `expected an OpenKeyError, got ${String(thrown)}`).toBe(true);
  if (isOpenKeyError(thrown)) expect(thrown.code).toBe(code);
}

/** Reads a JSON vector file next to the tests. The shape is checked by the test that uses it. */
export function readVectors(name: string): unknown {
  return JSON.parse(readFileSync(new URL(`./vectors/${name}`, import.meta.url), 'utf8')) as unknown;
}

/** Narrows `v` to an array of records whose listed members are strings (test vector rows). */
export function rows<K extends string>(v: unknown, keys: readonly K[]): Record<K, string>[] {
  if (!Array.isArray(v)) throw new Error('vector rows: not an array');
  return v.map((r: unknown) => {
    if (typeof r !== 'object' || r === null) throw new Error('vector row: not an object');
    const out = {} as Record<K, string>;
    for (const k of keys) {
      const x = (r as Record<string, unknown>)[k];
      if (typeof x !== 'string') throw new Error(`vector row: ${k} is not a string`);
      out[k] = x;
    }
    return out;
  });
}

/** `obj[key]` of a parsed JSON object. */
export function member(obj: unknown, key: string): unknown {
  if (typeof obj !== 'object' || obj === null) throw new Error('not an object');
  return (obj as Record<string, unknown>)[key];
}
