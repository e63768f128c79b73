// Finds schema defaults restated outside the builder: `?? <default>` in any source file outside src/api and
// src/dag, and a read of a raw route spec (`.spec.` / `.spec?.`) in the data plane. Used by
// test/unit/no-restated-defaults.test.ts; a function of a folder so the check itself can be tested.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { routeSpecSchema } from '../../src/api/schema.ts';

export interface SchemaDefault {
  /** Dotted schema path, e.g. heartbeat.intervalSeconds. */
  readonly path: string;
  readonly property: string;
  readonly value: unknown;
}

/** Every `default` in the route spec schema, with where it is. */
export function schemaDefaults(node: unknown = routeSpecSchema, path = ''): SchemaDefault[] {
  const out: SchemaDefault[] = [];
  if (!node || typeof node !== 'object') return out;
  const n = node as { properties?: Record<string, unknown>; items?: unknown; default?: unknown };
  for (const [k, child] of Object.entries(n.properties ?? {})) {
    const p = path ? `${path}.${k}` : k;
    const d = (child as { default?: unknown }).default;
    if (d !== undefined) out.push({ path: p, property: k, value: d });
    out.push(...schemaDefaults(child, p));
  }
  if (n.items) out.push(...schemaDefaults(n.items, `${path}[]`));
  return out;
}

export interface Finding {
  readonly file: string;
  readonly line: number;
  readonly text: string;
  readonly why: string;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Lines a literal rule would catch that restate no route default: Node types IncomingMessage.url as optional, and
 * "/" there is the request target of a request that had none; and a URL cited in a comment
 * (html.spec.whatwg.org is no route spec).
 */
const notADefault = [/\burl \?\? '\/'/, /https?:\/\/\S+/g];

/** The data plane: it reads the compiled model only. Sources and the kube adapter handle raw objects by design. */
const dataPlane = [/^proxy\//, /^llm\//, /^cluster\//, /^policy\//, /^health\//, /^model\//, /^workers\//, /^telemetry\//, /^data-plane\.ts$/];

export function restatedDefaults(srcRoot: string): Finding[] {
  const defaults = schemaDefaults();
  const rules: { re: RegExp; why: string; files: (f: string) => boolean }[] = [];
  const outsideBuilder = (f: string) => !f.startsWith('api/') && !f.startsWith('dag/');
  for (const d of defaults) {
    if (typeof d.value === 'boolean') {
      // A bare `?? false` is too common to mean anything; next to the property's name it restates the default.
      rules.push({ re: new RegExp(`\\b${escape(d.property)}\\s*\\?\\?\\s*${String(d.value)}\\b`), why: `${d.path} defaults to ${String(d.value)} in the schema`, files: outsideBuilder });
    } else if (typeof d.value === 'number' && d.value !== 0) {
      rules.push({ re: new RegExp(`\\?\\?\\s*${d.value}(?![0-9_.])`), why: `${d.path} defaults to ${d.value} in the schema`, files: outsideBuilder });
    } else if (typeof d.value === 'string') {
      rules.push({ re: new RegExp(`\\?\\?\\s*(['"\`])${escape(d.value)}\\1`), why: `${d.path} defaults to ${JSON.stringify(d.value)} in the schema`, files: outsideBuilder });
    }
  }
  rules.push({ re: /\.spec\??\./, why: 'reads a raw route spec: the data plane reads the compiled Route (src/model/route.ts)', files: (f) => dataPlane.some((r) => r.test(f)) });
  const out: Finding[] = [];
  for (const file of tsFiles(srcRoot)) {
    const rel = relative(srcRoot, file).split('\\').join('/');
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.forEach((text, i) => {
      const code = notADefault.reduce((t, re) => t.replace(re, ''), text);
      const why = rules.filter((r) => r.files(rel) && r.re.test(code)).map((r) => r.why);
      if (why.length) out.push({ file: rel, line: i + 1, text: text.trim(), why: why.join('; or ') });
    });
  }
  return out;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}
