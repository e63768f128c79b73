// An idle load generator of bench/idle-connections.ts: opens WebSocket connections (ws client, default options)
// from several loopback source addresses, holds them open without sending anything, and counts the pings that
// arrive on them. Driven over IPC; exits when its parent goes away.
import WebSocket from 'ws';
import type { FromIdleGenerator, IdleGeneratorStatus, ToIdleGenerator } from './idle-protocol.ts';

const conns = new Set<WebSocket>();
let lost = 0;
let pings = 0;
let opened = 0;
let closing = false;

const status = (): IdleGeneratorStatus => ({ open: conns.size, lost, pings });

function openOne(url: string, localAddress: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    // Default client options (permessage-deflate offered, as browsers do), plus the source address: each
    // source address has its own ~28,000 ephemeral ports (net.ipv4.ip_local_port_range).
    const ws = new WebSocket(url, { localAddress });
    const timer = setTimeout(() => fail(new Error(`handshake not done in ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      ws.terminate();
      reject(err);
    };
    ws.once('error', fail);
    ws.once('open', () => {
      clearTimeout(timer);
      ws.off('error', fail);
      ws.on('error', () => undefined);
      ws.on('ping', () => pings++);
      ws.once('close', () => {
        conns.delete(ws);
        if (!closing) lost++;
      });
      conns.add(ws);
      resolve();
    });
  });
}

async function open(m: Extract<ToIdleGenerator, { t: 'open' }>): Promise<FromIdleGenerator> {
  let failed = 0;
  let error: string | undefined;
  let next = 0;
  const lane = async () => {
    while (next < m.count) {
      next++;
      const src = m.sources[opened++ % m.sources.length];
      try {
        await openOne(m.url, src, m.timeoutMs);
      } catch (err) {
        failed++;
        error ??= `${src}: ${err instanceof Error ? err.message : String(err)}`;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(m.concurrency, m.count) }, lane));
  return { t: 'opened', failed, ...(error ? { error } : {}), ...status() };
}

function main(): void {
  if (!process.send) throw new Error('idle-generator.ts is started by bench/idle-connections.ts (needs an IPC channel)');
  const send = (m: FromIdleGenerator) => process.send?.(m);
  process.on('message', (m: ToIdleGenerator) => {
    if (m.t === 'open') void open(m).then(send);
    else if (m.t === 'status') send({ t: 'status', ...status() });
    else {
      closing = true;
      for (const ws of conns) ws.terminate();
      process.exit(0);
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  send({ t: 'hello' });
}

main();
