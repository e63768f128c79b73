// Added latency of the LLM front: time to first token and delivery time per token through a real wsgate process
// (standalone config, one `llm` rule) against the provider test double called directly (fetch + the same SSE
// parsing). The double and both clients run in this process, so every token carries the double's
// performance.now() at its write: a token's delivery time is its arrival at the client minus that stamp, on one
// clock. The first token is written as soon as the headers are; the others 1 ms apart, so each travels alone
// (no coalescing into one read) and the per-token figure is a real per-token path.
// Requests alternate between the two paths, and each round starts with the other one, so machine noise hits both
// alike. Bounded: rounds × requests requests each way.
//
//   npm run bench:llm -- [--rounds N] [--requests N] [--tokens N] [--cli dist/cli.js] [--cpu 0]
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { LLM_SUBPROTOCOL } from '../src/llm/protocol.ts';
import { codecs } from '../src/llm/providers/codecs.ts';
import { SseDecoder } from '../src/llm/sse.ts';
import { startProviderDouble, type ProviderDouble } from '../test/support/llm-provider-double.ts';
import { freePort } from './targets.ts';

export interface LlmLatencyOptions {
  readonly rounds: number;
  /** Requests per path per round. */
  readonly requests: number;
  /** Tokens per reply (the first unpaced, the rest 1 ms apart). */
  readonly tokens: number;
  /** How to start wsgate: the node binary and its arguments before wsgate's own flags. */
  readonly node: string;
  readonly cli: readonly string[];
  /** Pins wsgate to this CPU with taskset, if given. */
  readonly cpu?: string;
  /** Added to (or, empty, removed from) wsgate's inherited environment, as bench/run.ts does for its target. */
  readonly env?: Readonly<Record<string, string>>;
  readonly repo: string;
}

/** One round: p50 and p99 of each path, in ms. */
export interface LlmLatencyRound {
  readonly ttft: { readonly direct: Pct; readonly wsgate: Pct };
  readonly perToken: { readonly direct: Pct; readonly wsgate: Pct };
  /** wsgate's threads per request through it, µs, from /proc/<pid>/task/<tid>/schedstat (undefined without it):
   *  time on a CPU, and time runnable but waiting for one. */
  readonly wsgateCpuUs?: number;
  readonly wsgateWaitUs?: number;
}
interface Pct {
  readonly p50: number;
  readonly p99: number;
}

const KEY = 'sk-bench-provider-key';
const PACE_MS = 1;

function config(doubleUrl: string, keyFile: string): string {
  return `apiVersion: wsgate.io/v1alpha1
kind: WebSocketRoute
metadata: { name: llm, namespace: default }
spec:
  rules:
    - llm:
        providers:
          - name: double
            baseUrl: ${doubleUrl}
            format: openai-chat
            credentials: { file: ${keyFile} }
            models: [m]
        limits: { requestsPerMinute: 1000000, tokensPerMinute: 1000000000 }
`;
}

const pct = (xs: readonly number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const pcts = (xs: readonly number[]): Pct => ({ p50: pct(xs, 50), p99: pct(xs, 99) });
const stampOf = (text: string): number => Number(text.slice(1));

/** [ns on a CPU, ns waiting on a run queue] summed over a process's threads (Linux, CONFIG_SCHED_INFO:
 *  https://docs.kernel.org/scheduler/sched-stats.html, "/proc/<pid>/schedstat"). */
function schedstat(pid: number): [number, number] | undefined {
  try {
    let run = 0;
    let wait = 0;
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const [r, w] = readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ').map(Number);
      run += r!;
      wait += w!;
    }
    return run > 0 ? [run, wait] : undefined;
  } catch {
    return undefined;
  }
}

async function startWsgate(o: LlmLatencyOptions, conf: string): Promise<{ url: string; proc: ChildProcess }> {
  const [port, admin] = [await freePort(), await freePort()];
  const args = [...o.cli, '--config', conf, '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${admin}`, '--log-level', 'warn'];
  const [cmd, argv] = o.cpu !== undefined ? ['taskset', ['-c', o.cpu, o.node, ...args]] : [o.node, args];
  const env = { ...process.env };
  for (const [k, v] of Object.entries(o.env ?? {})) {
    if (v === '') delete env[k];
    else env[k] = v;
  }
  const proc = spawn(cmd, argv, { cwd: o.repo, env, stdio: ['ignore', 'ignore', 'inherit'] });
  // However this process ends (bench/run.ts exits on SIGINT), wsgate does not outlive it.
  const kill = () => proc.kill('SIGKILL');
  process.once('exit', kill);
  proc.once('exit', () => process.off('exit', kill));
  const deadline = performance.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`wsgate exited with ${proc.exitCode}`);
    try {
      const res = await fetch(`http://127.0.0.1:${admin}/readyz`, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error('wsgate did not become ready within 30 s');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `ws://127.0.0.1:${port}/`, proc };
}

export async function benchLlmLatency(o: LlmLatencyOptions, log: (s: string) => void = () => {}): Promise<LlmLatencyRound[]> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'wsgate-llm-bench-'));
  let double: ProviderDouble | undefined;
  let proc: ChildProcess | undefined;
  let ws: WebSocket | undefined;
  try {
    const pace = () => new Promise<void>((r) => setTimeout(r, PACE_MS));
    const text = () => `t${performance.now()}`;
    double = await startProviderDouble('openai-chat', () => ({ tokens: Array.from({ length: o.tokens }, () => ''), text, gate: pace, gateAfter: 1 }));
    writeFileSync(path.join(tmp, 'key'), KEY);
    writeFileSync(path.join(tmp, 'wsgate.yaml'), config(double.url, 'key'));
    const started = await startWsgate(o, path.join(tmp, 'wsgate.yaml'));
    proc = started.proc;
    const sock = new WebSocket(started.url, LLM_SUBPROTOCOL);
    ws = sock;
    await once(sock, 'open');
    const doubleUrl = double.url;
    const messages = [{ role: 'user' as const, content: 'hi' }];

    /** [time to first token, per-token delivery times of the paced tokens], ms. */
    const direct = async (): Promise<[number, number[]]> => {
      const t0 = performance.now();
      const wire = codecs['openai-chat'].request('m', messages, { maxTokens: 64 }, KEY);
      const res = await fetch(doubleUrl + wire.path, { method: 'POST', headers: wire.headers, body: wire.body });
      const sse = new SseDecoder();
      const decode = codecs['openai-chat'].decoder();
      let first = 0;
      const per: number[] = [];
      for await (const chunk of res.body!) {
        for (const ev of sse.push(chunk as Uint8Array)) {
          for (const p of decode(ev.event, ev.data)) {
            if (p.kind !== 'text') continue;
            const now = performance.now();
            if (first === 0) first = now;
            else per.push(now - stampOf(p.text));
          }
        }
      }
      return [first - t0, per];
    };

    let seq = 0;
    const viaWsgate = (): Promise<[number, number[]]> => {
      const id = String(++seq);
      const t0 = performance.now();
      let first = 0;
      const per: number[] = [];
      return new Promise((resolve, reject) => {
        const on = (d: Buffer) => {
          const now = performance.now();
          const m = JSON.parse(String(d)) as { id: string; type: string; text?: string; code?: string };
          if (m.id !== id) return;
          if (m.type === 'delta') {
            if (first === 0) first = now;
            else per.push(now - stampOf(m.text!));
          } else {
            sock.off('message', on);
            if (m.type === 'done') resolve([first - t0, per]);
            else reject(new Error(`wsgate answered ${m.type} ${m.code ?? ''}`));
          }
        };
        sock.on('message', on);
        sock.send(JSON.stringify({ type: 'request', id, model: 'm', messages }));
      });
    };

    // Warm-up, not measured: JIT on both sides, keep-alive connections to the double.
    for (let i = 0; i < 20; i++) {
      await direct();
      await viaWsgate();
    }
    const rounds: LlmLatencyRound[] = [];
    for (let r = 0; r < o.rounds; r++) {
      const before = schedstat(proc.pid!);
      const d = { ttft: [] as number[], tok: [] as number[] };
      const w = { ttft: [] as number[], tok: [] as number[] };
      for (let i = 0; i < o.requests; i++) {
        const order = (i + r) % 2 === 0 ? (['d', 'w'] as const) : (['w', 'd'] as const);
        for (const which of order) {
          const [ttft, per] = which === 'd' ? await direct() : await viaWsgate();
          const into = which === 'd' ? d : w;
          into.ttft.push(ttft);
          into.tok.push(...per);
        }
      }
      const after = schedstat(proc.pid!);
      const sched = before && after ? { wsgateCpuUs: (after[0] - before[0]) / 1000 / o.requests, wsgateWaitUs: (after[1] - before[1]) / 1000 / o.requests } : {};
      const round = { ttft: { direct: pcts(d.ttft), wsgate: pcts(w.ttft) }, perToken: { direct: pcts(d.tok), wsgate: pcts(w.tok) }, ...sched };
      rounds.push(round);
      log(`llm round ${r + 1}/${o.rounds}: added TTFT p50 ${(round.ttft.wsgate.p50 - round.ttft.direct.p50).toFixed(3)} ms, added per token p50 ${(round.perToken.wsgate.p50 - round.perToken.direct.p50).toFixed(3)} ms`);
    }
    return rounds;
  } finally {
    ws?.close();
    if (proc && proc.exitCode === null) {
      proc.kill('SIGINT');
      await once(proc, 'exit');
    }
    await double?.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const f = (x: number) => x.toFixed(3);

/** Medians over the rounds, with the spread (min–max) of the per-round values. */
export function llmLatencyTable(rounds: readonly LlmLatencyRound[]): string {
  const row = (label: string, get: (r: LlmLatencyRound) => { direct: number; wsgate: number }) => {
    const added = rounds.map((r) => get(r).wsgate - get(r).direct);
    return `| ${label} | ${f(median(rounds.map((r) => get(r).direct)))} | ${f(median(rounds.map((r) => get(r).wsgate)))} | ${f(median(added))} | ${f(Math.min(...added))} – ${f(Math.max(...added))} |`;
  };
  const sched = (label: string, get: (r: LlmLatencyRound) => number | undefined) => {
    const xs = rounds.map(get).filter((x): x is number => x !== undefined).map((x) => x / 1000);
    return xs.length === rounds.length ? [`| ${label} | | | ${f(median(xs))} | ${f(Math.min(...xs))} – ${f(Math.max(...xs))} |`] : [];
  };
  return [
    '| ms | direct | through wsgate | added (median of rounds) | added, spread over rounds |',
    '|---|---:|---:|---:|---:|',
    row('time to first token p50', (r) => ({ direct: r.ttft.direct.p50, wsgate: r.ttft.wsgate.p50 })),
    row('time to first token p99', (r) => ({ direct: r.ttft.direct.p99, wsgate: r.ttft.wsgate.p99 })),
    row('per-token delivery p50', (r) => ({ direct: r.perToken.direct.p50, wsgate: r.perToken.wsgate.p50 })),
    row('per-token delivery p99', (r) => ({ direct: r.perToken.direct.p99, wsgate: r.perToken.wsgate.p99 })),
    ...sched('wsgate on a CPU, per request (all threads)', (r) => r.wsgateCpuUs),
    ...sched('wsgate runnable but waiting for a CPU, per request (all threads)', (r) => r.wsgateWaitUs),
  ].join('\n');
}

function parse(argv: readonly string[]): { rounds: number; requests: number; tokens: number; cli: string[]; cpu?: string } {
  const out: { rounds: number; requests: number; tokens: number; cli: string[]; cpu?: string } = { rounds: 5, requests: 100, tokens: 16, cli: ['--import', 'tsx', 'src/cli.ts'] };
  const int = (v: string | undefined, lo: number, hi: number, name: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < lo || n > hi) throw new Error(`${name} wants an integer ${lo}..${hi}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--rounds') out.rounds = int(argv[++i], 1, 50, a);
    else if (a === '--requests') out.requests = int(argv[++i], 10, 10_000, a);
    else if (a === '--tokens') out.tokens = int(argv[++i], 2, 1000, a);
    else if (a === '--cli') out.cli = (argv[++i] ?? 'dist/cli.js').split(' ').filter(Boolean);
    else if (a === '--cpu') out.cpu = argv[++i] ?? '0';
    else throw new Error(`unknown argument ${a}\nusage: npm run bench:llm -- [--rounds N] [--requests N] [--tokens N] [--cli dist/cli.js] [--cpu 0]`);
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const a = parse(process.argv.slice(2));
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const load = os.loadavg()[0]!.toFixed(2);
  const rounds = await benchLlmLatency({ ...a, node: process.execPath, repo }, (s) => process.stderr.write(`${s}\n`));
  console.log(`LLM front: ${a.rounds} rounds × ${a.requests} requests each way, ${a.tokens} tokens per reply (1 ms apart after the first); wsgate: node ${a.cli.join(' ')}${a.cpu !== undefined ? ` on CPU ${a.cpu}` : ''}; load average at start ${load}`);
  console.log(llmLatencyTable(rounds));
}
