import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

// The Worker adapters inside workerd (Miniflare): test-workerd/ runs the contract suite against
// the R2 adapter on a Miniflare R2 binding, and against the aws4fetch adapter talking to the
// real MinIO that the globalSetup starts in Node and `provide`s (`inject('minio')` in the
// tests). The Worker reaches MinIO on 127.0.0.1 through Miniflare's default outbound service,
// which allows private addresses. No Worker entrypoint and no wrangler config: the tests call
// the adapters directly. The plugin always turns on nodejs_compat for its runner, so this run
// cannot prove the adapters avoid Node; ESLint and tsconfig.build.json do that.
export default defineConfig({
  plugins: [
    cloudflareTest({
      miniflare: { compatibilityDate: '2026-11-02', r2Buckets: ['BUCKET'] },
    }),
  ],
  test: {
    // A guard against hangs, not a speed check: turbo runs suites side by side on 2 cores,
    // beside a cold MinIO build on a new machine.
    testTimeout: 180_000,
    include: ['test-workerd/**/*.test.ts'],
    globalSetup: ['./src/testing/minio-global-setup.ts'],
    provide: { expectedRuntime: 'workerd' },
  },
});
