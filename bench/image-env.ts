// What the container image sets in wsgate's environment to tune the process (not wsgate's own flags), read from
// the Dockerfile so that the bench runs wsgate as the image does and the two cannot drift apart.
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The runtime stage's GLIBC_TUNABLES (the last `ENV GLIBC_TUNABLES=` line), as an environment to add. */
export function imageEnv(repo: string): Record<string, string> {
  const text = readFileSync(path.join(repo, 'Dockerfile'), 'utf8');
  const tunables = [...text.matchAll(/^ENV GLIBC_TUNABLES=(\S+)\s*$/gm)].at(-1)?.[1];
  return tunables === undefined ? {} : { GLIBC_TUNABLES: tunables };
}
