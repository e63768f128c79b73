// Lint: typescript-eslint recommended, plus the import boundaries of docs/architecture.md §6 — the proxy never sees the
// sources or the builder, and only src/kube (the one adapter) talks to @kubernetes/client-node.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const restrict = (patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '.cache/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', URL: 'readonly', AbortController: 'readonly', fetch: 'readonly', performance: 'readonly', structuredClone: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/kube/**'],
    rules: restrict([{ group: ['@kubernetes/client-node'], message: 'Only src/kube (the adapter) may import client-node.' }]),
  },
  {
    files: ['src/proxy/**/*.ts', 'src/policy/**/*.ts', 'src/health/**/*.ts', 'src/cluster/**/*.ts', 'src/llm/**/*.ts'],
    rules: restrict([
      { group: ['**/sources/**', '**/dag/**', '**/controller/**', '**/status/**', '**/kube/**'], message: 'The data plane reads only the compiled model (model/: the Snapshot and its holder).' },
      { group: ['**/api/**'], message: 'The data plane reads the compiled Route (model/route.ts), never the raw spec types or the schema: the builder (dag/compile) applies the defaults.' },
      { group: ['@kubernetes/client-node'], message: 'Only src/kube (the adapter) may import client-node.' },
    ]),
  },
  {
    files: ['src/dag/**/*.ts', 'src/model/**/*.ts', 'src/api/**/*.ts'],
    rules: restrict([
      { group: ['**/proxy/**', '**/sources/**', '**/controller/**', '**/status/**', '**/kube/**', '**/telemetry/**', 'node:fs', 'node:net', 'node:http', 'pino'], message: 'The model and the builder are pure: no I/O, no logger.' },
    ]),
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/config/**'],
    rules: { 'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Only src/config reads process.env.' }] },
  },
);
