// What the benchmark measures: a direct connection (the limit), wsgate, nginx, HAProxy and a Node pipe() proxy,
// each started fresh on 127.0.0.1 and pinned to the proxy CPU.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import WebSocket from 'ws';
import type { ProcessGroup, Proc } from './procs.ts';

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
  /** Flags for the Node targets' own node (pipe, wsgate), e.g. --cpu-prof. */
  readonly nodeFlags: readonly string[];
}

export interface RunningTarget {
  /** Where clients connect; several for direct (one per backend). */
  readonly urls: readonly string[];
  /** Root pids of the target's processes (their trees are measured); empty for direct. */
  readonly roots: readonly number[];
  stop(): Promise<void>;
}

export interface Target {
  readonly name: TargetName;
  /** Why it cannot run on this machine, or undefined when it can. */
  unavailable(env: Env): string | undefined;
  version(env: Env): string;
  start(env: Env): Promise<RunningTarget>;
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
function probe(url: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
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
}

async function startProcess(env: Env, name: string, cmd: string, args: readonly string[], url: string, o: StartOptions = {}): Promise<RunningTarget> {
  const proc = env.group.spawn(cmd, args, { name, cwd: env.repo, cpu: env.proxyCpu, ...(o.stopSignal ? { stopSignal: o.stopSignal } : {}) });
  const extraCheck = o.ready;
  try {
    if (extraCheck) await waitReady(proc, extraCheck, 20_000);
    await waitReady(proc, () => probe(url, 2000), 20_000);
  } catch (err) {
    await env.group.stop(proc);
    throw err;
  }
  return { urls: [url], roots: [proc.pid], stop: () => env.group.stop(proc) };
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

const direct: Target = {
  name: 'direct',
  unavailable: () => undefined,
  version: () => 'client → echo backend, no proxy',
  start: (env) => Promise.resolve({ urls: directUrls(env), roots: [], stop: () => Promise.resolve() }),
};

const pipe: Target = {
  name: 'pipe',
  unavailable: () => undefined,
  version: () => `node ${process.version} net + stream.pipe()`,
  async start(env) {
    const port = await freePort();
    const args = [...env.nodeFlags, '--import', 'tsx', 'bench/pipe-proxy.ts', '--listen', `127.0.0.1:${port}`];
    for (const b of env.backendPorts) args.push('--backend', `127.0.0.1:${b}`);
    return startProcess(env, 'pipe-proxy', process.execPath, args, `ws://127.0.0.1:${port}/`);
  },
};

const nginxBin = '/usr/sbin/nginx';

export function nginxConf(dir: string, port: number, backendPorts: readonly number[]): string {
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
    location / {
      proxy_pass http://echo;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }
  }
}
`;
}

const nginx: Target = {
  name: 'nginx',
  unavailable: () => (existsSync(nginxBin) ? undefined : `${nginxBin} not found (apt-get install -y nginx)`),
  version: () => firstLine(nginxBin, ['-v']).replace(/^nginx version: /, ''),
  async start(env) {
    const port = await freePort();
    const dir = path.join(env.tmp, `nginx-${port}`);
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o755);
    const conf = path.join(dir, 'nginx.conf');
    writeFileSync(conf, nginxConf(dir, port, env.backendPorts));
    return startProcess(env, 'nginx', nginxBin, ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', conf, '-g', 'daemon off;'], `ws://127.0.0.1:${port}/`);
  },
};

const haproxyBin = '/usr/sbin/haproxy';

export function haproxyConf(port: number, backendPorts: readonly number[]): string {
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
  default_backend echo

backend echo
  balance roundrobin
${backendPorts.map((p, i) => `  server b${i} 127.0.0.1:${p}`).join('\n')}
`;
}

const haproxy: Target = {
  name: 'haproxy',
  unavailable: () => (existsSync(haproxyBin) ? undefined : `${haproxyBin} not found (apt-get install -y haproxy)`),
  version: () => firstLine(haproxyBin, ['-v']).replace(/^HAProxy version /, '').replace(/ - https.*$/, ''),
  async start(env) {
    const port = await freePort();
    const conf = path.join(env.tmp, `haproxy-${port}.cfg`);
    writeFileSync(conf, haproxyConf(port, env.backendPorts));
    return startProcess(env, 'haproxy', haproxyBin, ['-db', '-f', conf], `ws://127.0.0.1:${port}/`);
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

const wsgate: Target = {
  name: 'wsgate',
  unavailable: (env) => (existsSync(path.resolve(env.repo, env.wsgateCli)) ? undefined : `not built (${env.wsgateCli} missing: run npm run build)`),
  version: (env) => `node ${process.version}, ${gitDescribe(env.repo)}`,
  async start(env) {
    const [port, admin] = [await freePort(), await freePort()];
    const conf = path.join(env.tmp, `wsgate-${port}.yaml`);
    writeFileSync(conf, wsgateConf(env.backendPorts));
    const args = [...env.nodeFlags, env.wsgateCli, '--config', conf, '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${admin}`, '--log-level', 'warn', ...env.wsgateArgs];
    const readyz = async () => {
      const res = await fetch(`http://127.0.0.1:${admin}/readyz`, { signal: AbortSignal.timeout(1000) });
      if (res.status !== 200) throw new Error(`/readyz answered ${res.status}`);
    };
    // SIGINT: wsgate stops at once (SIGTERM would start the graceful drain, which the bench does not measure).
    return startProcess(env, 'wsgate', process.execPath, args, `ws://127.0.0.1:${port}/`, { ready: readyz, stopSignal: 'SIGINT' });
  },
};

export const allTargets: readonly Target[] = [direct, pipe, nginx, haproxy, wsgate];
