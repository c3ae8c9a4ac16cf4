// The origin the publish benchmark pushes to: a fresh repository on its own MinIO bucket, served
// on 127.0.0.1 from a worker thread. The origin gets its own event loop, as it would in its own
// process, so the publisher's hashing and sending on the main thread do not share one with it.
// Every call the origin makes to storage is recorded, for the report's account of where the
// time went. The wiring is the few lines of apps/origin/test/support/origin-fixture.ts it needs.
import { parentPort, workerData } from 'node:worker_threads';
import { initRepository } from '@cairn/origin/admin';
import { DEFAULT_POLICY } from '@cairn/origin/config';
import type { Policy } from '@cairn/origin/context';
import { createLogger } from '@cairn/origin/log';
import { serveOrigin } from '@cairn/origin/server';
import { OriginService } from '@cairn/origin/service';
import type {
  BlobStore,
  CopyOptions,
  GetOptions,
  GetResult,
  ListOptions,
  ListPage,
  ObjectInfo,
  PutBody,
  PutOptions,
} from '@cairn/storage/blob-store';
import { S3BlobStore } from '@cairn/storage/s3-store';
import {
  createBucket,
  removeBucket,
  uniqueBucketName,
  type MinioConnection,
} from '@cairn/storage/testing/minio';
import { Ed25519Signer } from '@cairn/verify/signer';

export interface OriginRequest {
  readonly connection: MinioConnection;
  /** 32-byte ed25519 secret keys; the publishers' are also used on the main thread. */
  readonly secrets: {
    readonly root: readonly Uint8Array[];
    readonly publishers: readonly Uint8Array[];
    readonly snapshot: Uint8Array;
    readonly timestamp: Uint8Array;
  };
  /** `none`: no deltas at all (a diagnostic); `default`: DEFAULT_POLICY, deltas from 3 versions. */
  readonly deltas: 'default' | 'none';
}

export interface StoreCall {
  readonly op: 'get' | 'head' | 'put' | 'copy' | 'delete' | 'list';
  readonly key: string;
  /** Epoch milliseconds (performance.timeOrigin + now()), comparable across threads. */
  readonly start: number;
  end: number;
}

export type OriginMessage =
  | { readonly type: 'ready'; readonly url: string; readonly bucket: string }
  | { readonly type: 'calls'; readonly calls: readonly StoreCall[] }
  | { readonly type: 'closed' };

export type OriginCommand = { readonly type: 'take-calls' } | { readonly type: 'close' };

/** Wall-clock milliseconds with sub-millisecond resolution, the same in every thread. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** A BlobStore that times every call it passes on; a get lasts until its body has been read. */
class RecordingStore implements BlobStore {
  readonly calls: StoreCall[] = [];
  readonly #inner: BlobStore;

  constructor(inner: BlobStore) {
    this.#inner = inner;
  }

  #begin(op: StoreCall['op'], key: string): StoreCall {
    const call: StoreCall = { op, key, start: epochMs(), end: Number.NaN };
    this.calls.push(call);
    return call;
  }

  async #timed<T>(op: StoreCall['op'], key: string, run: () => Promise<T>): Promise<T> {
    const call = this.#begin(op, key);
    try {
      return await run();
    } finally {
      call.end = epochMs();
    }
  }

  async get(key: string, options?: GetOptions): Promise<GetResult> {
    const call = this.#begin('get', key);
    let result: GetResult;
    try {
      result = await this.#inner.get(key, options);
    } catch (error) {
      call.end = epochMs();
      throw error;
    }
    if (result.notModified) {
      call.end = epochMs();
      return result;
    }
    // Passing chunks through one more TransformStream costs a little on 100 MB reads; the
    // benchmark runs with it on both sides of every comparison that involves the origin.
    const body = result.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        flush() {
          call.end = epochMs();
        },
      }),
    );
    return { ...result, body };
  }

  head(key: string): Promise<ObjectInfo | undefined> {
    return this.#timed('head', key, () => this.#inner.head(key));
  }

  put(key: string, body: PutBody, options?: PutOptions): Promise<ObjectInfo> {
    return this.#timed('put', key, () => this.#inner.put(key, body, options));
  }

  copy(from: string, to: string, options?: CopyOptions): Promise<ObjectInfo> {
    return this.#timed('copy', to, () => this.#inner.copy(from, to, options));
  }

  delete(key: string): Promise<void> {
    return this.#timed('delete', key, () => this.#inner.delete(key));
  }

  list(options: ListOptions): Promise<ListPage> {
    return this.#timed('list', options.prefix, () => this.#inner.list(options));
  }
}

async function main(port: NonNullable<typeof parentPort>): Promise<void> {
  const request = workerData as OriginRequest;
  const { connection, secrets } = request;
  const signer = (secret: Uint8Array) => Ed25519Signer.fromSecretKey(secret);
  const root = await Promise.all(secrets.root.map(signer));
  const publishers = await Promise.all(secrets.publishers.map(signer));
  const snapshot = await signer(secrets.snapshot);
  const timestamp = await signer(secrets.timestamp);
  // Publications append to the transparency log as real origins do.
  const log = await Ed25519Signer.generate();
  const ref = (s: Ed25519Signer) => ({ keyid: s.keyid, key: s.publicKey });

  const bucket = uniqueBucketName('bench-origin');
  await createBucket(connection, bucket);
  const s3 = new S3BlobStore({
    bucket,
    endpoint: connection.endpoint,
    region: connection.region,
    credentials: {
      accessKeyId: connection.accessKeyId,
      secretAccessKey: connection.secretAccessKey,
    },
  });
  const store = new RecordingStore(s3);
  const policy: Policy =
    request.deltas === 'none'
      ? { ...DEFAULT_POLICY, deltas: { ...DEFAULT_POLICY.deltas, pastVersions: 0 } }
      : DEFAULT_POLICY;
  await initRepository(store, {
    rootSigners: root,
    rootThreshold: 2,
    publishers: publishers.map(ref),
    targetsThreshold: 2,
    snapshotKey: ref(snapshot),
    timestampKey: ref(timestamp),
    rootExpiry: policy.expiry.root,
    now: new Date(),
    log: { name: 'bench.cairn.invalid/log', key: log },
  });
  const service = new OriginService({
    store,
    online: { snapshot: [snapshot], timestamp: [timestamp] },
    logKey: log,
    policy,
    authWindowMs: 300_000,
    logger: createLogger({ write: () => undefined }),
  });
  const running = await serveOrigin(service, { host: '127.0.0.1', port: 0 });

  port.on('message', (command: OriginCommand) => {
    switch (command.type) {
      case 'take-calls':
        port.postMessage({
          type: 'calls',
          calls: store.calls.splice(0),
        } satisfies OriginMessage);
        break;
      case 'close':
        void (async () => {
          await running.close();
          s3.destroy();
          await removeBucket(connection, bucket);
          port.postMessage({ type: 'closed' } satisfies OriginMessage);
          port.close();
        })();
        break;
    }
  });
  port.postMessage({ type: 'ready', url: running.url, bucket } satisfies OriginMessage);
}

if (parentPort !== null) await main(parentPort);
