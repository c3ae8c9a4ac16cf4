// Mix-and-match attacks (TUF spec 5.5.2, 5.5.4): a mirror serves a snapshot that is not the
// one the timestamp describes — tampered, cut short, or genuinely signed but of another release.
import type { VerifyErrorCode } from '@cairn/verify/errors';
import { MetaFile } from '@cairn/verify/metadata';
import { describe, expect, it } from 'vitest';
import {
  published,
  publishedRole,
  serve,
  snapshotWithTargetsHashes,
  stopAttack,
} from './support/attacker.js';
import {
  expectRefused,
  expectUpToDate,
  metadataFile,
  upToDateClient,
} from './support/client-under-test.js';
import type { RepositorySimulator } from './support/repository-simulator.js';

/** Publishes a release the client has not seen; returns its snapshot's path and bytes. */
async function newRelease(sim: RepositorySimulator): Promise<{ path: string; bytes: Uint8Array }> {
  sim.addTarget(`db/${sim.snapshotVersion + 1}.cvd`, `release ${sim.snapshotVersion + 1}`);
  await sim.publish();
  const path = `metadata/${sim.metadataName('snapshot', sim.snapshotVersion)}`;
  return { path, bytes: published(sim, path) };
}

describe('mix-and-match', () => {
  it('refuses a snapshot whose bytes do not match the hash in the timestamp (BAD_HASH)', async () => {
    const { sim, client } = await upToDateClient();
    const release = await newRelease(sim);
    // Same length, still valid JSON with the same meaning: only the hash can tell.
    serve(sim, release.path, swapFirstNewline(release.bytes));
    await expectRefused(client, () => client.refresh(), 'BAD_HASH', {
      [metadataFile('timestamp')]: publishedRole(sim, 'timestamp'),
    });

    stopAttack(sim);
    await expectUpToDate(client, sim);
  });

  it('refuses a snapshot shorter than the length in the timestamp (BAD_LENGTH)', async () => {
    const { sim, client } = await upToDateClient();
    const release = await newRelease(sim);
    serve(sim, release.path, dropFirstNewline(release.bytes));
    await expectRefused(client, () => client.refresh(), 'BAD_LENGTH', {
      [metadataFile('timestamp')]: publishedRole(sim, 'timestamp'),
    });

    stopAttack(sim);
    await expectUpToDate(client, sim);
  });

  it('refuses the genuine snapshot of the previous release in place of the one the timestamp names (BAD_HASH)', async () => {
    const { sim, client } = await upToDateClient();
    const previous = publishedRole(sim, 'snapshot');
    const release = await newRelease(sim);
    // Same length (versions 1 and 2, same expiry), so the length check cannot be what refuses it.
    expect(previous.length).toBe(release.bytes.length);

    serve(sim, release.path, previous);
    await expectRefused(client, () => client.refresh(), 'BAD_HASH', {
      [metadataFile('timestamp')]: publishedRole(sim, 'timestamp'),
    });

    stopAttack(sim);
    await expectUpToDate(client, sim);
  });

  it('refuses a genuine snapshot of another version when the timestamp gives no hashes (VERSION_MISMATCH)', async () => {
    // A repository whose timestamps name only the snapshot version, as the spec allows.
    const withoutHashes = (sim: RepositorySimulator) =>
      sim.publishTimestamp(new MetaFile({ version: sim.snapshotVersion }));
    const { sim, client } = await upToDateClient(withoutHashes);
    const previous = publishedRole(sim, 'snapshot');
    const release = await newRelease(sim);
    await withoutHashes(sim);

    serve(sim, release.path, previous);
    await expectRefused(client, () => client.refresh(), 'VERSION_MISMATCH', {
      [metadataFile('timestamp')]: publishedRole(sim, 'timestamp'),
    });

    stopAttack(sim);
    await expectUpToDate(client, sim);
  });

  /** Each case: what the mirror serves instead of targets v2, given v1 and v2. */
  const TARGETS_CASES: [string, VerifyErrorCode, (v1: Uint8Array, v2: Uint8Array) => Uint8Array][] =
    [
      ['a changed byte, same length', 'BAD_HASH', (_v1, v2) => swapFirstNewline(v2)],
      ['one byte missing', 'BAD_LENGTH', (_v1, v2) => dropFirstNewline(v2)],
      ['one byte extra', 'TOO_LARGE', (_v1, v2) => new Uint8Array([...v2, 0x20])],
      ['the genuine previous version, same length', 'BAD_HASH', (v1) => v1],
    ];

  it.each(TARGETS_CASES)(
    'refuses targets.json with %s when the snapshot gives its length and hashes (%s)',
    async (_what, code, make) => {
      const { sim, client } = await upToDateClient(async (sim) => {
        sim.addTarget('db/main.cvd', 'release 1');
        await sim.publish();
        await snapshotWithTargetsHashes(sim);
      });
      const v1 = publishedRole(sim, 'targets');
      sim.addTarget('db/main.cvd', 'release 2');
      await sim.publish();
      await snapshotWithTargetsHashes(sim);
      const v2 = publishedRole(sim, 'targets');
      const served = make(v1, v2);
      expect(served.length - v2.length).toBe({ BAD_LENGTH: -1, TOO_LARGE: 1 }[code as string] ?? 0);

      serve(
        sim,
        `metadata/${sim.metadataName('targets', sim.roleVersions.get('targets') ?? 0)}`,
        served,
      );
      await expectRefused(client, () => client.refresh(), code, {
        [metadataFile('timestamp')]: publishedRole(sim, 'timestamp'),
        [metadataFile('snapshot')]: publishedRole(sim, 'snapshot'),
      });

      stopAttack(sim);
      await expectUpToDate(client, sim);
    },
  );
});

/** The same JSON, same length, different bytes: the first newline becomes a space. */
function swapFirstNewline(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  out[out.indexOf(0x0a)] = 0x20;
  return out;
}

/** The same JSON, one byte shorter: the first newline is dropped. */
function dropFirstNewline(bytes: Uint8Array): Uint8Array {
  const at = bytes.indexOf(0x0a);
  return new Uint8Array([...bytes.subarray(0, at), ...bytes.subarray(at + 1)]);
}
