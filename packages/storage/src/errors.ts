/** The one error class of @cairn/storage. Callers branch on `code`. */
export type StorageErrorCode =
  /** No object under that key. */
  | 'NOT_FOUND'
  /** If-Match / If-None-Match: * did not hold. */
  | 'PRECONDITION_FAILED'
  /** The range starts at or past the end of the object; `size` says how big it is. */
  | 'RANGE_NOT_SATISFIABLE'
  /** A key that is empty, absolute, climbs with `..`, or holds control characters. */
  | 'INVALID_KEY'
  /** Bad arguments (a negative range, a limit of 0, ...). */
  | 'INVALID_ARGUMENT'
  /** The storage service did not answer, or answered with a server error: try again. */
  | 'UNAVAILABLE';

export class StorageError extends Error {
  override readonly name = 'StorageError';
  readonly code: StorageErrorCode;
  override readonly cause: unknown;
  /** The object's size, with RANGE_NOT_SATISFIABLE (for `Content-Range: bytes *\/size`). */
  readonly size: number | undefined;

  constructor(
    code: StorageErrorCode,
    message: string,
    options?: { cause?: unknown; size?: number },
  ) {
    super(message);
    this.code = code;
    this.cause = options?.cause;
    this.size = options?.size;
  }
}

export function isStorageError(value: unknown, code?: StorageErrorCode): value is StorageError {
  return value instanceof StorageError && (code === undefined || value.code === code);
}
