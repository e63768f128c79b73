// What every wire format reduces a provider's stream to: the session handles one shape, whatever the provider.
import type { ChatMessage, RequestParams } from '../protocol.ts';

export type StreamPart =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'usage'; readonly inputTokens?: number; readonly outputTokens?: number }
  | { readonly kind: 'finish'; readonly reason: string }
  /** The model the provider reports answering with. */
  | { readonly kind: 'model'; readonly model: string }
  /** An error event inside a 200 stream. */
  | { readonly kind: 'error'; readonly message: string };

export interface WireRequest {
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface WireFormatCodec {
  request(model: string, messages: readonly ChatMessage[], params: RequestParams, apiKey: string): WireRequest;
  /** A fresh decoder per request: some formats carry state between events. Returns the parts of one SSE event. */
  decoder(): (event: string, data: string) => StreamPart[];
}
