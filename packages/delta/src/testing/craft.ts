/**
 * Hand-made deltas for the portable tests: any sequences, any header fields, frames of raw zstd
 * blocks (valid zstd that needs no compressor, so the workerd run can build them too).
 */
import {
  crc32,
  encodeCopyZstdTable,
  encodeHeader,
  HEADER_LENGTH,
  VarintWriter,
  type CopyZstdTable,
} from '../format.js';
import { webSha256 } from '../sha256.js';
import { concat } from './inputs.js';

/** One zstd frame of raw blocks, with its content size declared (8-byte field). */
export function rawZstdFrame(content: Uint8Array, declaredSize = content.length): Uint8Array {
  const parts: Uint8Array[] = [];
  const head = new Uint8Array(4 + 1 + 1 + 8);
  const v = new DataView(head.buffer);
  v.setUint32(0, 0xfd2fb528, true);
  head[4] = 0xc0; // 8-byte content size, not single segment, no checksum, no dictionary
  head[5] = 0x50; // window 2^(10 + 10) = 1 MiB, plenty for raw blocks
  v.setBigUint64(6, BigInt(declaredSize), true);
  parts.push(head);
  const blockMax = 1 << 17;
  let at = 0;
  do {
    const size = Math.min(blockMax, content.length - at);
    const last = at + size >= content.length ? 1 : 0;
    const header = (size << 3) | last; // block type 0: raw
    parts.push(Uint8Array.of(header & 0xff, (header >>> 8) & 0xff, (header >>> 16) & 0xff));
    parts.push(content.subarray(at, at + size));
    at += size;
  } while (at < content.length);
  return concat(parts);
}

export interface CraftedSequence {
  readonly literals: number;
  readonly copy: number;
  /** Relative to the end of the previous copy. */
  readonly offset: number;
}

export interface CraftOptions {
  readonly base: Uint8Array;
  readonly sequences: readonly CraftedSequence[];
  readonly literals: Uint8Array;
  /** The bytes the header promises; default: what the sequences produce. */
  readonly result?: Uint8Array;
  /** Overrides applied to the header fields before the checksum is computed. */
  readonly resultLength?: number;
  readonly baseSha256?: Uint8Array;
  readonly table?: Partial<CopyZstdTable>;
  /** The decoded instruction stream to send instead of the sequences' own columns (their
   * column lengths then come from `table`). */
  readonly instructions?: Uint8Array;
}

/** Executes sequences the simple way, as the reference for what a delta means. */
export function runSequences(options: CraftOptions): Uint8Array {
  const out: Uint8Array[] = [];
  let literalAt = 0;
  let copyEnd = 0;
  for (const s of options.sequences) {
    out.push(options.literals.subarray(literalAt, literalAt + s.literals));
    literalAt += s.literals;
    const from = copyEnd + s.offset;
    out.push(options.base.subarray(from, from + s.copy));
    copyEnd = from + s.copy;
  }
  return concat(out);
}

export async function craftDelta(options: CraftOptions): Promise<Uint8Array> {
  const result = options.result ?? runSequences(options);
  const lengths = new VarintWriter();
  const copies = new VarintWriter();
  const offsets = new VarintWriter();
  for (const s of options.sequences) {
    lengths.write(s.literals);
    copies.write(s.copy);
    offsets.writeSigned(s.offset);
  }
  const instructions =
    options.instructions ?? concat([lengths.bytes(), copies.bytes(), offsets.bytes()]);
  const instructionsFrame = rawZstdFrame(instructions);
  const literalsFrame = rawZstdFrame(options.literals);
  const header = encodeHeader({
    algorithm: 'copy-zstd',
    baseSha256: options.baseSha256 ?? (await webSha256.digest(options.base)),
    baseLength: options.base.length,
    resultSha256: await webSha256.digest(result),
    resultLength: options.resultLength ?? result.length,
  });
  const table = encodeCopyZstdTable({
    sequenceCount: options.sequences.length,
    literalLengthColumnLength: lengths.length,
    copyLengthColumnLength: copies.length,
    copyOffsetColumnLength: offsets.length,
    literalsLength: options.literals.length,
    instructionsFrameLength: instructionsFrame.length,
    literalsFrameLength: literalsFrame.length,
    ...options.table,
  });
  return concat([header, table, instructionsFrame, literalsFrame]);
}

/** Rewrites header byte(s) and fixes the header checksum, so only the edited field is wrong. */
export function editHeader(delta: Uint8Array, edit: (header: DataView) => void): Uint8Array {
  const out = delta.slice();
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  edit(v);
  v.setUint32(HEADER_LENGTH - 4, crc32(out.subarray(0, HEADER_LENGTH - 4)), true);
  return out;
}
