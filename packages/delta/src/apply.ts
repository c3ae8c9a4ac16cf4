/**
 * Applying a delta: portable (Uint8Array, WebCrypto, Web streams; no Node built-ins), so the same
 * code rebuilds a file in Node, in a Worker and in a browser.
 *
 * Order of checks: the header and payload table (BAD_MAGIC, UNSUPPORTED_VERSION, TRUNCATED,
 * CORRUPT, UNSUPPORTED_ALGORITHM), the base length (BASE_MISMATCH), the memory the work needs
 * (TOO_LARGE), the base sha256 (BASE_MISMATCH), the streams and every sequence (CORRUPT), and last
 * the result's length and sha256 (RESULT_MISMATCH). `applyDelta` returns bytes only after all of
 * them passed, so a delta that does not fit its base never yields a file.
 */
import { DeltaError } from './errors.js';
import {
  COPY_ZSTD_PAYLOAD_OFFSET,
  MAX_VARINT_BYTES,
  parseCopyZstdTable,
  parseHeader,
  type CopyZstdTable,
  type DeltaHeader,
} from './format.js';
import { DEFAULT_APPLY_LIMITS, type ApplyLimits } from './limits.js';
import { bytesEqual, toHex } from '@cairn/verify/encoding';
import { webSha256, type Sha256Port } from './sha256.js';
import { checkZstdFrame, fzstdDecoder, type ZstdDecoder } from './zstd.js';

export interface ApplyOptions {
  readonly limits?: Partial<ApplyLimits> | undefined;
  /** SHA-256 implementation. Default: `webSha256` (WebCrypto). */
  readonly sha256?: Sha256Port | undefined;
  /** zstd frame decoder. Default: `fzstdDecoder` (pure JavaScript). */
  readonly zstd?: ZstdDecoder | undefined;
}

/** A parsed delta whose base has been checked and whose streams are decoded. */
interface Program {
  readonly header: DeltaHeader;
  readonly table: CopyZstdTable;
  readonly base: Uint8Array;
  readonly instructions: Uint8Array;
  readonly literals: Uint8Array;
}

function requireBytes(value: unknown, name: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    const got = value === null ? 'null' : typeof value;
    throw new DeltaError('INVALID_ARGUMENT', `${name}: expected a Uint8Array, received ${got}`);
  }
}

function resolveLimits(options: ApplyOptions): ApplyLimits {
  const limits = { ...DEFAULT_APPLY_LIMITS, ...options.limits };
  if (!(limits.maxMemory >= 0)) {
    throw new DeltaError(
      'INVALID_ARGUMENT',
      `limits.maxMemory: expected a non-negative number, received ${limits.maxMemory}`,
    );
  }
  return limits;
}

async function decodeStream(
  decoder: ZstdDecoder,
  frame: Uint8Array,
  length: number,
  what: string,
): Promise<Uint8Array> {
  checkZstdFrame(frame, length, what);
  let decoded: Uint8Array;
  try {
    decoded = await decoder(frame, length);
  } catch (error) {
    if (error instanceof DeltaError) throw error;
    throw new DeltaError('CORRUPT', `${what}: ${String(error)}`, { cause: error });
  }
  if (decoded.length !== length) {
    throw new DeltaError('CORRUPT', `${what}: decoded ${decoded.length} bytes, expected ${length}`);
  }
  return decoded;
}

/** Everything up to and including the base check; `holdsResult` says whether the caller will
 * allocate the result (applyDelta) or stream it (applyDeltaStream). */
async function prepare(
  base: unknown,
  delta: unknown,
  options: ApplyOptions,
  holdsResult: boolean,
): Promise<Program> {
  requireBytes(base, 'base');
  requireBytes(delta, 'delta');
  const limits = resolveLimits(options);
  const header = parseHeader(delta);
  if (base.length !== header.baseLength) {
    throw new DeltaError(
      'BASE_MISMATCH',
      `base: ${base.length} bytes, the delta was made against ${header.baseLength}`,
    );
  }
  const table = parseCopyZstdTable(delta, header);
  const instructionsLength =
    table.literalLengthColumnLength + table.copyLengthColumnLength + table.copyOffsetColumnLength;
  const need = instructionsLength + table.literalsLength + (holdsResult ? header.resultLength : 0);
  if (need > limits.maxMemory) {
    throw new DeltaError(
      'TOO_LARGE',
      `applying needs ${need} bytes (result ${holdsResult ? header.resultLength : 0}, ` +
        `streams ${instructionsLength + table.literalsLength}), the limit is ${limits.maxMemory}`,
    );
  }
  const sha256 = options.sha256 ?? webSha256;
  const decoder = options.zstd ?? fzstdDecoder;
  // Hash the base while the streams decode (WebCrypto hashes off the main thread), but report
  // a wrong base before any other failure: it is the likelier cause and the more useful answer.
  const baseDigest = sha256.digest(base);
  let streams: [Uint8Array, Uint8Array] | undefined;
  let failure: unknown;
  try {
    const instructionsEnd = COPY_ZSTD_PAYLOAD_OFFSET + table.instructionsFrameLength;
    streams = [
      await decodeStream(
        decoder,
        delta.subarray(COPY_ZSTD_PAYLOAD_OFFSET, instructionsEnd),
        instructionsLength,
        'instructions stream',
      ),
      await decodeStream(
        decoder,
        delta.subarray(instructionsEnd, instructionsEnd + table.literalsFrameLength),
        table.literalsLength,
        'literals stream',
      ),
    ];
  } catch (error) {
    failure = error;
  }
  const actual = await baseDigest;
  if (!bytesEqual(actual, header.baseSha256)) {
    throw new DeltaError(
      'BASE_MISMATCH',
      `base: sha256 ${toHex(actual)}, the delta was made against ${toHex(header.baseSha256)}`,
    );
  }
  if (streams === undefined) throw failure;
  return { header, table, base, instructions: streams[0], literals: streams[1] };
}

/** Reads one column of LEB128 varints, never past its end. */
class ColumnReader {
  readonly #bytes: Uint8Array;
  readonly #end: number;
  readonly #what: string;
  #at: number;

  constructor(bytes: Uint8Array, start: number, end: number, what: string) {
    this.#bytes = bytes;
    this.#at = start;
    this.#end = end;
    this.#what = what;
  }

  get done(): boolean {
    return this.#at === this.#end;
  }

  next(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      if (this.#at >= this.#end) throw corrupt(`${this.#what} ends inside a varint`);
      const byte = this.#bytes[this.#at++] ?? 0;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (!Number.isSafeInteger(value)) throw corrupt(`${this.#what} holds a varint ≥ 2^53`);
        return value;
      }
      scale *= 0x80;
    }
    throw corrupt(`${this.#what} holds a varint longer than ${MAX_VARINT_BYTES} bytes`);
  }

  nextSigned(): number {
    const z = this.next();
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }
}

function corrupt(message: string): DeltaError {
  return new DeltaError('CORRUPT', `delta: ${message}`);
}

/**
 * The result, as a run of pieces: subarrays of the literals or of the base, in order. Every
 * sequence is checked against the base, the literals and the result length before its piece is
 * produced, so no piece reaches past the data it names.
 */
function* pieces(program: Program): Generator<Uint8Array, void, undefined> {
  const { table, base, instructions, literals } = program;
  const resultLength = program.header.resultLength;
  const lengthsEnd = table.literalLengthColumnLength;
  const copiesEnd = lengthsEnd + table.copyLengthColumnLength;
  const offsetsEnd = copiesEnd + table.copyOffsetColumnLength;
  const literalLengths = new ColumnReader(instructions, 0, lengthsEnd, 'literal-length column');
  const copyLengths = new ColumnReader(instructions, lengthsEnd, copiesEnd, 'copy-length column');
  const copyOffsets = new ColumnReader(instructions, copiesEnd, offsetsEnd, 'copy-offset column');
  let literalAt = 0;
  let written = 0;
  let copyEnd = 0;
  for (let i = 0; i < table.sequenceCount; i++) {
    const literalLength = literalLengths.next();
    const copyLength = copyLengths.next();
    const from = copyEnd + copyOffsets.nextSigned();
    if (literalLength + copyLength === 0) throw corrupt(`sequence ${i} writes nothing`);
    if (literalLength > literals.length - literalAt) {
      throw corrupt(`sequence ${i} takes literals past the end of the literals stream`);
    }
    if (from < 0 || from > base.length || copyLength > base.length - from) {
      throw corrupt(`sequence ${i} copies [${from}, ${from + copyLength}) outside the base`);
    }
    if (literalLength + copyLength > resultLength - written) {
      throw corrupt(`sequence ${i} writes past the ${resultLength}-byte result`);
    }
    if (literalLength > 0) {
      yield literals.subarray(literalAt, literalAt + literalLength);
      literalAt += literalLength;
    }
    if (copyLength > 0) yield base.subarray(from, from + copyLength);
    copyEnd = from + copyLength;
    written += literalLength + copyLength;
  }
  if (!literalLengths.done || !copyLengths.done || !copyOffsets.done) {
    throw corrupt('the instruction columns hold more than the sequence count');
  }
  if (literalAt !== literals.length) {
    throw corrupt(`${literals.length - literalAt} literal bytes are left over`);
  }
  if (written !== resultLength) {
    throw new DeltaError(
      'RESULT_MISMATCH',
      `result: ${written} bytes, the delta promises ${resultLength}`,
    );
  }
}

function checkResultDigest(actual: Uint8Array, header: DeltaHeader): void {
  if (!bytesEqual(actual, header.resultSha256)) {
    throw new DeltaError(
      'RESULT_MISMATCH',
      `result: sha256 ${toHex(actual)}, the delta promises ${toHex(header.resultSha256)}`,
    );
  }
}

/**
 * Rebuilds the file `delta` was made for from `base`. Resolves only with bytes whose length and
 * sha256 are the ones in the delta's header; rejects with a `DeltaError` otherwise.
 *
 * Memory: the result plus the decoded streams (see limits.ts), checked against
 * `limits.maxMemory` before anything is allocated.
 */
export async function applyDelta(
  base: Uint8Array,
  delta: Uint8Array,
  options: ApplyOptions = {},
): Promise<Uint8Array> {
  const program = await prepare(base, delta, options, true);
  const result = new Uint8Array(program.header.resultLength);
  let at = 0;
  for (const piece of pieces(program)) {
    result.set(piece, at);
    at += piece.length;
  }
  checkResultDigest(await (options.sha256 ?? webSha256).digest(result), program.header);
  return result;
}

/** Bytes per chunk of `applyDeltaStream`: large enough that per-chunk costs vanish, small
 * enough that a consumer writing to disk keeps little in flight. */
export const STREAM_CHUNK_BYTES = 1 << 20;

/**
 * Like `applyDelta`, but yields the result in chunks of up to STREAM_CHUNK_BYTES instead of
 * holding it, so a client rebuilding a 2 GB file needs the base and the delta's streams, not a
 * second 2 GB. The base and everything in the delta are checked before the first chunk; the
 * result's sha256 can only be known after the last one, so on a mismatch the stream errors with
 * RESULT_MISMATCH after its chunks were read: write them to a temporary file and install it only
 * once the stream has closed without error.
 *
 * The result is hashed with `sha256.create()`: constant memory with `nodeSha256` or in workerd;
 * `webSha256` in a browser has no incremental digest and keeps the chunks until the end.
 */
export function applyDeltaStream(
  base: Uint8Array,
  delta: Uint8Array,
  options: ApplyOptions = {},
): ReadableStream<Uint8Array> {
  const sha256 = options.sha256 ?? webSha256;
  let program: Program | undefined;
  let source: Generator<Uint8Array, void, undefined> | undefined;
  let piece: Uint8Array = new Uint8Array(0);
  let pieceAt = 0;
  let remaining = 0;
  const hasher = sha256.create();
  return new ReadableStream<Uint8Array>(
    {
      async start() {
        program = await prepare(base, delta, options, false);
        source = pieces(program);
        remaining = program.header.resultLength;
      },
      async pull(controller) {
        if (program === undefined || source === undefined) return;
        try {
          if (remaining > 0) {
            const chunk = new Uint8Array(Math.min(STREAM_CHUNK_BYTES, remaining));
            let filled = 0;
            while (filled < chunk.length) {
              if (pieceAt === piece.length) {
                const next = source.next();
                if (next.done === true) break;
                piece = next.value;
                pieceAt = 0;
              }
              const n = Math.min(piece.length - pieceAt, chunk.length - filled);
              chunk.set(piece.subarray(pieceAt, pieceAt + n), filled);
              pieceAt += n;
              filled += n;
            }
            remaining -= filled;
            const out = filled === chunk.length ? chunk : chunk.subarray(0, filled);
            hasher.update(out);
            controller.enqueue(out);
            if (filled === chunk.length && remaining > 0) return;
          }
          // Finish the generator: its end-of-program checks (left-over literals, length) run there.
          if (source.next().done !== true) {
            throw new DeltaError('RESULT_MISMATCH', 'result: longer than the delta promises');
          }
          checkResultDigest(await hasher.digest(), program.header);
          controller.close();
        } catch (error) {
          controller.error(error);
        }
      },
    },
    { highWaterMark: 0 },
  );
}
