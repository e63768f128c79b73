// Added latency of the LLM front: time to first token and time per token through wsgate (ws client → session →
// provider double) against the same double called directly with fetch and the same SSE decoding. Requests
// alternate direct / through wsgate so that machine noise hits both alike. Bounded: ROUNDS requests each.
// Run: node --import tsx bench/llm-ttft.ts [rounds]
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { WebSocket, WebSocketServer } from 'ws';
import { PrincipalLimits } from '../src/llm/limits.ts';
import { LlmMetrics } from '../src/llm/metrics.ts';
import { LLM_SUBPROTOCOL } from '../src/llm/protocol.ts';
import { codecs } from '../src/llm/providers/codecs.ts';
import type { LlmRoute } from '../src/llm/route.ts';
import { LlmSession } from '../src/llm/session.ts';
import { SseDecoder } from '../src/llm/sse.ts';
import { systemClock } from '../src/util/clock.ts';
import { startProviderDouble } from '../test/support/llm-provider-double.ts';

const ROUNDS = Number(process.argv[2] ?? 300);
const TOKENS = 32;
const tokens = Array.from({ length: TOKENS }, (_, i) => ` tok${i}`);

const double = await startProviderDouble('openai-chat', () => ({ tokens }));
const clock = systemClock();
const route: LlmRoute = {
  namespace: 'bench',
  name: 'llm',
  providers: [{ name: 'double', baseUrl: double.url, format: 'openai-chat', apiKey: 'k', models: ['m'], timeouts: { connectMs: 10_000, firstTokenMs: 10_000, idleMs: 10_000, totalMs: 60_000 } }],
  aliases: {},
  limits: { concurrentPerConnection: 4, concurrentPerPrincipal: 4, requestsPerMinute: 1e9, tokensPerMinute: 1e12 },
  params: { maxTokens: 64, temperature: { min: 0, max: 2 } },
  maxMessageBytes: 65536,
  coalesceMs: 0,
  highWaterBytes: 65536,
  logContent: false,
  conversation: { enabled: false, maxTurns: 32, maxBytes: 65536 },
};
const limits = new PrincipalLimits(route.limits, clock);
const metrics = new LlmMetrics(new Registry());
const http = createServer();
const wss = new WebSocketServer({ server: http, handleProtocols: () => LLM_SUBPROTOCOL });
wss.on('connection', (ws) => new LlmSession(ws, 'bench', { route, clock, limits, metrics }));
http.listen(0, '127.0.0.1');
await once(http, 'listening');
const ws = new WebSocket(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`, LLM_SUBPROTOCOL);
await once(ws, 'open');

const messages = [{ role: 'user' as const, content: 'hi' }];

async function direct(): Promise<[number, number]> {
  const t0 = performance.now();
  const wire = codecs['openai-chat'].request('m', messages, { maxTokens: 64 }, 'k');
  const res = await fetch(double.url + wire.path, { method: 'POST', headers: wire.headers, body: wire.body });
  const sse = new SseDecoder();
  const decode = codecs['openai-chat'].decoder();
  let first = 0;
  for await (const chunk of res.body!) {
    for (const ev of sse.push(chunk as Uint8Array)) for (const p of decode(ev.event, ev.data)) if (p.kind === 'text' && first === 0) first = performance.now();
  }
  return [first - t0, performance.now() - first];
}

let seq = 0;
function viaWsgate(): Promise<[number, number]> {
  const id = String(++seq);
  const t0 = performance.now();
  let first = 0;
  return new Promise((resolve) => {
    const on = (d: Buffer) => {
      const m = JSON.parse(String(d)) as { id: string; type: string };
      if (m.id !== id) return;
      if (m.type === 'delta' && first === 0) first = performance.now();
      if (m.type === 'done' || m.type === 'error') {
        ws.off('message', on);
        resolve([first - t0, performance.now() - first]);
      }
    };
    ws.on('message', on);
    ws.send(JSON.stringify({ type: 'request', id, model: 'm', messages }));
  });
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const d: { ttft: number[]; rest: number[] } = { ttft: [], rest: [] };
const w: { ttft: number[]; rest: number[] } = { ttft: [], rest: [] };
// Warm-up: JIT, keep-alive connections.
for (let i = 0; i < 20; i++) {
  await direct();
  await viaWsgate();
}
for (let i = 0; i < ROUNDS; i++) {
  const [a, b] = await direct();
  d.ttft.push(a);
  d.rest.push(b);
  const [c, e] = await viaWsgate();
  w.ttft.push(c);
  w.rest.push(e);
}
const f = (x: number) => x.toFixed(3);
const perTok = (xs: number[]) => xs.map((x) => (x * 1000) / (TOKENS - 1));
console.log(`LLM front, ${ROUNDS} requests each way, ${TOKENS} tokens per reply, double + wsgate + client in one process on loopback`);
console.log('| measure | direct (fetch) | through wsgate (ws) | added |');
console.log('|---|---:|---:|---:|');
for (const p of [50, 99]) console.log(`| time to first token p${p} ms | ${f(pct(d.ttft, p))} | ${f(pct(w.ttft, p))} | ${f(pct(w.ttft, p) - pct(d.ttft, p))} |`);
for (const p of [50, 99]) console.log(`| per token after the first p${p} µs | ${f(pct(perTok(d.rest), p))} | ${f(pct(perTok(w.rest), p))} | ${f(pct(perTok(w.rest), p) - pct(perTok(d.rest), p))} |`);
ws.close();
limits.close();
wss.close();
http.close();
await double.close();
