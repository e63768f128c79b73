// The build thread's copy of the source's objects, indexed as the incremental build reads them: the routes that
// name each Service and the EndpointSlices each Service owns. The indexes are kept as objects change, so finding
// what one slice change touches costs that Service's routes and slices, not a scan of the cluster.
import { serviceNameLabel } from '../api/labels.ts';
import type { ServiceIndexedObjects } from '../dag/incremental.ts';
import type { BuildInput, EndpointSliceLite, RouteObject, SecretLite, ServiceLite } from '../dag/input.ts';
import { routeServices } from '../dag/references.ts';
import { routingApiKinds, routingApisInput, type ObjectKind, type RoutingApisOn, type SourceObject } from '../sources/source.ts';

const kinds: readonly ObjectKind[] = ['websocketroutes', 'services', 'endpointslices', 'secrets', ...routingApiKinds];

function sliceOwner(s: SourceObject | undefined): string | undefined {
  const name = (s as EndpointSliceLite | undefined)?.metadata.labels?.[serviceNameLabel];
  return s && name ? `${(s as EndpointSliceLite).metadata.namespace}/${name}` : undefined;
}

/** What one change means for the next build: these Services changed (their object or their slices), or
 *  something the incremental build cannot take (a route or a Secret). */
export type StoreChange = { readonly services: readonly string[] } | { readonly full: true };

export class ObjectStore implements ServiceIndexedObjects {
  readonly #objects = new Map<ObjectKind, Map<string, SourceObject>>(kinds.map((k) => [k, new Map()]));
  /** Service → route key → route object. */
  readonly #routesByService = new Map<string, Map<string, RouteObject>>();
  /** Service → slice key → slice. */
  readonly #slicesByService = new Map<string, Map<string, EndpointSliceLite>>();

  clear(): void {
    for (const m of this.#objects.values()) m.clear();
    this.#routesByService.clear();
    this.#slicesByService.clear();
  }

  /** Sets (or, with no object, deletes) one object by its "namespace/name". */
  set(kind: ObjectKind, key: string, after: SourceObject | undefined): StoreChange {
    const map = this.#objects.get(kind)!;
    const before = map.get(key);
    if (after === undefined) map.delete(key);
    else map.set(key, after);
    switch (kind) {
      case 'websocketroutes':
        if (before) for (const s of routeServices(before as RouteObject)) this.#unindex(this.#routesByService, s, key);
        if (after) for (const s of routeServices(after as RouteObject)) this.#index(this.#routesByService, s, key, after as RouteObject);
        return { full: true };
      case 'endpointslices': {
        const owners = [sliceOwner(before), sliceOwner(after)];
        if (owners[0]) this.#unindex(this.#slicesByService, owners[0], key);
        if (owners[1]) this.#index(this.#slicesByService, owners[1], key, after as EndpointSliceLite);
        return { services: owners.filter((o) => o !== undefined) };
      }
      case 'services':
        return { services: [key] };
      default:
        // Secrets, and every Gateway API and Ingress object: read by the translators or the whole build.
        return { full: true };
    }
  }

  /** Every object, as a full build reads them; with the routing APIs that are on. */
  input(routing?: RoutingApisOn): BuildInput {
    const of = <T>(k: ObjectKind) => [...this.#objects.get(k)!.values()] as T[];
    const base: BuildInput = { routes: of('websocketroutes'), services: of('services'), endpointSlices: of('endpointslices'), secrets: of('secrets') };
    const routingApis = routingApisInput(routing, of);
    if (!routingApis) return base;
    return { ...base, routingApis };
  }

  routesNaming(service: string): Iterable<RouteObject> {
    return this.#routesByService.get(service)?.values() ?? [];
  }

  service(key: string): ServiceLite | undefined {
    return this.#objects.get('services')!.get(key) as ServiceLite | undefined;
  }

  slicesOf(service: string): Iterable<EndpointSliceLite> {
    return this.#slicesByService.get(service)?.values() ?? [];
  }

  secrets(): readonly SecretLite[] {
    return [...this.#objects.get('secrets')!.values()] as SecretLite[];
  }

  #index<T>(m: Map<string, Map<string, T>>, service: string, key: string, o: T): void {
    let byKey = m.get(service);
    if (!byKey) m.set(service, (byKey = new Map()));
    byKey.set(key, o);
  }

  #unindex<T>(m: Map<string, Map<string, T>>, service: string, key: string): void {
    const byKey = m.get(service);
    byKey?.delete(key);
    if (byKey?.size === 0) m.delete(service);
  }
}
