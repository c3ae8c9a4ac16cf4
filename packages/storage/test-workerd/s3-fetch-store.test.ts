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

  /**
   * A fetch to MinIO that runs `action` once, before the first request `matches` picks, and
   * records every request as `METHOD query` (with ` copy` for a copy).
   */
  function interceptingFetch(
    matches: (request: Request) => boolean = () => false,
    action: () => Promise<unknown> = () => Promise.resolve(),
  ): { fetch: (request: Request) => Promise<Response>; sent: string[] } {
    const sent: string[] = [];
    let pending: (() => Promise<unknown>) | undefined = action;
    return {
      sent,
      fetch: async (request) => {
        const url = new URL(request.url);
        const query = [...url.searchParams.keys()].join('&');
        const copying = request.headers.has('x-amz-copy-source') ? 'copy' : '';
        sent.push([request.method, query, copying].filter((word) => word !== '').join(' '));
        if (pending !== undefined && matches(request)) {
          const run = pending;
          pending = undefined;
          await run();
        }
        return fetch(request);
      },
    };
  }

  const isComplete = (request: Request): boolean =>
    request.method === 'POST' && new URL(request.url).searchParams.has('uploadId');

  it('copies with one CopyObject up to multipartCopyThreshold, and in UploadPartCopy parts above', async () => {
    const recorder = interceptingFetch();
    const { store, cleanup } = await freshStore({
      multipartCopyThreshold: 5 * MiB,
      copyPartSize: 5 * MiB,
      fetch: recorder.fetch,
    });
    try {
      await store.put('small', patternStream(12, 5 * MiB), { contentLength: 5 * MiB });
      const size = 12 * MiB + 1;
      await store.put('large', patternStream(11, size));
      recorder.sent.length = 0;
      const small = await store.copy('small', 'small-copy');
      expect(recorder.sent).toEqual(['HEAD', 'PUT copy']);
      expect(small.etag).toMatch(/^[0-9a-f]{32}$/);
      recorder.sent.length = 0;
      const large = await store.copy('large', 'large-copy');
      expect(recorder.sent).toEqual([
        'HEAD',
        'POST uploads',
        'PUT partNumber&uploadId copy',
        'PUT partNumber&uploadId copy',
        'PUT partNumber&uploadId copy',
        'POST uploadId',
      ]);
      expect(large.etag).toMatch(/^[0-9a-f]{32}-3$/); // 5 + 5 + 2 MiB
      expect(large.size).toBe(size);
      expect((await store.head('large-copy'))?.etag).toBe(large.etag);
      const result = await store.get('large-copy');
      if (result.notModified) throw new Error('expected a body');
      expect(await expectPattern(result.body, 11)).toBe(size);
    } finally {
      await cleanup();
    }
  });

  it('starts a copy over when the source changes under it, unless sourceIfMatch pinned it', async () => {
    let interlude: (() => Promise<unknown>) | undefined;
    const { store, cleanup } = await freshStore({
      multipartCopyThreshold: 5 * MiB,
      copyPartSize: 5 * MiB,
      fetch: async (request) => {
        if (interlude !== undefined && request.headers.has('x-amz-copy-source')) {
          const run = interlude;
          interlude = undefined;
          await run();
        }
        return fetch(request);
      },
    });
    try {
      // One CopyObject: the size reported must be that of the bytes copied.
      await store.put('small', bytes('one'));
      interlude = () => store.put('small', bytes('two!'));
      const small = await store.copy('small', 'small-copy');
      expect(small.size).toBe(4);
      expect(await readText(await bodyOf(store, 'small-copy'))).toBe('two!');

      // In parts: a part that finds a newer source fails the whole copy, which starts over.
      await store.put('large', patternStream(1, 12 * MiB));
      interlude = () => store.put('large', patternStream(2, 11 * MiB));
      const large = await store.copy('large', 'large-copy');
      expect(large.size).toBe(11 * MiB);
      expect(await expectPattern(await bodyOf(store, 'large-copy'), 2)).toBe(11 * MiB);

      // Pinned by the caller: the change fails the copy.
      const pinned = await store.head('large');
      interlude = () => store.put('large', patternStream(3, 10 * MiB));
      await expectStorageError(
        store.copy('large', 'pinned-copy', { sourceIfMatch: pinned?.etag }),
        'PRECONDITION_FAILED',
      );
      expect(await store.head('pinned-copy')).toBeUndefined();
    } finally {
      await cleanup();
    }
  });

  it('carries If-None-Match to CompleteMultipartUpload: a destination created mid-copy wins', async () => {
    // The other writer is the store itself, made below; its put is not a CompleteMultipartUpload.
    const made: { store?: S3FetchBlobStore } = {};
    const intercepting = interceptingFetch(isComplete, async () => {
      await made.store?.put('dst', bytes('created meanwhile'));
    });
    const { store, cleanup } = await freshStore({ fetch: intercepting.fetch });
    made.store = store;
    try {
      await store.put('src', bytes('source'));
      intercepting.sent.length = 0;
      await expectStorageError(
        store.copy('src', 'dst', { ifNoneMatch: '*' }),
        'PRECONDITION_FAILED',
      );
      // HEAD source, HEAD destination, create, copy the part, (the other put), complete, abort.
      expect(intercepting.sent).toEqual([
        'HEAD',
        'HEAD',
        'POST uploads',
        'PUT partNumber&uploadId copy',
        'POST uploadId',
        'PUT',
        'DELETE uploadId',
      ]);
      expect(await readText(await bodyOf(store, 'dst'))).toBe('created meanwhile');
    } finally {
      await cleanup();
    }
  });

  it('reads a failure inside a 200 answer to a copy, and sends the source key percent-encoded', async () => {
    const copySources: string[] = [];
    let copyAnswer = '';
    const store = storeAnswering((request) => {
      if (request.method === 'HEAD') {
        return Promise.resolve(
          new Response(null, {
            status: 200,
            headers: {
              etag: '"0123456789abcdef0123456789abcdef"',
              'content-length': '5',
              'last-modified': new Date().toUTCString(),
            },
          }),
        );
      }
      copySources.push(request.headers.get('x-amz-copy-source') ?? '');
      return Promise.resolve(new Response(copyAnswer, { status: 200 }));
    });
    const error = (code: string) => `<Error><Code>${code}</Code><Message>m</Message></Error>`;

    copyAnswer = error('InternalError');
    const internal = await expectStorageError(store.copy("a b/ü+%!'.bin", 'dst'), 'UNAVAILABLE');
    expect(internal.message).toContain('InternalError');
    expect(copySources).toEqual(['nowhere/a%20b/%C3%BC%2B%25%21%27.bin']);

    copyAnswer = error('PreconditionFailed');
    await expectStorageError(
      store.copy('src', 'dst', { sourceIfMatch: '0123456789abcdef0123456789abcdef' }),
      'PRECONDITION_FAILED',
    );
    copySources.length = 0;
    const changing = await expectStorageError(store.copy('src', 'dst'), 'UNAVAILABLE');
    expect(changing.message).toContain('kept changing');
    expect(copySources).toHaveLength(3);

    copyAnswer = error('NoSuchKey');
    await expectStorageError(store.copy('src', 'dst'), 'NOT_FOUND');

    copyAnswer =
      '<CopyObjectResult><LastModified>2026-11-23T01:43:40.629Z</LastModified>' +
      '<ETag>&#34;fedcba9876543210fedcba9876543210&#34;</ETag></CopyObjectResult>';
    const copied = await store.copy('src', 'dst');
    expect(copied).toEqual({
      key: 'dst',
      size: 5,
      etag: 'fedcba9876543210fedcba9876543210',
      lastModified: new Date('2026-11-23T01:43:40.629Z'),
    });
  });

  it('refuses copy settings outside what S3 allows', () => {
    for (const options of [
      { multipartCopyThreshold: 5 * 1024 * MiB + 1 },
      { multipartCopyThreshold: -1 },
      { copyPartSize: 5 * MiB - 1 },
      { copyPartSize: 5 * 1024 * MiB + 1 },
      { copyPartSize: 1.5 * MiB * 10 + 0.5 },
    ]) {
      expect(() => new S3FetchBlobStore({ ...minio, bucket: 'nowhere', ...options })).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    }
  });
});

async function bodyOf(store: S3FetchBlobStore, key: string): Promise<ReadableStream<Uint8Array>> {
  const result = await store.get(key);
  if (result.notModified) throw new Error('expected a body');
  return result.body;
}
