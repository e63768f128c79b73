// Builder fixtures: a folder of YAML documents (BuildOptions, WebSocketRoute, Service, EndpointSlice, Secret) as
// the builder's input. The golden tests of test/unit/dag.test.ts and test/unit/compiled-route.test.ts read them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import type { BuildInput, BuildOptions } from '../../src/dag/input.ts';

export function loadBuildCase(dir: string): { options: BuildOptions; input: BuildInput } {
  const docs = yaml.loadAll(readFileSync(join(dir, 'input.yaml'), 'utf8')) as Record<string, unknown>[];
  const options: BuildOptions = { className: 'wsgate', allowStaticEndpoints: false, mode: 'kubernetes' };
  const input = { routes: [] as unknown[], services: [] as unknown[], endpointSlices: [] as unknown[], secrets: [] as unknown[] };
  for (const d of docs) {
    if (!d) continue;
    if (d.kind === 'BuildOptions') Object.assign(options, d.options as Partial<BuildOptions>);
    else if (d.kind === 'WebSocketRoute') input.routes.push(d);
    else if (d.kind === 'Service') input.services.push(d);
    else if (d.kind === 'EndpointSlice') input.endpointSlices.push(d);
    else if (d.kind === 'Secret') input.secrets.push(d);
    else throw new Error(`${dir}: unknown kind ${String(d.kind)}`);
  }
  return { options, input: input as unknown as BuildInput };
}
