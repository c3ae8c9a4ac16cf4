import { defineConfig } from 'vitest/config';

// Cross-package tests: attacks through real HTTP on 127.0.0.1, and interop with TUF clients
// and libraries no one here wrote (tuf-js from npm, python-tuf from PyPI in a virtualenv).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 180_000,
    hookTimeout: 300_000,
  },
});
