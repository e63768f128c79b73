// rules[].requestHeaders → the rule's RequestHeaderRewrite. Names are compared lower-cased, the first of two
// entries with one name counts (the Gateway API's HTTPHeader rule), and the three lists are folded so that the
// forwarding loop decides each client header with one lookup.
import type { WebSocketRouteSpec } from '../../api/types.ts';
import type { RequestHeaderRewrite, RewrittenHeader } from '../../model/route.ts';

type RequestHeaders = NonNullable<WebSocketRouteSpec['rules'][number]['requestHeaders']>;

function firstOfEachName(list: readonly { name: string; value: string }[] | undefined): RewrittenHeader[] {
  const seen = new Map<string, RewrittenHeader>();
  for (const h of list ?? []) {
    const lower = h.name.toLowerCase();
    if (!seen.has(lower)) seen.set(lower, { name: h.name, lower, value: h.value });
  }
  return [...seen.values()];
}

/** undefined when the rule rewrites nothing: the data plane then forwards the client's headers untouched. */
export function compileRequestHeaders(rh: RequestHeaders | undefined): RequestHeaderRewrite | undefined {
  if (!rh) return undefined;
  const set = firstOfEachName(rh.set);
  const add = firstOfEachName(rh.add);
  const removed = [...new Set((rh.remove ?? []).map((n) => n.toLowerCase()))];
  if (set.length + add.length + removed.length === 0) return undefined;
  const setNames = new Set(set.map((h) => h.lower));
  const addTo = new Map(add.map((h) => [h.lower, h.value]));
  const put = set.map((h) => {
    const more = addTo.get(h.lower);
    return more === undefined ? h : { ...h, value: `${h.value},${more}` };
  });
  return {
    drop: [...new Set([...removed, ...setNames])],
    put,
    append: add.filter((h) => !setNames.has(h.lower)),
  };
}
