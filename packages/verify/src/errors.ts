/**
 * The one error class of @cairn/verify. Callers branch on `code`, never on message text.
 */
export type VerifyErrorCode =
  /** Not JSON, wrong types, missing or invalid fields, non-integer numbers. */
  | 'MALFORMED'
  /** `_type` is not the role that was expected at this step. */
  | 'WRONG_TYPE'
  /** `spec_version` is not 1.0 or 1.0.x. */
  | 'UNSUPPORTED_SPEC_VERSION'
  /** The same keyid appears twice in `signatures`. */
  | 'DUPLICATE_SIGNATURE'
  /** Fewer valid signatures than the role's threshold. */
  | 'THRESHOLD'
  /** A version went down, or a role listed before disappeared. */
  | 'ROLLBACK'
  /** A version differs from the one the referring metadata names (mix-and-match). */
  | 'VERSION_MISMATCH'
  /** Metadata expired before the fixed update start time (freeze). */
  | 'EXPIRED'
  /** Bytes do not match a listed hash. */
  | 'BAD_HASH'
  /** Bytes do not have the listed length. */
  | 'BAD_LENGTH'
  /** More bytes than the cap allows (endless data). */
  | 'TOO_LARGE'
  /** A hash algorithm we do not implement: a failure, never a skip. */
  | 'UNKNOWN_HASH_ALGORITHM'
  /** A key type or scheme we cannot verify with. */
  | 'UNSUPPORTED_KEY'
  /** A role or target name that could escape a directory or URL path. */
  | 'BAD_NAME'
  /** The requested target is not listed by any role that may list it. */
  | 'TARGET_NOT_FOUND'
  /** The server has no such file (HTTP 403 or 404). */
  | 'NOT_FOUND'
  /** A fetch failed (network, HTTP status) before verification could start. */
  | 'FETCH_FAILED'
  /** Signatures over different contents cannot be merged. */
  | 'SIGNED_DIFFERS'
  /** An operation was called in the wrong order (e.g. snapshot before timestamp). */
  | 'INVALID_STATE';

export class VerifyError extends Error {
  override readonly name = 'VerifyError';
  readonly code: VerifyErrorCode;
  override readonly cause: unknown;

  constructor(code: VerifyErrorCode, message: string, options?: { cause?: unknown }) {
    super(message);
    this.code = code;
    this.cause = options?.cause;
  }
}

export function isVerifyError(value: unknown, code?: VerifyErrorCode): value is VerifyError {
  return value instanceof VerifyError && (code === undefined || value.code === code);
}
