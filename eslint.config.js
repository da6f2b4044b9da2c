import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import floors from './eslint-rules/floors.js';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-control-regex': 'off',
    },
  },
  {
    // The import floors of src/ (DESIGN.md): tests and benchmarks may import anything.
    files: ['src/**/*.ts'],
    plugins: { sluice: { rules: { floors } } },
    rules: { 'sluice/floors': 'error' },
  },
  {
    // The dashboard's browser script: plain JavaScript, no bundler.
    files: ['dashboard/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: Object.fromEntries(['window', 'document', 'location', 'history', 'sessionStorage', 'fetch', 'TextDecoder', 'AbortController',
        'URLSearchParams', 'setTimeout', 'uPlot'].map((name) => [name, 'readonly'])),
    },
  },
);
