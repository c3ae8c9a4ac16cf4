import { createServer, type Server } from 'node:http';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  bytes,
  describeBlobStoreContract,
  expectPattern,
  expectStorageError,
  patternStream,
  readText,
  streamOf,
  type ContractStore,
} from './contract.js';
import { describeLargeUploadContract } from './contract-node.js';
import { StorageError } from './errors.js';
import { S3BlobStore, type S3BlobStoreOptions } from './s3-store.js';
import {
  createBucket,
  freePort,
  removeBucket,
  startMinio,
  uniqueBucketName,
  type MinioConnection,
  type MinioServer,
} from './testing/minio.js';

const minio = inject('minio');
const MiB = 1024 * 1024;

function storeOn(
  connection: MinioConnection,
  bucket: string,
  extra: Partial<S3BlobStoreOptions> = {},
): S3BlobStore {
  return new S3BlobStore({
    bucket,
    endpoint: connection.endpoint,
    region: connection.region,
    credentials: {
      accessKeyId: connection.accessKeyId,
      secretAccessKey: connection.secretAccessKey,
    },
    ...extra,
  });
}

/** A fresh bucket on the shared MinIO, removed after the test. */
async function makeMinioStore(
  extra: Partial<S3BlobStoreOptions> = {},
): Promise<ContractStore & { store: S3BlobStore }> {
  const bucket = uniqueBucketName('contract');
  await createBucket(minio, bucket);
  const store = storeOn(minio, bucket, extra);
  return {
    store,
    cleanup: async () => {
      await removeBucket(minio, bucket);
      store.destroy();
    },
  };
}

// Short timeouts for the unavailable cases, so each proves a bound well inside its test timeout.
const impatient: Partial<S3BlobStoreOptions> = {
  connectTimeoutMs: 1_000,
  idleTimeoutMs: 1_000,
  operationTimeoutMs: 3_000,
  maxAttempts: 2,
};

// A MinIO of our own, to stop and freeze without disturbing the shared one.
let own: MinioServer;
const ownBucket = 'unavailable';

beforeAll(async () => {
  own = await startMinio();
  await own.createBucket(ownBucket);
}, 120_000);

afterAll(async () => {
  await own.stop();
});

describeBlobStoreContract('s3 (MinIO)', () => makeMinioStore(), {
  // MinIO keeps `a/b` and `a/b/c` but lists only `a/b`: its disk layout nests the two.
  nestedKeys: 'untested',
  unavailable: [
    {
      name: 'nothing listening on the port',
      make: async () => {
        const store = storeOn(minio, 'bucket', {
          ...impatient,
          endpoint: `http://127.0.0.1:${await freePort()}`,
        });
        return { store, cleanup: () => Promise.resolve(store.destroy()) };
      },
    },
    {
      name: 'MinIO stopped',
      make: async () => {
        await own.halt();
        const store = storeOn(own, ownBucket, impatient);
        return { store, cleanup: () => Promise.resolve(store.destroy()) };
      },
    },
    // A frozen MinIO (SIGSTOP) is covered by the dedicated tests below. As a contract case,
    // restarted and frozen before each test, it sometimes still answered (NOT_FOUND, about one
    // full CI run in three) for a reason not yet found, so it is not run here.
  ],
});

describeLargeUploadContract('s3 (MinIO)', () => makeMinioStore());

describe('S3BlobStore on MinIO', () => {
  it('uploads a stream of unknown length as a multipart upload of 5 MiB parts', async () => {
    const { store, cleanup } = await makeMinioStore({ partSize: 5 * 1024 * 1024 });
    try {
      const size = 12 * 1024 * 1024 + 1;
      const info = await store.put('mp', patternStream(9, size));
      // S3 and MinIO give a multipart object the etag `<md5 of part md5s>-<parts>`.
      expect(info.etag).toMatch(/^[0-9a-f]{32}-3$/);
      expect(info.size).toBe(size);
      const got = await store.get('mp');
      if (got.notModified) throw new Error('expected a body');
      expect(await expectPattern(got.body, 9)).toBe(size);
    } finally {
      await cleanup?.();
    }
  });

  it('sends a small stream as one PutObject with the exact bytes', async () => {
    const { store, cleanup } = await makeMinioStore();
    try {
      const info = await store.put('small', streamOf([bytes('one '), bytes('two')]));
      expect(info.etag).toMatch(/^[0-9a-f]{32}$/);
      const got = await store.get('small');
      if (got.notModified) throw new Error('expected a body');
      expect(await readText(got.body)).toBe('one two');
    } finally {
      await cleanup?.();
    }
  });

  it('aborts the multipart upload when the body fails, leaving no parts behind', async () => {
    const bucket = uniqueBucketName('abort');
    await createBucket(minio, bucket);
    const store = storeOn(minio, bucket, { partSize: 5 * 1024 * 1024 });
    try {
      const chunks = Array.from({ length: 12 }, () => new Uint8Array(1024 * 1024));
      await expect(
        store.put('broken', streamOf(chunks, new Error('source broke'))),
      ).rejects.toThrow('source broke');
      const uploads = await store.client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      expect(uploads.Uploads ?? []).toEqual([]);
      expect(await store.head('broken')).toBeUndefined();
    } finally {
      await removeBucket(minio, bucket);
      store.destroy();
    }
  });

  it('fails a conditional streamed put before uploading when the condition already fails', async () => {
    const { store, cleanup } = await makeMinioStore();
    try {
      await store.put('exists', bytes('x'));
      let pulls = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          pulls++;
          controller.enqueue(new Uint8Array(1024 * 1024));
        },
      });
      await expectStorageError(
        store.put('exists', body, { ifNoneMatch: '*' }),
        'PRECONDITION_FAILED',
      );
      // Only what the stream buffered ahead by itself, never a part's worth.
      expect(pulls).toBeLessThanOrEqual(1);
    } finally {
      await cleanup?.();
    }
  });

  /** 12 MiB in 1 MiB chunks; `midway` runs once, after 6 MiB, while the upload is under way. */
  function streamWithInterlude(midway: () => Promise<unknown>): ReadableStream<Uint8Array> {
    let sent = 0;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent === 6) await midway();
        if (sent++ === 12) controller.close();
        else controller.enqueue(new Uint8Array(1024 * 1024).fill(sent));
      },
    });
  }

  it('carries If-None-Match: * to CompleteMultipartUpload: a key created mid-upload wins', async () => {
    const { store, cleanup } = await makeMinioStore({ partSize: 5 * 1024 * 1024 });
    try {
      const body = streamWithInterlude(() => store.put('contested', bytes('created meanwhile')));
      await expectStorageError(
        store.put('contested', body, { ifNoneMatch: '*' }),
        'PRECONDITION_FAILED',
      );
      const got = await store.get('contested');
      if (got.notModified) throw new Error('expected a body');
      expect(await readText(got.body)).toBe('created meanwhile');
      const uploads = await store.client.send(
        new ListMultipartUploadsCommand({ Bucket: store.bucket }),
      );
      expect(uploads.Uploads ?? []).toEqual([]);
    } finally {
      await cleanup?.();
    }
  });

  it('carries If-Match to CompleteMultipartUpload: a swap that lost mid-upload fails', async () => {
    const { store, cleanup } = await makeMinioStore({ partSize: 5 * 1024 * 1024 });
    try {
      const base = await store.put('cas', bytes('base'));
      const body = streamWithInterlude(() => store.put('cas', bytes('other writer')));
      await expectStorageError(
        store.put('cas', body, { ifMatch: base.etag }),
        'PRECONDITION_FAILED',
      );
      const got = await store.get('cas');
      if (got.notModified) throw new Error('expected a body');
      expect(await readText(got.body)).toBe('other writer');
    } finally {
      await cleanup?.();
    }
  });

  /** Runs `action` once, just before the store's next `commandName` request goes out. */
  function beforeNext(
    store: S3BlobStore,
    commandName: string,
    action: () => Promise<unknown>,
  ): void {
    let pending: (() => Promise<unknown>) | undefined = action;
    store.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === commandName && pending !== undefined) {
          const run = pending;
          pending = undefined;
          await run();
        }
        return next(args);
      },
      { step: 'initialize' },
    );
  }

  /** The names of the commands the store sends from now on. */
  function recordCommands(store: S3BlobStore): string[] {
    const sent: string[] = [];
    store.client.middlewareStack.add(
      (next, context) => (args) => {
        sent.push(context.commandName ?? '?');
        return next(args);
      },
      { step: 'initialize' },
    );
    return sent;
  }

  async function openUploads(store: S3BlobStore): Promise<unknown[]> {
    const uploads = await store.client.send(
      new ListMultipartUploadsCommand({ Bucket: store.bucket }),
    );
    return uploads.Uploads ?? [];
  }

  it('copies with one CopyObject up to multipartCopyThreshold, and in UploadPartCopy parts above', async () => {
    const { store, cleanup } = await makeMinioStore({
      multipartCopyThreshold: 5 * MiB,
      copyPartSize: 5 * MiB,
    });
    try {
      await store.put('small', patternStream(12, 5 * MiB));
      const size = 12 * MiB + 1;
      await store.put('large', patternStream(11, size));
      const sent = recordCommands(store);
      const small = await store.copy('small', 'small-copy');
      expect(sent).toEqual(['HeadObjectCommand', 'CopyObjectCommand']);
      expect(small.etag).toMatch(/^[0-9a-f]{32}$/);
      sent.length = 0;
      const large = await store.copy('large', 'large-copy');
      expect(sent).toEqual([
        'HeadObjectCommand',
        'CreateMultipartUploadCommand',
        'UploadPartCopyCommand',
        'UploadPartCopyCommand',
        'UploadPartCopyCommand',
        'CompleteMultipartUploadCommand',
      ]);
      expect(large.etag).toMatch(/^[0-9a-f]{32}-3$/); // 5 + 5 + 2 MiB
      expect(large.size).toBe(size);
      expect((await store.head('large-copy'))?.etag).toBe(large.etag);
      const got = await store.get('large-copy');
      if (got.notModified) throw new Error('expected a body');
      expect(await expectPattern(got.body, 11)).toBe(size);
      expect(await openUploads(store)).toEqual([]);
    } finally {
      await cleanup?.();
    }
  });

  it('copies a create-only copy as a one-part multipart upload (MinIO ignores If-None-Match on CopyObject)', async () => {
    const { store, cleanup } = await makeMinioStore();
    try {
      await store.put('src', bytes('source'));
      const sent = recordCommands(store);
      const copied = await store.copy('src', 'dst', { ifNoneMatch: '*' });
      expect(sent).toEqual([
        'HeadObjectCommand',
        'HeadObjectCommand',
        'CreateMultipartUploadCommand',
        'UploadPartCopyCommand',
        'CompleteMultipartUploadCommand',
      ]);
      expect(copied.etag).toMatch(/^[0-9a-f]{32}-1$/);
    } finally {
      await cleanup?.();
    }
  });

  it('starts a copy over when the source changes under it, unless sourceIfMatch pinned it', async () => {
    const { store, cleanup } = await makeMinioStore({
      multipartCopyThreshold: 5 * MiB,
      copyPartSize: 5 * MiB,
    });
    const other = storeOn(minio, store.bucket);
    try {
      // One CopyObject: the size reported must be that of the bytes copied.
      await store.put('small', bytes('one'));
      beforeNext(store, 'CopyObjectCommand', () => other.put('small', bytes('two!')));
      const small = await store.copy('small', 'small-copy');
      expect(small.size).toBe(4);
      expect((await store.head('small-copy'))?.size).toBe(4);

      // In parts: a part that finds a newer source fails the whole copy, which starts over.
      await store.put('large', patternStream(1, 12 * MiB));
      beforeNext(store, 'UploadPartCopyCommand', () =>
        other.put('large', patternStream(2, 11 * MiB)),
      );
      const large = await store.copy('large', 'large-copy');
      expect(large.size).toBe(11 * MiB);
      const got = await store.get('large-copy');
      if (got.notModified) throw new Error('expected a body');
      expect(await expectPattern(got.body, 2)).toBe(11 * MiB);

      // Pinned by the caller: the change fails the copy.
      const pinned = await store.head('large');
      beforeNext(store, 'UploadPartCopyCommand', () =>
        other.put('large', patternStream(3, 10 * MiB)),
      );
      await expectStorageError(
        store.copy('large', 'pinned-copy', { sourceIfMatch: pinned?.etag }),
        'PRECONDITION_FAILED',
      );
      const pinnedSmall = await store.head('small');
      beforeNext(store, 'CopyObjectCommand', () => other.put('small', bytes('three')));
      await expectStorageError(
        store.copy('small', 'pinned-small', { sourceIfMatch: pinnedSmall?.etag }),
        'PRECONDITION_FAILED',
      );
      expect(await store.head('pinned-copy')).toBeUndefined();
      expect(await store.head('pinned-small')).toBeUndefined();
      expect(await openUploads(store)).toEqual([]);
    } finally {
      other.destroy();
      await cleanup?.();
    }
  });

  it('carries If-None-Match to CompleteMultipartUpload: a destination created mid-copy wins', async () => {
    const { store, cleanup } = await makeMinioStore();
    const other = storeOn(minio, store.bucket);
    try {
      await store.put('src', bytes('source'));
      beforeNext(store, 'CompleteMultipartUploadCommand', () =>
        other.put('dst', bytes('created meanwhile')),
      );
      await expectStorageError(
        store.copy('src', 'dst', { ifNoneMatch: '*' }),
        'PRECONDITION_FAILED',
      );
      const got = await store.get('dst');
      if (got.notModified) throw new Error('expected a body');
      expect(await readText(got.body)).toBe('created meanwhile');
      expect(await openUploads(store)).toEqual([]);
    } finally {
      other.destroy();
      await cleanup?.();
    }
  });

  it('is UNAVAILABLE while MinIO is down and serves the same data once it is back', async () => {
    await own.restart();
    const store = storeOn(own, ownBucket, impatient);
    try {
      await store.put('survives', bytes('kept across restarts'));
      await own.halt();
      const started = Date.now();
      await expectStorageError(store.get('survives'), 'UNAVAILABLE');
      expect(Date.now() - started).toBeLessThan(5_000);
      await own.restart();
      const got = await store.get('survives');
      if (got.notModified) throw new Error('expected a body');
      expect(await readText(got.body)).toBe('kept across restarts');
    } finally {
      store.destroy();
    }
  }, 30_000);

  it('bounds a frozen MinIO by the operation deadline', async () => {
    await own.restart();
    const store = storeOn(own, ownBucket, { ...impatient, idleTimeoutMs: 60_000 });
    own.freeze();
    try {
      const started = Date.now();
      const error = await expectStorageError(store.head('anything'), 'UNAVAILABLE');
      const took = Date.now() - started;
      expect(took).toBeGreaterThanOrEqual(2_900);
      expect(took).toBeLessThan(6_000);
      expect(error.message).toContain('within 3000 ms');
    } finally {
      own.thaw();
      store.destroy();
    }
  }, 30_000);

  it('breaks a body off with UNAVAILABLE when MinIO freezes mid-download', async () => {
    await own.restart();
    const store = storeOn(own, ownBucket, { ...impatient, idleTimeoutMs: 1_000 });
    try {
      const size = 48 * 1024 * 1024;
      await store.put('frozen-mid-body', patternStream(3, size));
      const got = await store.get('frozen-mid-body');
      if (got.notModified) throw new Error('expected a body');
      const reader = got.body.getReader();
      await reader.read();
      own.freeze();
      const started = Date.now();
      let read = 0;
      const failure = await (async () => {
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) return undefined;
            read += value.byteLength;
          }
        } catch (e) {
          return e;
        }
      })();
      expect(failure).toBeInstanceOf(StorageError);
      expect((failure as StorageError).code).toBe('UNAVAILABLE');
      expect(read).toBeLessThan(size);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      own.thaw();
      store.destroy();
    }
  }, 30_000);

  it('refuses wrong credentials as UNAVAILABLE (HTTP 403), not as a missing object', async () => {
    const store = storeOn({ ...minio, secretAccessKey: 'not-the-secret' }, 'whatever', impatient);
    try {
      const error = await expectStorageError(store.get('k'), 'UNAVAILABLE');
      expect(error.message).toContain('HTTP 403');
      await expectStorageError(store.head('k'), 'UNAVAILABLE');
    } finally {
      store.destroy();
    }
  });

  it('reports a missing bucket as UNAVAILABLE, naming the bucket', async () => {
    const store = storeOn(minio, 'no-such-bucket-here', impatient);
    try {
      const error = await expectStorageError(store.get('k'), 'UNAVAILABLE');
      expect(error.message).toContain('no bucket no-such-bucket-here');
      await expectStorageError(store.list({ prefix: '' }), 'UNAVAILABLE');
    } finally {
      store.destroy();
    }
  });
});

describe('S3BlobStore against a failing server', () => {
  let server: Server;
  let endpoint: string;
  let requests = 0;
  let status = 503;

  beforeAll(async () => {
    server = createServer((request, response) => {
      requests++;
      request.resume();
      request.on('end', () => {
        response.writeHead(status, { 'content-type': 'application/xml' });
        response.end(
          `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${status === 503 ? 'SlowDown' : 'InternalError'}</Code><Message>m</Message></Error>`,
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    endpoint = `http://127.0.0.1:${address.port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  for (const code of [500, 503]) {
    it(`maps HTTP ${code} to UNAVAILABLE after exactly maxAttempts requests`, async () => {
      status = code;
      const store = storeOn(minio, 'b', { ...impatient, endpoint, maxAttempts: 3 });
      try {
        for (const operation of [
          () => store.get('k'),
          () => store.head('k'),
          () => store.put('k', bytes('x')),
          () => store.delete('k'),
          () => store.list({ prefix: '' }),
          () => store.copy('k', 'l'),
        ]) {
          requests = 0;
          const error = await expectStorageError(operation(), 'UNAVAILABLE');
          expect(error.message).toContain(`HTTP ${code}`);
          expect(requests).toBe(3);
        }
      } finally {
        store.destroy();
      }
    }, 30_000);
  }
});

describe('S3BlobStore copy against a server that fails inside a 200 answer', () => {
  let server: Server;
  let endpoint: string;
  let copyAnswer = '';
  const copies: string[] = [];

  beforeAll(async () => {
    // HEAD finds the source; CopyObject answers 200 at once and then an <Error>, as S3 may
    // when a copy fails after it started.
    server = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        if (request.method === 'HEAD') {
          response.writeHead(200, {
            etag: '"0123456789abcdef0123456789abcdef"',
            'content-length': '5',
            'last-modified': new Date().toUTCString(),
          });
          response.end();
          return;
        }
        copies.push(String(request.headers['x-amz-copy-source']));
        response.writeHead(200, { 'content-type': 'application/xml' });
        response.end(copyAnswer);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    endpoint = `http://127.0.0.1:${address.port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  const error = (code: string) =>
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>m</Message></Error>`;

  it('maps an InternalError inside a 200 to UNAVAILABLE', async () => {
    copyAnswer = error('InternalError');
    copies.length = 0;
    const store = storeOn(minio, 'b', { ...impatient, endpoint, maxAttempts: 1 });
    try {
      await expectStorageError(store.copy('a b/ü+%.bin', 'dst'), 'UNAVAILABLE');
      expect(copies).toEqual(['b/a%20b/%C3%BC%2B%25.bin']);
    } finally {
      store.destroy();
    }
  });

  it('maps a PreconditionFailed inside a 200 to a changed source', async () => {
    copyAnswer = error('PreconditionFailed');
    const store = storeOn(minio, 'b', { ...impatient, endpoint, maxAttempts: 1 });
    try {
      await expectStorageError(
        store.copy('src', 'dst', { sourceIfMatch: '0123456789abcdef0123456789abcdef' }),
        'PRECONDITION_FAILED',
      );
      copies.length = 0;
      const error = await expectStorageError(store.copy('src', 'dst'), 'UNAVAILABLE');
      expect(error.message).toContain('kept changing');
      expect(copies).toHaveLength(3);
    } finally {
      store.destroy();
    }
  });
});
