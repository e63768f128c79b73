// Tracing's part of the Config: --otlp-endpoint and --trace-sample-ratio, with the standard OTEL_* variables
// (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/ and
// https://opentelemetry.io/docs/specs/otel/protocol/exporter/) as fallbacks. Everything the exporter and the
// processor need is resolved here and passed to them, so what the SDK does is what this Config says.
import type { ConfigProblem } from '../errors.ts';

export interface TracingConfig {
  /** The full URL spans are POSTed to (…/v1/traces). */
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** For a trace the client did not start (or sent unsampled is not this: its decision is kept). */
  readonly sampleRatio: number;
  readonly serviceName: string;
  readonly resourceAttributes: Readonly<Record<string, string>>;
  readonly exportTimeoutMs: number;
  /** Finished spans waiting for export; past it new ones are dropped (a collector that is down costs no memory). */
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
  readonly scheduledDelayMs: number;
}

type Raw = (flag: string) => string | boolean | undefined;

/** undefined: tracing off (no endpoint anywhere, or OTEL_SDK_DISABLED=true). */
export function tracingConfig(raw: Raw, env: NodeJS.ProcessEnv, problems: ConfigProblem[]): TracingConfig | undefined {
  const ratio = sampleRatio(raw('trace-sample-ratio'), env, problems);
  if (/^true$/i.test(env.OTEL_SDK_DISABLED?.trim() ?? '')) return undefined;
  const flag = raw('otlp-endpoint');
  const base = typeof flag === 'string' && flag !== '' ? flag : undefined;
  const specific = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || undefined;
  const general = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || undefined;
  // The signal-specific variable is used as is; a base URL gets the signal's path (spec: "Endpoint URLs for OTLP/HTTP").
  const url = base !== undefined ? tracesUrl(base) : specific ?? (general !== undefined ? tracesUrl(general) : undefined);
  if (url === undefined) return undefined;
  const where = base !== undefined ? '--otlp-endpoint' : specific !== undefined ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT';
  if (!/^https?:\/\/[^/]/.test(url) || !URL.canParse(url)) problems.push({ path: where, message: `must be an http:// or https:// URL, got ${url}` });
  // This exporter speaks OTLP/HTTP (JSON); a collector's OTLP/HTTP receiver takes JSON and protobuf alike.
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL)?.trim();
  if (protocol && protocol !== 'http/json' && protocol !== 'http/protobuf') {
    problems.push({ path: 'OTEL_EXPORTER_OTLP_PROTOCOL', message: `wsgate exports OTLP over HTTP only (http/json or http/protobuf), got ${protocol}` });
  }
  const resourceAttributes = keyValues(env.OTEL_RESOURCE_ATTRIBUTES, 'OTEL_RESOURCE_ATTRIBUTES', problems);
  return {
    url,
    headers: { ...keyValues(env.OTEL_EXPORTER_OTLP_HEADERS, 'OTEL_EXPORTER_OTLP_HEADERS', problems), ...keyValues(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS', problems) },
    sampleRatio: ratio,
    serviceName: env.OTEL_SERVICE_NAME?.trim() || resourceAttributes['service.name'] || 'wsgate',
    resourceAttributes,
    exportTimeoutMs: int(env.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT ?? env.OTEL_EXPORTER_OTLP_TIMEOUT, 'OTEL_EXPORTER_OTLP_TIMEOUT', 10000, 1, 600000, problems),
    maxQueueSize: int(env.OTEL_BSP_MAX_QUEUE_SIZE, 'OTEL_BSP_MAX_QUEUE_SIZE', 2048, 1, 1000000, problems),
    maxExportBatchSize: int(env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 512, 1, 1000000, problems),
    scheduledDelayMs: int(env.OTEL_BSP_SCHEDULE_DELAY, 'OTEL_BSP_SCHEDULE_DELAY', 5000, 0, 600000, problems),
  };
}

function tracesUrl(base: string): string {
  return base.trim().replace(/\/+$/, '') + '/v1/traces';
}

const parentBased: Record<string, number | 'arg'> = { parentbased_always_on: 1, parentbased_always_off: 0, parentbased_traceidratio: 'arg' };

function sampleRatio(flag: string | boolean | undefined, env: NodeJS.ProcessEnv, problems: ConfigProblem[]): number {
  if (flag !== undefined) return ratioOf(String(flag), '--trace-sample-ratio', problems);
  const sampler = env.OTEL_TRACES_SAMPLER?.trim();
  if (!sampler) return 1;
  const kind = parentBased[sampler];
  if (kind === undefined) {
    problems.push({ path: 'OTEL_TRACES_SAMPLER', message: `wsgate samples parent-based: parentbased_traceidratio, parentbased_always_on or parentbased_always_off, got ${sampler}` });
    return 1;
  }
  if (kind !== 'arg') return kind;
  const arg = env.OTEL_TRACES_SAMPLER_ARG?.trim();
  return arg ? ratioOf(arg, 'OTEL_TRACES_SAMPLER_ARG', problems) : 1;
}

function ratioOf(v: string, path: string, problems: ConfigProblem[]): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) {
    problems.push({ path, message: `must be a number from 0 to 1, got ${v}` });
    return 1;
  }
  return n;
}

function int(v: string | undefined, path: string, def: number, min: number, max: number, problems: ConfigProblem[]): number {
  if (v === undefined || v.trim() === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    problems.push({ path, message: `must be a whole number from ${min} to ${max}, got ${v}` });
    return def;
  }
  return n;
}

/** W3C Baggage-style "k=v,k2=v2" with percent-encoded values, as the OTEL_* list variables are written. */
function keyValues(v: string | undefined, path: string, problems: ConfigProblem[]): Record<string, string> {
  const out: Record<string, string> = {};
  if (!v?.trim()) return out;
  for (const part of v.split(',')) {
    if (!part.trim()) continue;
    const at = part.indexOf('=');
    const key = at > 0 ? part.slice(0, at).trim() : '';
    if (!key) {
      problems.push({ path, message: `expected key=value pairs separated by commas, got ${JSON.stringify(part.trim())}` });
      continue;
    }
    try {
      out[key] = decodeURIComponent(part.slice(at + 1).trim());
    } catch {
      problems.push({ path, message: `${key}: not a percent-encoded value` });
    }
  }
  return out;
}
