// Module load hook (node:module register()): compiles a .ts file to JavaScript with esbuild, one
// file at a time, under the compiler options of the project's tsconfig.json. Everything else
// (packages, .js, .json) goes to Node's own loader. Imports name their .ts files explicitly
// (tsconfig `allowImportingTsExtensions`), so Node's resolver needs no help.

import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { transform } from 'esbuild';

const tsconfig = JSON.parse(await readFile(new URL('../../tsconfig.json', import.meta.url), 'utf8'));

// The options esbuild reads from a tsconfig (the rest only matter to the type checker).
const compilerOptions = {
  target: tsconfig.compilerOptions.target,
  verbatimModuleSyntax: tsconfig.compilerOptions.verbatimModuleSyntax,
  useDefineForClassFields: tsconfig.compilerOptions.useDefineForClassFields,
};

const TS = /\.(?:ts|mts)$/;

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !TS.test(new URL(url).pathname)) return nextLoad(url, context);
  const path = fileURLToPath(url);
  const source = await readFile(path, 'utf8');
  const out = await transform(source, {
    loader: 'ts',
    format: 'esm',
    target: `node${process.versions.node}`,
    sourcemap: 'inline',
    sourcefile: path,
    tsconfigRaw: { compilerOptions },
  });
  return { format: 'module', source: out.code, shortCircuit: true };
}
