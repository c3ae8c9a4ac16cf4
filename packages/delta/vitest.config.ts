import { defineConfig } from 'vitest/config';

// The Node run of every unit test. vitest.workerd.config.ts runs the portable ones inside workerd.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
    // runtime.test.ts checks this against the runtime it finds, so a run in the wrong one fails.
    provide: { expectedRuntime: 'node' },
  },
});
