// Rollback and fast-forward attacks (TUF spec 5.3.5, 5.4.3, 5.5.5, 5.6.4, 5.3.11): a mirror,
// a network attacker or a thief of online keys tries to move a client back to older metadata,
// or forward to versions that would lock it out of the real ones.
import { MetaFile } from '@cairn/verify/metadata';
import { describe, expect, it } from 'vitest';
import {
  currentSnapshotEntries,
  currentSnapshotMeta,
  describeSnapshot,
  forgeSnapshot,
  forgeTimestamp,
  published,
  publishedRole,
  serve,
  serveForgedRelease,
  stopAttack,
} from './support/attacker.js';
import {
  bytesText,
  expectRefused,
  expectUpToDate,
  metadataFile,
  upToDateClient,
} from './support/client-under-test.js';
import { newSigner } from './support/repository-simulator.js';

describe('rollback', () => {
  it('refuses a timestamp older than the trusted one (ROLLBACK)', async () => {
    const { sim, client } = await upToDateClient();
    const old = publishedRole(sim, 'timestamp');
    await sim.publish();
    await expectUpToDate(client, sim);

    serve(sim, 'metadata/timestamp.json', old);
    await expectRefused(client, () => client.refresh(), 'ROLLBACK');

    stopAttack(sim);
    await expectUpToDate(client, sim);
  });

  it('refuses a newer timestamp, signed with the real key, that names an older snapshot (ROLLBACK)', async () => {
    const { sim, client } = await upToDateClient();
    const oldSnapshotMeta = currentSnapshotMeta(sim);
    await sim.publish();
    await expectUpToDate(client, sim);

    serve(sim, 'metadata/timestamp.json', await forgeTimestamp(sim, oldSnapshotMeta));
    await expectRefused(client, () => client.refresh(), 'ROLLBACK');

    stopAttack(sim);
    await sim.publish();
    await expectUpToDate(client, sim);
  });

  it('refuses a snapshot that lists an older targets version (ROLLBACK)', async () => {
    const { sim, client } = await upToDateClient(async (sim) => {
      sim.addTarget('db/main.cvd', 'release 2');
      await sim.publish();
    });
    expect(sim.roleVersions.get('targets')).toBe(2);

    const forged = await serveForgedRelease(sim, {
      ...currentSnapshotEntries(sim),
      'targets.json': new MetaFile({ version: 1 }),
    });
    // The forged timestamp is signed by the real (stolen) timestamp key and is newer: the
    // client persists it (5.4.5) before it can see that the snapshot it names is a rollback.
    await expectRefused(client, () => client.refresh(), 'ROLLBACK', {
      [metadataFile('timestamp')]: forged.timestamp,
    });

    stopAttack(sim);
    await sim.publish();
    await expectUpToDate(client, sim);
  });

  it('refuses a snapshot that no longer lists a delegated role (ROLLBACK)', async () => {
    const { sim, client } = await upToDateClient(async (sim) => {
      await sim.delegate('targets', { name: 'daily', paths: ['daily/*'] });
      sim.addTarget('daily/main.cvd', 'daily 1', 'daily');
      await sim.publish();
    });
    const entries = currentSnapshotEntries(sim);
    expect(Object.keys(entries).sort()).toEqual(['daily.json', 'targets.json']);
    const { 'daily.json': _dropped, ...withoutDaily } = entries;

    const forged = await serveForgedRelease(sim, withoutDaily);
    await expectRefused(client, () => client.refresh(), 'ROLLBACK', {
      [metadataFile('timestamp')]: forged.timestamp,
    });

    stopAttack(sim);
    await sim.publish();
    await expectUpToDate(client, sim);
  });

  it('refuses targets metadata older than the version the snapshot names (VERSION_MISMATCH)', async () => {
    const { sim, client } = await upToDateClient(async (sim) => {
      sim.addTarget('db/main.cvd', 'release 2');
      await sim.publish();
    });
    const stale = publishedRole(sim, 'targets');
    sim.addTarget('db/daily.cvd', 'release 3');
    await sim.publish();
    expect(sim.roleVersions.get('targets')).toBe(3);

    serve(sim, 'metadata/3.targets.json', stale);
    // Timestamp and snapshot are genuine and were verified before targets: they are kept.
    await expectRefused(client, () => client.refresh(), 'VERSION_MISMATCH', {
      [metadataFile('timestamp')]: publishedRole(sim, 'timestamp'),
      [metadataFile('snapshot')]: publishedRole(sim, 'snapshot'),
    });
    expect((await client.files())[metadataFile('targets')]).toBe(
      bytesText(published(sim, 'metadata/2.targets.json')),
    );

    stopAttack(sim);
    await expectUpToDate(client, sim);
  });

  it('refuses delegated targets metadata older than the version the snapshot names (VERSION_MISMATCH)', async () => {
    const { sim, client } = await upToDateClient(async (sim) => {
      await sim.delegate('targets', { name: 'daily', paths: ['daily/*'] });
      sim.addTarget('daily/1.cvd', 'daily 1', 'daily');
      await sim.publish();
    });
    expect(await (await client.refresh()).getTargetInfo('daily/1.cvd')).toBeDefined();
    const stale = publishedRole(sim, 'daily');
    sim.addTarget('daily/2.cvd', 'daily 2', 'daily');
    await sim.publish();
    expect(sim.roleVersions.get('daily')).toBe(2);
    // Top-level metadata is genuine: take it first, so only the delegated step is attacked.
    await client.refresh();

    serve(sim, 'metadata/2.daily.json', stale);
    await expectRefused(
      client,
      async () => (await client.refresh()).getTargetInfo('daily/2.cvd'),
      'VERSION_MISMATCH',
    );

    stopAttack(sim);
    const info = await (await client.refresh()).getTargetInfo('daily/2.cvd');
    expect(info?.length).toBe('daily 2'.length);
    expect((await client.files())[metadataFile('daily')]).toBe(
      bytesText(publishedRole(sim, 'daily')),
    );
  });

  it.each([
    ['the trusted version itself', 2],
    ['an older version', 1],
  ])(
    'refuses root N+1 that is really %s, validly signed (ROLLBACK)',
    async (_what, servedVersion) => {
      const { sim, client } = await upToDateClient(async (sim) => {
        await sim.publishRoot();
      });
      expect(sim.rootVersion).toBe(2);

      serve(sim, 'metadata/3.root.json', sim.rootBytes(servedVersion));
      await expectRefused(client, () => client.refresh(), 'ROLLBACK');

      stopAttack(sim);
      await expectUpToDate(client, sim);
    },
  );

  it('refuses root N+1 that says it is version N+2 (VERSION_MISMATCH)', async () => {
    const { sim, client } = await upToDateClient();
    const skipping = await sim.sign(sim.buildRootSigned(3), sim.signersOf('root'));

    serve(sim, 'metadata/2.root.json', skipping.toBytes());
    await expectRefused(client, () => client.refresh(), 'VERSION_MISMATCH');

    stopAttack(sim);
    await expectUpToDate(client, sim);
  });
});

describe('fast-forward', () => {
  /** The thief of the timestamp key publishes timestamp v1000; the client cannot tell. */
  async function fastForwardedTimestamp() {
    const { sim, client } = await upToDateClient();
    const forged = await forgeTimestamp(sim, currentSnapshotMeta(sim), { version: 1000 });
    serve(sim, 'metadata/timestamp.json', forged);
    await client.refresh();
    expect((await client.files())[metadataFile('timestamp')]).toBe(bytesText(forged));
    stopAttack(sim);
    return { sim, client };
  }

  it('refuses the honest timestamp after a fast-forward to v1000 while the key is unchanged (ROLLBACK)', async () => {
    const { sim, client } = await fastForwardedTimestamp();
    await sim.publish();
    expect(sim.timestampVersion).toBeLessThan(1000);
    await expectRefused(client, () => client.refresh(), 'ROLLBACK');
  });

  it('recovers from a timestamp fast-forwarded to v1000 once root rotates the timestamp key', async () => {
    const { sim, client } = await fastForwardedTimestamp();
    await sim.publish();
    await expectRefused(client, () => client.refresh(), 'ROLLBACK');

    await sim.rotate('timestamp', [await newSigner()]);
    await sim.publishRoot();
    await sim.bumpTimestamp();
    expect(sim.timestampVersion).toBeLessThan(1000);
    await expectUpToDate(client, sim);
  });

  /** The thief of both online keys lists targets v1000 in a snapshot the client persists. */
  async function fastForwardedTargetsVersion() {
    const { sim, client } = await upToDateClient();
    const forged = await serveForgedRelease(sim, {
      'targets.json': new MetaFile({ version: 1000 }),
    });
    // 1000.targets.json does not exist (only the targets key could sign it), but timestamp
    // and snapshot were verified and persisted before the client went looking for it.
    await expect(client.refresh()).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const files = await client.files();
    expect(files[metadataFile('timestamp')]).toBe(bytesText(forged.timestamp));
    expect(files[metadataFile('snapshot')]).toBe(bytesText(forged.snapshot));
    stopAttack(sim);
    return { sim, client };
  }

  it('refuses the honest snapshot after targets was fast-forwarded to v1000 while the snapshot key is unchanged (ROLLBACK)', async () => {
    const { sim, client } = await fastForwardedTargetsVersion();
    await sim.publish();
    await expectRefused(client, () => client.refresh(), 'ROLLBACK', {
      [metadataFile('timestamp')]: publishedRole(sim, 'timestamp'),
    });
  });

  it('recovers from targets fast-forwarded to v1000 once root rotates the snapshot key', async () => {
    const { sim, client } = await fastForwardedTargetsVersion();
    await sim.rotate('snapshot', [await newSigner()]);
    await sim.publishRoot();
    await sim.publish();
    expect(sim.roleVersions.get('targets')).toBe(1);
    await expectUpToDate(client, sim);
  });

  it('refuses the honest timestamp after one named snapshot v1000 (ROLLBACK), and recovers once root rotates the timestamp key', async () => {
    const { sim, client } = await upToDateClient();
    // The thief of the timestamp key names snapshot v1000; the file does not exist.
    const forged = await forgeTimestamp(
      sim,
      await describeSnapshot(1000, publishedRole(sim, 'snapshot')),
    );
    serve(sim, 'metadata/timestamp.json', forged);
    await expect(client.refresh()).rejects.toMatchObject({ code: 'NOT_FOUND' });
    stopAttack(sim);

    await sim.publish();
    await expectRefused(client, () => client.refresh(), 'ROLLBACK');

    await sim.rotate('timestamp', [await newSigner()]);
    await sim.publishRoot();
    await sim.bumpTimestamp();
    await expectUpToDate(client, sim);
  });

  it('refuses the honest timestamp after a whole release with snapshot v1000 was accepted (ROLLBACK)', async () => {
    const { sim, client } = await upToDateClient();
    const snapshot = await forgeSnapshot(sim, currentSnapshotEntries(sim), { version: 1000 });
    const timestamp = await forgeTimestamp(
      sim,
      await describeSnapshot(snapshot.version, snapshot.bytes),
    );
    serve(sim, snapshot.path, snapshot.bytes);
    serve(sim, 'metadata/timestamp.json', timestamp);
    await client.refresh();
    stopAttack(sim);

    await sim.publish();
    expect(sim.snapshotVersion).toBeLessThan(1000);
    await expectRefused(client, () => client.refresh(), 'ROLLBACK');
  });
});
