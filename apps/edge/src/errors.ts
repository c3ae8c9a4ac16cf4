/**
 * The one error class of @cairn/edge. The HTTP app maps every code to a status in one place
 * (`HTTP_STATUS`); the CLI prints the code and a hint.
 */
export type EdgeErrorCode =
  /** A path that is not part of the repository layout, or an object that is not there. */
  | 'NOT_FOUND'
  /** A method other than GET, HEAD (and OPTIONS for CORS preflight). */
  | 'METHOD_NOT_ALLOWED'
  /** If-Match did not hold. */
  | 'PRECONDITION_FAILED'
  /** A Range that starts at or past the end of the object. */
  | 'RANGE_NOT_SATISFIABLE'
  /** Too many full-file downloads from one address; retry after the time given. */
  | 'RATE_LIMITED'
  /** Object storage failed or did not answer in time. */
  | 'STORAGE_UNAVAILABLE'
  /** Metadata in storage (or from upstream) does not verify under the pinned trusted root. */
  | 'VERIFICATION_FAILED'
  /** The upstream of a pull-through or sync mirror failed or did not answer in time. */
  | 'UPSTREAM_UNAVAILABLE'
  /** The upstream answered with bytes that do not match verified metadata. */
  | 'UPSTREAM_INVALID'
  /**
   * The upstream's transparency log does not extend the one this mirror holds: a fork, or a
   * log that went back. Nothing is copied; the mirror keeps serving what it holds.
   */
  | 'SPLIT_VIEW'
  /** The configuration (environment, wrangler vars, flags) is wrong. Never sent over HTTP. */
  | 'CONFIG_INVALID';

export const HTTP_STATUS: Record<EdgeErrorCode, number> = {
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  PRECONDITION_FAILED: 412,
  RANGE_NOT_SATISFIABLE: 416,
  RATE_LIMITED: 429,
  STORAGE_UNAVAILABLE: 503,
  VERIFICATION_FAILED: 503,
  UPSTREAM_UNAVAILABLE: 503,
  UPSTREAM_INVALID: 502,
  SPLIT_VIEW: 502,
  CONFIG_INVALID: 500,
};

export class EdgeError extends Error {
  override readonly name = 'EdgeError';
  readonly code: EdgeErrorCode;
  override readonly cause: unknown;
  /** The object's size, with RANGE_NOT_SATISFIABLE (for `Content-Range: bytes *\/size`). */
  readonly size: number | undefined;

  constructor(
    code: EdgeErrorCode,
    message: string,
    options?: { cause?: unknown; size?: number | undefined },
  ) {
    super(message);
    this.code = code;
    this.cause = options?.cause;
    this.size = options?.size;
  }
}

export function isEdgeError(value: unknown, code?: EdgeErrorCode): value is EdgeError {
  return value instanceof EdgeError && (code === undefined || value.code === code);
}
