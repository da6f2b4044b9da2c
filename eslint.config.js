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
    // Worker processes never load TypeBox (README.md, "Layout"): a schema lives in a *-schema.ts module, which only
    // other schemas and the configuration's assembly and validation import. Type-only imports are erased.
    files: ['src/**/*.ts'],
    ignores: ['src/**/*-schema.ts', 'src/ops/config/schema.ts', 'src/ops/config/validate.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{
        regex: '^@sinclair/typebox$|-schema\\.js$',
        allowTypeImports: true,
        message: 'Schemas stay in *-schema.ts modules, imported by src/ops/config/, so that workers do not load TypeBox.',
      }] }],
    },
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
