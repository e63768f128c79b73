// The client address for ClientIP affinity on paths no admission check has seen (HTTP fallback): the same
// rule as the upgrade path (util/cidr.ts resolveClientIp), so a long-polling session and its later upgrade
// hash to the same key.
import { parseCidrs, resolveClientIp, type CidrSet } from '../../../util/cidr.ts';
import type { UpgradeRequest } from '../../handshake/head.ts';

export class TrustedProxies {
  readonly #set: CidrSet;

  /** cidrs were validated with the flags (config.ts), so none is dropped here. */
  constructor(cidrs: readonly string[]) {
    this.#set = parseCidrs(cidrs).set;
  }

  /** The client's address for this request, and whether its forwarded chain may be kept. */
  resolve(req: UpgradeRequest): { clientIp: string; trustForwarded: boolean } {
    const r = resolveClientIp(req.socket.remoteAddress ?? '', req.headers['x-forwarded-for'], this.#set);
    return { clientIp: r.ip, trustForwarded: r.trustForwarded };
  }
}
