import { describe, expect, test } from 'vitest';
import { fromHex, toHex, utf8 } from './encoding.js';
import { ContentVerifier, digest, verifyLengthAndHashes, webHashPort } from './hash.js';

// FIPS 180-2 appendix examples ("abc").
const ABC_SHA256 = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
const ABC_SHA512 =
  'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f';

describe('webHashPort', () => {
  test('sha256 and sha512 of "abc" match FIPS 180-2', async () => {
    expect(toHex(await digest(webHashPort, 'sha256', utf8('abc')))).toBe(ABC_SHA256);
    expect(toHex(await digest(webHashPort, 'sha512', utf8('abc')))).toBe(ABC_SHA512);
  });

  test('hashing in chunks equals hashing at once, also when the caller reuses its buffer', async () => {
    const hasher = webHashPort.create('sha256');
    const buf = new Uint8Array(1);
    for (const c of 'abc') {
      buf[0] = c.charCodeAt(0);
      hasher.update(buf);
    }
    expect(toHex(await hasher.digest())).toBe(ABC_SHA256);
  });
});

describe('ContentVerifier', () => {
  const expected = { length: 3, hashes: { sha256: ABC_SHA256, sha512: ABC_SHA512 } };

  test('accepts the exact bytes with every listed hash', async () => {
    await expect(
      verifyLengthAndHashes(webHashPort, utf8('abc'), expected, 'x'),
    ).resolves.toBeUndefined();
  });

  test('uppercase hex in metadata still matches', async () => {
    const upper = { length: 3, hashes: { sha256: ABC_SHA256.toUpperCase() } };
    await expect(
      verifyLengthAndHashes(webHashPort, utf8('abc'), upper, 'x'),
    ).resolves.toBeUndefined();
  });

  test('one wrong hash among several is BAD_HASH', async () => {
    const bad = { length: 3, hashes: { sha256: ABC_SHA256, sha512: '00'.repeat(64) } };
    await expect(verifyLengthAndHashes(webHashPort, utf8('abc'), bad, 'x')).rejects.toMatchObject({
      code: 'BAD_HASH',
    });
  });

  test('fewer bytes than listed is BAD_LENGTH', async () => {
    await expect(
      verifyLengthAndHashes(webHashPort, utf8('ab'), expected, 'x'),
    ).rejects.toMatchObject({
      code: 'BAD_LENGTH',
    });
  });

  test('more bytes than listed stops at the first chunk past the cap with TOO_LARGE', () => {
    const v = new ContentVerifier(webHashPort, expected, 'x');
    v.update(utf8('ab'));
    expect(() => v.update(utf8('cd'))).toThrow(expect.objectContaining({ code: 'TOO_LARGE' }));
    expect(v.received).toBe(4);
  });

  test('an unknown hash algorithm is a failure, never a skip', () => {
    expect(
      () => new ContentVerifier(webHashPort, { hashes: { md5: '00', sha256: ABC_SHA256 } }, 'x'),
    ).toThrow(expect.objectContaining({ code: 'UNKNOWN_HASH_ALGORITHM' }));
  });

  test('an empty hash list is MALFORMED', () => {
    expect(() => new ContentVerifier(webHashPort, { hashes: {} }, 'x')).toThrow(
      expect.objectContaining({ code: 'MALFORMED' }),
    );
  });
});

test('fromHex refuses odd lengths and non-hex', () => {
  expect(fromHex('abc')).toBeUndefined();
  expect(fromHex('zz')).toBeUndefined();
  expect(fromHex('0aFF')).toEqual(new Uint8Array([10, 255]));
});
