import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseGcLine, summarizeGc, type GcEvent } from './gc-trace.ts';

// Lines as this machine's Node 20 (V8 11.3) printed them under --trace-gc during a benchmark run.
const SCAVENGE = '[1556:0x3cbfbfc0]     6660 ms: Scavenge 122.6 (200.3) -> 80.6 (206.6) MB, 22.62 / 0.06 ms  (average mu = 0.988, current mu = 0.988) task; ';
const MARK_COMPACT =
  '[1556:0x3cbfbfc0]     5100 ms: Mark-Compact 114.7 (193.9) -> 34.6 (180.9) MB, 29.36 / 3.34 ms  (+ 13.9 ms in 53 steps since start of marking, biggest step 11.4 ms, walltime since start of marking 74 ms) (average mu = 0.988, current mu = 0.988) finalize incremental marking via task; GC in old space requested';
const MARK_COMPACT_BIG_STEP =
  '[1578:0x21a7bfc0]     6417 ms: Mark-Compact 133.4 (200.2) -> 38.3 (182.2) MB, 4.91 / 0.16 ms  (+ 22.4 ms in 114 steps since start of marking, biggest step 14.6 ms, walltime since start of marking 116 ms) (average mu = 0.988, current mu = 0.988) finalize incremental marking via task; GC in old space requested';

describe('parseGcLine', () => {
  it('reads a scavenge: process, kind and pause', () => {
    expect(parseGcLine(SCAVENGE, 1000)).toEqual({ atMs: 1000, pid: 1556, kind: 'scavenge', pauseMs: 22.62, longestStopMs: 22.62 });
  });

  it('reads a mark-compact, whose longest stop is the larger of its pause and its biggest marking step', () => {
    expect(parseGcLine(MARK_COMPACT, 5)).toEqual({ atMs: 5, pid: 1556, kind: 'mark-compact', pauseMs: 29.36, longestStopMs: 29.36 });
    expect(parseGcLine(MARK_COMPACT_BIG_STEP, 5)).toMatchObject({ pid: 1578, kind: 'mark-compact', pauseMs: 4.91, longestStopMs: 14.6 });
  });

  it('ignores every other line the server writes', () => {
    for (const line of [
      '{"level":30,"time":1,"msg":"appliance listening"}',
      '',
      'Scavenge 1 MB, 2 / 0 ms', // no process prefix: not V8's line
      '[1556:0x3cbfbfc0]     6660 ms: Scavenge 122.6 (200.3) -> 80.6 (206.6) MB', // cut short
    ]) {
      expect(parseGcLine(line, 0)).toBeUndefined();
    }
  });

  it('matches what this Node actually prints under --trace-gc', () => {
    // Allocate enough to scavenge, then force full collections (--expose-gc).
    const script = 'let keep = []; for (let i = 0; i < 3e5; i++) { keep.push({ i, s: "x" + i }); if (keep.length > 5e4) keep = []; } gc(); gc();';
    const run = spawnSync(process.execPath, ['--trace-gc', '--expose-gc', '-e', script], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    const lines = run.stdout.split('\n').filter((l) => / ms: /.test(l));
    expect(lines.length).toBeGreaterThanOrEqual(3);
    const events = lines.map((l) => parseGcLine(l, 0));
    expect(events.every((e) => e !== undefined && e.pid === run.pid && e.pauseMs >= 0)).toBe(true);
    expect(events.filter((e) => e?.kind === 'scavenge').length).toBeGreaterThanOrEqual(1);
    expect(events.filter((e) => e?.kind === 'mark-compact').length).toBeGreaterThanOrEqual(2);
  });
});

describe('summarizeGc', () => {
  const ev = (atMs: number, kind: GcEvent['kind'], pauseMs: number, longestStopMs = pauseMs): GcEvent => ({ atMs, pid: 1, kind, pauseMs, longestStopMs });
  const events = [ev(90, 'scavenge', 50), ev(100, 'scavenge', 4), ev(150, 'mark-compact', 10, 12), ev(180, 'scavenge', 6), ev(201, 'mark-compact', 40)];

  it('counts only the collections inside the window, edges included', () => {
    expect(summarizeGc(events, 100, 200)).toEqual({ count: 3, scavenges: 2, markCompacts: 1, totalPauseMs: 20, longestStopMs: 12 });
  });

  it('is all zeros for a window without a collection', () => {
    expect(summarizeGc(events, 300, 400)).toEqual({ count: 0, scavenges: 0, markCompacts: 0, totalPauseMs: 0, longestStopMs: 0 });
  });
});
