// OpenAI-compatible chat completions, streamed: POST /v1/chat/completions with stream: true; each SSE data line
// is a chat.completion.chunk, the stream ends with `data: [DONE]`. With stream_options.include_usage the last
// chunk before [DONE] has empty choices and the usage of the whole request
// (https://platform.openai.com/docs/api-reference/chat-streaming/streaming).
import type { StreamPart, WireFormatCodec } from './stream-event.ts';

interface Chunk {
  model?: string;
  choices?: { delta?: { content?: string | null }; finish_reason?: string | null }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  error?: { message?: string };
}

export const openAiChat: WireFormatCodec = {
  request(model, messages, params, apiKey) {
    return {
      path: '/v1/chat/completions',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({
        model,
        messages,
        stream: true,
        stream_options: { include_usage: true },
        max_tokens: params.maxTokens,
        ...(params.temperature !== undefined ? { temperature: params.temperature } : {}),
      }),
    };
  },
  decoder() {
    return (_event, data) => {
      if (data === '[DONE]') return [];
      let c: Chunk;
      try {
        c = JSON.parse(data) as Chunk;
      } catch {
        return [{ kind: 'error', message: 'provider sent a chunk that is not JSON' }];
      }
      const out: StreamPart[] = [];
      // Every chunk repeats the model; the first one says it.
      if (typeof c.model === 'string' && c.model !== '') out.push({ kind: 'model', model: c.model });
      if (c.error) out.push({ kind: 'error', message: String(c.error.message ?? 'provider error') });
      for (const ch of c.choices ?? []) {
        const text = ch.delta?.content;
        if (typeof text === 'string' && text.length > 0) out.push({ kind: 'text', text });
        if (typeof ch.finish_reason === 'string') out.push({ kind: 'finish', reason: ch.finish_reason });
      }
      if (c.usage) out.push({ kind: 'usage', inputTokens: c.usage.prompt_tokens, outputTokens: c.usage.completion_tokens });
      return out;
    };
  },
};
