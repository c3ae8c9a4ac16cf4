/**
 * The Worker bundle in Miniflare with its Cron Trigger at hand: deployments.ts serves the
 * Worker over HTTP, but a sync test must also fire `scheduled`, which needs the Miniflare
 * instance itself. And a guard that the built code the tests run (dist-worker/ for Miniflare,
 * dist/ for the sync child process) is not older than the sources.
 */
import { readdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { R2BlobStore, type R2BucketLike } from '@cairn/storage/r2-store';
import { Miniflare, convertV4MiniflareOptions } from 'miniflare';
import { COMPATIBILITY_DATE, WORKER_SCRIPT } from './deployments.js';

const appDirectory = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

async function mtime(path: string): Promise<number> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    throw new Error(`${path} is missing: run \`npm run build -w @cairn/edge\` first`);
  }
}

/** A stale build would test yesterday's code and pass: refuse it. */
export async function checkBuild(): Promise<void> {
  const src = join(appDirectory, 'src');
  for (const entry of await readdir(src, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts') || entry.name.endsWith('.test.ts')) continue;
    const source = join(entry.parentPath, entry.name);
    const changed = (await stat(source)).mtimeMs;
    const relative = source.slice(src.length + 1).replace(/\.ts$/, '.js');
    const built = relative.startsWith('worker/')
      ? WORKER_SCRIPT
      : join(appDirectory, 'dist', relative);
    if (changed > (await mtime(built))) {
      throw new Error(`${built} is older than ${source}: run \`npm run build -w @cairn/edge\``);
    }
    if (!entry.name.startsWith('node') && changed > (await mtime(WORKER_SCRIPT))) {
      throw new Error(
        `${WORKER_SCRIPT} is older than ${source}: run \`npm run build -w @cairn/edge\``,
      );
    }
  }
}

export interface SyncWorker {
  readonly url: string;
  readonly mf: Miniflare;
  /** The Worker's R2 bucket, seen from the test. */
  readonly store: R2BlobStore;
  /** workerd's structured logs, each the JSON of `{ level, message }`. */
  readonly logs: string[];
  /** Fires the Cron Trigger and waits for the handler (and what it keeps alive) to finish. */
  cron(): Promise<void>;
  close(): Promise<void>;
}

export async function startSyncWorker(bindings: Record<string, string>): Promise<SyncWorker> {
  await checkBuild();
  const logs: string[] = [];
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      handleStructuredLogs: (log) => {
        logs.push(typeof log === 'string' ? log : JSON.stringify(log));
      },
      workers: [
        {
          name: 'edge-sync',
          modules: true,
          scriptPath: WORKER_SCRIPT,
          compatibilityDate: COMPATIBILITY_DATE,
          r2Buckets: ['BUCKET'],
          bindings: { CAIRN_STORAGE: 'r2', ...bindings },
        },
      ],
    }),
  );
  const url = (await mf.ready).href.replace(/\/$/, '');
  const bucket = (await mf.getR2Bucket('BUCKET')) as unknown as R2BucketLike;
  return {
    url,
    mf,
    store: new R2BlobStore(bucket),
    logs,
    async cron() {
      // @cloudflare/workers-types is not installed, so Miniflare's Fetcher type is not either.
      const worker = (await mf.getWorker()) as unknown as {
        scheduled(options: { cron: string }): Promise<{ outcome: string }>;
      };
      const result = await worker.scheduled({ cron: '*/5 * * * *' });
      if (result.outcome !== 'ok') throw new Error(`the Cron Trigger ended: ${result.outcome}`);
    },
    close: () => mf.dispose(),
  };
}
