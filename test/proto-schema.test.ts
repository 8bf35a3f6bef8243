// The schema is the source of truth: generated code must match what `npm run generate` makes from
// proto/ right now, and `buf lint` must be clean. Fails when someone edits a .proto and forgets to
// regenerate, or edits proto/gen by hand.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const protoDir = join(root, 'proto');
const buf = join(root, 'node_modules', '.bin', 'buf');

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(p));
    else out.push(p);
  }
  return out.sort();
}

describe('proto schema', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'openkey-gen-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('buf lint is clean, from proto/ and from the repository root', () => {
    // Throws (and fails the test) on any lint finding. The root buf.yaml points at the same module.
    execFileSync(buf, ['lint'], { cwd: protoDir, stdio: 'pipe' });
    execFileSync(buf, ['lint'], { cwd: root, stdio: 'pipe' });
  });

  it('generated code in proto/gen is up to date', () => {
    execFileSync(buf, ['generate', '--output', scratch], {
      cwd: protoDir,
      stdio: 'pipe',
      env: { ...process.env, PATH: `${join(root, 'node_modules', '.bin')}:${process.env['PATH'] ?? ''}` },
    });
    const fresh = join(scratch, 'gen');
    const committed = join(protoDir, 'gen');
    const freshFiles = listFiles(fresh).map((f) => relative(fresh, f));
    const committedFiles = listFiles(committed).map((f) => relative(committed, f));
    expect(committedFiles).toEqual(freshFiles);
    expect(freshFiles.length).toBeGreaterThan(0);
    for (const f of freshFiles) {
      expect(readFileSync(join(committed, f), 'utf8'), `proto/gen/${f} is stale: run npm run generate`).toBe(
        readFileSync(join(fresh, f), 'utf8'),
      );
    }
  });
});
