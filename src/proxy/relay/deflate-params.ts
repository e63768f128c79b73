// permessage-deflate as the upstream's 101 negotiated it (RFC 7692 §7.1): what the relay needs to inflate each
// direction's messages alongside the forwarding, so a message's limit holds on the bytes the application gets.

/** The agreed parameters, for both directions. Absent window bits mean 15 (RFC 7692 §7.1.2). */
export interface DeflateParams {
  /** Window the server compresses with (server→client messages). */
  readonly serverMaxWindowBits: number;
  /** Window the client compresses with (client→server messages). */
  readonly clientMaxWindowBits: number;
  /** The server resets its compression context at every message (RFC 7692 §7.1.1.1). */
  readonly serverNoContextTakeover: boolean;
  /** The client resets its compression context at every message (RFC 7692 §7.1.1.2). */
  readonly clientNoContextTakeover: boolean;
}

/** One direction's share of DeflateParams: how its sender compresses. */
export interface InflateParams {
  readonly windowBits: number;
  readonly noContextTakeover: boolean;
}

const DEFAULT_BITS = 15;

/**
 * The permessage-deflate element of a 101's Sec-WebSocket-Extensions, or undefined when it was not accepted.
 * A server accepts at most one element of an extension (RFC 7692 §5); window bits outside 8..15 or a parameter
 * given twice would make the client fail the connection (§7.1), so such a value is read as the safe default
 * (15 bits: an inflater with a larger window than the sender's always works).
 */
export function negotiatedDeflate(header: string | undefined): DeflateParams | undefined {
  if (!header) return undefined;
  for (const element of splitOutsideQuotes(header, ',')) {
    const parts = splitOutsideQuotes(element, ';').map((s) => s.trim());
    if (parts[0].toLowerCase() !== 'permessage-deflate') continue;
    let serverBits = DEFAULT_BITS;
    let clientBits = DEFAULT_BITS;
    let serverNo = false;
    let clientNo = false;
    for (const p of parts.slice(1)) {
      const eq = p.indexOf('=');
      const name = (eq < 0 ? p : p.slice(0, eq)).trim().toLowerCase();
      const value = eq < 0 ? undefined : p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
      if (name === 'server_no_context_takeover') serverNo = true;
      else if (name === 'client_no_context_takeover') clientNo = true;
      else if (name === 'server_max_window_bits') serverBits = windowBits(value);
      else if (name === 'client_max_window_bits') clientBits = windowBits(value);
    }
    return { serverMaxWindowBits: serverBits, clientMaxWindowBits: clientBits, serverNoContextTakeover: serverNo, clientNoContextTakeover: clientNo };
  }
  return undefined;
}

/** How the messages read from one side were compressed: the client's parameters for the client's messages. */
export function inflateParams(p: DeflateParams, fromClient: boolean): InflateParams {
  return fromClient
    ? { windowBits: p.clientMaxWindowBits, noContextTakeover: p.clientNoContextTakeover }
    : { windowBits: p.serverMaxWindowBits, noContextTakeover: p.serverNoContextTakeover };
}

function windowBits(v: string | undefined): number {
  if (v === undefined || !/^\d{1,2}$/.test(v)) return DEFAULT_BITS;
  const n = Number(v);
  return n >= 8 && n <= 15 ? n : DEFAULT_BITS;
}

/** Split a header list at `sep` outside quoted strings. */
export function splitOutsideQuotes(s: string, sep: string): string[] {
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '"') quoted = !quoted;
    else if (c === sep && !quoted) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  out.push(s.slice(start));
  return out;
}
