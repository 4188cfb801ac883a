// The append-only, hash-chained audit log: `<dir>/audit.log` (record layout in audit-record.ts),
// rotated to `audit.log.<n>` when it passes `maxFileBytes`, the chain running on across files.
//
// Writes: every record is written (write(2), synchronously) before `append` returns, so it
// survives a crash of the process; it reaches the disk by group commit, an fsync at most
// `fsyncIntervalMs` later (default 200 ms), or before `append` returns with `fsyncIntervalMs: 0`.
// Records are only appended, never rewritten. Only authentications, denials and administrative
// changes are audited: nothing here is on the produce or fetch path.
//
// Writers: the broker and offline commands (`memorystreamer user … --data-dir`) may append to the
// same log at once. Each append takes `<dir>/audit.lock` (created exclusively, held for one write),
// and rereads the end of the file when another process appended or rotated since: the chain stays
// one chain.
//
// A torn record (the process or machine died halfway through a write) is not rewritten: the next
// append ends it with "\n" and writes an `audit.recovered` record, chained to the last whole
// record, saying where the torn bytes are. The verifier accepts such a torn line only when the
// record after it says so.

import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  fsync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { MemoryStreamerError } from '../common/errors.js';
import { errorOf } from '../protocol/error-codes.js';
import {
  type AuditEvent,
  type AuditHeader,
  type AuditRecord,
  encodeHeader,
  encodeRecord,
  parseHeader,
  parseRecord,
} from './audit-record.js';

export const AUDIT_FILE = 'audit.log';
const LOCK_FILE = 'audit.lock';
/** A lock older than this was left by a process that died while holding it. */
const STALE_LOCK_MS = 3000;
/** How long an append waits for another process's lock before giving up. */
const LOCK_WAIT_MS = 4000;
/** The end of a file read to find its last record (a record is one short line). */
const TAIL_BYTES = 1024 * 1024;
export const DEFAULT_AUDIT_MAX_FILE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_AUDIT_FSYNC_INTERVAL_MS = 200;

export interface AuditLogOptions {
  /** Directory of the log (created if missing): `<data_dir>/audit` by default. */
  readonly dir: string;
  /** The file is rotated once it reaches this size (default 64 MiB). */
  readonly maxFileBytes?: number;
  /** 0: fsync every record before append returns; else at most this long after it (group commit). */
  readonly fsyncIntervalMs?: number;
  /** Where a record that could not be written is reported (`record` never throws). */
  readonly onError?: (error: MemoryStreamerError, event: AuditEvent) => void;
  /**
   * Told of every record appended to the log after `open`, in chain order, with its line as on
   * disk (without "\n"): this process's records as they are written, and those another process
   * (an offline `memorystreamer user … --data-dir`) appended meanwhile, as soon as this process
   * appends next. The audit topic (audit-topic.ts) forwards them. It must not throw.
   */
  readonly onAppended?: (record: AuditRecord, line: string) => void;
}

/** Rotated files of a directory, oldest first: `audit.log.1`, `audit.log.2`, … */
export function rotatedAuditFiles(dir: string): { file: number; path: string }[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .map((name) => /^audit\.log\.([1-9][0-9]*)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ file: Number(m[1]), path: join(dir, m[0]) }))
    .sort((a, b) => a.file - b.file);
}

/** Where the chain stands at the end of a file. */
interface TailState {
  header: AuditHeader;
  /** seq and hash of the last whole record (the header's when none). */
  seq: number;
  hash: string;
  size: number;
  ino: number;
  /** Bytes after the last whole record or header that are not one (an interrupted write). */
  torn: { offset: number; bytes: number; endsLine: boolean } | null;
}

function readRange(fd: number, position: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  let read = 0;
  while (read < length) {
    const n = readSync(fd, buffer, read, length - read, position + read);
    if (n === 0) break;
    read += n;
  }
  return buffer.subarray(0, read);
}

function readTail(path: string): TailState {
  const fd = openSync(path, 'r');
  try {
    const { size, ino } = fstatSync(fd);
    const head = readRange(fd, 0, Math.min(size, 4096));
    const headEnd = head.indexOf(0x0a);
    const header = headEnd === -1 ? null : parseHeader(head.subarray(0, headEnd).toString('utf8'));
    if (header === null)
      throw errorOf('AUDIT_LOG_UNAVAILABLE', `${path} does not start with an audit header line`);
    const start = Math.max(0, size - TAIL_BYTES);
    const tail = readRange(fd, start, size - start);
    // From the end back to the last whole record (or the header): what follows it is torn.
    let end = tail.length;
    if (end > 0 && tail[end - 1] !== 0x0a) end = tail.lastIndexOf(0x0a, end - 1) + 1;
    while (end > 0) {
      const lineStart = end >= 2 ? tail.lastIndexOf(0x0a, end - 2) + 1 : 0;
      if (lineStart === 0 && start > 0) break; // cut by the window
      const text = tail.subarray(lineStart, end - 1).toString('utf8');
      const parsed = parseRecord(text);
      const isHeader = start + lineStart === 0;
      if (parsed !== null || isHeader) {
        const tornOffset = start + end;
        const torn =
          tornOffset < size
            ? { offset: tornOffset, bytes: size - tornOffset, endsLine: tail[tail.length - 1] === 0x0a }
            : null;
        return parsed !== null
          ? { header, seq: parsed.record.seq, hash: parsed.record.hash, size, ino, torn }
          : { header, seq: header.seq, hash: header.prev, size, ino, torn };
      }
      end = lineStart;
    }
    throw errorOf('AUDIT_LOG_UNAVAILABLE', `${path}: no whole record in its last ${TAIL_BYTES} bytes`);
  } finally {
    closeSync(fd);
  }
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes a new file holding only its header: complete or absent after a crash. */
function createFile(path: string, header: AuditHeader): void {
  const temporary = `${path}.tmp`;
  const fd = openSync(temporary, 'w', 0o600);
  try {
    writeSync(fd, `${encodeHeader(header)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export class AuditLog {
  readonly dir: string;
  readonly path: string;
  private readonly maxFileBytes: number;
  private readonly fsyncIntervalMs: number;
  private readonly onError: AuditLogOptions['onError'];
  private readonly onAppended: AuditLogOptions['onAppended'];
  private fd: number | null = null;
  /** Where this process last left the file: another writer moved it when it differs. */
  private state: TailState | null = null;
  private syncTimer: NodeJS.Timeout | null = null;
  private closed = false;

  private constructor(options: AuditLogOptions) {
    this.dir = options.dir;
    this.path = join(options.dir, AUDIT_FILE);
    this.maxFileBytes = options.maxFileBytes ?? DEFAULT_AUDIT_MAX_FILE_BYTES;
    this.fsyncIntervalMs = options.fsyncIntervalMs ?? DEFAULT_AUDIT_FSYNC_INTERVAL_MS;
    this.onError = options.onError;
    this.onAppended = options.onAppended;
  }

  /** Opens (or starts) the log of a directory; a torn last record is closed off by the first append. */
  static open(options: AuditLogOptions): AuditLog {
    const log = new AuditLog(options);
    try {
      mkdirSync(options.dir, { recursive: true, mode: 0o700 });
      log.withLock(() => log.sync());
    } catch (error) {
      log.close();
      throw unavailable(`cannot open ${log.path}`, error);
    }
    return log;
  }

  /** Appends one record; throws AUDIT_LOG_UNAVAILABLE when it could not be written. */
  append(event: AuditEvent): AuditRecord {
    if (this.closed) throw errorOf('AUDIT_LOG_UNAVAILABLE', `${this.path} is closed`);
    try {
      return this.withLock(() => {
        const state = this.sync();
        if (state.torn !== null) {
          const { offset, bytes, endsLine } = state.torn;
          if (!endsLine) this.write('\n');
          this.writeRecord({
            principal: null,
            source: null,
            action: 'audit.recovered',
            resource: null,
            result: 'success',
            detail: {
              reason:
                'a torn record (an interrupted write) precedes this one; the chain continues from the record before it',
              tornAtByte: offset,
              tornBytes: bytes,
            },
          });
        }
        const record = this.writeRecord(event);
        if (this.state!.size >= this.maxFileBytes) this.rotate();
        return record;
      });
    } catch (error) {
      // What this process knows of the file may be wrong now: read it again next time.
      this.state = null;
      throw unavailable(`cannot append to ${this.path}`, error);
    }
  }

  /** Appends a record; a failure goes to onError (the action it records has happened anyway). */
  record(event: AuditEvent): void {
    try {
      this.append(event);
    } catch (error) {
      this.onError?.(error as MemoryStreamerError, event);
    }
  }

  /**
   * A request refused by the authorization check: `operation` (read, write, create, …) on
   * `resource` (`topic:orders`, `group:billing`, `cluster`, …) by `principal` from `source`.
   */
  denied(principal: string | null, operation: string, resource: string, source: string | null): void {
    this.record({ principal, source, action: `authz.${operation}`, resource, result: 'denied' });
  }

  /**
   * Tells `onAppended` of records another process appended since this one last wrote or looked,
   * without writing any (a cheap stat when nothing changed). Never throws: a failure is retried by
   * the next call or append.
   */
  follow(): void {
    if (this.closed || this.state === null || this.onAppended === undefined) return;
    try {
      const { size, ino } = statSync(this.path);
      if (size === this.state.size && ino === this.state.ino) return;
      this.withLock(() => this.sync());
    } catch {
      // The lock was held too long or a file went away: the next call or append looks again.
    }
  }

  /** Writes what is pending to disk and closes the file. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.syncTimer !== null) clearTimeout(this.syncTimer);
    this.syncTimer = null;
    if (this.fd !== null) {
      try {
        fsyncSync(this.fd);
      } catch {
        // Closing anyway: what could not be synced is what a crash would have lost.
      }
      closeSync(this.fd);
      this.fd = null;
    }
  }

  private writeRecord(event: AuditEvent): AuditRecord {
    const state = this.state!;
    const seq = state.seq + 1;
    const time = new Date();
    const prev = state.hash;
    const { line, hash } = encodeRecord(event, seq, time, prev);
    this.write(`${line}\n`);
    state.seq = seq;
    state.hash = hash;
    state.torn = null;
    this.scheduleSync();
    const record: AuditRecord = {
      seq,
      time: time.toISOString(),
      principal: event.principal,
      tenant: event.tenant ?? null,
      source: event.source,
      action: event.action,
      resource: event.resource,
      result: event.result,
      detail: event.detail ?? null,
      prev,
      hash,
    };
    this.onAppended?.(record, line);
    return record;
  }

  private write(text: string): void {
    const bytes = Buffer.from(text, 'utf8');
    let written = 0;
    while (written < bytes.length) written += writeSync(this.fd!, bytes, written, bytes.length - written);
    this.state!.size += bytes.length;
  }

  private scheduleSync(): void {
    if (this.fsyncIntervalMs === 0) {
      fsyncSync(this.fd!);
      return;
    }
    if (this.syncTimer !== null) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = null;
      if (this.fd !== null) fsync(this.fd, () => undefined);
    }, this.fsyncIntervalMs);
    this.syncTimer.unref();
  }

  /** The chain's end as the file is now (reread when another process appended or rotated). */
  private sync(): TailState {
    let stat: { size: number; ino: number } | null = null;
    try {
      stat = statSync(this.path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (stat !== null && this.state !== null && stat.ino === this.state.ino && stat.size === this.state.size)
      return this.state;
    if (this.onAppended !== undefined && this.state !== null && stat !== null) this.emitForeign(stat);
    if (stat === null) this.startFile();
    if (this.fd !== null && (this.state === null || statSync(this.path).ino !== this.state.ino)) {
      fsyncSync(this.fd);
      closeSync(this.fd);
      this.fd = null;
    }
    this.fd ??= openSync(this.path, 'a', 0o600);
    this.state = readTail(this.path);
    return this.state;
  }

  /**
   * Tells `onAppended` of the records another process appended since this one last wrote: the
   * rest of the file this process knew (rotated to `audit.log.<n>` if its inode changed), then the
   * records of the files after it.
   */
  private emitForeign(stat: { size: number; ino: number }): void {
    const known = this.state!;
    const emit = (path: string, from: number) => {
      const fd = openSync(path, 'r');
      let bytes: Buffer;
      try {
        bytes = readRange(fd, from, Math.max(0, fstatSync(fd).size - from));
      } finally {
        closeSync(fd);
      }
      let start = 0;
      for (let end = bytes.indexOf(0x0a); end !== -1; end = bytes.indexOf(0x0a, start)) {
        const line = bytes.subarray(start, end).toString('utf8');
        start = end + 1;
        const parsed = parseRecord(line);
        if (parsed !== null && parsed.record.seq > known.seq) this.onAppended!(parsed.record, line);
      }
    };
    try {
      if (stat.ino === known.ino) {
        if (stat.size > known.size) emit(this.path, known.size);
        return;
      }
      for (const rotated of rotatedAuditFiles(this.dir))
        if (rotated.file >= known.header.file)
          emit(rotated.path, rotated.file === known.header.file ? known.size : 0);
      emit(this.path, 0);
    } catch {
      // A file gone meanwhile: the records it held stay in the files; only their copy is missed.
    }
  }

  /** A new current file: the first of the log, or the next after the rotated ones. */
  private startFile(): void {
    const rotated = rotatedAuditFiles(this.dir);
    const last = rotated.at(-1);
    const end = last === undefined ? null : readTail(last.path);
    createFile(this.path, {
      file: last === undefined ? 1 : last.file + 1,
      created: new Date().toISOString(),
      seq: end?.seq ?? 0,
      prev: end?.hash ?? randomBytes(32).toString('hex'),
    });
    syncDirectory(this.dir);
  }

  /** The full file becomes `audit.log.<n>`; the new one's header carries the chain on. */
  private rotate(): void {
    const state = this.state!;
    fsyncSync(this.fd!);
    closeSync(this.fd!);
    this.fd = null;
    renameSync(this.path, join(this.dir, `${AUDIT_FILE}.${state.header.file}`));
    createFile(this.path, {
      file: state.header.file + 1,
      created: new Date().toISOString(),
      seq: state.seq,
      prev: state.hash,
    });
    syncDirectory(this.dir);
    this.fd = openSync(this.path, 'a', 0o600);
    this.state = readTail(this.path);
  }

  private withLock<T>(work: () => T): T {
    const lock = join(this.dir, LOCK_FILE);
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        closeSync(openSync(lock, 'wx', 0o600));
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      try {
        if (Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS) unlinkSync(lock);
      } catch {
        // Released (or removed as stale by another writer) meanwhile: try again.
      }
      if (Date.now() > deadline)
        throw errorOf(
          'AUDIT_LOG_UNAVAILABLE',
          `${lock} has been held by another process for ${LOCK_WAIT_MS} ms`,
        );
      sleepSync(2);
    }
    try {
      return work();
    } finally {
      try {
        unlinkSync(lock);
      } catch {
        // Already removed as stale by another writer: nothing to release.
      }
    }
  }
}

function unavailable(what: string, error: unknown): MemoryStreamerError {
  if ((error as MemoryStreamerError).codeName === 'AUDIT_LOG_UNAVAILABLE')
    return error as MemoryStreamerError;
  return errorOf('AUDIT_LOG_UNAVAILABLE', `${what}: ${(error as Error).message}`, { cause: error });
}
