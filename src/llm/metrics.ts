// LLM metrics on the process registry. Labels are bounded: namespace, route, provider and model come from the
// route's configuration (a model the client named that no provider serves is counted as "unknown"), outcome,
// kind and status from fixed sets.
import { Counter, Histogram, type Registry } from 'prom-client';

type Base = 'namespace' | 'route';

export class LlmMetrics {
  readonly requests: Counter<Base | 'provider' | 'model' | 'outcome'>;
  readonly tokens: Counter<Base | 'provider' | 'model' | 'kind'>;
  readonly timeToFirstToken: Histogram<Base | 'provider' | 'model'>;
  readonly tokensPerSecond: Histogram<Base | 'provider' | 'model'>;
  readonly upstreamErrors: Counter<Base | 'provider' | 'status'>;
  readonly cancellations: Counter<Base>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({ name: 'wsgate_llm_requests_total', help: 'LLM requests by outcome.', labelNames: ['namespace', 'route', 'provider', 'model', 'outcome'], registers });
    this.tokens = new Counter({ name: 'wsgate_llm_tokens_total', help: 'Tokens reported by providers.', labelNames: ['namespace', 'route', 'provider', 'model', 'kind'], registers });
    this.timeToFirstToken = new Histogram({ name: 'wsgate_llm_time_to_first_token_seconds', help: 'From the request message to the first text from the provider.', labelNames: ['namespace', 'route', 'provider', 'model'], buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32], registers });
    this.tokensPerSecond = new Histogram({ name: 'wsgate_llm_tokens_per_second', help: 'Output tokens per second after the first token.', labelNames: ['namespace', 'route', 'provider', 'model'], buckets: [1, 5, 10, 20, 40, 80, 160, 320], registers });
    this.upstreamErrors = new Counter({ name: 'wsgate_llm_upstream_errors_total', help: 'Failed provider attempts; status is the HTTP status, or connect, timeout or stream.', labelNames: ['namespace', 'route', 'provider', 'status'], registers });
    this.cancellations = new Counter({ name: 'wsgate_llm_cancellations_total', help: 'Requests cancelled by the client or by its disconnect.', labelNames: ['namespace', 'route'], registers });
  }
}
