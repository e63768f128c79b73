// wsgate_endpoints: endpoints per route by state. At 5,000 routes that is 15,000 series, and prom-client formats
// every series on every scrape, in one turn of the loop that relays frames (measured 40–130 ms a scrape). The
// series change only when a route's endpoints do, so each one's line is formatted when it is set, and the text is
// joined once per change, not per scrape (RenderedRegistry). The Gauge itself stays registered and set as before,
// for readers of its values (the worker aggregation, tests).
import { Gauge, Registry } from 'prom-client';

type Labels = Record<'namespace' | 'route' | 'state', string>;

/** Prometheus text format: label values escape backslash, double quote and newline
 *  (https://prometheus.io/docs/instrumenting/exposition_formats/#text-format-details). */
function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** One series' labels as the text format writes them, in prom-client's order (the label names' order). */
function series(labels: Labels): string {
  return `namespace="${escapeLabel(labels.namespace)}",route="${escapeLabel(labels.route)}",state="${escapeLabel(labels.state)}"`;
}

export class EndpointsGauge {
  readonly gauge: Gauge<'namespace' | 'route' | 'state'>;
  readonly #name = 'wsgate_endpoints';
  readonly #help = 'Endpoints of each route by state.';
  /** Each series' line, by its labels. */
  readonly #lines = new Map<string, string>();
  /** The text as of the last change, once a scrape has asked for it. */
  #text: string | undefined;

  constructor(registry: RenderedRegistry) {
    this.gauge = new Gauge({ name: this.#name, help: this.#help, labelNames: ['namespace', 'route', 'state'], registers: [registry] });
    registry.render(this.#name, () => (this.#text ??= [`# HELP ${this.#name} ${this.#help}`, `# TYPE ${this.#name} gauge`, ...this.#lines.values()].join('\n')));
  }

  set(labels: Labels, value: number): void {
    this.gauge.set(labels, value);
    const l = series(labels);
    this.#lines.set(l, `${this.#name}{${l}} ${value}`);
    this.#text = undefined;
  }

  remove(labels: Labels): void {
    this.gauge.remove(labels);
    this.#lines.delete(series(labels));
    this.#text = undefined;
  }

  reset(): void {
    this.gauge.reset();
    this.#lines.clear();
    this.#text = undefined;
  }
}

/** A registry that takes some metrics' text from whoever keeps it formatted, and formats the others as
 *  prom-client does (its metrics(): each metric's text, joined by a blank line). */
export class RenderedRegistry extends Registry {
  readonly #rendered = new Map<string, () => string>();

  render(name: string, text: () => string): void {
    this.#rendered.set(name, text);
  }

  override async metrics(): Promise<string> {
    const parts = await Promise.all(this.getMetricsAsArray().map((m) => this.#rendered.get(m.name)?.() ?? this.getSingleMetricAsString(m.name)));
    return `${parts.join('\n\n')}\n`;
  }
}
