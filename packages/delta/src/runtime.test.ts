import { expect, inject, test } from 'vitest';

// Each vitest config names the runtime it means to run in; this test fails if a config silently
// ran the suite somewhere else (e.g. the workerd config falling back to Node) or named none.
declare module 'vitest' {
  export interface ProvidedContext {
    expectedRuntime: 'node' | 'workerd';
  }
}

const expectedRuntime = inject('expectedRuntime');

test(`runs in ${expectedRuntime}`, () => {
  switch (expectedRuntime) {
    case 'workerd':
      // Not `process`: the Vitest plugin gives workerd's runner a Node-like one (22.x).
      expect(navigator.userAgent).toBe('Cloudflare-Workers');
      break;
    case 'node':
      expect(navigator.userAgent).toBe('Node.js/24');
      expect(
        (globalThis as { process?: { versions: { node: string } } }).process?.versions.node,
      ).toMatch(/^24\./);
      break;
    default:
      throw new Error(
        `the vitest config provides no expectedRuntime, got ${String(expectedRuntime)}`,
      );
  }
});
