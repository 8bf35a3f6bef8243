// Turns the runs of a benchmark into its published form: per-scenario medians over the rounds,
// CPU per signature against the raw in-process cost, the Markdown tables the README embeds
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
  readonly errors: Record<string, number>;
  readonly errorCount: number;
  readonly preflight: readonly string[];
  readonly poolExhausted: boolean;
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
    errors,
    errorCount: Object.values(errors).reduce((a, b) => a + b, 0),
    preflight: runs.map((r) => r.preflight),
    poolExhausted: runs.some((r) => r.poolExhausted),
  };
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
  readonly micro: MicroReport;
  readonly rows: readonly Row[];
  /** VmHWM of each server process (one per round), KiB. */
  readonly serverPeakRssKiB: readonly number[];
}

function callLabel(s: Scenario): string {
  if (s.operation === 'getImportKey') return 'GetImportKey (no auth, no crypto)';
  const payload = s.payload === 'eip191' ? 'EIP-191' : s.payload === 'eip712' ? 'EIP-712' : 'Ed25519';
  return s.operation === 'signBatch' ? `SignBatch ×${s.batchSize} ${payload}` : `Sign ${payload}`;
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
    '| transport | call | C | signatures/s (median, min–max) | p50 / p90 / p99 ms | server CPU (kernel; main thread) | server µs/sig | × raw CPU | % of raw rate | errors |',
    '|---|---|---:|---:|---|---:|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    const s = r.scenario;
    const rate = s.operation === 'getImportKey' ? `${fmtInt(r.requestsPerSec)} req/s` : `**${fmtInt(r.signaturesPerSec)}** (${fmtRange(r.signaturesPerSecRuns, 0)})`;
    const perSig = s.operation === 'getImportKey' ? `${fmt(r.serverMicrosPerRequest, 0)} /req` : fmt(r.serverMicrosPerSignature, 0);
    lines.push(
      `| ${transportLabel(s)} | ${callLabel(s)} | ${s.concurrency} | ${rate} | ${fmt(r.p50, 2)} / ${fmt(r.p90, 2)} / ${fmt(r.p99, 2)} | ${fmt(r.serverCpuPct, 0)} % (${fmt(r.serverKernelPct, 0)} %; ${fmt(r.serverMainThreadPct, 0)} %) | ${perSig} | ${Number.isFinite(r.cpuRatio) ? `${fmt(r.cpuRatio, 1)}×` : '–'} | ${Number.isFinite(r.percentOfRaw) ? `${fmt(r.percentOfRaw, 0)} %` : '–'} | ${errorCell(r)} |`,
    );
  }
  return lines.join('\n');
}

export function renderMarkdown(rec: BenchRecord): string {
  const m = rec.machine;
  const o = rec.options;
  const primary = rec.rows.filter((r) => r.scenario.primary);
  const secondary = rec.rows.filter((r) => !r.scenario.primary);
  const maxGen = Math.max(...rec.rows.map((r) => r.generatorCpuPct));
  const maxOther = Math.max(...rec.rows.map((r) => r.otherCpuPctMax));
  const totalErrors = rec.rows.reduce((a, r) => a + r.errorCount, 0);
  const badPreflight = rec.rows.flatMap((r) => r.preflight.filter((p) => p !== 'ok').map((p) => `${r.scenario.id}: ${p}`));
  const exhausted = rec.rows.filter((r) => r.poolExhausted).map((r) => r.scenario.id);
  const peak = Math.max(...rec.serverPeakRssKiB) / 1024;
  const parts = [
    `# Signing benchmark — ${rec.startedAt.slice(0, 10)}`,
    '',
    `\`${rec.command}\` · ${fmt(rec.elapsedSeconds, 0)} s · commit \`${m.commit}\``,
    '',
    `**Machine:** ${m.cpuModel} (${m.cpuFamilyModel}), ${m.cores} cores, ${m.memoryGiB} GiB, Linux ${m.kernel}; Node ${m.node} (V8 ${m.v8}, OpenSSL ${m.openssl}); secp256k1 backend: ${rec.micro.secp256k1Backend}${rec.micro.nativeError === undefined ? '' : ` (native failed: ${rec.micro.nativeError})`}.`,
    '',
    `## Raw signing in-process (median of ${o['microRuns']} × ${o['microRunMs']} ms runs${rec.pinned ? ', pinned to CPU 0' : ''})`,
    '',
    microTable(rec.micro),
    '',
    `## Sign over the wire (median of ${o['reps']} rounds × ${fmt(Number(o['durationMs']) / 1000, 0)} s${rec.pinned ? '; server pinned to CPU 0, load generator to CPU 1' : '; not pinned'}; data directory under \`${rec.dataRoot}\`)`,
    '',
    loadTable(primary),
    '',
  ];
  if (secondary.length > 0) {
    parts.push(`Shorter rows (median of ${o['reps']} × ${fmt(Number(o['extraDurationMs']) / 1000, 0)} s):`, '', loadTable(secondary), '');
  }
  parts.push(
    '- **server CPU** = Δ(utime+stime) of the server process over the timed window (`/proc/<pid>/stat`, all threads), as % of one core, with the kernel’s share (stime) and the main JavaScript thread’s share (the rest: libuv pool threads doing LevelDB I/O and fsync, V8 GC/compiler threads); **server µs/sig** = that CPU time ÷ signatures completed in the window. **× raw CPU** = server µs/sig ÷ µs of the same work in-process (table above: EIP-191/EIP-712 with the native backend, Ed25519 with node:crypto). **% of raw rate** = signatures/s ÷ the in-process single-core rate.',
    '- Every request carries its own stamp (fresh nonce), pre-signed before the window; the appliance verifies it, records the nonce in LevelDB, signs, and signs a receipt. Latency is per call (a whole batch for SignBatch), measured at the generator.',
    `- Load generators: gRPC = raw \`node:http2\` client (gRPC framing, \`grpc-status\` checked in trailers); Connect = autocannon ${'8'} over HTTP/1.1. Generator CPU ≤ ${fmt(maxGen, 0)} % of its core; other processes on the machine used ≤ ${fmt(maxOther, 0)} % of a core during any window.`,
    `- Server peak RSS (VmHWM): ${fmt(peak, 0)} MiB (per round: ${rec.serverPeakRssKiB.map((k) => fmt(k / 1024, 0)).join(' / ')} MiB). Errors over all runs, warm-ups included: ${totalErrors}.`,
  );
  const otherMedian = median(rec.rows.flatMap((r) => r.runs.map((x) => x.otherCpuPct)));
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
