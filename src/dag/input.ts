// What the builder reads: plain objects trimmed to the fields it needs, from either source.
import type { WebSocketRoute } from '../api/types.ts';
import type { RoutingApisInput } from './routing-apis.ts';

export interface ServicePortLite {
  readonly name?: string;
  readonly port: number;
  readonly targetPort?: number | string;
  readonly protocol?: string;
  /** Read by the Gateway API's backend-protocol rules only. */
  readonly appProtocol?: string;
}

export interface ServiceLite {
  readonly metadata: { readonly namespace: string; readonly name: string };
  readonly spec: { readonly ports?: readonly ServicePortLite[] };
}

export interface EndpointSliceLite {
  readonly metadata: { readonly namespace: string; readonly name: string; readonly labels?: Readonly<Record<string, string>> };
  readonly addressType: 'IPv4' | 'IPv6' | 'FQDN';
  readonly ports?: readonly { readonly name?: string; readonly port?: number; readonly protocol?: string }[] | null;
  readonly endpoints?: readonly {
    readonly addresses: readonly string[];
    readonly conditions?: { readonly ready?: boolean; readonly serving?: boolean; readonly terminating?: boolean };
    readonly zone?: string;
    readonly targetRef?: { readonly name?: string };
  }[] | null;
}

export interface SecretLite {
  readonly metadata: { readonly namespace: string; readonly name: string };
  readonly type?: string;
  /** base64 values, as the API serves them. */
  readonly data?: Readonly<Record<string, string>>;
}

/** A route as read from a source: its spec is unchecked until the builder validates it. */
export interface RouteObject extends Omit<WebSocketRoute, 'spec'> {
  readonly spec: unknown;
  /** Namespaces a backendRef may name besides the route's own: set for routes translated from the Gateway
   *  API, where a ReferenceGrant permits them. */
  readonly permittedNamespaces?: readonly string[];
}

export interface BuildInput {
  readonly routes: readonly RouteObject[];
  readonly services: readonly ServiceLite[];
  readonly endpointSlices: readonly EndpointSliceLite[];
  readonly secrets: readonly SecretLite[];
  /** Gateway API and Ingress objects, translated by routing-apis.ts; absent when both APIs are off. */
  readonly routingApis?: RoutingApisInput;
}

export interface BuildOptions {
  /** spec.className this installation serves; routes without className are served too. */
  readonly className: string;
  /** Static `endpoints` in backendRefs: always in standalone mode, by flag in Kubernetes mode. */
  readonly allowStaticEndpoints: boolean;
  /** Standalone mode has no Services: a backendRef by name is refused there. */
  readonly mode: 'standalone' | 'kubernetes';
}

export const emptyInput: BuildInput = { routes: [], services: [], endpointSlices: [], secrets: [] };
