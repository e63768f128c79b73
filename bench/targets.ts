// What the benchmark measures: a direct connection (the limit), wsgate, nginx, HAProxy and a Node pipe() proxy,
// each started fresh on 127.0.0.1 and pinned to the proxy CPU.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { selfSigned, type TestCert } from '../test/support/certs.ts';
import { hasCommand, processTree, type ProcessGroup, type Proc } from './procs.ts';

export const targetNames = ['direct', 'pipe', 'nginx', 'haproxy', 'wsgate'] as const;
export type TargetName = (typeof targetNames)[number];

export interface Env {
  readonly group: ProcessGroup;
  /** The repository root (cwd of every child). */
  readonly repo: string;
  /** A private temp dir for this run. */
  readonly tmp: string;
  readonly backendPorts: readonly number[];
  readonly proxyCpu: string;
  /** wsgate's CLI (default dist/cli.js) and extra flags for it (e.g. --workers 2). */
  readonly wsgateCli: string;
  readonly wsgateArgs: readonly string[];
  /** The node binary of the Node targets (pipe, wsgate); the bench's own node by default. */
  readonly node: string;
  /** Flags for the Node targets' own node (pipe, wsgate), e.g. --cpu-prof. */
  readonly nodeFlags: readonly string[];
  /** Flags for wsgate's node only (e.g. a V8 heap setting being evaluated). */
  readonly wsgateNodeFlags: readonly string[];
  /** wsgate's environment on top of the bench's (an empty value removes the variable). */
  readonly wsgateEnv: Readonly<Record<string, string>>;
  /** The certificate every TLS-terminating target serves (undefined: no wss scenarios). */
  readonly tls?: BenchCert;
}

/** One self-signed EC P-256 certificate for 127.0.0.1, in the forms nginx, HAProxy and wsgate read. */
export interface BenchCert {
  readonly certFile: string;
  readonly keyFile: string;
  /** Certificate and key in one file (HAProxy's `crt`). */
  readonly pemFile: string;
  /** The certificate's PEM, which clients trust as their CA. */
  readonly pem: string;
}

/** Made with the openssl CLI (test/support/certs.ts); undefined (and the wss rows stay empty) when it is missing. */
export function benchCert(dir: string): BenchCert | undefined {
  if (!hasCommand('openssl')) return undefined;
  let c: TestCert;
  try {
    c = selfSigned(['127.0.0.1']);
  } catch {
    return undefined;
  }
  const certFile = path.join(dir, 'bench-cert.pem');
  const keyFile = path.join(dir, 'bench-key.pem');
  const pemFile = path.join(dir, 'bench-combined.pem');
  writeFileSync(certFile, c.cert);
  writeFileSync(keyFile, c.key);
  writeFileSync(pemFile, c.cert + c.key);
  return { certFile, keyFile, pemFile, pem: c.cert };
}

/** One configuration change, as the bench saw it take effect. */
export interface Applied {
  /** From the change (new file renamed into place and, for nginx and HAProxy, the reload signal) to the target
   *  showing it, ms; undefined if it did not show within the bound. */
  readonly ms: number | undefined;
  /** Processes the change started (new workers of nginx and HAProxy; none for wsgate). */
  readonly spawned: readonly number[];
}

export interface Reloader {
  /** Writes configuration change number i (1, 2, …), a real change that keeps the route the bench's connections
   *  use, has the target load it, and waits (bounded) until it shows. */
  apply(i: number): Promise<Applied>;
  /** After the churn, a second opinion on how many changes took effect: a problem, or undefined. */
  check?(applied: number): Promise<string | undefined>;
}

export interface RunningTarget {
  /** Where clients connect; several for direct (one per backend). */
  readonly urls: readonly string[];
  /** wss:// on a second listener that terminates TLS with env.tls (nginx, HAProxy, wsgate; not reloadable ones). */
  readonly tlsUrls?: readonly string[];
  /** Root pids of the target's processes (their trees are measured); empty for direct. */
  readonly roots: readonly number[];
  /** Started with { reloadable: true } only. */
  readonly reloader?: Reloader;
  /** The last few KiB of its stdout and stderr (for notes when something went wrong). */
  readonly output?: () => string;
  stop(): Promise<void>;
}

export interface StartMode {
  /** For the config churn scenario: a fresh instance whose configuration the bench changes while it serves. */
  readonly reloadable?: boolean;
}

export interface Target {
  readonly name: TargetName;
  /** How its configuration is changed under load; undefined when it has none (direct, pipe). */
  readonly reloadHow?: string;
  /** Why it cannot run on this machine, or undefined when it can. */
  unavailable(env: Env): string | undefined;
  version(env: Env): string;
  start(env: Env, mode?: StartMode): Promise<RunningTarget>;
}

export function directUrls(env: Env): string[] {
  return env.backendPorts.map((p) => `ws://127.0.0.1:${p}/`);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** One WebSocket echo through the target, bounded. */
function probe(url: string, timeoutMs: number, ca?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...(ca ? { ca } : {}) });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('probe timed out'));
    }, timeoutMs);
    ws.on('open', () => ws.send('probe'));
    ws.on('message', () => {
      clearTimeout(timer);
      ws.close(1000);
      resolve();
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      ws.terminate();
      reject(err);
    });
  });
}

/** Retries `check` every 100 ms until it passes, the process exits, or timeoutMs passes. */
async function waitReady(proc: Proc, check: () => Promise<unknown>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: string | undefined;
  void proc.exited.then((code) => (exited = code));
  let last: unknown;
  while (Date.now() < deadline) {
    if (exited !== undefined) throw new Error(`${proc.name} exited (${exited}): ${proc.output().trim().slice(-600)}`);
    try {
      await check();
      return;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${proc.name} not ready after ${timeoutMs} ms (${String(last)}): ${proc.output().trim().slice(-600)}`);
}

interface StartOptions {
  /** Must pass before the WebSocket probe is tried (e.g. wsgate's /readyz). */
  readonly ready?: () => Promise<void>;
  readonly stopSignal?: NodeJS.Signals;
  /** Given the started process, how to apply configuration changes (reloadable instances only). */
  readonly reload?: (proc: Proc) => Reloader;
  /** Its wss:// URL, probed too before the target counts as started. */
  readonly tlsUrl?: string;
  readonly env?: Readonly<Record<string, string>>;
}

async function startProcess(env: Env, name: string, cmd: string, args: readonly string[], url: string, o: StartOptions = {}): Promise<RunningTarget> {
  const proc = env.group.spawn(cmd, args, { name, cwd: env.repo, cpu: env.proxyCpu, ...(o.stopSignal ? { stopSignal: o.stopSignal } : {}), ...(o.env ? { env: o.env } : {}) });
  const extraCheck = o.ready;
  try {
    if (extraCheck) await waitReady(proc, extraCheck, 20_000);
    await waitReady(proc, () => probe(url, 2000), 20_000);
    const { tlsUrl } = o;
    if (tlsUrl) await waitReady(proc, () => probe(tlsUrl, 2000, env.tls?.pem), 20_000);
  } catch (err) {
    await env.group.stop(proc);
    throw err;
  }
  return {
    urls: [url],
    ...(o.tlsUrl ? { tlsUrls: [o.tlsUrl] } : {}),
    roots: [proc.pid],
    ...(o.reload ? { reloader: o.reload(proc) } : {}),
    output: () => proc.output(),
    stop: () => env.group.stop(proc),
  };
}

/** Write-then-rename, so that a reader (wsgate's file watcher) never sees a half-written file. */
function writeAtomic(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** How long a change may take to show before it counts as not applied (the cadence is 200 ms). */
export const applyBoundMs = 2_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** nginx: SIGHUP to the master, then (bounded) until a new worker process shows up in its tree: the new
 *  configuration was parsed and a worker runs it. (The master blocks signals while it reconfigures, so the next
 *  SIGHUP waits for this one.) */
async function signalUntilNewWorker(root: number, signal: NodeJS.Signals): Promise<Applied> {
  const before = new Set(processTree([root]));
  const t0 = performance.now();
  process.kill(root, signal);
  while (performance.now() - t0 < applyBoundMs) {
    const spawned = processTree([root]).filter((p) => !before.has(p));
    if (spawned.length > 0) return { ms: performance.now() - t0, spawned };
    await sleep(2);
  }
  return { ms: undefined, spawned: [] };
}

/** Lines of a child's stdout and stderr that match, with the time each reached the bench. */
class LineWatch {
  readonly hits: { readonly line: string; readonly at: number }[] = [];
  #wake: (() => void) | undefined;

  constructor(proc: Proc, match: (line: string) => boolean) {
    for (const stream of [proc.child.stdout, proc.child.stderr]) {
      let partial = '';
      stream?.on('data', (b: Buffer) => {
        const at = performance.now();
        const lines = (partial + b.toString()).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          if (!match(line)) continue;
          this.hits.push({ line, at });
          this.#wake?.();
        }
      });
    }
  }

  /** The first hit from index `from` on that passes `ok`, waiting at most boundMs for it. */
  async next(from: number, ok: (line: string) => boolean, boundMs: number): Promise<{ readonly line: string; readonly at: number } | undefined> {
    const deadline = performance.now() + boundMs;
    for (;;) {
      const hit = this.hits.slice(from).find((h) => ok(h.line));
      if (hit) return hit;
      const left = deadline - performance.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }
}

function gitDescribe(cwd: string): string {
  const sha = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8' }).stdout?.trim();
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no', 'src'], { cwd, encoding: 'utf8' }).stdout?.trim();
  return sha ? `tree at commit ${sha}${dirty ? ' with uncommitted changes in src/' : ''}` : 'not a git checkout';
}

function firstLine(cmd: string, args: readonly string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] ?? '';
}

function nodeVersion(node: string): string {
  return node === process.execPath ? process.version : firstLine(node, ['--version']);
}

const direct: Target = {
  name: 'direct',
  unavailable: () => undefined,
  version: () => 'client → echo backend, no proxy',
  start: (env) => Promise.resolve({ urls: directUrls(env), roots: [], stop: () => Promise.resolve() }),
};

const pipe: Target = {
  name: 'pipe',
  unavailable: () => undefined,
  version: (env) => `node ${nodeVersion(env.node)} net + stream.pipe()`,
  async start(env) {
    const port = await freePort();
    const args = [...env.nodeFlags, '--import', 'tsx', 'bench/pipe-proxy.ts', '--listen', `127.0.0.1:${port}`];
    for (const b of env.backendPorts) args.push('--backend', `127.0.0.1:${b}`);
    return startProcess(env, 'pipe-proxy', env.node, args, `ws://127.0.0.1:${port}/`);
  },
};

/** The TLS listener of a measured (not reloadable) instance, when the run has a certificate. */
async function tlsListen(env: Env, mode: StartMode | undefined): Promise<TlsListen | undefined> {
  return env.tls && !mode?.reloadable ? { port: await freePort(), cert: env.tls } : undefined;
}

function wssOf(tls: TlsListen | undefined): StartOptions {
  return tls ? { tlsUrl: `wss://127.0.0.1:${tls.port}/` } : {};
}

const nginxBin = '/usr/sbin/nginx';

/** A second listener terminating TLS with the bench certificate (the wss scenarios). */
export interface TlsListen {
  readonly port: number;
  readonly cert: BenchCert;
}

/** change: the config churn scenario's change number (a header set on the upstream request changes value). */
export function nginxConf(dir: string, port: number, backendPorts: readonly number[], change?: number, tls?: TlsListen): string {
  const location = `    location / {
      proxy_pass http://echo;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
${change === undefined ? '' : `      proxy_set_header X-Churn "${change}";\n`}      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }`;
  const tlsServer = tls
    ? `
  server {
    listen 127.0.0.1:${tls.port} ssl backlog=4096;
    ssl_certificate ${tls.cert.certFile};
    ssl_certificate_key ${tls.cert.keyFile};
${location}
  }`
    : '';
  return `# generated by bench/run.ts
worker_processes 1;
worker_rlimit_nofile 20000;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events {
  worker_connections 16000;
}
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  map $http_upgrade $connection_upgrade {
    default upgrade;
    '' close;
  }
  upstream echo {
${backendPorts.map((p) => `    server 127.0.0.1:${p};`).join('\n')}
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
${location}
  }${tlsServer}
}
`;
}

const nginx: Target = {
  name: 'nginx',
  reloadHow: 'nginx.conf rewritten (a proxy_set_header value changes), then SIGHUP to the master (what `nginx -s reload` sends)',
  unavailable: () => (existsSync(nginxBin) ? undefined : `${nginxBin} not found (apt-get install -y nginx)`),
  version: () => firstLine(nginxBin, ['-v']).replace(/^nginx version: /, ''),
  async start(env, mode) {
    const port = await freePort();
    const dir = path.join(env.tmp, `nginx-${port}`);
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o755);
    const conf = path.join(dir, 'nginx.conf');
    const tls = await tlsListen(env, mode);
    writeFileSync(conf, nginxConf(dir, port, env.backendPorts, undefined, tls));
    const reload = (proc: Proc): Reloader => ({
      apply(i) {
        writeAtomic(conf, nginxConf(dir, port, env.backendPorts, i));
        return signalUntilNewWorker(proc.pid, 'SIGHUP');
      },
    });
    return startProcess(env, 'nginx', nginxBin, ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', conf, '-g', 'daemon off;'], `ws://127.0.0.1:${port}/`, mode?.reloadable ? { reload } : wssOf(tls));
  },
};

const haproxyBin = '/usr/sbin/haproxy';

/** change: the config churn scenario's change number (a header set on the request changes value). */
export function haproxyConf(port: number, backendPorts: readonly number[], change?: number, tls?: TlsListen): string {
  return `# generated by bench/run.ts
global
  nbthread 1
  maxconn 9000

defaults
  mode http
  maxconn 9000
  timeout connect 5s
  timeout client 1h
  timeout server 1h
  timeout tunnel 1h
  timeout http-request 10s

frontend fe
  bind 127.0.0.1:${port}
${tls ? `  bind 127.0.0.1:${tls.port} ssl crt ${tls.cert.pemFile}\n` : ''}${change === undefined ? '' : `  http-request set-header X-Churn ${change}\n`}  default_backend echo

backend echo
  balance roundrobin
${backendPorts.map((p, i) => `  server b${i} 127.0.0.1:${p}`).join('\n')}
`;
}

const haproxy: Target = {
  name: 'haproxy',
  reloadHow: 'started in master-worker mode (-W) for this scenario; haproxy.cfg rewritten (an http-request set-header value changes), then SIGUSR2 to the master',
  unavailable: () => (existsSync(haproxyBin) ? undefined : `${haproxyBin} not found (apt-get install -y haproxy)`),
  version: () => firstLine(haproxyBin, ['-v']).replace(/^HAProxy version /, '').replace(/ - https.*$/, ''),
  async start(env, mode) {
    const port = await freePort();
    const conf = path.join(env.tmp, `haproxy-${port}.cfg`);
    const tls = await tlsListen(env, mode);
    writeFileSync(conf, haproxyConf(port, env.backendPorts, undefined, tls));
    if (!mode?.reloadable) return startProcess(env, 'haproxy', haproxyBin, ['-db', '-f', conf], `ws://127.0.0.1:${port}/`, wssOf(tls));
    // Master-worker: the master re-executes itself on SIGUSR2, starts a new worker and soft-stops the old ones.
    // Applied = the master says "Loading success." (it re-executed itself, the new worker is up and said so): the
    // reload is over, so the next change does not land in the middle of it.
    const reload = (proc: Proc): Reloader => {
      const watch = new LineWatch(proc, (l) => l.includes('Loading success') || l.includes('Loading failure'));
      return {
        async apply(i) {
          writeAtomic(conf, haproxyConf(port, env.backendPorts, i));
          const before = new Set(processTree([proc.pid]));
          const from = watch.hits.length;
          const t0 = performance.now();
          process.kill(proc.pid, 'SIGUSR2');
          const hit = await watch.next(from, (l) => l.includes('Loading success'), applyBoundMs);
          const spawned = processTree([proc.pid]).filter((p) => !before.has(p));
          return { ms: hit ? hit.at - t0 : undefined, spawned };
        },
      };
    };
    return startProcess(env, 'haproxy', haproxyBin, ['-W', '-db', '-f', conf], `ws://127.0.0.1:${port}/`, { reload });
  },
};

export function wsgateConf(backendPorts: readonly number[]): string {
  return `apiVersion: wsgate.io/v1alpha1
kind: WebSocketRoute
metadata: { name: bench, namespace: default }
spec:
  rules:
    - backendRefs:
        - endpoints: [${backendPorts.map((p) => `"127.0.0.1:${p}"`).join(', ')}]
`;
}

/**
 * The config churn scenario's change number `change` to wsgate's file: the bench route keeps its endpoints but its
 * drain window alternates; a second route's header match changes value every time; a third comes and goes.
 */
export function wsgateChurnConf(backendPorts: readonly number[], change: number): string {
  const endpoints = `[${backendPorts.map((p) => `"127.0.0.1:${p}"`).join(', ')}]`;
  const doc = (name: string, spec: string) => `---
apiVersion: wsgate.io/v1alpha1
kind: WebSocketRoute
metadata: { name: ${name}, namespace: default }
spec:
${spec}`;
  return [
    doc('bench', `  rules:\n    - backendRefs:\n        - endpoints: ${endpoints}\n  drain: { windowSeconds: ${30 + (change % 2)} }\n`),
    doc('churn-a', `  hostnames: [churn.example.com]\n  rules:\n    - matches:\n        - path: { type: PathPrefix, value: /v2 }\n          headers: [{ name: X-Churn, value: "${change}" }]\n      backendRefs:\n        - endpoints: ${endpoints}\n`),
    ...(change % 2 ? [doc('churn-b', `  hostnames: [churn-b.example.com]\n  rules:\n    - backendRefs:\n        - endpoints: ${endpoints}\n`)] : []),
  ].join('');
}

const wsgate: Target = {
  name: 'wsgate',
  reloadHow: 'its --config file rewritten (write, then rename into place); wsgate watches it and publishes a new routing table',
  unavailable: (env) => (existsSync(path.resolve(env.repo, env.wsgateCli)) ? undefined : `not built (${env.wsgateCli} missing: run npm run build)`),
  version: (env) => `node ${nodeVersion(env.node)}, ${gitDescribe(env.repo)}`,
  async start(env, mode) {
    const [port, admin] = [await freePort(), await freePort()];
    const conf = path.join(env.tmp, `wsgate-${port}.yaml`);
    writeFileSync(conf, wsgateConf(env.backendPorts));
    const tls = await tlsListen(env, mode);
    const tlsArgs = tls ? ['--tls-listen', `127.0.0.1:${tls.port}`, '--default-cert-file', tls.cert.certFile, '--default-key-file', tls.cert.keyFile] : [];
    const args = [...env.nodeFlags, ...env.wsgateNodeFlags, env.wsgateCli, '--config', conf, '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${admin}`, ...tlsArgs, '--log-level', mode?.reloadable ? 'info' : 'warn', ...env.wsgateArgs];
    const readyz = async () => {
      const res = await fetch(`http://127.0.0.1:${admin}/readyz`, { signal: AbortSignal.timeout(1000) });
      if (res.status !== 200) throw new Error(`/readyz answered ${res.status}`);
    };
    // The published table's generation, from the admin server (what an operator would look at).
    const generation = async () => {
      const res = await fetch(`http://127.0.0.1:${admin}/debug/snapshot`, { signal: AbortSignal.timeout(1000) });
      return ((await res.json()) as { generation: number }).generation;
    };
    // Applied = wsgate logged "routing table published" with a newer generation (its controller logs every publish
    // at info, so the reloadable instance runs with --log-level info); the time is when that line reached the
    // bench. Nothing is polled, so watching costs wsgate nothing. It includes the hold-off that coalesces bursts
    // of changes (--build-holdoff-ms, 100 ms by default). At the end, /debug/snapshot must agree.
    const reload = (proc: Proc): Reloader => {
      const generationOf = (line: string) => {
        try {
          const g = (JSON.parse(line) as { generation?: unknown }).generation;
          return typeof g === 'number' ? g : 0;
        } catch {
          return 0; // not a JSON log line
        }
      };
      const watch = new LineWatch(proc, (l) => l.includes('routing table published'));
      let first: number | undefined;
      let current: number | undefined;
      return {
        async apply(i) {
          if (first === undefined) first = current = await generation();
          const before = current ?? (await generation());
          const from = watch.hits.length;
          writeAtomic(conf, wsgateChurnConf(env.backendPorts, i));
          const t0 = performance.now();
          const hit = await watch.next(from, (l) => generationOf(l) > before, applyBoundMs);
          current = hit ? generationOf(hit.line) : undefined;
          return { ms: hit ? hit.at - t0 : undefined, spawned: [] };
        },
        async check(applied) {
          if (first === undefined) return undefined;
          const g = await generation();
          return g - first === applied ? undefined : `/debug/snapshot generation went ${first} → ${g}, but ${applied} publishes were logged`;
        },
      };
    };
    // SIGINT: wsgate stops at once (SIGTERM would start the graceful drain, which the bench does not measure).
    return startProcess(env, 'wsgate', env.node, args, `ws://127.0.0.1:${port}/`, { ready: readyz, stopSignal: 'SIGINT', env: env.wsgateEnv, ...(mode?.reloadable ? { reload } : wssOf(tls)) });
  },
};

export const allTargets: readonly Target[] = [direct, pipe, nginx, haproxy, wsgate];
