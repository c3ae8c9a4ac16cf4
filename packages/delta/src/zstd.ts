/**
 * Plain zstd decompression of the delta's two streams, behind a port.
 *
 * The default decoder is fzstd, pure JavaScript, because Workers and browsers have no zstd in
 * DecompressionStream. It is slow on large streams (measured: 20–40 MB/s, against 400–500 MB/s for
 * node:zlib), which costs little here: a delta's streams hold only what changed (0.5 MB decoded
 * for a 100 MB signature database with 1% of records changed: 12–25 ms). In Node,
 * `nodeZstdDecoder` from `@cairn/delta/node` uses node:zlib, which also checks the frames'
 * content checksums; fzstd skips them, which is safe because a damaged stream still fails the
 * result sha256 check.
 *
 * Before any decoder runs, the frame is walked block by block: it must be exactly one zstd frame
 * with no dictionary, whose declared content size is the length the payload table promises.
 * That bounds what a decoder can be made to allocate or write.
 */
import { decompress } from 'fzstd';
import { DeltaError } from './errors.js';

/** Decodes one zstd frame whose content size has been checked to be `length` bytes. */
export type ZstdDecoder = (frame: Uint8Array, length: number) => Uint8Array | Promise<Uint8Array>;

export const fzstdDecoder: ZstdDecoder = (frame, length) => {
  const out = new Uint8Array(length);
  try {
    decompress(frame, out);
  } catch (error) {
    throw new DeltaError('CORRUPT', `zstd frame: ${String(error)}`, { cause: error });
  }
  return out;
};

const ZSTD_MAGIC = 0xfd2fb528;

/**
 * Checks that `frame` is one whole zstd frame declaring `length` bytes of content, and nothing
 * else. Throws CORRUPT otherwise.
 */
export function checkZstdFrame(frame: Uint8Array, length: number, what: string): void {
  const fail = (why: string): never => {
    throw new DeltaError('CORRUPT', `${what}: ${why}`);
  };
  const byte = (i: number): number =>
    i < frame.length ? (frame[i] ?? 0) : fail('frame ends early');
  if (frame.length < 6) fail('not a zstd frame');
  const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (v.getUint32(0, true) !== ZSTD_MAGIC) fail('not a zstd frame');
  const descriptor = byte(4);
  const fcsFlag = descriptor >> 6;
  const singleSegment = (descriptor >> 5) & 1;
  const hasChecksum = (descriptor >> 2) & 1;
  if (descriptor & 0x08) fail('reserved bit set in the frame header');
  if (descriptor & 0x03) fail('frame names a dictionary');
  let at = singleSegment ? 5 : 6;
  const fcsBytes = fcsFlag === 0 ? singleSegment : 1 << fcsFlag;
  if (fcsBytes === 0) fail('frame does not declare its content size');
  let contentSize = 0;
  for (let i = 0; i < fcsBytes; i++) contentSize += byte(at + i) * 2 ** (8 * i);
  if (fcsFlag === 1) contentSize += 256;
  at += fcsBytes;
  if (contentSize !== length) {
    fail(`frame declares ${contentSize} bytes, the payload table ${length}`);
  }
  for (;;) {
    const header = byte(at) | (byte(at + 1) << 8) | (byte(at + 2) << 16);
    at += 3;
    const last = header & 1;
    const type = (header >> 1) & 3;
    const size = header >>> 3;
    if (type === 3) fail('reserved block type');
    // An RLE block stores one byte however long its run.
    at += type === 1 ? 1 : size;
    if (last) break;
  }
  at += hasChecksum ? 4 : 0;
  if (at !== frame.length) {
    fail(at > frame.length ? 'frame ends early' : 'bytes follow the frame');
  }
}
