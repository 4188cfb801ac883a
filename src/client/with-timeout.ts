// Bounds a promise in time with a typed, retriable REQUEST_TIMEOUT, and clears its timer either way.
import { errorOf } from '../protocol/error-codes.js';

export function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(errorOf('REQUEST_TIMEOUT', `${what} after ${timeoutMs} ms`)),
      timeoutMs,
    );
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
