// Starts the appliance as `npm start` does, as its own process tree (`node --import
// ./server/boot/register.mjs server/src/main.ts`: config.ts SERVER_ARGS), but without the serving
// V8 flags, so a test can see that the workers get them anyway. OPENKEY_WORKERS workers listen on
// loopback port 0; the JSON log lines give the ports ("appliance listening") and each worker's pid
// ("worker listening").

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SERVER_ARGS } from '../../server/src/config.ts';

export interface LogLine {
  readonly msg?: string;
  readonly worker?: number;
  readonly pid?: number;
  readonly connect?: string;
  readonly grpc?: string;
  readonly code?: string;
  readonly [field: string]: unknown;
}

export interface ClusterAppliance {
  readonly dataDir: string;
  readonly connectUrl: string;
  readonly grpcUrl: string;
  readonly process: ChildProcess;
  readonly lines: LogLine[];
  /** Pids of the workers that reported "worker listening", in order (replacements included). */
  workerPids(): number[];
  /** Resolves with the first log line that matches, waiting up to `ms`. */
  waitFor(match: (l: LogLine) => boolean, ms?: number): Promise<LogLine>;
  /** Sends `signal` to the primary and resolves with how it exited. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Stops (if running) and deletes the data directory. */
  dispose(): Promise<void>;
}

export async function startClusterAppliance(o: { workers: number; dataDir?: string; env?: Record<string, string> }): Promise<ClusterAppliance> {
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'openkey-cluster-'));
  const child = spawn(process.execPath, [...SERVER_ARGS], {
    env: {
      ...process.env,
      OPENKEY_DATA_DIR: dataDir,
      OPENKEY_CONNECT_PORT: '0',
      OPENKEY_GRPC_PORT: '0',
      OPENKEY_LOG_LEVEL: 'info',
      OPENKEY_WEB_PAGE: 'off',
      OPENKEY_WORKERS: String(o.workers),
      ...o.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LogLine[] = [];
  const waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  let buffered = '';
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout?.on('data', (d: Buffer) => {
    buffered += d.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const text = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        continue;
      }
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.match(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let running = true;
  void exited.then(() => (running = false));

  const waitFor = (match: (l: LogLine) => boolean, ms = 60_000): Promise<LogLine> => {
    const seen = lines.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no matching log line within ${ms} ms; stderr: ${stderr}`)), ms);
      waiters.push({
        match,
        resolve: (l) => {
          clearTimeout(t);
          resolve(l);
        },
      });
      void exited.then(({ code, signal }) => {
        clearTimeout(t);
        reject(new Error(`appliance exited (${code ?? signal}) before the line came; stderr: ${stderr}`));
      });
    });
  };

  const listening = await waitFor((l) => l.msg === 'appliance listening');
  const portOf = (hostPort: string | undefined): string => hostPort?.split(':').pop() ?? '';
  const stop = (signal: NodeJS.Signals = 'SIGTERM') => {
    if (running) child.kill(signal);
    return exited;
  };
  return {
    dataDir,
    connectUrl: `http://127.0.0.1:${portOf(listening.connect)}`,
    grpcUrl: `http://127.0.0.1:${portOf(listening.grpc)}`,
    process: child,
    lines,
    workerPids: () => lines.filter((l) => l.msg === 'worker listening' && typeof l.pid === 'number').map((l) => l.pid as number),
    waitFor,
    stop,
    dispose: async () => {
      await stop('SIGTERM');
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
