/**
 * The edge as a Cloudflare Worker: storage from the R2 binding or S3 through aws4fetch, the
 * Workers Cache API for immutable objects, and the Cron Trigger that runs a sync mirror's job.
 */
import type { BlobStore } from '@cairn/storage/blob-store';
import { R2BlobStore, type R2BucketLike } from '@cairn/storage/r2-store';
import { S3FetchBlobStore } from '@cairn/storage/s3-fetch-store';
import { webHashPort } from '@cairn/verify/hash';
import { createEdgeApp, type ImmutableCache } from '../app.js';
import { parseEdgeConfig, type EdgeConfig } from '../config.js';
import { EdgeError } from '../errors.js';
import { EdgeMetrics } from '../metrics.js';
import { createSource } from '../mode.js';
import { syncMirror, type SyncReport } from '../sync.js';

/**
 * Secrets are not in wrangler.jsonc (`wrangler secret put NAME`), so `wrangler types` cannot
 * see them; they are declared here.
 */
interface Secrets {
  readonly CAIRN_S3_ACCESS_KEY_ID?: string;
  readonly CAIRN_S3_SECRET_ACCESS_KEY?: string;
}
type WorkerEnv = Env & Secrets;

interface Edge {
  readonly config: EdgeConfig;
  readonly store: BlobStore;
  readonly app: ReturnType<typeof createEdgeApp>;
}

/** Built once per isolate: verified metadata, the rate limiter and metrics live as long as it. */
let edge: Edge | undefined;

function storeFrom(env: WorkerEnv, config: EdgeConfig): BlobStore {
  const kind = env.CAIRN_STORAGE;
  if (kind === 'r2') {
    return new R2BlobStore(env.BUCKET as unknown as R2BucketLike);
  }
  if (kind === 's3') {
    const missing = (
      [
        'CAIRN_S3_ENDPOINT',
        'CAIRN_S3_BUCKET',
        'CAIRN_S3_ACCESS_KEY_ID',
        'CAIRN_S3_SECRET_ACCESS_KEY',
      ] as const
    ).filter((name) => (env[name] ?? '') === '');
    if (missing.length > 0) {
      throw new EdgeError(
        'CONFIG_INVALID',
        `CAIRN_STORAGE is s3, but ${missing.join(', ')} not set`,
      );
    }
    return new S3FetchBlobStore({
      endpoint: env.CAIRN_S3_ENDPOINT,
      bucket: env.CAIRN_S3_BUCKET,
      region: env.CAIRN_S3_REGION === '' ? undefined : env.CAIRN_S3_REGION,
      accessKeyId: env.CAIRN_S3_ACCESS_KEY_ID ?? '',
      secretAccessKey: env.CAIRN_S3_SECRET_ACCESS_KEY ?? '',
      timeoutMs: config.storageTimeoutMs,
    });
  }
  throw new EdgeError(
    'CONFIG_INVALID',
    `CAIRN_STORAGE must be r2 or s3, received '${String(kind)}'`,
  );
}

function edgeFor(env: WorkerEnv): Edge {
  if (edge !== undefined) return edge;
  const vars = env as unknown as Record<string, string | undefined>;
  const config = parseEdgeConfig(vars);
  const store = storeFrom(env, config);
  const metrics = new EdgeMetrics();
  const source = createSource({ config, store, hash: webHashPort, metrics });
  const cache: ImmutableCache = {
    match: (url) => caches.default.match(url),
    put: (url, response) => caches.default.put(url, response),
  };
  edge = { config, store, app: createEdgeApp({ config, source, cache, metrics }) };
  return edge;
}

export default {
  fetch(request, env, ctx) {
    try {
      return edgeFor(env).app.fetch(request, env, ctx);
    } catch (error) {
      // A configuration error: say so on every request rather than fail silently.
      const message = error instanceof Error ? error.message : String(error);
      console.error(JSON.stringify({ level: 'error', event: 'config', message }));
      return Response.json(
        { error: 'CONFIG_INVALID', message },
        { status: 500, headers: { 'Cache-Control': 'no-store' } },
      );
    }
  },

  /**
   * The sync mirror's Cron Trigger: copies upstream's new release into this Worker's own
   * storage (sync.ts), verified, timestamp.json last. The fetch handler's VerifiedSource sees
   * the new timestamp within a second. In any other mode a trigger is a misconfiguration,
   * logged and ignored.
   */
  async scheduled(controller, env, ctx) {
    const log = (entry: Record<string, unknown>) => {
      const line = JSON.stringify({
        time: new Date().toISOString(),
        cron: controller.cron,
        ...entry,
      });
      if (entry.level === 'error') console.error(line);
      else console.log(line);
    };
    let current: Edge;
    try {
      current = edgeFor(env);
    } catch (error) {
      log({
        level: 'error',
        event: 'config',
        message: error instanceof Error ? error.message : String(error),
      });
      return;
    }
    const { config, store } = current;
    if (
      config.mode !== 'sync' ||
      config.upstreamUrl === undefined ||
      config.trustedRoot === undefined
    ) {
      log({
        level: 'warn',
        event: 'sync-skipped',
        message: `a Cron Trigger fired, but CAIRN_MODE is ${config.mode}, not sync`,
      });
      return;
    }
    const job = syncMirror({
      store,
      upstreamUrl: config.upstreamUrl,
      trustedRoot: config.trustedRoot,
      hash: webHashPort,
    }).then(
      (report: SyncReport) => {
        log({ level: 'info', event: 'sync', ...report });
      },
      (error: unknown) => {
        // The mirror goes on serving what it holds; the next trigger tries again.
        log({
          level: 'error',
          event: 'sync-failed',
          code: error instanceof EdgeError ? error.code : 'INTERNAL',
          message: error instanceof Error ? error.message : String(error),
        });
      },
    );
    // Awaited, so the trigger's outcome says when the copy is done; and given to waitUntil, so the
    // isolate is kept for a long copy however the runtime treats the handler's own promise.
    // Two overlapping runs are safe: create-only copies, and a compare-and-swap on the timestamp.
    ctx.waitUntil(job);
    await job;
  },
} satisfies ExportedHandler<WorkerEnv>;
