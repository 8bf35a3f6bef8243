import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NODE_FLAGS, withNodeFlags } from './config.ts';

describe('serving V8 flags', () => {
  it('are added to an execArgv that lacks them, after what is there', () => {
    expect(withNodeFlags(['--import', 'tsx'])).toEqual(['--import', 'tsx', ...NODE_FLAGS]);
  });

  it('leave a flag the operator already set alone, whatever its value', () => {
    const own = ['--max-semi-space-size=8', '--inspect'];
    expect(withNodeFlags(own)).toEqual(own);
  });

  it('are on the `npm start` command line (V8 reads them only when the heap is created)', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
    const start = (pkg.scripts['start'] ?? '').split(/\s+/);
    for (const flag of NODE_FLAGS) expect(start).toContain(flag);
  });
});
