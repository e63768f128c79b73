// The process's tracer, built from Config: a parent-based sampler with a ratio for traces started here, a
// batching processor with a bounded queue, and the official OTLP/HTTP exporter. Nothing is registered
// globally (no module-level singleton): the proxy gets this tracer handed down, and tests build their own.
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { Tracer } from '@opentelemetry/api';
import type { TracingConfig } from '../../config/tracing.ts';

export interface Tracing {
  readonly tracer: Tracer;
  /** Exports what has ended (tests, and a stopping process). */
  forceFlush(): Promise<void>;
  /** Flushes, then stops exporting. */
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  /** service.version on every span. */
  readonly version?: string;
  /** Instead of OTLP/HTTP (the bench measures the proxy, not a collector). */
  readonly exporter?: SpanExporter;
}

export function createTracing(c: TracingConfig, o: TracingOptions = {}): Tracing {
  const exporter =
    o.exporter ??
    new OTLPTraceExporter({
      url: c.url,
      headers: { ...c.headers },
      timeoutMillis: c.exportTimeoutMs,
    });
  // Span times are the SDK's (epoch nanoseconds, as OTLP carries them): the process Clock is monotonic and says
  // nothing about wall time, so it never stamps a span.
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      ...c.resourceAttributes,
      [ATTR_SERVICE_NAME]: c.serviceName,
      ...(o.version ? { [ATTR_SERVICE_VERSION]: o.version } : {}),
    }),
    // A client's traceparent decides for its own trace (sampled or not); the ratio applies to traces begun here.
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(c.sampleRatio) }),
    spanProcessors: [
      new BatchSpanProcessor(exporter, {
        maxQueueSize: c.maxQueueSize,
        maxExportBatchSize: Math.min(c.maxExportBatchSize, c.maxQueueSize),
        scheduledDelayMillis: c.scheduledDelayMs,
        exportTimeoutMillis: c.exportTimeoutMs,
      }),
    ],
  });
  return {
    tracer: provider.getTracer('wsgate', o.version),
    forceFlush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
