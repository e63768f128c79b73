#!/usr/bin/env node
// The wsgate command: serve (standalone or Kubernetes), validate, help. Exit codes: 0 ok, 1 runtime failure,
// 2 bad configuration or invalid route files.
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { createSpecValidator } from './api/validate.ts';
import { runRevoke } from './cluster/revoke-command.ts';
import { helpText, loadConfig, type Config } from './config/config.ts';
import { ConfigError, formatProblem, type ConfigProblem } from './errors.ts';
import { serve } from './main.ts';
import { loadRoutes } from './sources/file/load-routes.ts';
import { createLogger } from './telemetry/logger.ts';
import { runPrimary } from './workers/primary.ts';
import { runWorker } from './workers/worker.ts';
import { systemClock, type Clock } from './util/clock.ts';

async function main(argv: string[], clock: Clock): Promise<number> {
  let config: Config;
  try {
    config = loadConfig(argv);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`wsgate: ${err.message}\n${err.problems.map((p) => `  ${formatProblem(p)}\n`).join('')}Try wsgate --help.\n`);
      return 2;
    }
    throw err;
  }
  if (config.command === 'help') {
    process.stdout.write(helpText() + '\n');
    return 0;
  }
  if (config.command === 'version') {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`wsgate ${pkg.version}\n`);
    return 0;
  }
  if (config.command === 'validate') {
    const r = await loadRoutes(config.paths, createSpecValidator());
    for (const p of r.problems) process.stderr.write(`${formatProblem(p)}\n`);
    if (r.problems.length > 0) {
      process.stderr.write(`${r.problems.length} problem(s) in ${r.files.length} file(s)\n`);
      return 2;
    }
    process.stdout.write(`ok: ${r.routes.length} route(s) in ${r.files.length} file(s)\n`);
    return 0;
  }
  if (config.command === 'revoke') return runRevoke(config.redis!, config.revoke!, process.stdout, process.stderr);
  if (config.workers > 1 && cluster.isWorker) {
    return runWorker(config, createLogger(config.logLevel).child({ worker: cluster.worker?.id }), clock);
  }
  const log = createLogger(config.logLevel);
  let running: { shutdown(): Promise<void>; close(): Promise<void> };
  try {
    running = config.workers > 1 ? await runPrimary(config, log, clock) : await serve(config, log, clock);
  } catch (err) {
    const problems = (err as { problems?: ConfigProblem[] }).problems;
    if (problems) {
      for (const p of problems) process.stderr.write(`${formatProblem(p)}\n`);
      log.fatal({ problems: problems.length }, 'invalid configuration; not starting');
      return 2;
    }
    log.fatal({ err }, 'failed to start');
    return 1;
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping || signal === 'SIGINT') {
        log.warn({ signal }, 'stopping now');
        running.close().then(() => resolve(0), () => resolve(1));
        if (stopping) resolve(0);
        stopping = true;
        return;
      }
      stopping = true;
      log.info({ signal }, 'graceful shutdown');
      running.shutdown().then(() => resolve(0), (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        resolve(1);
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

// The composition root: the process's one clock is made here and handed down (its timers never keep the process
// alive, so the exit below still leaves at once if nothing else is pending).
function start(): void {
  const clock = systemClock();
  main(process.argv.slice(2), clock).then(
    (code) => {
      process.exitCode = code;
      // Give pino a tick to flush, then leave even if a stray handle lingers.
      clock.setTimeout(() => process.exit(code), 100);
    },
    (err: unknown) => {
      process.stderr.write(`wsgate: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}

start();
