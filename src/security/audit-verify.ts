// Reads an audit log back: checks its hash chain from the first file to the last (what
// `memorystreamer audit verify` reports), and reads its latest records (`audit tail`). The layout
// and the hash are in audit-record.ts; how torn records come to be, in audit-log.ts.

import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { errorOf } from '../protocol/error-codes.js';
import { AUDIT_FILE, rotatedAuditFiles } from './audit-log.js';
import { type AuditRecord, parseHeader, parseRecord } from './audit-record.js';

/** The first link that does not hold: where, and what was expected there. */
export interface AuditChainBreak {
  readonly file: string;
  /** 1-based line number in `file`. */
  readonly line: number;
  readonly reason: string;
  readonly expected?: string;
  readonly found?: string;
}

export interface AuditVerifyReport {
  readonly files: readonly { path: string; records: number }[];
  /** Records whose hash and link were checked. */
  readonly records: number;
  /** seq and hash of the last good record (give the hash to a system outside to pin the log). */
  readonly lastSeq: number;
  readonly lastHash: string | null;
  /**
   * A torn last record: a write interrupted by a crash, not tampering. The broker ends it and
   * continues the chain from the record before it (an `audit.recovered` record says so).
   */
  readonly torn: { file: string; line: number; bytes: number } | null;
  /** Torn records the log closed off with an `audit.recovered` record (accepted). */
  readonly recovered: readonly { file: string; line: number }[];
  readonly broken: AuditChainBreak | null;
}

/** The files of a log in chain order: the rotated ones, then the current one. */
export function auditFiles(target: { dir: string } | { file: string }): string[] {
  if ('file' in target) {
    if (!existsSync(target.file)) throw errorOf('AUDIT_LOG_UNAVAILABLE', `${target.file} does not exist`);
    return [target.file];
  }
  const files = rotatedAuditFiles(target.dir).map((f) => f.path);
  const current = join(target.dir, AUDIT_FILE);
  if (existsSync(current)) files.push(current);
  if (files.length === 0) throw errorOf('AUDIT_LOG_UNAVAILABLE', `no audit log in ${target.dir}`);
  return files;
}

interface Line {
  readonly number: number;
  readonly text: string;
  /** Ended by "\n" (a line without one is the file's last, cut short). */
  readonly ended: boolean;
}

function* linesOf(bytes: Buffer): Generator<Line> {
  let start = 0;
  let number = 1;
  while (start < bytes.length) {
    const end = bytes.indexOf(0x0a, start);
    const stop = end === -1 ? bytes.length : end;
    yield { number, text: bytes.subarray(start, stop).toString('utf8'), ended: end !== -1 };
    number++;
    start = stop + 1;
  }
}

/**
 * Checks the chain: every record's hash over its bytes and the hash before it, every link from
 * one record (or file) to the next. `progress` is called with bytes checked and bytes in all.
 */
export function verifyAuditLog(
  target: { dir: string } | { file: string },
  progress?: (doneBytes: number, totalBytes: number) => void,
): AuditVerifyReport {
  const paths = auditFiles(target);
  const contents = paths.map((path) => readFileSync(path));
  const totalBytes = contents.reduce((n, b) => n + b.length, 0);
  let doneBytes = 0;
  const files: { path: string; records: number }[] = [];
  const recovered: { file: string; line: number }[] = [];
  let records = 0;
  let seq = 0;
  let hash: string | null = null;
  let fileNumber: number | null = null;
  let torn: AuditVerifyReport['torn'] = null;
  const report = (broken: AuditChainBreak | null): AuditVerifyReport => ({
    files,
    records,
    lastSeq: seq,
    lastHash: hash,
    torn,
    recovered,
    broken,
  });

  for (let f = 0; f < paths.length; f++) {
    const path = paths[f]!;
    const file = basename(path);
    const lastFile = f === paths.length - 1;
    const entry = { path, records: 0 };
    files.push(entry);
    /** Lines that are no whole record, waiting for an `audit.recovered` record to account for them. */
    const pendingTorn: Line[] = [];
    let headerSeen = false;
    for (const line of linesOf(contents[f]!)) {
      doneBytes += Buffer.byteLength(line.text) + (line.ended ? 1 : 0);
      if (progress !== undefined && line.number % 10_000 === 0) progress(doneBytes, totalBytes);
      if (!headerSeen) {
        headerSeen = true;
        const header = line.ended ? parseHeader(line.text) : null;
        if (header === null) return report({ file, line: 1, reason: 'not an audit file header' });
        if (fileNumber !== null && header.file !== fileNumber + 1)
          return report({
            file,
            line: 1,
            reason: 'files are missing or out of order',
            expected: `file ${fileNumber + 1}`,
            found: `file ${header.file}`,
          });
        if (hash !== null && (header.prev !== hash || header.seq !== seq))
          return report({
            file,
            line: 1,
            reason: 'the file does not continue the chain of the file before it',
            expected: `${hash} (seq ${seq})`,
            found: `${header.prev} (seq ${header.seq})`,
          });
        fileNumber = header.file;
        hash = header.prev;
        seq = header.seq;
        continue;
      }
      const parsed = line.ended ? parseRecord(line.text) : null;
      if (parsed === null) {
        pendingTorn.push(line);
        continue;
      }
      const { record, computedHash } = parsed;
      if (pendingTorn.length > 0 && record.action !== 'audit.recovered')
        return report({ file, line: pendingTorn[0]!.number, reason: 'not a whole audit record' });
      for (const t of pendingTorn.splice(0)) recovered.push({ file, line: t.number });
      if (computedHash !== record.hash)
        return report({
          file,
          line: line.number,
          reason: 'the record was changed: its hash does not match its contents',
          expected: computedHash,
          found: record.hash,
        });
      if (record.prev !== hash)
        return report({
          file,
          line: line.number,
          reason: 'the record does not follow the one before it (a record was removed, inserted or moved)',
          expected: hash ?? '',
          found: record.prev,
        });
      if (record.seq !== seq + 1)
        return report({
          file,
          line: line.number,
          reason: 'sequence number out of order',
          expected: String(seq + 1),
          found: String(record.seq),
        });
      hash = record.hash;
      seq = record.seq;
      records++;
      entry.records++;
    }
    if (!headerSeen) return report({ file, line: 1, reason: 'the file is empty (no header)' });
    if (pendingTorn.length > 0) {
      const first = pendingTorn[0]!;
      if (!lastFile) return report({ file, line: first.number, reason: 'not a whole audit record' });
      torn = {
        file,
        line: first.number,
        bytes: pendingTorn.reduce((n, l) => n + Buffer.byteLength(l.text) + (l.ended ? 1 : 0), 0),
      };
    }
  }
  progress?.(totalBytes, totalBytes);
  return report(null);
}

/** The last `count` whole records of a log, oldest first (no chain check: see verifyAuditLog). */
export function tailAuditLog(target: { dir: string } | { file: string }, count: number): AuditRecord[] {
  const paths = auditFiles(target);
  const found: AuditRecord[] = [];
  for (let f = paths.length - 1; f >= 0 && found.length < count; f--) {
    const records: AuditRecord[] = [];
    for (const line of linesOf(readFileSync(paths[f]!))) {
      const parsed = line.ended ? parseRecord(line.text) : null;
      if (parsed !== null) records.push(parsed.record);
    }
    found.unshift(...records.slice(Math.max(0, records.length - (count - found.length))));
  }
  return found;
}

/** Records of a log after `seq`, oldest first, each with its line as on disk (to copy them on). */
export function auditRecordsAfter(
  target: { dir: string } | { file: string },
  seq: number,
): { record: AuditRecord; line: string }[] {
  const found: { record: AuditRecord; line: string }[] = [];
  for (const path of auditFiles(target)) {
    for (const line of linesOf(readFileSync(path))) {
      const parsed = line.ended ? parseRecord(line.text) : null;
      if (parsed !== null && parsed.record.seq > seq) found.push({ record: parsed.record, line: line.text });
    }
  }
  return found;
}

/** What a chain of records read from elsewhere (the audit topic) holds, and its first broken link. */
export interface AuditChainReport {
  readonly records: number;
  /** The first record's seq and the hash it chains to (match them against the disk log). */
  readonly firstSeq: number | null;
  readonly firstPrev: string | null;
  readonly lastSeq: number | null;
  readonly lastHash: string | null;
  /** `where` names the record (the topic's offset, say). */
  readonly broken: { where: string; reason: string; expected?: string; found?: string } | null;
}

/**
 * Checks a run of record lines (the values of the audit topic, in order): every record's hash over
 * its bytes, every link to the record before, consecutive sequence numbers. The first record is
 * taken as it is: the run may start anywhere in the log (the topic holds what was written since it
 * was configured, less what its retention removed); its seq and prev are reported to be matched
 * against the disk log.
 */
export function verifyAuditChain(lines: Iterable<{ line: string; where: string }>): AuditChainReport {
  let records = 0;
  let firstSeq: number | null = null;
  let firstPrev: string | null = null;
  let seq: number | null = null;
  let hash: string | null = null;
  const report = (broken: AuditChainReport['broken']): AuditChainReport => ({
    records,
    firstSeq,
    firstPrev,
    lastSeq: seq,
    lastHash: hash,
    broken,
  });
  for (const { line, where } of lines) {
    const parsed = parseRecord(line);
    if (parsed === null) return report({ where, reason: 'not a whole audit record' });
    const { record, computedHash } = parsed;
    if (computedHash !== record.hash)
      return report({
        where,
        reason: 'the record was changed: its hash does not match its contents',
        expected: computedHash,
        found: record.hash,
      });
    if (hash !== null && seq !== null) {
      if (record.seq !== seq + 1 && record.seq > seq + 1 && record.prev !== hash)
        return report({
          where,
          reason: `records ${seq + 1}..${record.seq - 1} are missing here (not written to this copy; the disk log holds them)`,
          expected: String(seq + 1),
          found: String(record.seq),
        });
      if (record.prev !== hash)
        return report({
          where,
          reason: 'the record does not follow the one before it (a record was removed, inserted or moved)',
          expected: hash,
          found: record.prev,
        });
      if (record.seq !== seq + 1)
        return report({
          where,
          reason: 'sequence number out of order',
          expected: String(seq + 1),
          found: String(record.seq),
        });
    } else {
      firstSeq = record.seq;
      firstPrev = record.prev;
    }
    hash = record.hash;
    seq = record.seq;
    records++;
  }
  return report(null);
}
