// What the container image sets in wsgate's environment to tune the process (not wsgate's own flags), read from
// the Dockerfile so that the bench runs wsgate as the image does and the two cannot drift apart.
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The runtime stage's GLIBC_TUNABLES (the last `ENV GLIBC_TUNABLES=` line), or undefined without one. */
export function imageTunables(repo: string): string | undefined {
  const text = readFileSync(path.join(repo, 'Dockerfile'), 'utf8');
  const all = [...text.matchAll(/^ENV GLIBC_TUNABLES=(\S+)\s*$/gm)];
  return all.at(-1)?.[1];
}
