// Runs the appliance under test as a child process, exactly as `npm start` runs it (`node
// --max-semi-space-size=64 --import ./server/boot/register.mjs server/src/main.ts`) plus V8's
// --trace-gc (one stdout line per collection, read here as the server's GC pauses), configured by
// environment (plus any extra variables the caller passes, e.g. a low OPENKEY_MAX_IN_FLIGHT for
// the overload phase), optionally pinned to one CPU, on loopback ports of its own and a fresh data
// directory; waits until it answers, and stops it with SIGTERM (the server drains) before removing
// the directory.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODE_FLAGS, SERVER_ARGS } from '../server/src/config.ts';
import { parseGcLine, summarizeGc, type GcEvent, type GcSummary } from './gc-trace.ts';
import { pinnedCommand } from './proc.ts';

export interface ApplianceProcess {
  readonly pid: number;
  readonly host: string;
  readonly connectPort: number;
  readonly grpcPort: number;
  /** The last lines the server wrote (stdout and stderr), for diagnosing failures. */
  logTail(): string;
  /** Its GC pauses whose --trace-gc lines arrived between the two wall-clock times (ms). */
  gcBetween(fromEpochMs: number, toEpochMs: number): GcSummary;
  /** SIGTERM, then SIGKILL after `graceMs`; removes the data directory. */
  stop(graceMs?: number): Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>;
}

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 60_000;
const LOG_LINES_KEPT = 200;
/** GC lines kept per appliance: a default run's appliance collects a few hundred times. */
const GC_EVENTS_KEPT = 100_000;

/** A loopback port that was free a moment ago (the server binds it right after). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const a = srv.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('no port'))));
    });
  });
}

/** True once the Connect port answers the unauthenticated GetImportKey. */
async function answers(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://${HOST}:${port}/openkey.v1.KeyService/GetImportKey`, {
      method: 'POST',
      headers: { 'content-type': 'application/proto' },
      body: new Uint8Array(0),
      signal: AbortSignal.timeout(1000),
    });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false; // not listening yet
  }
}

/** True when something accepts TCP connections on the port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, HOST);
    s.setTimeout(1000);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(false));
  });
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

export interface StartOptions {
  readonly repoRoot: string;
  /** Pin the server to this CPU or list of CPUs (taskset -c). */
  readonly cpu: number | string | undefined;
  /** Extra node flags, e.g. --cpu-prof. */
  readonly nodeArgs?: readonly string[];
  /** Where the fresh data directory is created; default os.tmpdir(). */
  readonly dataRoot?: string;
  /** Extra environment for the server (e.g. OPENKEY_MAX_IN_FLIGHT), applied last. */
  readonly env?: Readonly<Record<string, string>>;
}

export async function startApplianceProcess(o: StartOptions): Promise<ApplianceProcess> {
  const dataDir = mkdtempSync(join(o.dataRoot ?? tmpdir(), 'openkey-bench-'));
  const [connectPort, grpcPort] = [await freePort(), await freePort()];
  const { command, args } = pinnedCommand(o.cpu, [process.execPath, ...NODE_FLAGS, '--trace-gc', ...(o.nodeArgs ?? []), ...SERVER_ARGS]);
  const child = spawn(command, args, {
    cwd: o.repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      OPENKEY_DATA_DIR: dataDir,
      OPENKEY_HOST: HOST,
      OPENKEY_CONNECT_PORT: String(connectPort),
      OPENKEY_GRPC_PORT: String(grpcPort),
      // info: the "appliance listening" line is the readiness signal (calls log only on failure).
      OPENKEY_LOG_LEVEL: 'info',
      // One process unless a scenario asks for the multi-core appliance (its CPU is then the tree's).
      OPENKEY_WORKERS: '1',
      ...o.env,
    },
  });
  const lines: string[] = [];
  const gcEvents: GcEvent[] = [];
  let listening = false;
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line === '') continue;
      // V8's --trace-gc lines (one per collection) are measurements, not log: kept apart.
      const gc = parseGcLine(line, Date.now());
      if (gc !== undefined) {
        if (gcEvents.length < GC_EVENTS_KEPT) gcEvents.push(gc);
        continue;
      }
      if (line.includes('"msg":"appliance listening"')) listening = true;
      lines.push(line);
      if (lines.length > LOG_LINES_KEPT) lines.shift();
    }
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const logTail = () => lines.slice(-40).join('\n');

  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const pid = child.pid;
  const cleanup = () => rmSync(dataDir, { recursive: true, force: true });
  const stop = async (graceMs = 15_000) => {
    if (!exited) child.kill('SIGTERM');
    if (!(await waitExit(child, graceMs))) {
      child.kill('SIGKILL');
      await waitExit(child, 5_000);
    }
    cleanup();
    return { code: child.exitCode, signal: child.signalCode };
  };

  // Ready when both ports answer and the appliance said "appliance listening": a multi-core
  // appliance says so only once every worker listens (before that, the first takes every connection).
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(listening && (await answers(connectPort)) && (await accepts(grpcPort)))) {
    if (exited || pid === undefined) {
      cleanup();
      throw new Error(`appliance exited during start-up (code ${child.exitCode}, signal ${child.signalCode}):\n${logTail()}`);
    }
    if (Date.now() > deadline) {
      await stop(2_000);
      throw new Error(`appliance did not answer within ${READY_TIMEOUT_MS / 1000} s:\n${logTail()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  if (pid === undefined) throw new Error('appliance has no pid');
  // taskset execs node in place, so the pid we hold is the server's.
  const comm = readFileSync(`/proc/${pid}/comm`, 'latin1').trim();
  if (comm !== 'node' && !comm.startsWith('node')) {
    await stop(2_000);
    throw new Error(`pid ${pid} is "${comm}", not the node server`);
  }
  const gcBetween = (from: number, to: number) => summarizeGc(gcEvents, from, to);
  return { pid, host: HOST, connectPort, grpcPort, logTail, gcBetween, stop };
}
