// The request target's path as wsgate matches and forwards it, normalized once so that the route a request
// matches and the path its backend sees can never disagree (a `/public/../private` that matches `/public` here
// but that the backend resolves to `/private` would bypass `/private`'s auth and address filters). This is what
// Envoy's http_connection_manager does with `normalize_path: true`, `merge_slashes: true` and
// `path_with_escaped_slashes_action: REJECT_REQUEST`:
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto
// The query is kept byte for byte: it is not part of the path (RFC 3986 §3.4), and its encoding is the backend's.
import { Errors, type WsgateError } from '../../errors.ts';

export interface RequestTarget {
  /** The normalized path, for matching. */
  readonly path: string;
  /** The normalized path and the query as sent: what goes upstream. */
  readonly target: string;
}

const HEX = /^[0-9A-Fa-f]{2}$/;
// RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~".
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
// What the slow path has to look at; any other path is already normal.
const UNUSUAL = /%|\\|\/\/|\/\.\.?(?:\/|$)/;

/** The normalized target, or 400 bad_path for a target that cannot be forwarded unambiguously. */
export function normalizeTarget(url: string): RequestTarget | WsgateError {
  // Origin-form only (RFC 9112 §3.2.1): an absolute-form target would name a host of its own, a second
  // authority next to Host.
  if (url.charCodeAt(0) !== 47) return Errors.badPath('request target must start with /');
  // No fragment in a request target (RFC 9112 §3.2: origin-form is absolute-path [ "?" query ]).
  if (url.includes('#')) return Errors.badPath('fragment in the request target');
  const q = url.indexOf('?');
  const raw = q < 0 ? url : url.slice(0, q);
  if (!UNUSUAL.test(raw)) return { path: raw, target: url };
  // A backslash is a separator to some backends (Windows, some frameworks) and not to this router.
  if (raw.includes('\\')) return Errors.badPath('backslash in the path');
  let decoded = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c !== '%') {
      decoded += c;
      continue;
    }
    const hex = raw.slice(i + 1, i + 3);
    if (!HEX.test(hex)) return Errors.badPath('malformed percent-encoding in the path');
    const ch = String.fromCharCode(parseInt(hex, 16));
    // An encoded separator is a segment boundary to some backends and not to others: refused, as Envoy's
    // REJECT_REQUEST does, rather than guessing.
    if (ch === '/' || ch === '\\') return Errors.badPath('encoded slash or backslash in the path');
    // RFC 3986 §6.2.2.2: unreserved characters are decoded (so %2e%2e is the dot-segment ".."); §6.2.2.1:
    // every other escape is kept, with upper-case hex digits.
    decoded += UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
    i += 2;
  }
  const path = removeDotSegments(decoded.replace(/\/{2,}/g, '/'));
  return { path, target: q < 0 ? path : path + url.slice(q) };
}

/** RFC 3986 §5.2.4 on an absolute path with no empty segments: "." dropped, ".." removes the segment before it
 *  (none above the root), a last "." or ".." leaves a trailing slash. */
export function removeDotSegments(path: string): string {
  const segs = path.split('/');
  const out: string[] = [];
  for (let i = 1; i < segs.length; i++) {
    const s = segs[i]!;
    const last = i === segs.length - 1;
    if (s === '.' || s === '..') {
      if (s === '..') out.pop();
      if (last) out.push('');
      continue;
    }
    out.push(s);
  }
  return `/${out.join('/')}`;
}
