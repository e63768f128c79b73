// The builder for all three routing APIs: HTTPRoutes (through their Gateways) and Ingresses are translated into
// WebSocketRoute-shaped objects and compiled with the WebSocketRoutes by the one builder, into one snapshot.
// The builder's verdict on a translated route is folded back into the status of the object it came from, the
// listener and Ingress certificates join the snapshot's, and the statuses of every API come out together.
import { createHash } from 'node:crypto';
import type { TlsCertificate } from '../model/snapshot.ts';
import { cmp } from './backends.ts';
import { createBuilder, type BuildResult, type ContentHasher } from './build.ts';
import { foldBuildStatuses } from './gateway/route-status.ts';
import { createGatewayApiTranslator } from './gateway/translate.ts';
import type { GatewayApiInput, GatewayApiTranslation, GatewayClassStatus, GatewayStatus, HTTPRouteStatus, ListenerCertificate, PolicyStatus, PublishedAddress, WebSocketPolicyLite } from './gateway/types.ts';
import { createIngressTranslator, type IngressInput, type IngressStatus, type IngressTranslation } from './ingress.ts';
import type { BuildInput, BuildOptions, RouteObject } from './input.ts';
import type { ReferenceIndex } from './references.ts';
import { mergeReferences, routingReferences } from './routing-references.ts';

/** What the Gateway API and Ingress informers hand over, next to the WebSocketRoute input. */
export interface RoutingApisInput {
  /** The Service wsgate runs behind: Gateway status.addresses and Ingress status.loadBalancer. */
  readonly addresses: readonly PublishedAddress[];
  readonly policies: readonly WebSocketPolicyLite[];
  /** Absent: the Gateway API is off (--watch-gateway-api=false, or its CRDs are not installed). */
  readonly gatewayApi?: Omit<GatewayApiInput, 'services' | 'secrets' | 'policies'>;
  /** Absent: Ingress is off (--watch-ingress=false). */
  readonly ingress?: Omit<IngressInput, 'secrets' | 'policies'>;
}

export interface RoutingApiStatuses {
  readonly gatewayClasses: readonly GatewayClassStatus[];
  readonly gateways: readonly GatewayStatus[];
  readonly httpRoutes: readonly HTTPRouteStatus[];
  readonly policies: readonly PolicyStatus[];
  readonly ingresses: readonly IngressStatus[];
}

export interface RoutingBuildResult extends BuildResult {
  /** Present when the input had routingApis. */
  readonly routingApis?: RoutingApiStatuses;
}

/** Translated routes are named kind:name; no Kubernetes name has a colon, so no WebSocketRoute is one. */
export const isTranslatedKey = (key: string) => key.includes(':');

/** What the translators made of the Gateway API and Ingress objects in one full build. They read Services and
 *  the routing objects, never EndpointSlices: after a change to slices alone the translation is still this one,
 *  and the build thread compiles its routes again without translating (routing-incremental.ts). */
export interface RoutingTranslation {
  readonly routes: readonly RouteObject[];
  readonly certificates: readonly ListenerCertificate[];
  /** What the translators themselves read (routing-references.ts). */
  readonly references: ReferenceIndex;
  readonly gatewayApi?: GatewayApiTranslation;
  readonly ingress?: IngressTranslation;
}

/** A full build, and the same build in its three steps: translate, compile (the WebSocketRoutes with the
 *  translated routes), finish (fold the builder's verdicts back into the routing-API statuses). */
export interface RoutingBuilder {
  (input: BuildInput): RoutingBuildResult;
  translate(input: BuildInput): RoutingTranslation | undefined;
  /** The input's routes and the translated ones, compiled by the one builder. */
  compile(input: BuildInput, translation?: RoutingTranslation): BuildResult;
  /** `kept`: parts of an earlier result known to come out the same (an incremental build's), not made again. */
  finish(compiled: BuildResult, translation: RoutingTranslation | undefined, kept?: Pick<RoutingBuildResult, 'references' | 'routingApis'>): RoutingBuildResult;
}

export function createRoutingBuilder(options: BuildOptions, hash?: ContentHasher): RoutingBuilder {
  const builder = createBuilder(options, hash);
  const compile = (input: BuildInput, t?: RoutingTranslation) => builder(t ? { ...input, routes: [...input.routes, ...t.routes] } : input);
  const gatewayApi = createGatewayApiTranslator();
  const ingress = createIngressTranslator();
  const translate = (input: BuildInput): RoutingTranslation | undefined => {
    const apis = input.routingApis;
    if (!apis) return undefined;
    const g = apis.gatewayApi ? gatewayApi({ ...apis.gatewayApi, policies: apis.policies, services: input.services, secrets: input.secrets }, apis.addresses) : undefined;
    const i = apis.ingress ? ingress({ ...apis.ingress, policies: apis.policies, secrets: input.secrets }, apis.addresses) : undefined;
    return {
      routes: [...(g?.routes ?? []), ...(i?.routes ?? [])],
      certificates: [...(g?.certificates ?? []), ...(i?.certificates ?? [])],
      references: routingReferences(apis),
      ...(g ? { gatewayApi: g } : {}),
      ...(i ? { ingress: i } : {}),
    };
  };
  const finish = (compiled: BuildResult, t: RoutingTranslation | undefined, kept?: Pick<RoutingBuildResult, 'references' | 'routingApis'>): RoutingBuildResult => {
    if (!t) return compiled;
    const statuses = reportCrossApiConflicts(compiled.statuses);
    return {
      // The Services and Secrets of translated routes are in the build's references; those the translators
      // read themselves (listener and Ingress certificates, backends not found yet) are added.
      references: kept?.references ?? mergeReferences(compiled.references, t.references),
      content: withCertificates(compiled.content, t.certificates),
      statuses: statuses.filter((s) => !isTranslatedKey(s.key)),
      routingApis: kept?.routingApis ?? foldRoutingStatuses(t, statuses),
    };
  };
  const full = (input: BuildInput): RoutingBuildResult => {
    const t = translate(input);
    return finish(compile(input, t), t);
  };
  return Object.assign(full, { translate, compile, finish });
}

/** The routing-API statuses: the translation's, with the builder's verdicts on the translated routes folded in.
 *  `built`: every status of the build, the translated routes' included, cross-API conflicts reported. */
function foldRoutingStatuses(t: RoutingTranslation, built: BuildResult['statuses']): RoutingApiStatuses {
  const g = t.gatewayApi;
  const i = t.ingress;
  return {
    gatewayClasses: g?.gatewayClasses ?? [],
    gateways: g?.gateways ?? [],
    httpRoutes: foldBuildStatuses(g?.httpRoutes ?? [], built),
    policies: mergePolicies([...(g?.policies ?? []), ...(i?.policies ?? [])]),
    ingresses: foldIngressWarnings(i?.ingresses ?? [], built),
  };
}

/** A WebSocketRoute's own certificate for a host name comes first; then listeners and Ingresses, in order. */
function withCertificates(content: BuildResult['content'], extra: readonly ListenerCertificate[]): BuildResult['content'] {
  const added = new Map<string, TlsCertificate>();
  for (const c of extra) if (c.hostname && !content.certificates.has(c.hostname) && !added.has(c.hostname)) added.set(c.hostname, c.certificate);
  if (added.size === 0) return content;
  const certificates = new Map([...content.certificates, ...added].sort(([a], [b]) => cmp(a, b)));
  const hash = createHash('sha256').update(content.hash).update(JSON.stringify([...added])).digest('hex');
  return Object.freeze({ ...content, certificates, hash });
}

/** How a translated route is named in a status message: by the object it came from. */
function displayName(key: string): string {
  const m = /^([^/]+)\/(httproute|ingress):([^:]+)(?::(.*))?$/.exec(key);
  if (!m) return `WebSocketRoute ${key}`;
  return m[2] === 'httproute' ? `HTTPRoute ${m[1]}/${m[3]}` : `Ingress ${m[1]}/${m[3]} (host ${m[4]})`;
}

/**
 * The builder's statuses, with conflicts across APIs reported on both sides: the loser
 * names the object that won (not its translated name), the winner says which younger object it keeps out. The
 * builder names the older route at the end of its Conflicted message (build.ts).
 */
function reportCrossApiConflicts(statuses: BuildResult['statuses']): BuildResult['statuses'] {
  const beaten = new Map<string, string[]>();
  for (const s of statuses) {
    const a = s.conditions.find((c) => c.type === 'Accepted');
    const older = a?.reason === 'Conflicted' ? /older route (\S+)$/.exec(a.message)?.[1] : undefined;
    if (older && isTranslatedKey(s.key) !== isTranslatedKey(older)) beaten.set(older, [...(beaten.get(older) ?? []), displayName(s.key)]);
  }
  return statuses.map((s) => {
      let changed = false;
      const conditions = s.conditions.map((c) => {
        if (c.type !== 'Accepted') return c;
        if (c.reason === 'Conflicted') {
          const older = /older route (\S+)$/.exec(c.message)?.[1];
          if (!older || !(isTranslatedKey(older) || isTranslatedKey(s.key))) return c;
          changed = true;
          return { ...c, message: c.message.replace(older, displayName(older)) };
        }
        const lost = beaten.get(s.key);
        if (!lost) return c;
        changed = true;
        return { ...c, message: `${c.message}; keeps out the younger ${lost.join(', ')} (same hostname, path and headers)` };
      });
      // A status with nothing to report stays the builder's object: an incremental build shares it.
      return changed ? { ...s, conditions } : s;
    });
}

function mergePolicies(ps: readonly PolicyStatus[]): PolicyStatus[] {
  const by = new Map<string, PolicyStatus>();
  for (const p of ps) {
    const k = `${p.namespace}/${p.name}`;
    const prev = by.get(k);
    by.set(k, prev ? { ...prev, ancestors: [...prev.ancestors, ...p.ancestors] } : p);
  }
  return [...by.values()].sort((a, b) => cmp(`${a.namespace}/${a.name}`, `${b.namespace}/${b.name}`));
}

/** A translated Ingress route the builder left out (the older route holds its host and path, or a mapped
 *  annotation made an invalid spec) is reported on the Ingress with the builder's reason. */
function foldIngressWarnings(ingresses: readonly IngressStatus[], built: BuildResult['statuses']): IngressStatus[] {
  return ingresses.map((ing) => {
    const prefix = `${ing.namespace}/ingress:${ing.name}:`;
    const refused = built
      .filter((s) => s.key.startsWith(prefix))
      .flatMap((s) => {
        const a = s.conditions.find((c) => c.type === 'Accepted');
        return a && a.status === 'False' ? [`host ${s.key.slice(prefix.length)}: not served: ${a.reason}: ${a.message}`] : [];
      });
    return refused.length === 0 ? ing : { ...ing, warnings: [...ing.warnings, ...refused].sort() };
  });
}
