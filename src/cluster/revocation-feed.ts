// Keeps Revocations current from Redis: a subscriber on the revocation channel, and on every (re)connection a
// reload of the revocations still in force (their keys), so a replica that was disconnected or started later
// learns what it missed.
import type { Logger } from '../telemetry/logger.ts';
import type { ClusterKeys } from './keys.ts';
import type { Redis } from './redis-link.ts';
import { parseRevocation, type Revocations } from './revocations.ts';

export class RevocationFeed {
  readonly #client: Redis;
  readonly #sub: Redis;
  readonly #keys: ClusterKeys;
  readonly #revocations: Revocations;
  readonly #log: Logger;

  constructor(o: { client: Redis; keys: ClusterKeys; revocations: Revocations; log: Logger }) {
    this.#client = o.client;
    this.#sub = o.client.duplicate() as Redis;
    this.#keys = o.keys;
    this.#revocations = o.revocations;
    this.#log = o.log;
    this.#sub.on('error', () => undefined);
    this.#sub.on('ready', () => void this.reload());
  }

  async start(): Promise<void> {
    await this.#sub.connect().catch((err: unknown) => this.#log.warn({ err }, 'revocation channel: not connected yet, retrying'));
    await this.#sub.subscribe(this.#keys.revocationChannel, (message) => {
      const r = parseRevocation(message);
      if (r) this.#revocations.apply(r);
      else this.#log.warn({ message: message.slice(0, 200) }, 'revocation channel: message ignored');
    }).catch(() => undefined);
  }

  /** Loads every revocation key with its remaining TTL. */
  async reload(): Promise<void> {
    if (!this.#client.isReady) return;
    try {
      for await (const batch of this.#client.scanIterator({ MATCH: this.#keys.revokedPattern, COUNT: 500 })) {
        for (const key of batch) {
          const target = this.#keys.parseRevoked(key);
          if (!target) continue;
          const [reason, ttl] = await Promise.all([this.#client.get(key), this.#client.pTTL(key)]);
          if (reason === null || ttl <= 0) continue;
          this.#revocations.apply({ ...target, reason, ttlMs: ttl });
        }
      }
    } catch (err) {
      this.#log.warn({ err }, 'revocations: reload failed');
    }
  }

  async close(): Promise<void> {
    await this.#sub.close().catch(() => undefined);
  }
}
