import { expect, test } from 'vitest';
import { toHex } from '@cairn/verify/encoding';
import { webSha256 } from './sha256.js';

const text = new TextEncoder();
// FIPS 180-2, appendix B.1.
const ABC = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

test('webSha256 digests the FIPS 180-2 "abc" vector', async () => {
  expect(toHex(await webSha256.digest(text.encode('abc')))).toBe(ABC);
});

test('webSha256 hashes chunks incrementally (DigestStream in workerd, buffered elsewhere)', async () => {
  const hasher = webSha256.create();
  hasher.update(text.encode('a'));
  hasher.update(new Uint8Array(0));
  hasher.update(text.encode('bc'));
  expect(toHex(await hasher.digest())).toBe(ABC);
});
