// Portable: runs in Node and in workerd (vitest.workerd.config.ts). Deltas here are made by hand
// (src/testing/craft.ts) or are the committed vectors, so no encoder is needed.
import { describe, expect, test } from 'vitest';
import { applyDelta, applyDeltaStream, STREAM_CHUNK_BYTES, type ApplyOptions } from './apply.js';
import { DeltaError, type DeltaErrorCode } from './errors.js';
import { COPY_ZSTD_PAYLOAD_OFFSET, HEADER_LENGTH } from './format.js';
import { craftDelta, editHeader, type CraftOptions } from './testing/craft.js';
import { concat, readAll, signatureDatabases } from './testing/inputs.js';
import { toHex } from '@cairn/verify/encoding';
import { webSha256 } from './sha256.js';
import { expectSameBytes } from './testing/expect.js';
import vector from './vectors/signatures.json' with { type: 'json' };

const text = new TextEncoder();

async function rejectsWith(promise: Promise<unknown>, code: DeltaErrorCode): Promise<DeltaError> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DeltaError);
  expect((error as DeltaError).code).toBe(code);
  return error as DeltaError;
}

const base = text.encode('0123456789abcdefghijklmnopqrstuvwxyz');
// "0123" + "XY" + "6789abcdef" + "!" + "uvwxyz"
const edit: CraftOptions = {
  base,
  sequences: [
    { literals: 0, copy: 4, offset: 0 },
    { literals: 2, copy: 10, offset: 2 },
    { literals: 1, copy: 6, offset: 14 },
  ],
  literals: text.encode('XY!'),
};
const expected = text.encode('0123XY6789abcdef!uvwxyz');

describe('applyDelta on crafted deltas', () => {
  test('copies and inserts as the sequences say', async () => {
    expect(await applyDelta(base, await craftDelta(edit))).toEqual(expected);
  });

  test('negative offsets copy from earlier in the base', async () => {
    const delta = await craftDelta({
      base,
      sequences: [
        { literals: 0, copy: 3, offset: 10 },
        { literals: 0, copy: 3, offset: -13 },
      ],
      literals: new Uint8Array(0),
    });
    expect(await applyDelta(base, delta)).toEqual(text.encode('abc0123'.slice(0, 3) + '012'));
  });

  test('an empty result needs no sequences', async () => {
    const delta = await craftDelta({ base, sequences: [], literals: new Uint8Array(0) });
    expect(await applyDelta(base, delta)).toEqual(new Uint8Array(0));
  });

  test('an empty base with literals only', async () => {
    const empty = new Uint8Array(0);
    const delta = await craftDelta({
      base: empty,
      sequences: [{ literals: 5, copy: 0, offset: 0 }],
      literals: text.encode('hello'),
    });
    expect(await applyDelta(empty, delta)).toEqual(text.encode('hello'));
  });

  test('frames of several raw blocks', async () => {
    const big = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff);
    const delta = await craftDelta({
      base: new Uint8Array(0),
      sequences: [{ literals: big.length, copy: 0, offset: 0 }],
      literals: big,
    });
    expectSameBytes(await applyDelta(new Uint8Array(0), delta), big);
  });
});

describe('applyDelta refuses, with a code', () => {
  test('INVALID_ARGUMENT for something that is not bytes', async () => {
    const delta = await craftDelta(edit);
    const error = await rejectsWith(
      applyDelta('base' as unknown as Uint8Array, delta),
      'INVALID_ARGUMENT',
    );
    expect(error.message).toBe('base: expected a Uint8Array, received string');
  });

  test('BAD_MAGIC', async () => {
    const delta = await craftDelta(edit);
    delta[0] = 0x50;
    await rejectsWith(applyDelta(base, delta), 'BAD_MAGIC');
    await rejectsWith(applyDelta(base, text.encode('PK\x03\x04 a zip file')), 'BAD_MAGIC');
  });

  test('UNSUPPORTED_VERSION, before the header checksum', async () => {
    const delta = await craftDelta(edit);
    delta[8] = 2;
    const error = await rejectsWith(applyDelta(base, delta), 'UNSUPPORTED_VERSION');
    expect(error.message).toBe('delta: format version 2, this decoder reads version 1');
  });

  test('UNSUPPORTED_ALGORITHM', async () => {
    const delta = editHeader(await craftDelta(edit), (v) => v.setUint8(9, 7));
    await rejectsWith(applyDelta(base, delta), 'UNSUPPORTED_ALGORITHM');
  });

  test('TRUNCATED wherever the delta is cut', async () => {
    const delta = await craftDelta(edit);
    for (const length of [0, 3, 8, 9, 50, 95, 96, 120, 155, 156, 170, delta.length - 1]) {
      await rejectsWith(applyDelta(base, delta.subarray(0, length)), 'TRUNCATED');
    }
  });

  test('CORRUPT for any flipped header byte that is not magic or version', async () => {
    const delta = await craftDelta(edit);
    for (let i = 9; i < HEADER_LENGTH; i++) {
      const damaged = delta.slice();
      damaged[i] = (damaged[i] ?? 0) ^ 0x10;
      const error = await rejectsWith(applyDelta(base, damaged), 'CORRUPT');
      expect(error.message).toBe('delta: header checksum does not match');
    }
  });

  test('CORRUPT for any flipped payload-table byte', async () => {
    const delta = await craftDelta(edit);
    for (let i = HEADER_LENGTH; i < COPY_ZSTD_PAYLOAD_OFFSET; i++) {
      const damaged = delta.slice();
      damaged[i] = (damaged[i] ?? 0) ^ 0x01;
      const error = await rejectsWith(applyDelta(base, damaged), 'CORRUPT');
      expect(error.message).toBe('delta: payload table checksum does not match');
    }
  });

  test('CORRUPT for reserved header bytes that are not zero', async () => {
    const delta = editHeader(await craftDelta(edit), (v) => v.setUint16(10, 1, true));
    await rejectsWith(applyDelta(base, delta), 'CORRUPT');
  });

  test('CORRUPT for a length beyond 2^53', async () => {
    const delta = editHeader(await craftDelta(edit), (v) => v.setBigUint64(84, 2n ** 60n, true));
    const error = await rejectsWith(applyDelta(base, delta), 'CORRUPT');
    expect(error.message).toBe('resultLength: 1152921504606846976 is beyond 2^53 - 1');
  });

  test('CORRUPT for bytes after the last frame', async () => {
    const delta = concat([await craftDelta(edit), Uint8Array.of(0)]);
    const error = await rejectsWith(applyDelta(base, delta), 'CORRUPT');
    expect(error.message).toBe('delta: 1 bytes follow the last frame the payload table names');
  });

  test('CORRUPT for frames that are not what the table says', async () => {
    const delta = await craftDelta(edit);
    const magicAt = COPY_ZSTD_PAYLOAD_OFFSET;
    const notZstd = delta.slice();
    notZstd[magicAt] = 0;
    expect((await rejectsWith(applyDelta(base, notZstd), 'CORRUPT')).message).toBe(
      'instructions stream: not a zstd frame',
    );
    const withDictionary = delta.slice();
    withDictionary[magicAt + 4] = (withDictionary[magicAt + 4] ?? 0) | 1;
    expect((await rejectsWith(applyDelta(base, withDictionary), 'CORRUPT')).message).toBe(
      'instructions stream: frame names a dictionary',
    );
    const wrongSize = delta.slice();
    wrongSize[magicAt + 6] = (wrongSize[magicAt + 6] ?? 0) + 1;
    expect((await rejectsWith(applyDelta(base, wrongSize), 'CORRUPT')).message).toMatch(
      /^instructions stream: frame declares \d+ bytes, the payload table \d+$/,
    );
  });

  test('CORRUPT for sequences that reach outside the base, the literals or the result', async () => {
    const cases: [CraftOptions, string][] = [
      [
        { ...edit, sequences: [{ literals: 0, copy: 40, offset: 0 }], result: base },
        'delta: sequence 0 copies [0, 40) outside the base',
      ],
      [
        { ...edit, sequences: [{ literals: 0, copy: 4, offset: -1 }], result: base },
        'delta: sequence 0 copies [-1, 3) outside the base',
      ],
      [
        { ...edit, sequences: [{ literals: 0, copy: 0, offset: 0 }], result: base },
        'delta: sequence 0 writes nothing',
      ],
      [
        { ...edit, sequences: [{ literals: 3, copy: 30, offset: 0 }], resultLength: 10 },
        'delta: sequence 0 writes past the 10-byte result',
      ],
      [
        { ...edit, sequences: [{ literals: 1, copy: 1, offset: 0 }], resultLength: 5 },
        'delta: 2 literal bytes are left over',
      ],
    ];
    for (const [options, message] of cases) {
      const error = await rejectsWith(applyDelta(base, await craftDelta(options)), 'CORRUPT');
      expect(error.message).toBe(message);
    }
  });

  test('CORRUPT for instruction columns that do not parse', async () => {
    const one = { sequences: [{ literals: 0, copy: 4, offset: 0 }], result: base.subarray(0, 4) };
    const cases: [Uint8Array, number, string][] = [
      [
        concat([new Uint8Array(8).fill(0x80), Uint8Array.of(4, 0)]),
        8,
        'delta: literal-length column holds a varint longer than 8 bytes',
      ],
      [
        concat([new Uint8Array(7).fill(0xff), Uint8Array.of(0x7f, 4, 0)]),
        8,
        'delta: literal-length column holds a varint ≥ 2^53',
      ],
      [Uint8Array.of(0x80, 4, 0), 1, 'delta: literal-length column ends inside a varint'],
      [
        Uint8Array.of(0, 0, 4, 0),
        2,
        'delta: the instruction columns hold more than the sequence count',
      ],
    ];
    for (const [instructions, literalLengthColumnLength, message] of cases) {
      const delta = await craftDelta({
        ...edit,
        ...one,
        literals: new Uint8Array(0),
        instructions,
        table: { literalLengthColumnLength, copyLengthColumnLength: 1, copyOffsetColumnLength: 1 },
      });
      const error = await rejectsWith(applyDelta(base, delta), 'CORRUPT');
      expect(error.message).toBe(message);
    }
  });

  test('BASE_MISMATCH for a base of the wrong length, before any other work', async () => {
    const delta = await craftDelta(edit);
    const error = await rejectsWith(applyDelta(base.subarray(1), delta), 'BASE_MISMATCH');
    expect(error.message).toBe('base: 35 bytes, the delta was made against 36');
  });

  test('BASE_MISMATCH for a base of the right length but other bytes', async () => {
    const delta = await craftDelta(edit);
    const other = base.slice();
    other[20] = 0x21;
    const error = await rejectsWith(applyDelta(other, delta), 'BASE_MISMATCH');
    expect(error.message).toBe(
      `base: sha256 ${toHex(await webSha256.digest(other))}, ` +
        `the delta was made against ${toHex(await webSha256.digest(base))}`,
    );
  });

  test('BASE_MISMATCH comes first even when the payload is also damaged', async () => {
    const delta = await craftDelta(edit);
    const damaged = delta.slice();
    damaged[COPY_ZSTD_PAYLOAD_OFFSET] = 0;
    const other = base.slice().reverse();
    await rejectsWith(applyDelta(other, damaged), 'BASE_MISMATCH');
  });

  test('RESULT_MISMATCH when the sequences do not give the promised bytes', async () => {
    const promised = text.encode('0123XY6789abcdef!uvwxyZ');
    const delta = await craftDelta({ ...edit, result: promised });
    const error = await rejectsWith(applyDelta(base, delta), 'RESULT_MISMATCH');
    expect(error.message).toBe(
      `result: sha256 ${toHex(await webSha256.digest(expected))}, ` +
        `the delta promises ${toHex(await webSha256.digest(promised))}`,
    );
  });

  test('RESULT_MISMATCH when the sequences give fewer bytes than promised', async () => {
    const delta = await craftDelta({ ...edit, resultLength: expected.length + 1 });
    const error = await rejectsWith(applyDelta(base, delta), 'RESULT_MISMATCH');
    expect(error.message).toBe('result: 23 bytes, the delta promises 24');
  });

  test('TOO_LARGE before allocating, from the header alone', async () => {
    const delta = await craftDelta(edit);
    // result 23 + streams: 3 + 3 + 3 varint bytes and 3 literal bytes = 35
    await expect(applyDelta(base, delta, { limits: { maxMemory: 35 } })).resolves.toEqual(expected);
    const error = await rejectsWith(
      applyDelta(base, delta, { limits: { maxMemory: 34 } }),
      'TOO_LARGE',
    );
    expect(error.message).toBe('applying needs 35 bytes (result 23, streams 12), the limit is 34');
    const huge = editHeader(delta, (v) => v.setBigUint64(84, 2n ** 40n, true));
    await rejectsWith(applyDelta(base, huge), 'TOO_LARGE');
  });

  test('an invalid limit is an argument error', async () => {
    const delta = await craftDelta(edit);
    const options: ApplyOptions = { limits: { maxMemory: Number.NaN } };
    await rejectsWith(applyDelta(base, delta, options), 'INVALID_ARGUMENT');
  });
});

describe('applyDeltaStream', () => {
  test('yields the same bytes as applyDelta, in chunks', async () => {
    const big = new Uint8Array(2 * STREAM_CHUNK_BYTES + 1234).map((_, i) => (i * 13) & 0xff);
    const delta = await craftDelta({
      base: big,
      sequences: [
        { literals: 3, copy: STREAM_CHUNK_BYTES + 10, offset: 0 },
        { literals: 0, copy: STREAM_CHUNK_BYTES, offset: 100 },
      ],
      literals: text.encode('abc'),
    });
    const whole = await applyDelta(big, delta);
    expect(whole.length).toBe(2 * STREAM_CHUNK_BYTES + 13);
    expectSameBytes(whole.subarray(0, 3), text.encode('abc'));
    expectSameBytes(
      whole.subarray(3, 3 + STREAM_CHUNK_BYTES + 10),
      big.subarray(0, STREAM_CHUNK_BYTES + 10),
    );
    expectSameBytes(
      whole.subarray(STREAM_CHUNK_BYTES + 13),
      big.subarray(STREAM_CHUNK_BYTES + 110, 2 * STREAM_CHUNK_BYTES + 110),
    );
    const chunks = await readAll(applyDeltaStream(big, delta));
    expect(chunks.map((c) => c.length)).toEqual([STREAM_CHUNK_BYTES, STREAM_CHUNK_BYTES, 13]);
    expectSameBytes(concat(chunks), whole);
  });

  test('an empty result closes at once', async () => {
    const delta = await craftDelta({ base, sequences: [], literals: new Uint8Array(0) });
    expect(await readAll(applyDeltaStream(base, delta))).toEqual([]);
  });

  test('errors with BASE_MISMATCH before any chunk', async () => {
    const delta = await craftDelta(edit);
    const reader = applyDeltaStream(base.slice().reverse(), delta).getReader();
    await rejectsWith(reader.read(), 'BASE_MISMATCH');
  });

  test('errors with RESULT_MISMATCH after the chunks when the hash is wrong', async () => {
    const delta = await craftDelta({ ...edit, result: text.encode('0123XY6789abcdef!uvwxyZ') });
    const reader = applyDeltaStream(base, delta).getReader();
    const first = await reader.read();
    expect(first.value).toEqual(expected);
    await rejectsWith(reader.read(), 'RESULT_MISMATCH');
  });

  test('counts only the streams against the memory limit', async () => {
    const delta = await craftDelta(edit);
    expect(
      concat(await readAll(applyDeltaStream(base, delta, { limits: { maxMemory: 12 } }))),
    ).toEqual(expected);
    await rejectsWith(
      applyDeltaStream(base, delta, { limits: { maxMemory: 11 } })
        .getReader()
        .read(),
      'TOO_LARGE',
    );
  });
});

describe('the committed vector (made by encodeDelta, see src/vectors/README.md)', () => {
  const { base: vectorBase, target } = signatureDatabases(vector.seed, vector.lines, vector.rate);
  const delta = Uint8Array.from(atob(vector.deltaBase64), (c) => c.charCodeAt(0));

  test('rebuilds the target with the default (pure JavaScript) zstd decoder', async () => {
    expect(toHex(await webSha256.digest(vectorBase))).toBe(vector.baseSha256);
    expect(toHex(await webSha256.digest(target))).toBe(vector.targetSha256);
    expectSameBytes(await applyDelta(vectorBase, delta), target);
  });

  test('and through applyDeltaStream', async () => {
    expectSameBytes(concat(await readAll(applyDeltaStream(vectorBase, delta))), target);
  });

  test('and refuses the base of another seed', async () => {
    const other = signatureDatabases(vector.seed + 1, vector.lines, vector.rate).base;
    await rejectsWith(applyDelta(other, delta), 'BASE_MISMATCH');
  });
});
