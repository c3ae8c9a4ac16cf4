/**
 * Several origin instances on one bucket (real MinIO). The bucket has versioning on, so every
 * body `metadata/timestamp.json` ever held is kept: the tests read the whole history back and
 * check it is one line — timestamp versions 1..N, each written once, in order; every snapshot
 * version 1..M written once, each reached by the timestamp exactly once and in order; no plan
 * left over — and that clients following along never saw a rollback or a fork.
 */
import type {} from '@cairn/storage/testing/minio-global-setup';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import type {
  BlobStore,
  CopyOptions,
  GetOptions,
  ListOptions,
  ObjectInfo,
  PutBody,
  PutOptions,
} from '@cairn/storage/blob-store';
import { MemoryBlobStore } from '@cairn/storage/memory-store';
import type { S3BlobStore } from '@cairn/storage/s3-store';
import {
  createBucket,
  removeBucket,
  uniqueBucketName,
  type MinioConnection,
} from '@cairn/storage/testing/minio';
import type { Checkpoint } from '@cairn/tlog/checkpoint';
import { Metadata, verifyDelegate, type Root } from '@cairn/verify/metadata';
import { afterEach, beforeAll, describe, expect, inject, test } from 'vitest';
import { isOriginError } from '../src/errors.js';
import {
  LOG_CHECKPOINT_KEY,
  PUBLICATIONS_PREFIX,
  TIMESTAMP_KEY,
  publicationKey,
} from '../src/layout.js';
import { createLogger } from '../src/log.js';
import { publish, refreshTimestamp } from '../src/publication.js';
import { PublisherClient } from '../src/publisher-client.js';
import { serveOrigin } from '../src/server.js';
import { OriginService, type TickReport } from '../src/service.js';
import {
  TEST_POLICY,
  clientView,
  generateKeys,
  initTestRepository,
  logReaderOn,
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
  type OriginProcess,
} from './support/origin-process.js';

const minio = inject('minio');

let keys: TestKeys;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  keys = await generateKeys();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

function s3Admin(connection: MinioConnection): S3Client {
  return new S3Client({
    endpoint: connection.endpoint,
    region: connection.region,
    credentials: {
      accessKeyId: connection.accessKeyId,
      secretAccessKey: connection.secretAccessKey,
    },
    forcePathStyle: true,
  });
}

/** A fresh bucket that keeps every version of every object; removed after the test. */
async function versionedBucket(): Promise<{ bucket: string; store: S3BlobStore; admin: S3Client }> {
  const bucket = uniqueBucketName('race');
  await createBucket(minio, bucket);
  const admin = s3Admin(minio);
  cleanups.push(async () => {
    admin.destroy();
    await removeBucketVersions(minio, bucket);
  });
  await admin.send(
    new PutBucketVersioningCommand({
      Bucket: bucket,
      VersioningConfiguration: { Status: 'Enabled' },
    }),
  );
  const store = bucketStore(minio, bucket);
  cleanups.push(() => Promise.resolve(store.destroy()));
  await initTestRepository(store, keys);
  return { bucket, store, admin };
}

/** Deletes every object version and delete marker, then the bucket. */
async function removeBucketVersions(connection: MinioConnection, bucket: string): Promise<void> {
  const client = s3Admin(connection);
  try {
    for (;;) {
      const page = await client.send(new ListObjectVersionsCommand({ Bucket: bucket }));
      const objects = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((v) => ({
        Key: v.Key,
        VersionId: v.VersionId,
      }));
      if (objects.length === 0) break;
      await client.send(
        new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } }),
      );
    }
  } finally {
    client.destroy();
  }
  await removeBucket(connection, bucket);
}

interface StoredVersion {
  readonly key: string;
  readonly bytes: Uint8Array;
}

/** Every version ever written under `prefix`, oldest first within each key; delete markers aside. */
async function allVersions(
  admin: S3Client,
  bucket: string,
  prefix: string,
): Promise<StoredVersion[]> {
  const listed: { key: string; versionId: string; modified: number }[] = [];
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  for (;;) {
    const page = await admin.send(
      new ListObjectVersionsCommand({
        Bucket: bucket,
        Prefix: prefix,
        KeyMarker: keyMarker,
        VersionIdMarker: versionMarker,
      }),
    );
    for (const v of page.Versions ?? []) {
      if (v.Key === undefined || v.VersionId === undefined || v.LastModified === undefined) {
        throw new Error('a listed version without key, id or time');
      }
      listed.push({ key: v.Key, versionId: v.VersionId, modified: v.LastModified.getTime() });
    }
    if (page.IsTruncated !== true) break;
    keyMarker = page.NextKeyMarker;
    versionMarker = page.NextVersionIdMarker;
  }
  // S3 lists a key's versions newest first.
  listed.reverse();
  listed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const versions: StoredVersion[] = [];
  for (const v of listed) {
    const got = await admin.send(
      new GetObjectCommand({ Bucket: bucket, Key: v.key, VersionId: v.versionId }),
    );
    if (got.Body === undefined) throw new Error(`${v.key} ${v.versionId}: no body`);
    versions.push({ key: v.key, bytes: await got.Body.transformToByteArray() });
  }
  return versions;
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

interface History {
  /** Timestamp versions in the order they were written. */
  readonly timestamps: number[];
  /** The snapshot version each timestamp (in write order) pointed at. */
  readonly snapshotsPointedAt: number[];
  readonly snapshotVersions: number;
  readonly targetsVersions: number;
}

/**
 * Reads back the whole history from the versioned bucket and checks that it is one line.
 * Returns it for the caller's exact counts.
 */
async function checkLinearHistory(admin: S3Client, bucket: string, root: Root): Promise<History> {
  const metadata = await allVersions(admin, bucket, 'metadata/');
  const timestampBodies = metadata.filter((v) => v.key === TIMESTAMP_KEY);
  const timestamps = timestampBodies.map((v) =>
    Metadata.fromBytes(v.bytes, 'timestamp', TIMESTAMP_KEY),
  );
  for (const t of timestamps) await verifyDelegate(root, 'timestamp', t);
  const timestampVersions = timestamps.map((t) => t.signed.version);
  // Never two timestamps with one version, and each write is the next version.
  expect(timestampVersions).toEqual(timestampVersions.map((_, i) => i + 1));

  // Versioned metadata is written once and never replaced.
  const byKey = new Map<string, Uint8Array[]>();
  for (const v of metadata) byKey.set(v.key, [...(byKey.get(v.key) ?? []), v.bytes]);
  const snapshotKeys = [...byKey.keys()].filter((k) => /^metadata\/\d+\.snapshot\.json$/.test(k));
  const targetsKeys = [...byKey.keys()].filter((k) => /^metadata\/\d+\.targets\.json$/.test(k));
  const M = snapshotKeys.length;
  const T = targetsKeys.length;
  expect(new Set(snapshotKeys)).toEqual(
    new Set(Array.from({ length: M }, (_, i) => `metadata/${i + 1}.snapshot.json`)),
  );
  expect(new Set(targetsKeys)).toEqual(
    new Set(Array.from({ length: T }, (_, i) => `metadata/${i + 1}.targets.json`)),
  );
  for (const key of [...snapshotKeys, ...targetsKeys]) {
    expect({ key, writes: byKey.get(key)?.length }).toEqual({ key, writes: 1 });
  }

  // The timestamp reached every snapshot, in order, each through the bytes stored for it; and
  // every snapshot names the targets version stored, never going back.
  const pointedAt = timestamps.map((t) => t.signed.snapshotMeta.version);
  expect([...new Set(pointedAt)]).toEqual(Array.from({ length: M }, (_, i) => i + 1));
  for (let i = 1; i < pointedAt.length; i++) {
    expect(pointedAt[i]).toBeGreaterThanOrEqual(pointedAt[i - 1] ?? 0);
  }
  // One log: every checkpoint ever written extends the one before it.
  const logStore = bucketStore(minio, bucket);
  cleanups.push(() => Promise.resolve(logStore.destroy()));
  const reader = await logReaderOn(logStore);
  const checkpoints = await allVersions(admin, bucket, LOG_CHECKPOINT_KEY);
  let previous: Checkpoint | undefined;
  for (const written of checkpoints) {
    const { checkpoint } = await reader.open(written.bytes);
    if (previous !== undefined) {
      expect(checkpoint.size).toBeGreaterThan(previous.size);
      await reader.checkConsistent(previous, checkpoint);
    }
    previous = checkpoint;
  }
  // Every version published is in it exactly once, in order: root 1, then each publication's
  // targets (when new) and snapshot.
  const logged = await loggedEntries(logStore);
  expect(logged.map((e) => `${e.role} ${e.version}`)).toEqual([
    'root 1',
    ...snapshotOrder(byKey, M).flatMap(({ targets, snapshot }) => [
      ...(targets === undefined ? [] : [`targets ${targets}`]),
      `snapshot ${snapshot}`,
    ]),
  ]);
  for (const entry of logged) {
    const bytes = byKey.get(`metadata/${entry.version}.${entry.role}.json`)?.[0];
    expect({ role: entry.role, version: entry.version, sha256: entry.sha256 }).toEqual({
      role: entry.role,
      version: entry.version,
      sha256: sha256(bytes ?? new Uint8Array()),
    });
    expect(entry.length).toBe(bytes?.length);
  }
  let previousTargets = 0;
  for (let v = 1; v <= M; v++) {
    const key = `metadata/${v}.snapshot.json`;
    const bytes = byKey.get(key)?.[0];
    if (bytes === undefined) throw new Error(`${key} missing`);
    for (const t of timestamps.filter((t) => t.signed.snapshotMeta.version === v)) {
      expect(t.signed.snapshotMeta.hashes?.sha256).toBe(sha256(bytes));
      expect(t.signed.snapshotMeta.length).toBe(bytes.length);
    }
    const snapshot = Metadata.fromBytes(bytes, 'snapshot', key);
    await verifyDelegate(root, 'snapshot', snapshot);
    expect(snapshot.signed.version).toBe(v);
    const targetsMeta = snapshot.signed.meta.get('targets.json');
    const targetsBytes = byKey.get(`metadata/${targetsMeta?.version}.targets.json`)?.[0];
    expect(targetsBytes).toBeDefined();
    expect(targetsMeta?.hashes?.sha256).toBe(sha256(targetsBytes ?? new Uint8Array()));
    expect(targetsMeta?.version).toBeGreaterThanOrEqual(previousTargets);
    previousTargets = targetsMeta?.version ?? 0;
  }
  expect(previousTargets).toBe(T);
  return {
    timestamps: timestampVersions,
    snapshotsPointedAt: pointedAt,
    snapshotVersions: M,
    targetsVersions: T,
  };
}

/**
 * Snapshot versions 1..M in order, each with the targets version it first names (undefined
 * when an earlier snapshot named it already): the order the origin logs them in.
 */
function snapshotOrder(
  byKey: ReadonlyMap<string, Uint8Array[]>,
  M: number,
): { snapshot: number; targets: number | undefined }[] {
  let last = 0;
  return Array.from({ length: M }, (_, i) => {
    const key = `metadata/${i + 1}.snapshot.json`;
    const bytes = byKey.get(key)?.[0];
    if (bytes === undefined) throw new Error(`${key} missing`);
    const targets = Metadata.fromBytes(bytes, 'snapshot', key).signed.meta.get('targets.json');
    const fresh = targets !== undefined && targets.version > last ? targets.version : undefined;
    last = Math.max(last, targets?.version ?? 0);
    return { snapshot: i + 1, targets: fresh };
  });
}

/** Refreshes `clients` every `everyMs` until stopped; errors are collected, never thrown. */
function follow(clients: FollowingClient[], everyMs: number) {
  const errors: unknown[] = [];
  let stopped = false;
  const loops = clients.map(async (client) => {
    while (!stopped) {
      try {
        await client.refresh();
      } catch (error) {
        errors.push(error);
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  });
  return {
    errors,
    async stop(): Promise<void> {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

function expectNoRollback(client: FollowingClient): void {
  for (let i = 1; i < client.seen.length; i++) {
    const before = client.seen[i - 1];
    const after = client.seen[i];
    expect(after?.timestamp).toBeGreaterThanOrEqual(before?.timestamp ?? 0);
    expect(after?.snapshot).toBeGreaterThanOrEqual(before?.snapshot ?? 0);
    expect(after?.targets).toBeGreaterThanOrEqual(before?.targets ?? 0);
  }
}

const files = (k: number) => ({
  'main.cvd': `signature line\n`.repeat(200) + `release ${k}\n`,
  [`daily/${k}.cld`]: `daily ${k}`,
});

describe('two origin instances on one bucket', () => {
  test('two cairn-origin processes re-signing every second and publishing at once keep one history', async () => {
    const { bucket, store, admin } = await versionedBucket();
    // Snapshot and timestamp are re-signed on every tick (each second) once a second has passed:
    // both instances publish snapshot refreshes and refresh the timestamp all the time.
    const policy = {
      expiry: { snapshot: '172800s', timestamp: '86400s' },
      refreshBefore: { snapshot: '172799s', timestamp: '86399s' },
    };
    const homeA = await prepareOriginHome({
      connection: minio,
      bucket,
      keys,
      intervalSeconds: 1,
      policy,
    });
    const homeB = await prepareOriginHome({
      connection: minio,
      bucket,
      keys,
      intervalSeconds: 1,
      policy,
    });
    cleanups.push(
      () => homeA.remove(),
      () => homeB.remove(),
    );
    const dir = await mkdtemp(join(tmpdir(), 'cairn-race-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const origins: OriginProcess[] = [];
    for (const home of [homeA, homeB]) {
      const origin = await spawnOrigin(home);
      cleanups.push(() => origin.kill());
      origins.push(origin);
    }
    const [a, b] = origins as [OriginProcess, OriginProcess];
    const at = (origin: OriginProcess, who: 'alice' | 'bob') =>
      new PublisherClient(origin.url, keys[who]);

    const followers = [await FollowingClient.on(store), await FollowingClient.on(store)];
    let following: ReturnType<typeof follow> | undefined;

    for (let k = 1; k <= 3; k++) {
      await writeTree(dir, files(k));
      const pushedAt = k % 2 === 1 ? a : b;
      const draft = await at(pushedAt, 'alice').push(dir);
      expect(draft.targetsVersion).toBe(k);
      // Both signatures at once, one through each instance: either or both may publish.
      const results = await Promise.all([
        at(a, 'alice').sign(draft.id, dir),
        at(b, 'bob').sign(draft.id, dir),
      ]);
      const published = results.flatMap((r) => (r.published === undefined ? [] : [r.published]));
      expect(published.length).toBeGreaterThanOrEqual(1);
      expect(published.map((p) => p.targetsVersion)).toEqual(published.map(() => k));
      expect(new Set(published.map((p) => p.snapshotVersion)).size).toBe(1);
      for (const r of results) {
        if (r.published === undefined) expect(r).toMatchObject({ counted: true, signatures: 1 });
      }
      await rm(join(dir, `daily/${k}.cld`));
      if (k === 1) following = follow(followers, 50);
    }
    // Let both keep re-signing side by side for a while.
    await eventually(
      'snapshot version 15',
      async () => {
        const status = await at(a, 'alice').status();
        return (status.snapshot?.version ?? 0) >= 15 ? true : undefined;
      },
      40_000,
      200,
    );
    await following?.stop();
    for (const origin of origins) expect(await origin.stop()).toEqual({ code: 0, signal: null });

    // Nothing went wrong on either side. (Each finishes plans the other is carrying out: that
    // is safe, and logged.) A graceful stop leaves no publication half-done.
    const unexpected = origins
      .flatMap((o) => o.logs)
      .filter((l) => l.level === 'warn' || l.level === 'error')
      .filter((l) => l.msg !== 'finished a half-done publication');
    expect(unexpected).toEqual([]);
    expect(await keysUnder(store, PUBLICATIONS_PREFIX)).toEqual([]);

    expect(following?.errors).toEqual([]);
    for (const follower of followers) {
      expectNoRollback(follower);
      expect(follower.seen.length).toBeGreaterThan(10);
    }
    const root = (await clientRoot(store)).signed;
    const history = await checkLinearHistory(admin, bucket, root);
    expect(history.targetsVersions).toBe(3);
    expect(history.snapshotVersions).toBeGreaterThanOrEqual(15);
    expect(await clientView(store)).toEqual({ version: 3, files: files(3) });
  }, 90_000);

  test('two services racing timestamp refreshes and publications never fork the history', async () => {
    const { bucket, store, admin } = await versionedBucket();
    const first = new OriginService(serviceOptions(store));
    await publishFirstRelease(first);

    // Two instances, each with its own S3 client, firing everything at once.
    const instances = [0, 1].map(() => {
      const own = bucketStore(minio, bucket);
      cleanups.push(() => Promise.resolve(own.destroy()));
      return new OriginService(serviceOptions(own));
    });
    const refreshes = instances.flatMap((s) =>
      Array.from({ length: 12 }, () => refreshTimestamp(s.ctx)),
    );
    const publications = instances.flatMap((s) =>
      Array.from({ length: 4 }, () =>
        publish(s.ctx, () =>
          Promise.resolve({ reason: 'snapshot-refresh', blobs: [], approvedBy: [] }),
        ),
      ),
    );
    const refreshed = await Promise.allSettled(refreshes);
    const published = await Promise.allSettled(publications);
    // Losing every attempt of a compare-and-swap is a clear CONFLICT, nothing else.
    for (const r of [...refreshed, ...published]) {
      if (r.status === 'rejected')
        expect(isOriginError(r.reason, 'CONFLICT') ? 'CONFLICT' : r.reason).toBe('CONFLICT');
    }
    const written = refreshed.flatMap((r) =>
      r.status === 'fulfilled' && r.value !== undefined ? [r.value] : [],
    );
    // Each refresh that succeeded wrote its own version.
    expect(new Set(written).size).toBe(written.length);
    const publishedVersions = published.flatMap((r) =>
      r.status === 'fulfilled' ? [r.value.snapshotVersion] : [],
    );
    expect(new Set(publishedVersions).size).toBe(publishedVersions.length);

    // Whatever was left half-done is finished by the next round of scheduled work, and the
    // repository still publishes afterwards.
    for (const s of instances) expect((await s.tick()).errors).toEqual([]);
    const last = await publish(instances[0]!.ctx, () =>
      Promise.resolve({ reason: 'snapshot-refresh', blobs: [], approvedBy: [] }),
    );
    expect(await keysUnder(store, PUBLICATIONS_PREFIX)).toEqual([]);

    const root = (await clientRoot(store)).signed;
    const history = await checkLinearHistory(admin, bucket, root);
    expect(history.snapshotVersions).toBe(last.snapshotVersion);
    // One timestamp write per successful refresh and one per snapshot version: no double writes.
    expect(history.timestamps.length).toBe(written.length + history.snapshotVersions);
    expect(written.every((v) => history.timestamps.includes(v))).toBe(true);
    expect(await logEntryCount(store)).toBe(1 + history.targetsVersions + history.snapshotVersions);
    expect(await clientView(store)).toEqual({ version: 1, files: files(1) });
  }, 90_000);

  test('a publication that keeps losing the timestamp race is finished later, not abandoned', async () => {
    const { bucket, store, admin } = await versionedBucket();
    const rival = new OriginService(serviceOptions(store));
    await publishFirstRelease(rival);
    // Before each of its timestamp writes, the rival re-signs the timestamp: every one of this
    // instance's compare-and-swaps loses, as under a burst of refreshes from other instances.
    let rivalWrites = 0;
    const unlucky = racedStore(bucketStore(minio, bucket), async () => {
      await refreshTimestamp(rival.ctx);
      rivalWrites++;
    });
    const loser = new OriginService(serviceOptions(unlucky));
    const snapshotRefresh = (service: OriginService) =>
      publish(service.ctx, () =>
        Promise.resolve({ reason: 'snapshot-refresh', blobs: [], approvedBy: [] }),
      );

    const refused = await snapshotRefresh(loser).then(
      () => 'published',
      (error: unknown) => (isOriginError(error, 'CONFLICT') ? error.message : String(error)),
    );
    expect(refused).toBe('timestamp.json kept changing under this origin; try again');
    expect(await keysUnder(store, PUBLICATIONS_PREFIX)).toEqual([publicationKey(2)]);
    // Its recovery loses the same way: the plan, whose files are in place, must stay.
    expect((await loser.tick()).errors).toEqual([
      'publish: timestamp.json kept changing under this origin; try again',
    ]);
    expect(await keysUnder(store, PUBLICATIONS_PREFIX)).toEqual([publicationKey(2)]);
    expect(rivalWrites).toBe(16);

    // Once the burst is over, the next round of scheduled work anywhere finishes it, and the
    // repository publishes as before.
    unlucky.rivalry = false;
    expect((await rival.tick()).recovered).toEqual([2]);
    expect((await snapshotRefresh(loser)).snapshotVersion).toBe(3);
    expect(await keysUnder(store, PUBLICATIONS_PREFIX)).toEqual([]);
    const history = await checkLinearHistory(admin, bucket, (await clientRoot(store)).signed);
    expect(history.snapshotsPointedAt).toEqual([...Array<number>(17).fill(1), 2, 3]);
    expect(await clientView(store)).toEqual({ version: 1, files: files(1) });
  }, 60_000);
});

describe('one origin instance', () => {
  test('runs one round of scheduled work at a time, and none once closed', async () => {
    const store = new MemoryBlobStore();
    await initTestRepository(store, keys);
    let active = 0;
    let most = 0;
    let rounds = 0;
    // Rounds that outlast the interval many times over, as under load or a slow store.
    class SlowRounds extends OriginService {
      override async tick(): Promise<TickReport> {
        active++;
        rounds++;
        most = Math.max(most, active);
        try {
          await new Promise((r) => setTimeout(r, 150));
          return await super.tick();
        } finally {
          active--;
        }
      }
    }
    const running = await serveOrigin(new SlowRounds(serviceOptions(store)), {
      host: '127.0.0.1',
      port: 0,
      scheduleMs: 20,
    });
    await new Promise((r) => setTimeout(r, 800));
    await running.close();
    // close() waited for the round in progress, and started none after it.
    expect(active).toBe(0);
    const closedAfter = rounds;
    await new Promise((r) => setTimeout(r, 300));
    expect({ most, roundsAfterClose: rounds - closedAfter }).toEqual({
      most: 1,
      roundsAfterClose: 0,
    });
    expect(rounds).toBeGreaterThanOrEqual(3);
  });
});

/** `inner`, except that `beforeTimestampWrite` runs before each write of timestamp.json. */
function racedStore(
  inner: S3BlobStore,
  beforeTimestampWrite: () => Promise<void>,
): BlobStore & { rivalry: boolean } {
  cleanups.push(() => Promise.resolve(inner.destroy()));
  const store = {
    rivalry: true,
    get: (key: string, options?: GetOptions) => inner.get(key, options),
    head: (key: string) => inner.head(key),
    async put(key: string, body: PutBody, options?: PutOptions): Promise<ObjectInfo> {
      if (key === TIMESTAMP_KEY && store.rivalry) await beforeTimestampWrite();
      return inner.put(key, body, options);
    },
    copy: (from: string, to: string, options?: CopyOptions) => inner.copy(from, to, options),
    delete: (key: string) => inner.delete(key),
    list: (options: ListOptions) => inner.list(options),
  };
  return store;
}

function serviceOptions(store: BlobStore) {
  return {
    store,
    online: { snapshot: [keys.snapshot], timestamp: [keys.timestamp] },
    policy: TEST_POLICY,
    authWindowMs: 300_000,
    logger: createLogger({ write: () => undefined }),
    logKey: keys.log,
  };
}

async function clientRoot(store: BlobStore): Promise<Metadata<Root>> {
  const service = new OriginService(serviceOptions(store));
  return service.ctx.roots.newest();
}

/** Entries in the log: root 1 and one per targets and snapshot version. */
async function logEntryCount(store: BlobStore): Promise<number> {
  return (await loggedEntries(store)).length;
}

/** Release 1 through the service itself (no HTTP): push, upload, complete, two signatures. */
async function publishFirstRelease(service: OriginService): Promise<void> {
  const content = files(1);
  const entries = Object.entries(content).map(([path, text]) => {
    const bytes = new TextEncoder().encode(text);
    return { path, bytes, sha256: sha256(bytes) };
  });
  const release = await service.push(keys.alice.keyid, {
    files: entries.map((e) => ({ path: e.path, length: e.bytes.length, sha256: e.sha256 })),
  });
  for (const file of release.files) {
    const entry = entries.find((e) => e.path === file.path);
    if (entry === undefined) throw new Error(file.path);
    await service.upload(
      keys.alice.keyid,
      release.id,
      file.index,
      new Blob([entry.bytes]).stream(),
    );
  }
  const draft = await service.complete(keys.alice.keyid, release.id);
  const shown = await service.show(release.id);
  if (shown.signed === undefined) throw new Error('no draft to sign');
  const signed = new TextEncoder().encode(shown.signed);
  for (const signer of [keys.alice, keys.bob]) {
    await service.sign(signer.keyid, release.id, {
      keyid: signer.keyid,
      sig: await signer.sign(signed),
      draftSha256: draft.draftSha256,
    });
  }
  expect((await service.show(release.id)).state).toBe('published');
}
