// How the parts of a consumer wait and retry: which errors a retry can cure, and the backoff
// between attempts (50 ms doubling to 2 s), shared so every loop backs off the same way.

import { MemoryStreamerError } from '../../common/errors.js';

export function isRetriable(error: unknown): error is MemoryStreamerError {
  return error instanceof MemoryStreamerError && error.retriable;
}

export function backoffMs(attempt: number): number {
  return Math.min(2000, 50 * 2 ** attempt);
}

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `attempt` until it succeeds, retrying retriable errors with backoff; a non-retriable error
 * is thrown, and so is the last error once `stopped()` says the caller went away.
 */
export async function retrying<T>(attempt: () => Promise<T>, stopped: () => boolean): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      if (!isRetriable(error) || stopped()) throw error;
      await delay(backoffMs(n));
    }
  }
}
