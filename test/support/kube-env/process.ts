// One control-plane binary as a child process: output kept in a log file (shown when a start fails), stopped
// by its PID with SIGTERM and, after a short grace, SIGKILL. kube-apiserver 1.28 can take over 20 s to exit
// on SIGTERM while watches are open, and nothing here needs its graceful shutdown.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';

export interface Managed {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  /** The last lines of its log, for error messages. */
  tail(lines?: number): string;
  stop(graceMs?: number): Promise<void>;
}

export function startProcess(name: string, bin: string, args: readonly string[], logFile: string): Managed {
  const fd = openSync(logFile, 'a');
  const child = spawn(bin, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = child.exitCode !== null ? Promise.resolve() : once(child, 'exit').then(() => undefined);
  child.on('error', () => {});
  return {
    name,
    child,
    logFile,
    tail: (lines = 30) => readFileSync(logFile, 'utf8').split('\n').slice(-lines).join('\n'),
    async stop(graceMs = 2000) {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      process.kill(child.pid, 'SIGTERM');
      const timer = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A port that was free on `host` a moment ago (the binaries take port numbers, not a listening socket). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => s.once('error', reject).listen(0, host, resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** Polls `probe` until it is true, failing early if the process exits; bounded by `maxMs`. */
export async function waitReady(p: Managed, probe: () => Promise<boolean>, maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  for (;;) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`${p.name} exited (${p.child.exitCode ?? p.child.signalCode}):\n${p.tail()}`);
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${p.name} not ready after ${maxMs} ms:\n${p.tail()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
