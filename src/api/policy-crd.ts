// The WebSocketPolicy CRD, from the same schema source as the WebSocketRoute CRD (policy-schema.ts reuses its
// blocks), made structural by the same toStructural. Status is the Gateway API PolicyStatus: one entry per
// ancestor (https://gateway-api.sigs.k8s.io/reference/spec/#policyancestorstatus).
import { objectSchema, type JsonSchema } from './crd.ts';
import { policyKind, policyPlural, policySpecSchema } from './policy-schema.ts';
import { conditionSchema, group, version } from './schema.ts';

const policyStatusSchema = {
  type: 'object',
  properties: {
    ancestors: {
      type: 'array',
      maxItems: 16,
      items: {
        type: 'object',
        required: ['ancestorRef', 'controllerName', 'conditions'],
        properties: {
          ancestorRef: {
            type: 'object',
            required: ['name'],
            properties: {
              group: { type: 'string', maxLength: 253 },
              kind: { type: 'string', maxLength: 63 },
              namespace: { type: 'string', maxLength: 63 },
              name: { type: 'string', minLength: 1, maxLength: 253 },
              sectionName: { type: 'string', maxLength: 253 },
              port: { type: 'integer', minimum: 1, maximum: 65535 },
            },
          },
          controllerName: { type: 'string', maxLength: 253 },
          conditions: { type: 'array', maxItems: 8, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'], items: conditionSchema },
        },
      },
    },
  },
} as const;

export function buildPolicyCrd() {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${policyPlural}.${group}`, labels: { 'gateway.networking.k8s.io/policy': 'Direct' } },
    spec: {
      group,
      scope: 'Namespaced',
      names: { kind: policyKind, listKind: `${policyKind}List`, plural: policyPlural, singular: policyKind.toLowerCase(), shortNames: ['wsp'], categories: ['wsgate', 'gateway-api'] },
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [{ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }],
          schema: {
            openAPIV3Schema: objectSchema(
              'WebSocketPolicy attaches WebSocket behaviour (affinity, limits, heartbeats, drain, auth) to Gateways, HTTPRoutes and Ingresses.',
              policySpecSchema as JsonSchema,
              policyStatusSchema as JsonSchema,
            ),
          },
        },
      ],
    },
  };
}
