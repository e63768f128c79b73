// clientIPs allow/deny, checked against the client address util/cidr.ts resolved.
import { Errors, type WsgateError } from '../errors.ts';
import type { ClientIpPolicy } from '../model/route.ts';
import { cidrSet, type CidrSet } from '../util/cidr.ts';

/**
 * The route's CIDRs come parsed and validated (the builder refuses a route with a bad entry). Lookup sets
 * (node:net BlockList) are built here, once per compiled policy object, because a BlockList cannot cross to
 * --workers processes inside the snapshot; routes are immutable, so a WeakMap keyed by the object is a safe cache.
 */
export class ClientIpFilter {
  readonly #compiled = new WeakMap<ClientIpPolicy, { allow: CidrSet | undefined; deny: CidrSet }>();

  /** policy undefined: any address. */
  check(policy: ClientIpPolicy | undefined, ip: string): WsgateError | undefined {
    if (!policy) return undefined;
    let sets = this.#compiled.get(policy);
    if (!sets) {
      sets = { allow: policy.allow ? cidrSet(policy.allow) : undefined, deny: cidrSet(policy.deny) };
      this.#compiled.set(policy, sets);
    }
    // Deny wins over allow, so a hole can be cut into an allowed range.
    if (sets.deny.has(ip)) return Errors.forbiddenIP();
    if (sets.allow && !sets.allow.has(ip)) return Errors.forbiddenIP();
    return undefined;
  }
}
