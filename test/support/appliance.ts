// Starts a real appliance for end-to-end tests: embedded simulator, LevelDB in a fresh temporary
// directory, Connect and gRPC on loopback port 0. Logs go to a buffer the test can inspect (e.g.
// to prove that secrets are never logged).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { startAppliance, type RunningAppliance } from '../../server/src/app.ts';
import { createLogger } from '../../server/src/adapters/logger.ts';
import { loadConfig } from '../../server/src/config.ts';
import type { Clock, Store } from '../../server/src/core/ports.ts';

export interface TestAppliance extends RunningAppliance {
  readonly dataDir: string;
  readonly connectUrl: string;
  readonly grpcTarget: string;
  readonly logs: string[];
  /** Stops this instance and starts a new one on the same data directory. */
  restart(): Promise<TestAppliance>;
  /** Stops the instance and deletes its data directory. */
  dispose(): Promise<void>;
}

export interface TestApplianceOptions {
  readonly env?: Record<string, string>;
  readonly dataDir?: string;
  readonly clock?: Clock;
  /** Wraps the appliance's store (ApplianceOverrides.storeDecorator). */
  readonly storeDecorator?: (store: Store) => Store;
}

export async function startTestAppliance(o: TestApplianceOptions = {}): Promise<TestAppliance> {
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'openkey-e2e-'));
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString('utf8'));
      cb();
    },
  });
  const config = loadConfig({
    OPENKEY_DATA_DIR: dataDir,
    OPENKEY_CONNECT_PORT: '0',
    OPENKEY_GRPC_PORT: '0',
    OPENKEY_LOG_LEVEL: 'info',
    ...o.env,
  });
  const app = await startAppliance(config, { logger: createLogger('info', sink), ...(o.clock ? { clock: o.clock } : {}), ...(o.storeDecorator ? { storeDecorator: o.storeDecorator } : {}) });
  const self: TestAppliance = {
    ...app,
    dataDir,
    logs,
    connectUrl: `http://127.0.0.1:${app.connectPort}`,
    grpcTarget: `127.0.0.1:${app.grpcPort}`,
    restart: async () => {
      await app.close();
      return startTestAppliance({ ...o, dataDir });
    },
    dispose: async () => {
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return self;
}
