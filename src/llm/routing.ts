// Model routing: the client names a model or an alias; the candidates are every (provider, model) pair that
// serves it, in the order of the alias and then of the providers. Fallback walks this list, before the first
// token only.
import type { LlmProvider, LlmRoute } from './route.ts';

export interface Candidate {
  readonly provider: LlmProvider;
  readonly model: string;
}

export function candidates(route: LlmRoute, requested: string): Candidate[] {
  const models = Object.hasOwn(route.aliases, requested) ? route.aliases[requested]! : [requested];
  const out: Candidate[] = [];
  for (const model of models) for (const provider of route.providers) if (provider.models.includes(model)) out.push({ provider, model });
  return out;
}
