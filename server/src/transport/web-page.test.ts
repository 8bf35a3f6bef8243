import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { descendantsGone } from '../../../test/support/processes.ts';
import { createLogger } from '../adapters/logger.ts';
import { loadWebPage } from './web-page.ts';

describe('the web page build', () => {
  it('bundles the page once and leaves no compiler process running', async () => {
    const logged: string[] = [];
    const logger = createLogger('info', new Writable({ write: (c: Buffer, _e, done) => (logged.push(c.toString()), done()) }));
    const page = await loadWebPage(logger);
    expect(page.ok).toBe(true);
    if (!page.ok) return;
    expect(Buffer.from(page.html).toString()).toContain('<script type="module" src="/app.js"></script>');
    expect(page.script.length).toBeGreaterThan(10_000);
    expect(await loadWebPage(logger)).toBe(page); // built once per process
    expect(logged).toEqual([]);
    // esbuild compiled in a child process of this one; it was stopped once the bundle was made.
    expect(await descendantsGone(process.pid, (p) => p.command.includes('esbuild'))).toEqual([]);
  });
});
