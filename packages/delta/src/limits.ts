/**
 * Every hard limit of @cairn/delta, with the reason beside each number, and the memory each side
 * needs as a function of the file sizes. Both sides compute their need before they allocate and
 * refuse with `TOO_LARGE` when it is over the limit, so a hostile or mistaken delta cannot make a
 * client allocate more than it agreed to.
 *
 * With B = base length, T = target (result) length, L = literal bytes (target bytes found nowhere
 * in the base: 0.4% of T for a signature database with 1% of its records changed, 2% for the
 * benchmark's binary, T for unrelated files), S = sequences (about one per change; at most one per
 * 32 bytes of target) and Z = the delta's length (about L when L is large):
 *
 *   applyDelta        B + Z (the caller's)  +  T + L + I      where I ≤ 24 S (the instruction
 *                     columns, ~4 bytes per sequence in practice). Checked: T + L + I.
 *                     About B + T for similar files; at most B + 2T + 24 S + Z.
 *   applyDeltaStream  B + Z (the caller's)  +  L + I + one 1 MiB chunk. Checked: L + I.
 *                     (With webSha256 outside workerd the result's chunks are kept for the final
 *                     digest, adding T: WebCrypto has no incremental hash.)
 *   encodeDelta       B + T (the caller's)  +  index + 120 S + 2 L + zstd, where
 *                     index = 4 × (power of two ≥ B / stride) + 512 KiB ≤ 8 B / stride + 512 KiB
 *                     (≤ B / 8 at the default stride of 64), and zstd ≤ 2 × ZSTD_WORKSPACE_BYTES (32 MiB).
 *                     Checked in full, before matching with L = S = 0 and after with the real ones.
 *                     About B + T + B / 8 for similar files.
 *
 * Add Node's own ~45 MB to a process. Measured peaks for 100 MB files (bench/README.md): encode
 * 288–293 MB, apply 213–240 MB (applyDeltaStream): under 3 × the file size.
 *
 * In Node, hashing with WebCrypto (the portable default) copies its input first, adding B and
 * then T for a moment; `nodeSha256` from @cairn/delta/node does not.
 */

/** Limits `applyDelta` enforces. */
export interface ApplyLimits {
  /**
   * Bytes `applyDelta` may allocate: the result plus the decoded instruction and literal
   * streams. The base and the delta are the caller's and are not counted. Checked against the
   * lengths in the header before anything is allocated.
   */
  readonly maxMemory: number;
}

/**
 * 4 GiB: a 2 GB file (the largest release the design names) rebuilt from a delta that is all
 * literals needs 2 GB for the result and 2 GB for the literals. A client that knows the signed
 * target length should pass a tighter limit (2 × that length + 1 MiB covers every delta).
 */
export const DEFAULT_APPLY_LIMITS: ApplyLimits = Object.freeze({ maxMemory: 4 * 2 ** 30 });

/** Limits `encodeDelta` enforces. */
export interface EncodeLimits {
  /**
   * Bytes `encodeDelta` may use in all, the base and target included: the formula above,
   * checked with L = T before matching starts and with the real L before the streams are built.
   */
  readonly maxMemory: number;
}

/** 10 GiB: two 2 GB files, their index and an all-literal delta, with room for Node itself, on
 * a publisher machine that has it. Lower it where the origin shares a small machine. */
export const DEFAULT_ENCODE_LIMITS: EncodeLimits = Object.freeze({ maxMemory: 10 * 2 ** 30 });

/** Base positions are stored in a Uint32Array index as position + 1, so a base must be shorter
 * than 2^32 - 1 bytes. Larger files need a wider index (a new algorithm id). */
export const MAX_BASE_LENGTH = 2 ** 32 - 2;

/** Lengths in the header are 64-bit, but JavaScript numbers are exact only up to 2^53 - 1. */
export const MAX_LENGTH = Number.MAX_SAFE_INTEGER;

/**
 * A bound on what one zstd compressor in `encodeDelta` needs beyond its input and output. The
 * encoder caps the window, chain and hash tables at 2^20 (encode.ts), so at any level the
 * compressor holds a 1 MiB window, two tables of 4 MiB and the optimal parser's state; measured:
 * 10 MB of peak RSS for 2.2 MB of literals at level 19. Two run at once, one per stream.
 */
export const ZSTD_WORKSPACE_BYTES = 16 * 2 ** 20;
