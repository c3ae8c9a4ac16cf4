import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

// The same unit tests as vitest.config.ts, run inside workerd (Miniflare). Unit tests only, so no
// Worker entrypoint and no wrangler config. We set no compatibility flags, but the plugin always
// turns on nodejs_compat_v2 for its runner (Vitest needs it), so `process`, `Buffer` and `node:*`
// exist here too: this run proves the Web APIs we use behave in workerd; tsconfig.build.json
// (no Node types) is what keeps Node out of the source.
export default defineConfig({
  plugins: [cloudflareTest({ miniflare: { compatibilityDate: '2026-11-02' } })],
  test: {
    // A guard against hangs, not a speed check: turbo runs suites side by side on 2 cores,
    // beside a cold MinIO build on a new machine.
    testTimeout: 180_000,
    include: ['src/**/*.test.ts'],
    provide: { expectedRuntime: 'workerd' },
  },
});
