// Conversation state: the compiled `llm.conversation` block (off by default, defaults from the schema), and
// the per-connection store's bounds (turns, bytes, chains). The session's use of it runs on real sockets in
// test/integration/llm-session.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createBuilder } from '../../src/dag/build.ts';
import { Conversations, MAX_CHAINS } from '../../src/llm/conversation.ts';
import type { ChatMessage } from '../../src/llm/protocol.ts';
import { routeObject } from '../support/harness.ts';

function compiled(conversation?: unknown) {
  const llm = { providers: [{ name: 'p', baseUrl: 'http://127.0.0.1:1', format: 'openai-chat', credentials: { file: 'k' }, models: ['m'] }], ...(conversation !== undefined ? { conversation } : {}) };
  const built = createBuilder({ className: 'wsgate', allowStaticEndpoints: true, mode: 'standalone' })({
    routes: [routeObject('r', { rules: [{ llm }] })],
    services: [],
    endpointSlices: [],
    secrets: [{ metadata: { namespace: 'default', name: 'file:k' }, data: { content: Buffer.from('key').toString('base64') } }],
  });
  const route = [...built.content.routes.values()][0];
  return { conditions: built.statuses[0]!.conditions.map((c) => `${c.type}=${c.status}`), conversation: route?.rules[0]?.llm?.conversation };
}

test('compiled: off by default with the schema defaults; a partial block keeps the other defaults', () => {
  assert.deepEqual(compiled(), { conditions: ['Accepted=True', 'ResolvedRefs=True', 'Programmed=True'], conversation: { enabled: false, maxTurns: 32, maxBytes: 65536 } });
  assert.deepEqual(compiled({ enabled: true, maxTurns: 4 }).conversation, { enabled: true, maxTurns: 4, maxBytes: 65536 });
});

test('compiled: out-of-range bounds are refused by the schema', () => {
  assert.equal(compiled({ enabled: true, maxTurns: 1 }).conditions[0], 'Accepted=False');
  assert.equal(compiled({ enabled: true, maxBytes: 10 }).conditions[0], 'Accepted=False');
});

const u = (content: string): ChatMessage => ({ role: 'user', content });
const a = (content: string): ChatMessage => ({ role: 'assistant', content });

test('a reply alone over maxBytes keeps nothing, and the chain it continued is gone too', () => {
  const c = new Conversations(8, 1024);
  c.record('1', undefined, [u('q'), a('r')]);
  c.record('2', '1', [u('q'), a('r'), u('q2'), a('x'.repeat(2000))]);
  assert.deepEqual({ one: c.context('1'), two: c.context('2'), size: c.size }, { one: undefined, two: undefined, size: 0 });
});

test(`at most ${MAX_CHAINS} chains per connection: the least recently recorded goes first`, () => {
  const c = new Conversations(8, 1024);
  for (let i = 0; i <= MAX_CHAINS; i++) c.record(`c${i}`, undefined, [u(`q${i}`), a(`r${i}`)]);
  assert.equal(c.size, MAX_CHAINS);
  assert.equal(c.context('c0'), undefined);
  assert.deepEqual(c.context('c1'), [u('q1'), a('r1')]);
  // Continuing c1 makes it the newest; the next new chain evicts c2 instead.
  c.record('c1b', 'c1', [u('q1'), a('r1'), u('more'), a('ok')]);
  c.record('new', undefined, [u('n'), a('n')]);
  assert.deepEqual({ c1b: c.context('c1b')?.length, c2: c.context('c2'), c3: c.context('c3')?.length }, { c1b: 4, c2: undefined, c3: 2 });
});
