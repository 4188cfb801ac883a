// Open file descriptors of a process, from /proc/<pid>/fd: how close a flood brought the broker
// to its descriptor limit.
import { readdirSync } from 'node:fs';

export function countOpenFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
}
