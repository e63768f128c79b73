// Writes generated files, or with --check only reports the stale ones and exits 1: the generators' shared tail.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface Output {
  readonly file: string;
  readonly content: string;
}

export function writeOutputs(outputs: readonly Output[], argv: readonly string[] = process.argv): void {
  const check = argv.includes('--check');
  let stale = 0;
  for (const { file, content } of outputs) {
    let current = '';
    try {
      current = readFileSync(file, 'utf8');
    } catch {
      // missing: stale
    }
    if (current === content) continue;
    stale++;
    if (check) {
      console.error(`stale: ${file}`);
    } else {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, content);
      console.log(`wrote ${file}`);
    }
  }
  if (check && stale > 0) process.exit(1);
}
