// Each step of the section-5 state machine, fed bytes by hand (in-memory repository).
import { beforeEach, describe, expect, test } from 'vitest';
import { webHashPort } from './hash.js';
import { Metadata, type Root } from './metadata.js';
import { buildSnapshot, describeMetadata } from './repository.js';
import { Ed25519Signer, signMetadata } from './signer.js';
import { BASE, MemoryRepository, T0 } from './testing/memory-repository.js';
import { TrustedMetadataSet } from './trusted-metadata-set.js';

let repo: MemoryRepository;
const at = new Date(T0.getTime() + 1000);

function file(name: string): Uint8Array {
  const bytes = repo.fetcher.files.get(`${BASE}${name}`);
  if (bytes === undefined) throw new Error(`no ${name}`);
  return bytes;
}

beforeEach(async () => {
  repo = await MemoryRepository.create();
});

describe('root (5.3)', () => {
  test('a trusted root must carry its own threshold', async () => {
    const unsigned = (repo.latest.get('root') as Metadata<Root>).withSignatures([]).toBytes();
    await expect(TrustedMetadataSet.create(unsigned, at, webHashPort)).rejects.toMatchObject({
      code: 'THRESHOLD',
    });
  });

  test('the next root needs a threshold of the old keys AND of the new keys', async () => {
    const oldKey = repo.signersOf('root')[0]!;
    const newKey = await Ed25519Signer.generate();
    repo.signers.set('root', [newKey]);
    const trusted = await TrustedMetadataSet.create(repo.rootBytes(1), at, webHashPort);

    await repo.publishRoot({ signers: [newKey] });
    await expect(trusted.updateRoot(repo.rootBytes(2))).rejects.toMatchObject({
      code: 'THRESHOLD',
    });
    repo.rootVersion = 1;
    await repo.publishRoot({ signers: [oldKey] });
    await expect(trusted.updateRoot(repo.rootBytes(2))).rejects.toMatchObject({
      code: 'THRESHOLD',
    });
    repo.rootVersion = 1;
    await repo.publishRoot({ signers: [oldKey, newKey] });
    expect((await trusted.updateRoot(repo.rootBytes(2))).signed.version).toBe(2);
    expect(trusted.root.signed.version).toBe(2);
  });

  test('a root that is not exactly N+1 is refused and the trusted root stays', async () => {
    const trusted = await TrustedMetadataSet.create(repo.rootBytes(1), at, webHashPort);
    await expect(trusted.updateRoot(repo.rootBytes(1))).rejects.toMatchObject({ code: 'ROLLBACK' });
    await repo.publishRoot();
    await repo.publishRoot();
    await expect(trusted.updateRoot(repo.rootBytes(3))).rejects.toMatchObject({
      code: 'VERSION_MISMATCH',
    });
    expect(trusted.root.signed.version).toBe(1);
  });

  test('an expired final root stops the update before timestamp (5.3.10)', async () => {
    await repo.publishRoot({ expires: T0 });
    const trusted = await TrustedMetadataSet.create(repo.rootBytes(1), at, webHashPort);
    await trusted.updateRoot(repo.rootBytes(2));
    expect(() => trusted.checkFinalRoot()).toThrow(expect.objectContaining({ code: 'EXPIRED' }));
    await expect(trusted.updateTimestamp(file('timestamp.json'))).rejects.toMatchObject({
      code: 'EXPIRED',
    });
  });
});

describe('order of steps', () => {
  test('snapshot before timestamp, targets before snapshot, root after timestamp: INVALID_STATE', async () => {
    const trusted = await TrustedMetadataSet.create(repo.rootBytes(1), at, webHashPort);
    await expect(trusted.updateSnapshot(file('1.snapshot.json'))).rejects.toMatchObject({
      code: 'INVALID_STATE',
    });
    await expect(trusted.updateTargets(file('1.targets.json'))).rejects.toMatchObject({
      code: 'INVALID_STATE',
    });
    expect(await trusted.updateTimestamp(file('timestamp.json'))).toBe(true);
    await expect(trusted.updateRoot(repo.rootBytes(1))).rejects.toMatchObject({
      code: 'INVALID_STATE',
    });
    await trusted.updateSnapshot(file('1.snapshot.json'));
    await trusted.updateTargets(file('1.targets.json'));
    await expect(trusted.updateSnapshot(file('1.snapshot.json'))).rejects.toMatchObject({
      code: 'INVALID_STATE',
    });
  });
});

describe('snapshot (5.5)', () => {
  test('a stale local snapshot is still the rollback reference for the fresh one', async () => {
    await repo.delegate('targets', 'role-a');
    await repo.publish();
    const oldSnapshot = file('2.snapshot.json');
    await repo.publish();
    const trusted = await TrustedMetadataSet.create(repo.rootBytes(1), at, webHashPort);
    await trusted.updateTimestamp(file('timestamp.json'));
    // The local copy is version 2 while timestamp names 3: held, then refused as final.
    await expect(trusted.updateSnapshot(oldSnapshot, true)).rejects.toMatchObject({
      code: 'VERSION_MISMATCH',
    });
    // A fresh snapshot that drops role-a is a rollback against that local copy.
    const meta = new Map(
      (repo.latest.get('snapshot') as Metadata<ReturnType<typeof buildSnapshot>>).signed.meta,
    );
    meta.delete('role-a.json');
    const dropped = await signMetadata(
      new Metadata(
        buildSnapshot({
          version: 3,
          expires: new Date(T0.getTime() + 1e9),
          meta: Object.fromEntries(meta),
        }),
      ),
      repo.signersOf('snapshot'),
    );
    const bytes = dropped.toBytes();
    await repo.publishTimestamp(
      await describeMetadata(webHashPort, 3, bytes, { length: true, hashes: true }),
    );
    const trusted2 = await TrustedMetadataSet.create(repo.rootBytes(1), at, webHashPort);
    await trusted2.updateTimestamp(file('timestamp.json'));
    await expect(trusted2.updateSnapshot(oldSnapshot, true)).rejects.toMatchObject({
      code: 'VERSION_MISMATCH',
    });
    await expect(trusted2.updateSnapshot(bytes)).rejects.toMatchObject({ code: 'ROLLBACK' });
  });

  test('a snapshot whose bytes differ from what timestamp lists is refused before signatures', async () => {
    const trusted = await TrustedMetadataSet.create(repo.rootBytes(1), at, webHashPort);
    await trusted.updateTimestamp(file('timestamp.json'));
    const tampered = file('1.snapshot.json').slice();
    tampered[tampered.length - 3] = 0x20;
    await expect(trusted.updateSnapshot(tampered)).rejects.toMatchObject({ code: 'BAD_HASH' });
    expect(trusted.snapshot).toBeUndefined();
  });
});
