// Rewrites the generated reference sections of README.md (flags and the route spec).
import { readFileSync, writeFileSync } from 'node:fs';
import { withReference } from './reference.ts';

const path = new URL('../README.md', import.meta.url);
writeFileSync(path, withReference(readFileSync(path, 'utf8')));
