// One client WebSocket speaking wsgate.llm.v1: parses its messages, admits requests against the limits, runs
// each as an attempt chain over the candidates (fallback before the first token only), streams deltas back
// with backpressure, and aborts every upstream call when the socket goes. Several requests run at once,
// keyed by their id.
import type { WebSocket, RawData } from 'ws';
import { CloseCode, LlmErrorCode } from '../errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Clock, ClockTimer } from '../util/clock.ts';
import { attempt, type AttemptOutcome, type Usage } from './attempt.ts';
import { CONCURRENCY_RETRY_MS, type PrincipalLimits } from './limits.ts';
import type { LlmMetrics } from './metrics.ts';
import type { LlmRefusal, LlmSessionObserver } from './observer.ts';
import { parseClientMessage, type ChatMessage, type ClientRequest, type ServerEvent } from './protocol.ts';
import type { ProviderHttp } from './provider-pools.ts';
import type { LlmRoute } from './route.ts';
import { candidates } from './routing.ts';
import { Conversations } from './conversation.ts';

/** RFC 6455 §7.4.1: 1003, "an endpoint ... received a type of data it cannot accept"; the protocol is text only. */
const UNSUPPORTED_DATA = 1003;

export interface LlmSessionDeps {
  readonly route: LlmRoute;
  readonly clock: Clock;
  readonly limits: PrincipalLimits;
  readonly metrics?: LlmMetrics;
  readonly log?: Logger;
  /** The providers' connection pools. */
  readonly http: ProviderHttp;
  /** Tracing: told when each request starts, falls back, gets its first token and ends, of each refusal, and of
   *  the close. */
  readonly observer?: LlmSessionObserver;
}

interface InFlight {
  readonly ac: AbortController;
  cancelled: boolean;
}

export class LlmSession {
  readonly #ws: WebSocket;
  readonly #principal: string;
  readonly #d: LlmSessionDeps;
  readonly #inFlight = new Map<string, InFlight>();
  #draining = false;
  #closed = false;
  /** Set when wsgate closes the socket: the code and reason it sent first. */
  #closedBy: { readonly code: number; readonly reason: string } | undefined;
  #requests = 0;
  #refused = 0;
  readonly #conversations: Conversations | undefined;
  /** Resolves when the last frame sent has been written to the socket. */
  #flushed: Promise<void> = Promise.resolve();
  #gone!: () => void;
  /** Resolves when the socket closes: a held stream must not wait for a write that will never complete. */
  readonly #closedP = new Promise<void>((resolve) => (this.#gone = resolve));

  constructor(ws: WebSocket, principal: string, deps: LlmSessionDeps) {
    this.#ws = ws;
    this.#principal = principal;
    this.#d = deps;
    const conv = deps.route.conversation;
    this.#conversations = conv.enabled ? new Conversations(conv.maxTurns, conv.maxBytes) : undefined;
    ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    ws.on('close', (code, reason) => this.#onClose(code, reason.toString('utf8')));
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** New requests get `draining`; the socket closes with 1012 once the in-flight ones end. */
  drain(): void {
    this.#draining = true;
    this.#closeIfDrained();
  }

  /** wsgate is stopping (past the drain window): every request still in flight is aborted at once and the socket
   *  closes with 1001, as the proxy closes the relayed connections left. */
  close(): void {
    for (const f of this.#inFlight.values()) f.ac.abort();
    this.#closeWith(CloseCode.GoingAway, 'proxy going away');
  }

  /** The client did not answer the close in time. */
  terminate(): void {
    this.#ws.terminate();
  }

  #closeWith(code: number, reason: string): void {
    // Once either side has begun the close, the first code on the wire is already decided.
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    this.#closedBy ??= { code, reason };
    this.#ws.close(code, reason);
  }

  #onClose(code: number, reason: string): void {
    this.#closed = true;
    this.#gone();
    for (const f of this.#inFlight.values()) f.ac.abort();
    const by = this.#closedBy;
    this.#d.observer?.closed({
      requests: this.#requests,
      refused: this.#refused,
      code: by?.code ?? code,
      reason: by?.reason ?? reason,
      initiator: by ? 'proxy' : 'client',
      drained: this.#draining,
    });
  }

  #send(ev: ServerEvent): void {
    if (this.#closed || this.#ws.readyState !== this.#ws.OPEN) return;
    this.#flushed = new Promise((resolve) => this.#ws.send(JSON.stringify(ev), () => resolve()));
  }

  /** Backpressure: above the high-water mark, the provider's stream is not read until the socket drains. */
  #hold(): Promise<void> | undefined {
    return !this.#closed && this.#ws.bufferedAmount > this.#d.route.highWaterBytes ? Promise.race([this.#flushed, this.#closedP]) : undefined;
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    if (isBinary) return this.#closeWith(UNSUPPORTED_DATA, 'wsgate.llm.v1 is text only');
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    const { route } = this.#d;
    const msg = parseClientMessage(buf.toString('utf8'), buf.byteLength, route.maxMessageBytes, route.params);
    if (msg.type === 'error') return this.#refuse({ ...(msg.id !== undefined ? { id: msg.id } : {}), code: msg.code }, msg);
    if (msg.type === 'cancel') {
      const f = this.#inFlight.get(msg.id);
      if (f) {
        f.cancelled = true;
        f.ac.abort();
      }
      return;
    }
    const err = (code: LlmErrorCode, message: string, retryAfterMs?: number): void =>
      this.#refuse({ id: msg.id, model: msg.model, code }, { type: 'error', id: msg.id, code, message, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
    if (this.#draining) return err(LlmErrorCode.draining, 'the gateway is draining; reconnect');
    if (this.#inFlight.has(msg.id)) return err(LlmErrorCode.duplicateId, `request ${msg.id} is already in flight`);
    let context: readonly ChatMessage[] = [];
    if (msg.continues !== undefined) {
      if (!this.#conversations) return err(LlmErrorCode.unknownConversation, 'conversation state is off on this route: send the whole conversation');
      const kept = this.#conversations.context(msg.continues);
      if (!kept) return err(LlmErrorCode.unknownConversation, `no conversation kept for ${JSON.stringify(msg.continues).slice(0, 140)}: send the whole conversation`);
      context = kept;
    }
    const cands = candidates(route, msg.model);
    if (cands.length === 0) {
      this.#count('unknown', 'unknown', 'unknown_model');
      return err(LlmErrorCode.unknownModel, `no provider serves model ${JSON.stringify(msg.model).slice(0, 80)}`);
    }
    if (this.#inFlight.size >= route.limits.concurrentPerConnection) {
      this.#count('none', cands[0]!.model, 'rate_limited');
      return err(LlmErrorCode.rateLimited, 'too many requests in flight on this connection', CONCURRENCY_RETRY_MS);
    }
    const admission = this.#d.limits.admit(this.#principal);
    if (!admission.ok) {
      this.#count('none', cands[0]!.model, 'rate_limited');
      return err(LlmErrorCode.rateLimited, `limit reached: ${admission.reason}`, admission.retryAfterMs);
    }
    const f: InFlight = { ac: new AbortController(), cancelled: false };
    this.#inFlight.set(msg.id, f);
    this.#requests++;
    void this.#run(msg, context, cands, f).then(
      (usage) => admission.release(usage.inputTokens + usage.outputTokens),
      () => admission.release(0),
    ).finally(() => {
      this.#inFlight.delete(msg.id);
      this.#closeIfDrained();
    });
  }

  #refuse(r: LlmRefusal, ev: ServerEvent): void {
    this.#refused++;
    this.#d.observer?.refused(r, this.#d.clock.now());
    this.#send(ev);
  }

  async #run(req: ClientRequest, context: readonly ChatMessage[], cands: ReturnType<typeof candidates>, f: InFlight): Promise<Usage> {
    const { clock, route } = this.#d;
    const started = clock.now();
    const obs = this.#d.observer?.request(req, started);
    let firstSeen = false;
    const used: Usage = { inputTokens: 0, outputTokens: 0 };
    let pending = '';
    let flushTimer: ClockTimer | undefined;
    const flush = (): void => {
      clock.clearTimeout(flushTimer);
      flushTimer = undefined;
      if (pending === '') return;
      this.#send({ type: 'delta', id: req.id, text: pending });
      pending = '';
    };
    const onText = (text: string): Promise<void> | undefined => {
      if (!firstSeen) {
        firstSeen = true;
        obs?.firstToken(clock.now());
      }
      if (route.logContent || this.#conversations) completion.push(text);
      if (route.coalesceMs <= 0) {
        this.#send({ type: 'delta', id: req.id, text });
        return this.#hold();
      }
      pending += text;
      flushTimer ??= clock.setTimeout(flush, route.coalesceMs);
      return this.#hold();
    };
    const completion: string[] = [];
    let outcome: AttemptOutcome | undefined;
    let provider = cands[0]!.provider.name;
    let model = cands[0]!.model;
    let attempts = 0;
    let retryAfterMs: number | undefined;
    for (const c of cands) {
      attempts++;
      provider = c.provider.name;
      model = c.model;
      obs?.attemptStart(c.provider, c.model, clock.now());
      outcome = await attempt({ provider: c.provider, model: c.model, messages: context.length > 0 ? [...context, ...req.messages] : req.messages, params: req.params, clock, signal: f.ac.signal, onText, http: this.#d.http });
      used.inputTokens += outcome.usage.inputTokens;
      used.outputTokens += outcome.usage.outputTokens;
      obs?.attemptEnd(outcome);
      if (outcome.result !== 'failed') break;
      this.#d.metrics?.upstreamErrors.inc({ namespace: route.namespace, route: route.name, provider, status: outcome.kind === 'status' ? outcome.detail : outcome.kind });
      if (outcome.retryAfterMs !== undefined) retryAfterMs = Math.min(retryAfterMs ?? Infinity, outcome.retryAfterMs);
      if (!(outcome.beforeFirstToken && outcome.retryable)) break;
    }
    flush();
    const o = outcome!;
    let label: string;
    if (o.result === 'done') {
      label = 'ok';
      this.#conversations?.record(req.id, req.continues, [...context, ...req.messages, { role: 'assistant', content: completion.join('') }]);
      this.#send({ type: 'done', id: req.id, finishReason: o.finishReason, usage: { inputTokens: used.inputTokens, outputTokens: used.outputTokens } });
    } else if (o.result === 'aborted') {
      label = f.cancelled ? 'cancelled' : 'client_gone';
      this.#d.metrics?.cancellations.inc({ namespace: route.namespace, route: route.name });
      if (f.cancelled) this.#send({ type: 'error', id: req.id, code: LlmErrorCode.cancelled, message: 'cancelled by the client' });
    } else {
      const code = o.kind === 'timeout' ? LlmErrorCode.timeout : o.beforeFirstToken ? LlmErrorCode.upstreamUnavailable : LlmErrorCode.upstreamError;
      label = code;
      const message = o.kind === 'timeout' ? `provider ${o.detail} timeout` : o.beforeFirstToken ? 'no provider could serve the request' : 'the provider failed mid-stream';
      this.#send({ type: 'error', id: req.id, code, message, ...(retryAfterMs !== undefined && o.beforeFirstToken ? { retryAfterMs } : {}) });
    }
    this.#count(provider, model, label);
    obs?.end({ outcome: label, provider, model, usage: used, ...(o.result === 'done' ? { finishReason: o.finishReason, ...(o.responseModel !== undefined ? { responseModel: o.responseModel } : {}) } : {}) });
    const m = this.#d.metrics;
    const labels = { namespace: route.namespace, route: route.name, provider, model };
    m?.tokens.inc({ ...labels, kind: 'input' }, used.inputTokens);
    m?.tokens.inc({ ...labels, kind: 'output' }, used.outputTokens);
    const ended = clock.now();
    const firstTokenAt = o.result === 'done' ? o.firstTokenAt : undefined;
    if (firstTokenAt !== undefined) {
      m?.timeToFirstToken.observe(labels, (firstTokenAt - started) / 1000);
      if (ended > firstTokenAt && used.outputTokens > 0) m?.tokensPerSecond.observe(labels, used.outputTokens / ((ended - firstTokenAt) / 1000));
    }
    this.#d.log?.info(
      {
        llm: { route: `${route.namespace}/${route.name}`, id: req.id, principal: this.#principal, provider, model, requested: req.model, outcome: label, attempts },
        usage: used,
        ttftMs: firstTokenAt !== undefined ? firstTokenAt - started : undefined,
        durationMs: ended - started,
        ...(route.logContent ? { prompt: req.messages, completion: completion.join('') } : {}),
      },
      'llm request',
    );
    return used;
  }

  #count(provider: string, model: string, outcome: string): void {
    const r = this.#d.route;
    this.#d.metrics?.requests.inc({ namespace: r.namespace, route: r.name, provider, model, outcome });
  }

  #closeIfDrained(): void {
    if (this.#draining && this.#inFlight.size === 0) this.#closeWith(CloseCode.ServiceRestart, 'draining');
  }
}
