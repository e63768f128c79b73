// Handshake CPU with tracing off, at ratio 0.01 and at ratio 1.0: the proxy (ProxyServer with the real route
// table, as test/support/harness.ts builds it) runs in this process; a ws echo backend, a stand-in collector
// (accepts OTLP/HTTP posts and answers 200) and a ws load generator run in child processes, so the CPU measured
// (process.cpuUsage around each run) is the proxy's own, its span export (JSON encoding, HTTP posts) included.
//
//   node --expose-gc --import tsx bench/tracing.ts [--rounds N] [--handshakes N] [--concurrency N] [--idle N]
//
// Then the proxy's heap per idle open connection, off against ratio 1.0 (a sampled connection keeps its span
// open until the close): --idle connections held open by the load generator, heap used after a full GC before
// and after.
//
// bench/run.ts runs the CPU part (benchTracing without idle) as its tracing section.
//
// Each handshake is a whole connection: connect, upgrade (the ws client offers permessage-deflate, as by
// default), one close handshake. Rounds alternate the three variants after an unmeasured warm-up of each.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { WebSocket, WebSocketServer } from 'ws';
import type { TracingConfig } from '../src/config/tracing.ts';
import { createTracing, type Tracing } from '../src/telemetry/tracing/provider.ts';
import { ProxyTracing } from '../src/telemetry/tracing/proxy-tracing.ts';
import { startGate, staticRoute } from '../test/support/harness.ts';

const self = new URL(import.meta.url).pathname;

async function backend(): Promise<void> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  wss.on('connection', (ws) => ws.on('error', () => ws.terminate()));
  await once(wss, 'listening');
  console.log(`port ${(wss.address() as { port: number }).port}`);
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

/** Reads and drops every post: a collector that keeps up. */
async function collector(): Promise<void> {
  let spans = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    req.on('end', () => {
      spans += body.split('"spanId"').length - 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  console.log(`port ${(server.address() as { port: number }).port}`);
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) if (line === 'count') console.log(`spans ${spans}`);
  process.exit(0);
}

/** Opens n connections, reports 'open', and holds them until stdin ends. */
async function hold(url: string, n: number): Promise<void> {
  const all: WebSocket[] = [];
  for (let i = 0; i < n; i++) {
    const ws = new WebSocket(url);
    ws.on('error', () => {});
    await once(ws, 'open');
    all.push(ws);
  }
  console.log('open');
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

async function load(url: string, total: number, concurrency: number): Promise<void> {
  console.log('ready');
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (line !== 'go') break;
    let started = 0;
    const one = async (): Promise<void> => {
      while (started < total) {
        started++;
        const ws = new WebSocket(url);
        ws.on('error', () => {});
        await once(ws, 'open');
        ws.close();
        await once(ws, 'close');
      }
    };
    await Promise.all(Array.from({ length: concurrency }, one));
    console.log('done');
  }
  process.exit(0);
}

function child(args: string[]): { p: ChildProcess; lines: AsyncIterator<string> } {
  const p = spawn(process.execPath, ['--import', 'tsx', self, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  return { p, lines: createInterface({ input: p.stdout! })[Symbol.asyncIterator]() };
}

async function next(c: { lines: AsyncIterator<string> }): Promise<string> {
  return (await c.lines.next()).value as string;
}

type Variant = 'off' | 0.01 | 1;

const variants: readonly Variant[] = ['off', 0.01, 1];

export interface TracingBenchOptions {
  readonly rounds: number;
  readonly handshakes: number;
  readonly concurrency: number;
  /** Unmeasured handshakes per variant first. */
  readonly warm: number;
  /** Connections held open for the heap rows; 0: none (they need node --expose-gc). */
  readonly idle: number;
}

export interface TracingBenchResult {
  readonly options: TracingBenchOptions;
  /** Per variant, one value per round. */
  readonly cpu: ReadonlyMap<Variant, readonly { readonly us: number; readonly spans: number }[]>;
  /** Per variant (off, 1), heap bytes per idle connection, one value per round; empty without idle. */
  readonly heap: ReadonlyMap<Variant, readonly number[]>;
}

/** Handshake CPU with tracing off, at 0.01 and at 1.0 (and, with idle and --expose-gc, heap per idle connection). */
export async function benchTracing(o: TracingBenchOptions): Promise<TracingBenchResult> {
  const { rounds, handshakes, concurrency, idle } = o;
  const gc = (globalThis as { gc?: () => void }).gc;
  if (idle > 0 && !gc) throw new Error('the heap rows need node --expose-gc (npm run bench:tracing runs with it)');

  const b = child(['backend']);
  const backendPort = Number((await next(b)).split(' ')[1]);
  const col = child(['collector']);
  const collectorPort = Number((await next(col)).split(' ')[1]);

  const tracingFor = (variant: Variant): Tracing | undefined => {
    if (variant === 'off') return undefined;
    {
      const c: TracingConfig = {
        url: `http://127.0.0.1:${collectorPort}/v1/traces`,
        headers: {},
        sampleRatio: variant,
        serviceName: 'wsgate-bench',
        resourceAttributes: {},
        exportTimeoutMs: 10000,
        maxQueueSize: 2048,
        maxExportBatchSize: 512,
        scheduledDelayMs: 5000,
      };
      return createTracing(c);
    }
  };

  const run = async (variant: Variant, n: number): Promise<{ us: number; spans: number }> => {
    const tracing = tracingFor(variant);
    const gate = await startGate([staticRoute('bench', [`127.0.0.1:${backendPort}`])], tracing ? { tracing: new ProxyTracing(tracing.tracer) } : {});
    const l = child(['load', gate.url('/'), String(n), String(concurrency)]);
    if ((await next(l)) !== 'ready') throw new Error('load generator not ready');
    col.p.stdin!.write('count\n');
    const spansBefore = Number((await next(col)).split(' ')[1]);
    const before = process.cpuUsage();
    l.p.stdin!.write('go\n');
    if ((await next(l)) !== 'done') throw new Error('load generator failed');
    await gate.connections.whenEmpty();
    // What is still queued is exported inside the measurement: its cost belongs to these handshakes.
    await tracing?.forceFlush();
    const used = process.cpuUsage(before);
    l.p.stdin!.end();
    await gate.close();
    await tracing?.shutdown();
    col.p.stdin!.write('count\n');
    const spans = Number((await next(col)).split(' ')[1]) - spansBefore;
    return { us: (used.user + used.system) / n, spans };
  };

  /** Heap bytes per idle open connection. */
  const memory = async (variant: Variant): Promise<number> => {
    const tracing = tracingFor(variant);
    const gate = await startGate([staticRoute('bench', [`127.0.0.1:${backendPort}`])], tracing ? { tracing: new ProxyTracing(tracing.tracer) } : {});
    gc!();
    const before = process.memoryUsage().heapUsed;
    const h = child(['hold', gate.url('/'), String(idle)]);
    if ((await next(h)) !== 'open') throw new Error('hold failed');
    // Ended handshake spans waiting for export are not what an open connection holds.
    await tracing?.forceFlush();
    gc!();
    const after = process.memoryUsage().heapUsed;
    if (gate.connections.size !== idle) throw new Error(`${gate.connections.size} open, not ${idle}`);
    h.p.stdin!.end();
    await gate.connections.whenEmpty();
    await gate.close();
    await tracing?.shutdown();
    return (after - before) / idle;
  };

  for (const v of variants) await run(v, o.warm);
  const results = new Map<Variant, { us: number; spans: number }[]>();
  for (let r = 0; r < rounds; r++) {
    for (const v of variants) results.set(v, [...(results.get(v) ?? []), await run(v, handshakes)]);
  }
  const heap = new Map<Variant, number[]>();
  if (idle > 0) for (let r = 0; r < rounds; r++) for (const v of ['off', 1] as const) heap.set(v, [...(heap.get(v) ?? []), await memory(v)]);
  b.p.stdin!.end();
  col.p.stdin!.end();
  return { options: o, cpu: results, heap };
}

const medianOf = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The CPU rows as a markdown table: one row per variant. */
export function tracingCpuTable(r: TracingBenchResult): string {
  const n = r.options.rounds;
  const lines = [`| tracing | proxy CPU µs per handshake (median of ${n}) | the ${n} rounds | spans exported per round |`, '| --- | ---: | --- | --- |'];
  for (const v of variants) {
    const rs = r.cpu.get(v) ?? [];
    if (rs.length === 0) continue;
    const name = v === 'off' ? 'off' : `ratio ${v === 1 ? '1.0' : v}`;
    lines.push(`| ${name} | ${medianOf(rs.map((x) => x.us)).toFixed(1)} | ${rs.map((x) => x.us.toFixed(1)).join(', ')} | ${rs.map((x) => x.spans).join(', ')} |`);
  }
  return lines.join('\n');
}

/** The heap rows as a markdown table; '' when they were not measured. */
export function tracingHeapTable(r: TracingBenchResult): string {
  if (r.heap.size === 0) return '';
  const n = r.options.rounds;
  const lines = [`| tracing | proxy heap bytes per idle connection, ${r.options.idle} open (median of ${n}) | the ${n} rounds |`, '| --- | ---: | --- |'];
  for (const v of ['off', 1] as const) {
    const xs = r.heap.get(v) ?? [];
    lines.push(`| ${v === 'off' ? 'off' : 'ratio 1'} | ${Math.round(medianOf(xs))} | ${xs.map((x) => Math.round(x)).join(', ')} |`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === 'backend') return backend();
  if (argv[0] === 'collector') return collector();
  if (argv[0] === 'load') return load(argv[1], Number(argv[2]), Number(argv[3]));
  if (argv[0] === 'hold') return hold(argv[1], Number(argv[2]));
  const opt = (name: string, d: number) => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : d;
  };
  const r = await benchTracing({ rounds: opt('--rounds', 3), handshakes: opt('--handshakes', 2000), concurrency: opt('--concurrency', 16), warm: 300, idle: opt('--idle', 2000) });
  console.log(tracingCpuTable(r));
  console.log('');
  console.log(tracingHeapTable(r));
}

// bench/run.ts imports this file for benchTracing; run as a script (or as one of its own children), it is main.
if (path.resolve(process.argv[1] ?? '') === self) await main();
