import { describe, expect, it } from 'vitest';
import { describeBlobStoreContract, readText } from './contract.js';
import { MemoryBlobStore } from './memory-store.js';

describeBlobStoreContract('memory', () => Promise.resolve({ store: new MemoryBlobStore() }));

describe('MemoryBlobStore', () => {
  it('keeps its own copy of the bytes it was given and the bytes it serves', async () => {
    const store = new MemoryBlobStore();
    const body = new TextEncoder().encode('abc');
    await store.put('k', body);
    body[0] = 0x7a;
    const first = await store.get('k');
    if (first.notModified) throw new Error('expected a body');
    expect(await readText(first.body)).toBe('abc');
  });
});

// contract-node.ts's 1 GiB bounded-memory upload runs against the filesystem store and MinIO,
// not here: the memory store holds every object in memory by design.
