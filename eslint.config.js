// One flat config for the whole monorepo: type-checked typescript-eslint rules, zero warnings.
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      '**/.turbo/**',
      '**/.cache/**',
      '**/.wrangler/**',
      '**/dist-worker/**',
      'apps/edge/worker-configuration.d.ts',
    ],
  },
  eslint.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      'no-restricted-syntax': [
        'error',
        {
          selector: 'TSEnumDeclaration',
          message: 'Use a string-literal union instead of an enum.',
        },
      ],
    },
  },
  {
    // Code that runs in workerd and browsers: no Node built-ins, no Buffer, no process. (The
    // workerd test runs cannot prove this: the Cloudflare vitest plugin enables nodejs_compat.)
    files: [
      'packages/verify/src/**/*.ts',
      'packages/storage/src/{blob-store,errors,keys,contract,s3-fetch-store,r2-store,part-reader,s3-xml}.ts',
      // The apply side of the delta codec; the encoder and the Node adapters may use Node.
      'packages/delta/src/{apply,format,errors,limits,sha256,zstd}.ts',
      'packages/delta/src/testing/{inputs,craft}.ts',
      'packages/tlog/src/**/*.ts',
      // The edge runs in workerd; its Node entry points are named node*.ts.
      'apps/edge/src/**/*.ts',
    ],
    ignores: [
      'apps/edge/src/node*.ts',
      'apps/edge/src/**/*.test.ts',
      'packages/tlog/src/**/*.test.ts',
      'packages/tlog/src/node*.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [{ group: ['node:*'], message: 'This code must run in Workers and browsers.' }],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'Buffer', message: 'Use Uint8Array.' },
        { name: 'process', message: 'This code must run in Workers and browsers.' },
        { name: 'require', message: 'ESM only.' },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
      },
    },
  },
);
