// Lint rules: typescript-eslint's recommended set, type-aware where it finds
// real defects (floating promises, misused promises), quiet on style, which
// prettier owns.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'coverage/', '.tmp/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  {
    // Tests assert with chai's property style (`expect(x).to.exist`) and read
    // JSON of unknown shape; both are what those rules would refuse.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-expressions': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    // The status page runs in the browser: its globals, named here rather
    // than through another dependency.
    files: ['src/http/ui/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: Object.fromEntries(
        [
          'AbortController',
          'addEventListener',
          'btoa',
          'document',
          'fetch',
          'location',
          'Node',
          'requestAnimationFrame',
          'setInterval',
          'setTimeout',
          'TextDecoderStream',
          'TextEncoder',
        ].map((g) => [g, 'readonly']),
      ),
    },
  },
);
