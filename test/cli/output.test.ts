import { describe, expect, it } from 'vitest';
import { describeFailure, EXIT, renderFields, renderTable, toJson } from '../../src/cli/output.js';
import { errorOf } from '../../src/protocol/error-codes.js';

describe('cli output', () => {
  it('aligns tables and right-aligns numeric columns', () => {
    const text = renderTable(
      ['name', 'partitions'],
      [
        ['orders', 12],
        ['a', 3],
      ],
    );
    expect(text.split('\n')).toEqual(['NAME    PARTITIONS', 'orders          12', 'a                3']);
  });
  it('renders fields and bigint JSON', () => {
    expect(renderFields({ topic: 'orders', offset: 5n, key: null })).toBe(
      'topic:  orders\noffset: 5\nkey:    -',
    );
    expect(toJson({ offset: 2n ** 63n - 1n }, 0)).toBe('{"offset":"9223372036854775807"}');
  });
  it('maps errors to messages and exit codes', () => {
    const known = describeFailure(errorOf('UNKNOWN_TOPIC', '"x"'));
    expect(known.exitCode).toBe(EXIT.failed);
    expect(known.message).toMatch(/UNKNOWN_TOPIC \(300\)/);
    expect(describeFailure(errorOf('CONNECTION_CLOSED')).exitCode).toBe(EXIT.unavailable);
    expect(describeFailure(new Error('boom')).message).toBe('error: boom');
  });
});
