/**
 * The R2 adapter inside workerd on a Miniflare R2 binding: the contract, then the paths only
 * this adapter has (FixedLengthStream puts, multipart, the staged conditional upload).
 *
 * The contract's 1 GB upload with bounded memory is in the Node suite (contract-node.ts):
 * workerd gives a test no way to read its isolate's memory.
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';

import {
  bytes,
  describeBlobStoreContract,
  expectPattern,
  expectStorageError,
  patternStream,
  readText,
  streamOf,
} from '../src/contract.js';
import { R2BlobStore, type R2BucketLike } from '../src/r2-store.js';
import { expectRacedConditionsRefused } from './racing-writer.js';

const MiB = 1024 * 1024;

/** The Miniflare binding: an R2Bucket, of which the adapter's structural type covers a part. */
const bucket = env.BUCKET as R2BucketLike & { delete(keys: string | string[]): Promise<void> };

/** Every key in the bucket, staging keys included: what the binding itself sees. */
async function allKeys(): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list(cursor === undefined ? {} : { cursor });
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor !== undefined);
  return keys;
}

/** The one Miniflare bucket, emptied: the contract wants a fresh store for every test. */
async function emptyStore(): Promise<{ store: R2BlobStore }> {
  const keys = await allKeys();
  if (keys.length > 0) await bucket.delete(keys);
  return { store: new R2BlobStore(bucket) };
}

/** A binding whose every call fails, as R2 does when it cannot be reached. */
const unreachable: R2BucketLike = new Proxy({} as R2BucketLike, {
  get: () => () => Promise.reject(new Error('Network connection lost.')),
});

describeBlobStoreContract('R2 binding (Miniflare), in workerd', emptyStore, {
  unavailable: [
    {
      name: 'every binding call fails',
      make: () => Promise.resolve({ store: new R2BlobStore(unreachable) }),
    },
  ],
});

describe('R2BlobStore, in workerd', () => {
  it('streams a body of known length into one put, and checks the length', async () => {
    const { store } = await emptyStore();
    const size = 9 * MiB + 5;
    const info = await store.put('known.bin', patternStream(5, size), { contentLength: size });
    expect(info.size).toBe(size);
    expect(info.etag).toMatch(/^[0-9a-f]{32}$/); // one put: a plain MD5, not a multipart etag
    const result = await store.get('known.bin');
    if (result.notModified) throw new Error('expected a body');
    expect(await expectPattern(result.body, 5)).toBe(size);

    await expectStorageError(
      store.put('short.bin', streamOf([bytes('abc')]), { contentLength: 4 }),
      'INVALID_ARGUMENT',
    );
    await expectStorageError(
      store.put('long.bin', streamOf([bytes('abc'), bytes('de')]), { contentLength: 4 }),
      'INVALID_ARGUMENT',
    );
    await expect(
      store.put('broken.bin', streamOf([bytes('ab')], new Error('the source broke')), {
        contentLength: 4,
      }),
    ).rejects.toThrow('the source broke');
    expect(await allKeys()).toEqual(['known.bin']);
  });

  it('keeps the condition of a put of known length', async () => {
    const { store } = await emptyStore();
    const first = await store.put('k', streamOf([bytes('one')]), {
      contentLength: 3,
      ifNoneMatch: '*',
    });
    await expectStorageError(
      store.put('k', streamOf([bytes('two')]), { contentLength: 3, ifNoneMatch: '*' }),
      'PRECONDITION_FAILED',
    );
    await expectStorageError(
      store.put('k', streamOf([bytes('two')]), { contentLength: 3, ifMatch: 'stale' }),
      'PRECONDITION_FAILED',
    );
    const second = await store.put('k', streamOf([bytes('two')]), {
      contentLength: 3,
      ifMatch: first.etag,
    });
    expect((await store.head('k'))?.etag).toBe(second.etag);
  });

  it('uploads a stream of unknown length in parts, as a multipart object', async () => {
    const { store } = await emptyStore();
    const store5 = new R2BlobStore(bucket, { partSize: 5 * MiB });
    const size = 11 * MiB + 1;
    const info = await store5.put('parts.bin', patternStream(6, size));
    expect(info.size).toBe(size);
    expect(info.etag).toMatch(/-3$/); // 5 + 5 + 1 MiB
    const result = await store.get('parts.bin', { range: { offset: 5 * MiB - 2, length: 4 } });
    if (result.notModified) throw new Error('expected a body');
    expect(await expectPattern(result.body, 6, 5 * MiB - 2)).toBe(4);
  });

  it('stages a conditional upload of unknown length, and leaves no staging object behind', async () => {
    const store = new R2BlobStore(bucket, { partSize: 5 * MiB });
    await emptyStore();
    const size = 10 * MiB + 7;
    const created = await store.put('once.bin', patternStream(7, size), { ifNoneMatch: '*' });
    expect(created.size).toBe(size);
    expect(await allKeys()).toEqual(['once.bin']);
    // Refused up front when the condition already fails: nothing is uploaded, or left.
    await expectStorageError(
      store.put('once.bin', patternStream(8, size), { ifNoneMatch: '*' }),
      'PRECONDITION_FAILED',
    );
    // Refused at the final put when another writer got there while the parts went up.
    await expectRacedConditionsRefused(store, {
      key: 'once.bin',
      etag: created.etag,
      newKey: 'new.bin',
      size,
      seeds: [9, 10],
    });
    await store.delete('new.bin');
    expect(await allKeys()).toEqual(['once.bin']);
  });

  it('hides staging objects from list', async () => {
    const { store } = await emptyStore();
    await bucket.put('\\cairn-staging\\left-over', new TextEncoder().encode('x'));
    await store.put('a', bytes('a'));
    expect((await store.list({ prefix: '' })).objects.map((o) => o.key)).toEqual(['a']);
  });

  it('copies by streaming the source into one put: a multipart source becomes a plain object', async () => {
    const { store } = await emptyStore();
    const store5 = new R2BlobStore(bucket, { partSize: 5 * MiB });
    const size = 11 * MiB + 1;
    const source = await store5.put('parts.bin', patternStream(6, size));
    expect(source.etag).toMatch(/-3$/);
    const copied = await store.copy('parts.bin', 'copy.bin', {
      sourceIfMatch: source.etag,
      ifNoneMatch: '*',
    });
    expect(copied.etag).toMatch(/^[0-9a-f]{32}$/);
    expect(copied.size).toBe(size);
    const result = await store.get('copy.bin');
    if (result.notModified) throw new Error('expected a body');
    expect(await expectPattern(result.body, 6)).toBe(size);
  });

  it("refuses a create-only copy when the destination appears after the early check, in R2's put", async () => {
    await emptyStore();
    let raced = false;
    const racing: R2BucketLike = {
      head: (key) => bucket.head(key),
      get: (key, options) => bucket.get(key, options),
      put: async (key, value, options) => {
        if (!raced && key === 'dst') {
          raced = true;
          await bucket.put('dst', new TextEncoder().encode('created meanwhile'));
        }
        return bucket.put(key, value, options);
      },
      delete: (key) => bucket.delete(key),
      list: (options) => bucket.list(options),
      createMultipartUpload: (key, options) => bucket.createMultipartUpload(key, options),
    };
    const store = new R2BlobStore(racing);
    await store.put('src', bytes('source'));
    await expectStorageError(store.copy('src', 'dst', { ifNoneMatch: '*' }), 'PRECONDITION_FAILED');
    expect(raced).toBe(true);
    const result = await store.get('dst');
    if (result.notModified) throw new Error('expected a body');
    expect(await readText(result.body)).toBe('created meanwhile');
    expect(await allKeys()).toEqual(['dst', 'src']);
  });
});
