// Browser-safety and layering rules for the library source (issue 3, "What must exist" 1-2): no
// `node:` module anywhere in verifier/src, nothing from outside verifier/, only @noble packages
// as dependencies, and network access (fetch) only inside src/collateral/.

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g;

describe('verifier/src import rules', () => {
  const files = sources(SRC);

  it('has sources to check', () => expect(files.length).toBeGreaterThan(10));

  for (const file of files) {
    const rel = relative(SRC, file);
    it(rel, () => {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(IMPORT)) {
        const spec = m[1] ?? m[2] ?? '';
        expect(spec.startsWith('node:'), `${rel} imports ${spec}`).toBe(false);
        if (spec.startsWith('.')) {
          expect(spec.endsWith('.ts'), `${rel}: relative imports carry .ts`).toBe(true);
          expect(resolve(file, '..', spec).startsWith(SRC), `${rel} reaches outside verifier/src: ${spec}`).toBe(true);
        } else {
          expect(/^@noble\/(curves|hashes)\//.test(spec), `${rel} depends on ${spec}`).toBe(true);
        }
      }
      // Only the collateral module may touch the network.
      if (!rel.startsWith('collateral')) expect(/\bfetch\s*\(|XMLHttpRequest|WebSocket/.test(text), `${rel} uses the network`).toBe(false);
      expect(/\bBuffer\b/.test(text), `${rel} mentions Buffer`).toBe(false);
    });
  }
});
