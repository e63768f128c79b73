// Incremental Server-Sent Events decoding (WHATWG HTML, "Event stream interpretation":
// https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation), enough for the
// providers' streams: event and data fields, any of CRLF/LF/CR line ends, comments ignored. The pending line
// and the pending data are bounded, so a provider that never ends a line cannot grow memory without limit.

export interface SseEvent {
  readonly event: string;
  readonly data: string;
}

export class SseOverflow extends Error {}

export class SseDecoder {
  readonly #text = new TextDecoder();
  readonly #maxEventBytes: number;
  #line = '';
  #event = '';
  #data: string[] = [];
  #dataLength = 0;
  #lastWasCR = false;

  constructor(maxEventBytes = 1 << 20) {
    this.#maxEventBytes = maxEventBytes;
  }

  /** Decodes a chunk; returns the events it completed. Throws SseOverflow past the bound. */
  push(chunk: Uint8Array): SseEvent[] {
    const s = this.#text.decode(chunk, { stream: true });
    const out: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === 10 && this.#lastWasCR) {
        // The LF of a CRLF (possibly split across chunks): the CR already ended the line.
        this.#lastWasCR = false;
        start = i + 1;
        continue;
      }
      this.#lastWasCR = false;
      if (c !== 10 && c !== 13) continue;
      this.#line += s.slice(start, i);
      this.#endLine(out);
      start = i + 1;
      this.#lastWasCR = c === 13;
    }
    this.#line += s.slice(start);
    if (this.#line.length + this.#dataLength > this.#maxEventBytes) throw new SseOverflow(`event larger than ${this.#maxEventBytes} bytes`);
    return out;
  }

  #endLine(out: SseEvent[]): void {
    const line = this.#line;
    this.#line = '';
    if (line === '') {
      if (this.#data.length > 0) out.push({ event: this.#event || 'message', data: this.#data.join('\n') });
      this.#event = '';
      this.#data = [];
      this.#dataLength = 0;
      return;
    }
    if (line.charCodeAt(0) === 58) return; // ':' comment (keep-alives)
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'event') this.#event = value;
    else if (field === 'data') {
      this.#data.push(value);
      this.#dataLength += value.length + 1;
      if (this.#dataLength > this.#maxEventBytes) throw new SseOverflow(`event larger than ${this.#maxEventBytes} bytes`);
    }
  }
}
