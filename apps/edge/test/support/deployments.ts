/**
 * The edge deployed the ways it ships, for tests that speak HTTP to it:
 *
 *   workerd-r2  the Worker bundle (dist-worker/, what `wrangler deploy` uploads) in Miniflare,
 *               on an R2 binding
 *   workerd-s3  the same bundle with CAIRN_STORAGE=s3, on a fresh bucket of a real MinIO
 *   node-fs     startEdge (src/node.ts) on a filesystem store in a temporary directory
 *   node-s3     startEdge on S3BlobStore, on a fresh bucket of a real MinIO
 *
 * Each gives the store as the test process sees it, so a test can seed objects, delete them,
 * or prove one is there while the edge refuses to serve it.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BlobStore } from '@cairn/storage/blob-store';
import { FsBlobStore } from '@cairn/storage/fs-store';
import { R2BlobStore, type R2BucketLike } from '@cairn/storage/r2-store';
import { S3BlobStore } from '@cairn/storage/s3-store';
// For its declaration of what `inject('minio')` gives.
import type {} from '@cairn/storage/testing/minio-global-setup';
import {
  createBucket,
  removeBucket,
  uniqueBucketName,
  type MinioConnection,
} from '@cairn/storage/testing/minio';
import { Miniflare, convertV4MiniflareOptions } from 'miniflare';
import { inject } from 'vitest';
import { parseEdgeConfig } from '../../src/config.js';
import { startEdge } from '../../src/node.js';

export type DeploymentKind = 'workerd-r2' | 'workerd-s3' | 'node-fs' | 'node-s3';

export const DEPLOYMENT_KINDS: readonly DeploymentKind[] = ['workerd-r2', 'workerd-s3', 'node-fs'];

export interface Deployment {
  readonly kind: DeploymentKind;
  /** `http://127.0.0.1:port`, without a trailing slash. */
  readonly url: string;
  /** The edge's storage, seen from the test process. */
  readonly store: BlobStore;
  /** The Worker runs in workerd: the Cache API is in front of storage. */
  readonly workerd: boolean;
  /** What the edge logged (workerd: its structured logs; Node: its JSON lines). */
  readonly logs: string[];
  close(): Promise<void>;
}

export interface DeploymentOptions {
  /** CAIRN_* variables: Worker bindings, or parseEdgeConfig's input on Node. */
  readonly vars?: Readonly<Record<string, string>> | undefined;
  /** The MinIO of the s3 kinds; default the run's (`inject('minio')`). */
  readonly minio?: MinioConnection | undefined;
}

const appDirectory = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const WORKER_SCRIPT = join(appDirectory, 'dist-worker', 'index.js');
/** The compatibility date of wrangler.jsonc. */
export const COMPATIBILITY_DATE = '2026-11-02';

let bundleChecked: Promise<void> | undefined;

/**
 * A stale bundle would test yesterday's code and pass: refuse it. The bundle's source map names
 * the edge's files it was built from; any of them changed since is a stale bundle (a new file
 * can only enter through a change to one that is in it).
 */
function checkBundle(): Promise<void> {
  bundleChecked ??= (async () => {
    let built: number;
    let sources: string[];
    try {
      built = (await stat(WORKER_SCRIPT)).mtimeMs;
      const map = JSON.parse(await readFile(`${WORKER_SCRIPT}.map`, 'utf8')) as {
        sources: string[];
      };
      sources = map.sources;
    } catch {
      throw new Error(`${WORKER_SCRIPT} is missing: run \`npm run build -w @cairn/edge\` first`);
    }
    const sourceDirectory = join(appDirectory, 'src');
    for (const source of sources) {
      const path = resolve(dirname(WORKER_SCRIPT), source);
      if (!path.startsWith(`${sourceDirectory}/`)) continue;
      const changed = await stat(path).then(
        (info) => info.mtimeMs > built,
        () => true,
      );
      if (changed) {
        throw new Error(
          `${WORKER_SCRIPT} is older than ${path}: run \`npm run build -w @cairn/edge\``,
        );
      }
    }
  })();
  return bundleChecked;
}

async function startWorker(
  kind: 'workerd-r2' | 'workerd-s3',
  bindings: Record<string, string>,
  logs: string[],
): Promise<{ url: string; mf: Miniflare }> {
  await checkBundle();
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      handleStructuredLogs: (log) => {
        logs.push(typeof log === 'string' ? log : JSON.stringify(log));
      },
      workers: [
        {
          name: `edge-${kind}`,
          modules: true,
          scriptPath: WORKER_SCRIPT,
          compatibilityDate: COMPATIBILITY_DATE,
          r2Buckets: ['BUCKET'],
          bindings,
        },
      ],
    }),
  );
  const url = await mf.ready;
  return { url: url.href.replace(/\/$/, ''), mf };
}

export async function startDeployment(
  kind: DeploymentKind,
  options: DeploymentOptions = {},
): Promise<Deployment> {
  const vars = options.vars ?? {};
  const logs: string[] = [];
  /** A fresh bucket on MinIO, and the S3BlobStore the test process sees it through. */
  const s3Bucket = async () => {
    const connection = options.minio ?? inject('minio');
    const bucket = uniqueBucketName('edge');
    await createBucket(connection, bucket);
    const store = new S3BlobStore({
      bucket,
      endpoint: connection.endpoint,
      region: connection.region,
      credentials: {
        accessKeyId: connection.accessKeyId,
        secretAccessKey: connection.secretAccessKey,
      },
      // The edge's own deadline is what is under test; the SDK's must not come first.
      operationTimeoutMs: 120_000,
      maxAttempts: 1,
    });
    return {
      connection,
      bucket,
      store,
      remove: async () => {
        store.client.destroy();
        // A halted or stopped MinIO has nothing left to clean.
        await removeBucket(connection, bucket).catch(() => undefined);
      },
    };
  };
  /** startEdge on `store`; closing it stops the edge, then runs `cleanup`. */
  const nodeEdge = async (
    nodeKind: 'node-fs' | 'node-s3',
    store: BlobStore,
    cleanup: () => Promise<void>,
  ): Promise<Deployment> => {
    const edge = await startEdge({
      config: parseEdgeConfig(vars),
      store,
      log: (entry) => logs.push(JSON.stringify(entry)),
    });
    return {
      kind: nodeKind,
      url: edge.url,
      store,
      workerd: false,
      logs,
      async close() {
        await edge.close();
        await cleanup();
      },
    };
  };

  switch (kind) {
    case 'workerd-r2': {
      const { url, mf } = await startWorker(kind, { CAIRN_STORAGE: 'r2', ...vars }, logs);
      const bucket = (await mf.getR2Bucket('BUCKET')) as unknown as R2BucketLike;
      return {
        kind,
        url,
        store: new R2BlobStore(bucket),
        workerd: true,
        logs,
        close: () => mf.dispose(),
      };
    }
    case 'workerd-s3': {
      const { connection, bucket, store, remove } = await s3Bucket();
      const { url, mf } = await startWorker(
        kind,
        {
          CAIRN_STORAGE: 's3',
          CAIRN_S3_ENDPOINT: connection.endpoint,
          CAIRN_S3_BUCKET: bucket,
          CAIRN_S3_REGION: connection.region,
          CAIRN_S3_ACCESS_KEY_ID: connection.accessKeyId,
          CAIRN_S3_SECRET_ACCESS_KEY: connection.secretAccessKey,
          ...vars,
        },
        logs,
      );
      return {
        kind,
        url,
        store,
        workerd: true,
        logs,
        async close() {
          await mf.dispose();
          await remove();
        },
      };
    }
    case 'node-fs': {
      const directory = await mkdtemp(join(tmpdir(), 'cairn-edge-fs-'));
      return nodeEdge(kind, new FsBlobStore(directory), () =>
        rm(directory, { recursive: true, force: true }),
      );
    }
    case 'node-s3': {
      const { store, remove } = await s3Bucket();
      return nodeEdge(kind, store, remove);
    }
  }
}
