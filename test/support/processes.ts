// The processes below a pid, read from /proc (Linux): what a test checks an appliance leaves
// running beside itself.

import { readdirSync, readFileSync } from 'node:fs';

export interface ProcessInfo {
  readonly pid: number;
  readonly ppid: number;
  /** The command line, arguments separated by spaces. */
  readonly command: string;
}

function processes(): ProcessInfo[] {
  const out: ProcessInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // The fields after the command name, which is in parentheses and may itself hold spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const command = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim();
      out.push({ pid: Number(name), ppid, command });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Every live descendant of `root` (children, their children, …). */
export function descendantsOf(root: number): ProcessInfo[] {
  const all = processes();
  const found: ProcessInfo[] = [];
  let frontier = new Set([root]);
  while (frontier.size > 0) {
    const next = all.filter((p) => frontier.has(p.ppid));
    found.push(...next);
    frontier = new Set(next.map((p) => p.pid));
  }
  return found;
}

/** The descendants of `root` that `matches`, once none is left or after `timeoutMs` (those left). */
export async function descendantsGone(root: number, matches: (p: ProcessInfo) => boolean, timeoutMs = 5000): Promise<ProcessInfo[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = descendantsOf(root).filter(matches);
    if (left.length === 0 || Date.now() >= deadline) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
}
