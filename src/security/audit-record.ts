// One audit record and one audit file header: their bytes on disk and the hash that chains them.
// Sans-IO: the log (audit-log.ts) writes these lines, the verifier (audit-verify.ts) reads them.
//
// A file is JSON lines, UTF-8, each ended by "\n":
//
//   line 1, the header:
//     {"memorystreamer_audit":1,"file":<n>,"created":"<ISO time>","seq":<n>,"prev":"<64 hex>"}
//     `seq` is that of the last record before this file (0 for file 1); `prev` of file 1 is the genesis value (32 random bytes); of file n > 1, the hash of the last
//     record of file n-1 (the chain runs on across rotations).
//   every other line, a record, keys always in this order:
//     {"seq":<n>,"time":"<ISO time>","principal":<string|null>,"tenant":<string|null>,
//      "source":<string|null>,"action":"<string>","resource":<string|null>,
//      "result":"success"|"failure"|"denied","detail":<object|null>,"prev":"<64 hex>",
//      "hash":"<64 hex>"}
//
// The canonical bytes of a record are its line without the `,"hash":"<64 hex>"` before the closing
// brace (so: every byte of the record but its own hash). Its hash is
//   SHA-256( prev as 32 raw bytes ‖ canonical bytes )
// where prev is the hash of the record before (or the file header's `prev` for a file's first
// record). Changing, removing, inserting or reordering a record breaks the next link.

import { createHash } from 'node:crypto';

export const AUDIT_FORMAT_VERSION = 1;

export type AuditResult = 'success' | 'failure' | 'denied';

/** What happened, as the caller tells it (the log adds seq, time, prev and hash). */
export interface AuditEvent {
  /** `User:<name>`, or null when nobody authenticated (an open broker, a failed login). */
  readonly principal: string | null;
  /** The tenant of the principal; null until tenants exist. */
  readonly tenant?: string | null;
  /** `address:port` of the client, `cli` for offline commands, null when not known. */
  readonly source: string | null;
  /** `auth.login`, `topic.create`, `user.add`, `config.reload`, … (see docs/security.md). */
  readonly action: string;
  /** `topic:orders`, `user:alice`, `cluster`, … or null. */
  readonly resource: string | null;
  readonly result: AuditResult;
  /** Anything else worth keeping (mechanism, reason, changed keys); small. */
  readonly detail?: Readonly<Record<string, unknown>> | null;
}

export interface AuditRecord extends Required<AuditEvent> {
  readonly seq: number;
  readonly time: string;
  readonly prev: string;
  readonly hash: string;
}

export interface AuditHeader {
  readonly file: number;
  readonly created: string;
  /** seq of the last record before this file (0 in file 1). */
  readonly seq: number;
  readonly prev: string;
}

const HEX64 = /^[0-9a-f]{64}$/;
/** `,"hash":"` + 64 hex + `"}`. */
const HASH_SUFFIX_LENGTH = ',"hash":"'.length + 64 + '"}'.length;
const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/;

/** Bytes of `detail` kept at most: a record stays one short line. */
const MAX_DETAIL_CHARS = 2048;

export function chainHash(prev: string, canonical: string): string {
  return createHash('sha256').update(Buffer.from(prev, 'hex')).update(canonical, 'utf8').digest('hex');
}

function boundedDetail(detail: Readonly<Record<string, unknown>> | null | undefined): unknown {
  if (detail === undefined || detail === null) return null;
  const text = JSON.stringify(detail);
  return text.length <= MAX_DETAIL_CHARS ? detail : { truncated: text.slice(0, MAX_DETAIL_CHARS) };
}

/** The record's line (without "\n") and its hash. */
export function encodeRecord(
  event: AuditEvent,
  seq: number,
  time: Date,
  prev: string,
): { line: string; hash: string } {
  const body = JSON.stringify({
    seq,
    time: time.toISOString(),
    principal: event.principal,
    tenant: event.tenant ?? null,
    source: event.source,
    action: event.action,
    resource: event.resource,
    result: event.result,
    detail: boundedDetail(event.detail),
    prev,
  });
  const hash = chainHash(prev, body);
  return { line: `${body.slice(0, -1)},"hash":"${hash}"}`, hash };
}

export function encodeHeader(header: AuditHeader): string {
  return JSON.stringify({
    memorystreamer_audit: AUDIT_FORMAT_VERSION,
    file: header.file,
    created: header.created,
    seq: header.seq,
    prev: header.prev,
  });
}

/** A header line, or null when the line is not one. */
export function parseHeader(line: string): AuditHeader | null {
  try {
    const value = JSON.parse(line) as Record<string, unknown>;
    if (
      value.memorystreamer_audit !== AUDIT_FORMAT_VERSION ||
      typeof value.file !== 'number' ||
      !Number.isInteger(value.file) ||
      value.file < 1 ||
      typeof value.created !== 'string' ||
      typeof value.seq !== 'number' ||
      typeof value.prev !== 'string' ||
      !HEX64.test(value.prev)
    )
      return null;
    return { file: value.file, created: value.created, seq: value.seq, prev: value.prev };
  } catch {
    return null;
  }
}

/** What a record line says: its fields, its stored hash and its canonical bytes' hash. */
export interface ParsedRecord {
  readonly record: AuditRecord;
  /** The hash of its canonical bytes over its own `prev` (equal to record.hash when untouched). */
  readonly computedHash: string;
}

/** A record line, or null when the line is not a whole record (torn, or not a record at all). */
export function parseRecord(line: string): ParsedRecord | null {
  const match = HASH_SUFFIX.exec(line);
  if (match === null) return null;
  const canonical = `${line.slice(0, line.length - HASH_SUFFIX_LENGTH)}}`;
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(canonical) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (
    typeof value.seq !== 'number' ||
    typeof value.time !== 'string' ||
    typeof value.action !== 'string' ||
    typeof value.prev !== 'string' ||
    !HEX64.test(value.prev) ||
    (value.result !== 'success' && value.result !== 'failure' && value.result !== 'denied')
  )
    return null;
  const nullableString = (v: unknown) => (typeof v === 'string' ? v : null);
  const record: AuditRecord = {
    seq: value.seq,
    time: value.time,
    principal: nullableString(value.principal),
    tenant: nullableString(value.tenant),
    source: nullableString(value.source),
    action: value.action,
    resource: nullableString(value.resource),
    result: value.result,
    detail:
      value.detail !== null && typeof value.detail === 'object'
        ? (value.detail as Record<string, unknown>)
        : null,
    prev: value.prev,
    hash: match[1]!,
  };
  return { record, computedHash: chainHash(value.prev, canonical) };
}
