// Runs the appliance's TypeScript as it is, without a build step: `node --import
// ./server/boot/register.mjs server/src/main.ts`. Registers the load hook in ./hooks.mjs and turns
// on source maps, so stack traces name .ts lines.
//
// Why not tsx, which the CLI and the tests use: tsx compiles with esbuild's keepNames, which wraps
// every function the code creates in a call that redefines its `name`. Here nothing is renamed (each
// file is compiled on its own, never minified), so the wrapper only costs: on the signing path it
// ran for every closure of every call, and the appliance signed 7–24 % fewer signatures per second
// with it (bench/README.md, "How the server runs").

import { register } from 'node:module';

process.setSourceMapsEnabled(true);
register('./hooks.mjs', import.meta.url);
