// Compiles a rule's `llm` block into the LlmRoute the session reads: defaults are already applied by the
// schema, provider keys are resolved from Secrets (Kubernetes) or files (standalone) here, so the data plane
// holds the key and nothing else does. A key that cannot be resolved leaves its provider out and says so
// (ResolvedRefs); a rule with no provider left still compiles, and its requests get unknown_model.
import type { WebSocketRouteSpec } from '../api/types.ts';
import type { LlmProvider, LlmRoute } from '../llm/route.ts';
import type { SecretLite } from './input.ts';
import { fileSecretKey, fileSecretPrefix } from './secrets.ts';

type RuleSpec = WebSocketRouteSpec['rules'][number];

export interface CompiledLlm {
  readonly llm?: LlmRoute;
  readonly problems: readonly string[];
}

export function compileLlm(rule: RuleSpec, index: number, ns: string, routeName: string, secrets: readonly SecretLite[]): CompiledLlm {
  const spec = rule.llm;
  if (!spec) return { problems: [] };
  const problems: string[] = [];
  const find = (name: string) => secrets.find((x) => x.metadata.namespace === ns && x.metadata.name === name);
  const providers: LlmProvider[] = [];
  spec.providers.forEach((p, j) => {
    const where = `rules[${index}].llm.providers[${j}]`;
    const c = p.credentials;
    const raw = c.secretName !== undefined ? find(c.secretName)?.data?.[c.key] : c.file !== undefined ? find(fileSecretPrefix + c.file)?.data?.[fileSecretKey] : undefined;
    // The key is the file's or Secret value's text; a trailing newline (echo > file) is not part of it.
    const apiKey = raw === undefined ? '' : Buffer.from(raw, 'base64').toString('utf8').trim();
    if (apiKey === '') {
      problems.push(`${where}.credentials: ${c.secretName !== undefined ? `Secret ${c.secretName} key ${c.key}` : `file ${c.file}`} missing or empty`);
      return;
    }
    providers.push({ name: p.name, baseUrl: p.baseUrl, format: p.format, apiKey, models: [...p.models], timeouts: { ...p.timeouts } });
  });
  const l = spec.limits;
  return {
    problems,
    llm: {
      namespace: ns,
      name: routeName,
      providers,
      aliases: Object.fromEntries(Object.entries(spec.aliases ?? {}).map(([k, v]) => [k, [...v]])),
      limits: { concurrentPerConnection: l.concurrentPerConnection, concurrentPerPrincipal: l.concurrentPerPrincipal, requestsPerMinute: l.requestsPerMinute, tokensPerMinute: l.tokensPerMinute },
      params: { maxTokens: spec.params.maxTokens, temperature: { min: spec.params.temperature.min, max: spec.params.temperature.max } },
      maxMessageBytes: spec.maxMessageBytes,
      coalesceMs: spec.coalesceMs,
      highWaterBytes: spec.highWaterBytes,
      logContent: spec.logContent,
      conversation: { enabled: spec.conversation.enabled, maxTurns: spec.conversation.maxTurns, maxBytes: spec.conversation.maxBytes },
    },
  };
}
