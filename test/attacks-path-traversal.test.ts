// Path traversal: role names become file names in the client's metadata directory and target
// paths become URLs and file names. Names that could climb out, or take the place of a
// top-level role's file, are refused (BAD_NAME) and nothing is written outside the directory.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { webHashPort } from '@cairn/verify/hash';
import { DelegatedRole, SuccinctRoles, TargetFile, MetaFile } from '@cairn/verify/metadata';
import { buildTargets, describeMetadata, describeTarget } from '@cairn/verify/repository';
import { describe, expect, it } from 'vitest';
import { publishedRole } from './support/attacker.js';
import {
  type ClientUnderTest,
  expectRefused,
  expectUpToDate,
  metadataFile,
  upToDateClient,
} from './support/client-under-test.js';
import { newSigner } from './support/repository-simulator.js';

const TOP_LEVEL_FILES = ['root', 'snapshot', 'targets', 'timestamp'].map(metadataFile).sort();

/** The client's root holds `client/metadata/` and, in it, only the four top-level files. */
async function expectNothingOutsideTheMetadataDir(client: ClientUnderTest): Promise<void> {
  expect(await readdir(client.root)).toEqual(['client']);
  expect(await readdir(join(client.root, 'client'))).toEqual(['metadata']);
  expect(Object.keys(await client.files()).sort()).toEqual(TOP_LEVEL_FILES);
}

describe('path traversal', () => {
  it.each(['../../evil', 'timestamp', 'root', '/tmp/evil', 'daily/../../evil', 'a\\..\\..\\evil'])(
    'refuses targets metadata that delegates to a role named %j (BAD_NAME)',
    async (name) => {
      const { sim, client } = await upToDateClient();
      const key = await newSigner();
      // The delegation alone is enough: the client must refuse it before looking for the role.
      sim.delegations.push({
        delegator: 'targets',
        signers: [key],
        role: new DelegatedRole({
          name,
          keyids: [key.keyid],
          threshold: 1,
          terminating: false,
          paths: ['*'],
        }),
      });
      await sim.publish();

      await expectRefused(client, () => client.refresh(), 'BAD_NAME', {
        [metadataFile('timestamp')]: publishedRole(sim, 'timestamp'),
        [metadataFile('snapshot')]: publishedRole(sim, 'snapshot'),
      });
      await expectNothingOutsideTheMetadataDir(client);

      sim.delegations.length = 0;
      await sim.publish();
      await expectUpToDate(client, sim);
    },
  );

  it.each([
    '../../etc/passwd',
    '/etc/passwd',
    'db/../../etc/passwd',
    'db\\..\\passwd',
    '',
    'db//main.cvd',
    './db',
  ])('refuses to look up the target path %j before making any request (BAD_NAME)', async (path) => {
    const { sim, client } = await upToDateClient();
    const requests = sim.requests.length;
    await expectRefused(client, () => client.updater().getTargetInfo(path), 'BAD_NAME');
    expect(sim.requests.length).toBe(requests);
  });

  it('never downloads a target that targets metadata lists as "../../etc/passwd" (BAD_NAME)', async () => {
    const { sim, client } = await upToDateClient(async (sim) => {
      sim.addTarget('../../etc/passwd', 'root::0:0:root:/root:/bin/sh\n');
      await sim.publish();
    });
    const updater = await client.refresh();
    const listed = updater.trusted?.targets?.signed.targets.get('../../etc/passwd');
    expect(listed).toBeInstanceOf(TargetFile);
    const requests = sim.requests.length;

    await expectRefused(client, () => updater.getTargetInfo('../../etc/passwd'), 'BAD_NAME');
    if (listed !== undefined) {
      await expectRefused(client, () => updater.downloadTarget(listed), 'BAD_NAME');
    }
    expect(sim.requests.length).toBe(requests);
    await expectNothingOutsideTheMetadataDir(client);
  });

  // Regression: a succinct delegation's bins are role names too, so name_prefix is checked
  // like any delegated role name.
  it('refuses a succinct delegation whose name_prefix is "../../evil" (BAD_NAME)', async () => {
    const { sim, client } = await upToDateClient();
    const binKey = await newSigner();
    const succinct = new SuccinctRoles({
      keyids: [binKey.keyid],
      threshold: 1,
      bitLength: 1,
      namePrefix: '../../evil',
    });
    const target = await describeTarget(webHashPort, 'db/main.cvd', new TextEncoder().encode('x'));
    const bin = await succinct.roleForTarget('db/main.cvd', webHashPort);
    const binBytes = (
      await sim.sign(
        buildTargets({ version: 1, expires: sim.expires('targets'), targets: [target] }),
        [binKey],
      )
    ).toBytes();
    const targets = await sim.sign(
      buildTargets({
        version: 2,
        expires: sim.expires('targets'),
        delegations: {
          keys: [{ keyid: binKey.keyid, publicKey: binKey.publicKey }],
          succinctRoles: succinct,
        },
      }),
      sim.signersOf('targets'),
    );
    sim.files.set('metadata/2.targets.json', targets.toBytes());
    // The client asks for `1.${quote(bin)}.json`; the simulator decodes request paths.
    sim.files.set(`metadata/1.${bin}.json`, binBytes);
    await sim.publishSnapshot({
      'targets.json': new MetaFile({ version: 2 }),
      [`${bin}.json`]: await describeMetadata(webHashPort, 1, binBytes),
    });

    await expect(
      (async () => (await client.refresh()).getTargetInfo('db/main.cvd'))(),
    ).rejects.toMatchObject({ code: 'BAD_NAME' });
    await expectNothingOutsideTheMetadataDir(client);
  });
});
