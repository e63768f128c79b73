// Addresses and CIDRs, parsed one way for every user: the builder (clientIPs), the flags (--trusted-proxies),
// the admission checks and affinity. Pure apart from node:net's address grammar, so the builder stays
// deterministic.
import { BlockList, isIP } from 'node:net';

export interface Cidr {
  readonly ip: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

export interface CidrSet {
  has(ip: string): boolean;
  readonly size: number;
}

/**
 * The one parser for an address or CIDR ("10.0.0.0/8", "2001:db8::/32", "10.1.2.3"): the parts, or what is
 * wrong with it as a phrase that follows the quoted entry ('"10.0.0.0/33" has a prefix length that …'). The builder
 * refuses a route with an entry this refuses, so the proxy never meets one.
 */
export function parseCidr(raw: string): Cidr | string {
  const entry = raw.trim();
  const slash = entry.indexOf('/');
  const ip = slash < 0 ? entry : entry.slice(0, slash);
  const bits = slash < 0 ? undefined : entry.slice(slash + 1);
  const v = isIP(ip);
  if (v === 0) return 'is not an IP address or CIDR (e.g. 10.0.0.0/8, 2001:db8::/32)';
  if (ip.includes('%')) return 'has a zone index, which a CIDR cannot have';
  const max = v === 4 ? 32 : 128;
  if (bits === undefined) return { ip, prefix: max, family: v === 4 ? 'ipv4' : 'ipv6' };
  const prefix = Number(bits);
  if (!/^\d{1,3}$/.test(bits) || prefix > max) return `has a prefix length that is not a number from 0 to ${max} (${v === 4 ? 'IPv4' : 'IPv6'})`;
  return { ip, prefix, family: v === 4 ? 'ipv4' : 'ipv6' };
}

/** Parses a list with parseCidr; bad entries are returned, not thrown. */
export function parseCidrs(list: readonly string[]): { set: CidrSet; bad: string[] } {
  const good: Cidr[] = [];
  const bad: string[] = [];
  for (const raw of list) {
    const c = parseCidr(raw);
    if (typeof c === 'string') bad.push(raw);
    else good.push(c);
  }
  return { bad, set: cidrSet(good) };
}

/** A lookup over CIDRs parseCidr already accepted (so this cannot fail). */
export function cidrSet(list: readonly Cidr[]): CidrSet {
  const bl = new BlockList();
  for (const c of list) bl.addSubnet(c.ip, c.prefix, c.family);
  return {
    size: list.length,
    has(addr: string) {
      const a = unmap(addr);
      const v = isIP(a);
      return v !== 0 && bl.check(a, v === 4 ? 'ipv4' : 'ipv6');
    },
  };
}

/** "::ffff:10.1.2.3" is the IPv4 client 10.1.2.3 on a dual-stack socket. */
export function unmap(addr: string): string {
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

/**
 * The client address for a peer and its X-Forwarded-For headers, and whether the chain is to be kept. The
 * socket's peer is the client unless it is a trusted proxy: only then is the header read, right to left,
 * skipping trusted hops, so a client can never choose its own address by sending the header. Upgrades and
 * HTTP fallback requests both resolve through here, so a long-polling session and its later upgrade agree.
 */
export function resolveClientIp(peer: string, xff: string | string[] | undefined, trusted: CidrSet): { ip: string; trustForwarded: boolean } {
  const p = unmap(peer);
  if (trusted.size === 0 || !trusted.has(p)) return { ip: p, trustForwarded: false };
  // A trusted proxy's other forwarding headers (Forwarded) are kept even when it sent no X-Forwarded-For.
  if (xff === undefined) return { ip: p, trustForwarded: true };
  const hops = (Array.isArray(xff) ? xff.join(',') : xff).split(',').map((s) => s.trim()).filter(Boolean);
  let client = p;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = unmap(stripPort(hops[i]!));
    // A malformed hop ends the chain: what is left of it cannot be attributed to anyone we trust.
    if (!isIP(hop)) break;
    client = hop;
    if (!trusted.has(hop)) break;
  }
  return { ip: client, trustForwarded: true };
}

// Some proxies write "1.2.3.4:5678" or "[2001:db8::1]:443".
function stripPort(h: string): string {
  const v6 = /^\[([0-9a-fA-F:.]+)\](?::\d+)?$/.exec(h);
  if (v6) return v6[1]!;
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(h);
  return v4 ? v4[1]! : h;
}
