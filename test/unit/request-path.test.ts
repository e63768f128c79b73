// normalizeTarget as a pure function, each input against its whole output: RFC 3986 §5.2.4 dot-segment removal
// (including the examples of §5.4.2 that apply to an absolute path), §6.2.2 percent-encoding normalization,
// merged slashes, and the targets refused with 400 bad_path.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WsgateError } from '../../src/errors.ts';
import { normalizeTarget, removeDotSegments } from '../../src/proxy/handshake/request-path.ts';

test('normalized targets', () => {
  const cases: Record<string, string> = {
    '/': '/',
    '/ws?room=1': '/ws?room=1',
    '/a/b/c/./../../g': '/a/g',
    '/mid/content=5/../6': '/mid/6',
    '/public/..': '/',
    '/public/.': '/public/',
    '/public/%2e%2E/private': '/private',
    '/..': '/',
    '/../../x/': '/x/',
    '//a//b///c': '/a/b/c',
    '/%41%7e%2D%5f': '/A~-_',
    '/a%2a%c3%a9': '/a%2A%C3%A9',
    '/.well-known/x': '/.well-known/x',
    '/a/..b/c': '/a/..b/c',
    '/p?/../q': '/p?/../q',
    '/p/./?x=%2e%2e&y=/../': '/p/?x=%2e%2e&y=/../',
  };
  const got: Record<string, string> = {};
  for (const input of Object.keys(cases)) {
    const r = normalizeTarget(input);
    got[input] = r instanceof WsgateError ? `error: ${r.reason}` : r.target;
  }
  assert.deepEqual(got, cases);
  assert.deepEqual(normalizeTarget('/x/../y?q'), { path: '/y', target: '/y?q' });
});

test('refused targets → 400 bad_path', () => {
  const inputs = ['/a%2fb', '/a%2Fb', '/a%5cb', '/a%5C..', '/a\\b', '/a%', '/a%g1', '/a%1', '/a#b', '/a?b#c', 'http://h/a', '*', ''];
  for (const input of inputs) {
    const r = normalizeTarget(input);
    assert.ok(r instanceof WsgateError, input);
    assert.deepEqual([r.httpStatus, r.reason], [400, 'bad_path'], input);
  }
});

test('removeDotSegments: RFC 3986 §5.2.4', () => {
  assert.deepEqual(['/a/b/c/./../../g', '/a/b/..', '/a/./b/.', '/./', '/a/../..'].map(removeDotSegments), ['/a/g', '/a/', '/a/b/', '/', '/']);
});
