// Endless-data attacks (TUF spec 5.3.3, 5.4.1, 5.5.1, 5.6.1, 5.7): every download has a cap —
// the length the referring metadata gives, else a limit from limits.ts — and the client stops
// reading there, whether the body is merely too big or never ends. For endless bodies the
// tests also bound how much the server produced, which tells "stopped at the cap" apart from
// "read on to some larger limit, then refused".
import { DEFAULT_LIMITS } from '@cairn/verify/limits';
import { MetaFile } from '@cairn/verify/metadata';
import { describe, expect, it } from 'vitest';
import {
  BUFFERED_SLACK,
  EndlessBody,
  padTo,
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

const TIMESTAMP_CAP = DEFAULT_LIMITS.timestampMaxLength;

describe('endless data', () => {
  it('uses a timestamp cap of 16384 bytes', () => {
    expect(TIMESTAMP_CAP).toBe(16_384);
  });

  it('refuses a 20000-byte timestamp.json (TOO_LARGE)', async () => {
    const { sim, client } = await upToDateClient();

    serve(sim, 'metadata/timestamp.json', padTo(new TextEncoder().encode('{}'), 20_000));
    await expectRefused(client, () => client.refresh(), 'TOO_LARGE');

    stopAttack(sim);
    await expectUpToDate(client, sim);
  });

  it('stops reading an endless timestamp.json at the cap (TOO_LARGE)', async () => {
    const { sim, client } = await upToDateClient();
    const body = new EndlessBody();

    serve(sim, 'metadata/timestamp.json', body);
    await expectRefused(client, () => client.refresh(), 'TOO_LARGE');
    expect(body.served).toBeLessThan(TIMESTAMP_CAP + BUFFERED_SLACK);

    stopAttack(sim);
    await expectUpToDate(client, sim);
  });

  it('accepts a genuine timestamp of exactly the cap and refuses it one byte longer (TOO_LARGE)', async () => {
    const { sim, client } = await upToDateClient();
    await sim.bumpTimestamp();
    const honest = publishedRole(sim, 'timestamp');

    // Trailing whitespace changes neither the JSON nor its signatures.
    serve(sim, 'metadata/timestamp.json', padTo(honest, TIMESTAMP_CAP + 1));
    await expectRefused(client, () => client.refresh(), 'TOO_LARGE');

    stopAttack(sim);
    serve(sim, 'metadata/timestamp.json', padTo(honest, TIMESTAMP_CAP));
    await client.refresh();
    expect((await client.files())[metadataFile('timestamp')]?.length).toBe(TIMESTAMP_CAP);
  });

  it('refuses a genuine next root padded to one byte over the root cap (TOO_LARGE)', async () => {
    const { sim, client } = await upToDateClient();
    await sim.publishRoot();

    serve(sim, 'metadata/2.root.json', padTo(sim.rootBytes(2), DEFAULT_LIMITS.rootMaxLength + 1));
    await expectRefused(client, () => client.refresh(), 'TOO_LARGE');

    stopAttack(sim);
    await expectUpToDate(client, sim);
  });

  it('stops reading an endless next root at the root cap (TOO_LARGE)', async () => {
    const { sim, client } = await upToDateClient();
    await sim.publishRoot();
    const body = new EndlessBody();

    serve(sim, 'metadata/2.root.json', body);
    await expectRefused(client, () => client.refresh(), 'TOO_LARGE');
    expect(body.served).toBeLessThan(DEFAULT_LIMITS.rootMaxLength + BUFFERED_SLACK);

    stopAttack(sim);
    await expectUpToDate(client, sim);
  });

  it('refuses a snapshot one byte longer than the timestamp says (TOO_LARGE)', async () => {
    const { sim, client } = await upToDateClient();
    await sim.publish();
    const path = `metadata/${sim.metadataName('snapshot', sim.snapshotVersion)}`;

    serve(sim, path, padTo(published(sim, path), published(sim, path).length + 1));
    await expectRefused(client, () => client.refresh(), 'TOO_LARGE', {
      [metadataFile('timestamp')]: publishedRole(sim, 'timestamp'),
    });

    stopAttack(sim);
    await expectUpToDate(client, sim);
  });

  it.each([
    ['at the length the timestamp gives', true],
    ['at the snapshot cap when the timestamp gives no length', false],
  ])('stops reading an endless snapshot %s (TOO_LARGE)', async (_what, withLength) => {
    const { sim, client } = await upToDateClient();
    await sim.publish();
    if (!withLength) await sim.publishTimestamp(new MetaFile({ version: sim.snapshotVersion }));
    const cap = withLength
      ? publishedRole(sim, 'snapshot').length
      : DEFAULT_LIMITS.snapshotMaxLength;
    const body = new EndlessBody();

    serve(sim, `metadata/${sim.metadataName('snapshot', sim.snapshotVersion)}`, body);
    await expectRefused(client, () => client.refresh(), 'TOO_LARGE', {
      [metadataFile('timestamp')]: publishedRole(sim, 'timestamp'),
    });
    expect(body.served).toBeLessThan(cap + BUFFERED_SLACK);

    stopAttack(sim);
    await expectUpToDate(client, sim);
  });

  it.each([
    ['at the length the snapshot gives', true],
    ['at the targets cap when the snapshot gives no length', false],
  ])('stops reading an endless targets.json %s (TOO_LARGE)', async (_what, withLength) => {
    const { sim, client } = await upToDateClient();
    sim.addTarget('db/main.cvd', 'release 2');
    await sim.publish();
    if (withLength) await snapshotWithTargetsHashes(sim);
    expect(sim.snapshot.signed.meta.get('targets.json')?.length !== undefined).toBe(withLength);
    const cap = withLength ? publishedRole(sim, 'targets').length : DEFAULT_LIMITS.targetsMaxLength;
    const body = new EndlessBody();

    serve(sim, `metadata/${sim.metadataName('targets', 2)}`, body);
    await expectRefused(client, () => client.refresh(), 'TOO_LARGE', {
      [metadataFile('timestamp')]: publishedRole(sim, 'timestamp'),
      [metadataFile('snapshot')]: publishedRole(sim, 'snapshot'),
    });
    expect(body.served).toBeLessThan(cap + BUFFERED_SLACK);

    stopAttack(sim);
    await expectUpToDate(client, sim);
  });

  it('stops reading an endless delegated role at the targets cap (TOO_LARGE)', async () => {
    const { sim, client } = await upToDateClient(async (sim) => {
      await sim.delegate('targets', { name: 'daily', paths: ['daily/*'] });
      sim.addTarget('daily/1.cvd', 'daily 1', 'daily');
      await sim.publish();
    });
    const body = new EndlessBody();

    serve(sim, `metadata/${sim.metadataName('daily', 1)}`, body);
    await expectRefused(
      client,
      async () => (await client.refresh()).getTargetInfo('daily/1.cvd'),
      'TOO_LARGE',
    );
    expect(body.served).toBeLessThan(DEFAULT_LIMITS.targetsMaxLength + BUFFERED_SLACK);

    stopAttack(sim);
    expect(await (await client.refresh()).getTargetInfo('daily/1.cvd')).toBeDefined();
  });
});
