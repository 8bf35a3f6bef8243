// Module load hook (node:module register()): compiles a .ts file to JavaScript with esbuild, one
// file at a time, under the compiler options of the project's tsconfig.json. Everything else
// (packages, .js, .json) goes to Node's own loader. Imports name their .ts files explicitly
// (tsconfig `allowImportingTsExtensions`), so Node's resolver needs no help.

import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { stop, transform } from 'esbuild';

const tsconfig = JSON.parse(await readFile(new URL('../../tsconfig.json', import.meta.url), 'utf8'));

// The options esbuild reads from a tsconfig (the rest only matter to the type checker).
const compilerOptions = {
  target: tsconfig.compilerOptions.target,
  verbatimModuleSyntax: tsconfig.compilerOptions.verbatimModuleSyntax,
  useDefineForClassFields: tsconfig.compilerOptions.useDefineForClassFields,
};

const TS = /\.(?:ts|mts)$/;

// esbuild compiles in a child process of its own. Once no file has been compiled for a second and
// none is being compiled (start-up is over), it is stopped, so a running appliance keeps no compiler
// process beside it; a later import starts it again.
const IDLE_MS = 1000;
let idle;
let compiling = 0;

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !TS.test(new URL(url).pathname)) return nextLoad(url, context);
  const path = fileURLToPath(url);
  const source = await readFile(path, 'utf8');
  clearTimeout(idle);
  compiling++;
  try {
    const out = await transform(source, {
      loader: 'ts',
      format: 'esm',
      target: `node${process.versions.node}`,
      sourcemap: 'inline',
      sourcefile: path,
      tsconfigRaw: { compilerOptions },
    });
    return { format: 'module', source: out.code, shortCircuit: true };
  } finally {
    if (--compiling === 0) idle = setTimeout(() => void stop(), IDLE_MS).unref();
  }
}
