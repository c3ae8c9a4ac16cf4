/**
 * The one error class of @cairn/tlog. Callers branch on `code`, never on message text.
 */
export type TlogErrorCode =
  /** An argument out of range: a negative or non-integer index or size, an index past the size. */
  | 'INVALID_ARGUMENT'
  /** A proof of the wrong length, or hashes that are not 32 bytes. */
  | 'MALFORMED_PROOF'
  /** A well-formed proof that does not lead to the expected root. */
  | 'INVALID_PROOF'
  /** Two tree heads that no valid consistency proof could join (sizes go down, or same size with different roots). */
  | 'INCONSISTENT'
  /** A tile of the wrong length, or a tile path that does not parse. */
  | 'MALFORMED_TILE'
  /** A signed note that breaks the C2SP signed-note grammar. */
  | 'MALFORMED_NOTE'
  /** A checkpoint body that breaks the C2SP tlog-checkpoint grammar. */
  | 'MALFORMED_CHECKPOINT'
  /** A key string or key bytes that do not parse. */
  | 'MALFORMED_KEY'
  /** A signature by a known key that does not verify. */
  | 'BAD_SIGNATURE'
  /** No signature on the note is by any key the verifier knows. */
  | 'UNKNOWN_KEY'
  /** Some known keys signed, but fewer than the threshold. */
  | 'THRESHOLD'
  /** The checkpoint names a different origin than the one expected. */
  | 'WRONG_ORIGIN'
  /** More bytes, lines or signatures than a limit in limits.ts allows. */
  | 'TOO_LARGE'
  /** A log entry that is not a canonical Cairn metadata entry. */
  | 'MALFORMED_ENTRY'
  /** Two signed checkpoints of the same log that cannot both be true: a fork (split view). */
  | 'SPLIT_VIEW'
  /** A log file (checkpoint, tile, entry bundle) the store or mirror does not have. */
  | 'NOT_FOUND'
  /** Another writer holds the append lease and did not release it in time. */
  | 'LOCKED'
  /** The checkpoint changed under an append more times than the writer retries. */
  | 'CONFLICT';

export class TlogError extends Error {
  override readonly name = 'TlogError';
  readonly code: TlogErrorCode;
  override readonly cause: unknown;

  constructor(code: TlogErrorCode, message: string, options?: { cause?: unknown }) {
    super(message);
    this.code = code;
    this.cause = options?.cause;
  }
}

export function isTlogError(value: unknown, code?: TlogErrorCode): value is TlogError {
  return value instanceof TlogError && (code === undefined || value.code === code);
}
