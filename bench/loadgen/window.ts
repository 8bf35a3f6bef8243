// The measurement window of one load run: a warm-up, then a timed window whose edges sample the
// server's CPU time (/proc/<pid>/stat), this generator's own CPU time and the whole machine's, and
// in between a record of every completion (latency, outcome). Both generators share it, so gRPC
// and Connect figures are computed the same way.

import { performance } from 'node:perf_hooks';
import { mainThreadCpuTimes, processCpuTimes, processMemory, systemBusyMicros } from '../proc.ts';
import { summarizeLatencies } from '../stats.ts';
import type { OpenLoopSpec, RunResult } from './protocol.ts';

interface Snapshot {
  readonly t: number;
  readonly server: number;
  readonly serverSystem: number;
  readonly serverMain: number;
  readonly self: number;
  readonly system: number;
}

export type Phase = 'idle' | 'warmup' | 'window' | 'done';

/** Period of the server-memory samples inside the window. */
export const SAMPLE_MS = 500;

export class MeasurementWindow {
  private phase: Phase = 'idle';
  private readonly latencies: Float64Array;
  private count = 0;
  private readonly errors = new Map<string, number>();
  private windowErrors = 0;
  private retryHints = 0;
  /** Open loop: requests due inside the window, and how late each sent one went out (ms). */
  private due = 0;
  private readonly lags: Float64Array;
  private lagCount = 0;
  /** Server VmRSS sampled every SAMPLE_MS inside the window, KiB. */
  private readonly rssSamples: number[] = [];
  private startSnap: Snapshot | undefined;
  private endSnap: Snapshot | undefined;
  private timers: NodeJS.Timeout[] = [];
  private exhausted = false;
  private ended: (() => void) | undefined;
  /** Resolves when the window has closed (on time, or early when the pool ran out). */
  readonly closed: Promise<void>;

  constructor(
    private readonly o: { readonly serverPid: number; readonly warmupMs: number; readonly durationMs: number; readonly capacity: number; readonly openLoop?: boolean },
  ) {
    this.latencies = new Float64Array(Math.max(1, o.capacity));
    this.lags = new Float64Array(o.openLoop === true ? Math.max(1, o.capacity) : 1);
    this.closed = new Promise((resolve) => {
      this.ended = resolve;
    });
  }

  private snapshot(): Snapshot {
    const own = process.cpuUsage();
    const server = processCpuTimes(this.o.serverPid);
    const main = mainThreadCpuTimes(this.o.serverPid);
    return {
      t: performance.now(),
      server: server.user + server.system,
      serverSystem: server.system,
      serverMain: main.user + main.system,
      self: own.user + own.system,
      system: systemBusyMicros(),
    };
  }

  /** Starts the warm-up; the window opens after warmupMs and closes durationMs later. */
  begin(): void {
    this.phase = 'warmup';
    this.timers.push(
      setTimeout(() => {
        if (this.phase !== 'warmup') return;
        this.startSnap = this.snapshot();
        this.phase = 'window';
        this.sampleRss();
        this.timers.push(setInterval(() => this.sampleRss(), SAMPLE_MS));
      }, this.o.warmupMs),
      setTimeout(() => this.close(), this.o.warmupMs + this.o.durationMs),
    );
  }

  private sampleRss(): void {
    try {
      this.rssSamples.push(processMemory(this.o.serverPid).rssKiB);
    } catch {
      // the server is gone: the run fails on its own
    }
  }

  /** True while new requests may be started. */
  get accepting(): boolean {
    return this.phase === 'warmup' || this.phase === 'window';
  }

  get currentPhase(): Phase {
    return this.phase;
  }

  /** The request pool ran out: close the window now rather than measure a draining server. */
  poolExhausted(): void {
    if (!this.accepting) return;
    this.exhausted = true;
    this.close();
  }

  close(): void {
    if (this.phase === 'done') return;
    if (this.phase === 'window') this.endSnap = this.snapshot();
    this.phase = 'done';
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    this.ended?.();
  }

  /** Open loop: one request fell due; `lagMs` is how late it was sent (undefined: not sent). */
  noteDue(lagMs: number | undefined): void {
    if (this.phase !== 'window') return;
    this.due++;
    if (lagMs !== undefined && this.lagCount < this.lags.length) this.lags[this.lagCount++] = lagMs;
  }

  /** Records one finished call and its latency in milliseconds (`retryHint`: a failure that
   * carried the server's retry-after hint). */
  complete(latencyMs: number, ok: boolean, errorKey: string | undefined, retryHint = false): void {
    if (!ok) {
      const k = errorKey ?? 'unknown';
      this.errors.set(k, (this.errors.get(k) ?? 0) + 1);
      if (retryHint) this.retryHints++;
      if (this.phase === 'window') this.windowErrors++;
      return;
    }
    if (this.phase !== 'window' || this.count >= this.latencies.length) return;
    this.latencies[this.count++] = latencyMs;
  }

  result(extra: {
    readonly batchSize: number;
    readonly poolSize: number;
    readonly poolBuildMs: number;
    readonly sent: number;
    readonly preflight: string;
    readonly checkedAnswers?: number;
    readonly openLoop?: OpenLoopSpec & { readonly peakInFlight: number; readonly inFlightSamples: readonly number[]; readonly connections: number };
  }): RunResult {
    const a = this.startSnap;
    const b = this.endSnap;
    const windowMs = a !== undefined && b !== undefined ? b.t - a.t : Number.NaN;
    const serverCpu = a !== undefined && b !== undefined ? b.server - a.server : Number.NaN;
    const serverSys = a !== undefined && b !== undefined ? b.serverSystem - a.serverSystem : Number.NaN;
    const serverMain = a !== undefined && b !== undefined ? b.serverMain - a.serverMain : Number.NaN;
    const selfCpu = a !== undefined && b !== undefined ? b.self - a.self : Number.NaN;
    const systemCpu = a !== undefined && b !== undefined ? b.system - a.system : Number.NaN;
    const rps = (this.count * 1000) / windowMs;
    const mem = processMemory(this.o.serverPid);
    const pct = (micros: number) => (100 * micros) / (windowMs * 1000);
    const ol = extra.openLoop;
    const lag = summarizeLatencies(this.lags, this.lagCount);
    return {
      completed: this.count,
      windowMs,
      windowStartEpochMs: a === undefined ? Number.NaN : performance.timeOrigin + a.t,
      windowEndEpochMs: b === undefined ? Number.NaN : performance.timeOrigin + b.t,
      requestsPerSec: rps,
      signaturesPerSec: rps * extra.batchSize,
      latency: summarizeLatencies(this.latencies, this.count),
      errors: Object.fromEntries(this.errors),
      windowErrors: this.windowErrors,
      retryHints: this.retryHints,
      serverCpuMicros: serverCpu,
      serverCpuPct: pct(serverCpu),
      serverKernelPct: (100 * serverSys) / serverCpu,
      serverMainThreadPct: (100 * serverMain) / serverCpu,
      generatorCpuPct: pct(selfCpu),
      generatorMicrosPerRequest: selfCpu / (this.count + this.windowErrors),
      // Everything else that ran: the orchestrator (idle while it waits) and any foreign process.
      otherCpuPct: Math.max(0, pct(systemCpu - serverCpu - selfCpu)),
      serverRssKiB: mem.rssKiB,
      serverRssSamplesKiB: this.rssSamples,
      serverPeakRssKiB: mem.peakRssKiB,
      poolExhausted: this.exhausted,
      poolSize: extra.poolSize,
      poolBuildMs: extra.poolBuildMs,
      sent: extra.sent,
      preflight: extra.preflight,
      ...(extra.checkedAnswers === undefined ? {} : { checkedAnswers: extra.checkedAnswers }),
      ...(ol === undefined
        ? {}
        : {
            openLoop: {
              ratePerSec: ol.ratePerSec,
              maxInFlight: ol.maxInFlight,
              tickMs: ol.tickMs,
              rampMs: ol.rampMs,
              connections: ol.connections,
              offeredPerSec: (this.due * 1000) / windowMs,
              sendLagP50Ms: lag.p50,
              sendLagP99Ms: lag.p99,
              sendLagMaxMs: lag.max,
              peakInFlight: ol.peakInFlight,
              inFlightSamples: ol.inFlightSamples,
            },
          }),
    };
  }
}
