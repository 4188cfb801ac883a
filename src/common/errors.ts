// The one error class every layer throws. It carries the numeric wire code, its symbolic name, and
// whether a retry can succeed; retry logic reads `retriable`, never the message text.
// The table of codes lives in src/protocol/error-codes.ts; this file knows nothing of it.

export interface ErrorDescriptor {
  readonly code: number;
  readonly name: string;
  readonly retriable: boolean;
  readonly message: string;
}

export class MemoryStreamerError extends Error {
  readonly code: number;
  readonly codeName: string;
  readonly retriable: boolean;

  constructor(descriptor: ErrorDescriptor, detail?: string, options?: { cause?: unknown }) {
    super(detail ? `${descriptor.message}: ${detail}` : descriptor.message, options);
    this.name = 'MemoryStreamerError';
    this.code = descriptor.code;
    this.codeName = descriptor.name;
    this.retriable = descriptor.retriable;
  }
}

export function isMemoryStreamerError(value: unknown): value is MemoryStreamerError {
  return value instanceof MemoryStreamerError;
}
