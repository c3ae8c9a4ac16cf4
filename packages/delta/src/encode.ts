/**
 * Making a delta: Node-only (node:zlib's zstd compressor, node:crypto, Buffer), for the origin and
 * the CLI. The result applies anywhere `@cairn/delta/apply` runs.
 *
 * Why a copy/insert encoder rather than zstd's own patch-from: node:zlib's zstd has no
 * refPrefix, and passing the base as `dictionary` makes zstd load it as a dictionary, of which it
 * keeps only what fits its tables: 47 MB for a 100 MB signature database with 1% of records
 * changed, at level 3 with windowLog 27 and long-distance matching (measured; the CLI's
 * --patch-from made 0.3 MB). Decoding such a frame would also need a zstd with dictionary support
 * in Workers and browsers, which the pure-JavaScript decoders lack. The copy/insert format needs
 * only plain zstd decompression and the base, and came out smaller than xdelta3 -9, bsdiff and
 * zstd --patch-from -19 on our benchmarks (bench/README.md).
 */
import { promisify } from 'node:util';
import { constants as zlib, zstdCompress } from 'node:zlib';
import { DeltaError } from './errors.js';
import { encodeCopyZstdTable, encodeHeader, VarintWriter } from './format.js';
import {
  DEFAULT_ENCODE_LIMITS,
  MAX_BASE_LENGTH,
  ZSTD_WORKSPACE_BYTES,
  type EncodeLimits,
} from './limits.js';
import {
  DEFAULT_STRIDE,
  FILTER_BYTES,
  findSequences,
  indexSlots,
  type Sequences,
} from './match.js';
import { nodeSha256 } from './node.js';
import type { Sha256Port } from './sha256.js';

export interface EncodeOptions {
  /**
   * zstd level for the two streams. Default DEFAULT_LEVEL. Streams are small for similar files,
   * so a high level costs little time and saves bytes where they are paid for, once per client.
   */
  readonly level?: number | undefined;
  /**
   * Index one base position every `stride` bytes (at least 1; default DEFAULT_STRIDE). Smaller
   * finds shorter matches (a run of WINDOW + stride - 1 common bytes is always found) but
   * takes more memory (index: 8 × base / stride bytes at most) and time.
   */
  readonly stride?: number | undefined;
  readonly limits?: Partial<EncodeLimits> | undefined;
  /**
   * SHA-256 for the header's two digests. Default: `nodeSha256` (node:crypto). A caller that
   * hashed the files while reading them can return those digests here and save a pass over each.
   */
  readonly sha256?: Sha256Port | undefined;
}

/** Level 19: measured against 3, 9 and 15 on the signature database, 19 made the smallest
 * delta (2–3% below level 9) in under 0.1 s for its 0.5 MB of streams; 22 made the same. */
export const DEFAULT_LEVEL = 19;

/** Above this many literal bytes the level drops to LARGE_STREAM_LEVEL: level 19 compresses
 * text at about 1.5 MB/s (measured: 1.4 s for 2 MB of database lines, against 77 ms at level 9
 * for a 5% larger frame), so a delta between unrelated 100 MB files would take over a minute. */
export const LARGE_STREAM_BYTES = 4 * 2 ** 20;
export const LARGE_STREAM_LEVEL = 9;

function requireBytes(value: unknown, name: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    const got = value === null ? 'null' : typeof value;
    throw new DeltaError('INVALID_ARGUMENT', `${name}: expected a Uint8Array, received ${got}`);
  }
}

const zstdCompressAsync = promisify(zstdCompress);

/** See compress(); ZSTD_WORKSPACE_BYTES in limits.ts is the memory this allows. */
const ZSTD_MAX_LOG = 20;

/** Async: node:zlib compresses on its thread pool, so the two streams compress in parallel. */
async function compress(bytes: Uint8Array, level: number): Promise<Uint8Array> {
  const frame = await zstdCompressAsync(bytes, {
    params: {
      [zlib.ZSTD_c_compressionLevel]: level,
      // A 1 MiB window and 2^20-entry tables instead of level 19's own (2 MiB and 2^22 for 2 MB
      // of input): 40 MB less peak memory and 45% less time on 2.2 MB of literals, for a frame 2%
      // larger on the 500 MB benchmark database (measured); small streams are unaffected.
      [zlib.ZSTD_c_windowLog]: ZSTD_MAX_LOG,
      [zlib.ZSTD_c_chainLog]: ZSTD_MAX_LOG,
      [zlib.ZSTD_c_hashLog]: ZSTD_MAX_LOG,
      // A content checksum lets node:zlib report a damaged stream as itself (CORRUPT) rather
      // than through the result hash; 4 bytes per stream.
      [zlib.ZSTD_c_checksumFlag]: 1,
      [zlib.ZSTD_c_contentSizeFlag]: 1,
    },
    // Known size: zstd shrinks its window and tables to it, and writes it into the frame
    // header, where the decoder checks it against the payload table.
    pledgedSrcSize: bytes.length,
  });
  return new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength);
}

/**
 * The memory encodeDelta uses for a base and target of these lengths, given `literalBytes` and
 * `sequences` (use the target length and target / WINDOW as the worst case). See limits.ts.
 */
export function encodeMemory(
  baseLength: number,
  targetLength: number,
  stride: number,
  literalBytes: number,
  sequences: number,
): number {
  const index = 4 * indexSlots(baseLength, stride) + FILTER_BYTES;
  // Three Float64Array columns grown by doubling (old and new copies during a grow: 72 bytes per
  // sequence) and three varint columns of up to 8 bytes per value, also grown by doubling (48).
  const sequenceBytes = 120 * sequences;
  // The literals, then their compressed frame, which is at most about as long.
  const streams = 2 * literalBytes;
  return baseLength + targetLength + index + sequenceBytes + streams + 2 * ZSTD_WORKSPACE_BYTES;
}

function buildColumns(sequences: Sequences): [Uint8Array, number, number, number] {
  const { count, literalLengths, copyLengths, copyFroms } = sequences;
  const lengths = new VarintWriter(count * 2);
  const copies = new VarintWriter(count * 3);
  const offsets = new VarintWriter(count * 2);
  let copyEnd = 0;
  for (let i = 0; i < count; i++) {
    const copyLength = copyLengths[i] ?? 0;
    const from = copyFroms[i] ?? 0;
    lengths.write(literalLengths[i] ?? 0);
    copies.write(copyLength);
    offsets.writeSigned(from - copyEnd);
    copyEnd = from + copyLength;
  }
  const all = new Uint8Array(lengths.length + copies.length + offsets.length);
  all.set(lengths.bytes(), 0);
  all.set(copies.bytes(), lengths.length);
  all.set(offsets.bytes(), lengths.length + copies.length);
  return [all, lengths.length, copies.length, offsets.length];
}

function gatherLiterals(target: Uint8Array, sequences: Sequences): Uint8Array {
  const literals = new Uint8Array(sequences.literalBytes);
  let at = 0;
  let t = 0;
  for (let i = 0; i < sequences.count; i++) {
    const n = sequences.literalLengths[i] ?? 0;
    literals.set(target.subarray(t, t + n), at);
    at += n;
    t += n + (sequences.copyLengths[i] ?? 0);
  }
  return literals;
}

/**
 * A delta that rebuilds `target` from `base`, with both sha256 digests in its header.
 * Refuses with TOO_LARGE when the base is too long for the index or the work would need more than
 * `limits.maxMemory` bytes (checked before matching with the known parts, and again before the
 * streams are built with the real literal size).
 */
export async function encodeDelta(
  base: Uint8Array,
  target: Uint8Array,
  options: EncodeOptions = {},
): Promise<Uint8Array> {
  requireBytes(base, 'base');
  requireBytes(target, 'target');
  const limits = { ...DEFAULT_ENCODE_LIMITS, ...options.limits };
  const stride = options.stride ?? DEFAULT_STRIDE;
  if (!Number.isSafeInteger(stride) || stride < 1) {
    throw new DeltaError(
      'INVALID_ARGUMENT',
      `stride: expected a positive integer, received ${stride}`,
    );
  }
  const level = options.level ?? DEFAULT_LEVEL;
  if (!Number.isSafeInteger(level) || level < 1 || level > 22) {
    throw new DeltaError(
      'INVALID_ARGUMENT',
      `level: expected an integer from 1 to 22, received ${level}`,
    );
  }
  if (base.length > MAX_BASE_LENGTH) {
    throw new DeltaError(
      'TOO_LARGE',
      `base: ${base.length} bytes, the index holds positions below ${MAX_BASE_LENGTH + 1}`,
    );
  }
  const upFront = encodeMemory(base.length, target.length, stride, 0, 0);
  if (upFront > limits.maxMemory) {
    throw new DeltaError(
      'TOO_LARGE',
      `encoding needs at least ${upFront} bytes, the limit is ${limits.maxMemory}`,
    );
  }

  const sha256 = options.sha256 ?? nodeSha256;
  const [baseSha256, resultSha256] = await Promise.all([
    sha256.digest(base),
    sha256.digest(target),
  ]);
  const sequences = findSequences(base, target, stride);
  const need = encodeMemory(
    base.length,
    target.length,
    stride,
    sequences.literalBytes,
    sequences.count,
  );
  if (need > limits.maxMemory) {
    throw new DeltaError(
      'TOO_LARGE',
      `encoding needs ${need} bytes (${sequences.literalBytes} literal bytes), ` +
        `the limit is ${limits.maxMemory}`,
    );
  }

  const [instructions, lengthsBytes, copiesBytes, offsetsBytes] = buildColumns(sequences);
  const literals = gatherLiterals(target, sequences);
  // Level 19 is for small streams only; see LARGE_STREAM_BYTES.
  const levelFor = (bytes: Uint8Array) =>
    bytes.length > LARGE_STREAM_BYTES ? Math.min(level, LARGE_STREAM_LEVEL) : level;
  const [instructionsFrame, literalsFrame] = await Promise.all([
    compress(instructions, levelFor(instructions)),
    compress(literals, levelFor(literals)),
  ]);

  const header = encodeHeader({
    algorithm: 'copy-zstd',
    baseSha256,
    baseLength: base.length,
    resultSha256,
    resultLength: target.length,
  });
  const table = encodeCopyZstdTable({
    sequenceCount: sequences.count,
    literalLengthColumnLength: lengthsBytes,
    copyLengthColumnLength: copiesBytes,
    copyOffsetColumnLength: offsetsBytes,
    literalsLength: literals.length,
    instructionsFrameLength: instructionsFrame.length,
    literalsFrameLength: literalsFrame.length,
  });
  const delta = new Uint8Array(
    header.length + table.length + instructionsFrame.length + literalsFrame.length,
  );
  let at = 0;
  for (const part of [header, table, instructionsFrame, literalsFrame]) {
    delta.set(part, at);
    at += part.length;
  }
  return delta;
}
