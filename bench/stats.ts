// Small statistics for the benchmark: medians of repeated runs, latency percentiles over a
// sample, and number formatting for the Markdown report. Pure functions, no I/O.

/** Median of a non-empty list (mean of the middle two for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = finite.length >> 1;
  const hi = finite[mid] as number;
  return finite.length % 2 === 1 ? hi : ((finite[mid - 1] as number) + hi) / 2;
}

/** Percentile p ∈ [0, 100] of the first `count` entries of `sample` by nearest rank; NaN when empty. */
export function percentile(sorted: Float64Array, count: number, p: number): number {
  if (count <= 0) return Number.NaN;
  const rank = Math.min(count - 1, Math.max(0, Math.ceil((p / 100) * count) - 1));
  return sorted[rank] as number;
}

export interface LatencySummary {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** Summarises latencies in milliseconds; sorts the first `count` entries of `sample` in place. */
export function summarizeLatencies(sample: Float64Array, count: number): LatencySummary {
  const view = sample.subarray(0, count).sort();
  let sum = 0;
  for (const v of view) sum += v;
  return {
    p50: percentile(view, count, 50),
    p90: percentile(view, count, 90),
    p99: percentile(view, count, 99),
    max: count > 0 ? (view[count - 1] as number) : Number.NaN,
    mean: count > 0 ? sum / count : Number.NaN,
  };
}

/** Thousands-separated integer, or "–" for a missing value. */
export function fmtInt(v: number): string {
  return Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–';
}

/** Fixed decimals, or "–" for a missing value. */
export function fmt(v: number, digits: number): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '–';
}

/** "min–max" of a list with the given decimals. */
export function fmtRange(values: readonly number[], digits: number): string {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return '–';
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  return digits === 0 ? `${fmtInt(lo)}–${fmtInt(hi)}` : `${fmt(lo, digits)}–${fmt(hi, digits)}`;
}
