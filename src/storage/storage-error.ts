// File-system failures as the storage layer reports them: disk full (or over quota) is the typed,
// retriable STORAGE_FULL; anything else STORAGE_IO with what was being done.

import { isMemoryStreamerError } from '../common/errors.js';
import { errorOf } from '../protocol/error-codes.js';

export function storageError(error: unknown, during: string): Error {
  // Typed already (a file that could not be reopened: out of descriptors, missing).
  if (isMemoryStreamerError(error)) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return errorOf('STORAGE_FULL', during, { cause: error });
  return errorOf('STORAGE_IO', `${during}: ${(error as Error).message}`, { cause: error });
}
