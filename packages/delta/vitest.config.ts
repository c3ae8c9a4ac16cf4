import { defineConfig } from 'vitest/config';

// The Node run of every unit test. vitest.workerd.config.ts runs the portable ones inside workerd.
export default defineConfig({
  test: {
    // A guard against hangs, not a speed check: turbo runs suites side by side on 2 cores,
    // beside a cold MinIO build on a new machine.
    testTimeout: 180_000,
    include: ['src/**/*.test.ts'],
    environment: 'node',
    // runtime.test.ts checks this against the runtime it finds, so a run in the wrong one fails.
    provide: { expectedRuntime: 'node' },
  },
});
