// Waits for a condition that real processes reach in their own time: `attempt` is tried every
// `intervalMs` until it returns a value (not null, not false); its errors count as "not yet". Fails
// with what it waited for and the last error once `timeoutMs` has passed.
//
//   const leader = await until(async () => (await describe()).leader ?? null);   // a value
//   await until(() => seen.size === 400, { what: 'all 400 read', timeoutMs: 60_000 });  // a condition

import { MemoryStreamerError } from '../../src/common/errors.js';

export interface UntilOptions {
  /** What is awaited, for the error (e.g. "the second member reads"). */
  what?: string;
  /** Default 30 s. */
  timeoutMs?: number;
  /** Default 50 ms. */
  intervalMs?: number;
  /**
   * Why waiting on is pointless (e.g. the process that should get there has exited), or null:
   * checked before each attempt, and a reason fails the wait at once with it.
   */
  abortIf?: () => string | null;
}

export async function until<T>(
  attempt: () => T | null | false | Promise<T | null | false>,
  options: number | UntilOptions = {},
  intervalMs = 50,
): Promise<Exclude<T, false>> {
  const {
    what,
    timeoutMs = 30_000,
    intervalMs: interval = intervalMs,
    abortIf,
  }: UntilOptions = typeof options === 'number' ? { timeoutMs: options } : options;
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    const aborted = abortIf?.() ?? null;
    if (aborted !== null) throw new Error(`${what ?? 'condition'} will not be met: ${aborted}`);
    try {
      const value = await attempt();
      if (value !== null && value !== false) return value as Exclude<T, false>;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(
        `${what ?? 'condition'} not met within ${timeoutMs} ms${last === null ? '' : `: ${String(last)}`}`,
      );
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/**
 * `action` tried again while it fails with a retriable MemoryStreamerError (a cluster still
 * settling: no leader yet, metadata on its way), for up to `timeoutMs`; any other error fails at
 * once.
 */
export function retryWhileRetriable<T>(action: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  return until(async () => {
    try {
      return await action();
    } catch (error) {
      if (error instanceof MemoryStreamerError && error.retriable) return null;
      throw error;
    }
  }, timeoutMs) as Promise<T>;
}
