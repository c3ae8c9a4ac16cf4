/**
 * The one error class of @cairn/origin. Callers (the HTTP app, the CLI) branch on `code`;
 * `HTTP_STATUS` maps every code to the status the service answers with.
 */
export type OriginErrorCode =
  // 401: the request is not from a current publisher, or not fresh.
  /** No authentication headers, or malformed ones. */
  | 'MISSING_AUTH'
  /** The key id names no publisher this repository has ever had. */
  | 'UNKNOWN_KEY'
  /** The key was a publisher's once and has been revoked. */
  | 'REVOKED_KEY'
  /** The request's signature does not verify with the publisher's key. */
  | 'BAD_SIGNATURE'
  /** The request's time is outside the window the origin accepts. */
  | 'EXPIRED_REQUEST'
  /** The request's nonce was seen before: a captured request sent again. */
  | 'REPLAYED_REQUEST'
  // 400: the input is wrong.
  /** Not JSON, wrong types, missing fields. */
  | 'MALFORMED'
  /** A field the request format does not have. */
  | 'UNKNOWN_FIELD'
  /** A file name that is absolute, climbs with `..`, is empty, or uses a reserved prefix. */
  | 'INVALID_NAME'
  /** Two files with the same name in one release. */
  | 'DUPLICATE_NAME'
  /** A release with no files. */
  | 'EMPTY_RELEASE'
  /** The uploaded bytes do not have the declared sha256. */
  | 'HASH_MISMATCH'
  /** The uploaded bytes are not the declared length. */
  | 'LENGTH_MISMATCH'
  /** A signature over the current draft that does not verify. */
  | 'INVALID_SIGNATURE'
  /** A publisher name that is not 1 to 64 of [A-Za-z0-9._-], or another key's name already. */
  | 'INVALID_PUBLISHER_NAME'
  // 404
  | 'NOT_FOUND'
  // 409: the request does not fit the repository's state.
  /** A signature or upload for a draft that is no longer the current one. */
  | 'STALE_DRAFT'
  /** The release is not in a state that allows this (e.g. uploading to a published release). */
  | 'RELEASE_STATE'
  /** Another origin instance changed the repository at the same time; retry. */
  | 'CONFLICT'
  // 413
  | 'TOO_LARGE'
  // 503
  /** Object storage did not answer or failed; nothing was half-written. Retry. */
  | 'STORAGE_UNAVAILABLE'
  /** Fewer log witnesses than the threshold cosigned the new checkpoint; nothing was published. Retry. */
  | 'WITNESS_UNAVAILABLE'
  // Local (CLI, start-up), never sent over HTTP.
  /** The configuration file or environment is wrong. */
  | 'CONFIG_INVALID'
  /** A key file that is not one, or damaged. */
  | 'KEY_FILE_INVALID'
  /** The passphrase does not open the key file. */
  | 'BAD_PASSPHRASE'
  /** The repository is not initialised, or already is. */
  | 'REPOSITORY_STATE'
  /** The origin did not answer (client side). */
  | 'UNREACHABLE'
  /** The origin's own stored state fails verification: someone changed storage. */
  | 'INTEGRITY'
  /** A bug: report it. */
  | 'INTERNAL';

export class OriginError extends Error {
  override readonly name = 'OriginError';
  readonly code: OriginErrorCode;
  override readonly cause: unknown;

  constructor(code: OriginErrorCode, message: string, options?: { cause?: unknown }) {
    super(message);
    this.code = code;
    this.cause = options?.cause;
  }
}

export function isOriginError(value: unknown, code?: OriginErrorCode): value is OriginError {
  return value instanceof OriginError && (code === undefined || value.code === code);
}

export const HTTP_STATUS: Readonly<Record<OriginErrorCode, number>> = {
  MISSING_AUTH: 401,
  UNKNOWN_KEY: 401,
  REVOKED_KEY: 401,
  BAD_SIGNATURE: 401,
  EXPIRED_REQUEST: 401,
  REPLAYED_REQUEST: 401,
  MALFORMED: 400,
  UNKNOWN_FIELD: 400,
  INVALID_NAME: 400,
  DUPLICATE_NAME: 400,
  EMPTY_RELEASE: 400,
  HASH_MISMATCH: 400,
  LENGTH_MISMATCH: 400,
  INVALID_SIGNATURE: 400,
  INVALID_PUBLISHER_NAME: 400,
  NOT_FOUND: 404,
  STALE_DRAFT: 409,
  RELEASE_STATE: 409,
  CONFLICT: 409,
  TOO_LARGE: 413,
  STORAGE_UNAVAILABLE: 503,
  WITNESS_UNAVAILABLE: 503,
  CONFIG_INVALID: 500,
  KEY_FILE_INVALID: 500,
  BAD_PASSPHRASE: 500,
  REPOSITORY_STATE: 500,
  INTEGRITY: 500,
  UNREACHABLE: 503,
  INTERNAL: 500,
};
