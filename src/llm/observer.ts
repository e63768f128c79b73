// What the LLM bridge tells an observer (tracing) about each admitted request: when it starts, each provider
// attempt and its outcome, the first text, and the end. Optional and passive: the session behaves the same with
// or without one. Times are the session's clock (milliseconds).
import type { AttemptOutcome, Usage } from './attempt.ts';
import type { ClientRequest } from './protocol.ts';
import type { LlmProvider } from './route.ts';

/** How a request ended: ok, cancelled, client_gone, or the error code sent to the client. */
export interface LlmRequestEnd {
  readonly outcome: string;
  /** The provider and model that served the request (the last one tried). */
  readonly provider: string;
  readonly model: string;
  readonly usage: Usage;
  readonly finishReason?: string;
}

export interface LlmRequestObserver {
  attemptStart(provider: LlmProvider, model: string, at: number): void;
  attemptEnd(outcome: AttemptOutcome): void;
  /** The first text of the request reached the client's stream. */
  firstToken(at: number): void;
  end(e: LlmRequestEnd): void;
}

export interface LlmSessionObserver {
  /** Never the messages: an observer cannot record prompt text it is not given. */
  request(req: Pick<ClientRequest, 'id' | 'model' | 'params'>, at: number): LlmRequestObserver;
}
