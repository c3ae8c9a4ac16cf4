// Arbitrary and tampered targets (TUF spec 5.6.3, 5.7): the bytes of a target file, or the
// targets metadata that describes them, are not what the targets keys signed.
import { webHashPort } from '@cairn/verify/hash';
import type { TargetFile } from '@cairn/verify/metadata';
import { buildTargets, describeTarget } from '@cairn/verify/repository';
import { describe, expect, it } from 'vitest';
import {
  BUFFERED_SLACK,
  EndlessBody,
  publishedRole,
  serve,
  signerUnderKeyId,
  stopAttack,
} from './support/attacker.js';
import {
  expectRefused,
  expectUpToDate,
  metadataFile,
  upToDateClient,
} from './support/client-under-test.js';
import { newSigner, type RepositorySimulator } from './support/repository-simulator.js';

const TARGET = 'db/main.cvd';
const CONTENT = new TextEncoder().encode('signature database, release 1\n');

async function clientWithTarget() {
  const scenario = await upToDateClient(async (sim) => {
    sim.addTarget(TARGET, CONTENT);
    await sim.publish();
  });
  const updater = await scenario.client.refresh();
  const info = await updater.getTargetInfo(TARGET);
  if (info === undefined) throw new Error(`${TARGET} is not listed`);
  const path = `targets/${scenario.sim.targetName(TARGET, info)}`;
  return { ...scenario, updater, info, path };
}

/** The honest download works again, and gives exactly the published bytes. */
async function expectHonestDownload(
  sim: RepositorySimulator,
  info: TargetFile,
  updater: {
    downloadTarget(target: TargetFile): Promise<Uint8Array>;
  },
): Promise<void> {
  stopAttack(sim);
  expect(await updater.downloadTarget(info)).toEqual(CONTENT);
}

describe('arbitrary and tampered targets', () => {
  it('refuses a target whose bytes were changed, same length (BAD_HASH)', async () => {
    const { sim, client, updater, info, path } = await clientWithTarget();
    const tampered = CONTENT.slice();
    tampered[0] = 'S'.charCodeAt(0);

    serve(sim, path, tampered);
    await expectRefused(client, () => updater.downloadTarget(info), 'BAD_HASH');
    await expectHonestDownload(sim, info, updater);
  });

  it('refuses a target shorter than its listed length (BAD_LENGTH)', async () => {
    const { sim, client, updater, info, path } = await clientWithTarget();

    serve(sim, path, CONTENT.subarray(0, CONTENT.length - 1));
    await expectRefused(client, () => updater.downloadTarget(info), 'BAD_LENGTH');
    await expectHonestDownload(sim, info, updater);
  });

  it('refuses a target longer than its listed length, sent chunked (TOO_LARGE)', async () => {
    const { sim, client, updater, info, path } = await clientWithTarget();

    serve(sim, path, new Uint8Array([...CONTENT, 0x0a]));
    await expectRefused(client, () => updater.downloadTarget(info), 'TOO_LARGE');
    await expectHonestDownload(sim, info, updater);
  });

  it('refuses a target longer than its listed length, sent with its Content-Length (TOO_LARGE)', async () => {
    const { sim, client, updater, info, path } = await clientWithTarget();
    // Published files are sent with a Content-Length header.
    sim.files.set(path, new Uint8Array([...CONTENT, 0x0a]));
    await expectRefused(client, () => updater.downloadTarget(info), 'TOO_LARGE');
    sim.files.set(path, CONTENT);
    await expectHonestDownload(sim, info, updater);
  });

  it('stops an endless target body at the listed length (TOO_LARGE)', async () => {
    const { sim, client, updater, info, path } = await clientWithTarget();

    const body = new EndlessBody();
    serve(sim, path, body);
    await expectRefused(client, () => updater.downloadTarget(info), 'TOO_LARGE');
    expect(body.served).toBeLessThan(CONTENT.length + BUFFERED_SLACK);
    await expectHonestDownload(sim, info, updater);
  });

  it.each([
    ['a key the root does not list', false],
    ['a key the root does not list, posing under the trusted keyid', true],
  ])(
    'refuses targets metadata listing an arbitrary target, signed by %s (THRESHOLD)',
    async (_what, posing) => {
      const { sim, client } = await clientWithTarget();
      sim.addTarget('db/daily.cvd', 'daily 2');
      await sim.publish();
      const version = sim.roleVersions.get('targets') ?? 0;
      const attackerKey = await newSigner();
      const [trustedKey] = sim.signersOf('targets');
      const signer =
        posing && trustedKey !== undefined
          ? signerUnderKeyId(attackerKey, trustedKey.keyid)
          : attackerKey;
      const forged = await sim.sign(
        buildTargets({
          version,
          expires: sim.expires('targets'),
          targets: [
            await describeTarget(webHashPort, 'db/daily.cvd', new TextEncoder().encode('malware')),
          ],
        }),
        [signer],
      );

      serve(sim, `metadata/${version}.targets.json`, forged.toBytes());
      await expectRefused(client, () => client.refresh(), 'THRESHOLD', {
        [metadataFile('timestamp')]: publishedRole(sim, 'timestamp'),
        [metadataFile('snapshot')]: publishedRole(sim, 'snapshot'),
      });

      stopAttack(sim);
      const updater = await expectUpToDate(client, sim);
      expect((await updater.getTargetInfo('db/daily.cvd'))?.length).toBe('daily 2'.length);
    },
  );

  it('refuses delegated targets metadata signed by a key the delegation does not list (THRESHOLD)', async () => {
    const { sim, client } = await upToDateClient(async (sim) => {
      await sim.delegate('targets', { name: 'daily', paths: ['daily/*'] });
      sim.addTarget('daily/1.cvd', 'daily 1', 'daily');
      await sim.publish();
    });
    const version = sim.roleVersions.get('daily') ?? 0;
    const forged = await sim.sign(
      buildTargets({
        version,
        expires: sim.expires('daily'),
        targets: [
          await describeTarget(webHashPort, 'daily/1.cvd', new TextEncoder().encode('malware')),
        ],
      }),
      // The top-level targets key is trusted, but not for this role.
      sim.signersOf('targets'),
    );

    serve(sim, `metadata/${version}.daily.json`, forged.toBytes());
    await expectRefused(
      client,
      async () => (await client.refresh()).getTargetInfo('daily/1.cvd'),
      'THRESHOLD',
    );

    stopAttack(sim);
    const info = await (await client.refresh()).getTargetInfo('daily/1.cvd');
    expect(info?.length).toBe('daily 1'.length);
  });
});
