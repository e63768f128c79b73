// The compiled shape of one LLM route, as the session reads it: every default already applied and every
// credential already resolved, so nothing below restates a schema default.

export type WireFormat = 'openai-chat' | 'anthropic-messages';

export interface LlmTimeouts {
  /** Until the provider answers with response headers. */
  readonly connectMs: number;
  /** Until the first text token after the request was sent. */
  readonly firstTokenMs: number;
  /** Longest silence between two stream events once streaming. */
  readonly idleMs: number;
  /** Whole request, first byte to last. */
  readonly totalMs: number;
}

export interface LlmProvider {
  readonly name: string;
  /** Without a trailing slash; the wire format appends /v1/... */
  readonly baseUrl: string;
  readonly format: WireFormat;
  /** Resolved from a Secret (Kubernetes) or a file (standalone); never from the client. */
  readonly apiKey: string;
  /** Provider model names this provider serves. */
  readonly models: readonly string[];
  readonly timeouts: LlmTimeouts;
}

export interface LlmLimits {
  readonly concurrentPerConnection: number;
  readonly concurrentPerPrincipal: number;
  readonly requestsPerMinute: number;
  readonly tokensPerMinute: number;
}

export interface LlmParamLimits {
  /** Upper bound of the client's maxTokens, and the value sent when the client gives none. */
  readonly maxTokens: number;
  readonly temperature: { readonly min: number; readonly max: number };
}

export interface LlmRoute {
  readonly namespace: string;
  readonly name: string;
  readonly providers: readonly LlmProvider[];
  /** Client-facing name → provider model names, tried in order. */
  readonly aliases: Readonly<Record<string, readonly string[]>>;
  readonly limits: LlmLimits;
  readonly params: LlmParamLimits;
  /** Largest client text message accepted, in bytes. */
  readonly maxMessageBytes: number;
  /** 0: one delta per provider chunk; otherwise text is gathered for up to this long before a delta is sent. */
  readonly coalesceMs: number;
  /** Bytes queued on the client socket above which wsgate stops reading the provider's stream. */
  readonly highWaterBytes: number;
  /** Logs prompt and completion text; off unless the route enables it. */
  readonly logContent: boolean;
  /** Turns kept per request chain on a connection (`continues`); off unless the route enables it. */
  readonly conversation: { readonly enabled: boolean; readonly maxTurns: number; readonly maxBytes: number };
}
