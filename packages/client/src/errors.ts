/**
 * The one error class of the updater (@cairn/client). Callers and the CLI branch on `code`.
 * Verification failures keep their VerifyError (from @cairn/verify) as the `cause`.
 */
export type ClientErrorCode =
  /** No mirror answered usefully: every one failed, timed out, or served bad data. */
  | 'NO_MIRROR'
  /** A download failed on one mirror (network, timeout, HTTP status); the next may succeed. */
  | 'DOWNLOAD_FAILED'
  /** A download was slower than the configured minimum throughput. */
  | 'TOO_SLOW'
  /** A mirror sent more bytes than the length cap allows. */
  | 'TOO_LARGE'
  /** A mirror asked us to wait (429 / 503 with Retry-After). */
  | 'RETRY_LATER'
  /** Downloaded bytes do not match the signed metadata (hash or length). */
  | 'VERIFICATION_FAILED'
  /** A delta could not be applied or its result did not verify; the full file is used instead. */
  | 'DELTA_FAILED'
  /** Another updater holds the lock on this state directory. */
  | 'LOCKED'
  /** Writing the installed file failed (disk full, permissions); the previous version is intact. */
  | 'INSTALL_FAILED'
  /** Nothing to roll back to. */
  | 'NO_PREVIOUS_VERSION'
  /** The configuration is wrong. */
  | 'CONFIG_INVALID'
  /** Root or targets metadata that no mirror's transparency log proves to be in the log. */
  | 'NOT_IN_LOG'
  /** Two checkpoints signed by the log that cannot both be true (a fork shown to this client):
   * nothing is installed and the held checkpoint is kept. */
  | 'SPLIT_VIEW'
  /** Log inclusion is required, and the trusted root declares no transparency log. */
  | 'LOG_REQUIRED';

export class ClientError extends Error {
  override readonly name = 'ClientError';
  readonly code: ClientErrorCode;
  override readonly cause: unknown;
  /** Seconds to wait before asking again, with RETRY_LATER. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    code: ClientErrorCode,
    message: string,
    options?: { cause?: unknown; retryAfterSeconds?: number | undefined },
  ) {
    super(message);
    this.code = code;
    this.cause = options?.cause;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

export function isClientError(value: unknown, code?: ClientErrorCode): value is ClientError {
  return value instanceof ClientError && (code === undefined || value.code === code);
}
