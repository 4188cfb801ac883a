// W3C Trace Context in message headers (https://www.w3.org/TR/trace-context/): the producer writes
// `traceparent` (and `tracestate` when there is one) into each message it sends while tracing, the
// broker and consumers read it back to continue the same trace. Only version 00 is written; later
// versions are read by their first four fields, as the specification asks.
//
//   traceparent: 00-<trace-id: 32 hex>-<parent-id: 16 hex>-<flags: 2 hex>
//                   e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01

import { type SpanContext, TraceFlags } from '@opentelemetry/api';

export const TRACEPARENT_HEADER = 'traceparent';
export const TRACESTATE_HEADER = 'tracestate';

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ALL_ZERO_TRACE = '0'.repeat(32);
const ALL_ZERO_SPAN = '0'.repeat(16);

export function formatTraceparent(context: SpanContext): string {
  const flags = (context.traceFlags & 0xff).toString(16).padStart(2, '0');
  return `00-${context.traceId}-${context.spanId}-${flags}`;
}

/** The remote span context a traceparent names, or null when it is malformed or invalid. */
export function parseTraceparent(value: string, tracestate?: string): SpanContext | null {
  const match = TRACEPARENT.exec(value.trim());
  if (match === null) return null;
  const [, version, traceId, spanId, flags, rest] = match;
  // Version ff is forbidden; version 00 has exactly four fields.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return null;
  if (traceId === ALL_ZERO_TRACE || spanId === ALL_ZERO_SPAN) return null;
  return {
    traceId: traceId!,
    spanId: spanId!,
    traceFlags: Number.parseInt(flags!, 16) & TraceFlags.SAMPLED,
    isRemote: true,
    ...(tracestate !== undefined ? { traceState: parseTraceState(tracestate) } : {}),
  };
}

/** A tracestate as its list of `key=value` entries; set/unset return new states, per the API. */
function parseTraceState(raw: string): SpanContext['traceState'] {
  const entries = raw
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
  return traceState(entries);
}

function traceState(entries: string[]): NonNullable<SpanContext['traceState']> {
  const without = (key: string) => entries.filter((e) => !e.startsWith(`${key}=`));
  return {
    get: (key) => entries.find((e) => e.startsWith(`${key}=`))?.slice(key.length + 1),
    // A new or updated entry moves to the front (W3C trace context, "mutating the tracestate").
    set: (key, value) => traceState([`${key}=${value}`, ...without(key)]),
    unset: (key) => traceState(without(key)),
    serialize: () => entries.join(','),
  };
}
