// The broker's own OpenTelemetry tracer provider, used when `tracing.otlp_endpoint` is set: spans
// are batched and exported over OTLP/HTTP (JSON) to `<endpoint>/v1/traces`. It is never registered
// as the process-global provider, so an application embedding the broker keeps its own setup.

import type { Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';

export interface BrokerTracing {
  readonly tracer: Tracer;
  /** Exports what is still buffered, then stops. */
  shutdown(): Promise<void>;
}

export interface OtlpTracingOptions {
  /** Base URL of an OTLP/HTTP receiver, e.g. http://127.0.0.1:4318 (the path /v1/traces is added). */
  endpoint: string;
  serviceName?: string;
  /** How long spans wait to be exported in a batch (ms). */
  exportDelayMs?: number;
}

export function otlpTracing(options: OtlpTracingOptions): BrokerTracing {
  let url: URL;
  try {
    // A base URL gets /v1/traces appended (the OTLP convention); a full traces URL is kept.
    url = /\/v1\/traces\/?$/.test(new URL(options.endpoint).pathname)
      ? new URL(options.endpoint)
      : new URL('v1/traces', options.endpoint.endsWith('/') ? options.endpoint : `${options.endpoint}/`);
  } catch {
    throw new TypeError(`tracing endpoint ${JSON.stringify(options.endpoint)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new TypeError(`tracing endpoint must be http(s), got ${url.protocol}`);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName ?? 'memorystreamer' }),
    spanProcessors: [
      new BatchSpanProcessor(new OTLPTraceExporter({ url: url.toString() }), {
        scheduledDelayMillis: options.exportDelayMs ?? 1000,
      }),
    ],
  });
  return {
    tracer: provider.getTracer('memorystreamer-broker'),
    shutdown: () => provider.shutdown(),
  };
}
