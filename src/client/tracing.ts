// OpenTelemetry in the client, opt-in: with `tracer` set (connect({ tracer }) or per producer /
// consumer), each send is a PRODUCER span whose W3C trace context travels in the message headers,
// and each delivered message that carries one gets a CONSUMER span in the same trace. Without a
// tracer none of this runs: the hot paths check one field.
//
// Span names and attributes follow OpenTelemetry's messaging conventions:
//   send <topic>     PRODUCER  messaging.system, messaging.destination.name, messaging.batch.message_count
//   receive <topic>  CONSUMER  + messaging.destination.partition.id, messaging.kafka.offset, consumer group

import {
  type Attributes,
  type Context,
  context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import {
  formatTraceparent,
  parseTraceparent,
  TRACEPARENT_HEADER,
  TRACESTATE_HEADER,
} from '../common/trace-context.js';
import type { Message } from './message.js';
import type { HeadersInput, SendInput } from './producer.js';

export const MESSAGING_SYSTEM = 'memorystreamer';

/** Starts the PRODUCER span of one send (or one sendMany call) under the caller's active context. */
export function startSendSpan(tracer: Tracer, topic: string, count: number): Span {
  const attributes: Attributes = {
    'messaging.system': MESSAGING_SYSTEM,
    'messaging.operation.type': 'send',
    'messaging.destination.name': topic,
  };
  if (count > 1) attributes['messaging.batch.message_count'] = count;
  return tracer.startSpan(`send ${topic}`, { kind: SpanKind.PRODUCER, attributes }, context.active());
}

export function endSpan(span: Span, error?: unknown): void {
  if (error !== undefined) {
    span.recordException(error as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
  }
  span.end();
}

/** The input with the span's trace context added to its headers (existing trace headers win). */
export function withTraceHeaders(input: SendInput, span: Span): SendInput {
  const spanContext = span.spanContext();
  if (!trace.isSpanContextValid(spanContext)) return input;
  const headers = headerList(input.headers);
  if (headers.some((h) => h.key === TRACEPARENT_HEADER)) return input;
  headers.push({ key: TRACEPARENT_HEADER, value: formatTraceparent(spanContext) });
  const state = spanContext.traceState?.serialize();
  if (state !== undefined && state.length > 0) headers.push({ key: TRACESTATE_HEADER, value: state });
  return { ...input, headers };
}

function headerList(
  input: HeadersInput | undefined,
): Array<{ key: string; value: string | Uint8Array | null }> {
  if (input === undefined) return [];
  if (Array.isArray(input))
    return [...(input as ReadonlyArray<{ key: string; value: string | Uint8Array | null }>)];
  return Object.entries(input as Record<string, string | Uint8Array | null>).map(([key, value]) => ({
    key,
    value,
  }));
}

/**
 * The trace context a message carries, as an OpenTelemetry Context whose parent is the producer's
 * span: start your processing span in it (`tracer.startSpan('handle', {}, messageTraceContext(m))`)
 * to continue the trace. Returns `parent` unchanged for a message without a valid traceparent.
 */
export function messageTraceContext(
  message: Pick<Message, 'headers'>,
  parent: Context = ROOT_CONTEXT,
): Context {
  let traceparent: string | undefined;
  let tracestate: string | undefined;
  for (const header of message.headers) {
    if (header.key === TRACEPARENT_HEADER && header.value !== null)
      traceparent = header.value.toString('latin1');
    else if (header.key === TRACESTATE_HEADER && header.value !== null)
      tracestate = header.value.toString('latin1');
  }
  if (traceparent === undefined) return parent;
  const remote = parseTraceparent(traceparent, tracestate);
  return remote === null ? parent : trace.setSpanContext(parent, remote);
}

/** Records the delivery of one message as a CONSUMER span, a child of the producer's span. */
export function traceReceive(tracer: Tracer, message: Message, group: string | undefined): void {
  const attributes: Attributes = {
    'messaging.system': MESSAGING_SYSTEM,
    'messaging.operation.type': 'receive',
    'messaging.destination.name': message.topic,
    'messaging.destination.partition.id': String(message.partition),
    'messaging.kafka.offset': Number(message.offset),
  };
  if (group !== undefined) attributes['messaging.consumer.group.name'] = group;
  tracer
    .startSpan(
      `receive ${message.topic}`,
      { kind: SpanKind.CONSUMER, attributes },
      messageTraceContext(message),
    )
    .end();
}
