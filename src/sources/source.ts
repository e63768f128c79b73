// What the controller needs from a source of objects. Sources turn the outside world into plain objects and
// signal changes; they hold no routing logic.
import type { GatewayClassLite, GatewayLite, HTTPRouteLite, NamespaceLite, PublishedAddress, ReferenceGrantLite, WebSocketPolicyLite } from '../dag/gateway/types.ts';
import type { IngressClassLite, IngressLite } from '../dag/ingress.ts';
import type { BuildInput, EndpointSliceLite, RouteObject, SecretLite, ServiceLite } from '../dag/input.ts';
import type { RoutingApisInput } from '../dag/routing-apis.ts';

/** The Gateway API and Ingress kinds (and the Service wsgate runs behind): BuildInput.routingApis. */
export const routingApiKinds = ['gatewayclasses', 'gateways', 'httproutes', 'referencegrants', 'websocketpolicies', 'ingresses', 'ingressclasses', 'namespaces', 'publishedservices'] as const;
export type RoutingApiKind = (typeof routingApiKinds)[number];

/** The kinds of object a source hands the builder (named as the Kubernetes resources are; publishedservices
 *  is the one Service of --publish-service, seen as its addresses). */
export type ObjectKind = 'websocketroutes' | 'services' | 'endpointslices' | 'secrets' | RoutingApiKind;

/** The Service wsgate runs behind, as its published addresses. */
export interface PublishedServiceLite {
  readonly metadata: { readonly namespace: string; readonly name: string };
  readonly addresses: readonly PublishedAddress[];
}

export type SourceObject =
  | RouteObject
  | ServiceLite
  | EndpointSliceLite
  | SecretLite
  | GatewayClassLite
  | GatewayLite
  | HTTPRouteLite
  | ReferenceGrantLite
  | WebSocketPolicyLite
  | IngressLite
  | IngressClassLite
  | NamespaceLite
  | PublishedServiceLite;

/** BuildInput.routingApis from a source's objects by kind, for the APIs that are on; undefined: none is. */
export function routingApisInput(on: RoutingApisOn | undefined, of: <T>(kind: RoutingApiKind) => T[]): RoutingApisInput | undefined {
  if (!on || (!on.gatewayApi && !on.ingress)) return undefined;
  return {
    addresses: of<PublishedServiceLite>('publishedservices').flatMap((s) => s.addresses),
    policies: of('websocketpolicies'),
    ...(on.gatewayApi
      ? { gatewayApi: { gatewayClasses: of('gatewayclasses'), gateways: of('gateways'), httpRoutes: of('httproutes'), referenceGrants: of('referencegrants'), namespaces: of('namespaces') } }
      : {}),
    ...(on.ingress ? { ingress: { ingressClasses: of('ingressclasses'), ingresses: of('ingresses') } } : {}),
  };
}

export function isRoutingApiKind(kind: ObjectKind): kind is RoutingApiKind {
  return (routingApiKinds as readonly string[]).includes(kind);
}

/** One object that changed, as the source holds it (trimmed) before and after. */
export interface ObjectChange {
  readonly kind: ObjectKind;
  /** "namespace/name". */
  readonly key: string;
  /** Absent: the object was added. */
  readonly before?: SourceObject;
  /** Absent: the object was deleted. */
  readonly after?: SourceObject;
}

/**
 * What a signal says changed: these objects, or anything at all (a reloaded route file, whose objects are
 * re-read whole). The controller decides from it whether the change can affect the table; the source does not.
 */
export type SourceChange = { readonly objects: readonly ObjectChange[] } | { readonly all: true };

/** Which standard routing APIs a source serves (BuildInput.routingApis has these parts). */
export interface RoutingApisOn {
  readonly gatewayApi: boolean;
  readonly ingress: boolean;
}

export interface Source {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** True once every underlying watch has delivered its first full state. */
  synced(): boolean;
  /** A consistent view of every object the builder needs. */
  current(): BuildInput;
  /** Every object with the key its changes carry, for a copy kept elsewhere (the build thread); absent:
   *  derived from current(). */
  keyedObjects?(): Iterable<Pick<ObjectChange, 'kind' | 'key' | 'after'>>;
  /** Which routing APIs current() includes (undefined or absent: none yet); cheap, unlike current(). */
  routingApis?(): RoutingApisOn | undefined;
  /** Callbacks only signal; the controller coalesces and rebuilds. Returns an unsubscribe function. */
  onChange(listener: (change: SourceChange) => void): () => void;
}
