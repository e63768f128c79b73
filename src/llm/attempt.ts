// One streaming call to one provider: the HTTP request, the four timeouts on the injected clock, SSE decoding,
// and the classification the fallback decision needs (did it fail before the first token, and is that a
// failure another provider may not share: connect error, 429, 5xx, no first token in time).
import type { Clock, ClockTimer } from '../util/clock.ts';
import type { ChatMessage, RequestParams } from './protocol.ts';
import { codecs } from './providers/codecs.ts';
import type { ProviderHttp, ProviderResponse } from './provider-pools.ts';
import type { LlmProvider } from './route.ts';
import { SseDecoder, SseOverflow } from './sse.ts';

export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

export type AttemptOutcome =
  | {
      readonly result: 'done';
      readonly finishReason: string;
      readonly usage: Usage;
      readonly firstTokenAt?: number;
      /** The model the provider says answered (it may name a version of the one asked for); telemetry only: it is
       *  the provider's text, unbounded, never a metric label. */
      readonly responseModel?: string;
    }
  | {
      readonly result: 'failed';
      /** No text reached the caller: a fallback may try the next provider. */
      readonly beforeFirstToken: boolean;
      /** Another provider might succeed where this one failed (connect error, 429, 5xx, timeout before the first token). */
      readonly retryable: boolean;
      readonly kind: 'connect' | 'status' | 'timeout' | 'stream';
      /** HTTP status for kind 'status'; which timer for kind 'timeout'. */
      readonly detail: string;
      readonly retryAfterMs?: number;
      readonly usage: Usage;
    }
  | { readonly result: 'aborted'; readonly usage: Usage };

export interface AttemptOptions {
  readonly provider: LlmProvider;
  readonly model: string;
  readonly messages: readonly ChatMessage[];
  readonly params: RequestParams;
  readonly clock: Clock;
  /** Aborted by the session: cancel, client gone. */
  readonly signal: AbortSignal;
  /** Called for each text part; a returned promise holds the next read of the provider's stream (backpressure). */
  readonly onText: (text: string) => void | Promise<void>;
  /** The provider's connection pool. */
  readonly http: ProviderHttp;
}

/** Parses Retry-After (RFC 9110 §10.2.3: delay-seconds or an HTTP-date); only the seconds form is honoured,
 *  a date needs a wall clock this module does not have. */
function retryAfterMs(h: string | null): number | undefined {
  if (h === null || !/^\d+$/.test(h.trim())) return undefined;
  return Number(h.trim()) * 1000;
}

export async function attempt(o: AttemptOptions): Promise<AttemptOutcome> {
  const { provider, clock } = o;
  const codec = codecs[provider.format];
  const wire = codec.request(o.model, o.messages, o.params, provider.apiKey);
  const ac = new AbortController();
  let fired: string | undefined;
  const timers: (ClockTimer | undefined)[] = [];
  const arm = (which: string, ms: number): ClockTimer =>
    clock.setTimeout(() => {
      fired ??= which;
      ac.abort();
    }, ms);
  const onOuterAbort = () => ac.abort();
  o.signal.addEventListener('abort', onOuterAbort, { once: true });
  if (o.signal.aborted) ac.abort();
  const usage: Usage = { inputTokens: 0, outputTokens: 0 };
  let gotText = false;
  let firstTokenAt: number | undefined;
  const total = arm('total', provider.timeouts.totalMs);
  let phase: ClockTimer | undefined = arm('connect', provider.timeouts.connectMs);
  timers.push(total);
  const fail = (kind: 'connect' | 'status' | 'timeout' | 'stream', detail: string, retryable: boolean, extra: { retryAfterMs?: number } = {}): AttemptOutcome => {
    if (o.signal.aborted) return { result: 'aborted', usage };
    if (fired !== undefined) return { result: 'failed', beforeFirstToken: !gotText, retryable: !gotText, kind: 'timeout', detail: fired, usage };
    return { result: 'failed', beforeFirstToken: !gotText, retryable: retryable && !gotText, kind, detail, usage, ...extra };
  };
  try {
    let res: ProviderResponse;
    try {
      res = await o.http.fetch(provider, provider.baseUrl + wire.path, { method: 'POST', headers: wire.headers, body: wire.body, signal: ac.signal });
    } catch {
      return fail('connect', 'connect', true);
    }
    clock.clearTimeout(phase);
    if (!res.ok || res.body === null) {
      await res.body?.cancel().catch(() => {});
      const s = res.status;
      const ra = retryAfterMs(res.headers.get('retry-after'));
      return fail('status', String(s), s === 429 || s >= 500, ra !== undefined ? { retryAfterMs: ra } : {});
    }
    phase = arm('firstToken', provider.timeouts.firstTokenMs);
    const sse = new SseDecoder();
    const decode = codec.decoder();
    const reader = res.body.getReader();
    let finishReason = 'stop';
    let responseModel: string | undefined;
    let streamError: string | undefined;
    try {
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch {
          return fail('stream', 'read', false);
        }
        if (chunk.done) break;
        for (const ev of sse.push(chunk.value)) {
          for (const part of decode(ev.event, ev.data)) {
            if (part.kind === 'text') {
              if (!gotText) {
                gotText = true;
                firstTokenAt = clock.now();
              }
              const hold = o.onText(part.text);
              if (hold) {
                clock.clearTimeout(phase);
                phase = undefined;
                await hold;
              }
            } else if (part.kind === 'usage') {
              if (part.inputTokens !== undefined) usage.inputTokens = part.inputTokens;
              if (part.outputTokens !== undefined) usage.outputTokens = part.outputTokens;
            } else if (part.kind === 'finish') finishReason = part.reason;
            else if (part.kind === 'model') responseModel ??= part.model;
            else streamError = part.message;
          }
          if (streamError !== undefined) break;
        }
        if (streamError !== undefined) break;
        if (o.signal.aborted) return { result: 'aborted', usage };
        // Idle counts silence from the provider; a stalled client (backpressure above) is not the provider's.
        // The first-token deadline runs from the request; only once text flows does silence restart a timer.
        if (gotText) {
          clock.clearTimeout(phase);
          phase = arm('idle', provider.timeouts.idleMs);
        }
      }
    } catch (e) {
      if (e instanceof SseOverflow) return fail('stream', 'overflow', false);
      throw e;
    } finally {
      reader.cancel().catch(() => {});
    }
    if (streamError !== undefined) return fail('stream', 'error_event', true);
    if (o.signal.aborted) return { result: 'aborted', usage };
    return { result: 'done', finishReason, usage, ...(firstTokenAt !== undefined ? { firstTokenAt } : {}), ...(responseModel !== undefined ? { responseModel } : {}) };
  } finally {
    clock.clearTimeout(phase);
    for (const t of timers) clock.clearTimeout(t);
    o.signal.removeEventListener('abort', onOuterAbort);
    ac.abort();
  }
}
