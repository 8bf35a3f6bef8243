// A bound on records anyone may create without authenticating (passkey challenges, delegation
// nonces): each lives for a fixed time, and at most `max` may be outstanding per process. Beyond
// it the request is refused with RESOURCE_EXHAUSTED instead of growing the store without limit.

import { OpenKeyError } from './errors.ts';

export class IssuanceBound {
  /** Expiry times in issue order; with a fixed lifetime that is also expiry order. */
  readonly #expiries: number[] = [];
  #head = 0;

  constructor(
    private readonly max: number,
    private readonly ttlMs: number,
  ) {}

  /** Reserves one slot at `now` (throws RESOURCE_EXHAUSTED when all are taken); returns its expiry. */
  take(now: number): number {
    while (this.#head < this.#expiries.length && (this.#expiries[this.#head] as number) <= now) this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#expiries.length) {
      this.#expiries.splice(0, this.#head);
      this.#head = 0;
    }
    if (this.#expiries.length - this.#head >= this.max) throw new OpenKeyError('RESOURCE_EXHAUSTED', 'too many outstanding unauthenticated challenges');
    const expiresAt = now + this.ttlMs;
    this.#expiries.push(expiresAt);
    return expiresAt;
  }
}
