import { TraceFlags } from '@opentelemetry/api';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatTraceparent, parseTraceparent } from '../../src/common/trace-context.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

describe('W3C traceparent', () => {
  it('reads the example of the specification and writes it back', () => {
    const context = parseTraceparent(`00-${TRACE}-${SPAN}-01`)!;
    expect(context).toMatchObject({
      traceId: TRACE,
      spanId: SPAN,
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
    });
    expect(formatTraceparent(context)).toBe(`00-${TRACE}-${SPAN}-01`);
  });

  it('refuses malformed and invalid values', () => {
    for (const bad of [
      '',
      'garbage',
      `00-${TRACE}-${SPAN}`,
      `00-${TRACE.toUpperCase()}-${SPAN}-01`,
      `00-${'0'.repeat(32)}-${SPAN}-01`,
      `00-${TRACE}-${'0'.repeat(16)}-01`,
      `ff-${TRACE}-${SPAN}-01`,
      `00-${TRACE}-${SPAN}-01-extra`,
      `00-${TRACE.slice(1)}-${SPAN}-01`,
    ])
      expect(parseTraceparent(bad), bad).toBeNull();
  });

  it('reads a later version by its first four fields and keeps only the sampled flag', () => {
    expect(parseTraceparent(`cc-${TRACE}-${SPAN}-ff-whatever`)).toMatchObject({
      traceId: TRACE,
      traceFlags: TraceFlags.SAMPLED,
    });
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-00`)!.traceFlags).toBe(TraceFlags.NONE);
  });

  it('keeps tracestate entries; set moves an entry to the front', () => {
    const state = parseTraceparent(`00-${TRACE}-${SPAN}-01`, 'vendor=a, other=b')!.traceState!;
    expect(state.get('other')).toBe('b');
    expect(state.serialize()).toBe('vendor=a,other=b');
    expect(state.set('other', 'c').serialize()).toBe('other=c,vendor=a');
    expect(state.unset('vendor').serialize()).toBe('other=b');
    expect(state.serialize()).toBe('vendor=a,other=b');
  });

  it('round-trips any valid context and never throws on random text', () => {
    const hex = (length: number) =>
      fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: length, maxLength: length });
    fc.assert(
      fc.property(hex(32), hex(16), fc.boolean(), (traceId, spanId, sampled) => {
        fc.pre(/[1-9a-f]/.test(traceId) && /[1-9a-f]/.test(spanId));
        const flags = sampled ? TraceFlags.SAMPLED : TraceFlags.NONE;
        const parsed = parseTraceparent(formatTraceparent({ traceId, spanId, traceFlags: flags }))!;
        expect(parsed).toMatchObject({ traceId, spanId, traceFlags: flags });
      }),
    );
    fc.assert(fc.property(fc.string(), (text) => void parseTraceparent(text)));
  });
});
