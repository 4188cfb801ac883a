import { describe, expect, it } from 'vitest';
import {
  describeError,
  ERROR_TABLE,
  ErrorCode,
  errorFromWire,
  errorOf,
} from '../../src/protocol/error-codes.js';

describe('error table', () => {
  it('has unique codes', () => {
    const codes = Object.values(ERROR_TABLE).map((e) => e.code);
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('maps unknown codes to UNKNOWN_SERVER_ERROR without throwing', () => {
    const err = errorFromWire(4242, 'x');
    expect(err.codeName).toBe('UNKNOWN_SERVER_ERROR');
    expect(err.message).toContain('4242');
    expect(describeError(12345).name).toBe('UNKNOWN_SERVER_ERROR');
  });

  it('builds typed errors with code and retriable', () => {
    const err = errorOf('THROTTLED', 'budget 64 MiB');
    expect(err.code).toBe(ErrorCode.THROTTLED);
    expect(err.retriable).toBe(true);
    expect(err.message).toContain('budget 64 MiB');
  });
});
