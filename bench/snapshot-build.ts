// Snapshot build time at scale: 5,000 routes, each on its own hostname and Service, 10 endpoints per Service's
// EndpointSlice (50,000 endpoints), through wsgate's own builder (src/dag/build.ts). The builder is imported
// at run time: when it is not there (or does not load) the bench says so and reports no number.
import { performance } from 'node:perf_hooks';

export interface SnapshotBuildResult {
  readonly routes: number;
  readonly endpoints: number;
  /** Why there is no measurement, when there is none. */
  readonly unavailable?: string;
  /** The first build (cold JIT), ms. */
  readonly coldMs?: number;
  /** Later builds, ms each. */
  readonly warmMs?: readonly number[];
  /** What the builder returned, as a sanity check: accepted routes and published endpoints, when readable. */
  readonly accepted?: string;
}

type BuildFn = (input: unknown) => unknown;

const options = { className: 'wsgate', allowStaticEndpoints: false, mode: 'kubernetes' } as const;

/** The builder's input in the shape of src/dag/input.ts (BuildInput). */
export function scaleInput(routes: number, endpointsPerRoute: number): unknown {
  const routeObjs = [];
  const services = [];
  const slices = [];
  for (let i = 0; i < routes; i++) {
    const name = `svc-${i}`;
    routeObjs.push({
      apiVersion: 'wsgate.io/v1alpha1',
      kind: 'WebSocketRoute',
      metadata: { name: `route-${i}`, namespace: 'bench', generation: 1, creationTimestamp: new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString() },
      spec: {
        hostnames: [`r${i}.bench.example`],
        rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/ws' } }], backendRefs: [{ name, port: 80 }] }],
      },
    });
    services.push({ metadata: { namespace: 'bench', name }, spec: { ports: [{ name: 'http', port: 80, targetPort: 8080 }] } });
    slices.push({
      metadata: { namespace: 'bench', name: `${name}-abcde`, labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: Array.from({ length: endpointsPerRoute }, (_, j) => ({
        addresses: [`10.${(i >> 8) & 255}.${i & 255}.${j + 1}`],
        conditions: { ready: true, serving: true, terminating: false },
        targetRef: { name: `${name}-pod-${j}` },
      })),
    });
  }
  return { routes: routeObjs, services, endpointSlices: slices, secrets: [] };
}

/** Finds the builder: `build(input, options)` as planned, or `createBuilder(options)(input)`. */
async function loadBuilder(): Promise<BuildFn | string> {
  // A computed specifier: the module may not exist yet, so the type checker must not resolve it.
  const spec = new URL('../src/dag/build.ts', import.meta.url).href;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(spec)) as Record<string, unknown>;
  } catch (err) {
    return `src/dag/build.ts did not load (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`;
  }
  const build = mod.build;
  if (typeof build === 'function') return (input) => (build as (i: unknown, o: unknown) => unknown)(input, options);
  const create = mod.createBuilder;
  if (typeof create === 'function') return (create as (o: unknown) => BuildFn)(options);
  return 'src/dag/build.ts exports neither build() nor createBuilder()';
}

function describe(result: unknown): string {
  const r = result as { content?: { routes?: { size?: number }; endpoints?: { size?: number } }; statuses?: readonly unknown[] } | undefined;
  const routes = r?.content?.routes?.size;
  const eps = r?.content?.endpoints?.size;
  if (routes === undefined || eps === undefined) return 'output shape not recognised';
  return `${routes} routes and ${eps} endpoints in the snapshot`;
}

export async function benchSnapshotBuild(routes: number, endpointsPerRoute: number, rounds: number): Promise<SnapshotBuildResult> {
  const base = { routes, endpoints: routes * endpointsPerRoute };
  const build = await loadBuilder();
  if (typeof build === 'string') return { ...base, unavailable: build };
  const input = scaleInput(routes, endpointsPerRoute);
  try {
    let t = performance.now();
    const first = build(input);
    const coldMs = performance.now() - t;
    const warmMs: number[] = [];
    for (let i = 0; i < rounds; i++) {
      t = performance.now();
      build(input);
      warmMs.push(performance.now() - t);
    }
    return { ...base, coldMs, warmMs, accepted: describe(first) };
  } catch (err) {
    return { ...base, unavailable: `the builder threw: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}` };
  }
}
