// The audit log on disk and its verifier: records are chained, an intact log verifies, and every
// kind of tampering (a changed byte, a removed record, two records swapped, a whole file
// missing) is found at the line where it is; a torn last record is reported as torn, and the next
// append closes it off and continues the chain; rotation keeps the chain across files; two
// writers (a broker and an offline command) append to one chain.

import {
  appendFileSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AUDIT_FILE, AuditLog } from '../../src/security/audit-log.js';
import type { AuditEvent } from '../../src/security/audit-record.js';
import { chainHash, parseRecord } from '../../src/security/audit-record.js';
import { tailAuditLog, verifyAuditLog } from '../../src/security/audit-verify.js';
import { tempDir } from '../harness/temp-dir.js';

function event(i: number): AuditEvent {
  return {
    principal: `User:u${i}`,
    source: '127.0.0.1:5000',
    action: 'topic.create',
    resource: `topic:t${i}`,
    result: 'success',
    detail: { partitions: i },
  };
}

async function logWith(count: number, options: { maxFileBytes?: number } = {}) {
  const dir = await tempDir('ms-audit-');
  const log = AuditLog.open({ dir, fsyncIntervalMs: 0, ...options });
  for (let i = 1; i <= count; i++) log.append(event(i));
  log.close();
  return { dir, path: join(dir, AUDIT_FILE) };
}

function lines(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n');
}

describe('audit log', () => {
  it('writes a header and one chained JSON line per record', async () => {
    const { dir, path } = await logWith(3);
    const text = lines(path);
    expect(text).toHaveLength(5); // header, 3 records, "" after the last "\n"
    const header = JSON.parse(text[0]!) as { prev: string; file: number; seq: number };
    expect(header.file).toBe(1);
    let prev = header.prev;
    for (let i = 1; i <= 3; i++) {
      const parsed = parseRecord(text[i]!)!;
      expect(parsed.record).toMatchObject({
        seq: i,
        principal: `User:u${i}`,
        tenant: null,
        action: 'topic.create',
        result: 'success',
        prev,
      });
      const canonical = `${text[i]!.replace(/,"hash":"[0-9a-f]{64}"\}$/, '')}}`;
      expect(parsed.record.hash).toBe(chainHash(prev, canonical));
      prev = parsed.record.hash;
    }
    const report = verifyAuditLog({ dir });
    expect(report).toMatchObject({ records: 3, lastSeq: 3, lastHash: prev, broken: null, torn: null });
    expect(tailAuditLog({ dir }, 2).map((r) => r.seq)).toEqual([2, 3]);
  });

  it('finds a changed byte, naming the line and both hashes', async () => {
    const { dir, path } = await logWith(4);
    const text = lines(path);
    text[2] = text[2]!.replace('"topic:t2"', '"topic:t9"');
    writeFileSync(path, text.join('\n'));
    const { broken, records } = verifyAuditLog({ dir });
    expect(records).toBe(1);
    expect(broken).toMatchObject({ file: AUDIT_FILE, line: 3, reason: expect.stringMatching(/changed/) });
    expect(broken!.expected).not.toBe(broken!.found);
  });

  it('finds a record changed together with its own hash at the next line', async () => {
    const { dir, path } = await logWith(4);
    const text = lines(path);
    const parsed = parseRecord(text[2]!)!;
    const body = text[2]!.replace(/,"hash":"[0-9a-f]{64}"\}$/, '').replace('"User:u2"', '"User:zz"');
    text[2] = `${body},"hash":"${chainHash(parsed.record.prev, `${body}}`)}"}`;
    writeFileSync(path, text.join('\n'));
    expect(verifyAuditLog({ dir }).broken).toMatchObject({
      line: 4,
      reason: expect.stringMatching(/follow/),
    });
  });

  it('finds a removed record and two records swapped', async () => {
    const removed = await logWith(5);
    const text = lines(removed.path);
    text.splice(3, 1);
    writeFileSync(removed.path, text.join('\n'));
    expect(verifyAuditLog({ dir: removed.dir }).broken).toMatchObject({
      line: 4,
      reason: expect.stringMatching(/removed, inserted or moved/),
    });

    const swapped = await logWith(5);
    const other = lines(swapped.path);
    [other[2], other[3]] = [other[3]!, other[2]!];
    writeFileSync(swapped.path, other.join('\n'));
    expect(verifyAuditLog({ dir: swapped.dir }).broken).toMatchObject({ line: 3 });
  });

  it('reports a torn last record as torn; the next append closes it off and continues the chain', async () => {
    const { dir, path } = await logWith(3);
    const size = readFileSync(path).length;
    truncateSync(path, size - 20);
    const torn = verifyAuditLog({ dir });
    expect(torn.broken).toBeNull();
    expect(torn.torn).toMatchObject({ file: AUDIT_FILE, line: 4 });
    expect(torn.records).toBe(2);

    const log = AuditLog.open({ dir, fsyncIntervalMs: 0 });
    log.append(event(4));
    log.close();
    const after = verifyAuditLog({ dir });
    expect(after).toMatchObject({ broken: null, torn: null, records: 4, recovered: [{ line: 4 }] });
    const records = tailAuditLog({ dir }, 2);
    expect(records.map((r) => [r.seq, r.action])).toEqual([
      [3, 'audit.recovered'],
      [4, 'topic.create'],
    ]);
  });

  it('refuses a torn line that no recovery record accounts for', async () => {
    const { dir, path } = await logWith(3);
    const text = lines(path);
    text[2] = text[2]!.slice(0, 30);
    writeFileSync(path, text.join('\n'));
    expect(verifyAuditLog({ dir }).broken).toMatchObject({ line: 3, reason: 'not a whole audit record' });
  });

  it('rotates by size and keeps the chain across files; a missing file breaks it', async () => {
    const { dir } = await logWith(40, { maxFileBytes: 1500 });
    const files = readdirSync(dir).filter((f) => f.startsWith('audit.log'));
    expect(files.length).toBeGreaterThan(3);
    const report = verifyAuditLog({ dir });
    expect(report).toMatchObject({ records: 40, lastSeq: 40, broken: null });
    expect(tailAuditLog({ dir }, 40).map((r) => r.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    rmSync(join(dir, 'audit.log.2'));
    expect(verifyAuditLog({ dir }).broken).toMatchObject({ file: 'audit.log.3', line: 1 });
  });

  it('keeps one chain with two writers appending in turn', async () => {
    const dir = await tempDir('ms-audit-two-');
    const broker = AuditLog.open({ dir, fsyncIntervalMs: 0 });
    const offline = AuditLog.open({ dir, fsyncIntervalMs: 0 });
    for (let i = 1; i <= 6; i++) (i % 2 === 0 ? broker : offline).append(event(i));
    broker.close();
    offline.close();
    expect(verifyAuditLog({ dir })).toMatchObject({ records: 6, broken: null });
  });

  it('recovers from a stale lock left by a dead writer', async () => {
    const dir = await tempDir('ms-audit-lock-');
    const log = AuditLog.open({ dir, fsyncIntervalMs: 0 });
    appendFileSync(join(dir, 'audit.lock'), '');
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(dir, 'audit.lock'), old, old);
    log.append(event(1));
    log.close();
    expect(verifyAuditLog({ dir }).records).toBe(1);
  });
});
