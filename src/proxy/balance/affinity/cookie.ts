// The affinity cookie. Its value is an HMAC of the endpoint key under a secret every replica shares, so any
// replica recognises any other replica's cookie, the value says nothing about pod addresses, and a client
// cannot mint one that names an endpoint it was never given.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Endpoint } from '../../../model/snapshot.ts';

const idLength = 22; // base64url characters: 132 bits of the MAC
const maxCached = 4096;

export class CookieSigner {
  readonly #secret: Buffer;
  /** endpoint key → cookie value; endpoint keys are few and stable, the MAC is the costly part. */
  readonly #ids = new Map<string, string>();

  constructor(secret: string | Buffer) {
    this.#secret = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
  }

  /** A secret derived from the installation's class name: replicas agree, but anyone who knows the class and a
   *  pod address can compute a value. Used only when no secret is configured, with a warning. */
  static fromClassName(className: string): CookieSigner {
    return new CookieSigner(createHash('sha256').update(`wsgate-affinity-derived|${className}`).digest());
  }

  idFor(endpoint: Pick<Endpoint, 'key'>): string {
    let id = this.#ids.get(endpoint.key);
    if (id === undefined) {
      id = createHmac('sha256', this.#secret).update(`wsgate-affinity/v1|${endpoint.key}`).digest('base64url').slice(0, idLength);
      if (this.#ids.size >= maxCached) this.#ids.clear();
      this.#ids.set(endpoint.key, id);
    }
    return id;
  }

  /** The candidate this cookie value names, if any. */
  find(value: string | undefined, candidates: readonly Endpoint[]): Endpoint | undefined {
    if (value === undefined || value.length !== idLength) return undefined;
    const got = Buffer.from(value, 'latin1');
    for (const e of candidates) {
      if (timingSafeEqual(got, Buffer.from(this.idFor(e), 'latin1'))) return e;
    }
    return undefined;
  }
}

/** The value of one cookie from a Cookie header (Node joins repeated Cookie headers with "; "). */
export function readCookie(header: string | string[] | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  const all = Array.isArray(header) ? header.join('; ') : header;
  for (const part of all.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    let v = part.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    return v;
  }
  return undefined;
}

export interface CookieAttributes {
  readonly name: string;
  readonly ttlSeconds: number;
  readonly path: string;
  readonly secure: boolean;
  /** Lax keeps the cookie off cross-site subresource requests; a page on another site that opens the WebSocket
   *  needs None, which browsers accept only with Secure (RFC 6265bis §5.4.7). */
  readonly sameSite: 'Lax' | 'Strict' | 'None';
}

// The 101 is written as raw bytes, so nothing from the spec may carry a CR, LF or attribute separator into it.
const safePath = /^\/[\x21-\x3a\x3c-\x7e]*$/;

export function setCookieValue(a: CookieAttributes, value: string): string {
  let c = `${a.name}=${value}; Path=${safePath.test(a.path) ? a.path : '/'}; HttpOnly; SameSite=${a.sameSite}`;
  if (a.ttlSeconds > 0) c += `; Max-Age=${a.ttlSeconds}`;
  if (a.secure || a.sameSite === 'None') c += '; Secure';
  return c;
}
