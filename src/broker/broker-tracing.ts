// Spans the broker makes when it has a tracer: one SERVER span per traced request (produce, fetch,
// the group operations), and one per push delivery to a subscriber. A produce span continues the
// trace of the first message in its batch (its `traceparent` header) and links the others, so a
// trace runs producer → broker → consumer. Without a tracer nothing here runs.

import {
  type Attributes,
  type Link,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { parseTraceparent, TRACEPARENT_HEADER } from '../common/trace-context.js';
import { type InflateLimits, iterateRecords, splitBatches } from '../protocol/record-batch.js';
import { BATCH_OFFSETS, COMPRESSION_CODEC_MASK } from '../protocol/record-batch-layout.js';

/** Operations that get a span; the others (metadata, admin) would only add noise. */
export const TRACED_OPERATIONS = new Set([
  'produce',
  'fetch',
  'joinGroup',
  'syncGroup',
  'leaveGroup',
  'heartbeat',
  'commitOffsets',
  'fetchOffsets',
  'readStream',
]);

/** At most this many message contexts are linked to one span. */
const MAX_LINKS = 16;
/** Records examined per span: the scan runs on the request path, so it is bounded. */
const MAX_RECORDS_SCANNED = 64;

/** The trace contexts carried by the records of some batches, distinct, at most MAX_LINKS. */
export function messageContexts(batches: Iterable<Buffer>, limits: InflateLimits): SpanContext[] {
  const found: SpanContext[] = [];
  const seen = new Set<string>();
  let scanned = 0;
  for (const batch of batches) {
    // A compressed batch would be inflated once more just for its headers: not worth it here.
    if ((batch.readInt16BE(BATCH_OFFSETS.attributes) & COMPRESSION_CODEC_MASK) !== 0) continue;
    for (const record of iterateRecords(batch, limits)) {
      if (++scanned > MAX_RECORDS_SCANNED) return found;
      for (const header of record.headers) {
        if (header.key !== TRACEPARENT_HEADER || header.value === null) continue;
        const context = parseTraceparent(header.value.toString('latin1'));
        if (context === null || seen.has(context.spanId)) continue;
        seen.add(context.spanId);
        found.push(context);
        if (found.length === MAX_LINKS) return found;
      }
    }
  }
  return found;
}

interface TracedRequest {
  topic?: string;
  partition?: number;
  groupId?: string;
  batch?: Buffer;
}

export function startRequestSpan(
  tracer: Tracer,
  operation: string,
  request: TracedRequest,
  limits: InflateLimits,
): Span {
  const attributes: Attributes = {
    'messaging.system': 'memorystreamer',
    'memorystreamer.operation': operation,
  };
  if (request.topic !== undefined) attributes['messaging.destination.name'] = request.topic;
  if (request.partition !== undefined)
    attributes['messaging.destination.partition.id'] = String(request.partition);
  if (request.groupId !== undefined) attributes['messaging.consumer.group.name'] = request.groupId;
  let parent = ROOT_CONTEXT;
  let links: Link[] = [];
  if (request.batch !== undefined) {
    // A batch that cannot be parsed is refused by the produce path with its own error; the span
    // then simply has no parent.
    const contexts = safely(() => messageContexts([request.batch!], limits));
    if (contexts[0] !== undefined) parent = trace.setSpanContext(ROOT_CONTEXT, contexts[0]);
    links = contexts.slice(1).map((context) => ({ context }));
  }
  const name = request.topic !== undefined ? `${operation} ${request.topic}` : operation;
  return tracer.startSpan(name, { kind: SpanKind.SERVER, attributes, links }, parent);
}

/** One push of batches to a subscriber, linked to the messages it carries. */
export function traceDelivery(
  tracer: Tracer,
  topic: string,
  partition: number,
  batches: readonly Buffer[],
  limits: InflateLimits,
): void {
  let bytes = 0;
  for (const batch of batches) bytes += batch.length;
  const links = safely(() =>
    messageContexts(
      batches.flatMap((b) => [...splitBatches(b)]),
      limits,
    ),
  ).map((context) => ({ context }));
  tracer
    .startSpan(
      `deliver ${topic}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'messaging.system': 'memorystreamer',
          'memorystreamer.operation': 'deliver',
          'messaging.destination.name': topic,
          'messaging.destination.partition.id': String(partition),
          'messaging.message.body.size': bytes,
        },
        links,
      },
      ROOT_CONTEXT,
    )
    .end();
}

export function endRequestSpan(span: Span, error?: unknown): void {
  if (error !== undefined) {
    const named = error as { codeName?: string; message?: string };
    if (named.codeName !== undefined) span.setAttribute('error.type', named.codeName);
    span.setStatus({ code: SpanStatusCode.ERROR, message: named.message ?? String(error) });
  }
  span.end();
}

function safely(find: () => SpanContext[]): SpanContext[] {
  try {
    return find();
  } catch {
    return [];
  }
}
