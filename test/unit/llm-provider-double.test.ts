// The provider double is only as good as its faithfulness: the official SDKs' stream parsers read it here, and
// the same streams through wsgate's codecs (src/llm/attempt.ts) must give the same text and usage.
// Streaming formats: https://platform.openai.com/docs/api-reference/chat-streaming/streaming and
// https://docs.anthropic.com/en/docs/build-with-claude/streaming.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { attempt } from '../../src/llm/attempt.ts';
import { ProviderPools } from '../../src/llm/provider-pools.ts';
import type { LlmProvider, WireFormat } from '../../src/llm/route.ts';
import { systemClock } from '../../src/util/clock.ts';
import { startProviderDouble, type ProviderDouble } from '../support/llm-provider-double.ts';

const TOKENS = ['The', ' quick', ' brown', ' fox'];

function provider(format: WireFormat, url: string): LlmProvider {
  return { name: 'p', baseUrl: url, format, apiKey: 'sk-double', models: ['m'], timeouts: { connectMs: 10_000, firstTokenMs: 10_000, idleMs: 10_000, totalMs: 60_000 } };
}

/** The model the doubles report answering with: a dated version of the one asked for, as real providers do. */
const ANSWERED_BY = 'm-2024-07-18';
const pools = new ProviderPools();
after(() => pools.close());

async function viaWsgate(format: WireFormat, url: string) {
  const texts: string[] = [];
  const p = provider(format, url);
  const lease = pools.lease({ namespace: 'ns', providers: [p] });
  try {
    const o = await attempt({ provider: p, model: 'm', messages: [{ role: 'user', content: 'hi' }], params: { maxTokens: 16 }, clock: systemClock(), signal: new AbortController().signal, onText: (t) => void texts.push(t), http: lease });
    return { o, texts };
  } finally {
    lease.release();
  }
}

describe('openai-chat double', () => {
  let d: ProviderDouble;
  before(async () => (d = await startProviderDouble('openai-chat', () => ({ tokens: TOKENS, inputTokens: 11, responseModel: ANSWERED_BY }))));
  after(() => d.close());

  it('the openai SDK parses its stream: text and the include_usage chunk', async () => {
    const client = new OpenAI({ apiKey: 'sk-double', baseURL: `${d.url}/v1`, maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } });
    const texts: string[] = [];
    let usage: unknown;
    let finish: string | null | undefined;
    let model: string | undefined;
    for await (const chunk of stream) {
      model ??= chunk.model;
      for (const c of chunk.choices) {
        if (c.delta.content) texts.push(c.delta.content);
        if (c.finish_reason) finish = c.finish_reason;
      }
      if (chunk.usage) usage = { in: chunk.usage.prompt_tokens, out: chunk.usage.completion_tokens };
    }
    assert.deepEqual({ texts, usage, finish, model }, { texts: TOKENS, usage: { in: 11, out: 4 }, finish: 'stop', model: ANSWERED_BY });
  });

  it('wsgate reads the same stream the same way, and sends stream_options.include_usage', async () => {
    const { o, texts } = await viaWsgate('openai-chat', d.url);
    assert.deepEqual({ texts, o: { ...o, firstTokenAt: undefined } }, { texts: TOKENS, o: { result: 'done', finishReason: 'stop', usage: { inputTokens: 11, outputTokens: 4 }, firstTokenAt: undefined, responseModel: ANSWERED_BY } });
    const last = d.received.at(-1)!;
    assert.deepEqual({ path: last.path, auth: last.headers.authorization, stream: last.body.stream, opts: last.body.stream_options, max: last.body.max_tokens }, { path: '/v1/chat/completions', auth: 'Bearer sk-double', stream: true, opts: { include_usage: true }, max: 16 });
  });
});

describe('anthropic-messages double', () => {
  let d: ProviderDouble;
  before(async () => (d = await startProviderDouble('anthropic-messages', () => ({ tokens: TOKENS, inputTokens: 9, responseModel: ANSWERED_BY }))));
  after(() => d.close());

  it('the @anthropic-ai/sdk parses its stream: text_delta events and message_delta usage', async () => {
    const client = new Anthropic({ apiKey: 'sk-double', baseURL: d.url, maxRetries: 0 });
    const stream = await client.messages.create({ model: 'm', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }], stream: true });
    const texts: string[] = [];
    const kinds: string[] = [];
    let input: number | undefined;
    let output: number | undefined;
    let stop: string | null | undefined;
    let model: string | undefined;
    for await (const ev of stream) {
      kinds.push(ev.type);
      if (ev.type === 'message_start') {
        input = ev.message.usage.input_tokens;
        model = ev.message.model;
      }
      if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') texts.push(ev.delta.text);
      if (ev.type === 'message_delta') {
        output = ev.usage.output_tokens;
        stop = ev.delta.stop_reason;
      }
    }
    assert.deepEqual(
      { texts, input, output, stop, model, kinds },
      { texts: TOKENS, input: 9, output: 4, stop: 'end_turn', model: ANSWERED_BY, kinds: ['message_start', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'] },
    );
  });

  it('wsgate reads the same stream the same way, with the x-api-key and anthropic-version headers', async () => {
    const { o, texts } = await viaWsgate('anthropic-messages', d.url);
    assert.deepEqual({ texts, o: { ...o, firstTokenAt: undefined } }, { texts: TOKENS, o: { result: 'done', finishReason: 'end_turn', usage: { inputTokens: 9, outputTokens: 4 }, firstTokenAt: undefined, responseModel: ANSWERED_BY } });
    const last = d.received.at(-1)!;
    assert.deepEqual({ path: last.path, key: last.headers['x-api-key'], v: last.headers['anthropic-version'], stream: last.body.stream }, { path: '/v1/messages', key: 'sk-double', v: '2023-06-01', stream: true });
  });
});

describe('error answers the SDKs understand', () => {
  it('429 with retry-after: the openai SDK raises a RateLimitError; wsgate classifies it retryable with retryAfterMs', async () => {
    const d = await startProviderDouble('openai-chat', () => ({ status: 429, retryAfter: '3' }));
    try {
      const client = new OpenAI({ apiKey: 'k', baseURL: `${d.url}/v1`, maxRetries: 0 });
      await assert.rejects(client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true }), (e: unknown) => e instanceof OpenAI.RateLimitError);
      const { o } = await viaWsgate('openai-chat', d.url);
      assert.deepEqual(o, { result: 'failed', beforeFirstToken: true, retryable: true, kind: 'status', detail: '429', retryAfterMs: 3000, usage: { inputTokens: 0, outputTokens: 0 } });
    } finally {
      await d.close();
    }
  });

  it('an error event mid-stream: the anthropic SDK throws; wsgate reports a failure after the first token (no fallback)', async () => {
    const d = await startProviderDouble('anthropic-messages', () => ({ tokens: TOKENS, errorAfter: 2 }));
    try {
      const client = new Anthropic({ apiKey: 'k', baseURL: d.url, maxRetries: 0 });
      const stream = await client.messages.create({ model: 'm', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }], stream: true });
      await assert.rejects(async () => {
        for await (const _ of stream) void _;
      });
      const { o, texts } = await viaWsgate('anthropic-messages', d.url);
      assert.deepEqual({ texts, o }, { texts: ['The', ' quick'], o: { result: 'failed', beforeFirstToken: false, retryable: false, kind: 'stream', detail: 'error_event', usage: { inputTokens: 7, outputTokens: 1 } } });
    } finally {
      await d.close();
    }
  });
});
