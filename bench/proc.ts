// Linux process accounting for the benchmark: CPU time of a process (all its threads) from
// /proc/<pid>/stat, peak and current RSS from /proc/<pid>/status, CPU pinning with taskset, and a
// description of the machine (CPU model, cores, kernel, Node, commit) for the report.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

let clockTicks: number | undefined;

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat (almost always 100). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      clockTicks = Number.isInteger(n) && n > 0 ? n : 100;
    } catch {
      clockTicks = 100; // getconf missing: Linux's USER_HZ is 100 on every mainstream arch
    }
  }
  return clockTicks;
}

/**
 * utime and stime of `pid` and every process under it (a multi-core appliance's workers), each
 * summed over all threads, in µs (resolution 1/USER_HZ s).
 */
export function processCpuTimes(pid: number): { readonly user: number; readonly system: number } {
  let user = 0;
  let system = 0;
  for (const p of processTree(pid)) {
    try {
      const t = cpuTimesOf(`/proc/${p}/stat`);
      user += t.user;
      system += t.system;
    } catch (e) {
      if (p === pid) throw e; // a worker may exit between the listing and the read
    }
  }
  return { user, system };
}

/** `pid` and its descendants (from /proc/<pid>/task/<tid>/children). */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const visit = (p: number) => {
    out.push(p);
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${p}/task`);
    } catch {
      return;
    }
    for (const tid of tids) {
      let children = '';
      try {
        children = readFileSync(`/proc/${p}/task/${tid}/children`, 'latin1');
      } catch {
        continue;
      }
      for (const c of children.trim().split(/\s+/)) if (c !== '') visit(Number(c));
    }
  };
  visit(pid);
  return out;
}

/** utime and stime of the main thread of `pid` alone (for Node: the JavaScript thread), µs. */
export function mainThreadCpuTimes(pid: number): { readonly user: number; readonly system: number } {
  return cpuTimesOf(`/proc/${pid}/task/${pid}/stat`);
}

function cpuTimesOf(path: string): { readonly user: number; readonly system: number } {
  const stat = readFileSync(path, 'latin1');
  // Field 2 (comm) is parenthesised and may contain spaces; fields 14/15 follow the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`unexpected ${path} format`);
  const hz = ticksPerSecond();
  return { user: (utime * 1e6) / hz, system: (stime * 1e6) / hz };
}

/** Busy fraction of the whole machine over `ms` milliseconds, in % of one core. */
export async function machineBusyPct(ms: number): Promise<number> {
  const a = systemBusyMicros();
  const t = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  return (100 * (systemBusyMicros() - a)) / ((performance.now() - t) * 1000);
}

/** CPU time spent by every process on the machine (all cores, idle and iowait excluded), µs. */
export function systemBusyMicros(): number {
  const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0] ?? '';
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
  return (busy * 1e6) / ticksPerSecond();
}

export interface MemoryUsage {
  /** VmHWM: peak resident set size, KiB. */
  readonly peakRssKiB: number;
  /** VmRSS: current resident set size, KiB. */
  readonly rssKiB: number;
}

/** Peak and current RSS of `pid` and its descendants, summed (the peak is an upper bound for a tree). */
export function processMemory(pid: number): MemoryUsage {
  let peakRssKiB = 0;
  let rssKiB = 0;
  for (const p of processTree(pid)) {
    try {
      const m = oneProcessMemory(p);
      peakRssKiB += m.peakRssKiB;
      rssKiB += m.rssKiB;
    } catch (e) {
      if (p === pid) throw e;
    }
  }
  return { peakRssKiB, rssKiB };
}

function oneProcessMemory(pid: number): MemoryUsage {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    return m?.[1] === undefined ? Number.NaN : Number(m[1]);
  };
  return { peakRssKiB: field('VmHWM'), rssKiB: field('VmRSS') };
}

/** True when `taskset` exists and the machine has at least two CPUs to split between roles. */
export function canPin(): boolean {
  if (cpus().length < 2) return false;
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Pins every thread of `pid` to `cpu`. */
export function pinProcess(pid: number, cpu: number): void {
  execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
}

/** The command prefix that starts a program pinned to `cpu`, or nothing when pinning is off. */
/** `argv` run on CPU(s) `cpu` (a number or a taskset list such as "0-1"); undefined = as inherited. */
export function pinnedCommand(cpu: number | string | undefined, argv: readonly string[]): { command: string; args: string[] } {
  const [command, ...args] = argv;
  if (command === undefined) throw new Error('empty command');
  return cpu === undefined ? { command, args } : { command: 'taskset', args: ['-c', String(cpu), command, ...args] };
}

export interface MachineDescription {
  readonly cpuModel: string;
  readonly cpuFamilyModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly v8: string;
  readonly openssl: string;
  readonly commit: string;
}

function cpuinfoField(cpuinfo: string, name: string): string {
  return new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(cpuinfo)?.[1]?.trim() ?? '?';
}

function commitHash(cwd: string): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd, encoding: 'utf8' }).trim();
    // Tracked files only: an untracked scratch file cannot change what tracked code runs.
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${head}-dirty` : head;
  } catch {
    return 'unknown';
  }
}

export function describeMachine(repoRoot: string): MachineDescription {
  let cpuinfo = '';
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'latin1');
  } catch {
    // not Linux: the fields below fall back to os.cpus()
  }
  let kernel = '?';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'latin1').trim();
  } catch {
    // not Linux
  }
  return {
    cpuModel: cpuinfo === '' ? (cpus()[0]?.model ?? '?') : cpuinfoField(cpuinfo, 'model name'),
    cpuFamilyModel: `family ${cpuinfoField(cpuinfo, 'cpu family')}, model ${cpuinfoField(cpuinfo, 'model')}`,
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel,
    node: process.version,
    v8: process.versions.v8,
    openssl: process.versions.openssl,
    commit: commitHash(repoRoot),
  };
}
