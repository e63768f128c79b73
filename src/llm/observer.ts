// What the LLM bridge tells an observer (tracing): each admitted request (when it starts, each provider attempt
// and its outcome, the first text, the end), each request refused before it started, and the socket's close.
// Optional and passive: the session behaves the same with or without one. Times are the session's clock
// (milliseconds).
import type { AttemptOutcome, Usage } from './attempt.ts';
import type { LlmErrorCode } from '../errors.ts';
import type { ClientRequest } from './protocol.ts';
import type { LlmProvider } from './route.ts';

/** How a request ended: ok, cancelled, client_gone, or the error code sent to the client. */
export interface LlmRequestEnd {
  readonly outcome: string;
  /** The provider and model that served the request (the last one tried). */
  readonly provider: string;
  readonly model: string;
  /** The model the provider reported answering with, when it did. */
  readonly responseModel?: string;
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

/** A message refused before any provider was asked: what could be read of it, and the error the client got. */
export interface LlmRefusal {
  readonly id?: string;
  readonly model?: string;
  readonly code: LlmErrorCode;
}

/** The socket closed. */
export interface LlmSocketEnd {
  /** Requests admitted (started) on the socket. */
  readonly requests: number;
  /** Messages refused with an error before they started. */
  readonly refused: number;
  /** The first close code on the wire: wsgate's when it closed first, else the client's (1006: it vanished). */
  readonly code: number;
  readonly reason: string;
  readonly initiator: 'client' | 'proxy';
  /** wsgate was draining when the socket closed. */
  readonly drained: boolean;
}

export interface LlmSessionObserver {
  /** Never the messages: an observer cannot record prompt text it is not given. */
  request(req: Pick<ClientRequest, 'id' | 'model' | 'params'>, at: number): LlmRequestObserver;
  refused(r: LlmRefusal, at: number): void;
  closed(e: LlmSocketEnd): void;
}
