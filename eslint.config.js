// Type-aware lint for contid: the rules that catch real bugs in async and
// typed code (floating promises, unsafe any) rather than style, which
// prettier owns.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// One error taxonomy (src/errors.ts): every error class derives from one of its bases.
const EXTEND_AN_ERROR_BASE = {
  selector:
    ':matches(ClassDeclaration, ClassExpression)[superClass.name=/^(Error|SyntaxError|RangeError|TypeError)$/]',
  message:
    'Extend a base of src/errors.ts (ContidError, ContidSyntaxError, ContidRangeError, ContidTypeError).',
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/out/**', 'bench/data/**'] },
  js.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [...tseslint.configs.strictTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's test() returns a promise the runner itself awaits.
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@typescript-eslint/no-unnecessary-condition': 'off',
      '@typescript-eslint/prefer-literal-enum-member': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-control-regex': 'off',
    },
  },
  // Every error class derives from a base of src/errors.ts, and library code
  // throws errors with a stable code (a later block's no-restricted-syntax
  // replaces an earlier one's: the src block repeats the first rule).
  {
    files: ['**/*.ts'],
    ignores: ['src/errors.ts'],
    rules: {
      'no-restricted-syntax': ['error', EXTEND_AN_ERROR_BASE],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/errors.ts', 'src/**/*.test.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        EXTEND_AN_ERROR_BASE,
        {
          selector:
            'ThrowStatement > :matches(NewExpression, CallExpression)[callee.name=/^(Error|SyntaxError|RangeError|TypeError)$/]',
          message: 'Throw an error of src/errors.ts with a code (ERROR_CODES), not a bare built-in.',
        },
      ],
    },
  },
  // A process-table entry changes only through the table's methods: the
  // mutable record (TableEntry) and the table's parts stay inside src/track;
  // everyone else imports the read-only view from process-table.js.
  {
    files: ['**/*.ts'],
    ignores: ['src/track/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                '**/track/process-entry.js',
                '**/track/births.js',
                '**/track/expiry.js',
                '**/track/label-groups.js',
                '**/track/waits.js',
              ],
              message:
                'Internal to src/track: import ProcessEntry and the table from src/track/process-table.js.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
      },
    },
  },
);
