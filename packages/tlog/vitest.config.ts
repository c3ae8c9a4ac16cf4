import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // A guard against hangs, not a speed check: turbo runs suites side by side on 2 cores.
    testTimeout: 180_000,
    include: ['src/**/*.test.ts'],
    environment: 'node',
    setupFiles: ['src/testing-node-setup.ts'],
    provide: { expectedRuntime: 'node' },
  },
});
