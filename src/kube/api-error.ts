// How a failed API call is seen outside kube-client.ts: its HTTP status, and whether sending the same request
// again can ever succeed. Kept apart from the client so the status writers' queue can tell without loading
// client-node.

/** A failed API call: `status` is the HTTP code (0 when the request never got an answer). */
export class KubeApiError extends Error {
  readonly status: number;
  readonly reason: string | undefined;

  constructor(status: number, message: string, reason?: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = 'KubeApiError';
    this.status = status;
    this.reason = reason;
  }
}

/**
 * The API server refused the request itself, so the same request will be refused again: by the Kubernetes API
 * conventions a 4xx means the request is wrong (400 BadRequest, 403 Forbidden, 422 Invalid, ...), except 408
 * Timeout and 429 TooManyRequests, which say "not now", and 409 Conflict, which says the object moved under the
 * request and a fresh attempt may pass. No answer (0) and 5xx are the server's trouble, never the request's.
 * Anything that is not a KubeApiError never reached the server and is not a refusal either.
 */
export function refusedForGood(err: unknown): err is KubeApiError {
  if (!(err instanceof KubeApiError)) return false;
  const s = err.status;
  return s >= 400 && s < 500 && s !== 408 && s !== 409 && s !== 429;
}
