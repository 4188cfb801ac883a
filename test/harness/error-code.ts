// What a request ended with, for tests that compare error codes: null when it succeeded, the
// MemoryStreamerError's code name when it failed with one, the error's text otherwise.
import { MemoryStreamerError } from '../../src/common/errors.js';

export async function errorCodeOf(action: Promise<unknown>): Promise<string | null> {
  try {
    await action;
    return null;
  } catch (error) {
    return error instanceof MemoryStreamerError ? error.codeName : String(error);
  }
}
