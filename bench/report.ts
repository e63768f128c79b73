// Turning per-round measurements into the table: medians, spread, ratios; and BENCHMARKS.md.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { SnapshotBuildResult } from './snapshot-build.ts';
import type { TargetName } from './targets.ts';

export const mainKeys = ['cpu64', 'tput64', 'cpu16k', 'tput16k', 'cpuHs', 'hsRate', 'cpuTls64', 'tputTls64', 'cpuTlsHs', 'tlsHsRate', 'cpuLat', 'addP50', 'addP99', 'p50', 'p99', 'idleKiB'] as const;
/** The config churn scenario (bench/churn.ts), in a table of its own. */
export const churnKeys = [
  'churnApplied',
  'churnApplyMs',
  'churnApplyMaxMs',
  'churnClosed',
  'churnLost',
  'churnArrivals',
  'churnArrivalFailed',
  'churnCtlAddP50',
  'churnAddP50',
  'churnCtlAddP99',
  'churnAddP99',
  'churnOld',
  'churnOldMiB',
] as const;
export const metricKeys = [...mainKeys, ...churnKeys] as const;
export type MetricKey = (typeof metricKeys)[number];

/** Per target and metric: one value per round (undefined where the round failed or does not apply). */
export type Results = Map<TargetName, Map<MetricKey, (number | undefined)[]>>;

export interface Report {
  readonly targets: readonly TargetName[];
  readonly results: Results;
  /** Why a target has no or partial numbers. */
  readonly notes: ReadonlyMap<TargetName, readonly string[]>;
  readonly rounds: number;
  readonly rowLabels: Readonly<Record<MetricKey, string>>;
  readonly snapshot: SnapshotBuildResult | undefined;
  /** What the config churn scenario did, one paragraph per line; empty when it did not run. */
  readonly churn: readonly string[];
  readonly machine: readonly string[];
  readonly commands: readonly string[];
  readonly configs: readonly { readonly title: string; readonly text: string }[];
  readonly date: string;
  readonly quick: boolean;
  readonly elapsedSeconds: number;
}

const digitsOf: Record<MetricKey, number> = {
  cpu64: 2,
  tput64: 0,
  cpu16k: 2,
  tput16k: 0,
  cpuHs: 1,
  hsRate: 0,
  cpuTls64: 2,
  tputTls64: 0,
  cpuTlsHs: 1,
  tlsHsRate: 0,
  cpuLat: 2,
  addP50: 0,
  addP99: 0,
  p50: 0,
  p99: 0,
  idleKiB: 2,
  churnApplied: 0,
  churnApplyMs: 0,
  churnApplyMaxMs: 0,
  churnClosed: 0,
  churnLost: 0,
  churnArrivals: 0,
  churnArrivalFailed: 0,
  churnCtlAddP50: 0,
  churnCtlAddP99: 0,
  churnAddP50: 0,
  churnAddP99: 0,
  churnOld: 0,
  churnOldMiB: 1,
};

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function defined(xs: readonly (number | undefined)[] | undefined): number[] {
  return (xs ?? []).filter((x): x is number => x !== undefined && Number.isFinite(x));
}

function fmt(x: number, digits: number): string {
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** "median ±h%" where h is half the range (max − min) over the median: the round-to-round noise. */
function cell(values: readonly number[], digits: number): string {
  if (values.length === 0) return '—';
  const m = median(values);
  const half = (Math.max(...values) - Math.min(...values)) / 2;
  const pct = (100 * half) / Math.abs(m);
  const noise = values.length > 1 && m !== 0 ? (pct > 100 ? ' ±>100%' : ` ±${fmt(pct, 0)}%`) : '';
  return `${fmt(m, digits)}${noise}`;
}

function ratio(results: Results, key: MetricKey, a: TargetName, b: TargetName): string {
  const x = defined(results.get(a)?.get(key));
  const y = defined(results.get(b)?.get(key));
  if (x.length === 0 || y.length === 0) return '—';
  const my = median(y);
  if (my <= 0) return '—';
  return `${fmt(median(x) / my, 2)}×`;
}

export function table(r: Report): string {
  const ratios: [TargetName, TargetName][] = [
    ['wsgate', 'nginx'],
    ['wsgate', 'haproxy'],
    ['pipe', 'nginx'],
  ];
  const head = ['measure', ...r.targets, ...ratios.map(([a, b]) => `${a}/${b}`)];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const key of mainKeys) {
    const cells = r.targets.map((t) => cell(defined(r.results.get(t)?.get(key)), digitsOf[key]));
    if (cells.every((c) => c === '—')) continue;
    lines.push(`| ${r.rowLabels[key]} | ${cells.join(' | ')} | ${ratios.map(([a, b]) => ratio(r.results, key, a, b)).join(' | ')} |`);
  }
  return lines.length > 2 ? lines.join('\n') : '';
}

/** The config churn scenario: only the targets it ran on, no ratios (most rows are counts, often 0). */
export function churnTable(r: Report): string {
  const targets = r.targets.filter((t) => churnKeys.some((k) => defined(r.results.get(t)?.get(k)).length > 0));
  if (targets.length === 0) return '';
  const head = ['measure', ...targets];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const key of churnKeys) {
    const cells = targets.map((t) => cell(defined(r.results.get(t)?.get(key)), digitsOf[key]));
    if (cells.every((c) => c === '—')) continue;
    lines.push(`| ${r.rowLabels[key]} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

function churnSection(r: Report): string[] {
  if (r.churn.length === 0) return [];
  const t = churnTable(r);
  return ['### Config churn under load', '', ...(t ? [t, ''] : ['No results (see the notes).', '']), ...r.churn.flatMap((p) => [p, ''])];
}

/** Per target and measure, the value of each round (— where the round failed or the measure does not apply). */
function rawTable(r: Report): string {
  const lines = ['| target | measure | rounds |', '|---|---|---|'];
  for (const t of r.targets) {
    for (const key of metricKeys) {
      const xs = r.results.get(t)?.get(key) ?? [];
      if (xs.every((x) => x === undefined)) continue;
      lines.push(`| ${t} | ${r.rowLabels[key]} | ${xs.map((x) => (x === undefined ? '—' : fmt(x, digitsOf[key]))).join(', ')} |`);
    }
  }
  return lines.join('\n');
}

function snapshotSection(s: SnapshotBuildResult | undefined): string {
  if (!s) return 'Snapshot build: not run (`--skip-snapshot`).';
  const what = `${fmt(s.routes, 0)} routes / ${fmt(s.endpoints, 0)} endpoints`;
  if (s.unavailable !== undefined || s.coldMs === undefined || !s.warmMs) return `Snapshot build (${what}): **not available** — ${s.unavailable ?? 'no result'}.`;
  return `Snapshot build (${what}), wsgate's builder in one process: first build ${fmt(s.coldMs, 0)} ms, then median ${cell(s.warmMs, 0)} ms over ${s.warmMs.length} builds (${s.accepted ?? ''}).`;
}

export function markdown(r: Report): string {
  const notes = [...r.notes].flatMap(([t, ns]) => ns.map((n) => `- **${t}**: ${n}`));
  return [
    `Run of ${r.date}${r.quick ? ' — **quick smoke run, not representative**' : ''}; ${r.rounds} round(s) per scenario, ${fmt(r.elapsedSeconds, 0)} s in all.`,
    '',
    table(r) || 'No main scenarios in this run.',
    '',
    'Cells: median over rounds ± half the range between rounds (the noise). CPU is the target\'s own process tree ' +
      '(read from /proc before and after each scenario, see Machine), per completed unit; "echo" is one message ' +
      'client → backend → client through the proxy (two frames relayed). Throughput is bounded by the load generator and ' +
      'backends sharing one core, so CPU per unit is the comparable figure. Ratios are of medians; for CPU, latency and ' +
      'memory lower is better, for throughput higher is better. Added RTT: during the fixed-rate run the same rate also goes ' +
      'straight to the backends on as many connections, in the same timer ticks; added = p50/p99 through the target minus ' +
      'p50/p99 of that baseline, per round (so load-core noise common to both cancels). The "direct" column\'s RTT is its own run.',
    '',
    snapshotSection(r.snapshot),
    '',
    ...churnSection(r),
    '<details><summary>Every round</summary>',
    '',
    rawTable(r),
    '',
    '</details>',
    '',
    ...(notes.length ? ['Notes:', ...notes, ''] : []),
    '### Machine',
    '',
    ...r.machine.map((m) => `- ${m}`),
    '',
    '### Commands',
    '',
    '```',
    ...r.commands,
    '```',
    '',
    ...r.configs.flatMap((c) => [`<details><summary>${c.title}</summary>`, '', '```', c.text.trimEnd(), '```', '', '</details>', '']),
  ].join('\n');
}

const begin = '<!-- bench:begin (written by bench/run.ts; text outside these markers is kept) -->';
const end = '<!-- bench:end -->';

/** Replaces the generated section of BENCHMARKS.md, keeping whatever else people wrote there. */
export function writeBenchmarks(file: string, body: string): void {
  const section = `${begin}\n${body.trimEnd()}\n${end}`;
  if (!existsSync(file)) {
    writeFileSync(file, `# Benchmarks\n\nProduced by \`npm run bench\` (bench/run.ts).\n\n${section}\n`);
    return;
  }
  const old = readFileSync(file, 'utf8');
  const i = old.indexOf(begin.slice(0, 20));
  const j = old.indexOf(end);
  writeFileSync(file, i >= 0 && j > i ? `${old.slice(0, i)}${section}${old.slice(j + end.length)}` : `${old.trimEnd()}\n\n${section}\n`);
}
