/**
 * Crash safety against real MinIO: the `cairn-origin` binary is killed with SIGKILL right after
 * each step of a publication (CAIRN_TEST_CRASH_AT), while the second of two publishers' signatures
 * is publishing release 2. Right after the kill a TUF client sees exactly release 1 or exactly
 * release 2; the origin restarted without the hook finishes the publication on its own (its
 * scheduled work runs once at start), with no publisher doing anything.
 */
import type {} from '@cairn/storage/testing/minio-global-setup';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3BlobStore } from '@cairn/storage/s3-store';
import { createBucket, removeBucket, uniqueBucketName } from '@cairn/storage/testing/minio';
import { Metadata } from '@cairn/verify/metadata';
import { afterEach, beforeAll, describe, expect, inject, test } from 'vitest';
import { PUBLICATION_STEPS, type PublicationStep } from '../src/context.js';
import { isOriginError } from '../src/errors.js';
import {
  PUBLICATIONS_PREFIX,
  TIMESTAMP_KEY,
  publicationKey,
  publishedMarkerKey,
} from '../src/layout.js';
import { createLogger } from '../src/log.js';
import { PublisherClient } from '../src/publisher-client.js';
import { OriginService } from '../src/service.js';
import {
  TEST_POLICY,
  clientView,
  generateKeys,
  initTestRepository,
  loggedEntries,
  writeTree,
  type TestKeys,
} from './support/origin-fixture.js';
import {
  FollowingClient,
  bucketStore,
  eventually,
  keysUnder,
  prepareOriginHome,
  spawnOrigin,
  type OriginHome,
  type OriginProcess,
} from './support/origin-process.js';

const minio = inject('minio');

const RELEASE_1 = {
  'main.cvd': 'signature line, version 1\n'.repeat(300),
  'daily/a.cld': 'daily 1',
  'old.txt': 'removed by release 2',
};
const RELEASE_2 = {
  'main.cvd': `${'signature line, version 1\n'.repeat(299)}signature line, version 2\n`,
  'daily/a.cld': 'daily 2',
  'new.txt': 'added by release 2',
};

/** Steps after which timestamp.json already points at the new snapshot. */
const VISIBLE_AFTER: readonly PublicationStep[] = ['timestamp', 'cleaned'];

let keys: TestKeys;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  keys = await generateKeys();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function rejectionCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return isOriginError(error) ? error.code : `not an OriginError: ${String(error)}`;
  }
  return 'resolved';
}

async function timestampVersion(store: S3BlobStore): Promise<number> {
  const got = await store.get(TIMESTAMP_KEY);
  if (got.notModified) throw new Error('unexpected 304');
  const bytes = new Uint8Array(await new Response(got.body).arrayBuffer());
  return Metadata.fromBytes(bytes, 'timestamp', TIMESTAMP_KEY).signed.version;
}

async function setUp(): Promise<{ store: S3BlobStore; home: OriginHome; dir: string }> {
  const bucket = uniqueBucketName('crash');
  await createBucket(minio, bucket);
  cleanups.push(() => removeBucket(minio, bucket));
  const store = bucketStore(minio, bucket);
  cleanups.push(() => Promise.resolve(store.destroy()));
  await initTestRepository(store, keys);
  const home = await prepareOriginHome({ connection: minio, bucket, keys });
  cleanups.push(() => home.remove());
  const dir = await mkdtemp(join(tmpdir(), 'cairn-crash-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return { store, home, dir };
}

function track(origin: OriginProcess): OriginProcess {
  cleanups.push(() => origin.kill());
  return origin;
}

describe('an origin killed with SIGKILL in the middle of a publication', () => {
  test.each(PUBLICATION_STEPS.map((step) => [step]))(
    'right after "%s": clients see one release whole, and a restart finishes it',
    async (step) => {
      const { store, home, dir } = await setUp();
      const origin = track(await spawnOrigin(home, { crashAt: { step, snapshotVersion: 2 } }));
      const alice = new PublisherClient(origin.url, keys.alice);
      const bob = new PublisherClient(origin.url, keys.bob);

      // Release 1, normally (its publication is snapshot version 1: the hook lets it be).
      await writeTree(dir, RELEASE_1);
      const r1 = await alice.push(dir);
      await alice.sign(r1.id, dir);
      expect((await bob.sign(r1.id, dir)).published).toEqual({
        targetsVersion: 1,
        snapshotVersion: 1,
      });
      const follower = await FollowingClient.on(store);
      expect(await follower.refresh()).toEqual({ timestamp: 1, snapshot: 1, targets: 1 });

      // Release 2: the second signature publishes it, and the process dies after `step`.
      await rm(join(dir, 'old.txt'));
      await writeTree(dir, RELEASE_2);
      const r2 = await bob.push(dir);
      expect(r2.files.find((f) => f.path === 'main.cvd')?.deltas).toHaveLength(1);
      expect((await alice.sign(r2.id, dir)).published).toBeUndefined();
      expect(await rejectionCode(bob.sign(r2.id, dir))).toBe('UNREACHABLE');
      expect(await origin.exited).toEqual({ code: null, signal: 'SIGKILL' });

      // Right after the kill: exactly one release, whole, to a new client and to one that
      // already trusted release 1.
      const visible = VISIBLE_AFTER.includes(step);
      expect(await clientView(store)).toEqual(
        visible ? { version: 2, files: RELEASE_2 } : { version: 1, files: RELEASE_1 },
      );
      expect(await follower.refresh()).toEqual(
        visible
          ? { timestamp: 2, snapshot: 2, targets: 2 }
          : { timestamp: 1, snapshot: 1, targets: 1 },
      );
      expect(await keysUnder(store, PUBLICATIONS_PREFIX)).toEqual(
        step === 'cleaned' ? [] : [publicationKey(2)],
      );
      expect(await store.head(publishedMarkerKey(r2.id))).toEqual(
        step === 'cleaned'
          ? expect.objectContaining({ key: publishedMarkerKey(r2.id) })
          : undefined,
      );

      // Restarted without the hook: its scheduled work at start finishes the publication. No
      // publisher does anything from here on.
      const restarted = track(await spawnOrigin(home));
      await eventually('the plan is finished and removed', async () =>
        (await keysUnder(store, PUBLICATIONS_PREFIX)).length === 0 &&
        (await store.head(publishedMarkerKey(r2.id))) !== undefined
          ? true
          : undefined,
      );
      // SIGTERM waits for the scheduled work in progress, so everything it did is done.
      expect(await restarted.stop()).toEqual({ code: 0, signal: null });
      expect(
        restarted.logs
          .filter((l) => l.level === 'warn' || l.level === 'error')
          .map((l) => ({ msg: l.msg, snapshotVersion: l.snapshotVersion, errors: l.errors })),
      ).toEqual(
        visible
          ? []
          : [{ msg: 'finished a half-done publication', snapshotVersion: 2, errors: undefined }],
      );

      expect(await clientView(store)).toEqual({ version: 2, files: RELEASE_2 });
      expect(await follower.refresh()).toEqual({ timestamp: 2, snapshot: 2, targets: 2 });
      expect(await timestampVersion(store)).toBe(2);
      expect(await keysUnder(store, 'metadata/')).toEqual([
        'metadata/1.root.json',
        'metadata/1.snapshot.json',
        'metadata/1.targets.json',
        'metadata/2.snapshot.json',
        'metadata/2.targets.json',
        'metadata/root.json',
        'metadata/timestamp.json',
      ]);
      expect(await keysUnder(store, PUBLICATIONS_PREFIX)).toEqual([]);
      // Logged once each, however often the publication was carried out.
      expect((await loggedEntries(store)).map((e) => `${e.role} ${e.version}`)).toEqual([
        'root 1',
        'targets 1',
        'snapshot 1',
        'targets 2',
        'snapshot 2',
      ]);

      // What a publisher asking afterwards would be told: published, nothing pending.
      const service = new OriginService({
        store,
        online: { snapshot: [keys.snapshot], timestamp: [keys.timestamp] },
        policy: TEST_POLICY,
        authWindowMs: 300_000,
        logger: createLogger({ write: () => undefined }),
        logKey: keys.log,
      });
      const shown = await service.show(r2.id);
      expect(shown.state).toBe('published');
      expect(shown.published).toMatchObject({ targetsVersion: 2, snapshotVersion: 2 });
      const status = await service.status();
      expect({
        timestamp: status.timestamp?.version,
        snapshot: status.snapshot?.version,
        targets: status.targets?.version,
        draft: status.draft,
        pendingPublications: status.pendingPublications,
      }).toEqual({
        timestamp: 2,
        snapshot: 2,
        targets: 2,
        draft: undefined,
        pendingPublications: 0,
      });
    },
    60_000,
  );
});
