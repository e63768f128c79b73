// Test double: defaulting and validation the way the real API server's type strategies do them, for the types
// wsgate reads. One deliberate exception: EndpointSlice addresses may be loopback (127.0.0.0/8, ::1), because
// tests run real backends on 127.0.0.1; the real server refuses them with "may not be in the loopback range".
// Every other rule stays as strict as the real one. Custom resources are not checked against their OpenAPI
// schema or CEL rules here (the builder re-validates specs itself).
import { isIPv4, isIPv6 } from 'node:net';
import { errors, type ApiError, type StatusCause } from './errors.ts';
import type { KObject, ResourceType } from './resources.ts';

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const dns1035Label = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const qualifiedNamePart = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const ianaSvcName = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
/** metav1.MicroTime is parsed with the layout 2006-01-02T15:04:05.000000Z07:00: exactly six fraction digits. */
const microTime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$/;
const secretKey = /^[-._a-zA-Z0-9]+$/;
const base64 = /^[A-Za-z0-9+/]*={0,2}$/;

class Causes {
  readonly list: StatusCause[] = [];
  required(field: string): void {
    this.list.push({ reason: 'FieldValueRequired', message: 'Required value', field });
  }
  invalid(field: string, value: unknown, detail: string): void {
    this.list.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(value)}: ${detail}`, field });
  }
  unsupported(field: string, value: unknown, allowed: readonly string[]): void {
    this.list.push({ reason: 'FieldValueNotSupported', message: `Unsupported value: ${JSON.stringify(value)}: supported values: ${allowed.map((a) => `"${a}"`).join(', ')}`, field });
  }
  tooMany(field: string, max: number): void {
    this.list.push({ reason: 'FieldValueTooMany', message: `Too many: must have at most ${max} items`, field });
  }
  duplicate(field: string, value: unknown): void {
    this.list.push({ reason: 'FieldValueDuplicate', message: `Duplicate value: ${JSON.stringify(value)}`, field });
  }
}

function isPort(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535;
}

function validateQualifiedName(c: Causes, field: string, key: string): void {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : '';
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (slash >= 0 && (prefix.length > 253 || !dns1123Subdomain.test(prefix))) c.invalid(field, key, 'prefix part must be a DNS subdomain');
  if (name.length > 63 || !qualifiedNamePart.test(name)) c.invalid(field, key, 'name part must consist of alphanumeric characters, "-", "_" or ".", and must start and end with an alphanumeric character');
}

function validateMetadata(c: Causes, res: ResourceType, obj: KObject): void {
  const name = obj.metadata.name;
  if (!name) c.required('metadata.name');
  else if (res.plural === 'services' ? name.length > 63 || !dns1035Label.test(name) : name.length > 253 || !dns1123Subdomain.test(name)) {
    c.invalid('metadata.name', name, res.plural === 'services' ? 'a DNS-1035 label must consist of lower case alphanumeric characters or "-", start with an alphabetic character, and end with an alphanumeric character' : "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character");
  }
  for (const [k, v] of Object.entries(obj.metadata.labels ?? {})) {
    validateQualifiedName(c, 'metadata.labels', k);
    if (typeof v !== 'string' || v.length > 63 || !labelValue.test(v)) c.invalid('metadata.labels', v, 'a valid label must be an empty string or consist of alphanumeric characters, "-", "_" or "."');
  }
}

/** Loopback is the one relaxation (see the header comment). */
function validateEndpointIp(c: Causes, field: string, ip: string): void {
  if (ip === '0.0.0.0' || ip === '::') c.invalid(field, ip, 'may not be unspecified (0.0.0.0, ::)');
  else if (ip.startsWith('169.254.') || /^fe[89ab]/i.test(ip)) c.invalid(field, ip, 'may not be in the link-local range (169.254.0.0/16, fe80::/10)');
  else if (/^224\.0\.0\./.test(ip) || /^ff02:/i.test(ip)) c.invalid(field, ip, 'may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)');
}

function validateEndpointSlice(c: Causes, obj: KObject, old: KObject | undefined): void {
  const addressType = obj['addressType'];
  if (addressType === undefined) c.required('addressType');
  else if (!['IPv4', 'IPv6', 'FQDN'].includes(addressType as string)) c.unsupported('addressType', addressType, ['IPv4', 'IPv6', 'FQDN']);
  if (old && old['addressType'] !== addressType) c.invalid('addressType', addressType, 'field is immutable');
  const endpoints = (obj['endpoints'] ?? []) as { addresses?: unknown; hostname?: unknown; conditions?: Record<string, unknown> }[];
  if (!Array.isArray(endpoints)) c.invalid('endpoints', endpoints, 'must be a list');
  else {
    if (endpoints.length > 1000) c.tooMany('endpoints', 1000);
    endpoints.forEach((ep, i) => {
      const f = `endpoints[${i}]`;
      const addrs = ep.addresses;
      if (!Array.isArray(addrs) || addrs.length === 0) c.required(`${f}.addresses`);
      else {
        if (addrs.length > 100) c.tooMany(`${f}.addresses`, 100);
        addrs.forEach((a: unknown, j) => {
          const af = `${f}.addresses[${j}]`;
          if (typeof a !== 'string') return c.invalid(af, a, 'must be a string');
          if (addressType === 'IPv4') {
            if (!isIPv4(a)) c.invalid(af, a, 'must be a valid IPv4 address');
            else validateEndpointIp(c, af, a);
          } else if (addressType === 'IPv6') {
            if (!isIPv6(a)) c.invalid(af, a, 'must be a valid IPv6 address');
            else validateEndpointIp(c, af, a);
          } else if (addressType === 'FQDN' && (a.length > 253 || !dns1123Subdomain.test(a))) c.invalid(af, a, 'must be a valid DNS subdomain');
        });
      }
      if (ep.hostname !== undefined && (typeof ep.hostname !== 'string' || !dns1123Label.test(ep.hostname))) c.invalid(`${f}.hostname`, ep.hostname, 'must be a DNS label');
      for (const k of ['ready', 'serving', 'terminating']) {
        const v = ep.conditions?.[k];
        if (v !== undefined && v !== null && typeof v !== 'boolean') c.invalid(`${f}.conditions.${k}`, v, 'must be a boolean');
      }
    });
  }
  const ports = (obj['ports'] ?? []) as { name?: unknown; port?: unknown; protocol?: unknown }[];
  if (!Array.isArray(ports)) return c.invalid('ports', ports, 'must be a list');
  if (ports.length > 20000) c.tooMany('ports', 20000);
  const names = new Set<string>();
  ports.forEach((p, i) => {
    const f = `ports[${i}]`;
    const name = p.name ?? '';
    if (typeof name !== 'string' || (name !== '' && (name.length > 63 || !dns1123Label.test(name)))) c.invalid(`${f}.name`, name, 'must be a DNS label');
    else if (names.has(name)) c.duplicate(`${f}.name`, name);
    else names.add(name);
    if (p.port !== undefined && p.port !== null && !isPort(p.port)) c.invalid(`${f}.port`, p.port, 'must be between 1 and 65535, inclusive');
    if (!['TCP', 'UDP', 'SCTP'].includes(p.protocol as string)) c.unsupported(`${f}.protocol`, p.protocol, ['SCTP', 'TCP', 'UDP']);
  });
}

function validateService(c: Causes, obj: KObject): void {
  const spec = (obj['spec'] ?? {}) as { type?: string; clusterIP?: string; ports?: { name?: unknown; port?: unknown; targetPort?: unknown; protocol?: unknown }[] };
  const ports = spec.ports ?? [];
  if (ports.length === 0 && spec.type !== 'ExternalName' && spec.clusterIP !== 'None') c.required('spec.ports');
  const names = new Set<string>();
  ports.forEach((p, i) => {
    const f = `spec.ports[${i}]`;
    if (ports.length > 1 && !p.name) c.required(`${f}.name`);
    if (p.name !== undefined && (typeof p.name !== 'string' || !dns1123Label.test(p.name))) c.invalid(`${f}.name`, p.name, 'must be a DNS label');
    else if (typeof p.name === 'string' && names.has(p.name)) c.duplicate(`${f}.name`, p.name);
    else if (typeof p.name === 'string') names.add(p.name);
    if (!isPort(p.port)) c.invalid(`${f}.port`, p.port, 'must be between 1 and 65535, inclusive');
    if (!['TCP', 'UDP', 'SCTP'].includes(p.protocol as string)) c.unsupported(`${f}.protocol`, p.protocol, ['SCTP', 'TCP', 'UDP']);
    const tp = p.targetPort;
    if (typeof tp === 'number' ? !isPort(tp) : typeof tp !== 'string' || tp.length > 15 || !ianaSvcName.test(tp) || !/[a-z]/.test(tp)) {
      c.invalid(`${f}.targetPort`, tp, 'must be a port number or an IANA service name');
    }
  });
}

function validateSecret(c: Causes, obj: KObject, old: KObject | undefined): void {
  const data = (obj['data'] ?? {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(data)) {
    if (!secretKey.test(k)) c.invalid(`data[${k}]`, k, "a valid config key must consist of alphanumeric characters, '-', '_' or '.'");
    if (typeof v !== 'string' || v.length % 4 !== 0 || !base64.test(v)) c.invalid(`data[${k}]`, '<value>', 'illegal base64 data');
  }
  if (obj['type'] === 'kubernetes.io/tls') {
    if (data['tls.crt'] === undefined) c.required('data[tls.crt]');
    if (data['tls.key'] === undefined) c.required('data[tls.key]');
  }
  if (old && old['type'] !== obj['type']) c.invalid('type', obj['type'], 'field is immutable');
}

/** Decoding errors (400), not validation errors (422): a MicroTime with the wrong layout never reaches validation. */
function decodeLease(obj: KObject): ApiError | undefined {
  const spec = (obj['spec'] ?? {}) as Record<string, unknown>;
  for (const field of ['acquireTime', 'renewTime']) {
    const v = spec[field];
    if (v !== undefined && v !== null && (typeof v !== 'string' || !microTime.test(v))) {
      return errors.badRequest(`Lease in version "v1" cannot be handled as a Lease: parsing time ${JSON.stringify(v)} as "2006-01-02T15:04:05.000000Z07:00": cannot parse as ".000000"`);
    }
  }
  const d = spec['leaseDurationSeconds'];
  if (d !== undefined && d !== null && !Number.isInteger(d)) return errors.badRequest('Lease in version "v1" cannot be handled as a Lease: leaseDurationSeconds must be an integer');
  return undefined;
}

/** Fills the defaults the real server's defaulting functions fill, in place. */
export function applyDefaults(res: ResourceType, obj: KObject): void {
  if (res.plural === 'services') {
    const spec = ((obj['spec'] as Record<string, unknown> | undefined) ?? (obj['spec'] = {})) as { type?: string; sessionAffinity?: string; ports?: { port?: number; targetPort?: unknown; protocol?: string }[] };
    spec.type ??= 'ClusterIP';
    spec.sessionAffinity ??= 'None';
    for (const p of spec.ports ?? []) {
      p.protocol ??= 'TCP';
      p.targetPort ??= p.port;
    }
  } else if (res.plural === 'endpointslices') {
    // endpoints and ports are not omitempty in discovery/v1: absent lists come back as null.
    obj['endpoints'] ??= null;
    obj['ports'] ??= null;
    for (const p of (obj['ports'] ?? []) as { protocol?: string }[]) p.protocol ??= 'TCP';
  } else if (res.plural === 'secrets') {
    obj['type'] ??= 'Opaque';
    const stringData = obj['stringData'] as Record<string, string> | undefined;
    if (stringData) {
      const data = ((obj['data'] as Record<string, string> | undefined) ?? {});
      for (const [k, v] of Object.entries(stringData)) data[k] = Buffer.from(v, 'utf8').toString('base64');
      obj['data'] = data;
      delete obj['stringData'];
    }
  }
}

/** Throws the ApiError the real server would answer with; `old` is set for updates. */
export function validate(res: ResourceType, obj: KObject, old: KObject | undefined): void {
  if (res.plural === 'leases') {
    const decodeError = decodeLease(obj);
    if (decodeError) throw decodeError;
  }
  const c = new Causes();
  validateMetadata(c, res, obj);
  if (res.plural === 'endpointslices') validateEndpointSlice(c, obj, old);
  else if (res.plural === 'services') validateService(c, obj);
  else if (res.plural === 'secrets') validateSecret(c, obj, old);
  else if (res.plural === 'leases') {
    const d = (obj['spec'] as { leaseDurationSeconds?: number } | undefined)?.leaseDurationSeconds;
    if (d !== undefined && d !== null && d <= 0) c.invalid('spec.leaseDurationSeconds', d, 'must be greater than 0');
  }
  if (c.list.length > 0) throw errors.invalid({ group: res.group, plural: res.plural, name: obj.metadata.name }, res.kind, c.list);
}
