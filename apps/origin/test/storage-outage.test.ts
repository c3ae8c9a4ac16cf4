/**
 * Object storage going away under the origin: a MinIO of this file's own is killed (and later
 * restarted on the same port with the same data) in the middle of a push and in the middle of
 * a publication. The origin answers at once with 503 STORAGE_UNAVAILABLE and Retry-After, never
 * hangs, loses nothing, and finishes what it started once storage is back.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3BlobStore } from '@cairn/storage/s3-store';
import { startMinio, uniqueBucketName, type MinioServer } from '@cairn/storage/testing/minio';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { PublicationStep } from '../src/context.js';
import { isOriginError } from '../src/errors.js';
import { PUBLICATIONS_PREFIX, publicationKey } from '../src/layout.js';
import { createLogger } from '../src/log.js';
import { PublisherClient } from '../src/publisher-client.js';
import { serveOrigin } from '../src/server.js';
import { OriginService } from '../src/service.js';
import {
  TEST_POLICY,
  clientView,
  generateKeys,
  initTestRepository,
  writeTree,
  type TestKeys,
} from './support/origin-fixture.js';
import {
  bucketStore,
  keysUnder,
  prepareOriginHome,
  spawnOrigin,
} from './support/origin-process.js';

/** Every failing call must answer within this: a few storage calls, each with its retries. */
const ANSWER_WITHIN_MS = 10_000;

const RELEASE_1 = {
  'main.cvd': 'signature line, version 1\n'.repeat(300),
  'daily/a.cld': 'daily 1',
};
const RELEASE_2 = {
  'main.cvd': `${'signature line, version 1\n'.repeat(299)}signature line, version 2\n`,
  'daily/a.cld': 'daily 2',
  'daily/b.cld': 'daily b',
};

let own: MinioServer;
let keys: TestKeys;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  own = await startMinio();
  keys = await generateKeys();
}, 120_000);

afterAll(async () => {
  await own?.stop();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/** What a call ended with, and how long it took. */
async function outcome(promise: Promise<unknown>): Promise<{ code: string; ms: number }> {
  const started = Date.now();
  let code: string;
  try {
    await promise;
    code = 'resolved';
  } catch (error) {
    code = isOriginError(error) ? error.code : `not an OriginError: ${String(error)}`;
  }
  return { code, ms: Date.now() - started };
}

async function freshRepository(): Promise<{ bucket: string; store: S3BlobStore; dir: string }> {
  // A test that failed with MinIO halted must not take the next one down with it.
  if (own.pid === undefined) await own.restart();
  const bucket = uniqueBucketName('outage');
  await own.createBucket(bucket);
  cleanups.push(async () => {
    if (own.pid === undefined) await own.restart();
    await own.removeBucket(bucket);
  });
  const store = bucketStore(own.connection, bucket);
  cleanups.push(() => Promise.resolve(store.destroy()));
  await initTestRepository(store, keys);
  const dir = await mkdtemp(join(tmpdir(), 'cairn-outage-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return { bucket, store, dir };
}

describe('object storage down', () => {
  test('in the middle of a push: 503 STORAGE_UNAVAILABLE at once, and the same push completes once it is back', async () => {
    const { bucket, store, dir } = await freshRepository();
    const home = await prepareOriginHome({ connection: own.connection, bucket, keys });
    cleanups.push(() => home.remove());
    const origin = await spawnOrigin(home);
    cleanups.push(() => origin.kill());
    const alice = new PublisherClient(origin.url, keys.alice);
    const bob = new PublisherClient(origin.url, keys.bob);
    await writeTree(dir, RELEASE_1);

    // MinIO dies as the second file starts to upload; the first is staged by then.
    let halted: Promise<void> | undefined;
    const pushed = await outcome(
      alice.push(dir, {
        progress: (phase, file) => {
          if (phase === 'upload' && file === 'main.cvd') halted ??= own.halt();
        },
      }),
    );
    expect(halted).toBeDefined();
    await halted;
    expect(pushed.code).toBe('STORAGE_UNAVAILABLE');
    expect(pushed.ms).toBeLessThan(ANSWER_WITHIN_MS);

    // Every route says the same, with a time to retry after.
    for (const path of ['/v1/status', '/health']) {
      const started = Date.now();
      const response = await fetch(new URL(path, origin.url), {
        signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
      });
      expect({
        path,
        status: response.status,
        retryAfter: response.headers.get('retry-after'),
        error: ((await response.json()) as { error?: string }).error,
      }).toEqual({ path, status: 503, retryAfter: '5', error: 'STORAGE_UNAVAILABLE' });
      expect(Date.now() - started).toBeLessThan(ANSWER_WITHIN_MS);
    }
    const again = await outcome(alice.push(dir));
    expect(again.code).toBe('STORAGE_UNAVAILABLE');
    expect(again.ms).toBeLessThan(ANSWER_WITHIN_MS);

    // Back: the same push, retried, goes through, and the release is published whole.
    await own.restart();
    const draft = await alice.push(dir);
    expect(draft).toMatchObject({ state: 'draft', targetsVersion: 1 });
    expect(draft.files.map((f) => [f.path, f.change])).toEqual([
      ['daily/a.cld', 'added'],
      ['main.cvd', 'added'],
    ]);
    await alice.sign(draft.id, dir);
    expect((await bob.sign(draft.id, dir)).published).toEqual({
      targetsVersion: 1,
      snapshotVersion: 1,
    });
    expect(await clientView(store)).toEqual({ version: 1, files: RELEASE_1 });
    // The origin itself lived through it.
    expect(await origin.stop()).toEqual({ code: 0, signal: null });
  }, 60_000);

  const cases: readonly { step: PublicationStep; finish: 'tick' | 'sign again' }[] = [
    { step: 'planned', finish: 'sign again' },
    { step: 'blobs', finish: 'tick' },
    { step: 'metadata', finish: 'sign again' },
    { step: 'log', finish: 'tick' },
    { step: 'root', finish: 'sign again' },
    { step: 'timestamp', finish: 'tick' },
  ];
  test.each(cases)(
    'right after publication step $step: 503 to the signer, and the release completes by $finish',
    async ({ step, finish }) => {
      const { store, dir } = await freshRepository();
      // In-process, for its step hook: MinIO dies the moment `step` of release 2 is done.
      let halted: Promise<void> | undefined;
      const logs: string[] = [];
      const service = new OriginService({
        store,
        online: { snapshot: [keys.snapshot], timestamp: [keys.timestamp] },
        policy: TEST_POLICY,
        authWindowMs: 300_000,
        logger: createLogger({ write: (line) => logs.push(line) }),
        logKey: keys.log,
        onStep: (at, snapshotVersion) => {
          if (at === step && snapshotVersion === 2) halted ??= own.halt();
        },
      });
      const running = await serveOrigin(service, { host: '127.0.0.1', port: 0 });
      cleanups.push(() => running.close());
      const alice = new PublisherClient(running.url, keys.alice);
      const bob = new PublisherClient(running.url, keys.bob);

      await writeTree(dir, RELEASE_1);
      const r1 = await alice.push(dir);
      await alice.sign(r1.id, dir);
      await bob.sign(r1.id, dir);
      await writeTree(dir, RELEASE_2);
      const r2 = await alice.push(dir);
      await alice.sign(r2.id, dir);

      const signed = await outcome(bob.sign(r2.id, dir));
      expect(halted).toBeDefined();
      await halted;
      expect(signed.code).toBe('STORAGE_UNAVAILABLE');
      expect(signed.ms).toBeLessThan(ANSWER_WITHIN_MS);
      // Scheduled work while storage is down fails, and says so, in bounded time.
      const started = Date.now();
      const failedTick = await service.tick();
      expect(Date.now() - started).toBeLessThan(ANSWER_WITHIN_MS);
      expect(failedTick.recovered).toEqual([]);
      expect(failedTick.errors.length).toBeGreaterThan(0);

      await own.restart();
      // Nothing lost: the plan waits, and clients see exactly one release, whole.
      expect(await keysUnder(store, PUBLICATIONS_PREFIX)).toEqual([publicationKey(2)]);
      expect(await clientView(store)).toEqual(
        step === 'timestamp' ? { version: 2, files: RELEASE_2 } : { version: 1, files: RELEASE_1 },
      );

      if (finish === 'tick') {
        const report = await service.tick();
        expect(report.errors).toEqual([]);
        // A plan whose timestamp went out needs only its bookkeeping: not counted as finished.
        expect(report.recovered).toEqual(step === 'timestamp' ? [] : [2]);
      } else {
        expect(await bob.sign(r2.id, dir)).toMatchObject({
          counted: false,
          signatures: 2,
          published: { targetsVersion: 2, snapshotVersion: 2 },
        });
      }
      expect(await clientView(store)).toEqual({ version: 2, files: RELEASE_2 });
      expect(await keysUnder(store, PUBLICATIONS_PREFIX)).toEqual([]);
      const shown = await alice.show(r2.id);
      expect(shown.state).toBe('published');
      expect(shown.published).toMatchObject({ targetsVersion: 2, snapshotVersion: 2 });
      const status = await alice.status();
      expect({
        timestamp: status.timestamp?.version,
        snapshot: status.snapshot?.version,
        draft: status.draft,
        pending: status.pendingPublications,
      }).toEqual({ timestamp: 2, snapshot: 2, draft: undefined, pending: 0 });
      // And the next round of scheduled work has nothing left to do.
      expect(await service.tick()).toMatchObject({ recovered: [], errors: [] });
    },
    60_000,
  );
});
