// Conversation state of one connection (`llm.conversation`, off by default): the turns of each request chain,
// so a client can send only its new message with `continues: previousId`. Bounded three ways: turns and bytes
// per chain (the oldest turns go first) and chains per connection (the least recently used goes first), so a
// connection holds at most MAX_CHAINS × maxBytes of content.
import type { ChatMessage } from './protocol.ts';

/** Chains kept per connection: a client juggling more conversations than this resends the older ones whole. */
export const MAX_CHAINS = 16;

export class Conversations {
  readonly #maxTurns: number;
  readonly #maxBytes: number;
  /** Insertion order is recency: a chain is re-inserted when used. */
  readonly #chains = new Map<string, readonly ChatMessage[]>();

  constructor(maxTurns: number, maxBytes: number) {
    this.#maxTurns = maxTurns;
    this.#maxBytes = maxBytes;
  }

  get size(): number {
    return this.#chains.size;
  }

  /** The turns before a request that continues `id`; undefined when no such chain is kept. */
  context(id: string): readonly ChatMessage[] | undefined {
    return this.#chains.get(id);
  }

  /** Records the finished exchange of request `id` (its whole context, its messages and the reply); the chain
   *  it continued moves to the new id, so each chain is kept once, under its latest request. */
  record(id: string, continued: string | undefined, turns: readonly ChatMessage[]): void {
    if (continued !== undefined) this.#chains.delete(continued);
    this.#chains.delete(id);
    const kept = [...turns];
    let bytes = kept.reduce((n, m) => n + Buffer.byteLength(m.content), 0);
    const drop = () => (bytes -= Buffer.byteLength(kept.shift()!.content));
    while (kept.length > 0 && (kept.length > this.#maxTurns || bytes > this.#maxBytes)) drop();
    // A reply whose question was evicted is noise to the model, and a conversation that opens with an assistant
    // turn is one some providers refuse: eviction never leaves one first.
    while (kept.length > 0 && kept[0]!.role === 'assistant') drop();
    if (kept.length === 0) return; // the last turns alone are over the bound: nothing worth keeping
    this.#chains.set(id, kept);
    while (this.#chains.size > MAX_CHAINS) this.#chains.delete(this.#chains.keys().next().value!);
  }
}
