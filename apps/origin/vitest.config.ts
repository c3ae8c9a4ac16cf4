import { defineConfig } from 'vitest/config';

// Unit tests beside the source, integration tests (real MinIO, the origin as a child process)
// under test/. One MinIO, built with `go install` on first use, serves the whole run.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    environment: 'node',
    globalSetup: ['@cairn/storage/testing/minio-global-setup'],
    hookTimeout: 60_000,
    // A guard against hangs, not a speed check: turbo runs suites side by side on 2 cores.
    testTimeout: 180_000,
  },
});
