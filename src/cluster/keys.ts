// Redis key names, all under one prefix so several installations can share a server. Principals are
// URI-encoded in keys: a principal may hold any character, including the separator.
import type { ObjectKey } from '../model/snapshot.ts';

export class ClusterKeys {
  readonly prefix: string;
  readonly replicas: string;
  readonly revocationChannel: string;

  constructor(prefix: string) {
    this.prefix = prefix;
    this.replicas = `${prefix}replicas`;
    this.revocationChannel = `${prefix}revocations`;
  }

  routeCount(route: ObjectKey): string {
    return `${this.prefix}n|route|${route}`;
  }

  ipCount(route: ObjectKey, ip: string): string {
    return `${this.prefix}n|ip|${route}|${ip}`;
  }

  principalCount(route: ObjectKey, principal: string): string {
    return `${this.prefix}n|principal|${route}|${encodeURIComponent(principal)}`;
  }

  /** The rate is part of the key: a changed rate starts from a full burst, as the local buckets do. */
  ipRate(route: ObjectKey, ip: string, perMinute: number): string {
    return `${this.prefix}r|ip|${route}|${perMinute}|${ip}`;
  }

  principalRate(route: ObjectKey, principal: string, perMinute: number): string {
    return `${this.prefix}r|principal|${route}|${perMinute}|${encodeURIComponent(principal)}`;
  }

  /** Every route (route undefined) or one route. */
  revoked(principal: string, route?: string): string {
    return `${this.prefix}revoked|${encodeURIComponent(principal)}${route ? `|${route}` : ''}`;
  }

  get revokedPattern(): string {
    return `${this.prefix}revoked|*`;
  }

  /** The principal and route of a revoked key, or undefined for a key that is not one. */
  parseRevoked(key: string): { principal: string; route?: string } | undefined {
    const head = `${this.prefix}revoked|`;
    if (!key.startsWith(head)) return undefined;
    const [p, route] = key.slice(head.length).split('|', 2);
    try {
      return { principal: decodeURIComponent(p!), ...(route ? { route } : {}) };
    } catch {
      return undefined;
    }
  }
}
