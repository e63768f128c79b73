// CPU of the relay per echo with permessage-deflate negotiated, against the same echo uncompressed: the cost of
// inflating every compressed message alongside (src/proxy/relay/inflate.ts). The full bench (bench/run.ts) needs
// nginx and HAProxy; this runs only these scenarios, with the relay of test/support/raw-proxy.ts (the Relay
// behind a bare handshake pass-through) in this process, and a ws echo backend and a ws load generator in child
// processes, so the CPU measured (process.cpuUsage around the run) is the relay's alone.
//
//   node --import tsx bench/deflate-echo.ts [--rounds N] [--messages64 N] [--messages16k N]
//
// Payloads are text of repeated JSON-like records (compressible like chat or market data, not like 'aaaa').
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { WebSocket, WebSocketServer } from 'ws';
import { startRawProxy } from '../test/support/raw-proxy.ts';

const self = new URL(import.meta.url).pathname;

function payload(size: number): Buffer {
  let s = '';
  for (let i = 0; s.length < size; i++) s += `{"id":${i},"sym":"ABC${i % 7}","px":${(100 + (i * 37) % 50) / 4},"qty":${(i * 13) % 900}}`;
  return Buffer.from(s.slice(0, size));
}

async function backend(deflate: boolean): Promise<void> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: deflate ? { threshold: 0 } : false });
  wss.on('connection', (ws) => {
    ws.on('message', (d, isBinary) => ws.send(d as Buffer, { binary: isBinary }));
    ws.on('error', () => ws.terminate());
  });
  await once(wss, 'listening');
  console.log(`port ${(wss.address() as { port: number }).port}`);
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

async function load(url: string, size: number, deflate: boolean, conns: number, inflight: number, messages: number): Promise<void> {
  const ws: WebSocket[] = [];
  for (let i = 0; i < conns; i++) {
    const w = new WebSocket(url, { perMessageDeflate: deflate ? { threshold: 0 } : false });
    await once(w, 'open');
    if (deflate !== /permessage-deflate/.test(w.extensions)) throw new Error(`extensions: ${w.extensions}`);
    ws.push(w);
  }
  const body = payload(size);
  console.log('ready');
  const rl = createInterface({ input: process.stdin });
  await once(rl, 'line');
  let sent = 0;
  let received = 0;
  await new Promise<void>((resolve) => {
    for (const w of ws) {
      w.on('message', () => {
        if (++received >= messages) return resolve();
        if (sent < messages) {
          sent++;
          w.send(body);
        }
      });
      for (let k = 0; k < inflight && sent < messages; k++) {
        sent++;
        w.send(body);
      }
    }
  });
  console.log('done');
  for (const w of ws) w.terminate();
  process.exit(0);
}

function child(args: string[]): { p: ChildProcess; lines: AsyncIterator<string> } {
  const p = spawn(process.execPath, ['--import', 'tsx', self, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  return { p, lines: createInterface({ input: p.stdout! })[Symbol.asyncIterator]() };
}

async function scenario(size: number, deflate: boolean, messages: number, conns: number, inflight: number): Promise<number> {
  const b = child(['backend', deflate ? '1' : '0']);
  const port = Number(((await b.lines.next()).value as string).split(' ')[1]);
  const proxy = await startRawProxy({ upstreamPort: port, maxMessageBytes: 1 << 20 });
  const l = child(['load', proxy.url, String(size), deflate ? '1' : '0', String(conns), String(inflight), String(messages)]);
  if ((await l.lines.next()).value !== 'ready') throw new Error('load generator not ready');
  const before = process.cpuUsage();
  l.p.stdin!.write('go\n');
  if ((await l.lines.next()).value !== 'done') throw new Error('load generator failed');
  const used = process.cpuUsage(before);
  const inflated = proxy.relays.reduce((n, r) => n + r.inflatedBytes('client') + r.inflatedBytes('upstream'), 0);
  if (deflate && inflated < messages * size) throw new Error(`inflated ${inflated} < ${messages * size}`);
  await proxy.close();
  b.p.stdin!.end();
  return (used.user + used.system) / messages;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === 'backend') return backend(argv[1] === '1');
  if (argv[0] === 'load') return load(argv[1], Number(argv[2]), argv[3] === '1', Number(argv[4]), Number(argv[5]), Number(argv[6]));
  const opt = (name: string, d: number) => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : d;
  };
  const rounds = opt('--rounds', 3);
  const m64 = opt('--messages64', 40_000);
  const m16k = opt('--messages16k', 8_000);
  const rows: [string, number, boolean, number][] = [
    ['64 B echo', 64, false, m64],
    ['64 B echo, permessage-deflate', 64, true, m64],
    ['16 KiB echo', 16 * 1024, false, m16k],
    ['16 KiB echo, permessage-deflate', 16 * 1024, true, m16k],
  ];
  const results = new Map<string, number[]>();
  // Warm-up (unmeasured), then rounds alternating the scenarios so drift hits them alike.
  for (const [, size, deflate] of rows) await scenario(size, deflate, 2000, 8, 2);
  for (let r = 0; r < rounds; r++) {
    for (const [name, size, deflate, n] of rows) {
      const us = await scenario(size, deflate, n, 16, 4);
      results.set(name, [...(results.get(name) ?? []), us]);
    }
  }
  console.log(`| scenario | relay CPU µs per echo (median of ${rounds}) | rounds |`);
  console.log('| --- | --- | --- |');
  for (const [name] of rows) {
    const v = [...results.get(name)!].sort((a, b) => a - b);
    console.log(`| ${name} | ${v[Math.floor(v.length / 2)].toFixed(1)} | ${v.map((x) => x.toFixed(1)).join(', ')} |`);
  }
}

await main();
