// Anthropic Messages, streamed: POST /v1/messages with stream: true. Named SSE events: message_start (input
// usage), content_block_delta with text_delta, message_delta (stop_reason and cumulative output usage),
// message_stop, ping, and error events mid-stream
// (https://docs.anthropic.com/en/docs/build-with-claude/streaming).
import type { StreamPart, WireFormatCodec } from './stream-event.ts';

const API_VERSION = '2023-06-01';

interface Payload {
  message?: { model?: string; usage?: { input_tokens?: number; output_tokens?: number } };
  delta?: { type?: string; text?: string; stop_reason?: string | null };
  usage?: { input_tokens?: number; output_tokens?: number };
  error?: { type?: string; message?: string };
}

export const anthropicMessages: WireFormatCodec = {
  request(model, messages, params, apiKey) {
    // The Messages API takes the system prompt beside the turns, not as a turn.
    const system = messages.filter((m) => m.role === 'system').map((m) => m.content).join('\n\n');
    const turns = messages.filter((m) => m.role !== 'system');
    return {
      path: '/v1/messages',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'x-api-key': apiKey, 'anthropic-version': API_VERSION },
      body: JSON.stringify({
        model,
        messages: turns,
        ...(system ? { system } : {}),
        max_tokens: params.maxTokens,
        stream: true,
        ...(params.temperature !== undefined ? { temperature: params.temperature } : {}),
      }),
    };
  },
  decoder() {
    return (event, data) => {
      let p: Payload;
      try {
        p = JSON.parse(data) as Payload;
      } catch {
        return [{ kind: 'error', message: 'provider sent an event that is not JSON' }];
      }
      switch (event) {
        case 'message_start': {
          const out: StreamPart[] = [];
          const m = p.message?.model;
          if (typeof m === 'string' && m !== '') out.push({ kind: 'model', model: m });
          const u = p.message?.usage;
          if (u) out.push({ kind: 'usage', inputTokens: u.input_tokens, outputTokens: u.output_tokens });
          return out;
        }
        case 'content_block_delta':
          return p.delta?.type === 'text_delta' && typeof p.delta.text === 'string' && p.delta.text.length > 0 ? [{ kind: 'text', text: p.delta.text }] : [];
        case 'message_delta': {
          const out: StreamPart[] = [];
          if (p.usage) out.push({ kind: 'usage', ...(p.usage.input_tokens !== undefined ? { inputTokens: p.usage.input_tokens } : {}), outputTokens: p.usage.output_tokens });
          if (typeof p.delta?.stop_reason === 'string') out.push({ kind: 'finish', reason: p.delta.stop_reason });
          return out;
        }
        case 'error':
          return [{ kind: 'error', message: String(p.error?.message ?? 'provider error') }];
        default:
          return [];
      }
    };
  },
};
