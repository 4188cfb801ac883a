// Errors cross from actor threads to the orchestrator as plain data and become MemoryStreamerErrors
// again there, so the CLI maps a producer's BROKER_NOT_AVAILABLE to the same exit code (3) as its own.

import { MemoryStreamerError } from '../common/errors.js';
import type { SerializedError } from './protocol.js';

export function serializeError(error: unknown): SerializedError {
  if (error instanceof MemoryStreamerError) {
    return { message: error.message, code: error.code, codeName: error.codeName, retriable: error.retriable };
  }
  return {
    message: error instanceof Error ? error.message : String(error),
    code: null,
    codeName: null,
    retriable: false,
  };
}

export function deserializeError(error: SerializedError, actor: string): Error {
  if (error.code === null || error.codeName === null) return new Error(`${actor}: ${error.message}`);
  // The descriptor's message is the whole text already; no detail is appended.
  return new MemoryStreamerError({
    code: error.code,
    name: error.codeName,
    retriable: error.retriable,
    message: `${actor}: ${error.message}`,
  });
}
