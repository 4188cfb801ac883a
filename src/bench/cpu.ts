// CPU time, in seconds, of this thread, of a process, and of this whole process. Node 20 has no
// per-thread CPU call (process.cpuUsage() counts every thread of the process), so on Linux the
// thread's own line of /proc is read. It must be read synchronously: an async read would run on a
// libuv pool thread and measure that thread instead.

import { readFileSync } from 'node:fs';

/** Linux reports utime and stime in USER_HZ ticks, 100 per second on every mainstream platform. */
const TICKS_PER_SECOND = 100;

function parseStat(text: string): number {
  // The command name (field 2) may contain spaces; fields are counted after its closing parenthesis.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** CPU seconds of the calling thread, or null off Linux. */
export function threadCpuSeconds(): number | null {
  try {
    return parseStat(readFileSync('/proc/thread-self/stat', 'utf8'));
  } catch {
    return null;
  }
}

/** CPU seconds of another process, or null when /proc cannot tell (not Linux, process gone). */
export function processCpuSeconds(pid: number): number | null {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** CPU seconds of this whole process: every thread, including workers and the libuv pool. */
export function ownProcessCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}
