// Signatures below threshold (TUF spec 5.4.2 and every "signed by a threshold" step): one
// stolen key must not be enough where the root demands two, however the attacker dresses up
// its signatures — missing, garbage, replayed, duplicated, or under a second keyid.
import { ECDSA_P256_SCHEME, Key, computeKeyId } from '@cairn/verify/keys';
import type { Signer } from '@cairn/verify/signer';
import { describe, expect, it } from 'vitest';
import {
  currentSnapshotMeta,
  documentBytes,
  forgeTimestamp,
  parseDocument,
  publishedRole,
  serve,
  signerUnderKeyId,
  stopAttack,
} from './support/attacker.js';
import { expectRefused, expectUpToDate, upToDateClient } from './support/client-under-test.js';
import { newSigner, type RepositorySimulator } from './support/repository-simulator.js';

/** Timestamp needs two of two keys; returns them. The client already trusts this root. */
async function twoTimestampKeys() {
  let keys: [Signer, Signer] | undefined;
  const scenario = await upToDateClient(async (sim) => {
    keys = [await newSigner(), await newSigner()];
    await sim.rotate('timestamp', keys, 2);
    await sim.publishRoot();
    await sim.bumpTimestamp();
  });
  if (keys === undefined) throw new Error('unreachable');
  return { ...scenario, keys };
}

/** After the attack, the honest repository's next timestamp is accepted. */
async function expectRecovery(
  sim: RepositorySimulator,
  client: Parameters<typeof expectUpToDate>[0],
) {
  stopAttack(sim);
  await sim.bumpTimestamp();
  await expectUpToDate(client, sim);
}

describe('signature thresholds', () => {
  it.each([
    ['one valid signature and nothing else', 'alone'],
    ['one valid signature and garbage under the second keyid', 'garbage'],
    ['one valid signature and an unknown key’s signature under the second keyid', 'impostor'],
    [
      'one valid signature and the second key’s signature replayed from the previous timestamp',
      'replay',
    ],
  ])('refuses a timestamp with %s when the threshold is 2 (THRESHOLD)', async (_what, kind) => {
    const { sim, client, keys } = await twoTimestampKeys();
    const [stolen, other] = keys;
    const previous = parseDocument(publishedRole(sim, 'timestamp'));
    const forged = parseDocument(
      await forgeTimestamp(sim, currentSnapshotMeta(sim), {
        signers:
          kind === 'impostor'
            ? [stolen, signerUnderKeyId(await newSigner(), other.keyid)]
            : [stolen],
      }),
    );
    if (kind === 'garbage') forged.signatures.push({ keyid: other.keyid, sig: 'ab'.repeat(64) });
    if (kind === 'replay') {
      const replayed = previous.signatures.find((s) => s.keyid === other.keyid);
      if (replayed === undefined) throw new Error('the previous timestamp lacks the second key');
      forged.signatures.push(replayed);
    }

    serve(sim, 'metadata/timestamp.json', documentBytes(forged));
    await expectRefused(client, () => client.refresh(), 'THRESHOLD');
    await expectRecovery(sim, client);
  });

  it.each([
    ['identical', false],
    ['differing in the signature value', true],
  ])(
    'refuses a timestamp where one key signs twice under the same keyid, %s (DUPLICATE_SIGNATURE)',
    async (_what, differing) => {
      const { sim, client, keys } = await twoTimestampKeys();
      const forged = parseDocument(
        await forgeTimestamp(sim, currentSnapshotMeta(sim), { signers: [keys[0]] }),
      );
      const [signature] = forged.signatures;
      if (signature === undefined) throw new Error('unsigned');
      forged.signatures.push(
        differing ? { keyid: signature.keyid, sig: 'cd'.repeat(64) } : { ...signature },
      );

      serve(sim, 'metadata/timestamp.json', documentBytes(forged));
      await expectRefused(client, () => client.refresh(), 'DUPLICATE_SIGNATURE');
      await expectRecovery(sim, client);
    },
  );

  it('refuses a root N+1 that repeats one root key’s signature (DUPLICATE_SIGNATURE)', async () => {
    const { sim, client } = await upToDateClient();
    const next = parseDocument((await sim.publishRoot()).toBytes());
    const [signature] = next.signatures;
    if (signature === undefined) throw new Error('unsigned');
    next.signatures.push({ ...signature });

    serve(sim, 'metadata/2.root.json', documentBytes(next));
    await expectRefused(client, () => client.refresh(), 'DUPLICATE_SIGNATURE');

    stopAttack(sim);
    await expectUpToDate(client, sim);
  });

  /**
   * Root lists three timestamp keyids with threshold 2, but two of them are the same key
   * (`alias` builds the second entry for it). The honest repository signs with two distinct
   * keys; the thief of the aliased key signs under both of its keyids.
   */
  async function aliasedTimestampKey(
    kind: 'ed25519' | 'ecdsa',
    alias: (key: Signer) => Promise<Signer>,
  ) {
    let stolen: Signer | undefined;
    let aliased: Signer | undefined;
    const scenario = await upToDateClient(async (sim) => {
      stolen = await newSigner(kind);
      aliased = await alias(stolen);
      expect(aliased.keyid).not.toBe(stolen.keyid);
      await sim.rotate('timestamp', [stolen, aliased, await newSigner()], 2);
      await sim.publishRoot();
      // Honest timestamps carry three signatures, two of them from the same key: still valid,
      // since the third key alone brings the distinct count to two.
      await sim.bumpTimestamp();
    });
    if (stolen === undefined || aliased === undefined) throw new Error('unreachable');
    const { sim, client } = scenario;

    serve(
      sim,
      'metadata/timestamp.json',
      await forgeTimestamp(sim, currentSnapshotMeta(sim), { signers: [stolen, aliased] }),
    );
    await expectRefused(client, () => client.refresh(), 'THRESHOLD');
    await expectRecovery(sim, client);
  }

  it('counts a key listed under two keyids in root once (THRESHOLD)', async () => {
    // The second keyid is not the key's own (the reversed hex), as an insider could list it.
    await aliasedTimestampKey('ed25519', (key) =>
      Promise.resolve(signerUnderKeyId(key, [...key.keyid].reverse().join(''))),
    );
  });

  // Regression: "each key counts once" compares key material, not its text, so one key
  // spelled two ways cannot meet a threshold of 2.
  it('counts an ed25519 key listed twice, in lowercase and in uppercase hex, once (THRESHOLD)', async () => {
    await aliasedTimestampKey('ed25519', async (key) => {
      const upper = new Key('ed25519', 'ed25519', key.publicKey.publicValue.toUpperCase());
      return signerUnderKeyId(key, await computeKeyId(upper), upper);
    });
  });

  // Regression: 'ecdsa' and 'ecdsa-sha2-nistp256' name the same P-256 key: it counts once.
  it('counts an ECDSA key listed twice, as keytype "ecdsa" and "ecdsa-sha2-nistp256", once (THRESHOLD)', async () => {
    await aliasedTimestampKey('ecdsa', async (key) => {
      expect(key.publicKey.keytype).toBe('ecdsa');
      const renamed = new Key('ecdsa-sha2-nistp256', ECDSA_P256_SCHEME, key.publicKey.publicValue);
      return signerUnderKeyId(key, await computeKeyId(renamed), renamed);
    });
  });
});
