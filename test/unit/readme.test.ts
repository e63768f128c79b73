// The README documents every flag and every route field: its reference sections equal what the generator
// makes from the flag table and the schema (run `npm run gen` after changing either).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { withReference } from '../../scripts/reference.ts';

test('README reference sections are current', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  assert.equal(readme, withReference(readme), 'README.md is stale: run npm run gen');
});

test('README gives the set-up, demo and test commands CI uses', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const ci = readFileSync(new URL('../../.ci/run', import.meta.url), 'utf8');
  for (const cmd of ['npm ci', 'npm run demo', 'npm test']) assert.ok(readme.includes(cmd), cmd);
  assert.match(ci, /^npm ci$/m);
  assert.match(ci, /^npm test$/m);
});
