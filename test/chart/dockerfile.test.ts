// The image cannot be built here (no Docker): check the Dockerfile's basic facts instead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { imageEnv } from '../../bench/image-env.ts';
import { repoRoot } from '../support/helm.ts';

const text = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
// Instructions, with line continuations joined and comments dropped.
const instructions = text
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'))
  .map((l) => {
    const [op, ...rest] = l.split(/\s+/);
    return { op: op.toUpperCase(), args: rest.join(' ') };
  });
const args = Object.fromEntries(instructions.filter((i) => i.op === 'ARG' && i.args.includes('=')).map((i) => i.args.split('=', 2)));
const resolve = (s: string) => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string, b: string) => args[a ?? b] ?? '');
const stages: { image: string; name?: string; body: { op: string; args: string }[] }[] = [];
for (const i of instructions) {
  if (i.op === 'FROM') {
    const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(i.args);
    assert.ok(m, `FROM ${i.args}`);
    stages.push({ image: resolve(m[1]), name: m[2], body: [] });
  } else if (stages.length > 0) stages[stages.length - 1].body.push(i);
}
const final = stages[stages.length - 1];

test('multi-stage, every stage on Node 24', () => {
  assert.ok(stages.length >= 2, 'multi-stage');
  for (const s of stages) assert.match(s.image, /^(node:24\b|gcr\.io\/distroless\/nodejs24-)/, `stage ${s.name ?? ''} is not Node 24: ${s.image}`);
});

test('the build stage runs npm ci and npm run build', () => {
  const runs = stages.slice(0, -1).flatMap((s) => s.body.filter((i) => i.op === 'RUN').map((i) => i.args));
  assert.ok(runs.some((r) => /npm ci\b/.test(r) && !/--omit=dev/.test(r)), 'npm ci with dev dependencies for the build');
  assert.ok(runs.some((r) => /npm run build\b/.test(r)), 'npm run build');
});

test('the runtime gets production dependencies only, and needs no shell', () => {
  const copies = final.body.filter((i) => i.op === 'COPY').map((i) => i.args);
  const nodeModulesFrom = copies.find((c) => /node_modules/.test(c))?.match(/--from=(\S+)/)?.[1];
  assert.ok(nodeModulesFrom, 'node_modules copied from a stage');
  const depsStage = stages.find((s) => s.name === nodeModulesFrom);
  assert.ok(depsStage, `stage ${nodeModulesFrom}`);
  assert.ok(depsStage.body.some((i) => i.op === 'RUN' && /npm ci\b.*--omit=dev/.test(i.args)), 'npm ci --omit=dev');
  assert.ok(copies.some((c) => /--from=\S+\s+\S*dist\s+\S*dist/.test(c)), 'dist copied from the build stage');
  assert.ok(copies.some((c) => /^package\.json\b/.test(c)), 'package.json ("type": "module") is in the image');
  assert.equal(final.body.filter((i) => i.op === 'RUN').length, 0, 'no RUN in the runtime stage (no shell there)');
  assert.match(final.image, /distroless\/nodejs24-.*:nonroot$/, 'distroless: no shell, non-root by default');
});

test('non-root user, exec-form ENTRYPOINT running dist/cli.js with node', () => {
  const users = final.body.filter((i) => i.op === 'USER');
  assert.equal(users.length, 1);
  const [uid] = users[0].args.split(':');
  assert.ok(uid !== 'root' && uid !== '0', 'USER is not root');
  assert.equal(uid, '65532', 'the uid the chart runs as (podSecurityContext.runAsUser)');
  const entry = final.body.filter((i) => i.op === 'ENTRYPOINT');
  assert.equal(entry.length, 1);
  const argv = JSON.parse(entry[0].args) as string[];
  assert.ok(Array.isArray(argv), 'exec form');
  assert.match(argv[0], /(^|\/)node$/);
  assert.equal(argv[1], '/app/dist/cli.js');
  assert.equal(final.body.filter((i) => i.op === 'CMD').length, 0, 'args come from the Deployment');
  assert.ok(final.body.some((i) => i.op === 'WORKDIR' && i.args === '/app'));
});

test('the runtime keeps freed memory for reuse (glibc trim threshold), as the bench measures it', () => {
  const envs = final.body.filter((i) => i.op === 'ENV').map((i) => i.args);
  const tunables = envs.map((e) => /^GLIBC_TUNABLES=(\S+)$/.exec(e)?.[1]).find((v) => v !== undefined);
  assert.ok(tunables, 'ENV GLIBC_TUNABLES in the runtime stage');
  assert.equal(tunables, imageEnv(repoRoot).GLIBC_TUNABLES, 'bench/image-env.ts reads the same value');
  const trim = /(?:^|:)glibc\.malloc\.trim_threshold=(\d+)(?::|$)/.exec(tunables)?.[1];
  assert.ok(trim && Number(trim) >= 1 << 20 && Number(trim) <= 1 << 30, `trim_threshold ${trim}`);
});

test('.dockerignore keeps node_modules, .git and tests out of the context', () => {
  const lines = readFileSync(join(repoRoot, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  assert.equal(lines[0], '*', 'deny by default');
  const allowed = lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
  for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src']) assert.ok(allowed.includes(needed), `${needed} is sent`);
  for (const never of ['node_modules', '.git', 'test', 'e2e', 'dist']) assert.ok(!allowed.includes(never), `${never} is not sent`);
  // Every COPY source from the context is allowed.
  for (const s of stages) {
    for (const c of s.body.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'))) {
      const sources = c.args.split(/\s+/).slice(0, -1);
      for (const src of sources) assert.ok(allowed.includes(src.replace(/\/$/, '')), `COPY ${src} is excluded by .dockerignore`);
    }
  }
});
