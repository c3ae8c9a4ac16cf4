// Node only: the node:crypto and node:zlib adapters.
import { constants as zlib, zstdCompressSync } from 'node:zlib';
import { expect, test } from 'vitest';
import { DeltaError } from './errors.js';
import { nodeSha256, nodeZstdDecoder } from './node.js';
import { toHex } from '@cairn/verify/encoding';
import { binaries, signatureDatabases, TestRandom } from './testing/inputs.js';
import { expectSameBytes } from './testing/expect.js';
import { fzstdDecoder } from './zstd.js';

const text = new TextEncoder();

test('nodeSha256 agrees with FIPS 180-2, whole and in chunks', async () => {
  const abc = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
  expect(toHex(await nodeSha256.digest(text.encode('abc')))).toBe(abc);
  const hasher = nodeSha256.create();
  hasher.update(text.encode('ab'));
  hasher.update(text.encode('c'));
  expect(toHex(await hasher.digest())).toBe(abc);
});

test('both zstd decoders decode what node:zlib compressed', async () => {
  const content = text.encode('signature database line\n'.repeat(1000));
  const frame = new Uint8Array(zstdCompressSync(content));
  expect(await nodeZstdDecoder(frame, content.length)).toEqual(content);
  expect(await fzstdDecoder(frame, content.length)).toEqual(content);
});

function codeOf(run: () => unknown): string {
  try {
    run();
    return 'no error';
  } catch (error) {
    return error instanceof DeltaError ? error.code : 'not a DeltaError';
  }
}

test('nodeZstdDecoder refuses more output than expected and damaged frames with CORRUPT', () => {
  const content = text.encode('x'.repeat(1000));
  const frame = new Uint8Array(zstdCompressSync(content));
  expect(codeOf(() => nodeZstdDecoder(frame, 999))).toBe('CORRUPT');
  expect(codeOf(() => nodeZstdDecoder(frame.subarray(0, frame.length - 3), 1000))).toBe('CORRUPT');
});

// fzstd is the decoder in Workers and browsers: check it against libzstd's own output on the
// kinds of streams our encoder makes (text literals, binary literals, varint columns), at the
// levels we use, including multi-block frames, before trusting it.
test('fzstd decodes exactly what node:zlib encodes, across levels and contents', async () => {
  const random = new TestRandom(42);
  const contents = [
    signatureDatabases(1, 3_000, 0.01).target,
    binaries(2, 400_000, 50).target,
    random.bytes(200_000),
    new Uint8Array(300_000),
    Uint8Array.from({ length: 100_000 }, (_, i) => (i % 7 === 0 ? random.below(256) : i & 3)),
  ];
  for (const content of contents) {
    for (const level of [1, 3, 9, 19, 22]) {
      const frame = new Uint8Array(
        zstdCompressSync(content, {
          params: { [zlib.ZSTD_c_compressionLevel]: level, [zlib.ZSTD_c_checksumFlag]: 1 },
          pledgedSrcSize: content.length,
        }),
      );
      expectSameBytes(await fzstdDecoder(frame, content.length), content);
    }
  }
});
