import { expect, inject, test } from 'vitest';

// The suite runs twice, under Node and under workerd (vitest.workerd.config.ts); this test fails
// if a config ran it somewhere other than where it says, so the workerd run cannot silently be
// a second Node run.
declare module 'vitest' {
  export interface ProvidedContext {
    expectedRuntime: 'node' | 'workerd';
  }
}

test('the log runs where the config says', () => {
  const runtime = inject('expectedRuntime');
  expect(navigator.userAgent).toBe(runtime === 'workerd' ? 'Cloudflare-Workers' : 'Node.js/24');
});
