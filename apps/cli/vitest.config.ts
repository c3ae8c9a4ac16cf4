import { defineConfig } from 'vitest/config';

// Unit tests beside the source; integration tests in test/ run the built CLI as a child
// process, so global-setup checks that dist/ is there and not older than src/.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    environment: 'node',
    globalSetup: ['test/support/require-build.ts', 'test/support/ensure-faketime.ts'],
    testTimeout: 180_000,
  },
});
