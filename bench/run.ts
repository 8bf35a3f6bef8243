// `npm run bench`: the signing benchmark in one run. (1) Raw signing rates in this process with
// the appliance's own crypto; (2) a fresh appliance child process per round, pinned to CPU 0, driven
// over gRPC and Connect by a load-generator child pinned to CPU 1, measuring throughput, latency,
// server CPU per signature and memory, including a concurrency sweep of gRPC Sign; (3) open-loop
// phases set by the sweep's best rate: latency at half of it, and overload at twice it against an
// appliance with a low admission bound (refusals, latency of what gets through, peak memory);
// (4) a Markdown report and a JSON record in bench/results/.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startApplianceProcess, type ApplianceProcess } from './appliance.ts';
import { GRPC_GENERATORS, isChildMessage, type GrpcGenerator, type RunResult, type RunSpec } from './loadgen/protocol.ts';
import { runMicro } from './micro.ts';
import { canPin, describeMachine, machineBusyPct, pinnedCommand, pinProcess, processMemory } from './proc.ts';
import { aggregate, renderMarkdown, toJson, type BenchRecord, type HalfMaxPhase, type MaxThroughput, type OverloadPhase, type Row } from './report.ts';
import { phaseScenario, SCENARIOS, type Scenario } from './scenarios.ts';
import { fmt, fmtInt } from './stats.ts';
import { provision, type Provisioned } from './setup.ts';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');
/** Most stamps pre-built for one run (≈ 40 µs each), most session headers (an HMAC each, a few
 * µs), and most requests of an unauthenticated run. */
const MAX_STAMPED_POOL = 150_000;
const MAX_SESSION_POOL = 500_000;
const MAX_PLAIN_POOL = 500_000;
/** The error every refused call of the overload phase must carry, and nothing else. */
export const OVERLOAD_REFUSAL = 'grpc-status 8 RESOURCE_EXHAUSTED';
/** The generator's own bound on open-loop calls in flight, and its timer period. */
const OPEN_LOOP_MAX_IN_FLIGHT = 2048;
const OPEN_LOOP_TICK_MS = 1;
/** Share of an open loop's warm-up over which its rate ramps up from 0 (a cold start at full rate
 * is one burst: the appliance's refusal path is not yet compiled when the overload begins). The
 * report's footnote says "three quarters". */
const OPEN_LOOP_RAMP_SHARE = 0.75;
/** The overload run's warm-up, in units of the normal warm-up: long enough to ramp up and then
 * drain what the ramp queued before the window opens. */
const OVERLOAD_WARMUP_FACTOR = 2;
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
  /** Run the open-loop phases (half of max, overload) after the rounds. */
  phases: boolean;
  /** Window of the overload run, ms (its warm-up is warmupMs). */
  overloadDurationMs: number;
  /** OPENKEY_MAX_IN_FLIGHT of the overload appliance. */
  overloadBound: number;
  /** Overload rate ÷ max throughput. */
  overloadFactor: number;
  /** Half-max rate ÷ max throughput. */
  halfMaxFraction: number;
  /** Use this as max throughput (sig/s) instead of the sweep's best (diagnostics). */
  maxRate: number | undefined;
  /** Directory for V8 CPU profiles of the server (one per round), or undefined. */
  profileDir: string | undefined;
  /** Parent of the appliance's fresh data directory (e.g. /dev/shm to take fsync out). */
  dataRoot: string;
  /** Wait up to this long for other processes to go quiet before measuring. */
  waitQuietMs: number;
  quick: boolean;
  /** OPENKEY_WORKERS for every appliance started (1 = single process, pinned to SERVER_CPU). */
  workers: number;
  /** The gRPC load generator: the lean HTTP/2 client (default) or node:http2. */
  generator: GrpcGenerator;
}

/** `--only`: scenario ids containing the text; a trailing `$` asks for the id to end there. */
function selects(only: string, id: string): boolean {
  return only.endsWith('$') ? id.endsWith(only.slice(0, -1)) && id.includes(only.slice(0, -1)) : id.includes(only);
}

function parseOptions(argv: readonly string[]): Options {
  const o: Options = {
    reps: 3,
    warmupMs: 1000,
    durationMs: 3000,
    extraWarmupMs: 500,
    extraDurationMs: 2000,
    microRuns: 5,
    microRunMs: 400,
    microWarmupMs: 300,
    extras: true,
    only: undefined,
    phases: true,
    overloadDurationMs: 5000,
    overloadBound: 64,
    overloadFactor: 2,
    halfMaxFraction: 0.5,
    maxRate: undefined,
    profileDir: undefined,
    dataRoot: tmpdir(),
    waitQuietMs: 0,
    quick: false,
    workers: 1,
    generator: 'raw-h2',
  };
  const num = (v: string, name: string, min: number, max: number): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number in [${min}, ${max}]`);
    return n;
  };
  for (const arg of argv) {
    const [key, value = ''] = arg.replace(/^--/, '').split('=');
    switch (key) {
      case 'quick':
        Object.assign(o, { quick: true, reps: 1, warmupMs: 500, durationMs: 2000, extraWarmupMs: 300, extraDurationMs: 1000, overloadDurationMs: 2000, microRuns: 3, microRunMs: 200, microWarmupMs: 100 });
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
      case 'no-phases':
        o.phases = false;
        break;
      case 'overload-duration':
        o.overloadDurationMs = num(value, 'overload-duration', 0.5, 60) * 1000;
        break;
      case 'overload-factor':
        o.overloadFactor = num(value, 'overload-factor', 0.1, 100);
        break;
      case 'max-rate':
        o.maxRate = num(value, 'max-rate', 1, 1_000_000);
        break;
      case 'overload-bound':
        o.overloadBound = Math.round(num(value, 'overload-bound', 2, 100_000));
        break;
      case 'only':
        o.only = value;
        break;
      case 'workers':
        o.workers = Math.round(num(value, 'workers', 1, 64));
        break;
      case 'data-root':
        o.dataRoot = value;
        break;
      case 'wait-quiet':
        o.waitQuietMs = num(value, 'wait-quiet', 0, 3600) * 1000;
        break;
      case 'generator': {
        const g = GRPC_GENERATORS.find((x) => x === value);
        if (g === undefined) throw new Error(`--generator must be one of ${GRPC_GENERATORS.join(', ')}`);
        o.generator = g;
        break;
      }
      case 'profile':
        o.profileDir = value === '' ? join(tmpdir(), `openkey-bench-profiles-${process.pid}`) : value;
        break;
      default:
        throw new Error(
          `unknown option ${arg} (known: --quick --reps=N --duration=S --warmup=S --no-extras --no-phases --overload-duration=S --overload-bound=N --overload-factor=F --max-rate=R --only=SUBSTRING[$] --profile[=DIR] --data-root=DIR --wait-quiet=S --generator=${GRPC_GENERATORS.join('|')})`,
        );
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
  return Math.min(s.auth === 'stamp' ? MAX_STAMPED_POOL : MAX_SESSION_POOL, Math.max(500, n));
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
    minConnections: o.workers,
    ...(s.streams > 0 ? { streams: s.streams } : {}),
    warmupMs,
    durationMs,
    maxRequests: poolSize(s, expectedRps, warmupMs + durationMs),
    serverPid: server.pid,
    credentialsPkcs8: p.credentialsPkcs8,
    auth: s.auth,
    grpcGenerator: o.generator,
  };
}

/** An open-loop gRPC Sign EIP-191 run (session auth) at `ratePerSec` requests per second. */
function openLoopSpec(server: ApplianceProcess, p: Provisioned, generator: GrpcGenerator, ratePerSec: number, warmupMs: number, durationMs: number): RunSpec {
  // Every scheduled request gets a pool entry (the schedule never waits), plus a margin.
  const maxRequests = Math.min(MAX_SESSION_POOL, Math.ceil(((ratePerSec * (warmupMs + durationMs)) / 1000) * 1.1) + 1000);
  return {
    transport: 'grpc',
    host: server.host,
    port: server.grpcPort,
    operation: 'sign',
    payload: 'eip191',
    batchSize: 1,
    keyId: p.secp256k1.keyId,
    keyPublicKeyHex: p.secp256k1.publicKeyHex,
    concurrency: 0,
    openLoop: { ratePerSec, maxInFlight: OPEN_LOOP_MAX_IN_FLIGHT, tickMs: OPEN_LOOP_TICK_MS, rampMs: OPEN_LOOP_RAMP_SHARE * warmupMs },
    warmupMs,
    durationMs,
    maxRequests,
    serverPid: server.pid,
    credentialsPkcs8: p.credentialsPkcs8,
    auth: 'session',
    grpcGenerator: generator,
  };
}

function runLine(id: string, batchSize: number, r: RunResult): string {
  const errors = Object.values(r.errors).reduce((a, b) => a + b, 0);
  const ol = r.openLoop;
  return [
    `  ${id.padEnd(36)}`,
    `${fmtInt(r.signaturesPerSec).padStart(7)} sig/s`,
    ol === undefined ? '' : `(offered ${fmtInt(ol.offeredPerSec)}/s, failed ${fmtInt((r.windowErrors * 1000) / r.windowMs)}/s, send lag p99 ${fmt(ol.sendLagP99Ms, 2)} ms, peak in flight ${ol.peakInFlight})`,
    `p50/p99 ${fmt(r.latency.p50, 2)}/${fmt(r.latency.p99, 2)} ms`,
    `server ${fmt(r.serverCpuPct, 0)} % (sys ${fmt(r.serverKernelPct, 0)} %, main ${fmt(r.serverMainThreadPct, 0)} %) ${fmt(r.serverCpuMicros / r.completed / batchSize, 0)} µs/sig`,
    `gen ${fmt(r.generatorCpuPct, 0)} % ${fmt(r.generatorMicrosPerRequest, 0)} µs/req`,
    `other ${fmt(r.otherCpuPct, 0)} %`,
    r.serverGc === undefined ? '' : `GC ${r.serverGc.count}× longest ${fmt(r.serverGc.longestStopMs, 1)} ms total ${fmt(r.serverGc.totalPauseMs, 0)} ms`,
    `errors ${errors}`,
    errors === 0 ? '' : JSON.stringify(r.errors),
    ol === undefined ? '' : `\n      in flight every 0.5 s: ${ol.inFlightSamples.join(' ')}; server RSS MiB: ${r.serverRssSamplesKiB.map((k) => fmt(k / 1024, 0)).join(' ')}`,
    r.checkedAnswers === undefined ? '' : `checked ${r.checkedAnswers} answers`,
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

/** The sweep row with the best median rate. */
function maxThroughput(rows: readonly Row[]): MaxThroughput | undefined {
  let best: Row | undefined;
  for (const r of rows) if (r.scenario.sweep && Number.isFinite(r.signaturesPerSec) && (best === undefined || r.signaturesPerSec > best.signaturesPerSec)) best = r;
  return best === undefined ? undefined : { scenarioId: best.scenario.id, concurrency: best.scenario.concurrency, signaturesPerSec: best.signaturesPerSec };
}

// ---- main --------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = Date.now();
  const o = parseOptions(process.argv.slice(2));
  const machine = describeMachine(REPO_ROOT);
  const pinned = canPin();
  log(`OpenKey signing benchmark — ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}, commit ${machine.commit}`);
  if (!pinned) log('  (taskset unavailable or one CPU: nothing is pinned; server and generator share the CPUs)');
  log(`  gRPC load generator: ${o.generator === 'raw-h2' ? 'lean HTTP/2 client on a raw socket (raw-h2)' : 'node:http2 (node-http2)'}`);

  if (o.waitQuietMs > 0) await waitQuiet(o.waitQuietMs);

  // (1) Raw rates, on the CPU the server will use.
  if (pinned) pinProcess(process.pid, SERVER_CPU);
  log(`\nRaw in-process signing (median of ${o.microRuns} × ${o.microRunMs} ms):`);
  const micro = runMicro({ runs: o.microRuns, runMs: o.microRunMs, warmupMs: o.microWarmupMs }, log);
  if (pinned) pinProcess(process.pid, LOADGEN_CPU); // this process only waits from here on

  // (2) Load, round-robin over the scenarios, a fresh appliance per round.
  const scenarios = SCENARIOS.filter((s) => (o.extras || s.primary) && (o.only === undefined || selects(o.only, s.id)));
  const runs = new Map<string, RunResult[]>(scenarios.map((s) => [s.id, []]));
  const expected = new Map<string, number>(scenarios.map((s) => [s.id, s.guessRps]));
  const peaks: number[] = [];
  const generator = await startLoadGenerator(pinned ? LOADGEN_CPU : undefined);
  let server: ApplianceProcess | undefined;
  const nodeArgs = o.profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${o.profileDir}`];
  // A multi-core appliance (--workers=N ≥ 2) may use every CPU, the generator's too (this process
  // is pinned to the generator's CPU by then, and a child would inherit that).
  const serverCpus = o.workers === 1 ? SERVER_CPU : `0-${cpus().length - 1}`;
  const startServer = (env?: Record<string, string>) =>
    startApplianceProcess({ repoRoot: REPO_ROOT, cpu: pinned ? serverCpus : undefined, nodeArgs, dataRoot: o.dataRoot, env: { OPENKEY_WORKERS: String(o.workers), ...env } });
  const stopServer = async () => {
    const s = server;
    server = undefined;
    if (s === undefined) return;
    const stopped = await s.stop();
    if (stopped.code !== 0) log(`  appliance exit: code ${stopped.code}, signal ${stopped.signal}`);
  };
  const runOn = async (s: ApplianceProcess, id: string, spec: RunSpec): Promise<RunResult> => {
    try {
      const r = await generator.run(spec, spec.warmupMs + spec.durationMs + 120_000);
      return { ...r, serverGc: s.gcBetween(r.windowStartEpochMs, r.windowEndEpochMs) };
    } catch (e) {
      throw new Error(`${id}: ${e instanceof Error ? e.message : String(e)}\nserver log tail:\n${s.logTail()}`);
    }
  };
  const shutdown = async () => {
    await server?.stop(5_000);
    server = undefined;
    await generator.close();
  };
  process.once('SIGINT', () => {
    void shutdown().finally(() => process.exit(130));
  });
  let rows: Row[] = [];
  let halfMax: HalfMaxPhase | undefined;
  let overload: OverloadPhase | undefined;
  try {
    let maxOf: MaxThroughput | undefined;
    for (let rep = 1; rep <= o.reps; rep++) {
      server = await startServer();
      const p = await provision(`http://${server.host}:${server.connectPort}`);
      log(`\nRound ${rep}/${o.reps}: appliance pid ${server.pid} (connect :${server.connectPort}, grpc :${server.grpcPort})`);
      for (const s of scenarios) {
        const spec = specFor(s, o, server, p, expected.get(s.id) ?? s.guessRps);
        const r = await runOn(server, s.id, spec);
        runs.get(s.id)?.push(r);
        // Size the next round's pool from the best rate seen so far (doubled if this one ran dry).
        const best = Math.max(r.requestsPerSec, ...(runs.get(s.id) ?? []).map((x) => x.requestsPerSec));
        const seen = r.poolExhausted ? 2 * Math.max(best, expected.get(s.id) ?? 0) : best;
        if (Number.isFinite(seen) && seen > 0) expected.set(s.id, seen);
        log(runLine(s.id, s.batchSize, r));
      }
      peaks.push(processMemory(server.pid).peakRssKiB);
      if (rep === o.reps) {
        rows = scenarios.map((s) => aggregate(s, runs.get(s.id) ?? [], micro.results));
        maxOf = o.maxRate !== undefined ? { scenarioId: 'given by --max-rate', concurrency: 0, signaturesPerSec: o.maxRate } : maxThroughput(rows);
        if (!o.phases) log('\nOpen-loop phases skipped (--no-phases).');
        else if (maxOf === undefined) log('\nOpen-loop phases skipped: no sweep row (gRPC Sign EIP-191, session) was measured.');
        else {
          // (3a) Half of max, open loop, on this round's appliance (warm, default admission bound,
          // the conditions the sweep was measured in): reps windows, medians.
          const halfRate = o.halfMaxFraction * maxOf.signaturesPerSec;
          log(`\nHalf of max: open loop at ${fmtInt(halfRate)} req/s (${fmt(100 * o.halfMaxFraction, 0)} % of ${fmtInt(maxOf.signaturesPerSec)} sig/s, ${maxOf.scenarioId}), same appliance`);
          const hmScenario = phaseScenario('grpc-sign-eip191-open-halfmax', `open loop at ${fmt(100 * o.halfMaxFraction, 0)} % of max`);
          const hmRuns: RunResult[] = [];
          for (let i = 1; i <= o.reps; i++) {
            const r = await runOn(server, hmScenario.id, openLoopSpec(server, p, o.generator, halfRate, o.warmupMs, o.durationMs));
            hmRuns.push(r);
            log(runLine(hmScenario.id, 1, r));
          }
          halfMax = { max: maxOf, fraction: o.halfMaxFraction, targetPerSec: halfRate, row: aggregate(hmScenario, hmRuns, micro.results), serverPeakRssKiB: processMemory(server.pid).peakRssKiB };
        }
      }
      await stopServer();
    }

    if (o.phases && maxOf !== undefined) {
      const maxRate = maxOf.signaturesPerSec;
      // (3b) Overload: a fresh appliance with a low admission bound. First a closed loop at half the
      // bound (full load, nothing refused) sets the "before" peak RSS; then the open loop at
      // overloadFactor × max.
      const bound = o.overloadBound;
      server = await startServer({ OPENKEY_MAX_IN_FLIGHT: String(bound) });
      const p = await provision(`http://${server.host}:${server.connectPort}`);
      const overRate = o.overloadFactor * maxRate;
      log(`\nOverload: OPENKEY_MAX_IN_FLIGHT=${bound}, open loop at ${fmtInt(overRate)} req/s (${fmt(o.overloadFactor, 1)} × max); appliance pid ${server.pid}`);
      const c = Math.max(1, Math.floor(bound / 2));
      const atBoundScenario = phaseScenario(`grpc-sign-eip191-c${c}-bound${bound}`, `closed loop, C = ${c} (under the bound)`, c);
      const atBoundSpec = specFor(atBoundScenario, o, server, p, maxRate);
      const atBound = await runOn(server, atBoundScenario.id, { ...atBoundSpec, durationMs: o.extraDurationMs, maxRequests: poolSize(atBoundScenario, maxRate, o.warmupMs + o.extraDurationMs) });
      log(runLine(atBoundScenario.id, 1, atBound));
      const before = processMemory(server.pid);
      const olScenario = phaseScenario(`grpc-sign-eip191-open-overload-x${o.overloadFactor}`, `open loop at ${fmt(o.overloadFactor, 0)} × max`);
      const over = await runOn(server, olScenario.id, openLoopSpec(server, p, o.generator, overRate, OVERLOAD_WARMUP_FACTOR * o.warmupMs, o.overloadDurationMs));
      log(runLine(olScenario.id, 1, over));
      const after = processMemory(server.pid);
      log(`  server VmHWM ${fmt(before.peakRssKiB / 1024, 0)} → ${fmt(after.peakRssKiB / 1024, 0)} MiB (VmRSS ${fmt(before.rssKiB / 1024, 0)} → ${fmt(after.rssKiB / 1024, 0)} MiB)`);
      await stopServer();
      overload = {
        max: maxOf,
        bound,
        factor: o.overloadFactor,
        targetPerSec: overRate,
        warmupMs: OVERLOAD_WARMUP_FACTOR * o.warmupMs,
        atBound: aggregate(atBoundScenario, [atBound], micro.results),
        row: aggregate(olScenario, [over], micro.results),
        peakRssBeforeKiB: before.peakRssKiB,
        peakRssAfterKiB: after.peakRssKiB,
        rssBeforeKiB: before.rssKiB,
        rssAfterKiB: after.rssKiB,
      };
    }
  } finally {
    await shutdown();
  }

  // (4) Report.
  const startedAt = new Date(started).toISOString();
  const { generator: _generator, ...numericOptions } = o; // the generator has a field of its own
  const rec: BenchRecord = {
    startedAt,
    elapsedSeconds: (Date.now() - started) / 1000,
    command: ['npm run bench', ...process.argv.slice(2)].join(' '),
    machine,
    pinned,
    options: { ...numericOptions, only: o.only !== undefined, profileDir: o.profileDir !== undefined, dataRoot: o.dataRoot !== tmpdir(), maxRate: o.maxRate ?? false },
    grpcGenerator: o.generator,
    dataRoot: o.dataRoot,
    micro,
    rows,
    serverPeakRssKiB: peaks,
    ...(halfMax === undefined ? {} : { halfMax }),
    ...(overload === undefined ? {} : { overload }),
  };
  const md = renderMarkdown(rec);
  log(`\n${md}`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  // ISO 8601 basic format (no colons) keeps the file name portable.
  const jsonPath = join(RESULTS_DIR, `${startedAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}.json`);
  writeFileSync(jsonPath, toJson(rec));
  // latest.md is what the README embeds: only a full, default-configured run replaces it.
  const standard = !o.quick && o.only === undefined && o.extras && o.phases && o.maxRate === undefined && o.profileDir === undefined && o.dataRoot === tmpdir() && o.generator === 'raw-h2';
  if (standard) writeFileSync(join(RESULTS_DIR, 'latest.md'), md);
  log(`wrote ${jsonPath}${standard ? ' and bench/results/latest.md' : ' (latest.md left alone: not a default run)'}`);
  if (o.profileDir !== undefined) log(`server CPU profiles in ${o.profileDir} (summarise: node --import tsx bench/profile-summary.ts <file>)`);
  // Every call must succeed, except the overload run's refusals (RESOURCE_EXHAUSTED, and only that).
  const strictRows = [...rows, ...(halfMax === undefined ? [] : [halfMax.row]), ...(overload === undefined ? [] : [overload.atBound])];
  const errors = strictRows.reduce((a, r) => a + r.errorCount, 0);
  const unexpectedOverload = overload === undefined ? 0 : Object.entries(overload.row.errors).reduce((a, [k, v]) => (k === OVERLOAD_REFUSAL ? a : a + v), 0);
  const allRows = [...strictRows, ...(overload === undefined ? [] : [overload.row])];
  const badPreflight = allRows.some((r) => r.preflight.some((x) => x !== 'ok'));
  if (errors > 0 || unexpectedOverload > 0 || badPreflight) {
    const capped = Object.keys(overload?.row.errors ?? {}).some((k) => k.startsWith('generator in-flight cap'));
    const why = [
      errors > 0 ? `${errors} failed calls` : '',
      unexpectedOverload > 0 ? `${unexpectedOverload} calls of the overload run failed with something other than ${OVERLOAD_REFUSAL}` : '',
      capped ? 'in the overload run the appliance did not answer (refuse) calls as fast as they were offered, so calls in flight reached the generator’s cap (a noisy machine? see --overload-factor)' : '',
      badPreflight ? 'a pre-flight response (or a checked SignStream answer) did not verify' : '',
    ].filter((x) => x !== '');
    log(`FAILED: ${why.join('; ')}`);
    process.exitCode = 1;
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
