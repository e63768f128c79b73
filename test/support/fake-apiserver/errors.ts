// Test double: failures shaped as the real API server's metav1.Status bodies, so client code sees the same
// codes and reasons (client-node surfaces them as ApiException.code / .body).

export interface StatusCause {
  readonly reason: string;
  readonly message: string;
  readonly field: string;
}

export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly details: Record<string, unknown>;

  constructor(code: number, reason: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.code = code;
    this.reason = reason;
    this.details = details;
  }

  toStatus(): Record<string, unknown> {
    return statusBody(this.code, this.reason, this.message, this.details);
  }
}

export function statusBody(code: number, reason: string, message: string, details: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(Object.keys(details).length > 0 ? { details } : {}),
    code,
  };
}

interface Target {
  readonly group: string;
  readonly plural: string;
  readonly name?: string;
}

function qualified(t: Target): string {
  return t.group === '' ? t.plural : `${t.plural}.${t.group}`;
}

export const errors = {
  notFound: (t: Target): ApiError =>
    new ApiError(404, 'NotFound', `${qualified(t)} "${t.name ?? ''}" not found`, { name: t.name, group: t.group, kind: t.plural }),
  alreadyExists: (t: Target): ApiError =>
    new ApiError(409, 'AlreadyExists', `${qualified(t)} "${t.name ?? ''}" already exists`, { name: t.name, group: t.group, kind: t.plural }),
  conflict: (t: Target): ApiError =>
    new ApiError(
      409,
      'Conflict',
      `Operation cannot be fulfilled on ${qualified(t)} "${t.name ?? ''}": the object has been modified; please apply your changes to the latest version and try again`,
      { name: t.name, group: t.group, kind: t.plural },
    ),
  applyConflict: (t: Target, fields: readonly { manager: string; path: string }[]): ApiError =>
    new ApiError(
      409,
      'Conflict',
      `Apply failed with ${fields.length} conflict${fields.length === 1 ? '' : 's'}: ${fields.map((f) => `conflict with "${f.manager}": .${f.path}`).join(', ')}`,
      {
        name: t.name, group: t.group, kind: t.plural,
        causes: fields.map((f) => ({ reason: 'FieldManagerConflict', message: `conflict with "${f.manager}"`, field: `.${f.path}` })),
      },
    ),
  invalid: (t: Target, kind: string, causes: readonly StatusCause[]): ApiError =>
    new ApiError(
      422,
      'Invalid',
      `${kind} "${t.name ?? ''}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(', ')}`,
      { name: t.name, group: t.group, kind, causes },
    ),
  badRequest: (message: string): ApiError => new ApiError(400, 'BadRequest', message),
  gone: (message: string): ApiError => new ApiError(410, 'Expired', message),
  unsupportedMediaType: (type: string): ApiError =>
    new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got ${type})`),
  methodNotAllowed: (method: string): ApiError => new ApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource (${method})`),
  internal: (message: string): ApiError => new ApiError(500, 'InternalError', message),
};
