// Reading credentials out of a request target, Cookie and Sec-WebSocket-Protocol, and taking them out again
// so they are not forwarded, leaving every other byte of the request as the client sent it.

function splitTarget(url: string): { path: string; query: string | undefined } {
  const q = url.indexOf('?');
  return q < 0 ? { path: url, query: undefined } : { path: url.slice(0, q), query: url.slice(q + 1) };
}

function decode(s: string): string | undefined {
  try {
    return decodeURIComponent(s.replaceAll('+', ' '));
  } catch {
    return undefined;
  }
}

/** The first value of a query parameter. */
export function queryParam(url: string, name: string): string | undefined {
  const { query } = splitTarget(url);
  if (!query) return undefined;
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    const k = decode(eq < 0 ? pair : pair.slice(0, eq));
    if (k === name) return eq < 0 ? '' : decode(pair.slice(eq + 1));
  }
  return undefined;
}

/** Every value of a query parameter, in order (a repeated parameter is how a second credential would hide). */
export function queryParams(url: string, name: string): string[] {
  const { query } = splitTarget(url);
  const out: string[] = [];
  if (!query) return out;
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    if (decode(eq < 0 ? pair : pair.slice(0, eq)) !== name) continue;
    const v = eq < 0 ? '' : decode(pair.slice(eq + 1));
    if (v !== undefined) out.push(v);
  }
  return out;
}

/** The request target without any occurrence of one parameter. */
export function queryWithout(url: string, name: string): string {
  const { path, query } = splitTarget(url);
  if (query === undefined) return url;
  const rest = query.split('&').filter((pair) => {
    const eq = pair.indexOf('=');
    return decode(eq < 0 ? pair : pair.slice(0, eq)) !== name;
  });
  return rest.length ? `${path}?${rest.join('&')}` : path;
}

export function parseCookies(header: string | string[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (header === undefined) return out;
  for (const part of (Array.isArray(header) ? header.join('; ') : header).split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const k = part.slice(0, eq).trim();
    let v = part.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    if (k && !out.has(k)) out.set(k, v);
  }
  return out;
}

/** Every value of one cookie name: parseCookies keeps the first, but the Cookie header may repeat a name. */
export function cookieValues(header: string | string[] | undefined, name: string): string[] {
  const out: string[] = [];
  if (header === undefined) return out;
  for (const part of (Array.isArray(header) ? header.join('; ') : header).split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    let v = part.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    out.push(v);
  }
  return out;
}

/** The Cookie header without one cookie; '' when nothing is left. */
export function cookieWithout(header: string | string[] | undefined, name: string): string {
  if (header === undefined) return '';
  return (Array.isArray(header) ? header.join('; ') : header)
    .split(';')
    .map((p) => p.trim())
    .filter((p) => p && p.slice(0, Math.max(0, p.indexOf('='))).trim() !== name)
    .join('; ');
}

export function subprotocols(header: string | string[] | undefined): string[] {
  if (header === undefined) return [];
  return (Array.isArray(header) ? header.join(',') : header).split(',').map((s) => s.trim()).filter(Boolean);
}
