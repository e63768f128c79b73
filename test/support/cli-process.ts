// The built CLI as its own process, the way a user starts it: resolves once it logs "wsgate serving" with its
// addresses (fails if it exits first); stdout and stderr are kept for assertions. Every e2e test that runs the
// CLI starts, reads and stops it through here, on loopback ports the kernel picks.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { startEcho, type Echo } from './harness.ts';

export const cliPath = join(import.meta.dirname, '../../dist/cli.js');

export interface CliProcess {
  readonly child: ChildProcess;
  readonly listen: string;
  readonly admin: string;
  readonly exited: Promise<[number | null, string | null]>;
  /** Everything written to stdout so far. */
  stdout(): string;
  stderr(): string;
  /** Sends the signal and resolves with how the process exited. */
  stop(signal?: NodeJS.Signals): Promise<[number | null, string | null]>;
}

/** --listen and --admin-listen on loopback, ports chosen by the kernel (read back from "wsgate serving"). */
export const loopbackListen = ['--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'] as const;

/** A temporary folder for config files and one ws echo backend: made before the calling file's tests, removed
 *  after them. Read its fields inside tests (they are set by then). */
export function echoWorkspace(prefix: string): { readonly dir: string; readonly echo: Echo } {
  const ws = {} as { dir: string; echo: Echo };
  before(async () => {
    ws.dir = mkdtempSync(join(tmpdir(), prefix));
    ws.echo = await startEcho();
  });
  after(async () => {
    await ws.echo?.close();
    if (ws.dir) rmSync(ws.dir, { recursive: true, force: true });
  });
  return ws;
}

/** A standalone config file with one route, `echo`, on the given static endpoint; returns its path. */
export function writeEchoRoute(dir: string, address: string): string {
  const f = join(dir, 'routes.yaml');
  writeFileSync(f, `apiVersion: wsgate.io/v1alpha1\nkind: WebSocketRoute\nmetadata: { name: echo }\nspec: { rules: [ { backendRefs: [ { endpoints: ["${address}"] } ] } ] }\n`);
  return f;
}

/** env: added to this process's environment for the child (e.g. OTEL_* variables). */
export async function startCli(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<CliProcess> {
  const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
  let out = '';
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const serving = new Promise<{ listen: string; admin: string }>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      for (const line of out.split('\n')) if (line.includes('"msg":"wsgate serving"')) resolve(JSON.parse(line) as { listen: string; admin: string });
    });
    void exited.then(([code]) => reject(new Error(`wsgate exited ${code} before serving: ${err}${out}`)));
  });
  const { listen, admin } = await serving;
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  return { child, listen, admin, exited, stdout: () => out, stderr: () => err, stop };
}
