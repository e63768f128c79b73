// IPC messages between bench/idle-connections.ts and its children: the idle load generators
// (bench/idle-generator.ts) and the active-connection probe (bench/idle-probe.ts). Plain JSON.

export type ToIdleGenerator =
  /** Open `count` more connections to `url`, `concurrency` handshakes at a time, source addresses in turn. */
  | { readonly t: 'open'; readonly url: string; readonly count: number; readonly concurrency: number; readonly sources: readonly string[]; readonly timeoutMs: number }
  | { readonly t: 'status' }
  | { readonly t: 'close' };

export interface IdleGeneratorStatus {
  /** Connections open now. */
  readonly open: number;
  /** Connections that closed or failed after their handshake, without the bench asking. */
  readonly lost: number;
  /** Pings received (wsgate's heartbeats; the ws client answers each with a pong by itself). */
  readonly pings: number;
}

export type FromIdleGenerator =
  | { readonly t: 'hello' }
  | ({ readonly t: 'opened'; readonly failed: number; readonly error?: string } & IdleGeneratorStatus)
  | ({ readonly t: 'status' } & IdleGeneratorStatus);

export interface ProbeJob {
  readonly url: string;
  readonly seconds: number;
  /** One message every intervalMs, whether or not the previous echo has come back. */
  readonly intervalMs: number;
  readonly size: number;
  /** Samples in the first warmupSeconds are dropped. */
  readonly warmupSeconds: number;
}

export type ToProbe = { readonly t: 'run'; readonly job: ProbeJob };

export interface ProbeResult {
  readonly sent: number;
  /** Round-trip times in microseconds after the warm-up, sorted. */
  readonly rttUs: readonly number[];
  /** Messages without an echo 2 s after the sending ended. */
  readonly unanswered: number;
  readonly error?: string;
}

export type FromProbe = { readonly t: 'hello' } | { readonly t: 'result'; readonly result: ProbeResult };
