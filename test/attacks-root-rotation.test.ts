// Root rotation (TUF spec 5.3): every root N+1 must be signed by a threshold of root N's keys
// and of its own, one step at a time, at most `maxRootRotations` steps per refresh.
import { describe, expect, it } from 'vitest';
import { currentSnapshotMeta, forgeTimestamp, serve, stopAttack } from './support/attacker.js';
import {
  bytesText,
  expectRefused,
  expectUpToDate,
  metadataFile,
  upToDateClient,
} from './support/client-under-test.js';
import { newSigner, type RepositorySimulator } from './support/repository-simulator.js';
import type { Signer } from '@cairn/verify/signer';

async function twoNewKeys(): Promise<Signer[]> {
  return [await newSigner(), await newSigner()];
}

function rootRequests(sim: RepositorySimulator): string[] {
  return sim.requests.filter((path) => path.endsWith('.root.json'));
}

describe('root rotation', () => {
  it('follows v1 → v2 → v3, each signed by the old and the new threshold, to root.json = v3', async () => {
    const { sim, client } = await upToDateClient();
    await sim.rotate('root', await twoNewKeys(), 2);
    await sim.publishRoot();
    await sim.rotate('root', await twoNewKeys(), 2);
    await sim.publishRoot();
    expect(sim.rootVersion).toBe(3);

    sim.requests.length = 0;
    await expectUpToDate(client, sim);
    expect((await client.files())[metadataFile('root')]).toBe(bytesText(sim.rootBytes(3)));
    expect(rootRequests(sim)).toEqual([
      'metadata/2.root.json',
      'metadata/3.root.json',
      'metadata/4.root.json',
    ]);
  });

  /** Root v1 has one key; v2 moves to two new keys with threshold 2, signed by `sign(old, new)`. */
  it.each([
    ['only the new keys', (_old: Signer[], fresh: Signer[]) => fresh],
    ['only the old key', (old: Signer[]) => old],
    [
      'the old key and one of the two new keys',
      (old: Signer[], fresh: Signer[]) => [...old, fresh[0] as Signer],
    ],
  ])('refuses a root N+1 signed by %s (THRESHOLD)', async (_what, choose) => {
    const { sim, client } = await upToDateClient();
    const old = sim.signersOf('root');
    const fresh = await twoNewKeys();
    await sim.rotate('root', fresh, 2);
    await sim.publishRoot({ signers: choose(old, fresh) });

    await expectRefused(client, () => client.refresh(), 'THRESHOLD');

    // The publishers collect the missing signatures and re-publish the same version.
    sim.files.set(
      'metadata/2.root.json',
      (await sim.sign(sim.buildRootSigned(2), [...old, ...fresh])).toBytes(),
    );
    await expectUpToDate(client, sim);
  });

  it('keeps the intermediate root it verified when a later root in the chain is refused (THRESHOLD)', async () => {
    const { sim, client } = await upToDateClient();
    await sim.rotate('root', await twoNewKeys(), 2);
    await sim.publishRoot();
    const v2Keys = sim.signersOf('root');
    await sim.rotate('root', await twoNewKeys(), 2);
    await sim.publishRoot({ signers: sim.signersOf('root') });

    // Root v2 was verified and persisted (5.3.8) before v3 was fetched.
    await expectRefused(client, () => client.refresh(), 'THRESHOLD', {
      [metadataFile('root')]: sim.rootBytes(2),
    });

    sim.files.set(
      'metadata/3.root.json',
      (await sim.sign(sim.buildRootSigned(3), [...v2Keys, ...sim.signersOf('root')])).toBytes(),
    );
    await expectUpToDate(client, sim);
  });

  it('accepts keys that move between roles in a rotation, and refuses them in their old role (THRESHOLD)', async () => {
    const { sim, client } = await upToDateClient();
    const [rootKey, timestampKey, snapshotKey, targetsKey] = (
      ['root', 'timestamp', 'snapshot', 'targets'] as const
    ).map((role) => sim.signersOf(role));
    if (!rootKey || !timestampKey || !snapshotKey || !targetsKey) throw new Error('unreachable');
    await sim.rotate('root', [await newSigner()]);
    await sim.rotate('timestamp', snapshotKey);
    await sim.rotate('snapshot', timestampKey);
    await sim.rotate('targets', rootKey);
    await sim.publishRoot();
    // Targets must be re-signed by its new key: a new target makes a new version.
    sim.addTarget('db/moved.cvd', 'signed by the old root key, now a targets key');
    await sim.publish();

    const updater = await expectUpToDate(client, sim);
    const info = await updater.getTargetInfo('db/moved.cvd');
    expect(info).toBeDefined();
    if (info !== undefined) {
      expect(new TextDecoder().decode(await updater.downloadTarget(info))).toBe(
        'signed by the old root key, now a targets key',
      );
    }

    // The old timestamp key is a snapshot key now: it can no longer sign timestamps.
    serve(
      sim,
      'metadata/timestamp.json',
      await forgeTimestamp(sim, currentSnapshotMeta(sim), { signers: timestampKey }),
    );
    await expectRefused(client, () => client.refresh(), 'THRESHOLD');
    stopAttack(sim);
    await sim.bumpTimestamp();
    await expectUpToDate(client, sim);
  });

  it('stops after limits.maxRootRotations new roots per refresh and goes on from there next time', async () => {
    const { sim, client } = await upToDateClient();
    for (let i = 0; i < 5; i++) await sim.publishRoot();
    expect(sim.rootVersion).toBe(6);
    const limits = { maxRootRotations: 3 };

    sim.requests.length = 0;
    await client.refresh({ limits });
    expect((await client.files())[metadataFile('root')]).toBe(bytesText(sim.rootBytes(4)));
    expect(rootRequests(sim)).toEqual([
      'metadata/2.root.json',
      'metadata/3.root.json',
      'metadata/4.root.json',
    ]);

    sim.requests.length = 0;
    await expectUpToDate(client, sim, { limits });
    expect(rootRequests(sim)).toEqual([
      'metadata/5.root.json',
      'metadata/6.root.json',
      'metadata/7.root.json',
    ]);
  });

  it('stops at the default cap of 256 root versions in one refresh', async () => {
    const { sim, client } = await upToDateClient();
    // An endless chain: every next root is served, validly signed, however far the client goes.
    const root = sim.signersOf('root');
    const served = new Map<string, Uint8Array>();
    sim.overrides.push((path) => {
      const m = /^metadata\/(\d+)\.root\.json$/.exec(path);
      if (m === null) return undefined;
      const body = served.get(path);
      return body === undefined ? undefined : { status: 200, body };
    });
    for (let version = 2; version <= 260; version++) {
      served.set(
        `metadata/${version}.root.json`,
        (await sim.sign(sim.buildRootSigned(version), root)).toBytes(),
      );
    }

    sim.requests.length = 0;
    await client.refresh();
    expect(rootRequests(sim)).toHaveLength(256);
    expect((await client.files())[metadataFile('root')]).toBe(
      bytesText(served.get('metadata/257.root.json') ?? new Uint8Array()),
    );
  });
});
