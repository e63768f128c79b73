// Listener and route hostname intersection, as the HTTPRoute spec defines it
// (https://gateway-api.sigs.k8s.io/reference/spec/#httproutespec, "hostnames"): a wildcard matches one or more
// leading labels, so "*.example.com" matches "a.b.example.com" but not "example.com".

/** Whether `host` (exact or wildcard) falls under the wildcard `wild` ("*.suffix"). */
function under(host: string, wild: string): boolean {
  const suffix = wild.slice(1); // ".example.com"
  const h = host.startsWith('*.') ? host.slice(1) : host;
  return h.endsWith(suffix) && h.length > suffix.length;
}

/** The one hostname both accept, or undefined when they share none. */
function intersectOne(listener: string, route: string): string | undefined {
  if (listener === route) return route;
  if (listener.startsWith('*.') && under(route, listener)) return route;
  if (route.startsWith('*.') && under(listener, route)) return listener;
  return undefined;
}

/**
 * The hostnames a route serves through one listener. `[]` means every hostname (neither side narrows);
 * `undefined` means they share none, so the route does not attach there (NoMatchingListenerHostname).
 */
export function intersectHostnames(listener: string | undefined, route: readonly string[] | undefined): string[] | undefined {
  const hosts = (route ?? []).map((h) => h.toLowerCase());
  const l = listener?.toLowerCase();
  if (!l) return [...new Set(hosts)];
  if (hosts.length === 0) return [l];
  const out = new Set<string>();
  for (const h of hosts) {
    const i = intersectOne(l, h);
    if (i !== undefined) out.add(i);
  }
  return out.size > 0 ? [...out] : undefined;
}
