/**
 * The one error class of @cairn/delta. Callers branch on `code`, never on message text. Every
 * failure of `applyDelta` is one of these: a delta that cannot be applied never yields bytes.
 */
export type DeltaErrorCode =
  /** The bytes do not start with the delta magic: not a Cairn delta at all. */
  | 'BAD_MAGIC'
  /** A format version this decoder does not know (a newer encoder made it). */
  | 'UNSUPPORTED_VERSION'
  /** An algorithm id this decoder does not know. */
  | 'UNSUPPORTED_ALGORITHM'
  /** The delta ends before its header or payload does. */
  | 'TRUNCATED'
  /** The header or payload is damaged: checksum, bounds or structure. */
  | 'CORRUPT'
  /** The base given is not the one the delta was made against (length or sha256). */
  | 'BASE_MISMATCH'
  /** Applying gave bytes whose length or sha256 differ from the ones the header promises. */
  | 'RESULT_MISMATCH'
  /** Doing the work would need more memory (or a longer file) than the configured limit. */
  | 'TOO_LARGE'
  /** An argument is not what the function accepts (wrong type, bad option value). */
  | 'INVALID_ARGUMENT';

export class DeltaError extends Error {
  override readonly name = 'DeltaError';
  readonly code: DeltaErrorCode;
  override readonly cause: unknown;

  constructor(code: DeltaErrorCode, message: string, options?: { cause?: unknown }) {
    super(message);
    this.code = code;
    this.cause = options?.cause;
  }
}

export function isDeltaError(value: unknown, code?: DeltaErrorCode): value is DeltaError {
  return value instanceof DeltaError && (code === undefined || value.code === code);
}
