// Which listeners an HTTPRoute's parentRef attaches to (https://gateway-api.sigs.k8s.io/reference/spec/#parentreference):
// sectionName and port narrow the listeners, allowedRoutes (namespaces and kinds) admit or refuse the route, and
// the hostnames must intersect. The first refusal that applies names the reason, in the order the spec lists them.
import { intersectHostnames } from './hostnames.ts';
import type { CheckedListener } from './listeners.ts';
import { namespaceLabels, selectorMatches } from './references.ts';
import type { GatewayLite, HTTPRouteLite, NamespaceLite, ParentReference } from './types.ts';

export interface Attachment {
  /** Listener names the route attached to. */
  readonly listeners: readonly string[];
  /** [] means every hostname. */
  readonly hostnames: readonly string[];
}

export type AttachResult = { readonly ok: true; readonly attachment: Attachment } | { readonly ok: false; readonly reason: string; readonly message: string };

function namespaceAllowed(l: CheckedListener, gw: GatewayLite, routeNs: string, namespaces: readonly NamespaceLite[]): boolean {
  const from = l.listener.allowedRoutes?.namespaces?.from ?? 'Same';
  if (from === 'All') return true;
  if (from === 'Same') return routeNs === (gw.metadata.namespace ?? 'default');
  const sel = l.listener.allowedRoutes?.namespaces?.selector;
  return sel !== undefined && selectorMatches(sel, namespaceLabels(namespaces, routeNs));
}

export function attach(route: HTTPRouteLite, ref: ParentReference, gw: GatewayLite, listeners: readonly CheckedListener[], namespaces: readonly NamespaceLite[]): AttachResult {
  const routeNs = route.metadata.namespace ?? 'default';
  const named = listeners.filter((l) => (ref.sectionName === undefined || l.listener.name === ref.sectionName) && (ref.port === undefined || l.listener.port === ref.port));
  if (named.length === 0) {
    const what = [ref.sectionName !== undefined ? `sectionName ${ref.sectionName}` : '', ref.port !== undefined ? `port ${ref.port}` : ''].filter(Boolean).join(' and ');
    return { ok: false, reason: 'NoMatchingParent', message: `no listener with ${what}` };
  }
  const allowed = named.filter((l) => l.usable && namespaceAllowed(l, gw, routeNs, namespaces));
  if (allowed.length === 0) return { ok: false, reason: 'NotAllowedByListeners', message: 'no listener admits this route: its allowedRoutes (namespaces, kinds) refuse it or the listener is not valid' };
  const hostnames = new Set<string>();
  let anyHost = false;
  const attachedTo: string[] = [];
  for (const l of allowed) {
    const hosts = intersectHostnames(l.listener.hostname, route.spec.hostnames);
    if (hosts === undefined) continue;
    attachedTo.push(l.listener.name);
    if (hosts.length === 0) anyHost = true;
    for (const h of hosts) hostnames.add(h);
  }
  if (attachedTo.length === 0) return { ok: false, reason: 'NoMatchingListenerHostname', message: 'no listener hostname intersects the route hostnames' };
  return { ok: true, attachment: { listeners: attachedTo, hostnames: anyHost ? [] : [...hostnames].sort() } };
}
