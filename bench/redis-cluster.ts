// Cluster-wide budgets: what Redis costs per handshake. Not a test: it prints a table (paste it into
// BENCHMARKS.md). `npm run bench:redis [-- --handshakes N --rounds R --concurrency C]`
//
// In this process: a wsgate proxy wired as the data plane wires it, on a route with every cluster-wide budget
// (maxConnections, maxConnectionsPerIP, connectionsPerMinutePerIP, all high enough never to refuse), a ws echo
// backend, and a ws client doing connect + upgrade + close, C at a time. Scenarios alternate per round: no Redis
// (the per-process limiter), and a real redis-server on loopback (started here). Redis operations are the
// server's own count (INFO commandstats: every command, scripts and the commands they run) over the run,
// divided per 1,000 handshakes; latency is the client's, from the socket opening to the 101.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { createClient } from 'redis';
import { WebSocket } from 'ws';
import { startEcho, staticRoute } from '../test/support/harness.ts';
import { redisConfig, startClusterGate, type ClusterGate } from '../test/support/redis-gate.ts';
import { redisMissing, startRedis } from '../test/support/redis-server.ts';

const { values } = parseArgs({ options: { handshakes: { type: 'string', default: '2000' }, rounds: { type: 'string', default: '3' }, concurrency: { type: 'string', default: '8' } } });
const total = Number(values.handshakes);
const rounds = Number(values.rounds);
const concurrency = Number(values.concurrency);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function handshakes(url: string, n: number): Promise<number[]> {
  const times: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const t0 = performance.now();
      const ws = new WebSocket(url, { perMessageDeflate: false });
      await once(ws, 'open');
      times.push(performance.now() - t0);
      ws.close();
      await once(ws, 'close');
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return times.sort((a, b) => a - b);
}

/** Round trips (EVALSHA/EVAL calls: one per script run) and every command run (the scripts' own included). */
async function commandCalls(url: string): Promise<{ trips: number; commands: number }> {
  const c = createClient({ url });
  await c.connect();
  const info = await c.info('commandstats');
  await c.close();
  let trips = 0;
  let commands = 0;
  for (const m of info.matchAll(/^cmdstat_(\w+(?:\|\w+)?):calls=(\d+)/gm)) {
    if (m[1] === 'info' || m[1] === 'client|setinfo' || m[1] === 'hello') continue;
    commands += Number(m[2]);
    if (m[1] === 'evalsha' || m[1] === 'eval') trips += Number(m[2]);
  }
  return { trips, commands };
}

async function main(): Promise<void> {
  const missing = redisMissing();
  if (missing) throw new Error(missing);
  const redis = await startRedis();
  const echo = await startEcho();
  const routes = [staticRoute('bench', [echo.address], { limits: { maxConnections: 1000000, maxConnectionsPerIP: 100000 }, rateLimit: { connectionsPerMinutePerIP: 1000000 } })];
  const rows: { scenario: string; p50: number; p99: number; trips: number; commands: number }[] = [];
  const run = async (scenario: string, gate: ClusterGate, redisUrl?: string) => {
    const url = `ws://127.0.0.1:${(gate.gate.proxy.server.address() as AddressInfo).port}/`;
    await handshakes(url, 200); // warm-up, not measured
    // Let the warm-up's releases reach Redis before counting.
    await new Promise((r) => setTimeout(r, 100));
    const zero = { trips: 0, commands: 0 };
    const before = redisUrl ? await commandCalls(redisUrl) : zero;
    const times = await handshakes(url, total);
    await new Promise((r) => setTimeout(r, 100));
    const after = redisUrl ? await commandCalls(redisUrl) : zero;
    const per = (a: number, b: number) => ((a - b) / total) * 1000;
    rows.push({ scenario, p50: percentile(times, 50), p99: percentile(times, 99), trips: per(after.trips, before.trips), commands: per(after.commands, before.commands) });
  };
  for (let r = 0; r < rounds; r++) {
    const local = await startClusterGate(routes, undefined);
    await run('per process (no Redis)', local);
    await local.close();
    const shared = await startClusterGate(routes, redisConfig(redis.url, { keyPrefix: `bench${r}:` }));
    await run('cluster-wide (Redis)', shared, redis.url);
    await shared.close();
  }
  await echo.close();
  await redis.stop();
  const med = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const lines = ['| scenario | handshake p50 ms | p99 ms | Redis round trips per 1,000 handshakes | Redis commands per 1,000 (scripts\' included) | p50 per round |', '| --- | --- | --- | --- | --- | --- |'];
  for (const s of ['per process (no Redis)', 'cluster-wide (Redis)']) {
    const mine = rows.filter((x) => x.scenario === s);
    lines.push(`| ${s} | ${med(mine.map((x) => x.p50)).toFixed(2)} | ${med(mine.map((x) => x.p99)).toFixed(2)} | ${med(mine.map((x) => x.trips)).toFixed(0)} | ${med(mine.map((x) => x.commands)).toFixed(0)} | ${mine.map((x) => x.p50.toFixed(2)).join(', ')} |`);
  }
  process.stdout.write(`${total} handshakes x ${rounds} rounds, ${concurrency} at a time\n${lines.join('\n')}\n`);
}

main().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
