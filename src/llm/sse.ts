// Server-Sent Events from a provider's response body, parsed by eventsource-parser (WHATWG HTML, "Event stream
// interpretation": https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
// This file only adapts it to the byte chunks fetch yields and holds the bound: the parser's maxBufferSize caps
// the pending line plus the pending event's data, so a provider that never ends a line or an event cannot grow
// memory without limit; past it the parser is terminated and push throws SseOverflow.
import { createParser, type EventSourceParser } from 'eventsource-parser';

export interface SseEvent {
  readonly event: string;
  readonly data: string;
}

export class SseOverflow extends Error {}

export class SseDecoder {
  readonly #text = new TextDecoder();
  readonly #parser: EventSourceParser;
  readonly #maxEventChars: number;
  #out: SseEvent[] = [];
  #overflow = false;

  /** maxEventChars bounds the UTF-16 code units held between events; UTF-8 never decodes to more code units
   *  than it has bytes, so it is also at most that many bytes received. */
  constructor(maxEventChars = 1 << 20) {
    this.#maxEventChars = maxEventChars;
    this.#parser = createParser({
      maxBufferSize: maxEventChars,
      // The spec's default event type is "message"; eventsource-parser leaves it undefined.
      onEvent: (ev) => this.#out.push({ event: ev.event ?? 'message', data: ev.data }),
      onError: (e) => {
        // Unknown fields and bad retry values are ignored, as the spec says; only the bound ends the stream.
        if (e.type === 'max-buffer-size-exceeded') this.#overflow = true;
      },
    });
  }

  /** Decodes a chunk; returns the events it completed. Throws SseOverflow past the bound. */
  push(chunk: Uint8Array): SseEvent[] {
    if (this.#overflow) throw new SseOverflow(`event larger than ${this.#maxEventChars} characters`);
    this.#parser.feed(this.#text.decode(chunk, { stream: true }));
    if (this.#overflow) throw new SseOverflow(`event larger than ${this.#maxEventChars} characters`);
    const out = this.#out;
    this.#out = [];
    return out;
  }
}
