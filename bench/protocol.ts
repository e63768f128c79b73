// IPC messages between bench/run.ts and its children (echo backends and load generators). Plain JSON.

/** What a latency run and a churn run share: a fixed message rate through `urls`, next to a baseline. */
interface FixedRate {
  readonly urls: readonly string[];
  /**
   * Direct backend URLs: as many connections again go there, sent to at the same rate in the same ticks, so
   * the proxy's added latency is measured against a baseline taken at the same moments.
   */
  readonly baselineUrls?: readonly string[];
  readonly connOffset: number;
  readonly connections: number;
  /** Messages per second (this generator) through `urls`, spread round-robin over its connections. */
  readonly rate: number;
  readonly seconds: number;
  /** Samples in the first warmupSeconds are dropped. */
  readonly warmupSeconds: number;
  readonly size: number;
  readonly maxSeconds: number;
}

/** One unit of load for one generator process. Every job is bounded by `maxSeconds`. */
export type Job =
  | {
      readonly kind: 'echo';
      readonly urls: readonly string[];
      /** Index of this generator's first connection, so direct runs spread connections over the backends. */
      readonly connOffset: number;
      readonly connections: number;
      /** For wss:// urls: the PEM the target's certificate is verified against. */
      readonly ca?: string;
      /** Messages in flight per connection. */
      readonly inflight: number;
      /** Echoes to complete in total (this generator). */
      readonly messages: number;
      readonly size: number;
      readonly maxSeconds: number;
    }
  | (FixedRate & { readonly kind: 'latency' })
  | (FixedRate & {
      /**
       * Config churn under load (bench/churn.ts): a latency run through `urls` (and to the baseline) while the
       * parent changes the target's configuration, plus new long-lived connections arriving at a fixed rate.
       */
      readonly kind: 'churn';
      /** New connections per second opened through `urls` while sending; they stay open, idle, until the job closes. */
      readonly arrivalsPerSecond: number;
      /** After the sending ends, how long the last echoes may take before the rest count as lost. */
      readonly graceSeconds: number;
    })
  | {
      readonly kind: 'handshake';
      readonly urls: readonly string[];
      readonly connOffset: number;
      /** For wss:// urls: the PEM the target's certificate is verified against (a full TLS handshake each time). */
      readonly ca?: string;
      /** Parallel connect → upgrade → close loops. */
      readonly concurrency: number;
      readonly total: number;
      readonly maxSeconds: number;
    }
  | {
      readonly kind: 'idle';
      readonly urls: readonly string[];
      readonly connOffset: number;
      readonly connections: number;
      readonly maxSeconds: number;
    };

export interface JobResult {
  /** Echoes, handshakes or latency samples completed. */
  readonly completed: number;
  readonly errors: number;
  readonly timedOut: boolean;
  readonly elapsedMs: number;
  /** Latency jobs: round-trip times in microseconds (after the warm-up), through `urls` and to the baseline. */
  readonly rttUs?: readonly number[];
  readonly baselineRttUs?: readonly number[];
  /** Churn jobs: connections through `urls` (the steady ones and the arrivals) that closed or failed during the run. */
  readonly closed?: number;
  /** Churn jobs: messages sent through `urls` and never echoed (baseline ones not counted). */
  readonly lost?: number;
  /** Churn jobs: arriving connections opened, and those whose handshake failed. */
  readonly arrivals?: number;
  readonly arrivalFailures?: number;
}

export type ToGenerator = { readonly type: 'job'; readonly job: Job } | { readonly type: 'go' } | { readonly type: 'close' };

export type FromGenerator =
  | { readonly type: 'hello' }
  | { readonly type: 'ready'; readonly opened: number }
  | { readonly type: 'failed'; readonly error: string }
  | { readonly type: 'done'; readonly result: JobResult }
  | { readonly type: 'closed' };

export type FromBackend = { readonly type: 'ready'; readonly port: number };
