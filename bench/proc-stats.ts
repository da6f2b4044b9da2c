/**
 * What a server costs, read from /proc: CPU time and memory of a process and
 * everything it started (a sluice primary and its workers, a daemon's helpers).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const CLOCK_TICKS_PER_SECOND = (() => {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim();
  const ticks = Number(out);
  return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
})();

interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime + cutime + cstime, in clock ticks: own threads plus reaped children. */
  ticks: number;
}

/** Fields of /proc/<pid>/stat; the command name (field 2) may contain spaces and parentheses. */
function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): ppid is field 4, utime..cstime fields 14..17.
  const ppid = Number(fields[1]);
  const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  return { pid, ppid, ticks };
}

function allStats(): ProcStat[] {
  const stats: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat) stats.push(stat);
  }
  return stats;
}

/** The pid and every live descendant of it (empty when the pid is gone). */
export function processTree(rootPid: number): number[] {
  const stats = allStats();
  if (!stats.some((s) => s.pid === rootPid)) return [];
  const children = new Map<number, number[]>();
  for (const s of stats) {
    const list = children.get(s.ppid);
    if (list) list.push(s.pid);
    else children.set(s.ppid, [s.pid]);
  }
  const tree: number[] = [];
  const pending = [rootPid];
  while (pending.length > 0) {
    const pid = pending.pop()!;
    tree.push(pid);
    pending.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/** CPU seconds (user + system) used so far by a process tree, reaped children included. */
export function cpuSeconds(rootPid: number): number {
  let ticks = 0;
  for (const pid of processTree(rootPid)) ticks += readStat(pid)?.ticks ?? 0;
  return ticks / CLOCK_TICKS_PER_SECOND;
}

/** CPU seconds the whole machine has been busy (all cores; everything but idle and iowait), from /proc/stat. */
export function machineBusySeconds(): number {
  const first = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest time is already in user).
  const [user, nice, system, , , irq, softirq, steal] = first.trim().split(/\s+/).slice(1).map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) / CLOCK_TICKS_PER_SECOND;
}

/** Memory of a process tree: RSS and PSS summed over its processes. */
export interface TreeMemory {
  rssBytes: number;
  /** Proportional set size: a page shared by several processes (Node's code, a forked parent's pages) counts once in all. */
  pssBytes: number;
}

/** RSS and PSS of a process tree now, from each process's /proc/<pid>/smaps_rollup. */
export function treeMemory(rootPid: number): TreeMemory {
  let rssKib = 0;
  let pssKib = 0;
  for (const pid of processTree(rootPid)) {
    try {
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      rssKib += Number(/^Rss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0);
      pssKib += Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0);
    } catch {
      // Exited between the listing and the read.
    }
  }
  return { rssBytes: rssKib * 1024, pssBytes: pssKib * 1024 };
}

/**
 * The highest summed RSS and PSS of a process tree, sampled every `intervalMs`
 * (the processes' own VmHWM peaks are not simultaneous, so their sum overstates).
 */
export class MemorySampler {
  private peakRss = 0;
  private peakPss = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly rootPid: number, intervalMs = 250) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  /** Takes a sample now (it counts toward the peak) and returns it. */
  sample(): TreeMemory {
    const now = treeMemory(this.rootPid);
    this.peakRss = Math.max(this.peakRss, now.rssBytes);
    this.peakPss = Math.max(this.peakPss, now.pssBytes);
    return now;
  }

  stop(): TreeMemory {
    clearInterval(this.timer);
    this.sample();
    return { rssBytes: this.peakRss, pssBytes: this.peakPss };
  }
}
