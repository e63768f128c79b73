// Reads a YAML file, or every *.yaml/*.yml file of a folder, into WebSocketRoute objects, reporting each
// problem with file, document number, field path and reason. Used by `wsgate validate` and the file source.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import type { SpecValidator } from '../../api/validate.ts';
import { apiVersion, kind } from '../../api/schema.ts';
import { specProblems as problemsOf } from '../../dag/spec-problems.ts';
import type { RouteObject } from '../../dag/input.ts';
import type { ConfigProblem } from '../../errors.ts';

export interface LoadResult {
  readonly files: readonly string[];
  readonly routes: readonly RouteObject[];
  readonly problems: readonly ConfigProblem[];
}

const namePattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export async function routeFiles(path: string): Promise<string[]> {
  const st = await stat(path);
  if (!st.isDirectory()) return [path];
  const names = (await readdir(path)).filter((n) => /\.ya?ml$/.test(n) && !n.startsWith('.')).sort();
  return names.map((n) => join(path, n));
}

export async function loadRoutes(paths: readonly string[], validate: SpecValidator): Promise<LoadResult> {
  const problems: ConfigProblem[] = [];
  const routes: RouteObject[] = [];
  const files: string[] = [];
  for (const p of paths) {
    try {
      files.push(...(await routeFiles(p)));
    } catch (err) {
      problems.push({ file: p, path: '', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
    }
  }
  const seen = new Map<string, string>();
  let order = 0;
  for (const file of files) {
    let docs: unknown[];
    try {
      docs = yaml.loadAll(await readFile(file, 'utf8'));
    } catch (err) {
      const e = err as Error & { mark?: { line: number } };
      problems.push({ file, path: '', message: `YAML: ${e.mark ? `line ${e.mark.line + 1}: ` : ''}${e.message.split('\n')[0]}` });
      continue;
    }
    docs.forEach((doc, i) => {
      if (doc === null || doc === undefined) return;
      const at = { file, document: i + 1 };
      const o = doc as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown; creationTimestamp?: unknown }; spec?: unknown };
      if (typeof doc !== 'object' || Array.isArray(doc)) return problems.push({ ...at, path: '', message: 'not a YAML mapping' });
      if (o.apiVersion !== apiVersion) return problems.push({ ...at, path: 'apiVersion', message: `must be ${apiVersion}` });
      if (o.kind !== kind) return problems.push({ ...at, path: 'kind', message: `must be ${kind}` });
      const name = o.metadata?.name;
      const namespace = o.metadata?.namespace ?? 'default';
      if (typeof name !== 'string' || name.length > 253 || !namePattern.test(name)) {
        return problems.push({ ...at, path: 'metadata.name', message: 'required: a DNS-1123 name' });
      }
      if (typeof namespace !== 'string' || namespace.length > 63 || !namePattern.test(namespace)) {
        return problems.push({ ...at, path: 'metadata.namespace', message: 'must be a DNS-1123 label' });
      }
      const key = `${namespace}/${name}`;
      const dup = seen.get(key);
      if (dup) return problems.push({ ...at, path: 'metadata.name', message: `${key} is already defined in ${dup}` });
      seen.set(key, `${file} document ${i + 1}`);
      const checked = validate(o.spec);
      const specProblems = checked.ok ? problemsOf(checked.spec) : checked.problems;
      for (const sp of specProblems) problems.push({ ...at, path: sp.path, message: sp.message });
      // Standalone has no API server to stamp ages: the route that appears first is the older one.
      const creationTimestamp = typeof o.metadata?.creationTimestamp === 'string' ? o.metadata.creationTimestamp : new Date(order * 1000).toISOString();
      order++;
      routes.push({ apiVersion, kind, metadata: { name, namespace, generation: 1, creationTimestamp }, spec: o.spec });
    });
  }
  if (files.length === 0 && problems.length === 0) problems.push({ file: paths.join(', '), path: '', message: 'no .yaml or .yml files found' });
  return { files, routes, problems };
}
