// What a process holds, from /proc (Linux): resident memory and open file descriptors (sockets included).
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** VmRSS in kB */
export function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/** open file descriptors: files, pipes, sockets, epoll and event fds */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** open sockets only */
export function socketCount(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      // closed while we looked
    }
  }
  return n;
}

/** Polls `read` until it returns at most `limit`, or `waitMs` passes; returns the last value. */
export async function settlesAtMost(read: () => number, limit: number, waitMs = 5000): Promise<number> {
  const until = performance.now() + waitMs;
  let value = read();
  while (value > limit && performance.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
    value = read();
  }
  return value;
}

/** CPU seconds (user + system, /proc/PID/stat utime + stime) the process has used; NaN once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // USER_HZ: 100 on every mainstream kernel
  } catch {
    return Number.NaN;
  }
}
