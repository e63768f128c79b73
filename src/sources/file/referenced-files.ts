// Standalone mode: the key material a route names by file (tls.certFile/keyFile, auth.jwt.keyFile,
// auth.apiKey.file, upstream.tls.caFile) is read here and handed to the builder as Secret-like objects, so
// the builder stays pure and a changed file changes the snapshot. Relative paths are relative to the
// configuration file's folder (or the configuration folder).
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import type { SecretLite } from '../../dag/input.ts';
import { fileSecret } from '../../dag/secrets.ts';
import type { RouteObject } from '../../dag/input.ts';

/** The file paths a spec refers to, as written. */
export function referencedPaths(spec: unknown): string[] {
  const s = (spec ?? {}) as {
    tls?: { certFile?: unknown; keyFile?: unknown };
    auth?: { jwt?: { keyFile?: unknown }; apiKey?: { file?: unknown } };
    upstream?: { tls?: { caFile?: unknown } };
    rules?: unknown;
  };
  // LLM provider keys (rules[].llm.providers[].credentials.file).
  const llmKeys = (Array.isArray(s.rules) ? s.rules : []).flatMap((r: { llm?: { providers?: unknown } }) =>
    Array.isArray(r?.llm?.providers) ? r.llm.providers.map((p: { credentials?: { file?: unknown } }) => p?.credentials?.file) : [],
  );
  return [s.tls?.certFile, s.tls?.keyFile, s.auth?.jwt?.keyFile, s.auth?.apiKey?.file, s.upstream?.tls?.caFile, ...llmKeys].filter(
    (p): p is string => typeof p === 'string' && p.length > 0,
  );
}

export function resolvePath(baseDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

/** Reads every referenced file; an unreadable one is left out (the route's ResolvedRefs says so). */
export async function readReferencedFiles(routes: readonly RouteObject[], baseDir: string): Promise<{ secrets: SecretLite[]; paths: string[] }> {
  const secrets: SecretLite[] = [];
  const paths = new Set<string>();
  const cache = new Map<string, Promise<Buffer | undefined>>();
  for (const r of routes) {
    const ns = r.metadata.namespace ?? 'default';
    for (const p of new Set(referencedPaths(r.spec))) {
      const abs = resolvePath(baseDir, p);
      paths.add(abs);
      let content = cache.get(abs);
      if (!content) cache.set(abs, (content = readFile(abs).catch(() => undefined)));
      const buf = await content;
      if (buf) secrets.push(fileSecret(ns, p, buf));
    }
  }
  return { secrets, paths: [...paths].sort() };
}
