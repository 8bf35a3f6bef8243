// `npm run bench`: the signing benchmark in one run. (1) Raw signing rates in this process with
// the appliance's own crypto; (2) a fresh appliance child process per round, pinned to CPU 0, driven
// over gRPC and Connect by a load-generator child pinned to CPU 1, measuring throughput, latency,
// server CPU per signature and memory; (3) a Markdown table and a JSON record in bench/results/.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startApplianceProcess, type ApplianceProcess } from './appliance.ts';
import { isChildMessage, type RunResult, type RunSpec } from './loadgen/protocol.ts';
import { runMicro } from './micro.ts';
import { canPin, describeMachine, machineBusyPct, pinnedCommand, pinProcess, processMemory } from './proc.ts';
import { aggregate, renderMarkdown, toJson, type BenchRecord, type Row } from './report.ts';
import { SCENARIOS, type Scenario } from './scenarios.ts';
import { fmt, fmtInt } from './stats.ts';
import { provision, type Provisioned } from './setup.ts';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');
/** Most stamps pre-built for one run (≈ 40 µs each), and most requests of an unauthenticated run. */
const MAX_STAMPED_POOL = 150_000;
const MAX_PLAIN_POOL = 500_000;
const SERVER_CPU = 0;
const LOADGEN_CPU = 1;

interface Options {
  reps: number;
  warmupMs: number;
  durationMs: number;
  extraWarmupMs: number;
  extraDurationMs: number;
  microRuns: number;
  microRunMs: number;
  microWarmupMs: number;
  extras: boolean;
  only: string | undefined;
  /** Directory for V8 CPU profiles of the server (one per round), or undefined. */
  profileDir: string | undefined;
  /** Parent of the appliance's fresh data directory (e.g. /dev/shm to take fsync out). */
  dataRoot: string;
  /** Wait up to this long for other processes to go quiet before measuring. */
  waitQuietMs: number;
  quick: boolean;
}

function parseOptions(argv: readonly string[]): Options {
  const o: Options = { reps: 3, warmupMs: 1000, durationMs: 5000, extraWarmupMs: 500, extraDurationMs: 3000, microRuns: 5, microRunMs: 400, microWarmupMs: 300, extras: true, only: undefined, profileDir: undefined, dataRoot: tmpdir(), waitQuietMs: 0, quick: false };
  const num = (v: string, name: string, min: number, max: number): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number in [${min}, ${max}]`);
    return n;
  };
  for (const arg of argv) {
    const [key, value = ''] = arg.replace(/^--/, '').split('=');
    switch (key) {
      case 'quick':
        Object.assign(o, { quick: true, reps: 1, warmupMs: 500, durationMs: 2000, extraWarmupMs: 300, extraDurationMs: 1000, microRuns: 3, microRunMs: 200, microWarmupMs: 100 });
        break;
      case 'reps':
        o.reps = num(value, 'reps', 1, 10);
        break;
      case 'duration':
        o.durationMs = num(value, 'duration', 0.5, 60) * 1000;
        break;
      case 'warmup':
        o.warmupMs = num(value, 'warmup', 0, 30) * 1000;
        break;
      case 'no-extras':
        o.extras = false;
        break;
      case 'only':
        o.only = value;
        break;
      case 'data-root':
        o.dataRoot = value;
        break;
      case 'wait-quiet':
        o.waitQuietMs = num(value, 'wait-quiet', 0, 3600) * 1000;
        break;
      case 'profile':
        o.profileDir = value === '' ? join(tmpdir(), `openkey-bench-profiles-${process.pid}`) : value;
        break;
      default:
        throw new Error(`unknown option ${arg} (known: --quick --reps=N --duration=S --warmup=S --no-extras --only=SUBSTRING --profile[=DIR] --data-root=DIR --wait-quiet=S)`);
    }
  }
  return o;
}

const log = (line: string) => process.stdout.write(`${line}\n`);

// ---- the load-generator child ------------------------------------------------------------------

interface LoadGenerator {
  run(spec: RunSpec, timeoutMs: number): Promise<RunResult>;
  close(): Promise<void>;
}

async function startLoadGenerator(cpu: number | undefined): Promise<LoadGenerator> {
  const { command, args } = pinnedCommand(cpu, [process.execPath, '--import', 'tsx', 'bench/loadgen/main.ts']);
  const child: ChildProcess = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
  let waiter: { resolve: (m: unknown) => void; reject: (e: Error) => void } | undefined;
  child.on('message', (m: unknown) => waiter?.resolve(m));
  child.once('exit', (code, signal) => waiter?.reject(new Error(`load generator exited (code ${code}, signal ${signal})`)));
  const next = (timeoutMs: number): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`load generator silent for ${timeoutMs} ms`)), timeoutMs);
      waiter = {
        resolve: (m) => {
          clearTimeout(t);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      };
    });
  const ready = await next(60_000);
  if (!isChildMessage(ready) || ready.type !== 'ready') throw new Error('load generator did not start');
  return {
    async run(spec, timeoutMs) {
      const reply = next(timeoutMs);
      child.send({ type: 'run', spec });
      const m = await reply;
      if (!isChildMessage(m)) throw new Error('unexpected message from the load generator');
      if (m.type === 'error') throw new Error(`load generator: ${m.message}`);
      if (m.type !== 'result') throw new Error('load generator sent no result');
      return m.result;
    },
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      if (child.connected) child.send({ type: 'exit' });
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    },
  };
}

// ---- one run -----------------------------------------------------------------------------------

function poolSize(s: Scenario, expectedRps: number, totalMs: number): number {
  if (s.operation === 'getImportKey') return MAX_PLAIN_POOL; // no stamps: only a bound on the count
  const n = Math.ceil(((expectedRps * totalMs) / 1000) * 1.8) + 4 * s.concurrency + 64;
  return Math.min(MAX_STAMPED_POOL, Math.max(500, n));
}

function specFor(s: Scenario, o: Options, server: ApplianceProcess, p: Provisioned, expectedRps: number): RunSpec {
  const warmupMs = s.primary ? o.warmupMs : o.extraWarmupMs;
  const durationMs = s.primary ? o.durationMs : o.extraDurationMs;
  const key = s.payload === 'ed25519' ? p.ed25519 : p.secp256k1;
  return {
    transport: s.transport,
    host: server.host,
    port: s.transport === 'grpc' ? server.grpcPort : server.connectPort,
    operation: s.operation,
    payload: s.payload,
    batchSize: s.batchSize,
    keyId: key.keyId,
    keyPublicKeyHex: key.publicKeyHex,
    concurrency: s.concurrency,
    warmupMs,
    durationMs,
    maxRequests: poolSize(s, expectedRps, warmupMs + durationMs),
    serverPid: server.pid,
    credentialsPkcs8: p.credentialsPkcs8,
    auth: s.auth,
  };
}

function runLine(s: Scenario, r: RunResult): string {
  const errors = Object.values(r.errors).reduce((a, b) => a + b, 0);
  return [
    `  ${s.id.padEnd(36)}`,
    `${fmtInt(r.signaturesPerSec).padStart(7)} sig/s`,
    `p50/p99 ${fmt(r.latency.p50, 2)}/${fmt(r.latency.p99, 2)} ms`,
    `server ${fmt(r.serverCpuPct, 0)} % (sys ${fmt(r.serverKernelPct, 0)} %, main ${fmt(r.serverMainThreadPct, 0)} %) ${fmt(r.serverCpuMicros / r.completed / s.batchSize, 0)} µs/sig`,
    `gen ${fmt(r.generatorCpuPct, 0)} %`,
    `other ${fmt(r.otherCpuPct, 0)} %`,
    `errors ${errors}`,
    r.preflight === 'ok' ? '' : `PRE-FLIGHT: ${r.preflight}`,
    r.poolExhausted ? `POOL EXHAUSTED (${r.poolSize})` : '',
  ]
    .filter((x) => x !== '')
    .join('  ');
}

/** Waits (bounded) until the rest of the machine uses under a fifth of a core. */
async function waitQuiet(maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  for (;;) {
    const busy = await machineBusyPct(1000);
    if (busy < 20) return;
    if (Date.now() > deadline) {
      log(`  machine still busy (${fmt(busy, 0)} % of a core used by other processes); measuring anyway`);
      return;
    }
    log(`  waiting for a quiet machine (${fmt(busy, 0)} % of a core busy)…`);
  }
}

// ---- main --------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = Date.now();
  const o = parseOptions(process.argv.slice(2));
  const machine = describeMachine(REPO_ROOT);
  const pinned = canPin();
  log(`OpenKey signing benchmark — ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}, commit ${machine.commit}`);
  if (!pinned) log('  (taskset unavailable or one CPU: nothing is pinned; server and generator share the CPUs)');

  if (o.waitQuietMs > 0) await waitQuiet(o.waitQuietMs);

  // (1) Raw rates, on the CPU the server will use.
  if (pinned) pinProcess(process.pid, SERVER_CPU);
  log(`\nRaw in-process signing (median of ${o.microRuns} × ${o.microRunMs} ms):`);
  const micro = runMicro({ runs: o.microRuns, runMs: o.microRunMs, warmupMs: o.microWarmupMs }, log);
  if (pinned) pinProcess(process.pid, LOADGEN_CPU); // this process only waits from here on

  // (2) Load, round-robin over the scenarios, a fresh appliance per round.
  const scenarios = SCENARIOS.filter((s) => (o.extras || s.primary) && (o.only === undefined || s.id.includes(o.only)));
  const runs = new Map<string, RunResult[]>(scenarios.map((s) => [s.id, []]));
  const expected = new Map<string, number>(scenarios.map((s) => [s.id, s.guessRps]));
  const peaks: number[] = [];
  const generator = await startLoadGenerator(pinned ? LOADGEN_CPU : undefined);
  let server: ApplianceProcess | undefined;
  const shutdown = async () => {
    await server?.stop(5_000);
    await generator.close();
  };
  process.once('SIGINT', () => {
    void shutdown().finally(() => process.exit(130));
  });
  try {
    for (let rep = 1; rep <= o.reps; rep++) {
      const nodeArgs = o.profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${o.profileDir}`];
      server = await startApplianceProcess({ repoRoot: REPO_ROOT, cpu: pinned ? SERVER_CPU : undefined, nodeArgs, dataRoot: o.dataRoot });
      const p = await provision(`http://${server.host}:${server.connectPort}`);
      log(`\nRound ${rep}/${o.reps}: appliance pid ${server.pid} (connect :${server.connectPort}, grpc :${server.grpcPort})`);
      for (const s of scenarios) {
        const spec = specFor(s, o, server, p, expected.get(s.id) ?? s.guessRps);
        let r: RunResult;
        try {
          r = await generator.run(spec, spec.warmupMs + spec.durationMs + 120_000);
        } catch (e) {
          throw new Error(`${s.id}: ${e instanceof Error ? e.message : String(e)}\nserver log tail:\n${server.logTail()}`);
        }
        runs.get(s.id)?.push(r);
        // Size the next round's pool from the best rate seen so far (doubled if this one ran dry).
        const best = Math.max(r.requestsPerSec, ...(runs.get(s.id) ?? []).map((x) => x.requestsPerSec));
        const seen = r.poolExhausted ? 2 * Math.max(best, expected.get(s.id) ?? 0) : best;
        if (Number.isFinite(seen) && seen > 0) expected.set(s.id, seen);
        log(runLine(s, r));
      }
      peaks.push(processMemory(server.pid).peakRssKiB);
      const stopped = await server.stop();
      server = undefined;
      if (stopped.code !== 0) log(`  appliance exit: code ${stopped.code}, signal ${stopped.signal}`);
    }
  } finally {
    await shutdown();
  }

  // (3) Report.
  const rows: Row[] = scenarios.map((s) => aggregate(s, runs.get(s.id) ?? [], micro.results));
  const startedAt = new Date(started).toISOString();
  const rec: BenchRecord = {
    startedAt,
    elapsedSeconds: (Date.now() - started) / 1000,
    command: ['npm run bench', ...process.argv.slice(2)].join(' '),
    machine,
    pinned,
    options: { ...o, only: o.only !== undefined, profileDir: o.profileDir !== undefined, dataRoot: o.dataRoot !== tmpdir() },
    dataRoot: o.dataRoot,
    micro,
    rows,
    serverPeakRssKiB: peaks,
  };
  const md = renderMarkdown(rec);
  log(`\n${md}`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  // ISO 8601 basic format (no colons) keeps the file name portable.
  const jsonPath = join(RESULTS_DIR, `${startedAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}.json`);
  writeFileSync(jsonPath, toJson(rec));
  // latest.md is what the README embeds: only a full, default-configured run replaces it.
  const standard = !o.quick && o.only === undefined && o.extras && o.profileDir === undefined && o.dataRoot === tmpdir();
  if (standard) writeFileSync(join(RESULTS_DIR, 'latest.md'), md);
  log(`wrote ${jsonPath}${standard ? ' and bench/results/latest.md' : ' (latest.md left alone: not a default run)'}`);
  if (o.profileDir !== undefined) log(`server CPU profiles in ${o.profileDir} (summarise: node --import tsx bench/profile-summary.ts <file>)`);
  const errors = rows.reduce((a, r) => a + r.errorCount, 0);
  const badPreflight = rows.some((r) => r.preflight.some((x) => x !== 'ok'));
  if (errors > 0 || badPreflight) {
    log(`FAILED: ${errors} failed calls${badPreflight ? ', and a pre-flight response did not verify' : ''}`);
    process.exitCode = 1;
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
