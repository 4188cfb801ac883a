// The open-files limit, split before storage opens (docs/operations.md, "File descriptors"): the
// soft limit is raised to the hard one (a data directory with many partitions needs it), storage
// gets an open-file cap of its own (segments are opened on use and idle ones closed under it,
// however many partitions there are), and client connections what is left.

import type { BrokerLogger } from '../metrics/logger.js';
import { configureOpenFiles, MIN_MAX_OPEN_FILES } from '../storage/open-files.js';
import {
  countOpenFds,
  type FdBudget,
  planFdBudget,
  type RaiseResult,
  raiseFdLimit,
  readFdLimits,
  storageCapFor,
} from './fd-budget.js';
import type { ServerLimits } from './server/network-server.js';
import { DEFAULT_SERVER_LIMITS } from './server/server-limits.js';

export interface StartupFileBudgetOptions {
  /** Whether the node listens on TCP (without a listener storage may use the connections' share). */
  listens: boolean;
  /** Whether the admin HTTP endpoint runs (it keeps a reserve of its own). */
  admin: boolean;
  limits?: Partial<ServerLimits>;
  raiseFileLimit?: boolean;
  maxOpenFiles?: number;
}

function planFor(
  options: StartupFileBudgetOptions,
  raised: RaiseResult | null,
  logger: BrokerLogger,
): FdBudget | null {
  const limits = raised?.after ?? readFdLimits();
  const open = countOpenFds();
  if (limits === null || open === null) {
    logger.warn({}, 'the open-files limit is unknown (no /proc): no file-descriptor budget is applied');
    return null;
  }
  const budget = planFdBudget({
    limit: limits.soft,
    openNow: open.total,
    storageOpen: 0,
    admin: options.admin,
    // Without a TCP listener there are no client connections: storage may use their share.
    configuredMaxConnections: options.listens
      ? (options.limits?.maxConnections ?? DEFAULT_SERVER_LIMITS.maxConnections)
      : 0,
    storageCap: options.maxOpenFiles ?? storageCapFor(limits.soft),
  });
  const fields = {
    limit: budget.limit,
    hardLimit: limits.hard,
    raisedFrom:
      raised !== null && raised.before !== null && raised.before.soft !== limits.soft
        ? raised.before.soft
        : null,
    openAtStart: open.total,
    storageOpenFiles: options.maxOpenFiles ?? storageCapFor(limits.soft),
    adminReserve: budget.adminReserve,
    processReserve: budget.processReserve,
    maxConnections: budget.maxConnections,
    configuredMaxConnections: budget.configuredMaxConnections,
  };
  if (raised?.problem)
    logger.warn({ ...fields, reason: raised.problem }, 'the open-files limit could not be raised');
  if (budget.maxConnections < budget.configuredMaxConnections) {
    logger.warn(
      fields,
      'file descriptors: client connections capped below server.max_connections to fit the open-files limit (raise ulimit -n / LimitNOFILE= for more)',
    );
  } else logger.info(fields, 'file descriptors budgeted');
  return budget;
}

/**
 * Raises the limit (unless `raiseFileLimit` is false), plans the budget and sets storage's
 * open-file cap. Null when the limit cannot be read (no /proc): then nothing is capped.
 */
export async function applyStartupFileBudget(
  options: StartupFileBudgetOptions,
  logger: BrokerLogger,
): Promise<FdBudget | null> {
  const raised = options.raiseFileLimit === false ? null : raiseFdLimit();
  const budget = planFor(options, raised, logger);
  // Process-wide, like the limit it comes from: the last broker started in a process sets it.
  const maxOpenFiles = options.maxOpenFiles ?? (budget !== null ? storageCapFor(budget.limit) : null);
  if (maxOpenFiles !== null)
    await configureOpenFiles({ maxOpenFiles: Math.max(MIN_MAX_OPEN_FILES, maxOpenFiles) });
  return budget;
}
