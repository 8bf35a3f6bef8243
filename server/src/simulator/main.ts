// CLI entry for running the dev dstack simulator standalone:
//   tsx server/src/simulator/main.ts [--socket ./dstack.sock] [--port 8090] [--host 127.0.0.1]
//        [--seed <text>] [--appkeys appkeys.json --app-id <hex>] [--app-compose app-compose.json]
// Env fallbacks: OPENKEY_SIM_SOCKET, OPENKEY_SIM_PORT, OPENKEY_SIM_HOST, OPENKEY_SIM_SEED.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { toHex, utf8 } from '../core/bytes.ts';
import { startSimulator, type SimulatorOptions } from './simulator.ts';

const USAGE = `usage: main.ts [--socket PATH] [--port N] [--host H] [--seed TEXT]
               [--appkeys FILE --app-id HEX] [--app-compose FILE]
Serves the dstack guest-agent API for DEVELOPMENT ONLY. Default: --socket ./dstack.sock`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      socket: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      seed: { type: 'string' },
      appkeys: { type: 'string' },
      'app-id': { type: 'string' },
      'app-compose': { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const env = process.env;
  const socket = values.socket ?? env['OPENKEY_SIM_SOCKET'];
  const portText = values.port ?? env['OPENKEY_SIM_PORT'];
  const host = values.host ?? env['OPENKEY_SIM_HOST'];
  const seed = values.seed ?? env['OPENKEY_SIM_SEED'];
  let port: number | undefined;
  if (portText !== undefined) {
    port = Number(portText);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port: ${portText}`);
  }
  const appKeysFile = values.appkeys;
  const appId = values['app-id'];
  if (appKeysFile !== undefined && appId === undefined) {
    throw new Error('--appkeys needs --app-id');
  }
  const composeFile = values['app-compose'];
  const options: SimulatorOptions = {
    ...(socket !== undefined || port === undefined ? { socketPath: socket ?? './dstack.sock' } : {}),
    ...(port !== undefined ? { tcp: { port, ...(host !== undefined ? { host } : {}) } } : {}),
    ...(seed !== undefined ? { seed: utf8(seed) } : {}),
    ...(appKeysFile !== undefined && appId !== undefined ? { appKeys: { json: readFileSync(appKeysFile, 'utf8'), appId } } : {}),
    ...(appKeysFile === undefined && appId !== undefined ? { appId } : {}),
    ...(composeFile !== undefined ? { appCompose: readFileSync(composeFile, 'utf8') } : {}),
  };
  const sim = await startSimulator(options);
  const out = process.stdout;
  out.write('openkey dstack simulator: DEVELOPMENT ONLY, attests to nothing real\n');
  if (sim.socketPath !== undefined) out.write(`  unix socket: ${sim.socketPath}\n`);
  if (sim.httpUrl !== undefined) out.write(`  http:        ${sim.httpUrl}\n`);
  out.write(`  app id:      ${sim.appId}\n`);
  out.write(`  kms root:    ${toHex(sim.kmsRootPublicKey)}\n`);
  out.write(`  client:      DSTACK_SIMULATOR_ENDPOINT=${sim.httpUrl ?? sim.socketPath ?? ''}\n`);
  out.write(`  MOCK Intel root (dev only) sha256: ${createHash('sha256').update(sim.mockRootCaDer).digest('hex')}\n`);
  out.write('  dev-only endpoints: /openkey/dev/root-ca, /openkey/dev/collateral\n');
  const stop = (): void => {
    void sim.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((e: unknown) => {
  process.stderr.write(`simulator: ${e instanceof Error ? e.message : String(e)}\n${USAGE}\n`);
  process.exit(1);
});
