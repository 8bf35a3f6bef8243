import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { SERVER_ARGS } from '../src/config.ts';

const run = promisify(execFile);
const register = SERVER_ARGS[1] as string;
const fixture = (name: string): string => fileURLToPath(new URL(`./test/${name}`, import.meta.url));

interface Report {
  counter: number[];
  now: number;
  digest: string;
  names: string[];
  compiled: string[];
  stack: string;
}

describe('server/boot: the appliance TypeScript, compiled as it loads', () => {
  // The fixture runs once; the tests below read different parts of its report.
  let r: Report;
  beforeAll(async () => {
    const { stdout } = await run(process.execPath, ['--import', register, fixture('fixture.ts')]);
    r = JSON.parse(stdout) as Report;
  });

  it('runs the forms the appliance uses: parameter properties, class fields, type-only imports, .ts imports', () => {
    expect(r.counter).toEqual([15, 20]);
    expect(r.now).toBe(7);
    expect(r.digest).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'); // FIPS 180-4 "abc"
  });

  it('keeps the names V8 gives functions without wrapping them (no keepNames helper in the code)', () => {
    expect(r.names).toEqual(['double', 'Counter', 'failHere']);
    for (const source of r.compiled) expect(source).not.toMatch(/__name/);
  });

  it('maps stack traces to the .ts source', () => {
    const line = readFileSync(fixture('fixture.ts'), 'utf8').split('\n').findIndex((l) => l.includes("throw new Error('from the fixture')")) + 1;
    expect(line).toBeGreaterThan(0);
    expect(r.stack).toContain(`fixture.ts:${line}:`);
  });

  it('compiles a module imported after start-up, when the idle compiler process has been stopped', async () => {
    const { stdout } = await run(process.execPath, ['--import', register, fixture('late-import.ts')]);
    expect(stdout.trim()).toBe('42');
  });

  it('fails a file that does not compile with the compiler error, naming the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'openkey-boot-'));
    try {
      const broken = join(dir, 'broken.ts');
      writeFileSync(broken, '// not TypeScript\nconst x: number = ;\n');
      const failed = await run(process.execPath, ['--import', register, broken]).then(
        () => undefined,
        (e: { code: number; stderr: string }) => e,
      );
      expect(failed?.code).not.toBe(0);
      expect(failed?.stderr).toMatch(/broken\.ts:2:\d+: ERROR: Unexpected ";"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is what `npm start` runs', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
    const start = (pkg.scripts['start'] ?? '').split(/\s+/);
    expect(start.slice(start.indexOf('--import'), start.indexOf('--import') + 3)).toEqual(['--import', './server/boot/register.mjs', 'server/src/main.ts']);
    expect(new URL('./server/boot/register.mjs', new URL('../../', import.meta.url)).href).toBe(register);
  });
});
