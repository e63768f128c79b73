// A span context as the W3C traceparent header (https://www.w3.org/TR/trace-context/#traceparent-header):
// version 00, the trace id, the span id as parent-id, and the sampled flag.
import { TraceFlags, type SpanContext } from '@opentelemetry/api';

export function traceparentOf(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${sc.traceFlags & TraceFlags.SAMPLED ? '01' : '00'}`;
}
