// Strict parsing of option values: a wrong value names the option, the value and what is allowed.
import { InvalidArgumentError } from 'commander';
import type { Acks } from '../protocol/commands/data-types.js';

export function parseIntegerOption(name: string, value: string, min: number, max: number): number {
  const number = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(number) || number < min || number > max) {
    throw new InvalidArgumentError(`${name} ${JSON.stringify(value)}: an integer from ${min} to ${max}`);
  }
  return number;
}

export function parseChoice<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`${name} ${JSON.stringify(value)}: one of ${allowed.join(', ')}`);
  }
  return value as T;
}

/** `--acks`: 0 (do not wait), 1 (the leader wrote it) or all (every in-sync replica did). */
export function parseAcks(name: string, value: string): Acks {
  const acks = parseChoice(name, value, ['0', '1', 'all'] as const);
  return acks === 'all' ? 'all' : acks === '1' ? 1 : 0;
}

const MAX_OFFSET = 2n ** 63n - 1n;
/** An ISO-8601 date, or date and time (with seconds, fractions and a zone optional). */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * earliest | latest | an offset (0 to 2^63 − 1) | epoch milliseconds prefixed with @ | an ISO-8601
 * time. Anything else is refused, naming what is allowed: `Date.parse` alone takes `-1` and `1.5`
 * for dates, which would read from the start without a word.
 */
export function parseStartOption(value: string): 'earliest' | 'latest' | bigint | { timestamp: number } {
  if (value === 'earliest' || value === 'latest') return value;
  const refuse = (what: string) =>
    new InvalidArgumentError(
      `--from ${JSON.stringify(value)}: ${what}; earliest, latest, an offset, @epoch-ms or an ISO-8601 time`,
    );
  if (/^\d+$/.test(value)) {
    const offset = BigInt(value);
    if (offset > MAX_OFFSET) throw refuse(`an offset is at most ${MAX_OFFSET}`);
    return offset;
  }
  if (/^@\d+$/.test(value)) {
    const timestamp = Number(value.slice(1));
    if (!Number.isSafeInteger(timestamp))
      throw refuse(`epoch milliseconds are at most ${Number.MAX_SAFE_INTEGER}`);
    return { timestamp };
  }
  const time = ISO_TIME.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(time)) throw refuse('not one of these');
  return { timestamp: time };
}
