// OpenTelemetry end to end: a producer and a consumer traced by the application's own SDK (an
// in-memory exporter) and a broker exporting over OTLP/HTTP to a receiver this test runs. One trace
// must run producer → broker → consumer through the `traceparent` message header.
import { createServer, type Server } from 'node:http';
import { SpanKind, trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/client/connect.js';
import { messageTraceContext } from '../../src/client/tracing.js';
import { Broker } from '../../src/embedded/broker.js';
import { tempDir } from '../harness/temp-dir.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  links?: Array<{ traceId: string; spanId: string }>;
  attributes: Array<{ key: string; value: { stringValue?: string; intValue?: string | number } }>;
}
interface OtlpExport {
  resourceSpans: Array<{
    resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> };
    scopeSpans: Array<{ spans: OtlpSpan[] }>;
  }>;
}

let receiver: Server;
const exports: OtlpExport[] = [];
let endpoint: string;

beforeAll(async () => {
  receiver = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      if (request.url === '/v1/traces' && request.method === 'POST')
        exports.push(JSON.parse(body) as OtlpExport);
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => receiver.close(resolve));
});

function brokerSpans(): OtlpSpan[] {
  return exports.flatMap((e) => e.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)));
}

describe('OpenTelemetry tracing', () => {
  it('carries one trace from producer through broker to consumer', async () => {
    const dataDir = await tempDir('ms-tracing-');
    const broker = await Broker.start({
      dataDir,
      port: 0,
      tracing: { endpoint, serviceName: 'broker-under-test', exportDelayMs: 50 },
    });
    const appSpans = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(appSpans)] });
    const tracer = provider.getTracer('app');
    const client = await connect({ brokers: `127.0.0.1:${broker.address!.port}`, tracer });
    try {
      await client.admin.createTopic({ name: 'traced', partitions: 1 });
      const receipt = await client.producer().send({ topic: 'traced', key: 'order-1', value: 'paid' });
      const consumer = client.consumer({ topics: ['traced'], group: 'tracers', from: 'earliest' });
      const message = (await consumer.next())!;
      await consumer.close();

      const send = appSpans.getFinishedSpans().find((s) => s.name === 'send traced')!;
      expect(send.kind).toBe(SpanKind.PRODUCER);
      expect(send.attributes['messaging.destination.name']).toBe('traced');
      expect(send.attributes['messaging.kafka.offset']).toBe(Number(receipt.offset));
      const { traceId, spanId } = send.spanContext();

      // The message carries the send span's context.
      const header = message.headers.find((h) => h.key === 'traceparent')!;
      expect(header.value!.toString()).toBe(`00-${traceId}-${spanId}-01`);
      expect(trace.getSpanContext(messageTraceContext(message))).toMatchObject({
        traceId,
        spanId,
        isRemote: true,
      });

      // The consumer's receive span is the send span's child.
      const receive = appSpans.getFinishedSpans().find((s) => s.name === 'receive traced')!;
      expect(receive.kind).toBe(SpanKind.CONSUMER);
      expect(receive.spanContext().traceId).toBe(traceId);
      expect(receive.parentSpanContext?.spanId).toBe(spanId);
      expect(receive.attributes['messaging.consumer.group.name']).toBe('tracers');
    } finally {
      await client.close();
      await broker.stop(); // flushes the broker's spans to the receiver
    }

    const send = appSpans.getFinishedSpans().find((s) => s.name === 'send traced')!;
    const spans = brokerSpans();
    const service = exports[0]!.resourceSpans[0]!.resource.attributes.find((a) => a.key === 'service.name');
    expect(service?.value.stringValue).toBe('broker-under-test');
    // The broker's produce span continues the producer's trace.
    const produce = spans.find((s) => s.name === 'produce traced')!;
    expect(produce).toBeDefined();
    expect(produce.kind).toBe(2); // SPAN_KIND_SERVER in OTLP
    expect(produce.traceId).toBe(send.spanContext().traceId);
    expect(produce.parentSpanId).toBe(send.spanContext().spanId);
    // The push to the consumer links to the message's context.
    const deliver = spans.find((s) => s.name === 'deliver traced')!;
    expect(deliver.links?.map((l) => l.spanId)).toContain(send.spanContext().spanId);
    // Group operations are traced too.
    expect(spans.some((s) => s.name === 'joinGroup')).toBe(true);
  }, 30_000);

  it('adds nothing to messages when no tracer is configured', async () => {
    const dataDir = await tempDir('ms-tracing-off-');
    const broker = await Broker.start({ dataDir });
    const client = broker.connect();
    try {
      await client.admin.createTopic({ name: 'plain' });
      await client.producer().send({ topic: 'plain', value: 'x', headers: { a: 'b' } });
      const consumer = client.consumer({ topics: ['plain'], from: 'earliest' });
      const message = (await consumer.next())!;
      await consumer.close();
      expect(message.headers.map((h) => h.key)).toEqual(['a']);
    } finally {
      await client.close();
      await broker.stop();
    }
  });

  it('takes a full /v1/traces URL as the endpoint, and stops promptly when the collector is gone', async () => {
    const dataDir = await tempDir('ms-tracing-url-');
    const before = exports.length;
    const broker = await Broker.start({
      dataDir,
      tracing: { endpoint: `${endpoint}/v1/traces`, exportDelayMs: 50 },
    });
    const client = broker.connect();
    await client.admin.createTopic({ name: 'full-url' });
    await client.producer().send({ topic: 'full-url', value: 'x' });
    await client.close();
    await broker.stop();
    expect(exports.length).toBeGreaterThan(before);

    // A collector that refuses connections: stop() must neither fail nor wait for it.
    const unreachable = await Broker.start({
      dataDir,
      tracing: { endpoint: 'http://127.0.0.1:1', exportDelayMs: 50 },
    });
    const other = unreachable.connect();
    await other.producer().send({ topic: 'full-url', value: 'y' });
    await other.close();
    const started = Date.now();
    await expect(unreachable.stop()).resolves.toBeUndefined();
    expect(Date.now() - started).toBeLessThan(5000);
  }, 30_000);

  it('a traced send with bad headers rejects (and ends its span) instead of throwing', async () => {
    const dataDir = await tempDir('ms-tracing-bad-');
    const broker = await Broker.start({ dataDir });
    const appSpans = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(appSpans)] });
    const client = broker.connect({ tracer: provider.getTracer('app') });
    try {
      await client.admin.createTopic({ name: 'bad' });
      const sent = client.producer().send({ topic: 'bad', value: 'x', headers: null as never });
      await expect(sent).rejects.toBeInstanceOf(TypeError);
      expect(appSpans.getFinishedSpans().map((s) => s.name)).toEqual(['send bad']);
    } finally {
      await client.close();
      await broker.stop();
    }
  });
});
