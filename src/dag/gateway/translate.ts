// Gateway API objects → the builder's input: GatewayClasses of our controller, their Gateways and the HTTPRoutes
// attached to them become WebSocketRoute-shaped objects (so every WebSocket behaviour comes from the one
// builder), with the GatewayClass, Gateway, HTTPRoute and WebSocketPolicy statuses the spec requires. Pure and
// deterministic: objects in, sorted outputs out; no I/O, no clock.
import { cmp } from '../backends.ts';
import { attach } from './attach.ts';
import { checkListeners, type CheckedListener } from './listeners.ts';
import { checkPolicies, createPolicyValidator, mergedBlocks, targetKey, type PolicyOutcome, type PolicyValidator } from './policy.ts';
import { translateRules } from './route-rules.ts';
import { translatedName } from './route-status.ts';
import {
  apiCondition,
  gatewayControllerName,
  gatewayGroup,
  type ApiCondition,
  type GatewayApiInput,
  type PublishedAddress,
  type GatewayApiTranslation,
  type GatewayLite,
  type GatewayStatus,
  type HTTPRouteStatus,
  type ListenerCertificate,
  type ParentReference,
  type PolicyAncestorStatus,
  type PolicyStatus,
  type RouteParentStatus,
  type TranslatedRoute,
} from './types.ts';

/** `addresses`: of the Service wsgate runs behind (Gateway status.addresses). */
export type GatewayApiTranslator = (input: GatewayApiInput, addresses: readonly PublishedAddress[]) => GatewayApiTranslation;

export function createGatewayApiTranslator(): GatewayApiTranslator {
  const validatePolicy = createPolicyValidator();
  return (input, addresses) => translate(input, addresses, validatePolicy);
}

const live = <T extends { metadata: { deletionTimestamp?: string } }>(xs: readonly T[]) => xs.filter((x) => !x.metadata.deletionTimestamp);
const keyOf = (m: { namespace?: string; name: string }) => `${m.namespace ?? 'default'}/${m.name}`;
const byKey = <T extends { metadata: { namespace?: string; name: string } }>(xs: readonly T[]) => [...xs].sort((a, b) => cmp(keyOf(a.metadata), keyOf(b.metadata)));

function translate(input: GatewayApiInput, addresses: readonly PublishedAddress[], validatePolicy: PolicyValidator): GatewayApiTranslation {
  const classes = live(input.gatewayClasses)
    .filter((c) => c.spec.controllerName === gatewayControllerName)
    .sort((a, b) => cmp(a.metadata.name, b.metadata.name));
  const classNames = new Set(classes.map((c) => c.metadata.name));
  const gateways = byKey(live(input.gateways).filter((g) => classNames.has(g.spec.gatewayClassName)));
  const checked = new Map<string, { gw: GatewayLite; listeners: CheckedListener[] }>();
  for (const gw of gateways) checked.set(keyOf(gw.metadata), { gw, listeners: checkListeners(gw, input) });
  // gateway key → listener name → the routes attached. A set: attachedRoutes counts Routes, and one route may
  // reach a listener through more than one of its parentRefs (a sectionName and a port naming the same one).
  const attached = new Map<string, Map<string, Set<string>>>();
  const addAttached = (gk: string, listener: string, route: string) => {
    const m = attached.get(gk) ?? new Map<string, Set<string>>();
    attached.set(gk, m);
    const routes = m.get(listener) ?? new Set<string>();
    m.set(listener, routes);
    routes.add(route);
  };

  const policies = checkPolicies(input.policies, validatePolicy);
  const routes: TranslatedRoute[] = [];
  const routeStatuses: HTTPRouteStatus[] = [];
  const routeGateways = new Map<string, string[]>(); // route key → Gateways that accepted it
  for (const route of byKey(live(input.httpRoutes))) {
    const ns = route.metadata.namespace ?? 'default';
    const gen = route.metadata.generation ?? 0;
    const c = (type: string, ok: boolean, reason: string, message: string) => apiCondition(type, ok, reason, message, gen);
    const rules = translateRules(route, input);
    const { unsupported } = rules;
    const resolved: ApiCondition = rules.refProblems.length === 0
      ? c('ResolvedRefs', true, 'ResolvedRefs', 'all references resolved')
      : c('ResolvedRefs', false, (rules.refProblems[0] as { reason: string }).reason, rules.refProblems.map((p) => p.message).join('; '));
    const parents: RouteParentStatus[] = [];
    const hostSets: (readonly string[])[] = [];
    const acceptedBy: string[] = [];
    for (const ref of route.spec.parentRefs ?? []) {
      if ((ref.group ?? gatewayGroup) !== gatewayGroup || (ref.kind ?? 'Gateway') !== 'Gateway') continue;
      const gk = `${ref.namespace ?? ns}/${ref.name}`;
      const g = checked.get(gk);
      if (!g) continue; // not one of our Gateways: its own controller answers
      const parentRef: ParentReference = { group: gatewayGroup, kind: 'Gateway', namespace: ref.namespace ?? ns, name: ref.name, ...(ref.sectionName !== undefined ? { sectionName: ref.sectionName } : {}), ...(ref.port !== undefined ? { port: ref.port } : {}) };
      const a = attach(route, ref, g.gw, g.listeners, input.namespaces);
      let acceptedCond: ApiCondition;
      if (!a.ok) acceptedCond = c('Accepted', false, a.reason, a.message);
      else if (unsupported.length > 0) acceptedCond = c('Accepted', false, 'UnsupportedValue', `not supported by wsgate: ${unsupported.join('; ')}`);
      else {
        acceptedCond = c('Accepted', true, 'Accepted', 'route accepted');
        for (const l of a.attachment.listeners) addAttached(gk, l, keyOf(route.metadata));
        hostSets.push(a.attachment.hostnames);
        acceptedBy.push(gk);
      }
      parents.push({ parentRef, controllerName: gatewayControllerName, conditions: [acceptedCond, resolved] });
    }
    if (parents.length === 0) continue;
    routeStatuses.push({ namespace: ns, name: route.metadata.name, parents });
    if (acceptedBy.length === 0) continue;
    routeGateways.set(keyOf(route.metadata), acceptedBy);
    const hostnames = hostSets.some((h) => h.length === 0) ? [] : [...new Set(hostSets.flat())].sort(cmp);
    const blocks = mergedBlocks(policies, acceptedBy.map((gk) => `Gateway/${gk}`), targetKey('HTTPRoute', ns, route.metadata.name));
    const upstream = { ...(blocks.upstream as object | undefined), ...(rules.protocol ? { protocol: rules.protocol } : {}) };
    routes.push({
      apiVersion: 'wsgate.io/v1alpha1',
      kind: 'WebSocketRoute',
      metadata: {
        namespace: ns,
        name: translatedName('httproute', route.metadata.name),
        generation: gen,
        ...(route.metadata.creationTimestamp ? { creationTimestamp: route.metadata.creationTimestamp } : {}),
      },
      spec: {
        ...blocks,
        ...(hostnames.length > 0 ? { hostnames } : {}),
        ...(Object.keys(upstream).length > 0 ? { upstream } : {}),
        rules: rules.rules.map((r) => ({ matches: r.matches, backendRefs: r.backendRefs, ...(r.requestHeaders ? { requestHeaders: r.requestHeaders } : {}) })),
      },
      permittedNamespaces: rules.grantedNamespaces,
    });
  }

  const certificates: ListenerCertificate[] = [];
  const gatewayStatuses: GatewayStatus[] = [];
  for (const [gk, { gw, listeners }] of checked) {
    const gen = gw.metadata.generation ?? 0;
    const c = (type: string, ok: boolean, reason: string, message: string) => apiCondition(type, ok, reason, message, gen);
    const valid = listeners.filter((l) => l.usable).length;
    const requested = (gw.spec.addresses ?? []).length > 0;
    const accepted = requested
      ? c('Accepted', false, 'UnsupportedAddress', 'spec.addresses: wsgate takes the addresses of the Service it runs behind')
      : valid === 0
        ? c('Accepted', false, 'ListenersNotValid', 'no listener is valid')
        : valid < listeners.length
          ? c('Accepted', true, 'ListenersNotValid', 'some listeners are not valid: see their conditions')
          : c('Accepted', true, 'Accepted', 'gateway accepted');
    const programmed =
      accepted.status !== 'True'
        ? c('Programmed', false, 'Invalid', 'the gateway is not accepted')
        : addresses.length === 0
          ? c('Programmed', false, 'AddressNotAssigned', 'the Service wsgate runs behind has no address yet')
          : c('Programmed', true, 'Programmed', 'gateway programmed');
    if (accepted.status === 'True') for (const l of listeners) if (l.usable) certificates.push(...l.certificates);
    gatewayStatuses.push({
      namespace: gw.metadata.namespace ?? 'default',
      name: gw.metadata.name,
      addresses: accepted.status === 'True' ? addresses : [],
      conditions: [accepted, programmed],
      listeners: listeners.map((l) => ({
        name: l.listener.name,
        supportedKinds: l.supportedKinds,
        attachedRoutes: attached.get(gk)?.get(l.listener.name)?.size ?? 0,
        conditions: l.conditions,
      })),
    });
  }

  return {
    routes,
    certificates: certificates.sort((a, b) => cmp(a.hostname, b.hostname) || cmp(keyOf(a.secret), keyOf(b.secret))),
    gatewayClasses: classes.map((gc) => ({
      name: gc.metadata.name,
      conditions: [apiCondition('Accepted', true, 'Accepted', `served by ${gatewayControllerName}`, gc.metadata.generation ?? 0)],
    })),
    gateways: gatewayStatuses,
    httpRoutes: routeStatuses,
    policies: policyStatuses(input, policies.outcomes, checked, routeGateways),
  };
}

function policyStatuses(
  input: GatewayApiInput,
  outcomes: ReadonlyMap<string, ReadonlyMap<string, PolicyOutcome>>,
  gateways: ReadonlyMap<string, unknown>,
  routeGateways: ReadonlyMap<string, readonly string[]>,
): PolicyStatus[] {
  const out: PolicyStatus[] = [];
  for (const p of byKey(live(input.policies))) {
    const pk = keyOf(p.metadata);
    const gen = p.metadata.generation ?? 0;
    const ancestors: PolicyAncestorStatus[] = [];
    for (const [tk, outcome] of outcomes.get(pk) ?? []) {
      const [kind, ns, name] = tk.split('/') as [string, string, string];
      if (kind === 'Ingress') continue; // the Ingress translation reports those
      const gk = `${ns}/${name}`;
      const ancestorsOf = kind === 'Gateway' ? (gateways.has(gk) ? [gk] : []) : (routeGateways.get(gk) ?? []);
      const cond = (ancestorExists: boolean): ApiCondition =>
        !ancestorExists
          ? apiCondition('Accepted', false, 'TargetNotFound', `${kind} ${gk} is not served by wsgate`, gen)
          : outcome.reason === 'Accepted'
            ? apiCondition('Accepted', true, 'Accepted', 'policy accepted', gen)
            : outcome.reason === 'Conflicted'
              ? apiCondition('Accepted', false, 'Conflicted', `the older policy ${outcome.winner} targets ${kind} ${gk}`, gen)
              : apiCondition('Accepted', false, 'Invalid', outcome.message, gen);
      if (ancestorsOf.length === 0) {
        ancestors.push({ ancestorRef: { group: gatewayGroup, kind, namespace: ns, name }, controllerName: gatewayControllerName, conditions: [cond(false)] });
      }
      for (const a of ancestorsOf) {
        const [ans, aname] = a.split('/') as [string, string];
        ancestors.push({ ancestorRef: { group: gatewayGroup, kind: 'Gateway', namespace: ans, name: aname }, controllerName: gatewayControllerName, conditions: [cond(true)] });
      }
    }
    if (ancestors.length > 0) out.push({ namespace: p.metadata.namespace ?? 'default', name: p.metadata.name, ancestors });
  }
  return out;
}
