// The active connection of bench/idle-connections.ts: one ws client (default options) that sends a message of
// `size` bytes every `intervalMs` for `seconds` and times each echo. Its own process, so the idle generators'
// event loops do not show up in its round trips. Runs one job, reports, exits.
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import type { FromProbe, ProbeJob, ProbeResult, ToProbe } from './idle-protocol.ts';

function run(job: ProbeJob): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const ws = new WebSocket(job.url);
    const sentAt = new Map<number, number>();
    const rttUs: number[] = [];
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    const finish = (error?: string) => {
      clearInterval(timer);
      ws.terminate();
      resolve({ sent, rttUs: rttUs.sort((a, b) => a - b), unanswered: sentAt.size, ...(error ? { error } : {}) });
    };
    ws.once('error', (err) => finish(err.message));
    ws.on('message', (data: Buffer) => {
      const seq = data.readUInt32BE(0);
      const t0 = sentAt.get(seq);
      if (t0 === undefined) return;
      sentAt.delete(seq);
      if (t0 >= warmEnd) rttUs.push(Math.round((performance.now() - t0) * 1000));
    });
    let warmEnd = Infinity;
    ws.once('open', () => {
      const start = performance.now();
      warmEnd = start + job.warmupSeconds * 1000;
      const end = start + job.seconds * 1000;
      timer = setInterval(() => {
        const now = performance.now();
        if (now >= end) {
          clearInterval(timer);
          setTimeout(() => finish(), 2000);
          return;
        }
        const payload = Buffer.alloc(job.size, 0x61);
        payload.writeUInt32BE(sent, 0);
        sentAt.set(sent++, now);
        ws.send(payload, { binary: true });
      }, job.intervalMs);
    });
  });
}

function main(): void {
  if (!process.send) throw new Error('idle-probe.ts is started by bench/idle-connections.ts (needs an IPC channel)');
  const send = (m: FromProbe) => process.send?.(m);
  process.on('message', (m: ToProbe) => {
    void run(m.job).then((result) => {
      send({ t: 'result', result });
      process.exit(0);
    });
  });
  process.on('disconnect', () => process.exit(0));
  send({ t: 'hello' });
}

main();
