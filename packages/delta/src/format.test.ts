import { describe, expect, test } from 'vitest';
import { DeltaError } from './errors.js';
import {
  crc32,
  encodeCopyZstdTable,
  encodeHeader,
  HEADER_LENGTH,
  MAGIC,
  parseHeader,
  VarintWriter,
} from './format.js';

const text = new TextEncoder();

describe('crc32', () => {
  test('the standard check value', () => {
    // CRC-32/ISO-HDLC of "123456789" (the catalogue's check value).
    expect(crc32(text.encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });
});

describe('VarintWriter', () => {
  test('LEB128 bytes', () => {
    const w = new VarintWriter(1);
    for (const v of [0, 1, 127, 128, 300, 2 ** 32, Number.MAX_SAFE_INTEGER]) w.write(v);
    expect([...w.bytes()]).toEqual([
      0x00, 0x01, 0x7f, 0x80, 0x01, 0xac, 0x02, 0x80, 0x80, 0x80, 0x80, 0x10, 0xff, 0xff, 0xff,
      0xff, 0xff, 0xff, 0xff, 0x0f,
    ]);
  });

  test('zigzag for signed values', () => {
    const w = new VarintWriter();
    for (const v of [0, -1, 1, -2, 2, -64, 64]) w.writeSigned(v);
    expect([...w.bytes()]).toEqual([0, 1, 2, 3, 4, 127, 0x80, 0x01]);
  });
});

describe('header', () => {
  const fields = {
    algorithm: 'copy-zstd' as const,
    baseSha256: new Uint8Array(32).fill(0xaa),
    baseLength: 2 ** 40 + 3,
    resultSha256: new Uint8Array(32).fill(0xbb),
    resultLength: 12345,
  };

  test('layout', () => {
    const header = encodeHeader(fields);
    expect(header.length).toBe(HEADER_LENGTH);
    expect(header.subarray(0, 8)).toEqual(MAGIC);
    expect([...header.subarray(8, 12)]).toEqual([1, 1, 0, 0]);
    expect(header.subarray(12, 44)).toEqual(fields.baseSha256);
    expect([...header.subarray(44, 52)]).toEqual([3, 0, 0, 0, 0, 1, 0, 0]);
    expect(header.subarray(52, 84)).toEqual(fields.resultSha256);
    expect([...header.subarray(84, 92)]).toEqual([0x39, 0x30, 0, 0, 0, 0, 0, 0]);
    const crc = new DataView(header.buffer).getUint32(92, true);
    expect(crc).toBe(crc32(header.subarray(0, 92)));
  });

  test('round trip', () => {
    expect(parseHeader(encodeHeader(fields))).toEqual({ version: 1, ...fields });
  });

  test('refuses digests that are not 32 bytes and lengths that are not safe integers', () => {
    expect(() => encodeHeader({ ...fields, baseSha256: new Uint8Array(31) })).toThrow(DeltaError);
    expect(() => encodeHeader({ ...fields, resultLength: -1 })).toThrow(
      'resultLength: expected a non-negative safe integer, received -1',
    );
    expect(() =>
      encodeCopyZstdTable({
        sequenceCount: 1.5,
        literalLengthColumnLength: 0,
        copyLengthColumnLength: 0,
        copyOffsetColumnLength: 0,
        literalsLength: 0,
        instructionsFrameLength: 0,
        literalsFrameLength: 0,
      }),
    ).toThrow('sequenceCount: expected a non-negative safe integer, received 1.5');
  });
});
