import { defineConfig } from 'vitest/config';

// The Node run: unit and contract tests of the memory, filesystem and S3 adapters. One MinIO
// (built with `go install` on first use, see src/testing/minio.ts) serves the whole run.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    environment: 'node',
    globalSetup: ['src/testing/minio-global-setup.ts'],
    // The cold MinIO build runs in globalSetup and takes minutes; tests bound themselves.
    hookTimeout: 60_000,
    testTimeout: 180_000,
  },
});
