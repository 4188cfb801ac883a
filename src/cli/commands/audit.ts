// `memorystreamer audit verify|tail`: checks the hash chain of a broker's audit log and reads its
// latest records, from the files (no broker needed; safe while the broker appends). Also the
// [audit] settings turned into the broker node's audit options (auditFrom).

import { hostname, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../../broker/config/load-config.js';
import { errorOf } from '../../protocol/error-codes.js';
import { AUDIT_FILE, AuditLog } from '../../security/audit-log.js';
import type { AuditEvent, AuditRecord } from '../../security/audit-record.js';
import {
  type AuditVerifyReport,
  tailAuditLog,
  verifyAuditChain,
  verifyAuditLog,
} from '../../security/audit-verify.js';
import type { CliContext } from '../context.js';
import { parseIntegerOption } from '../options.js';
import { renderFields, renderTable } from '../output.js';

interface TargetFlags {
  dataDir?: string;
  dir?: string;
  file?: string;
  config?: string;
}

/** The log to read: --file, --dir, or the audit directory of --data-dir / --config / the defaults. */
async function targetOf(
  flags: TargetFlags,
  context: CliContext,
): Promise<{ dir: string } | { file: string }> {
  const given = [flags.file, flags.dir, flags.dataDir].filter((f) => f !== undefined).length;
  if (given > 1) throw errorOf('INVALID_CONFIG', 'give at most one of --file, --dir and --data-dir');
  if (flags.file !== undefined) return { file: resolve(flags.file) };
  if (flags.dir !== undefined) return { dir: resolve(flags.dir) };
  const config = await loadConfig({ file: flags.config ?? null, env: context.env });
  const dir = config.values['audit.dir'] as string;
  if (dir !== '' && flags.dataDir === undefined) return { dir: resolve(dir) };
  return { dir: resolve(flags.dataDir ?? (config.values['storage.data_dir'] as string), 'audit') };
}

function withTarget(command: Command): Command {
  return command
    .option('--data-dir <dir>', 'the audit log of this data directory (<dir>/audit)')
    .option('--dir <dir>', 'the audit log in this directory (audit.dir)')
    .option('--file <file>', `one file of a log (${AUDIT_FILE} or a rotated ${AUDIT_FILE}.<n>)`)
    .option('--config <file>', 'the audit log named by this broker configuration');
}

function where(target: { dir: string } | { file: string }): string {
  return 'file' in target ? target.file : target.dir;
}

function humanReport(target: { dir: string } | { file: string }, report: AuditVerifyReport): string {
  const fields: Record<string, string | number> = {
    'audit log': where(target),
    chain: 'intact',
    files: report.files.length,
    'records checked': report.records,
    'last record': report.lastHash === null ? 'none' : `seq ${report.lastSeq}, hash ${report.lastHash}`,
  };
  if (report.recovered.length > 0)
    fields['torn records closed off'] = report.recovered.map((r) => `${r.file} line ${r.line}`).join(', ');
  if (report.torn !== null)
    fields['torn last record'] =
      `${report.torn.file} line ${report.torn.line} (${report.torn.bytes} bytes): an interrupted write, not tampering; the broker continues the chain after it`;
  return renderFields(fields);
}

/** Progress on standard error for a large log: redrawn on a terminal, a line every 2 s elsewhere. */
function progressReporter(context: CliContext): (done: number, total: number) => void {
  let last = Date.now();
  return (done, total) => {
    const text = `verifying ${(done / 2 ** 20).toFixed(1)}/${(total / 2 ** 20).toFixed(1)} MiB`;
    if (context.terminal !== null) context.terminal.write(`\r${text}${done === total ? '\n' : ''}`);
    else if (!context.json && Date.now() - last >= 2000) {
      last = Date.now();
      context.err(text);
    }
  };
}

function recordRow(r: AuditRecord): (string | number)[] {
  return [
    r.seq,
    r.time,
    r.result,
    r.action,
    r.principal ?? '-',
    r.source ?? '-',
    r.resource ?? '-',
    r.detail === null ? '' : JSON.stringify(r.detail),
  ];
}

/** Reads partition 0 of an audit topic from its start to its end and checks the chain of its records. */
async function verifyTopic(topic: string, context: CliContext): Promise<void> {
  const client = await context.connect();
  const lines: { line: string; where: string }[] = [];
  try {
    const end = await client.admin.offsetOf(topic, 0, 'latest');
    if (end > 0n) {
      const consumer = client.consumer({ topics: [topic], partitions: [0], from: 'earliest' });
      try {
        for await (const message of consumer) {
          lines.push({
            line: message.value?.toString('utf8') ?? '',
            where: `${topic}/0 offset ${message.offset}`,
          });
          if (message.offset >= end - 1n) break;
        }
      } finally {
        await consumer.close();
      }
    }
  } finally {
    await client.close();
  }
  const report = verifyAuditChain(lines);
  const { broken } = report;
  if (broken !== null)
    throw errorOf(
      'AUDIT_CHAIN_BROKEN',
      `${broken.where}: ${broken.reason}${broken.expected !== undefined ? `; expected ${broken.expected}, found ${broken.found}` : ''} (${report.records} records checked before it)`,
    );
  context.print(
    { topic, intact: true, ...report },
    renderFields({
      'audit topic': topic,
      chain: 'intact',
      'records checked': report.records,
      'first record':
        report.firstSeq === null ? 'none' : `seq ${report.firstSeq}, chained to ${report.firstPrev}`,
      'last record': report.lastHash === null ? 'none' : `seq ${report.lastSeq}, hash ${report.lastHash}`,
    }),
  );
}

export function registerAudit(program: Command, context: CliContext): void {
  const audit = program
    .command('audit')
    .description('check and read the hash-chained audit log of a broker (docs/security.md#audit-log)');

  withTarget(audit.command('verify'))
    .description('check the hash chain of every record; exits 1 naming the first broken link')
    .option(
      '--topic <topic>',
      'check the records of this audit topic instead (audit.topic, e.g. __audit), read from the broker',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  memorystreamer audit verify --data-dir ./data\n  memorystreamer audit verify --file ./data/audit/audit.log.3 --json\n  memorystreamer --user admin audit verify --topic __audit',
    )
    .action(async (flags: TargetFlags & { topic?: string }) => {
      if (flags.topic !== undefined) {
        if (flags.file !== undefined || flags.dir !== undefined || flags.dataDir !== undefined)
          throw errorOf(
            'INVALID_CONFIG',
            '--topic reads the broker; it takes no --file, --dir or --data-dir',
          );
        await verifyTopic(flags.topic, context);
        return;
      }
      const target = await targetOf(flags, context);
      const report = verifyAuditLog(target, progressReporter(context));
      const { broken } = report;
      if (broken !== null)
        throw errorOf(
          'AUDIT_CHAIN_BROKEN',
          `${broken.file} line ${broken.line}: ${broken.reason}${broken.expected !== undefined ? `; expected ${broken.expected}, found ${broken.found}` : ''} (${report.records} records checked before it, in ${where(target)})`,
        );
      context.print({ path: where(target), intact: true, ...report }, humanReport(target, report));
    });

  withTarget(audit.command('tail'))
    .description('the latest records, oldest first')
    .option('-n, --lines <n>', 'how many records', '20')
    .action(async (flags: TargetFlags & { lines: string }) => {
      const count = parseIntegerOption('--lines', flags.lines, 1, 1_000_000);
      const records = tailAuditLog(await targetOf(flags, context), count);
      context.print(
        records,
        records.length === 0
          ? 'no records'
          : renderTable(
              ['seq', 'time', 'result', 'action', 'principal', 'source', 'resource', 'detail'],
              records.map(recordRow),
            ),
      );
    });
}

/**
 * Runs an offline user change (`memorystreamer user … --data-dir`) and records it, done or refused,
 * in the audit log of that data directory (unless audit.enabled = false), beside a running broker
 * too: the log takes its lock. The principal is null (no broker authenticated anyone); the source
 * names the command, the OS user and the host.
 */
export async function auditedOfflineChange(
  target: { dataDir?: string; config?: string },
  context: CliContext,
  dataDir: string,
  change: { action: string; name: string },
  run: () => Promise<void>,
): Promise<void> {
  const config = await loadConfig({ file: target.config ?? null, env: context.env });
  const configured = config.values['audit.dir'] as string;
  const log =
    config.values['audit.enabled'] === 'false'
      ? null
      : AuditLog.open({
          dir:
            configured !== '' && target.dataDir === undefined ? resolve(configured) : join(dataDir, 'audit'),
          fsyncIntervalMs: 0,
        });
  const event = (error?: { codeName?: string; message?: string }): AuditEvent => ({
    principal: null,
    source: `cli:${userInfo().username}@${hostname()}`,
    action: `user.${change.action}`,
    resource: `user:${change.name}`,
    result: error === undefined ? 'success' : 'failure',
    detail: {
      offline: true,
      ...(error !== undefined ? { error: error.codeName ?? 'UNKNOWN', message: error.message ?? '' } : {}),
    },
  });
  try {
    await run();
    log?.append(event());
  } catch (error) {
    log?.append(event(error as { codeName?: string; message?: string }));
    throw error;
  } finally {
    log?.close();
  }
}
