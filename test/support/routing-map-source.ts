// A Source whose objects a test or bench sets by kind and key, as the informers hold them, with the routing APIs
// it is told are on: what the build-thread engine reads (keyedObjects, current) without an API server.
import type { BuildInput } from '../../src/dag/input.ts';
import { routingApiKinds, routingApisInput, type ObjectChange, type ObjectKind, type RoutingApisOn, type Source, type SourceChange, type SourceObject } from '../../src/sources/source.ts';

export class RoutingMapSource implements Source {
  readonly byKind = new Map<ObjectKind, Map<string, SourceObject>>(['websocketroutes', 'services', 'endpointslices', 'secrets', ...routingApiKinds].map((k) => [k as ObjectKind, new Map()]));
  readonly #on: RoutingApisOn;

  constructor(on: RoutingApisOn) {
    this.#on = on;
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  synced(): boolean {
    return true;
  }
  routingApis(): RoutingApisOn {
    return this.#on;
  }
  *keyedObjects(): Iterable<Pick<ObjectChange, 'kind' | 'key' | 'after'>> {
    for (const [kind, m] of this.byKind) for (const [key, after] of m) yield { kind, key, after };
  }
  current(): BuildInput {
    const of = <T>(k: ObjectKind) => [...this.byKind.get(k)!.values()] as T[];
    const routing = routingApisInput(this.#on, of);
    return {
      routes: of('websocketroutes'),
      services: of('services'),
      endpointSlices: of('endpointslices'),
      secrets: of('secrets'),
      ...(routing ? { routingApis: routing } : {}),
    };
  }
  onChange(): () => void {
    return () => {};
  }
  /** Sets (or, with no object, deletes) one object; returns the change an informer would signal. */
  set(kind: ObjectKind, key: string, obj: SourceObject | undefined): SourceChange {
    const map = this.byKind.get(kind)!;
    const before = map.get(key);
    if (obj) map.set(key, obj);
    else map.delete(key);
    return { objects: [{ kind, key, ...(before ? { before } : {}), ...(obj ? { after: obj } : {}) }] };
  }
}
