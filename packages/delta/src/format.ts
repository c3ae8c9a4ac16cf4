/**
 * The Cairn delta format, version 1. All integers are little-endian.
 *
 * Header, 96 bytes, the same for every algorithm:
 *
 *   offset  size  field
 *        0     8  magic 89 43 44 4C 54 0D 0A 1A ("\x89CDLT\r\n\x1a": a high byte, so 7-bit
 *                 transfers show; CR LF and ^Z, so text-mode newline rewriting shows)
 *        8     1  format version, 1
 *        9     1  algorithm id (ALGORITHM_COPY_ZSTD = 1)
 *       10     2  reserved, 0
 *       12    32  base sha256
 *       44     8  base length
 *       52    32  result sha256
 *       84     8  result length
 *       92     4  CRC-32 (IEEE) of bytes 0–91
 *
 * Payload of algorithm 1, copy/insert sequences with zstd-compressed streams:
 *
 *       96     8  sequence count
 *      104     8  bytes of the literal-length column (decoded)
 *      112     8  bytes of the copy-length column (decoded)
 *      120     8  bytes of the copy-offset column (decoded)
 *      128     8  literal bytes (decoded)
 *      136     8  bytes of the instructions zstd frame
 *      144     8  bytes of the literals zstd frame
 *      152     4  CRC-32 of bytes 96–151
 *      156        instructions frame: one zstd frame holding the three columns back to back
 *                 literals frame: one zstd frame holding the literal bytes
 *                 (the delta ends exactly there)
 *
 * Each column holds one unsigned LEB128 varint per sequence; the offset column holds zigzag
 * (0, -1, 1, -2, ... → 0, 1, 2, 3, ...) signed varints. Sequence i writes literalLength[i] bytes
 * from the literals, then copies copyLength[i] bytes of the base starting at previousCopyEnd +
 * copyOffset[i], where previousCopyEnd is where the previous copy stopped (0 at first). Relative
 * offsets are what makes the columns compress: in a file that changed in place they are small.
 *
 * The header checksum lets a damaged header fail as CORRUPT rather than as a misleading
 * BASE_MISMATCH; the result sha256 catches everything else, so no payload damage can yield a
 * wrong file.
 */
import { DeltaError } from './errors.js';
import { MAX_LENGTH } from './limits.js';

export const MAGIC = Uint8Array.of(0x89, 0x43, 0x44, 0x4c, 0x54, 0x0d, 0x0a, 0x1a);
export const FORMAT_VERSION = 1;
/** Copy/insert sequences against the base, streams compressed with zstd. */
export const ALGORITHM_COPY_ZSTD = 1;
export const HEADER_LENGTH = 96;
export const COPY_ZSTD_TABLE_LENGTH = 60;
/** Where the first zstd frame of an algorithm-1 delta starts. */
export const COPY_ZSTD_PAYLOAD_OFFSET = HEADER_LENGTH + COPY_ZSTD_TABLE_LENGTH;

export type DeltaAlgorithm = 'copy-zstd';

export interface DeltaHeader {
  readonly version: number;
  readonly algorithm: DeltaAlgorithm;
  readonly baseSha256: Uint8Array;
  readonly baseLength: number;
  readonly resultSha256: Uint8Array;
  readonly resultLength: number;
}

/** The table at the start of an algorithm-1 payload. */
export interface CopyZstdTable {
  readonly sequenceCount: number;
  readonly literalLengthColumnLength: number;
  readonly copyLengthColumnLength: number;
  readonly copyOffsetColumnLength: number;
  readonly literalsLength: number;
  readonly instructionsFrameLength: number;
  readonly literalsFrameLength: number;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE 802.3, as in zlib and PNG). Only ever run over header bytes. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of bytes) c = (CRC_TABLE[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Reads a u64 that must fit a safe integer; larger values are damage, not data. */
function readLength(v: DataView, offset: number, field: string): number {
  const value = v.getBigUint64(offset, true);
  if (value > BigInt(MAX_LENGTH)) {
    throw new DeltaError('CORRUPT', `${field}: ${value} is beyond 2^53 - 1`);
  }
  return Number(value);
}

function writeLength(v: DataView, offset: number, value: number, field: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new DeltaError(
      'INVALID_ARGUMENT',
      `${field}: expected a non-negative safe integer, received ${value}`,
    );
  }
  v.setBigUint64(offset, BigInt(value), true);
}

function algorithmName(id: number): DeltaAlgorithm | undefined {
  return id === ALGORITHM_COPY_ZSTD ? 'copy-zstd' : undefined;
}

export function encodeHeader(header: Omit<DeltaHeader, 'version'>): Uint8Array {
  if (header.baseSha256.length !== 32 || header.resultSha256.length !== 32) {
    throw new DeltaError('INVALID_ARGUMENT', 'header: sha256 digests must be 32 bytes');
  }
  const out = new Uint8Array(HEADER_LENGTH);
  const v = view(out);
  out.set(MAGIC, 0);
  out[8] = FORMAT_VERSION;
  out[9] = ALGORITHM_COPY_ZSTD;
  out.set(header.baseSha256, 12);
  writeLength(v, 44, header.baseLength, 'baseLength');
  out.set(header.resultSha256, 52);
  writeLength(v, 84, header.resultLength, 'resultLength');
  v.setUint32(92, crc32(out.subarray(0, 92)), true);
  return out;
}

/**
 * Parses and checks the header, in an order that makes the code say what is wrong: not a delta
 * (BAD_MAGIC), a delta from a newer encoder (UNSUPPORTED_VERSION, before any layout check, since a
 * later version may lay the header out differently), cut short (TRUNCATED), damaged (CORRUPT),
 * then an algorithm we do not know (UNSUPPORTED_ALGORITHM).
 */
export function parseHeader(delta: Uint8Array): DeltaHeader {
  const magicBytes = Math.min(delta.length, MAGIC.length);
  for (let i = 0; i < magicBytes; i++) {
    if (delta[i] !== MAGIC[i]) throw new DeltaError('BAD_MAGIC', 'delta: not a Cairn delta');
  }
  if (delta.length <= MAGIC.length) {
    throw new DeltaError('TRUNCATED', `delta: ${delta.length} bytes, the header alone is 96`);
  }
  const version = delta[8] ?? 0;
  if (version !== FORMAT_VERSION) {
    throw new DeltaError(
      'UNSUPPORTED_VERSION',
      `delta: format version ${version}, this decoder reads version ${FORMAT_VERSION}`,
    );
  }
  if (delta.length < HEADER_LENGTH) {
    throw new DeltaError('TRUNCATED', `delta: ${delta.length} bytes, the header alone is 96`);
  }
  const v = view(delta);
  if (v.getUint32(92, true) !== crc32(delta.subarray(0, 92))) {
    throw new DeltaError('CORRUPT', 'delta: header checksum does not match');
  }
  if (v.getUint16(10, true) !== 0) {
    throw new DeltaError('CORRUPT', 'delta: reserved header bytes are not zero');
  }
  const algorithm = algorithmName(delta[9] ?? 0);
  if (algorithm === undefined) {
    throw new DeltaError('UNSUPPORTED_ALGORITHM', `delta: unknown algorithm id ${delta[9]}`);
  }
  return {
    version,
    algorithm,
    baseSha256: delta.slice(12, 44),
    baseLength: readLength(v, 44, 'baseLength'),
    resultSha256: delta.slice(52, 84),
    resultLength: readLength(v, 84, 'resultLength'),
  };
}

export function encodeCopyZstdTable(table: CopyZstdTable): Uint8Array {
  const out = new Uint8Array(COPY_ZSTD_TABLE_LENGTH);
  const v = view(out);
  writeLength(v, 0, table.sequenceCount, 'sequenceCount');
  writeLength(v, 8, table.literalLengthColumnLength, 'literalLengthColumnLength');
  writeLength(v, 16, table.copyLengthColumnLength, 'copyLengthColumnLength');
  writeLength(v, 24, table.copyOffsetColumnLength, 'copyOffsetColumnLength');
  writeLength(v, 32, table.literalsLength, 'literalsLength');
  writeLength(v, 40, table.instructionsFrameLength, 'instructionsFrameLength');
  writeLength(v, 48, table.literalsFrameLength, 'literalsFrameLength');
  v.setUint32(56, crc32(out.subarray(0, 56)), true);
  return out;
}

/**
 * Parses the algorithm-1 table and checks that the frames it names fill the rest of the delta
 * exactly and that the decoded sizes are possible for the result length in the header.
 */
export function parseCopyZstdTable(delta: Uint8Array, header: DeltaHeader): CopyZstdTable {
  if (delta.length < COPY_ZSTD_PAYLOAD_OFFSET) {
    throw new DeltaError(
      'TRUNCATED',
      `delta: ${delta.length} bytes, header and payload table are ${COPY_ZSTD_PAYLOAD_OFFSET}`,
    );
  }
  const bytes = delta.subarray(HEADER_LENGTH, COPY_ZSTD_PAYLOAD_OFFSET);
  const v = view(bytes);
  if (v.getUint32(56, true) !== crc32(bytes.subarray(0, 56))) {
    throw new DeltaError('CORRUPT', 'delta: payload table checksum does not match');
  }
  const table: CopyZstdTable = {
    sequenceCount: readLength(v, 0, 'sequenceCount'),
    literalLengthColumnLength: readLength(v, 8, 'literalLengthColumnLength'),
    copyLengthColumnLength: readLength(v, 16, 'copyLengthColumnLength'),
    copyOffsetColumnLength: readLength(v, 24, 'copyOffsetColumnLength'),
    literalsLength: readLength(v, 32, 'literalsLength'),
    instructionsFrameLength: readLength(v, 40, 'instructionsFrameLength'),
    literalsFrameLength: readLength(v, 48, 'literalsFrameLength'),
  };
  const payload = table.instructionsFrameLength + table.literalsFrameLength;
  const available = delta.length - COPY_ZSTD_PAYLOAD_OFFSET;
  if (payload > available) {
    throw new DeltaError(
      'TRUNCATED',
      `delta: the payload table names ${payload} bytes of frames, ${available} follow`,
    );
  }
  if (payload < available) {
    throw new DeltaError(
      'CORRUPT',
      `delta: ${available - payload} bytes follow the last frame the payload table names`,
    );
  }
  const n = table.sequenceCount;
  const columns = [
    ['literalLengthColumnLength', table.literalLengthColumnLength],
    ['copyLengthColumnLength', table.copyLengthColumnLength],
    ['copyOffsetColumnLength', table.copyOffsetColumnLength],
  ] as const;
  for (const [name, length] of columns) {
    // One varint per sequence, 1 to MAX_VARINT_BYTES bytes each.
    if (length < n || length > n * MAX_VARINT_BYTES) {
      throw new DeltaError('CORRUPT', `delta: ${name} ${length} is impossible for ${n} sequences`);
    }
  }
  // Every sequence writes at least one byte, and literals are part of the result.
  if (n > header.resultLength || table.literalsLength > header.resultLength) {
    throw new DeltaError(
      'CORRUPT',
      `delta: ${n} sequences and ${table.literalsLength} literal bytes are impossible ` +
        `for a ${header.resultLength}-byte result`,
    );
  }
  return table;
}

/** A LEB128 varint of a safe integer takes at most 8 bytes (8 × 7 = 56 bits ≥ 53). */
export const MAX_VARINT_BYTES = 8;

/** Appends unsigned LEB128 varints to a growable byte buffer. */
export class VarintWriter {
  #bytes: Uint8Array;
  #length = 0;

  constructor(initialCapacity = 1024) {
    this.#bytes = new Uint8Array(Math.max(16, initialCapacity));
  }

  get length(): number {
    return this.#length;
  }

  /** `value` must be a non-negative safe integer. */
  write(value: number): void {
    if (this.#length + MAX_VARINT_BYTES > this.#bytes.length) {
      const grown = new Uint8Array(this.#bytes.length * 2);
      grown.set(this.#bytes.subarray(0, this.#length));
      this.#bytes = grown;
    }
    let v = value;
    while (v >= 0x80) {
      this.#bytes[this.#length++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.#bytes[this.#length++] = v;
  }

  /** Zigzag: 0, -1, 1, -2, 2 … → 0, 1, 2, 3, 4 …, so small magnitudes of either sign are short. */
  writeSigned(value: number): void {
    this.write(value < 0 ? -2 * value - 1 : 2 * value);
  }

  bytes(): Uint8Array {
    return this.#bytes.subarray(0, this.#length);
  }
}
