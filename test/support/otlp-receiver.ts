// A test OTLP/HTTP trace receiver on a real loopback port: it accepts what the official exporter POSTs to
// /v1/traces and decodes it into flat spans. The exporter-trace-otlp-http package sends the OTLP JSON encoding
// (Content-Type: application/json; ids as hex strings: https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding);
// anything else is answered 415 and counted, so a test sees an encoding it did not expect.
// It can go down (its port closed) and come back on the same port, as a restarted collector does.
import type { TracingConfig } from '../../src/config/tracing.ts';
import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type AttrValue = string | number | boolean | readonly (string | number | boolean)[];

export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** '' for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client. */
  readonly kind: number;
  readonly attributes: Readonly<Record<string, AttrValue>>;
  readonly events: readonly { readonly name: string; readonly attributes: Readonly<Record<string, AttrValue>> }[];
  /** OTLP StatusCode: 0 unset, 1 ok, 2 error. */
  readonly status: { readonly code: number; readonly message: string };
  readonly resource: Readonly<Record<string, AttrValue>>;
  readonly startNs: bigint;
  readonly endNs: bigint;
}

interface OtlpAnyValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: OtlpAnyValue[] };
}

interface OtlpKeyValue {
  key: string;
  value: OtlpAnyValue;
}

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  attributes?: OtlpKeyValue[];
  events?: { name: string; attributes?: OtlpKeyValue[] }[];
  status?: { code?: number; message?: string };
}

interface OtlpRequest {
  resourceSpans?: { resource?: { attributes?: OtlpKeyValue[] }; scopeSpans?: { spans?: OtlpSpan[] }[] }[];
}

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  /** Requests answered 415 (not JSON). */
  unsupported = 0;
  requests = 0;
  #server: http.Server | undefined;
  #port = 0;
  #waiters: { done: () => boolean; resolve: () => void }[] = [];

  get url(): string {
    return `http://127.0.0.1:${this.#port}/v1/traces`;
  }

  /** The base URL, as --otlp-endpoint takes it. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** Listens on port 0 the first time, then on the same port again (a collector coming back). */
  async start(): Promise<void> {
    const server = http.createServer((req, res) => this.#handle(req, res));
    server.listen(this.#port, '127.0.0.1');
    await once(server, 'listening');
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  /** The collector goes down: its port refuses connections until start() again. */
  async stop(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /** Resolves once at least n spans have arrived in all. */
  received(n: number): Promise<void> {
    return this.when(() => this.spans.length >= n);
  }

  /** Resolves once the spans received so far satisfy pred (checked at each arrival). */
  when(pred: (spans: readonly ReceivedSpan[]) => boolean): Promise<void> {
    if (pred(this.spans)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ done: () => pred(this.spans), resolve }));
  }

  clear(): void {
    this.spans.length = 0;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.requests++;
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).startsWith('application/json')) {
        this.unsupported++;
        res.writeHead(415).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpRequest;
      for (const rs of body.resourceSpans ?? []) {
        const resource = attrs(rs.resource?.attributes);
        for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) this.spans.push(decode(s, resource));
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.done()) return true;
        w.resolve();
        return false;
      });
    });
  }
}

function decode(s: OtlpSpan, resource: Record<string, AttrValue>): ReceivedSpan {
  return {
    traceId: s.traceId,
    spanId: s.spanId,
    parentSpanId: s.parentSpanId ?? '',
    name: s.name,
    kind: s.kind,
    attributes: attrs(s.attributes),
    events: (s.events ?? []).map((e) => ({ name: e.name, attributes: attrs(e.attributes) })),
    status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
    resource,
    startNs: BigInt(s.startTimeUnixNano),
    endNs: BigInt(s.endTimeUnixNano),
  };
}

function attrs(list: OtlpKeyValue[] | undefined): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const { key, value } of list ?? []) out[key] = value.arrayValue ? (value.arrayValue.values ?? []).map(scalar) : scalar(value);
  return out;
}

function scalar(value: OtlpAnyValue): string | number | boolean {
  return value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : value.doubleValue ?? value.boolValue ?? '');
}

/** The tracing config the tests export with: to this receiver, every trace sampled, and spans leave on an
 *  explicit flush only (the scheduled export never fires during a test), so each test reads what it flushed. */
export function testTracingConfig(url: string, over: Partial<TracingConfig> = {}): TracingConfig {
  return {
    url,
    headers: {},
    sampleRatio: 1,
    serviceName: 'wsgate-test',
    resourceAttributes: {},
    exportTimeoutMs: 5000,
    maxQueueSize: 2048,
    maxExportBatchSize: 512,
    scheduledDelayMs: 600_000,
    ...over,
  };
}
