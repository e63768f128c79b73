// The README's reference sections, generated from the flag table and the route schema so that every knob a
// user can set is documented, and a test fails when the README falls behind (test/unit/readme.test.ts).
import { routeSpecSchema } from '../src/api/schema.ts';
import { envName, flags } from '../src/config/flags.ts';

export const markers = {
  flags: ['<!-- flags:begin -->', '<!-- flags:end -->'],
  spec: ['<!-- spec:begin -->', '<!-- spec:end -->'],
} as const;

export function flagsTable(): string {
  const rows = flags.map((f) => `| \`--${f.name}\` | \`${envName(f.name)}\` | ${f.default === '' ? '' : `\`${String(f.default)}\``} | ${f.help} |`);
  return ['| flag | environment | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

type Node = { type?: string; enum?: readonly unknown[]; default?: unknown; description?: string; minimum?: number; maximum?: number; maxItems?: number; maxLength?: number; pattern?: string; properties?: Record<string, Node>; items?: Node; anyOf?: readonly Node[]; required?: readonly string[] };

export function specTable(): string {
  const rows: string[] = [];
  const walk = (n: Node, path: string, required: boolean) => {
    if (path) rows.push(`| \`${path}\` | ${typeOf(n)}${required ? ', required' : ''} | ${n.default === undefined ? '' : `\`${JSON.stringify(n.default)}\``} | ${describe(n)} |`);
    if (n.properties) for (const [k, v] of Object.entries(n.properties)) walk(v, path ? `${path}.${k}` : k, n.required?.includes(k) ?? false);
    if (n.items?.properties) for (const [k, v] of Object.entries(n.items.properties)) walk(v, `${path}[].${k}`, n.items.required?.includes(k) ?? false);
  };
  walk(routeSpecSchema as unknown as Node, '', false);
  return ['| field | type | default | notes |', '|---|---|---|---|', ...rows].join('\n');
}

function typeOf(n: Node): string {
  if (n.anyOf) return n.anyOf.map(typeOf).join(' or ');
  if (n.type === 'array') return `list of ${n.items?.type === 'object' ? 'objects' : (n.items?.type ?? 'values')}`;
  return n.type ?? 'value';
}

function describe(n: Node): string {
  const bits: string[] = [];
  // The description's own full stop would read ".;" before the bounds that follow it.
  if (n.description) bits.push(n.description.replace(/\.$/, ''));
  if (n.enum) bits.push(`one of ${n.enum.map((e) => `\`${String(e)}\``).join(', ')}`);
  if (n.items?.enum) bits.push(`each one of ${n.items.enum.map((e) => `\`${String(e)}\``).join(', ')}`);
  if (n.minimum !== undefined || n.maximum !== undefined) bits.push(`${n.minimum ?? ''}–${n.maximum ?? ''}`);
  if (n.maxItems !== undefined) bits.push(`at most ${n.maxItems} items`);
  return bits.join('; ').replaceAll('|', '\\|');
}

export function withReference(readme: string): string {
  let out = readme;
  for (const [key, body] of [['flags', flagsTable()], ['spec', specTable()]] as const) {
    const [b, e] = markers[key];
    const i = out.indexOf(b);
    const j = out.indexOf(e);
    if (i < 0 || j < i) throw new Error(`README is missing ${b} … ${e}`);
    out = out.slice(0, i + b.length) + '\n' + body + '\n' + out.slice(j);
  }
  return out;
}
