// `consume --from`: what it takes, and what it refuses with a message naming the value and what
// is allowed (a usage error, exit 2), instead of reading from the start or failing inside a request.
import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { parseStartOption } from '../../src/cli/options.js';

describe('--from', () => {
  it('takes earliest, latest, offsets, @epoch-ms and ISO-8601 times', () => {
    expect(parseStartOption('earliest')).toBe('earliest');
    expect(parseStartOption('latest')).toBe('latest');
    expect(parseStartOption('42')).toBe(42n);
    expect(parseStartOption('9223372036854775807')).toBe(2n ** 63n - 1n);
    expect(parseStartOption('@1700000000000')).toEqual({ timestamp: 1_700_000_000_000 });
    expect(parseStartOption('2026-12-05T10:00:00Z')).toEqual({ timestamp: Date.UTC(2026, 11, 5, 10) });
    expect(parseStartOption('2026-12-05')).toEqual({ timestamp: Date.UTC(2026, 11, 5) });
    expect(parseStartOption('2026-12-05T10:00:00.250+01:00')).toEqual({
      timestamp: Date.UTC(2026, 11, 5, 9, 0, 0, 250),
    });
  });

  it.each(['-1', '-5', '1.5', '9223372036854775808', '@99999999999999999', 'yesterday', '12/05/2026', ''])(
    'refuses %j, naming what is allowed',
    (value) => {
      expect(() => parseStartOption(value)).toThrow(InvalidArgumentError);
      expect(() => parseStartOption(value)).toThrow(
        /earliest, latest, an offset, @epoch-ms or an ISO-8601 time/,
      );
    },
  );
});
