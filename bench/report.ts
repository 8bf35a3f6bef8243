// Turns the runs of a benchmark into its published form: per-scenario medians over the rounds,
// CPU per signature against the raw in-process cost, the open-loop phases (latency at half of the
// best rate, overload against a low admission bound), the Markdown tables the README embeds
// (bench/results/latest.md) and the full JSON record (bench/results/<date>.json).

import type { RunResult } from './loadgen/protocol.ts';
import type { MicroReport, MicroResult } from './micro.ts';
import type { MachineDescription } from './proc.ts';
import type { Scenario } from './scenarios.ts';
import { fmt, fmtInt, fmtRange, median } from './stats.ts';

export interface Row {
  readonly scenario: Scenario;
  readonly runs: readonly RunResult[];
  readonly requestsPerSec: number;
  readonly signaturesPerSec: number;
  readonly signaturesPerSecRuns: readonly number[];
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly serverCpuPct: number;
  readonly serverKernelPct: number;
  readonly serverMainThreadPct: number;
  /** Server CPU µs per request and per signature (the same for unbatched calls). */
  readonly serverMicrosPerRequest: number;
  readonly serverMicrosPerSignature: number;
  /** The same work in-process, µs per signature; NaN when there is no counterpart. */
  readonly rawMicrosPerOp: number;
  /** serverMicrosPerSignature ÷ rawMicrosPerOp. */
  readonly cpuRatio: number;
  /** signaturesPerSec ÷ the raw single-core rate, percent. */
  readonly percentOfRaw: number;
  readonly generatorCpuPct: number;
  readonly generatorMicrosPerRequest: number;
  readonly otherCpuPctMax: number;
  /** Median of the calls that failed inside the window, per second. */
  readonly failedPerSec: number;
  /** Open-loop runs: medians of the offered rate and of the send lag (ms); NaN otherwise. */
  readonly offeredPerSec: number;
  readonly sendLagP99Ms: number;
  readonly peakInFlight: number;
  /** Failed calls that carried the server's retry-after hint, over all runs. */
  readonly retryHints: number;
  readonly errors: Record<string, number>;
  readonly errorCount: number;
  readonly preflight: readonly string[];
  readonly poolExhausted: boolean;
  /** The server's GC in the window (bench/gc-trace.ts), medians over the runs: collections, their
   * summed pause and the longest single stop (ms); and the longest stop of any run. NaN without a trace. */
  readonly gcCount: number;
  readonly gcTotalPauseMs: number;
  readonly gcLongestStopMs: number;
  readonly gcLongestStopMaxMs: number;
}

export function aggregate(scenario: Scenario, runs: readonly RunResult[], micro: readonly MicroResult[]): Row {
  const m = (f: (r: RunResult) => number) => median(runs.map(f));
  const raw = micro.find((x) => x.id === scenario.micro);
  const rawMicrosPerOp = raw?.usPerOp ?? Number.NaN;
  const perReq = runs.map((r) => r.serverCpuMicros / r.completed);
  const perSig = perReq.map((v) => v / scenario.batchSize);
  const errors: Record<string, number> = {};
  for (const r of runs) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  const serverMicrosPerSignature = median(perSig);
  const signaturesPerSec = m((r) => r.signaturesPerSec);
  return {
    scenario,
    runs,
    requestsPerSec: m((r) => r.requestsPerSec),
    signaturesPerSec,
    signaturesPerSecRuns: runs.map((r) => r.signaturesPerSec),
    p50: m((r) => r.latency.p50),
    p90: m((r) => r.latency.p90),
    p99: m((r) => r.latency.p99),
    serverCpuPct: m((r) => r.serverCpuPct),
    serverKernelPct: m((r) => r.serverKernelPct),
    serverMainThreadPct: m((r) => r.serverMainThreadPct),
    serverMicrosPerRequest: median(perReq),
    serverMicrosPerSignature,
    rawMicrosPerOp,
    cpuRatio: serverMicrosPerSignature / rawMicrosPerOp,
    percentOfRaw: raw === undefined ? Number.NaN : (100 * signaturesPerSec) / raw.opsPerSec,
    generatorCpuPct: m((r) => r.generatorCpuPct),
    generatorMicrosPerRequest: m((r) => r.generatorMicrosPerRequest),
    otherCpuPctMax: Math.max(...runs.map((r) => r.otherCpuPct)),
    offeredPerSec: m((r) => r.openLoop?.offeredPerSec ?? Number.NaN),
    failedPerSec: m((r) => (r.windowErrors * 1000) / r.windowMs),
    sendLagP99Ms: m((r) => r.openLoop?.sendLagP99Ms ?? Number.NaN),
    peakInFlight: Math.max(0, ...runs.map((r) => r.openLoop?.peakInFlight ?? 0)),
    retryHints: runs.reduce((a, r) => a + r.retryHints, 0),
    errors,
    errorCount: Object.values(errors).reduce((a, b) => a + b, 0),
    preflight: runs.map((r) => r.preflight),
    poolExhausted: runs.some((r) => r.poolExhausted),
    gcCount: m((r) => r.serverGc?.count ?? Number.NaN),
    gcTotalPauseMs: m((r) => r.serverGc?.totalPauseMs ?? Number.NaN),
    gcLongestStopMs: m((r) => r.serverGc?.longestStopMs ?? Number.NaN),
    gcLongestStopMaxMs: Math.max(...runs.map((r) => r.serverGc?.longestStopMs ?? Number.NaN)),
  };
}

/** The best median rate of the concurrency sweep: what the open-loop phases are set against. */
export interface MaxThroughput {
  readonly scenarioId: string;
  readonly concurrency: number;
  readonly signaturesPerSec: number;
}

export interface HalfMaxPhase {
  readonly max: MaxThroughput;
  readonly fraction: number;
  /** Requests per second the open loop was asked to send. */
  readonly targetPerSec: number;
  readonly row: Row;
  /** VmHWM of that appliance at the end of the phase, KiB. */
  readonly serverPeakRssKiB: number;
}

export interface OverloadPhase {
  readonly max: MaxThroughput;
  /** OPENKEY_MAX_IN_FLIGHT of the appliance. */
  readonly bound: number;
  readonly factor: number;
  readonly targetPerSec: number;
  /** Warm-up of the overload run (its rate ramps up inside it), ms. */
  readonly warmupMs: number;
  /** The closed-loop run under the bound that precedes the overload (sets the "before" peak). */
  readonly atBound: Row;
  /** The open-loop overload run. */
  readonly row: Row;
  /** Server VmHWM / VmRSS before and after the overload run, KiB. */
  readonly peakRssBeforeKiB: number;
  readonly peakRssAfterKiB: number;
  readonly rssBeforeKiB: number;
  readonly rssAfterKiB: number;
}

export interface BenchRecord {
  readonly startedAt: string;
  readonly elapsedSeconds: number;
  readonly command: string;
  readonly machine: MachineDescription;
  readonly pinned: boolean;
  /** Parent directory of the appliance's data directory (its disk decides the fsync cost). */
  readonly dataRoot: string;
  readonly options: Readonly<Record<string, number | boolean>>;
  /** The gRPC load generator: 'raw-h2' (lean HTTP/2 client) or 'node-http2'. */
  readonly grpcGenerator: string;
  readonly micro: MicroReport;
  readonly rows: readonly Row[];
  /** VmHWM of each server process (one per round), KiB. */
  readonly serverPeakRssKiB: readonly number[];
  readonly halfMax?: HalfMaxPhase;
  readonly overload?: OverloadPhase;
}

function callLabel(s: Scenario): string {
  if (s.operation === 'getImportKey') return 'GetImportKey (no auth, no crypto)';
  const payload = s.payload === 'eip191' ? 'EIP-191' : s.payload === 'eip712' ? 'EIP-712' : 'Ed25519';
  if (s.operation === 'signStream') return `SignStream ${payload}`;
  return s.operation === 'signBatch' ? `SignBatch ×${s.batchSize} ${payload}` : `Sign ${payload}`;
}

function authLabel(s: Scenario): string {
  if (s.operation === 'getImportKey') return '–';
  if (s.operation === 'signStream') return 'session (at open)';
  return s.auth === 'session' ? 'session' : '**stamp**';
}

/** C, and for SignStream how it is made up: streams × messages in flight on each. */
function concurrencyLabel(s: Scenario): string {
  return s.streams > 0 ? `${s.concurrency} (${s.streams} × ${s.concurrency / s.streams})` : String(s.concurrency);
}

function transportLabel(s: Scenario): string {
  return s.transport === 'grpc' ? 'gRPC (grpc-js, h2c)' : 'Connect h1.1 (proto)';
}

function errorCell(r: Row): string {
  if (r.errorCount === 0) return '0';
  return Object.entries(r.errors)
    .map(([k, v]) => `${v}× ${k}`)
    .join('; ');
}

export function microTable(micro: MicroReport): string {
  const lines = [
    '| operation (in-process, one core) | ops/s | µs/op | spread of runs |',
    '|---|---:|---:|---:|',
    ...micro.results.map((r) => `| ${r.label}${r.reference ? ' *(reference)*' : ''} | ${fmtInt(r.opsPerSec)} | ${fmt(r.usPerOp, 1)} | ${fmt(r.spreadPct, 1)} % |`),
  ];
  return lines.join('\n');
}

export function loadTable(rows: readonly Row[]): string {
  const lines = [
    '| transport | call | auth | C | signatures/s (median, min–max) | p50 / p90 / p99 ms | server CPU (kernel; main thread) | server µs/sig | × raw CPU | % of raw rate | errors |',
    '|---|---|---|---:|---:|---|---:|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    const s = r.scenario;
    const rate = s.operation === 'getImportKey' ? `${fmtInt(r.requestsPerSec)} req/s` : `**${fmtInt(r.signaturesPerSec)}** (${fmtRange(r.signaturesPerSecRuns, 0)})`;
    const perSig = s.operation === 'getImportKey' ? `${fmt(r.serverMicrosPerRequest, 0)} /req` : fmt(r.serverMicrosPerSignature, 0);
    lines.push(
      `| ${transportLabel(s)} | ${callLabel(s)} | ${authLabel(s)} | ${concurrencyLabel(s)} | ${rate} | ${fmt(r.p50, 2)} / ${fmt(r.p90, 2)} / ${fmt(r.p99, 2)} | ${fmt(r.serverCpuPct, 0)} % (${fmt(r.serverKernelPct, 0)} %; ${fmt(r.serverMainThreadPct, 0)} %) | ${perSig} | ${Number.isFinite(r.cpuRatio) ? `${fmt(r.cpuRatio, 1)}×` : '–'} | ${Number.isFinite(r.percentOfRaw) ? `${fmt(r.percentOfRaw, 0)} %` : '–'} | ${errorCell(r)} |`,
    );
  }
  return lines.join('\n');
}

const mib = (kib: number): string => fmt(kib / 1024, 0);

function latencyCell(r: Row): string {
  return `${fmt(r.p50, 2)} / ${fmt(r.p90, 2)} / ${fmt(r.p99, 2)}`;
}

function cpuCell(r: Row): string {
  return `${fmt(r.serverCpuPct, 0)} % (${fmt(r.serverKernelPct, 0)} %; ${fmt(r.serverMainThreadPct, 0)} %)`;
}

function rateCell(r: Row): string {
  return r.runs.length > 1 ? `**${fmtInt(r.signaturesPerSec)}** (${fmtRange(r.signaturesPerSecRuns, 0)})` : `**${fmtInt(r.signaturesPerSec)}**`;
}

/** "N · longest · total" of a row's GC in its window, medians over its runs. */
function gcCell(r: Row): string {
  return Number.isNaN(r.gcCount) ? '–' : `${fmt(r.gcCount, 0)} · ${fmt(r.gcLongestStopMs, 1)} · ${fmt(r.gcTotalPauseMs, 0)}`;
}

function maxLine(m: MaxThroughput): string {
  return `${fmtInt(m.signaturesPerSec)} sig/s (gRPC Sign EIP-191, session, C = ${m.concurrency}: the best median of the sweep)`;
}

export function halfMaxTable(h: HalfMaxPhase): string {
  const r = h.row;
  return [
    '| load | offered req/s | signatures/s (median, min–max) | p50 / p90 / p99 ms (from scheduled send) | server CPU (kernel; main thread) | server µs/sig | server GC: collections · longest stop ms · total pause ms | send lag p99 ms | errors |',
    '|---|---:|---:|---|---:|---:|---:|---:|---|',
    `| gRPC Sign EIP-191, session, open loop at ${fmt(100 * h.fraction, 0)} % of max = ${fmtInt(h.targetPerSec)} req/s | ${fmtInt(r.offeredPerSec)} | ${rateCell(r)} | ${latencyCell(r)} | ${cpuCell(r)} | ${fmt(r.serverMicrosPerSignature, 0)} | ${gcCell(r)} | ${fmt(r.sendLagP99Ms, 2)} | ${errorCell(r)} |`,
  ].join('\n');
}

export function overloadTable(ov: OverloadPhase): string {
  const row = (label: string, r: Row, offered: string, rss: string) =>
    `| ${label} | ${offered} | ${rateCell(r)} | ${fmtInt(r.failedPerSec)} | ${latencyCell(r)} | ${cpuCell(r)} | ${gcCell(r)} | ${rss} | ${errorCell(r)} |`;
  return [
    '| load | offered req/s | completed sig/s | refused/s | p50 / p90 / p99 ms (successful calls) | server CPU (kernel; main thread) | server GC: collections · longest stop ms · total pause ms | server peak RSS (VmHWM) | errors (warm-up included) |',
    '|---|---:|---:|---:|---|---:|---:|---:|---|',
    row(`${ov.atBound.scenario.label ?? ov.atBound.scenario.id}`, ov.atBound, '–', `${mib(ov.peakRssBeforeKiB)} MiB (before)`),
    row(`open loop at ${fmt(ov.factor, 0)} × max = ${fmtInt(ov.targetPerSec)} req/s`, ov.row, fmtInt(ov.row.offeredPerSec), `${mib(ov.peakRssAfterKiB)} MiB (after)`),
  ].join('\n');
}

/** Median generator CPU µs per request of each row, as "C = 1: 120, C = 4: 90, …". */
function generatorCosts(rows: readonly Row[]): string {
  return rows.map((r) => `C = ${r.scenario.concurrency}: ${fmt(r.generatorMicrosPerRequest, 0)}`).join(', ');
}

export function renderMarkdown(rec: BenchRecord): string {
  const m = rec.machine;
  const o = rec.options;
  const primary = rec.rows.filter((r) => r.scenario.primary);
  const secondary = rec.rows.filter((r) => !r.scenario.primary);
  const hm = rec.halfMax;
  const ov = rec.overload;
  const phaseRows = [...(hm === undefined ? [] : [hm.row]), ...(ov === undefined ? [] : [ov.atBound, ov.row])];
  const everyRow = [...rec.rows, ...phaseRows];
  const maxGen = Math.max(...everyRow.map((r) => r.generatorCpuPct));
  const maxOther = Math.max(...everyRow.map((r) => r.otherCpuPctMax));
  const strictErrors = [...rec.rows, ...(hm === undefined ? [] : [hm.row]), ...(ov === undefined ? [] : [ov.atBound])].reduce((a, r) => a + r.errorCount, 0);
  const badPreflight = everyRow.flatMap((r) => r.preflight.filter((p) => p !== 'ok').map((p) => `${r.scenario.id}: ${p}`));
  const exhausted = everyRow.filter((r) => r.poolExhausted).map((r) => r.scenario.id);
  const peak = Math.max(...rec.serverPeakRssKiB) / 1024;
  const secs = (ms: unknown) => fmt(Number(ms) / 1000, Number(ms) % 1000 === 0 ? 0 : 1);
  const parts = [
    `# Signing benchmark — ${rec.startedAt.slice(0, 10)}`,
    '',
    `\`${rec.command}\` · ${fmt(rec.elapsedSeconds, 0)} s · commit \`${m.commit}\``,
    '',
    `**Machine:** ${m.cpuModel} (${m.cpuFamilyModel}), ${m.cores} cores, ${m.memoryGiB} GiB, Linux ${m.kernel}; Node ${m.node} (V8 ${m.v8}, OpenSSL ${m.openssl}); secp256k1 backend: ${rec.micro.secp256k1Backend}${rec.micro.nativeError === undefined ? '' : ` (native failed: ${rec.micro.nativeError})`}.${rec.pinned ? ' The appliance is pinned to CPU 0 and the load generator (one Node process) to CPU 1; the machine is shared, so other processes may run on either.' : ' Nothing is pinned (taskset unavailable or one CPU).'}`,
    '',
    `## Raw signing in-process (median of ${o['microRuns']} × ${o['microRunMs']} ms runs${rec.pinned ? ', pinned to CPU 0' : ''})`,
    '',
    microTable(rec.micro),
    '',
    `## Sign over the wire (median of ${o['reps']} rounds × ${secs(o['durationMs'])} s after a ${secs(o['warmupMs'])} s warm-up, a fresh appliance per round${rec.pinned ? '; server pinned to CPU 0, load generator to CPU 1' : '; not pinned'}; data directory under \`${rec.dataRoot}\`)`,
    '',
    'Closed loop: C calls in flight, each worker sending its next call when the last returns. The gRPC Sign EIP-191 session rows at C = 1 … 256 are the concurrency sweep.',
    '',
    loadTable(primary),
    '',
  ];
  if (secondary.length > 0) {
    parts.push(`Shorter rows (median of ${o['reps']} × ${secs(o['extraDurationMs'])} s after ${secs(o['extraWarmupMs'])} s):`, '', loadTable(secondary), '');
  }
  if (hm !== undefined) {
    parts.push(
      `## Latency at half of max throughput (open loop; median of ${hm.row.runs.length} × ${secs(o['durationMs'])} s after ${secs(o['warmupMs'])} s, on the last round’s appliance)`,
      '',
      `Max throughput = ${maxLine(hm.max)}.`,
      '',
      halfMaxTable(hm),
      '',
    );
    const bestRow = rec.rows.find((r) => r.scenario.id === hm.max.scenarioId);
    if (bestRow !== undefined) {
      const more = hm.row.serverMicrosPerSignature > 1.1 * bestRow.serverMicrosPerSignature;
      parts.push(
        `At this rate the appliance used ${fmt(hm.row.serverCpuPct, 0)} % of its core, ${fmt(hm.row.serverMicrosPerSignature, 0)} µs per signature against ${fmt(bestRow.serverMicrosPerSignature, 0)} µs at C = ${bestRow.scenario.concurrency}${more ? ': with few calls in flight each signature costs more (compare the sweep’s low-C rows), so half of the best rate takes more than half of a core' : ''}. Most calls in flight at once: ${hm.row.peakInFlight}.${Number.isNaN(hm.row.gcCount) ? '' : ` In each window the collector stopped the JavaScript thread ${fmt(hm.row.gcCount, 0)} times (median), ${fmt(hm.row.gcTotalPauseMs, 0)} ms in all, the longest stop ${fmt(hm.row.gcLongestStopMs, 1)} ms (${fmt(hm.row.gcLongestStopMaxMs, 1)} ms in the worst window): every call in flight waits out a stop, and at this load the queue it leaves takes several times its length to drain.`}`,
        '',
      );
    }
  }
  if (ov !== undefined) {
    const grew = ov.peakRssAfterKiB - ov.peakRssBeforeKiB;
    const refusals = ov.row.errors['grpc-status 8 RESOURCE_EXHAUSTED'] ?? 0;
    const other = ov.row.errorCount - refusals;
    parts.push(
      `## Overload (a fresh appliance with \`OPENKEY_MAX_IN_FLIGHT=${ov.bound}\`; open loop at ${fmt(ov.factor, 0)} × max for ${secs(o['overloadDurationMs'])} s after a ${secs(ov.warmupMs)} s warm-up)`,
      '',
      `Max throughput = ${maxLine(ov.max)}. First a closed loop under the bound (${secs(o['extraDurationMs'])} s after ${secs(o['warmupMs'])} s, nothing refused) warms the appliance and sets the "before" peak RSS; then the open loop offers ${fmt(ov.factor, 0)} × what the appliance could sign.`,
      '',
      overloadTable(ov),
      '',
      `- Refused calls: ${fmtInt(refusals)}, all \`grpc-status 8\` with \`openkey-error-code: RESOURCE_EXHAUSTED\`${refusals === 0 ? '' : `; ${ov.row.retryHints === refusals ? 'every one' : `${fmtInt(ov.row.retryHints)} of them`} carried \`openkey-retry-after-ms\``}${other === 0 ? '; no other error' : ` — and **${fmtInt(other)} other errors** (a failure)`}. Refusals are not counted as completed; latency percentiles are over successful calls only, from their scheduled send time.`,
      `- Server peak RSS (VmHWM): ${mib(ov.peakRssBeforeKiB)} MiB before the overload run, ${mib(ov.peakRssAfterKiB)} MiB after (${grew <= 0 ? 'unchanged' : `+${mib(grew)} MiB`}; the sweep rounds peaked at ${fmt(peak, 0)} MiB); current RSS ${mib(ov.rssBeforeKiB)} → ${mib(ov.rssAfterKiB)} MiB, and every 0.5 s of the overload window: ${(ov.row.runs[0]?.serverRssSamplesKiB ?? []).map(mib).join(' ')} MiB. Calls in flight at the generator every 0.5 s from the start of the warm-up: ${(ov.row.runs[0]?.openLoop?.inFlightSamples ?? []).join(' ')} (peak ${ov.row.peakInFlight}, cap ${ov.row.runs[0]?.openLoop?.maxInFlight ?? '?'}): the appliance admits at most ${ov.bound} calls at once and refuses the rest when it reads them; the others in flight are waiting to be read.`,
      '',
    );
  }
  const olParams = phaseRows.map((r) => r.runs[0]?.openLoop).find((x) => x !== undefined);
  const sweep = rec.rows.filter((r) => r.scenario.sweep);
  const connectSign = rec.rows.filter((r) => r.scenario.transport === 'connect' && r.scenario.operation === 'sign');
  const cheapestGrpc = Math.min(...sweep.map((r) => r.generatorMicrosPerRequest).filter((v) => Number.isFinite(v)));
  const bestSweep = sweep.reduce<Row | undefined>((a, r) => (a === undefined || r.signaturesPerSec > a.signaturesPerSec ? r : a), undefined);
  parts.push(
    '- **server CPU** = Δ(utime+stime) of the server process over the timed window (`/proc/<pid>/stat`, all threads), as % of one core, with the kernel’s share (stime) and the main JavaScript thread’s share (the rest: libuv pool threads doing LevelDB I/O and fsync, V8 GC/compiler threads); **server µs/sig** = that CPU time ÷ signatures completed in the window. **× raw CPU** = server µs/sig ÷ µs of the same work in-process (table above: EIP-191/EIP-712 with the native backend, Ed25519 with node:crypto). **% of raw rate** = signatures/s ÷ the in-process single-core rate.',
    '- **auth:** *session* rows open one service session per run before the window (OpenSession, stamped once) and then carry an `openkey-session` header on every request: an HMAC-SHA256 over the method, the body digest, the session id and a fresh sequence number, computed before the window; the appliance checks the MAC and accepts each sequence number once (in memory). *stamp* rows carry a per-request Ed25519 stamp (fresh nonce, signed before the window); the appliance verifies it and records the nonce in LevelDB. Either way it then checks the key’s policy, signs, writes the audit record, and signs a receipt. Latency is per call (a whole batch for SignBatch), measured at the generator.',
  );
  const streamRows = rec.rows.filter((r) => r.scenario.streams > 0);
  if (streamRows.length > 0) {
    const checked = streamRows.reduce((a, r) => a + r.runs.reduce((b, x) => b + (x.checkedAnswers ?? 0), 0), 0);
    parts.push(
      `- **SignStream** rows: C = streams × messages in flight on each stream. Each stream is its own HTTP/2 connection of the lean client (whatever the gRPC generator of the other rows), opened once per run with an \`openkey-session\` header over the method and the empty body (a fresh sequence number per stream, computed before the window); its messages (SignStreamRequest, a distinct id each, framed before the window) carry no authentication of their own, and each is decided, audited and receipted like a unary Sign. Closed loop per stream: every answer releases the next message on that stream; messages written in one turn of the event loop share DATA frames. Latency is per message, from its write to its answer (matched by id). A StreamError answer counts as a failed call under its code. Besides the pre-flight (one message through the project's own client), ${fmtInt(checked)} answers of the load itself (the first 8 of each stream and every 128th) were decoded after the window and verified: id, signature recovering to the key, receipt naming SignStream and covering that message's SignRequest.`,
    );
  }
  if (olParams !== undefined) {
    parts.push(
      `- **Open loop** (half-max and overload rows): request k is due at t₀ + k ÷ rate (after a linear ramp from 0 over the first three quarters of the warm-up); a ${fmt(olParams.tickMs, 0)} ms timer sends every request that has fallen due, over ${olParams.connections} HTTP/2 connections, whatever the answers; with ${olParams.maxInFlight} calls in flight a due request is not sent and counts as an error (\`generator in-flight cap\`). Latency is measured **from the scheduled send time**, not from the actual send, so a stall of the server or of the generator counts in full (no coordinated omission); *send lag* is how late the generator itself sent.`,
    );
  }
  parts.push(
    `- Load generators: gRPC = ${rec.grpcGenerator === 'raw-h2' ? 'a lean HTTP/2 client on a raw TCP socket (`bench/loadgen/raw-h2.ts`: every request framed before the window, answers HPACK-decoded, `grpc-status` read from the trailers)' : 'a `node:http2` client (gRPC framing, `grpc-status` read from the trailers)'}; Connect = autocannon 8 over HTTP/1.1. Generator CPU ≤ ${fmt(maxGen, 0)} % of its core; other processes on the machine used ≤ ${fmt(maxOther, 0)} % of a core during any window.`,
  );
  if (sweep.length > 0) {
    parts.push(
      `- **Generator CPU per request** (one Node process on one core, which bounds the unbatched rate it can measure): gRPC Sign ${generatorCosts(sweep)} µs${connectSign.length > 0 ? `; Connect Sign (autocannon) ${generatorCosts(connectSign)} µs` : ''} — so this generator can issue at most ≈ ${fmtInt(1e6 / cheapestGrpc)} unbatched gRPC calls/s. ${bestSweep === undefined ? '' : `At the best sweep rate (C = ${bestSweep.scenario.concurrency}) it used ${fmt(bestSweep.generatorCpuPct, 0)} % of its core while the server used ${fmt(bestSweep.serverCpuPct, 0)} % of its own.`}`,
    );
  }
  const traced = rec.rows.filter((r) => !Number.isNaN(r.gcCount));
  if (traced.length > 0) {
    parts.push(
      `- **Server GC** (the appliance runs with V8's \`--trace-gc\`; one line per collection, matched to the window by wall clock; bench/gc-trace.ts): a collection's pause stops the JavaScript thread, so no call finishes during it. Longest stop in a window, median over the rounds: ${traced.map((r) => `${r.scenario.id} ${fmt(r.gcLongestStopMs, 1)}`).join(', ')} ms.`,
    );
  }
  const extraPeaks = [...(hm === undefined ? [] : [`half-max ${mib(hm.serverPeakRssKiB)} MiB`]), ...(ov === undefined ? [] : [`overload ${mib(ov.peakRssAfterKiB)} MiB`])];
  parts.push(
    `- Server peak RSS (VmHWM): ${fmt(peak, 0)} MiB (per round: ${rec.serverPeakRssKiB.map((k) => mib(k)).join(' / ')} MiB${extraPeaks.length > 0 ? `; ${extraPeaks.join(', ')}` : ''}). Errors over all runs, warm-ups included: ${strictErrors}${ov === undefined ? '' : ' (besides the overload run’s refusals)'}.`,
  );
  const otherMedian = median(everyRow.flatMap((r) => r.runs.map((x) => x.otherCpuPct)));
  if (maxOther > 25) {
    parts.push(
      `- **Noisy machine:** other processes used ${fmt(otherMedian, 0)} % of a core in the median window (up to ${fmt(maxOther, 0)} %), competing with the pinned server and generator; rates are lower and CPU per signature higher than on an idle machine. Re-run with \`--wait-quiet=S\` when the machine is idle.`,
    );
  }
  if (badPreflight.length > 0) parts.push(`- **Pre-flight check failed:** ${badPreflight.join('; ')}`);
  if (exhausted.length > 0) parts.push(`- Request pool ran out early (window cut short) in: ${exhausted.join(', ')}`);
  return `${parts.join('\n')}\n`;
}

/** JSON with NaN/Infinity as null. */
export function toJson(rec: BenchRecord): string {
  return `${JSON.stringify(rec, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`;
}
