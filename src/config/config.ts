// Flags, environment and defaults → one validated, frozen Config. The only reader of process.env.
import { readFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { ConfigError, type ConfigProblem } from '../errors.ts';
import { parseCidr } from '../util/cidr.ts';
import { envName, flags, revokeFlags } from './flags.ts';
import { tracingConfig, type TracingConfig } from './tracing.ts';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** --redis-*: cluster-wide limits and revocation (src/cluster). */
export interface RedisConfig {
  readonly url: string;
  readonly username?: string;
  readonly password?: string;
  readonly tlsCaFile?: string;
  readonly timeoutMs: number;
  readonly keyPrefix: string;
  readonly leaseTtlMs: number;
  readonly failureMode: 'Open' | 'Closed';
}

/** wsgate revoke. */
export interface RevokeRequest {
  readonly principal: string;
  readonly route?: string;
  readonly reason: string;
  readonly ttlMs: number;
  readonly clear: boolean;
}

export interface Config {
  readonly command: 'serve' | 'validate' | 'help' | 'version' | 'revoke';
  /** validate: the paths to check. */
  readonly paths: readonly string[];
  readonly mode: 'standalone' | 'kubernetes';
  readonly configPath: string;
  readonly kubeconfig: string;
  readonly listen: HostPort;
  readonly tlsListen: HostPort | undefined;
  readonly defaultCertFile: string;
  readonly defaultKeyFile: string;
  readonly adminListen: HostPort;
  readonly debugEndpoints: boolean;
  readonly logLevel: string;
  readonly className: string;
  /** Empty: every namespace. */
  readonly watchNamespaces: readonly string[];
  /** Serve the Gateway API (off by itself when its CRDs are not installed). */
  readonly watchGatewayApi: boolean;
  readonly watchIngress: boolean;
  /** The Service wsgate runs behind (Gateway and Ingress addresses); undefined: none. */
  readonly publishService: { readonly namespace: string; readonly name: string } | undefined;
  readonly allowStaticEndpoints: boolean;
  readonly leaderElection: boolean;
  readonly leaseName: string;
  readonly leaseNamespace: string;
  readonly podName: string;
  readonly leaseDurationMs: number;
  readonly leaseRenewDeadlineMs: number;
  readonly leaseRetryPeriodMs: number;
  /** Restart an informer that heard nothing for this long (its watch timeout is kept below it). */
  readonly informerWatchdogMs: number;
  readonly shutdownDelayMs: number;
  readonly drainMs: number;
  readonly workers: number;
  readonly trustedProxies: readonly string[];
  /** Signs affinity cookies; '' = derived from className (affinityHooks warns). */
  readonly affinitySecret: string;
  readonly handshakeTimeoutMs: number;
  readonly maxHeaderBytes: number;
  /** A close handshake waits this long for the peer's close frame before ending TCP (a process constant, not a flag). */
  readonly closeTimeoutMs: number;
  readonly maxHandshakesInFlight: number;
  /** circuitBreaker.maxPendingHandshakes of a route that sets none: a quarter of maxHandshakesInFlight. */
  readonly maxPendingHandshakesPerBackend: number;
  /** --max-connections, or derived from the open-file limit. */
  readonly maxConnections: number;
  readonly buildHoldoffMs: number;
  readonly buildMaxHoldoffMs: number;
  /** The leader's writes to the API server: requests per second, and how many may go at once. */
  readonly kubeApiQps: number;
  readonly kubeApiBurst: number;
  /** OTLP/HTTP trace export; undefined: tracing off. */
  readonly tracing: TracingConfig | undefined;
  /** Unset without --redis-url. */
  readonly redis?: RedisConfig;
  /** The revoke command's request. */
  readonly revoke?: RevokeRequest;
  /** Full builds in a worker thread (controller/thread-builder.ts). */
  readonly buildThread: boolean;
}

/** The revoke command's defaults live in its flag table, which --help prints. */
function revokeDefault(name: (typeof revokeFlags)[number]['name']): string | number | boolean {
  return revokeFlags.find((f) => f.name === name)!.default;
}

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Descriptors kept out of --max-connections' derived default: the admin server's connections (64), listeners,
 *  Kubernetes watches, files, logs. */
export const fdReserve = 256;

/** The soft RLIMIT_NOFILE from /proc/self/limits (Node has no getrlimit); undefined when unknown or unlimited. */
export function openFileLimit(limits?: string): number | undefined {
  let text = limits;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  return m && m[1] !== 'unlimited' ? Number(m[1]) : undefined;
}

/** Each relayed connection holds two descriptors (client, upstream): half of what the reserve leaves. */
export function derivedMaxConnections(nofile: number | undefined): number {
  if (nofile === undefined) return 1000000;
  return Math.max(1, Math.floor((nofile - fdReserve) / 2));
}

export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Config {
  const options = Object.fromEntries(
    [...flags, ...revokeFlags].map((f) => [f.name, { type: f.type === 'boolean' ? ('boolean' as const) : ('string' as const) }]),
  );
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { ...options, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' } },
      allowPositionals: true,
      allowNegative: true,
      strict: true,
    });
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const problems: ConfigProblem[] = [];
  const raw = (name: string): string | boolean | undefined => {
    const v = (parsed.values as Record<string, string | boolean | undefined>)[name];
    return v ?? env[envName(name)];
  };
  const str = (name: string, def: string): string => {
    const v = raw(name);
    return v === undefined ? def : String(v);
  };
  const bool = (name: string, def: boolean): boolean => {
    const v = raw(name);
    if (v === undefined) return def;
    if (typeof v === 'boolean') return v;
    if (/^(1|true|yes|on)$/i.test(v)) return true;
    if (/^(0|false|no|off|)$/i.test(v)) return false;
    problems.push({ path: `--${name}`, message: `not a boolean: ${v}` });
    return def;
  };
  const num = (name: string, def: number, min: number, max: number): number => {
    const v = raw(name);
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) {
      problems.push({ path: `--${name}`, message: `must be a number from ${min} to ${max}, got ${String(v)}` });
      return def;
    }
    return n;
  };
  const hostPort = (name: string, def: string): HostPort | undefined => {
    const v = str(name, def);
    if (v === '') return undefined;
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]*)):(\d{1,5})$/.exec(v);
    const port = m ? Number(m[3]) : NaN;
    if (!m || port > 65535) {
      problems.push({ path: `--${name}`, message: `must be HOST:PORT, got ${v}` });
      return undefined;
    }
    return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
  };
  const def = <N extends (typeof flags)[number]['name']>(n: N) => flags.find((f) => f.name === n)!.default;
  const given = (name: string) => (parsed.values as Record<string, unknown>)[name] !== undefined;

  const [first, ...rest] = parsed.positionals;
  const command = parsed.values.help ? 'help' : parsed.values.version ? 'version' : first === 'validate' ? 'validate' : first === 'revoke' ? 'revoke' : 'serve';
  if (first !== undefined && first !== 'validate' && first !== 'revoke' && command === 'serve') {
    problems.push({ path: first, message: 'unknown command (commands: validate, revoke)' });
  }
  if (command !== 'revoke') for (const f of revokeFlags) if (given(f.name)) problems.push({ path: `--${f.name}`, message: 'only for wsgate revoke' });
  const kubernetes = bool('kubernetes', false);
  const configPath = str('config', '');
  const logLevel = str('log-level', 'info');
  if (!logLevels.includes(logLevel)) problems.push({ path: '--log-level', message: `must be one of ${logLevels.join(', ')}` });
  if (command === 'revoke' && rest.length > 0) {
    problems.push({ path: rest[0]!, message: 'revoke takes flags only' });
  }
  if (command === 'serve' && !kubernetes && !configPath) {
    problems.push({ path: '--config', message: 'standalone mode needs --config PATH (or --kubernetes)' });
  }
  if (command === 'serve' && kubernetes && configPath) {
    problems.push({ path: '--config', message: 'choose one of --config (standalone) or --kubernetes' });
  }
  if (command === 'validate' && rest.length === 0) problems.push({ path: 'validate', message: 'needs a PATH to check' });
  const workersRaw = str('workers', String(def('workers')));
  const workers = workersRaw === 'auto' ? availableParallelism() : Number(workersRaw);
  if (!Number.isInteger(workers) || workers < 1 || workers > 256) {
    problems.push({ path: '--workers', message: `must be "auto" or a number from 1 to 256, got ${workersRaw}` });
  }
  const trustedProxies = str('trusted-proxies', '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const cidr of trustedProxies) {
    const c = parseCidr(cidr);
    if (typeof c === 'string') problems.push({ path: '--trusted-proxies', message: `${JSON.stringify(cidr)} ${c}` });
  }
  const watchNamespaces = str('watch-namespaces', '').split(',').map((s) => s.trim()).filter(Boolean);
  const watchNamespace = str('watch-namespace', '').trim();
  if (watchNamespace && watchNamespaces.length > 0) {
    problems.push({ path: '--watch-namespace', message: 'choose one of --watch-namespace or --watch-namespaces' });
  }
  if (watchNamespace) watchNamespaces.push(watchNamespace);
  for (const ns of watchNamespaces) {
    // A namespace name is an RFC 1123 label: https://kubernetes.io/docs/concepts/overview/working-with-objects/names/
    if (ns.length > 63 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ns)) {
      problems.push({ path: '--watch-namespaces', message: `${JSON.stringify(ns)} is not a namespace name` });
    }
  }
  const publishRaw = str('publish-service', '').trim();
  const publish = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-a-z0-9]*[a-z0-9])?)$/.exec(publishRaw);
  if (publishRaw && (!publish || publish[1]!.length > 63 || publish[3]!.length > 63)) {
    problems.push({ path: '--publish-service', message: `must be namespace/name, got ${JSON.stringify(publishRaw)}` });
  }
  const tlsListen = hostPort('tls-listen', '');
  const defaultCertFile = str('default-cert-file', '');
  const defaultKeyFile = str('default-key-file', '');
  if (Boolean(defaultCertFile) !== Boolean(defaultKeyFile)) {
    problems.push({ path: '--default-cert-file', message: 'set both --default-cert-file and --default-key-file' });
  }

  const leaseDurationMs = num('lease-duration-seconds', 15, 1, 3600) * 1000;
  const leaseRenewDeadlineMs = num('lease-renew-deadline-seconds', 10, 0.1, 3600) * 1000;
  const leaseRetryPeriodMs = num('lease-retry-period-seconds', 2, 0.01, 3600) * 1000;
  if (leaseRenewDeadlineMs >= leaseDurationMs) {
    problems.push({ path: '--lease-renew-deadline-seconds', message: 'must be less than --lease-duration-seconds' });
  }
  if (leaseRetryPeriodMs >= leaseRenewDeadlineMs) {
    problems.push({ path: '--lease-retry-period-seconds', message: 'must be less than --lease-renew-deadline-seconds' });
  }

  const maxHandshakesInFlight = num('max-handshakes-in-flight', 10000, 1, 10000000);

  const redis = redisConfig(str, num, problems);
  let revoke: RevokeRequest | undefined;
  if (command === 'revoke') {
    const principal = (parsed.values as Record<string, unknown>).principal;
    const route = String((parsed.values as Record<string, unknown>).route ?? '');
    if (typeof principal !== 'string' || !principal) problems.push({ path: '--principal', message: 'revoke needs --principal' });
    if (route && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/.test(route)) problems.push({ path: '--route', message: `must be namespace/name, got ${route}` });
    if (!redis) problems.push({ path: '--redis-url', message: 'revoke needs --redis-url (or WSGATE_REDIS_URL)' });
    const reason = (parsed.values as Record<string, unknown>).reason;
    const ttl = Number((parsed.values as Record<string, unknown>)['ttl-seconds'] ?? revokeDefault('ttl-seconds'));
    if (!Number.isFinite(ttl) || ttl < 1 || ttl > 31536000) problems.push({ path: '--ttl-seconds', message: `must be a number from 1 to 31536000, got ${String(ttl)}` });
    revoke = {
      principal: typeof principal === 'string' ? principal : '',
      ...(route ? { route } : {}),
      reason: typeof reason === 'string' && reason ? reason : String(revokeDefault('reason')),
      ttlMs: Math.round(ttl * 1000),
      clear: (parsed.values as Record<string, unknown>).clear === true,
    };
  }

  const config: Config = {
    command,
    paths: command === 'validate' ? rest : [],
    mode: kubernetes ? 'kubernetes' : 'standalone',
    configPath,
    kubeconfig: str('kubeconfig', env.KUBECONFIG ?? ''),
    listen: hostPort('listen', String(def('listen'))) ?? { host: '0.0.0.0', port: 8080 },
    tlsListen,
    defaultCertFile,
    defaultKeyFile,
    adminListen: hostPort('admin-listen', String(def('admin-listen'))) ?? { host: '0.0.0.0', port: 9090 },
    debugEndpoints: bool('debug-endpoints', false),
    logLevel,
    className: str('class', 'wsgate'),
    watchNamespaces: [...new Set(watchNamespaces)],
    watchGatewayApi: bool('watch-gateway-api', true),
    watchIngress: bool('watch-ingress', true),
    publishService: publish && publish[1]!.length <= 63 && publish[3]!.length <= 63 ? { namespace: publish[1]!, name: publish[3]! } : undefined,
    allowStaticEndpoints: kubernetes ? bool('allow-static-endpoints', false) : true,
    leaderElection: bool('leader-election', true),
    leaseName: str('lease-name', 'wsgate-leader'),
    leaseNamespace: str('lease-namespace', '') || env.POD_NAMESPACE || 'default',
    podName: str('pod-name', '') || env.POD_NAME || hostname(),
    leaseDurationMs,
    leaseRenewDeadlineMs,
    leaseRetryPeriodMs,
    informerWatchdogMs: num('informer-watchdog-seconds', 330, 1, 86400) * 1000,
    shutdownDelayMs: num('shutdown-delay-seconds', 5, 0, 3600) * 1000,
    drainMs: num('drain-seconds', 30, 0, 3600) * 1000,
    workers: Number.isInteger(workers) && workers >= 1 ? workers : 1,
    trustedProxies,
    affinitySecret: str('affinity-secret', ''),
    handshakeTimeoutMs: num('handshake-timeout-seconds', 10, 0.1, 3600) * 1000,
    maxHeaderBytes: num('max-header-bytes', 16384, 1024, 1048576),
    closeTimeoutMs: 5000,
    maxHandshakesInFlight,
    maxConnections: num('max-connections', 0, 0, 10000000) || derivedMaxConnections(openFileLimit()),
    // One hung backend holds at most this share of the global budget; the rest serves every other backend.
    maxPendingHandshakesPerBackend: Math.max(1, Math.ceil(maxHandshakesInFlight / 4)),
    buildHoldoffMs: num('build-holdoff-ms', 100, 0, 60000),
    buildMaxHoldoffMs: num('build-max-holdoff-ms', 1000, 0, 600000),
    kubeApiQps: num('kube-api-qps', 20, 0.1, 100000),
    kubeApiBurst: num('kube-api-burst', 30, 1, 100000),
    tracing: tracingConfig(raw, env, problems),
    ...(redis ? { redis } : {}),
    ...(revoke ? { revoke } : {}),
    buildThread: bool('build-thread', true),
  };
  if (problems.length > 0) throw new ConfigError('invalid configuration', problems);
  return Object.freeze(config);
}

function redisConfig(str: (n: string, d: string) => string, num: (n: string, d: number, min: number, max: number) => number, problems: ConfigProblem[]): RedisConfig | undefined {
  const url = str('redis-url', '');
  const failureMode = str('redis-failure-mode', 'Open');
  if (failureMode !== 'Open' && failureMode !== 'Closed') problems.push({ path: '--redis-failure-mode', message: `must be Open or Closed, got ${failureMode}` });
  const timeoutMs = num('redis-timeout-ms', 200, 1, 60000);
  const leaseTtlMs = num('redis-lease-ttl-seconds', 30, 0.1, 3600) * 1000;
  if (!url) return undefined;
  if (!/^rediss?:\/\/[^/]/.test(url)) problems.push({ path: '--redis-url', message: 'must be redis://HOST:PORT or rediss://HOST:PORT' });
  const username = str('redis-username', '');
  const password = str('redis-password', '');
  const tlsCaFile = str('redis-tls-ca-file', '');
  return {
    url,
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    ...(tlsCaFile ? { tlsCaFile } : {}),
    timeoutMs,
    keyPrefix: str('redis-key-prefix', 'wsgate:'),
    leaseTtlMs,
    failureMode: failureMode === 'Closed' ? 'Closed' : 'Open',
  };
}

export function helpText(): string {
  const lines = [
    'wsgate: a WebSocket ingress controller',
    '',
    'Usage:',
    '  wsgate --config PATH [flags]        serve routes from a YAML file or folder (standalone)',
    '  wsgate --kubernetes [flags]         serve WebSocketRoutes from the cluster',
    '  wsgate validate PATH...             check route files; non-zero exit with each problem',
    '  wsgate revoke --principal X [--route NS/NAME] [--reason TEXT] [--ttl-seconds N] [--clear] --redis-url URL',
    '                                      close a principal\'s connections on every replica (1008) and refuse it',
    '',
    'Flags (each also read from the environment variable shown):',
  ];
  for (const f of flags) {
    const d = f.default === '' ? '' : ` (default ${String(f.default)})`;
    lines.push(`  --${f.name}${f.type === 'boolean' ? '' : ' VALUE'}  [${envName(f.name)}]${d}`, `      ${f.help}`);
  }
  lines.push('  -h, --help     this text', '  --version      print the version', '', 'wsgate revoke flags:');
  for (const f of revokeFlags) lines.push(`  --${f.name}${f.type === 'boolean' ? '' : ' VALUE'}${f.default === '' ? '' : ` (default ${String(f.default)})`}`, `      ${f.help}`);
  return lines.join('\n');
}
