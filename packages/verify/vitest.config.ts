import { defineConfig } from 'vitest/config';

// The Node run of the unit tests. vitest.workerd.config.ts runs the same files inside workerd.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
    // runtime.test.ts checks this against the runtime it finds, so a run in the wrong one fails.
    provide: { expectedRuntime: 'node' },
  },
});
