// The WebSocketPolicy v1alpha1 spec: targetRefs (Gateway API policy attachment, GEP-713 direct attachment) and
// the WebSocket blocks of the WebSocketRoute spec, taken from the same schema source so the two never drift.
// Routing (hostnames, rules, tls, className) stays with the route that the policy targets.
import { routeSpecSchema } from './schema.ts';

const { className: _className, hostnames: _hostnames, tls: _tls, rules: _rules, ...blocks } = routeSpecSchema.properties;

/** The spec blocks a policy carries; each replaces the same block of a less specific policy whole. */
export const policyBlocks = Object.keys(blocks) as readonly (keyof typeof blocks)[];

// LocalPolicyTargetReference (https://gateway-api.sigs.k8s.io/reference/spec/#localpolicytargetreference).
const targetRef = {
  type: 'object',
  additionalProperties: false,
  required: ['group', 'kind', 'name'],
  properties: {
    group: { type: 'string', maxLength: 253 },
    kind: { type: 'string', minLength: 1, maxLength: 63, enum: ['Gateway', 'HTTPRoute', 'Ingress'] },
    name: { type: 'string', minLength: 1, maxLength: 253 },
  },
} as const;

export const policySpecSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['targetRefs'],
  properties: {
    targetRefs: { type: 'array', minItems: 1, maxItems: 16, items: targetRef },
    ...blocks,
  },
} as const;

export const policyKind = 'WebSocketPolicy';
export const policyPlural = 'websocketpolicies';
