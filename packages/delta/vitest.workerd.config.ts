import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

// The portable tests (the apply side: format, apply, zstd frames, hashing) inside workerd
// (Miniflare), with the same decoders a Worker would use: fzstd and WebCrypto. The encoder's
// tests need node:zlib and stay in the Node run. The plugin turns on nodejs_compat for its runner
// (Vitest needs it), so this run cannot prove the source avoids Node: eslint.config.js does that.
export default defineConfig({
  plugins: [cloudflareTest({ miniflare: { compatibilityDate: '2026-11-02' } })],
  test: {
    // A guard against hangs, not a speed check: turbo runs suites side by side on 2 cores,
    // beside a cold MinIO build on a new machine.
    testTimeout: 180_000,
    include: ['src/**/*.test.ts'],
    exclude: ['src/encode.test.ts', 'src/match.test.ts', 'src/node.test.ts'],
    provide: { expectedRuntime: 'workerd' },
  },
});
