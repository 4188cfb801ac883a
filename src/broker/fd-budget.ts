// The file-descriptor budget of the broker process. Every client connection, every open segment
// and every admin HTTP connection is a descriptor; at the limit, accept() and open() fail with
// EMFILE for everyone (the admin port and /healthz included). So the limit is raised at start, and
// split up front: a reserve for the process itself, one for admin connections, one for storage,
// and client connections get what is left (never more than configured). This file reads, raises
// and splits the limit; it opens no sockets and knows nothing of topics.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { sep } from 'node:path';

export interface FdLimits {
  soft: number;
  hard: number;
}

/** Descriptors the process needs besides connections and storage: stdio, the event loop, log and
 * config files, the lock, transient files (snapshots, topic.json, directory fsyncs), DNS, refused
 * sockets on their way out. Measured at start, plus this much slack. */
export const PROCESS_SLACK = 128;
/** Admin HTTP connections (/healthz, /metrics, the status page) the budget keeps free. */
export const ADMIN_RESERVE = 64;
/** Share of the limit given to storage's open-file cap (src/storage/open-files.ts) when clients
 * also need descriptors; storage opens segment files on use and closes idle ones under that cap,
 * so the number of partitions does not depend on the limit. */
export const STORAGE_SHARE = 0.25;
/** Storage never gets fewer open files than this (a cap too small makes every read reopen). */
export const STORAGE_MIN_FILES = 64;

/** The open files storage may hold when client connections share the limit. */
export function storageCapFor(limit: number): number {
  return Math.max(STORAGE_MIN_FILES, Math.floor(limit * STORAGE_SHARE));
}

/** "Max open files  1024  524288  files" from /proc/self/limits; null where there is none. */
export function readFdLimits(path = '/proc/self/limits'): FdLimits | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (match === null) return null;
  const value = (field: string) => (field === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(field));
  const soft = value(match[1]!);
  const hard = value(match[2]!);
  return Number.isFinite(soft) && Number.isFinite(hard) ? { soft, hard } : null;
}

export interface RaiseResult {
  before: FdLimits | null;
  after: FdLimits | null;
  /** Why the soft limit is below the hard one after the attempt, if it is. */
  problem: string | null;
}

/**
 * Raises this process's soft RLIMIT_NOFILE to its hard limit. Node has no setrlimit; util-linux's
 * `prlimit --pid <pid> --nofile=HARD:HARD` sets it for a running process (one's own needs no
 * privilege). Without prlimit, or where it fails, the limit stays as it is and `problem` says why.
 */
export function raiseFdLimit(): RaiseResult {
  const before = readFdLimits();
  if (before === null) return { before, after: null, problem: '/proc/self/limits is not readable' };
  if (before.soft >= before.hard) return { before, after: before, problem: null };
  const hard = before.hard === Number.MAX_SAFE_INTEGER ? 'unlimited' : String(before.hard);
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${hard}:${hard}`], {
      stdio: 'pipe',
      timeout: 5000,
    });
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stderr?: Buffer };
    const why =
      failure.code === 'ENOENT'
        ? 'prlimit (util-linux) is not installed'
        : (failure.stderr?.toString().trim() ?? failure.message);
    return { before, after: readFdLimits(), problem: `cannot raise the soft limit: ${why}` };
  }
  const after = readFdLimits();
  return {
    before,
    after,
    problem: after !== null && after.soft < after.hard ? 'prlimit did not raise the soft limit' : null,
  };
}

/** Descriptors open in this process now, in total and those on files under `dir`. */
export function countOpenFds(dir?: string): { total: number; under: number } | null {
  let entries: string[];
  try {
    entries = readdirSync('/proc/self/fd');
  } catch {
    return null;
  }
  let under = 0;
  if (dir !== undefined) {
    const prefix = dir.endsWith(sep) ? dir : `${dir}${sep}`;
    for (const entry of entries) {
      try {
        if (readlinkSync(`/proc/self/fd/${entry}`).startsWith(prefix)) under++;
      } catch {
        // Closed between the listing and the readlink.
      }
    }
  }
  // The listing itself held one descriptor on /proc/self/fd.
  return { total: Math.max(0, entries.length - 1), under };
}

export interface FdBudget {
  /** The soft limit in use. */
  limit: number;
  /** Descriptors kept for the process itself (measured at start plus PROCESS_SLACK). */
  processReserve: number;
  adminReserve: number;
  /** Descriptors storage may hold (open segments, stream files), counted on files in the data dir. */
  storageReserve: number;
  /** What the limit leaves for client connections. */
  allowedConnections: number;
  configuredMaxConnections: number;
  /** min(configured, allowed): what the network server is given. */
  maxConnections: number;
}

/**
 * Splits the limit. `storageOpen` is what storage holds now (files under the data directory);
 * `storageCap`, storage's own cap on open files, is used instead of growth headroom when given.
 * Connections get the rest; a smaller configured count leaves the difference to storage.
 */
export function planFdBudget(input: {
  limit: number;
  openNow: number;
  storageOpen: number;
  admin: boolean;
  configuredMaxConnections: number;
  storageCap?: number;
}): FdBudget {
  const processReserve = Math.max(0, input.openNow - input.storageOpen) + PROCESS_SLACK;
  const adminReserve = input.admin ? ADMIN_RESERVE : 0;
  const storageWanted =
    input.storageCap ?? input.storageOpen + Math.max(64, Math.floor(input.limit * STORAGE_SHARE));
  const allowedConnections = Math.max(0, input.limit - processReserve - adminReserve - storageWanted);
  const maxConnections = Math.min(input.configuredMaxConnections, allowedConnections);
  return {
    limit: input.limit,
    processReserve,
    adminReserve,
    storageReserve: Math.max(0, input.limit - processReserve - adminReserve - maxConnections),
    allowedConnections,
    configuredMaxConnections: input.configuredMaxConnections,
    maxConnections,
  };
}
