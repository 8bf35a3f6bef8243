// Summarises a V8 .cpuprofile (from `npm run bench -- --profile`): where the server's CPU time
// went, as self time by function and by package, and inclusive time by function (each sample
// counted once per function on its stack). `--skip=S` drops the first S seconds (start-up);
// `--until=S` drops everything after S seconds from the start (to look at one phase of a run).
// Usage: node --import tsx bench/profile-summary.ts FILE [N] [--skip=S] [--until=S]

import { readFileSync } from 'node:fs';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

function isProfile(v: unknown): v is Profile {
  if (typeof v !== 'object' || v === null) return false;
  const p = v as Record<string, unknown>;
  return Array.isArray(p['nodes']) && Array.isArray(p['samples']) && Array.isArray(p['timeDeltas']);
}

function packageOf(url: string, fn: string): string {
  if (url === '') return fn.startsWith('(') ? fn : '(native/builtin)';
  if (url.startsWith('node:')) return url.replace(/^node:internal\/([^/]+).*$/, 'node:internal/$1');
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm?.[1] !== undefined) return nm[1];
  const repo = /\/(server|proto|clients|bench)\/(.*)$/.exec(url);
  return repo === null ? url : `${repo[1]}/${repo[2]}`;
}

function keyOf(n: ProfileNode): string {
  const f = n.callFrame;
  const where = f.url === '' ? '' : ` ${f.url.replace(/^.*\/(node_modules|work\/main)\//, '')}:${f.lineNumber + 1}`;
  return `${f.functionName || '(anonymous)'}${where}`;
}

function top(m: Map<string, number>, total: number, n: number): string[] {
  return [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `${((100 * v) / total).toFixed(1).padStart(5)} %  ${k}`);
}

const args = process.argv.slice(2);
const skipArg = args.find((a) => a.startsWith('--skip='));
const skipMicros = skipArg === undefined ? 0 : Number(skipArg.slice('--skip='.length)) * 1e6;
const untilArg = args.find((a) => a.startsWith('--until='));
const untilMicros = untilArg === undefined ? Infinity : Number(untilArg.slice('--until='.length)) * 1e6;
const [file, nArg] = args.filter((a) => !a.startsWith('--'));
if (file === undefined) {
  process.stderr.write('usage: node --import tsx bench/profile-summary.ts FILE.cpuprofile [N] [--skip=S] [--until=S]\n');
  process.exit(2);
}
const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
if (!isProfile(parsed)) throw new Error(`${file} is not a V8 CPU profile`);
const n = Number(nArg ?? 25);
const byId = new Map(parsed.nodes.map((x) => [x.id, x]));
const parent = new Map<number, number>();
for (const x of parsed.nodes) for (const c of x.children ?? []) parent.set(c, x.id);

const self = new Map<string, number>();
const pkg = new Map<string, number>();
const inclusive = new Map<string, number>();
let total = 0;
let idle = 0;
let elapsed = 0;
parsed.samples.forEach((id, i) => {
  const dt = parsed.timeDeltas[i] ?? 0;
  elapsed += dt;
  const node = byId.get(id);
  if (node === undefined || elapsed < skipMicros || elapsed > untilMicros) return;
  total += dt;
  if (node.callFrame.functionName === '(idle)') {
    idle += dt;
    return;
  }
  self.set(keyOf(node), (self.get(keyOf(node)) ?? 0) + dt);
  const p = packageOf(node.callFrame.url, node.callFrame.functionName);
  pkg.set(p, (pkg.get(p) ?? 0) + dt);
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const k = keyOf(byId.get(cur) as ProfileNode);
    if (seen.has(k)) continue;
    seen.add(k);
    inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
  }
});
const busy = total - idle;
const out = [
  `${file}: ${(total / 1e6).toFixed(1)} s sampled${skipMicros > 0 ? ` after the first ${skipMicros / 1e6} s` : ''}${untilMicros < Infinity ? ` up to ${untilMicros / 1e6} s` : ''}, ${((100 * idle) / total).toFixed(1)} % idle; percentages below are of the busy ${(busy / 1e6).toFixed(1)} s (main thread only)`,
  '',
  'Self time by package:',
  ...top(pkg, busy, n),
  '',
  'Self time by function:',
  ...top(self, busy, n),
  '',
  'Inclusive time by function:',
  ...top(new Map([...inclusive].filter(([k]) => !k.startsWith('(root)'))), busy, n),
];
process.stdout.write(`${out.join('\n')}\n`);
