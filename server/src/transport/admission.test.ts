// Back-pressure at the transport edge: beyond the in-flight bound a call is refused at once with
// RESOURCE_EXHAUSTED and a retry hint, and capacity comes back as calls finish (or fail).

import { describe, expect, it } from 'vitest';
import { createLogger } from '../adapters/logger.ts';
import { OpenKeyError } from '../core/errors.ts';
import { Admission, DEFAULT_LIMITS, invoke, newMeta } from './invoke.ts';

const logger = createLogger('silent');

function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

describe('Admission', () => {
  it('refuses the call beyond the bound at once, with RESOURCE_EXHAUSTED and the retry hint', async () => {
    const admission = new Admission(2, 25);
    const limits = { ...DEFAULT_LIMITS, admission };
    const g = gate();
    const slow = () => invoke('/m', newMeta(undefined), limits, logger, () => g.promise.then(() => 'done'));
    const a = slow();
    const b = slow();
    expect(admission.active).toBe(2);
    const started = Date.now();
    const c = await invoke('/m', newMeta(undefined), limits, logger, () => Promise.resolve('never runs'));
    expect(Date.now() - started).toBeLessThan(50); // not queued behind the slow calls
    expect(c).toMatchObject({ ok: false, error: { code: 'RESOURCE_EXHAUSTED', status: 8, retryAfterMs: 25 } });
    g.open();
    expect(await a).toEqual({ ok: true, value: 'done' });
    expect(await b).toEqual({ ok: true, value: 'done' });
    expect(admission.active).toBe(0);
    expect(await invoke('/m', newMeta(undefined), limits, logger, () => Promise.resolve('again'))).toEqual({ ok: true, value: 'again' });
  });

  it('a failing call gives its slot back, and other errors carry no retry hint', async () => {
    const admission = new Admission(1, 10);
    const limits = { ...DEFAULT_LIMITS, admission };
    const failed = await invoke('/m', newMeta(undefined), limits, logger, () => Promise.reject(new OpenKeyError('KEY_NOT_FOUND')));
    expect(failed).toMatchObject({ ok: false, error: { code: 'KEY_NOT_FOUND' } });
    expect(failed.ok ? undefined : failed.error.retryAfterMs).toBeUndefined();
    expect(admission.active).toBe(0);
    expect((await invoke('/m', newMeta(undefined), limits, logger, () => Promise.resolve(1))).ok).toBe(true);
  });

  it('rejects a bound below one', () => {
    expect(() => new Admission(0, 10)).toThrow(RangeError);
  });
});
