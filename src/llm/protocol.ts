// The wsgate.llm.v1 subprotocol: JSON text messages. Client → wsgate: request, cancel. wsgate → client: delta,
// done, error. Parsing is total: every input yields a message or a protocol error with a catalogued code,
// never an exception, so one bad message cannot take down the connection's other requests.
import { LlmErrorCode } from '../errors.ts';
import type { LlmParamLimits } from './route.ts';

export const LLM_SUBPROTOCOL = 'wsgate.llm.v1';

export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

export interface RequestParams {
  readonly maxTokens: number;
  readonly temperature?: number;
}

export interface ClientRequest {
  readonly type: 'request';
  readonly id: string;
  readonly model: string;
  readonly messages: readonly ChatMessage[];
  readonly params: RequestParams;
  /** The id of an earlier request whose turns (kept by wsgate) come before these messages. */
  readonly continues?: string;
}

export interface ClientCancel {
  readonly type: 'cancel';
  readonly id: string;
}

export type ClientMessage = ClientRequest | ClientCancel;

export interface ProtocolError {
  readonly type: 'error';
  readonly id?: string;
  readonly code: LlmErrorCode;
  readonly message: string;
  readonly retryAfterMs?: number;
}

export type ServerEvent =
  | { readonly type: 'delta'; readonly id: string; readonly text: string }
  | { readonly type: 'done'; readonly id: string; readonly finishReason: string; readonly usage: { readonly inputTokens: number; readonly outputTokens: number } }
  | ProtocolError;

const MAX_ID_LENGTH = 128;
const ROLES = new Set(['system', 'user', 'assistant']);
const PARAMS = new Set(['maxTokens', 'temperature']);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function bad(message: string, id?: string): ProtocolError {
  return { type: 'error', ...(id !== undefined ? { id } : {}), code: LlmErrorCode.badRequest, message };
}

/** Validates one text frame. byteLength is the frame's size, checked before JSON.parse runs. */
export function parseClientMessage(text: string, byteLength: number, maxBytes: number, limits: LlmParamLimits): ClientMessage | ProtocolError {
  if (byteLength > maxBytes) return { type: 'error', code: LlmErrorCode.tooLarge, message: `message of ${byteLength} bytes exceeds ${maxBytes}` };
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return bad('message is not JSON');
  }
  if (!isRecord(v)) return bad('message must be a JSON object');
  const id = typeof v.id === 'string' && v.id.length > 0 && v.id.length <= MAX_ID_LENGTH ? v.id : undefined;
  if (id === undefined) return bad(`id must be a string of 1 to ${MAX_ID_LENGTH} characters`);
  if (v.type === 'cancel') return { type: 'cancel', id };
  if (v.type !== 'request') return bad(`unknown message type ${JSON.stringify(String(v.type)).slice(0, 40)}`, id);
  if (typeof v.model !== 'string' || v.model.length === 0) return bad('model must be a non-empty string', id);
  if (!Array.isArray(v.messages) || v.messages.length === 0) return bad('messages must be a non-empty array', id);
  const messages: ChatMessage[] = [];
  for (const m of v.messages) {
    if (!isRecord(m) || typeof m.role !== 'string' || !ROLES.has(m.role) || typeof m.content !== 'string') {
      return bad('each message needs role (system, user or assistant) and string content', id);
    }
    messages.push({ role: m.role as ChatMessage['role'], content: m.content });
  }
  const p = v.params === undefined ? {} : v.params;
  if (!isRecord(p)) return bad('params must be an object', id);
  for (const k of Object.keys(p)) if (!PARAMS.has(k)) return bad(`parameter ${JSON.stringify(k).slice(0, 40)} is not allowed`, id);
  let maxTokens = limits.maxTokens;
  if (p.maxTokens !== undefined) {
    if (typeof p.maxTokens !== 'number' || !Number.isInteger(p.maxTokens) || p.maxTokens < 1 || p.maxTokens > limits.maxTokens) {
      return bad(`maxTokens must be an integer from 1 to ${limits.maxTokens}`, id);
    }
    maxTokens = p.maxTokens;
  }
  let temperature: number | undefined;
  if (p.temperature !== undefined) {
    const { min, max } = limits.temperature;
    if (typeof p.temperature !== 'number' || !(p.temperature >= min && p.temperature <= max)) return bad(`temperature must be from ${min} to ${max}`, id);
    temperature = p.temperature;
  }
  if (v.continues !== undefined && (typeof v.continues !== 'string' || v.continues.length === 0 || v.continues.length > MAX_ID_LENGTH)) {
    return bad(`continues must be a string of 1 to ${MAX_ID_LENGTH} characters`, id);
  }
  const continues = v.continues as string | undefined;
  return { type: 'request', id, model: v.model, messages, params: { maxTokens, ...(temperature !== undefined ? { temperature } : {}) }, ...(continues !== undefined ? { continues } : {}) };
}
