// `npm start`: loads configuration from the environment, starts the appliance, and shuts it down
// cleanly on SIGINT/SIGTERM (listeners stop accepting, in-flight calls drain, the store closes).
// With OPENKEY_WORKERS ≥ 2 (default: one per core) this process becomes the cluster's store owner
// and forks the workers that serve calls (cluster/cluster.ts); a forked worker runs this file too.

import cluster from 'node:cluster';
import { startAppliance } from './app.ts';
import { runWorker, startCluster } from './cluster/cluster.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`configuration error: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  if (cluster.isWorker) return runWorker(config);
  const appliance = config.workers > 1 ? await startCluster(config) : await startAppliance(config);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    appliance.logger.info({ signal }, 'shutting down');
    appliance.close().then(
      () => process.exit(0),
      (err: unknown) => {
        appliance.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(`openkey appliance failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
