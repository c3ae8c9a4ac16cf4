// Freeze attacks (TUF spec 5.3.10, 5.4.4, 5.5.6, 5.6.5): a mirror keeps serving the same,
// genuine metadata after it expired, to hide newer releases. The client's clock is fixed with
// the Updater's `now` option; one role at a time expires while every other is still fresh, so
// nothing else can be the reason for the refusal.
import { describe, expect, it } from 'vitest';
import {
  DAY,
  NOW,
  expectRefused,
  expectUpToDate,
  metadataFile,
  upToDateClient,
  bytesText,
} from './support/client-under-test.js';
import { publishedRole } from './support/attacker.js';
import type { RepositorySimulator } from './support/repository-simulator.js';

const TOP_LEVEL = ['root', 'timestamp', 'snapshot', 'targets'] as const;

/** Every role lives 30 days except `shortLived`, which lives one day. */
async function expireOneRoleFirst(sim: RepositorySimulator, shortLived: string): Promise<void> {
  for (const role of [...TOP_LEVEL, 'daily'])
    sim.expiry.set(role, role === shortLived ? DAY : 30 * DAY);
  await sim.delegate('targets', { name: 'daily', paths: ['daily/*'] });
  sim.addTarget('daily/1.cvd', 'daily 1', 'daily');
  await sim.publishRoot();
  await sim.publish();
}

describe('freeze', () => {
  it.each(TOP_LEVEL)(
    'refuses to go on when %s has expired and the repository is frozen (EXPIRED)',
    async (role) => {
      const { sim, client } = await upToDateClient((sim) => expireOneRoleFirst(sim, role));

      client.now = new Date(NOW.getTime() + 2 * DAY);
      await expectRefused(client, () => client.refresh(), 'EXPIRED');

      // The repository wakes up and re-signs everything at the client's time.
      sim.now = client.now;
      await sim.publishRoot();
      await sim.publish();
      await expectUpToDate(client, sim);
    },
  );

  it('refuses to use a delegated role that has expired while the repository is frozen (EXPIRED)', async () => {
    const { sim, client } = await upToDateClient((sim) => expireOneRoleFirst(sim, 'daily'));
    expect(await (await client.refresh()).getTargetInfo('daily/1.cvd')).toBeDefined();

    client.now = new Date(NOW.getTime() + 2 * DAY);
    await expectRefused(
      client,
      async () => (await client.refresh()).getTargetInfo('daily/1.cvd'),
      'EXPIRED',
    );

    sim.now = client.now;
    await sim.publish();
    const updater = await expectUpToDate(client, sim, { extraRoles: ['daily'] });
    expect(await updater.getTargetInfo('daily/1.cvd')).toBeDefined();
    expect((await client.files())[metadataFile('daily')]).toBe(
      bytesText(publishedRole(sim, 'daily')),
    );
  });

  it('counts metadata as expired at the very second of its expiry (EXPIRED), not one millisecond before', async () => {
    const { sim, client } = await upToDateClient((sim) => expireOneRoleFirst(sim, 'timestamp'));
    const expires = NOW.getTime() + DAY;

    client.now = new Date(expires - 1);
    await expectUpToDate(client, sim);

    client.now = new Date(expires);
    await expectRefused(client, () => client.refresh(), 'EXPIRED');
  });

  it('refuses a new timestamp version that is already expired (EXPIRED)', async () => {
    const { sim, client } = await upToDateClient();
    // The origin's clock is a day behind: it signs a timestamp that expires right away.
    sim.now = new Date(NOW.getTime() - DAY);
    await sim.bumpTimestamp();
    await expectRefused(client, () => client.refresh(), 'EXPIRED');

    sim.now = NOW;
    await sim.bumpTimestamp();
    await expectUpToDate(client, sim);
  });
});
