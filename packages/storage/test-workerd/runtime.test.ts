import { expect, inject, test } from 'vitest';

// The config names the runtime it means to run in; this fails if the suite silently ran
// somewhere else (the workerd config falling back to Node, say), where the Worker adapters
// would be tested against the wrong fetch, streams and R2.
declare module 'vitest' {
  export interface ProvidedContext {
    expectedRuntime: 'node' | 'workerd';
  }
}

test('runs in workerd', () => {
  expect(inject('expectedRuntime')).toBe('workerd');
  // Not `process`: the Vitest plugin gives workerd's runner a Node-like one.
  expect(navigator.userAgent).toBe('Cloudflare-Workers');
  expect(typeof (globalThis as { FixedLengthStream?: unknown }).FixedLengthStream).toBe('function');
});
