// clientIPs allow/deny, checked against the client address util/cidr.ts resolved.
import type { WebSocketRouteSpec } from '../api/types.ts';
import { Errors, type WsgateError } from '../errors.ts';
import { parseCidrs, type CidrSet } from '../util/cidr.ts';

/** clientIPs.allow / deny, compiled once per route object (routes are immutable, so a WeakMap is a safe cache). */
export class ClientIpFilter {
  readonly #compiled = new WeakMap<object, { allow?: CidrSet; deny?: CidrSet; broken?: boolean }>();

  check(spec: Pick<WebSocketRouteSpec, 'clientIPs'>, ip: string): WsgateError | undefined {
    const c = spec.clientIPs;
    if (!c || (!c.allow?.length && !c.deny?.length)) return undefined;
    let compiled = this.#compiled.get(c);
    if (!compiled) {
      const allow = c.allow?.length ? parseCidrs(c.allow) : undefined;
      const deny = c.deny?.length ? parseCidrs(c.deny) : undefined;
      // The schema's pattern and the builder (parseCidr) keep bad entries out of the snapshot; should one get
      // here anyway, it closes the route rather than silently shrinking a deny list.
      compiled = deny?.bad.length || allow?.bad.length ? { broken: true } : { ...(allow ? { allow: allow.set } : {}), ...(deny ? { deny: deny.set } : {}) };
      this.#compiled.set(c, compiled);
    }
    if (compiled.broken) return Errors.forbiddenIP('clientIPs has an invalid entry');
    // Deny wins over allow, so a hole can be cut into an allowed range.
    if (compiled.deny?.has(ip)) return Errors.forbiddenIP();
    if (compiled.allow && !compiled.allow.has(ip)) return Errors.forbiddenIP();
    return undefined;
  }
}
