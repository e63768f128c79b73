// What the Gateway API translation reads and writes: the objects trimmed to the fields it uses, and the statuses
// it computes for the leader to write. Unknown fields pass through untouched, so a field wsgate does not support
// is seen (and refused) rather than silently dropped.
import type { ObjectMeta } from '../../api/types.ts';
import type { TlsCertificate } from '../../model/snapshot.ts';
import type { RouteObject, SecretLite } from '../input.ts';

export const gatewayGroup = 'gateway.networking.k8s.io';
export const gatewayControllerName = 'wsgate.io/gateway-controller';

export interface GatewayClassLite {
  readonly metadata: ObjectMeta;
  readonly spec: { readonly controllerName: string };
}

export interface SecretObjectReference {
  readonly group?: string;
  readonly kind?: string;
  readonly name: string;
  readonly namespace?: string;
}

export interface RouteGroupKind {
  readonly group?: string;
  readonly kind: string;
}

export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly { readonly key: string; readonly operator: string; readonly values?: readonly string[] }[];
}

export interface ListenerLite {
  readonly name: string;
  readonly hostname?: string;
  readonly port: number;
  readonly protocol: string;
  readonly tls?: { readonly mode?: string; readonly certificateRefs?: readonly SecretObjectReference[] };
  readonly allowedRoutes?: {
    readonly namespaces?: { readonly from?: 'All' | 'Same' | 'Selector'; readonly selector?: LabelSelector };
    readonly kinds?: readonly RouteGroupKind[];
  };
}

export interface GatewayLite {
  readonly metadata: ObjectMeta;
  readonly spec: {
    readonly gatewayClassName: string;
    readonly listeners: readonly ListenerLite[];
    readonly addresses?: readonly { readonly type?: string; readonly value: string }[];
  };
}

export interface ParentReference {
  readonly group?: string;
  readonly kind?: string;
  readonly namespace?: string;
  readonly name: string;
  readonly sectionName?: string;
  readonly port?: number;
}

export interface HTTPHeaderMatch {
  readonly type?: string;
  readonly name: string;
  readonly value: string;
}

export interface HTTPRouteMatch {
  readonly path?: { readonly type?: string; readonly value?: string };
  readonly headers?: readonly HTTPHeaderMatch[];
  readonly queryParams?: readonly unknown[];
  readonly method?: string;
}

export interface HTTPHeader {
  readonly name: string;
  readonly value: string;
}

export interface HTTPRouteFilter {
  readonly type: string;
  readonly requestHeaderModifier?: {
    readonly set?: readonly HTTPHeader[];
    readonly add?: readonly HTTPHeader[];
    readonly remove?: readonly string[];
  };
}

export interface HTTPBackendRef {
  readonly group?: string;
  readonly kind?: string;
  readonly name: string;
  readonly namespace?: string;
  readonly port?: number;
  readonly weight?: number;
  readonly filters?: readonly HTTPRouteFilter[];
}

export interface HTTPRouteRule {
  readonly name?: string;
  readonly matches?: readonly HTTPRouteMatch[];
  readonly filters?: readonly HTTPRouteFilter[];
  readonly backendRefs?: readonly HTTPBackendRef[];
  readonly timeouts?: unknown;
  readonly retry?: unknown;
  readonly sessionPersistence?: unknown;
}

export interface HTTPRouteLite {
  readonly metadata: ObjectMeta;
  readonly spec: {
    readonly parentRefs?: readonly ParentReference[];
    readonly hostnames?: readonly string[];
    readonly rules?: readonly HTTPRouteRule[];
  };
}

export interface ReferenceGrantLite {
  readonly metadata: ObjectMeta;
  readonly spec: {
    readonly from: readonly { readonly group: string; readonly kind: string; readonly namespace: string }[];
    readonly to: readonly { readonly group: string; readonly kind: string; readonly name?: string }[];
  };
}

export interface NamespaceLite {
  readonly metadata: { readonly name: string; readonly labels?: Readonly<Record<string, string>> };
}

/** A Service with what backend-protocol rules need: the appProtocol of each port. */
export interface BackendServiceLite {
  readonly metadata: { readonly namespace: string; readonly name: string };
  readonly spec: { readonly ports?: readonly { readonly name?: string; readonly port: number; readonly appProtocol?: string }[] };
}

export interface PolicyTargetRef {
  readonly group: string;
  readonly kind: string;
  readonly name: string;
  readonly sectionName?: string;
}

/** A WebSocketPolicy: targetRefs plus the WebSocket blocks of a WebSocketRoute spec (unchecked until the builder). */
export interface WebSocketPolicyLite {
  readonly metadata: ObjectMeta;
  readonly spec: { readonly targetRefs?: readonly PolicyTargetRef[] } & Readonly<Record<string, unknown>>;
}

export interface GatewayApiInput {
  readonly gatewayClasses: readonly GatewayClassLite[];
  readonly gateways: readonly GatewayLite[];
  readonly httpRoutes: readonly HTTPRouteLite[];
  readonly referenceGrants: readonly ReferenceGrantLite[];
  readonly namespaces: readonly NamespaceLite[];
  readonly services: readonly BackendServiceLite[];
  readonly secrets: readonly SecretLite[];
  readonly policies: readonly WebSocketPolicyLite[];
}

/** An address of the Service wsgate runs behind: Gateway status.addresses, Ingress status.loadBalancer. */
export interface PublishedAddress {
  readonly type: 'IPAddress' | 'Hostname';
  readonly value: string;
}

export interface ApiCondition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration: number;
}

export interface GatewayClassStatus {
  readonly name: string;
  readonly conditions: readonly ApiCondition[];
}

export interface ListenerStatus {
  readonly name: string;
  readonly supportedKinds: readonly { readonly group: string; readonly kind: string }[];
  readonly attachedRoutes: number;
  readonly conditions: readonly ApiCondition[];
}

export interface GatewayStatus {
  readonly namespace: string;
  readonly name: string;
  readonly addresses: readonly { readonly type: string; readonly value: string }[];
  readonly conditions: readonly ApiCondition[];
  readonly listeners: readonly ListenerStatus[];
}

export interface RouteParentStatus {
  readonly parentRef: ParentReference;
  readonly controllerName: string;
  readonly conditions: readonly ApiCondition[];
}

export interface HTTPRouteStatus {
  readonly namespace: string;
  readonly name: string;
  readonly parents: readonly RouteParentStatus[];
}

export interface PolicyAncestorStatus {
  readonly ancestorRef: ParentReference;
  readonly controllerName: string;
  readonly conditions: readonly ApiCondition[];
}

export interface PolicyStatus {
  readonly namespace: string;
  readonly name: string;
  readonly ancestors: readonly PolicyAncestorStatus[];
}

/** A certificate an HTTPS listener serves: '' is the listener without a hostname (every SNI name). */
export interface ListenerCertificate {
  readonly hostname: string;
  readonly secret: { readonly namespace: string; readonly name: string };
  readonly certificate: TlsCertificate;
}

/** A WebSocketRoute-shaped object made from an HTTPRoute or an Ingress, for the builder to compile. */
export interface TranslatedRoute extends RouteObject {
  /** Other namespaces its backendRefs may reach: a ReferenceGrant permits them. */
  readonly permittedNamespaces: readonly string[];
}

export interface GatewayApiTranslation {
  /** One per HTTPRoute with an accepted parent, named httproute:<name> (no Kubernetes name has a colon). */
  readonly routes: readonly TranslatedRoute[];
  readonly certificates: readonly ListenerCertificate[];
  readonly gatewayClasses: readonly GatewayClassStatus[];
  readonly gateways: readonly GatewayStatus[];
  readonly httpRoutes: readonly HTTPRouteStatus[];
  readonly policies: readonly PolicyStatus[];
}

export function apiCondition(type: string, ok: boolean, reason: string, message: string, observedGeneration: number): ApiCondition {
  return { type, status: ok ? 'True' : 'False', reason, message, observedGeneration };
}
