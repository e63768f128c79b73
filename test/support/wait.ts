// The one bounded wait of the tests, for what only an outside observer can see (an API server's objects, a child
// process's /metrics or /readyz, a peer's socket count): it polls, and fails with a message saying what it waited
// for. Where the code under test emits an event (the holder's waitForGeneration, a socket's close, the connection
// registry's whenEmpty/whenAtMost, ManualClock#whenSet), tests wait on that instead.
import { setTimeout as delay } from 'node:timers/promises';

/** Resolves when `cond()` is truthy; rejects after `timeoutMs` with `what` in the message. everyMs: the pause
 *  between checks (longer for a check that costs a request to another process). */
export async function waitUntil(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000, everyMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(everyMs);
  }
}

/** Resolves with the first value `fn` produces, or rejects after `timeoutMs`. */
export function within<T>(p: Promise<T>, what: string, timeoutMs = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
