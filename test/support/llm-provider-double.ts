// A TEST DOUBLE of a model provider's streaming API, on a real loopback HTTP server. It is not a provider: it
// replays the documented event sequences of each wire format, with the usage events, and can be told to answer
// 429 with Retry-After, fail with 5xx, send an error event mid-stream, or stall before or after its first token.
// test/unit/llm-provider-double.test.ts drives it with the official `openai` and `@anthropic-ai/sdk` clients, so
// its wire format stays what those clients parse.
//
// Wire formats:
// - OpenAI chat completions streaming: chat.completion.chunk objects as `data:` lines, ended by `data: [DONE]`;
//   with stream_options.include_usage a final chunk with empty choices carries usage
//   (https://platform.openai.com/docs/api-reference/chat-streaming/streaming).
// - Anthropic Messages streaming: message_start, content_block_start, ping, content_block_delta (text_delta)…,
//   content_block_stop, message_delta (stop_reason, usage), message_stop; an `error` event mid-stream
//   (https://docs.anthropic.com/en/docs/build-with-claude/streaming).
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type DoubleFormat = 'openai-chat' | 'anthropic-messages';

export interface Behaviour {
  /** A non-200 answer instead of a stream. */
  readonly status?: number;
  /** Retry-After header (seconds) with that status. */
  readonly retryAfter?: string;
  readonly tokens?: readonly string[];
  readonly inputTokens?: number;
  /** Sends headers, then this many tokens, then nothing until the client aborts. */
  readonly stallAfter?: number;
  /** Sends this many tokens, then an error event, then ends. */
  readonly errorAfter?: number;
  /** Waits for this before each token after the first `gateAfter` tokens (a slow, test-paced stream). */
  readonly gate?: () => Promise<void>;
  readonly gateAfter?: number;
  /** Token i's text, computed as it is written (the latency bench stamps each token with its write time);
   *  `tokens` still says how many there are. */
  readonly text?: (i: number) => string;
  /** The model the stream says answered (OpenAI: every chunk's `model`; Anthropic: message_start's
   *  `message.model`); by default the one asked for. Real providers often name a dated version. */
  readonly responseModel?: string;
}

export interface Received {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Record<string, unknown>;
}

export interface ProviderDouble {
  readonly url: string;
  /** TCP connections accepted so far, and still open. */
  readonly connections: { accepted: number; open: number };
  /** Resolves once no connection is open (at once if none is). */
  whenNoConnections(): Promise<void>;
  readonly received: Received[];
  /** Requests whose client went away before the double ended the response. */
  aborted: number;
  /** Text tokens written so far, over all requests. */
  written: number;
  /** Resolves the next time a write finds the socket full (the reader has stopped reading). */
  nextBlocked(): Promise<void>;
  /** Resolves at the next such abort. */
  nextAbort(): Promise<void>;
  /** Resolves when the next request has arrived. */
  nextRequest(): Promise<Received>;
  close(): Promise<void>;
}

const sse = (res: ServerResponse, data: unknown, event?: string): boolean =>
  res.write(`${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);

export async function startProviderDouble(format: DoubleFormat, behave: (body: Record<string, unknown>) => Behaviour): Promise<ProviderDouble> {
  const received: Received[] = [];
  let abortWaiters: (() => void)[] = [];
  let requestWaiters: ((r: Received) => void)[] = [];
  let blockedWaiters: (() => void)[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    const r: Received = { path: req.url ?? '', headers: req.headers, body };
    received.push(r);
    for (const w of requestWaiters.splice(0)) w(r);
    let ended = false;
    res.on('close', () => {
      if (ended) return;
      double.aborted++;
      for (const w of abortWaiters.splice(0)) w();
    });
    const finish = () => {
      ended = true;
      res.end();
    };
    const b = behave(body);
    if (b.status !== undefined && b.status !== 200) {
      ended = true;
      const payload = format === 'openai-chat' ? { error: { message: 'double: refused', type: 'double' } } : { type: 'error', error: { type: 'double', message: 'double: refused' } };
      res.writeHead(b.status, { 'content-type': 'application/json', ...(b.retryAfter !== undefined ? { 'retry-after': b.retryAfter } : {}) });
      res.end(JSON.stringify(payload));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    const tokens = b.tokens ?? ['Hello', ',', ' world'];
    const inputTokens = b.inputTokens ?? 7;
    const model = b.responseModel ?? String(body.model);
    const write = async (data: unknown, event?: string) => {
      if (!sse(res, data, event) && !res.destroyed) {
        for (const w of blockedWaiters.splice(0)) w();
        // Both listeners go once either fires (events.once would leave the loser's behind on every blocked write).
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
    };
    const id = 'double-1';
    if (format === 'anthropic-messages') {
      await write({ type: 'message_start', message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: inputTokens, output_tokens: 1 } } }, 'message_start');
      await write({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, 'content_block_start');
      await write({ type: 'ping' }, 'ping');
    }
    for (let i = 0; i < tokens.length; i++) {
      if (res.destroyed) return;
      if (b.stallAfter === i) return; // silent until the client aborts
      if (b.errorAfter === i) {
        if (format === 'openai-chat') await write({ error: { message: 'double: overloaded mid-stream', type: 'server_error' } });
        else await write({ type: 'error', error: { type: 'overloaded_error', message: 'double: overloaded mid-stream' } }, 'error');
        return finish();
      }
      if (b.gate && i >= (b.gateAfter ?? 0)) await b.gate();
      double.written++;
      const text = b.text ? b.text(i) : tokens[i];
      if (format === 'openai-chat') {
        await write({ id, object: 'chat.completion.chunk', created: 0, model, choices: [{ index: 0, delta: i === 0 ? { role: 'assistant', content: text } : { content: text }, finish_reason: null }], usage: null });
      } else {
        await write({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }, 'content_block_delta');
      }
    }
    if (b.stallAfter === tokens.length) return;
    if (format === 'openai-chat') {
      await write({ id, object: 'chat.completion.chunk', created: 0, model, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: null });
      await write({ id, object: 'chat.completion.chunk', created: 0, model, choices: [], usage: { prompt_tokens: inputTokens, completion_tokens: tokens.length, total_tokens: inputTokens + tokens.length } });
      await write('[DONE]');
    } else {
      await write({ type: 'content_block_stop', index: 0 }, 'content_block_stop');
      await write({ type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: tokens.length } }, 'message_delta');
      await write({ type: 'message_stop' }, 'message_stop');
    }
    finish();
  });
  const connections = { accepted: 0, open: 0 };
  let idleWaiters: (() => void)[] = [];
  server.on('connection', (socket) => {
    connections.accepted++;
    connections.open++;
    socket.once('close', () => {
      connections.open--;
      if (connections.open === 0) for (const w of idleWaiters.splice(0)) w();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const double: ProviderDouble = {
    url: `http://127.0.0.1:${port}`,
    connections,
    whenNoConnections: () => (connections.open === 0 ? Promise.resolve() : new Promise((resolve) => idleWaiters.push(resolve))),
    received,
    aborted: 0,
    written: 0,
    nextBlocked: () => new Promise((resolve) => blockedWaiters.push(resolve)),
    nextAbort: () => new Promise((resolve) => abortWaiters.push(resolve)),
    nextRequest: () => new Promise((resolve) => requestWaiters.push(resolve)),
    close: async () => {
      abortWaiters = [];
      requestWaiters = [];
      blockedWaiters = [];
      idleWaiters = [];
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
  return double;
}
