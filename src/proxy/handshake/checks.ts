// RFC 6455 §4.2.1 checks on a client's opening handshake, answered with the statuses in src/errors.ts.
// Node's HTTP parser has already refused what is not HTTP/1.x (400) and oversized headers (431).
import type { UpgradeRequest } from './head.ts';
import { Errors, type WsgateError } from '../../errors.ts';

const keyPattern = /^[A-Za-z0-9+/]{22}==$/;

export function hasToken(value: string | undefined, token: string): boolean {
  if (!value) return false;
  for (const part of value.split(',')) if (part.trim().toLowerCase() === token) return true;
  return false;
}

/** undefined when the handshake is acceptable. */
export function checkUpgrade(req: UpgradeRequest): WsgateError | undefined {
  if (req.method !== 'GET') return Errors.badHandshake(`method ${req.method} cannot upgrade`);
  if (req.httpVersionMajor !== 1 || req.httpVersionMinor < 1) return Errors.badHandshake('HTTP/1.1 required');
  if (!hasToken(req.headers.upgrade, 'websocket')) return Errors.upgradeRequired('Upgrade: websocket required');
  if (!hasToken(req.headers.connection, 'upgrade')) return Errors.badHandshake('Connection: upgrade required');
  const hostErr = checkHost(req);
  if (hostErr) return hostErr;
  // A body on an upgrade GET is how request smuggling through upgrades starts.
  if (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') {
    return Errors.smuggling('Content-Length on an upgrade request');
  }
  if (req.headers['transfer-encoding'] !== undefined) return Errors.smuggling('Transfer-Encoding on an upgrade request');
  const key = req.headers['sec-websocket-key'];
  // 22 base64 digits and '==' always decode to 16 bytes: the pattern is the whole check (no decode per handshake).
  if (typeof key !== 'string' || !keyPattern.test(key.trim())) {
    return Errors.badHandshake('Sec-WebSocket-Key must be 16 bytes in base64');
  }
  const version = req.headers['sec-websocket-version'];
  if (version !== '13') return Errors.badVersion(`Sec-WebSocket-Version ${version ?? '(missing)'} not supported`, { headers: { 'Sec-WebSocket-Version': '13' } });
  return undefined;
}

const hostPattern = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._~%!$&'()*+,;=-]+)(:\d{1,5})?$/;

export function checkHost(req: UpgradeRequest): WsgateError | undefined {
  let count = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i].toLowerCase() === 'host') count++;
  const host = req.headers.host;
  if (count !== 1 || !host || !hostPattern.test(host)) return Errors.badHost();
  return undefined;
}
