import { describe, expect, it } from 'vitest';
import { isOpenKeyError } from './errors.ts';
import { IssuanceBound } from './issuance-bound.ts';

describe('IssuanceBound', () => {
  it('allows `max` outstanding, refuses the next with RESOURCE_EXHAUSTED, frees slots as they expire', () => {
    const b = new IssuanceBound(3, 100);
    expect([b.take(0), b.take(10), b.take(20)]).toEqual([100, 110, 120]);
    let code: string | undefined;
    try {
      b.take(50);
    } catch (e) {
      code = isOpenKeyError(e) ? e.code : 'other';
    }
    expect(code).toBe('RESOURCE_EXHAUSTED');
    expect(b.take(100)).toBe(200); // the first expired at 100
    expect(() => b.take(105)).toThrow();
    expect(b.take(1_000)).toBe(1_100); // everything expired
  });

  it('stays bounded in memory over many issues', () => {
    const b = new IssuanceBound(10, 5);
    for (let t = 0; t < 100_000; t += 1) b.take(t);
    expect(() => b.take(100_000)).not.toThrow();
  });
});
