// A minimal byte-level WebSocket proxy around Relay, for relay tests without the real proxy: it forwards the
// upgrade request verbatim to one upstream, passes the response header block back, and on a 101 hands both
// sockets and their leftover bytes to a Relay. Everything listens on 127.0.0.1 port 0.
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { negotiatedDeflate } from '../../src/proxy/relay/deflate-params.ts';
import { Relay, type RelayEnd, type RelayOptions } from '../../src/proxy/relay/relay.ts';
import type { RouteCounters } from '../../src/telemetry/metrics.ts';
import { TimerWheel } from '../../src/util/timer-wheel.ts';

export interface RawProxyOptions {
  readonly upstreamPort: number;
  readonly maxMessageBytes?: number;
  readonly closeTimeoutMs?: number;
  readonly wheel?: TimerWheel;
  /** Called with each relay right after it is made (heartbeat and rate-limit hooks). */
  readonly onRelay?: (relay: Relay) => void;
  /** Override relay options (e.g. to force deflate off). */
  readonly relayOptions?: Partial<Pick<RelayOptions, 'deflate'>>;
}

export interface RawProxy {
  readonly port: number;
  readonly url: string;
  readonly counters: RouteCounters;
  readonly relays: Relay[];
  readonly ends: RelayEnd[];
  /** Sockets (both sides) not yet closed. */
  openSockets(): number;
  /** The proxy's two sockets of the (latest) connection that asked for this path. */
  socketsOf(path: string): { client: net.Socket; upstream: net.Socket };
  /** Resolves with the RelayEnd of the (latest) connection that asked for this path. */
  endOf(path: string): Promise<RelayEnd>;
  /** Resolves when every relay made so far has ended. */
  allEnded(): Promise<void>;
  close(): Promise<void>;
}

const CRLF2 = Buffer.from('\r\n\r\n');

/** Read from a socket until the end of an HTTP header block; resolves with the block and what followed it. */
function readHead(socket: net.Socket): Promise<{ head: Buffer; rest: Buffer } | undefined> {
  return new Promise((resolve) => {
    let acc = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      acc = Buffer.concat([acc, c]);
      const i = acc.indexOf(CRLF2);
      if (i < 0) return;
      done();
      socket.pause();
      resolve({ head: acc.subarray(0, i + 4), rest: acc.subarray(i + 4) });
    };
    const onGone = () => {
      done();
      resolve(undefined);
    };
    const done = () => {
      socket.off('data', onData);
      socket.off('end', onGone);
      socket.off('close', onGone);
    };
    socket.on('data', onData);
    socket.on('end', onGone);
    socket.on('close', onGone);
  });
}

export async function startRawProxy(o: RawProxyOptions): Promise<RawProxy> {
  const wheel = o.wheel ?? new TimerWheel({ tickMs: 20 });
  const counters: RouteCounters = { messagesFromClient: 0, messagesFromUpstream: 0, bytesFromClient: 0, bytesFromUpstream: 0 };
  const relays: Relay[] = [];
  const ends: RelayEnd[] = [];
  const endByPath = new Map<string, Promise<RelayEnd>>();
  const pending = new Set<Promise<RelayEnd>>();
  const socketsByPath = new Map<string, { client: net.Socket; upstream: net.Socket }>();
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  };

  const server = net.createServer({ allowHalfOpen: true }, async (client) => {
    track(client);
    client.setNoDelay(true);
    const req = await readHead(client);
    if (!req) return client.destroy();
    const upstream = net.connect({ host: '127.0.0.1', port: o.upstreamPort, allowHalfOpen: true });
    track(upstream);
    upstream.setNoDelay(true);
    upstream.write(req.head);
    const res = await readHead(upstream);
    if (!res || client.destroyed) {
      client.destroy();
      upstream.destroy();
      return;
    }
    client.write(res.head);
    const text = res.head.toString('latin1');
    if (!/^HTTP\/1\.1 101/.test(text)) {
      client.end(res.rest);
      upstream.destroy();
      return;
    }
    const path = req.head.toString('latin1').split(' ', 2)[1] ?? '/';
    let resolveEnd!: (e: RelayEnd) => void;
    const ended = new Promise<RelayEnd>((resolve) => (resolveEnd = resolve));
    endByPath.set(path, ended);
    socketsByPath.set(path, { client, upstream });
    pending.add(ended);
    const relay = new Relay({
      client,
      upstream,
      clientHead: req.rest,
      upstreamHead: res.rest,
      deflate: o.relayOptions && 'deflate' in o.relayOptions ? o.relayOptions.deflate : negotiatedDeflate(/^sec-websocket-extensions:(.*)$/im.exec(text)?.[1]),
      maxMessageBytes: o.maxMessageBytes ?? 0,
      closeTimeoutMs: o.closeTimeoutMs ?? 2000,
      wheel,
      counters,
      onEnd: (e) => {
        ends.push(e);
        pending.delete(ended);
        resolveEnd(e);
      },
    });
    relays.push(relay);
    o.onRelay?.(relay);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `ws://127.0.0.1:${port}`,
    counters,
    relays,
    ends,
    openSockets: () => sockets.size,
    socketsOf: (path) => {
      const s = socketsByPath.get(path);
      if (!s) throw new Error(`no relay for ${path}`);
      return s;
    },
    endOf: (path) => {
      const e = endByPath.get(path);
      if (!e) throw new Error(`no relay for ${path}`);
      return e;
    },
    allEnded: async () => {
      await Promise.all([...pending]);
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
