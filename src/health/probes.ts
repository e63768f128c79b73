// One active probe against one endpoint: TCP connect, HTTP GET (2xx/3xx is healthy) or a WebSocket handshake
// (a valid 101, then a polite close). Each probe uses its own short-lived socket with no agent, and always
// ends it, so probes never pile up sockets whatever the endpoint does.
import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import { acceptKey } from '../proxy/upstream/dial.ts';
import type { Clock } from '../util/clock.ts';

export type ProbeType = 'HTTP' | 'TCP' | 'WebSocket';

export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
  /** Host header for HTTP and WebSocket probes. */
  readonly authority: string;
  /** wss upstreams are probed over TLS; the certificate is not verified (the probe checks liveness, and sends
   *  nothing but the request line and a close frame). */
  readonly tls?: { readonly servername?: string };
}

export interface ProbeSpec {
  readonly type: ProbeType;
  readonly path: string;
  readonly timeoutMs: number;
}

export interface ProbeResult {
  readonly ok: boolean;
  readonly detail: string;
}

export type Prober = (target: ProbeTarget, spec: ProbeSpec) => Promise<ProbeResult>;

// A masked close frame with status 1000 and no reason (mask key zero keeps it a constant).
const closeFrame = Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);

export function createProber(clock: Clock): Prober {
  return (target, spec) =>
    new Promise<ProbeResult>((resolve) => {
      const sockets: Socket[] = [];
      let done = false;
      const finish = (ok: boolean, detail: string) => {
        if (done) return;
        done = true;
        clock.clearTimeout(timer);
        for (const s of sockets) s.destroy();
        req?.destroy();
        resolve({ ok, detail });
      };
      const timer = clock.setTimeout(() => finish(false, `timed out after ${spec.timeoutMs} ms`), spec.timeoutMs);
      let req: http.ClientRequest | undefined;
      if (spec.type === 'TCP') {
        const s = target.tls
          ? tls.connect({ host: target.host, port: target.port, servername: target.tls.servername ?? sniName(target.host), rejectUnauthorized: false })
          : net.connect({ host: target.host, port: target.port });
        sockets.push(s);
        s.once(target.tls ? 'secureConnect' : 'connect', () => finish(true, 'connected'));
        s.once('error', (e: NodeJS.ErrnoException) => finish(false, e.code ?? e.message));
        return;
      }
      const key = randomBytes(16).toString('base64');
      const headers: Record<string, string> = { host: target.authority, 'user-agent': 'wsgate-health-check' };
      if (spec.type === 'WebSocket') Object.assign(headers, { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': key });
      else headers.connection = 'close';
      const opts = { host: target.host, port: target.port, path: spec.path, method: 'GET', headers, agent: false as const, setHost: false };
      req = target.tls
        ? https.request({ ...opts, servername: target.tls.servername ?? sniName(target.host), rejectUnauthorized: false })
        : http.request(opts);
      req.on('socket', (s: Socket) => sockets.push(s));
      req.on('error', (e: NodeJS.ErrnoException) => finish(false, e.code ?? e.message));
      req.on('response', (res: IncomingMessage) => {
        res.resume();
        const code = res.statusCode ?? 0;
        if (spec.type === 'HTTP') finish(code >= 200 && code < 400, `HTTP ${code}`);
        else finish(false, `HTTP ${code} instead of 101`);
      });
      req.on('upgrade', (res: IncomingMessage, s: Socket) => {
        const ok = res.headers['sec-websocket-accept'] === acceptKey(key);
        if (!ok) {
          s.destroy();
          return finish(false, 'invalid 101');
        }
        // Say goodbye properly so backends do not log probe connections as abnormal closes; the socket is
        // no longer the request's, and goes away on the server's close or after the probe timeout at most.
        const i = sockets.indexOf(s);
        if (i >= 0) sockets.splice(i, 1);
        req = undefined;
        s.on('error', () => {});
        s.resume();
        s.setTimeout(spec.timeoutMs, () => s.destroy());
        s.end(closeFrame);
        finish(true, '101');
      });
      req.end();
    });
}

function sniName(host: string): string | undefined {
  return net.isIP(host) ? undefined : host;
}
