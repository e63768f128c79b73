// Client TLS termination for --tls-listen. SNI picks the certificate from the current snapshot by hostname
// (exact, then "*.parent" wildcard), else the default certificate (--default-cert-file/--default-key-file).
// SecureContexts are cached by the content of certificate and key: a changed Secret or file yields a new
// snapshot, new handshakes get the new context, and established TLS sessions are never touched, so a swap
// drops nothing. TLS 1.2 minimum, ALPN http/1.1 (WebSocket over HTTP/2 is not served).
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import { basename, dirname } from 'node:path';
import tls, { type SecureContext } from 'node:tls';
import type { Snapshot, TlsCertificate } from '../../model/snapshot.ts';
import type { SnapshotHolder } from '../../model/holder.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { deadlineCheckMs } from '../handshake/front.ts';

export interface TlsListenerOptions {
  readonly holder: SnapshotHolder;
  readonly log: Logger;
  readonly handshakeTimeoutMs: number;
  readonly maxHeaderBytes: number;
  readonly defaultCertFile?: string;
  readonly defaultKeyFile?: string;
}

const base = { minVersion: 'TLSv1.2', ALPNProtocols: ['http/1.1'] } as const satisfies tls.SecureContextOptions & { ALPNProtocols: string[] };

export class TlsListener {
  readonly server: https.Server;
  readonly #o: TlsListenerOptions;
  readonly #log: Logger;
  readonly #contexts = new Map<string, SecureContext>();
  readonly #unsubscribe: () => void;
  readonly #watchers: FSWatcher[] = [];
  #default: SecureContext | undefined;
  #defaultHash = '';

  constructor(o: TlsListenerOptions) {
    this.#o = o;
    this.#log = o.log.child({ component: 'tls' });
    this.server = https.createServer({
      ...base,
      SNICallback: (name, cb) => cb(null, this.contextFor(name)),
      handshakeTimeout: o.handshakeTimeoutMs,
      // As on the plain listener: a missing Host gets the proxy's own 400/404 with wsgate-reason.
      requireHostHeader: false,
      maxHeaderSize: o.maxHeaderBytes,
      headersTimeout: o.handshakeTimeoutMs,
      requestTimeout: o.handshakeTimeoutMs,
      connectionsCheckingInterval: deadlineCheckMs(o.handshakeTimeoutMs),
      keepAliveTimeout: 5000,
    });
    this.#unsubscribe = o.holder.onSwap((next) => this.#prune(next));
  }

  /** Loads the default certificate (if configured) and watches its files; a bad file keeps the previous one. */
  async start(): Promise<void> {
    const { defaultCertFile: cf, defaultKeyFile: kf } = this.#o;
    if (!cf || !kf) return;
    await this.#loadDefault(true);
    for (const dir of new Set([dirname(cf), dirname(kf)])) {
      const names = new Set([cf, kf].filter((f) => dirname(f) === dir).map((f) => basename(f)));
      // Folders, not files: Secret volumes and editors replace files by rename.
      const w = watch(dir, (_e, file) => {
        if (file === null || names.has(file) || file === '..data') void this.#loadDefault(false);
      });
      w.on('error', (err) => this.#log.warn({ err }, 'default certificate watch failed'));
      this.#watchers.push(w);
    }
  }

  async #loadDefault(first: boolean): Promise<void> {
    try {
      const [cert, key] = await Promise.all([readFile(this.#o.defaultCertFile!, 'utf8'), readFile(this.#o.defaultKeyFile!, 'utf8')]);
      const h = hashOf({ cert, key });
      if (h === this.#defaultHash) return;
      const ctx = tls.createSecureContext({ ...base, cert, key });
      this.#default = ctx;
      this.#defaultHash = h;
      // Clients without SNI get the server's own context.
      this.server.setSecureContext({ ...base, cert, key });
      this.#log.info({ file: this.#o.defaultCertFile }, first ? 'default certificate loaded' : 'default certificate reloaded');
    } catch (err) {
      if (first) throw err;
      this.#log.warn({ file: this.#o.defaultCertFile, err: (err as Error).message }, 'default certificate not reloaded; the previous one stays');
    }
  }

  /** The context for an SNI name: exact host, then wildcard, then the default (undefined: handshake fails). */
  contextFor(servername: string): SecureContext | undefined {
    const certs = this.#o.holder.current()?.certificates;
    const name = servername.toLowerCase().replace(/\.$/, '');
    const dot = name.indexOf('.');
    const c = certs?.get(name) ?? (dot > 0 ? certs?.get(`*${name.slice(dot)}`) : undefined);
    if (!c) return this.#default;
    const h = hashOf(c);
    let ctx = this.#contexts.get(h);
    if (!ctx) {
      try {
        ctx = tls.createSecureContext({ ...base, cert: c.cert, key: c.key });
      } catch (err) {
        this.#log.warn({ servername: name, err: (err as Error).message }, 'route certificate unusable; serving the default');
        return this.#default;
      }
      this.#contexts.set(h, ctx);
    }
    return ctx;
  }

  /** Contexts of certificates no longer published are forgotten; live sessions keep their own reference. */
  #prune(next: Snapshot): void {
    const live = new Set([...next.certificates.values()].map(hashOf));
    for (const h of this.#contexts.keys()) if (!live.has(h)) this.#contexts.delete(h);
  }

  get cachedContexts(): number {
    return this.#contexts.size;
  }

  close(): void {
    this.#unsubscribe();
    for (const w of this.#watchers) w.close();
    this.#watchers.length = 0;
    if (this.server.listening) this.server.close();
  }
}

function hashOf(c: TlsCertificate): string {
  return createHash('sha256').update(c.cert).update('\0').update(c.key).digest('hex');
}
