// The client address for ClientIP affinity on paths no admission check has seen (HTTP fallback): the socket's
// address, or — only when the socket is a trusted proxy — the nearest X-Forwarded-For entry that is not itself
// a trusted proxy. The same rule as the upgrade path, so a long-polling session and its later upgrade hash
// to the same key.
import { BlockList, isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { socketAddress } from '../forward-headers.ts';

export class TrustedProxies {
  readonly #list = new BlockList();
  readonly #empty: boolean;

  constructor(cidrs: readonly string[]) {
    this.#empty = cidrs.length === 0;
    for (const c of cidrs) {
      const [ip, bits] = c.split('/');
      const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.#list.addAddress(ip, family);
      else this.#list.addSubnet(ip, Number(bits), family);
    }
  }

  trusts(ip: string): boolean {
    if (this.#empty) return false;
    const v = isIP(ip);
    return v !== 0 && this.#list.check(ip, v === 6 ? 'ipv6' : 'ipv4');
  }

  /** The client's address for this request, and whether its forwarded chain may be kept. */
  resolve(req: IncomingMessage): { clientIp: string; trustForwarded: boolean } {
    const peer = socketAddress(req.socket.remoteAddress);
    if (!this.trusts(peer)) return { clientIp: peer, trustForwarded: false };
    const raw = req.headers['x-forwarded-for'];
    const chain = (Array.isArray(raw) ? raw.join(',') : raw ?? '').split(',').map((s) => socketAddress(s.trim())).filter((s) => isIP(s) !== 0);
    for (let i = chain.length - 1; i >= 0; i--) {
      if (!this.trusts(chain[i])) return { clientIp: chain[i], trustForwarded: true };
    }
    return { clientIp: chain[0] ?? peer, trustForwarded: true };
  }
}
