// The cluster-wide state's metrics, registered on the process's registry (telemetry/metrics.ts owns it).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type RedisOp = 'admit' | 'sync' | 'load_revocations';

export class ClusterMetrics {
  readonly roundTrip: Histogram<'op'>;
  readonly errors: Counter<'op' | 'kind'>;
  readonly fallback: Gauge;
  readonly revocations: Counter<'result'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.roundTrip = new Histogram({
      name: 'wsgate_redis_round_trip_seconds',
      help: 'Redis script round trips by operation (admit: one per handshake that takes a cluster-wide budget).',
      labelNames: ['op'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.errors = new Counter({ name: 'wsgate_redis_errors_total', help: 'Redis operations that failed (kind: timeout, error).', labelNames: ['op', 'kind'], registers });
    this.fallback = new Gauge({ name: 'wsgate_redis_fallback', help: '1 while Redis is unreachable and redis failure mode applies (Open: local limits; Closed: 503).', registers });
    this.revocations = new Counter({
      name: 'wsgate_revocations_applied_total',
      help: 'Revocations applied: connections closed with 1008, handshakes refused with 403.',
      labelNames: ['result'],
      registers,
    });
  }
}
