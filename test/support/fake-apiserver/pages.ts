// Test double: lists in chunks (`limit` and `continue`), as kube-apiserver serves them. Every page of a list is of
// the snapshot its first page was read at; the token says where the next page starts; a token whose version
// was compacted away is refused with 410 Expired, and the client lists again from the start. `limit` 0 or absent
// is the whole list. https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks
import { errors } from './errors.ts';
import type { KObject } from './resources.ts';

export interface Page {
  readonly items: KObject[];
  readonly rv: number;
  readonly continue?: string;
  readonly remainingItemCount?: number;
}

/** Lists begun and not read to the end, kept for their next page; the oldest go first past this. */
const maxHeld = 64;

export class ListPages {
  private readonly held = new Map<string, { readonly rv: number; readonly items: KObject[] }>();
  private seq = 0;

  /** The first page of a list read now (`items` as of `rv`). */
  first(items: KObject[], rv: number, limit: number): Page {
    return this.cut({ rv, items }, 0, limit);
  }

  /** The page after `token`; 410 Expired once the versions before `oldestRv` are compacted away. */
  next(token: string, limit: number, oldestRv: number): Page {
    const [id, at] = Buffer.from(token, 'base64url').toString().split(':');
    const list = this.held.get(id ?? '');
    if (!list || list.rv < oldestRv) {
      this.held.delete(id ?? '');
      throw errors.gone('The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
    }
    this.held.delete(id!);
    return this.cut(list, Number(at), limit);
  }

  private cut(list: { readonly rv: number; readonly items: KObject[] }, from: number, limit: number): Page {
    const end = limit > 0 ? from + limit : list.items.length;
    const items = list.items.slice(from, end);
    if (end >= list.items.length) return { items, rv: list.rv };
    const id = String(++this.seq);
    this.held.set(id, list);
    while (this.held.size > maxHeld) this.held.delete(this.held.keys().next().value!);
    return { items, rv: list.rv, continue: Buffer.from(`${id}:${end}`).toString('base64url'), remainingItemCount: list.items.length - end };
  }
}
