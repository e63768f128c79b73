// Keep-alive connections to the API server. client-node 1.4 builds a new http(s).Agent for every request
// (KubeConfig.createAgent, reached from applySecurityAuthentication for API calls and applyToFetchOptions for
// watches), and a new agent never reuses a socket: every list, watch and lease call paid a TCP and a TLS
// handshake. The adapter hands each of those throwaway agents to pooled(), which answers with one long-lived
// keep-alive agent carrying the same TLS material. Only plain http/https agents are swapped: a proxy agent
// (cluster.proxyUrl) keeps client-node's behaviour.
import http from 'node:http';
import https from 'node:https';
import { createHash } from 'node:crypto';

/** The agent options that decide whether a connection may be reused (what client-node copies from the kubeconfig). */
const tlsFields = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const;

type AgentOptions = Partial<Record<(typeof tlsFields)[number], unknown>>;

function fingerprint(secure: boolean, o: AgentOptions): string {
  const h = createHash('sha256').update(secure ? 'https' : 'http');
  for (const f of tlsFields) {
    const v = o[f];
    h.update(`\0${f}=`);
    if (v === undefined) continue;
    for (const part of Array.isArray(v) ? v : [v]) h.update(Buffer.isBuffer(part) ? part : String(part)).update('\0');
  }
  return h.digest('hex');
}

export class AgentPool {
  private current: { readonly key: string; readonly agent: http.Agent } | undefined;

  /** The shared keep-alive agent for the TLS settings of `template` (a per-request agent client-node made). */
  pooled<A extends http.Agent>(template: A): A;
  pooled(template: http.Agent | undefined): http.Agent | undefined;
  pooled(template: http.Agent | undefined): http.Agent | undefined {
    if (template === undefined) return undefined;
    const secure = template.constructor === https.Agent;
    if (!secure && template.constructor !== http.Agent) return template;
    // Node keeps an agent's constructor options on `options`; client-node put the kubeconfig's TLS material there.
    const source = (template as unknown as { options?: AgentOptions }).options ?? {};
    const key = fingerprint(secure, source);
    if (this.current?.key === key) return this.current.agent;
    const picked: AgentOptions = {};
    for (const f of tlsFields) if (source[f] !== undefined) picked[f] = source[f];
    // lifo: the most recently used socket is the least likely to have been closed by the server as idle.
    const base = { keepAlive: true, scheduling: 'lifo' as const };
    const agent = secure ? new https.Agent({ ...picked, ...base } as https.AgentOptions) : new http.Agent(base);
    this.retire(this.current?.agent);
    this.current = { key, agent };
    return agent;
  }

  /** Closes idle connections; busy ones (open watches) close when their request ends. */
  close(): void {
    this.retire(this.current?.agent);
    this.current = undefined;
  }

  /** Rotated credentials (a new CA or client certificate): the old agent takes no new requests and keeps none idle. */
  private retire(agent: http.Agent | undefined): void {
    if (!agent) return;
    // Node reads `keepAlive` when a socket is freed (lib/_http_agent.js): false destroys it instead of pooling it.
    (agent as http.Agent & { keepAlive: boolean }).keepAlive = false;
    for (const sockets of Object.values(agent.freeSockets)) for (const s of sockets ?? []) s.destroy();
  }
}
