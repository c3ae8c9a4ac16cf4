import { describe, expect, it } from 'vitest';
import { toHex, utf8 } from '@cairn/verify/encoding';
import { isVerifyError } from '@cairn/verify/errors';
import { digest, webHashPort, type HashAlgorithm } from '@cairn/verify/hash';
import { nodeHashPort } from './node-hash.js';

// FIPS 180-2 appendix test vectors for "abc".
const ABC: Record<HashAlgorithm, string> = {
  sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
  sha512:
    'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a' +
    '2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
};

describe('nodeHashPort', () => {
  it.each(['sha256', 'sha512'] as const)(
    '%s matches the FIPS 180-2 vector for "abc"',
    async (alg) => {
      expect(toHex(await digest(nodeHashPort, alg, utf8('abc')))).toBe(ABC[alg]);
    },
  );

  it('gives the same digest however the input is split into chunks', async () => {
    const data = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 31 + (i >> 8)) & 0xff);
    const hasher = nodeHashPort.create('sha256');
    for (let i = 0; i < data.length; i += 777) hasher.update(data.subarray(i, i + 777));
    const streamed = await hasher.digest();
    expect(toHex(streamed)).toBe(toHex(await digest(webHashPort, 'sha256', data)));
  });

  it('returns a plain Uint8Array of the digest length', async () => {
    const out = await digest(nodeHashPort, 'sha512', new Uint8Array(0));
    expect(out.constructor).toBe(Uint8Array);
    expect(out.length).toBe(64);
  });

  it('refuses an algorithm it does not implement with UNKNOWN_HASH_ALGORITHM', () => {
    let caught: unknown;
    try {
      nodeHashPort.create('md5' as HashAlgorithm);
    } catch (e) {
      caught = e;
    }
    expect(isVerifyError(caught, 'UNKNOWN_HASH_ALGORITHM')).toBe(true);
  });
});
