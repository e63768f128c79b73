// A load generator process for the benchmark, driven by bench/run.ts over IPC:
//   job → (connect) → ready → go → (run) → done → close → (disconnect) → closed, then the next job.
// Every job is bounded by a message count or a duration and by job.maxSeconds; the process exits when its parent
// goes away.
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import type { FromGenerator, Job, JobResult, ToGenerator } from './protocol.ts';

const wsOptions = { perMessageDeflate: false, handshakeTimeout: 10_000 } as const;
/** Connections opened at the same time while setting up a job (keeps the listen backlog from overflowing). */
const connectBatch = 200;

interface Running {
  /** Resolves with the result once the job has run. */
  readonly go: () => Promise<JobResult>;
  readonly close: () => Promise<void>;
}

function urlFor(job: Job, i: number): string {
  return job.urls[(job.connOffset + i) % job.urls.length];
}

/** The client options for a job: the CA of its wss:// target, if any. */
function optionsFor(job: Job): WebSocket.ClientOptions {
  return 'ca' in job && job.ca ? { ...wsOptions, ca: job.ca } : wsOptions;
}

function openOne(url: string, options: WebSocket.ClientOptions): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    const fail = (err: Error) => {
      ws.terminate();
      reject(err);
    };
    ws.once('open', () => {
      ws.off('error', fail);
      ws.on('error', () => undefined);
      resolve(ws);
    });
    ws.once('error', fail);
  });
}

async function openMany(job: Job, n: number): Promise<WebSocket[]> {
  const out: WebSocket[] = [];
  const options = optionsFor(job);
  for (let i = 0; i < n; i += connectBatch) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + connectBatch); j++) batch.push(openOne(urlFor(job, j), options));
    const settled = await Promise.allSettled(batch);
    for (const s of settled) if (s.status === 'fulfilled') out.push(s.value);
    const bad = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (bad) {
      for (const ws of out) ws.terminate();
      throw new Error(`connect failed after ${out.length}/${n}: ${String(bad.reason)}`);
    }
  }
  return out;
}

/** Closes cleanly (close handshake) or, after a bound, terminates. */
function closeAll(conns: readonly WebSocket[], clean: boolean): Promise<void> {
  return new Promise((resolve) => {
    let left = conns.length;
    if (left === 0) return resolve();
    const timer = setTimeout(() => {
      for (const ws of conns) ws.terminate();
      resolve();
    }, 5_000);
    for (const ws of conns) {
      ws.once('close', () => {
        if (--left === 0) {
          clearTimeout(timer);
          resolve();
        }
      });
      if (ws.readyState === WebSocket.CLOSED) ws.emit('close');
      else if (clean) ws.close(1000);
      else ws.terminate();
    }
  });
}

async function prepareEcho(job: Extract<Job, { kind: 'echo' }>): Promise<Running> {
  const conns = await openMany(job, job.connections);
  const payload = Buffer.alloc(job.size, 0x61);
  return {
    go: () =>
      new Promise((resolve) => {
        const t0 = performance.now();
        let sent = 0;
        let received = 0;
        let finished = false;
        const finish = (timedOut: boolean) => {
          if (finished) return;
          finished = true;
          clearTimeout(timer);
          for (const ws of conns) ws.removeAllListeners('message');
          resolve({ completed: received, errors: 0, timedOut, elapsedMs: performance.now() - t0 });
        };
        const timer = setTimeout(() => finish(true), job.maxSeconds * 1000);
        for (const ws of conns) {
          ws.on('message', () => {
            received++;
            if (received >= job.messages) return finish(false);
            if (sent < job.messages) {
              sent++;
              ws.send(payload);
            }
          });
        }
        for (let k = 0; k < job.inflight; k++) {
          for (const ws of conns) {
            if (sent >= job.messages) break;
            sent++;
            ws.send(payload);
          }
        }
      }),
    close: () => closeAll(conns, true),
  };
}

type LatencyJob = Extract<Job, { kind: 'latency' | 'churn' }>;

/**
 * A fixed-rate run of timestamped messages, round-robin over the connections. A churn job also counts the
 * connections through the target that close during the run, opens new ones at a fixed rate (kept open, idle) and
 * stops waiting for echoes graceSeconds after the sending ends (what is missing then is lost).
 */
async function prepareLatency(job: LatencyJob): Promise<Running> {
  const conns = await openMany(job, job.connections);
  const base = job.baselineUrls ? await openMany({ ...job, urls: job.baselineUrls }, job.connections) : [];
  const payload = Buffer.alloc(Math.max(job.size, 8), 0x61);
  const churn = job.kind === 'churn' ? job : undefined;
  const arrived: WebSocket[] = [];
  let closing = false;
  return {
    go: () =>
      new Promise((resolve) => {
        const t0 = performance.now();
        const warmEnd = t0 + job.warmupSeconds * 1000;
        const sendEnd = t0 + job.seconds * 1000;
        const rttUs: number[] = [];
        const baselineRttUs: number[] = [];
        let sent = 0;
        let received = 0;
        let through = 0;
        let finished = false;
        let closed = 0;
        let arrivalsStarted = 0;
        let arrivalsPending = 0;
        let arrivalFailures = 0;
        let grace: NodeJS.Timeout | undefined;
        const onClose = () => {
          if (!finished) closed++;
        };
        const expected = () => sent * (base.length > 0 ? 2 : 1);
        const complete = () => performance.now() >= sendEnd && received >= expected() && arrivalsPending === 0;
        const finish = (timedOut: boolean) => {
          if (finished) return;
          finished = true;
          clearInterval(tick);
          clearTimeout(timer);
          clearTimeout(grace);
          for (const ws of [...conns, ...base]) ws.removeAllListeners('message');
          for (const ws of [...conns, ...arrived]) ws.off('close', onClose);
          const errors = expected() - received;
          const extra = churn ? { closed, lost: sent - through, arrivals: arrived.length, arrivalFailures } : {};
          resolve({ completed: through, errors, timedOut, elapsedMs: performance.now() - t0, rttUs, baselineRttUs, ...extra });
        };
        const timer = setTimeout(() => finish(true), job.maxSeconds * 1000);
        if (churn) for (const ws of conns) ws.on('close', onClose);
        const listen = (group: readonly WebSocket[], samples: number[], counts: boolean) => {
          for (const ws of group) {
            ws.on('message', (data) => {
              const now = performance.now();
              const at = (data as Buffer).readDoubleLE(0);
              received++;
              if (counts) through++;
              if (at >= warmEnd) samples.push(Math.round((now - at) * 1000));
              if (complete()) finish(false);
            });
          }
        };
        listen(conns, rttUs, true);
        listen(base, baselineRttUs, false);
        const arrive = () => {
          const k = arrivalsStarted++;
          arrivalsPending++;
          openOne(urlFor(job, job.connections + k), wsOptions).then(
            (ws) => {
              if (closing) return void ws.terminate();
              arrived.push(ws);
              if (!finished) ws.on('close', onClose);
            },
            () => void arrivalFailures++,
          ).finally(() => {
            arrivalsPending--;
            if (complete()) finish(false);
          });
        };
        const tick = setInterval(() => {
          const now = performance.now();
          if (now >= sendEnd) {
            clearInterval(tick);
            if (complete()) finish(false);
            else if (churn) grace = setTimeout(() => finish(false), churn.graceSeconds * 1000);
            return;
          }
          const due = Math.floor(((now - t0) / 1000) * job.rate);
          while (sent < due) {
            payload.writeDoubleLE(performance.now(), 0);
            conns[sent % conns.length].send(payload);
            if (base.length > 0) {
              payload.writeDoubleLE(performance.now(), 0);
              base[sent % base.length].send(payload);
            }
            sent++;
          }
          if (churn) {
            const arrivalsDue = Math.floor(((now - t0) / 1000) * churn.arrivalsPerSecond);
            while (arrivalsStarted < arrivalsDue) arrive();
          }
        }, 1);
      }),
    close: () => {
      closing = true;
      return closeAll([...conns, ...base, ...arrived], true);
    },
  };
}

function prepareHandshake(job: Extract<Job, { kind: 'handshake' }>): Running {
  const options = optionsFor(job);
  return {
    go: () =>
      new Promise((resolve) => {
        const t0 = performance.now();
        let started = 0;
        let completed = 0;
        let errors = 0;
        let active = 0;
        let finished = false;
        const finish = (timedOut: boolean) => {
          if (finished) return;
          finished = true;
          clearTimeout(timer);
          resolve({ completed, errors, timedOut, elapsedMs: performance.now() - t0 });
        };
        const timer = setTimeout(() => finish(true), job.maxSeconds * 1000);
        const next = () => {
          if (finished) return;
          if (started >= job.total) {
            if (active === 0) finish(false);
            return;
          }
          const ws = new WebSocket(urlFor(job, started++), options);
          active++;
          let opened = false;
          ws.on('open', () => {
            opened = true;
            ws.close(1000);
          });
          ws.on('error', () => undefined);
          ws.on('close', () => {
            active--;
            if (opened) completed++;
            else errors++;
            next();
          });
        };
        for (let i = 0; i < job.concurrency; i++) next();
      }),
    close: () => Promise.resolve(),
  };
}

async function prepareIdle(job: Extract<Job, { kind: 'idle' }>): Promise<Running> {
  const conns = await openMany(job, job.connections);
  return {
    go: () => Promise.resolve({ completed: conns.length, errors: 0, timedOut: false, elapsedMs: 0 }),
    close: () => closeAll(conns, false),
  };
}

function prepare(job: Job): Promise<Running> | Running {
  switch (job.kind) {
    case 'echo':
      return prepareEcho(job);
    case 'latency':
    case 'churn':
      return prepareLatency(job);
    case 'handshake':
      return prepareHandshake(job);
    case 'idle':
      return prepareIdle(job);
  }
}

function main(): void {
  if (!process.send) throw new Error('load-client.ts is started by bench/run.ts (needs an IPC channel)');
  const sendRaw = process.send.bind(process);
  const send = (m: FromGenerator) => sendRaw(m);
  let current: Running | undefined;
  let lifetime: NodeJS.Timeout | undefined;
  process.on('message', (raw: ToGenerator) => {
    void (async () => {
      try {
        if (raw.type === 'job') {
          // A job that the parent never finishes still ends: the whole process exits after its bound.
          clearTimeout(lifetime);
          lifetime = setTimeout(() => process.exit(3), (raw.job.maxSeconds + 60) * 1000);
          current = await prepare(raw.job);
          send({ type: 'ready', opened: raw.job.kind === 'handshake' ? 0 : raw.job.connections });
        } else if (raw.type === 'go') {
          if (!current) throw new Error('go before job');
          send({ type: 'done', result: await current.go() });
        } else {
          await current?.close();
          current = undefined;
          clearTimeout(lifetime);
          send({ type: 'closed' });
        }
      } catch (err) {
        send({ type: 'failed', error: err instanceof Error ? err.message : String(err) });
      }
    })();
  });
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  send({ type: 'hello' });
}

main();
