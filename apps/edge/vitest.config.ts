import { defineConfig } from 'vitest/config';

// Unit tests beside the source; under test/, the edge served for real: the Worker bundle in
// Miniflare (R2 binding, and S3 against MinIO) and the Node server. One MinIO, built with
// `go install` on first use, serves the whole run.
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
