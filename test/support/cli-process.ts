// The built CLI as its own process, the way a user starts it: resolves once it logs "wsgate serving" with its
// addresses (fails if it exits first); stdout and stderr are kept for assertions.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';

export const cliPath = join(import.meta.dirname, '../../dist/cli.js');

export interface CliProcess {
  readonly child: ChildProcess;
  readonly listen: string;
  readonly admin: string;
  readonly exited: Promise<[number | null, string | null]>;
  /** Everything written to stdout so far. */
  stdout(): string;
  stderr(): string;
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
  return { child, listen, admin, exited, stdout: () => out, stderr: () => err };
}
