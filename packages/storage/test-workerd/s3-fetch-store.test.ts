/**
 * The aws4fetch adapter inside workerd against the run's real MinIO (started in Node by the
 * globalSetup and reached over 127.0.0.1): the contract, then what only this adapter does.
 *
 * The contract's 1 GB upload with bounded memory is in the Node suite (contract-node.ts):
 * workerd gives a test no way to read its isolate's memory, so here the same multipart code is
 * held to exact bytes and to its part-size bound by the smaller streamed uploads instead.
 */
import { describe, expect, inject, it } from 'vitest';

import {
  bytes,
  describeBlobStoreContract,
  expectPattern,
  expectStorageError,
  patternStream,
  readText,
  streamOf,
} from '../src/contract.js';
import { S3FetchBlobStore } from '../src/s3-fetch-store.js';
import { createBucket, removeBucket, uniqueBucketName } from './minio-buckets.js';
import { expectRacedConditionsRefused } from './racing-writer.js';

const minio = inject('minio');
const MiB = 1024 * 1024;

async function freshStore(
  options: Partial<ConstructorParameters<typeof S3FetchBlobStore>[0]> = {},
): Promise<{ store: S3FetchBlobStore; cleanup: () => Promise<void> }> {
  const bucket = uniqueBucketName();
  await createBucket(minio, bucket);
  return {
    store: new S3FetchBlobStore({ ...minio, bucket, ...options }),
    cleanup: () => removeBucket(minio, bucket),
  };
}

/** A store whose every request goes to `fetch` instead of MinIO. */
function storeAnswering(fetch: (request: Request) => Promise<Response>): S3FetchBlobStore {
  return new S3FetchBlobStore({ ...minio, bucket: 'nowhere', fetch, timeoutMs: 500 });
}

/** A fetch that never answers, as a server that accepted the connection and froze. */
function neverAnswers(request: Request): Promise<Response> {
  return new Promise((_, reject) => {
    request.signal.addEventListener('abort', () => reject(request.signal.reason as Error));
  });
}

describeBlobStoreContract('aws4fetch to MinIO, in workerd', () => freshStore(), {
  // MinIO stores `a/b` and `a/b/c` side by side but never lists `a/b/c`.
  nestedKeys: 'untested',
  unavailable: [
    {
      name: 'nothing listens on the port',
      make: () =>
        Promise.resolve({
          store: new S3FetchBlobStore({
            ...minio,
            endpoint: 'http://127.0.0.1:1',
            bucket: 'nowhere',
          }),
        }),
    },
    {
      name: 'the server never answers',
      make: () => Promise.resolve({ store: storeAnswering(neverAnswers) }),
    },
    {
      name: 'the server answers 503',
      make: () =>
        Promise.resolve({
          store: storeAnswering(() =>
            Promise.resolve(new Response('<Error><Code>SlowDown</Code></Error>', { status: 503 })),
          ),
        }),
    },
  ],
  unavailableTimeoutMs: 10_000,
});

describe('S3FetchBlobStore, in workerd', () => {
  it('gives up on a body that stalls, with UNAVAILABLE, within its timeout', async () => {
    const store = storeAnswering(() =>
      Promise.resolve(
        new Response(
          new ReadableStream<Uint8Array>({
            start(controller) {
              controller.enqueue(bytes('first bytes'));
              // ... and then nothing, ever.
            },
          }),
          {
            status: 200,
            headers: {
              etag: '"e"',
              'last-modified': new Date().toUTCString(),
              'content-length': '100',
            },
          },
        ),
      ),
    );
    const result = await store.get('k');
    if (result.notModified) throw new Error('expected a body');
    const started = Date.now();
    await expectStorageError(readText(result.body), 'UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('answers UNAVAILABLE, not NOT_FOUND, when the bucket does not exist', async () => {
    const store = new S3FetchBlobStore({ ...minio, bucket: uniqueBucketName('missing') });
    const error = await expectStorageError(store.get('k'), 'UNAVAILABLE');
    expect(error.message).toContain('NoSuchBucket');
    await expectStorageError(store.list({ prefix: '' }), 'UNAVAILABLE');
    await expectStorageError(store.put('k', bytes('x')), 'UNAVAILABLE');
  });

  it('answers UNAVAILABLE for credentials the store refuses', async () => {
    const { cleanup } = await freshStore();
    try {
      const store = new S3FetchBlobStore({ ...minio, bucket: 'nowhere', secretAccessKey: 'wrong' });
      const error = await expectStorageError(store.head('k'), 'UNAVAILABLE');
      expect(error.message).toContain('403');
      await expectStorageError(store.get('k'), 'UNAVAILABLE');
    } finally {
      await cleanup();
    }
  });

  it('uploads a stream of known length in parts that grow with it, and checks the length', async () => {
    const { store, cleanup } = await freshStore({ partSize: 5 * MiB });
    try {
      const size = 11 * MiB + 3;
      const info = await store.put('known.bin', patternStream(9, size), { contentLength: size });
      expect(info.size).toBe(size);
      expect(info.etag).toMatch(/-3$/); // three parts: 5 + 5 + 1 MiB
      const result = await store.get('known.bin');
      if (result.notModified) throw new Error('expected a body');
      expect(await expectPattern(result.body, 9)).toBe(size);

      await expectStorageError(
        store.put('short.bin', patternStream(9, size - 1), { contentLength: size }),
        'INVALID_ARGUMENT',
      );
      await expectStorageError(
        store.put('long.bin', patternStream(9, size + 1), { contentLength: size }),
        'INVALID_ARGUMENT',
      );
      await expectStorageError(
        store.put('tiny.bin', streamOf([bytes('abc')]), { contentLength: 2 }),
        'INVALID_ARGUMENT',
      );
      expect((await store.list({ prefix: '' })).objects.map((o) => o.key)).toEqual(['known.bin']);
    } finally {
      await cleanup();
    }
  });

  it('carries the condition to CompleteMultipartUpload: a write that lands meanwhile wins', async () => {
    const { store, cleanup } = await freshStore({ partSize: 5 * MiB });
    try {
      const size = 10 * MiB + 7;
      const created = await store.put('cas.bin', patternStream(1, size), { ifNoneMatch: '*' });
      await expectRacedConditionsRefused(store, {
        key: 'cas.bin',
        etag: created.etag,
        newKey: 'new.bin',
        size,
        seeds: [2, 3],
      });
    } finally {
      await cleanup();
    }
  });

  it('leaves no multipart upload behind when the body fails after the first parts', async () => {
    const { store, cleanup } = await freshStore({ partSize: 5 * MiB });
    try {
      const source = patternStream(3, 12 * MiB).getReader();
      let sent = 0;
      const failing = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const { done, value } = await source.read();
          if (done || sent > 11 * MiB) {
            controller.error(new Error('the source broke'));
            return;
          }
          sent += value.length;
          controller.enqueue(value);
        },
      });
      await expect(store.put('broken.bin', failing)).rejects.toThrow('the source broke');
      expect(await store.head('broken.bin')).toBeUndefined();
    } finally {
      await cleanup();
    }
  });
});
