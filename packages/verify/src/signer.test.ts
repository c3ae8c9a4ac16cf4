import { describe, expect, test } from 'vitest';
import { utf8 } from './encoding.js';
import { derToP1363 } from './keys.js';
import { Metadata, verifyDelegate } from './metadata.js';
import { buildRoot } from './repository.js';
import {
  EcdsaP256Signer,
  Ed25519Signer,
  mergeSignatures,
  signMetadata,
  type Signer,
} from './signer.js';
import { T0 } from './testing/memory-repository.js';

describe.each([
  ['ed25519', () => Ed25519Signer.generate()],
  ['ecdsa', () => EcdsaP256Signer.generate()],
])('%s signer', (_name, generate: () => Promise<Signer>) => {
  test('signs what its public key verifies, and nothing else', async () => {
    const signer = await generate();
    const sig = await signer.sign(utf8('release 42'));
    expect(await signer.publicKey.verify(sig, utf8('release 42'))).toBe(true);
    expect(await signer.publicKey.verify(sig, utf8('release 43'))).toBe(false);
  });

  test('keyid is the sha256 of the canonical public key, 64 hex digits', async () => {
    const signer = await generate();
    expect(signer.keyid).toMatch(/^[0-9a-f]{64}$/);
  });
});

test('ECDSA signatures are strict DER that round-trips to 64 bytes r||s', async () => {
  const signer = await EcdsaP256Signer.generate();
  const der = await signer.sign(utf8('x'));
  const bytes = Uint8Array.from(der.match(/../g) ?? [], (h) => parseInt(h, 16));
  expect(derToP1363(bytes)?.length).toBe(64);
});

test('an ECDSA key exported as PKCS#8 and imported again signs for the same keyid', async () => {
  const signer = await EcdsaP256Signer.generate();
  const again = await EcdsaP256Signer.fromPkcs8(await signer.exportPkcs8());
  expect(again.keyid).toBe(signer.keyid);
  expect(await signer.publicKey.verify(await again.sign(utf8('m')), utf8('m'))).toBe(true);
});

test('an ed25519 key restored from its secret has the same keyid', async () => {
  const signer = await Ed25519Signer.generate();
  const again = await Ed25519Signer.fromSecretKey(signer.exportSecretKey());
  expect(again.keyid).toBe(signer.keyid);
});

describe('threshold signing: two publishers sign the same draft at different times', () => {
  function draft(a: Signer, b: Signer) {
    const keys = [a, b].map((s) => ({ keyid: s.keyid, publicKey: s.publicKey }));
    const one = { keys: keys.slice(0, 1), threshold: 1 };
    return new Metadata(
      buildRoot({
        expires: new Date(T0.getTime() + 1e9),
        roles: { root: one, timestamp: one, snapshot: one, targets: { keys, threshold: 2 } },
      }),
    );
  }

  test('merged signatures meet a threshold of 2 that neither meets alone', async () => {
    const alice = await Ed25519Signer.generate();
    const bob = await EcdsaP256Signer.generate();
    const root = draft(alice, bob);
    const byAlice = await signMetadata(root, [alice]);
    const byBob = await signMetadata(root, [bob]);
    await expect(verifyDelegate(root.signed, 'targets', byAlice)).rejects.toMatchObject({
      code: 'THRESHOLD',
    });
    const merged = mergeSignatures(byAlice, byBob);
    expect(merged.signatures.map((s) => s.keyid)).toEqual([alice.keyid, bob.keyid]);
    await expect(verifyDelegate(root.signed, 'targets', merged)).resolves.toBeUndefined();
  });

  test('the same publisher signing twice counts once', async () => {
    const alice = await Ed25519Signer.generate();
    const bob = await Ed25519Signer.generate();
    const root = draft(alice, bob);
    const merged = mergeSignatures(
      await signMetadata(root, [alice]),
      await signMetadata(root, [alice]),
    );
    expect(merged.signatures).toHaveLength(1);
    await expect(verifyDelegate(root.signed, 'targets', merged)).rejects.toMatchObject({
      code: 'THRESHOLD',
    });
  });

  test('signatures over different contents are refused with SIGNED_DIFFERS', async () => {
    const alice = await Ed25519Signer.generate();
    const bob = await Ed25519Signer.generate();
    const a = await signMetadata(draft(alice, bob), [alice]);
    const b = await signMetadata(draft(bob, alice), [bob]);
    expect(() => mergeSignatures(a, b)).toThrow(
      expect.objectContaining({ code: 'SIGNED_DIFFERS' }),
    );
  });
});
