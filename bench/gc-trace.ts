// The appliance's garbage-collection pauses during a measurement window. The benchmark starts the
// server with V8's --trace-gc, which prints one line per collection to stdout; the runner notes
// when each line arrived (wall clock, the same clock the load generator's window is timed on) and
// sums the pauses that fell inside a window. A pause stops the JavaScript thread: every call in
// flight waits it out, and at a high load the queue it leaves behind takes many times its length
// to drain, so the longest pause bounds what a p99 can be.
//
// Line format (V8 11, Node 20), one per collection:
//   [pid:isolate]  1488 ms: Scavenge 48.7 (60.2) -> 34.8 (60.5) MB, 6.40 / 0.00 ms  (average mu …) allocation failure;
//   [pid:isolate]  5100 ms: Mark-Compact 114.7 (193.9) -> 34.6 (180.9) MB, 29.36 / 3.34 ms  (+ 13.9 ms in 53 steps since start of marking, biggest step 11.4 ms, …) …
// "29.36 / 3.34 ms" is the collection's pause and the part of it spent in embedder callbacks; a
// Mark-Compact that finishes incremental marking also reports its largest marking step, itself a
// pause of the main thread (counted here as the collection's longest stop).

export type GcKind = 'scavenge' | 'mark-compact' | 'minor-mark-compact' | 'other';

export interface GcEvent {
  /** Wall-clock time the line arrived, ms since the epoch. */
  readonly atMs: number;
  readonly pid: number;
  readonly kind: GcKind;
  /** The collection's own (atomic) pause, ms. */
  readonly pauseMs: number;
  /** The longest single stop it caused: the pause, or an incremental marking step if longer. */
  readonly longestStopMs: number;
}

export interface GcSummary {
  /** Collections that ended inside the window. */
  readonly count: number;
  readonly scavenges: number;
  readonly markCompacts: number;
  /** Sum of their pauses (incremental marking steps not included), ms. */
  readonly totalPauseMs: number;
  /** The longest single stop among them, ms (0 when there was none). */
  readonly longestStopMs: number;
}

const LINE = /^\[(\d+):0x[0-9a-f]+\]\s+\d+ ms: (Scavenge|Minor Mark-Compact|Minor Mark-Sweep|Mark-Compact|Mark-Sweep)\b.*?MB, (\d+(?:\.\d+)?) \/ \d+(?:\.\d+)? ms(.*)$/;
const BIGGEST_STEP = /biggest step (\d+(?:\.\d+)?) ms/;

function kindOf(name: string): GcKind {
  if (name === 'Scavenge') return 'scavenge';
  if (name === 'Mark-Compact') return 'mark-compact';
  if (name.startsWith('Minor')) return 'minor-mark-compact';
  return 'other';
}

/** The collection a --trace-gc line reports, or undefined for any other line. */
export function parseGcLine(line: string, atMs: number): GcEvent | undefined {
  const m = LINE.exec(line.trim());
  if (m === null) return undefined;
  const pauseMs = Number(m[3]);
  const step = BIGGEST_STEP.exec(m[4] ?? '');
  const stepMs = step === null ? 0 : Number(step[1]);
  return { atMs, pid: Number(m[1]), kind: kindOf(m[2] as string), pauseMs, longestStopMs: Math.max(pauseMs, stepMs) };
}

/** The collections whose lines arrived in [fromMs, toMs]. */
export function summarizeGc(events: readonly GcEvent[], fromMs: number, toMs: number): GcSummary {
  let count = 0;
  let scavenges = 0;
  let markCompacts = 0;
  let totalPauseMs = 0;
  let longestStopMs = 0;
  for (const e of events) {
    if (e.atMs < fromMs || e.atMs > toMs) continue;
    count++;
    if (e.kind === 'scavenge') scavenges++;
    else if (e.kind === 'mark-compact') markCompacts++;
    totalPauseMs += e.pauseMs;
    longestStopMs = Math.max(longestStopMs, e.longestStopMs);
  }
  return { count, scavenges, markCompacts, totalPauseMs, longestStopMs };
}
