/**
 * Argument checks and range arithmetic that every adapter shares, so they all refuse the same
 * inputs with the same codes and cut ranges the same way. Web-standard only: the Worker
 * adapters use it too.
 */
import type { ByteRange, CopyOptions, GetOptions, ListOptions, PutOptions } from './blob-store.js';
import { StorageError } from './errors.js';
import { checkKey, checkPrefix } from './keys.js';

/** Objects per list page when the caller names no limit. */
export const DEFAULT_LIST_LIMIT = 1000;
/** Adapters return at most this many objects per page: S3's own maximum for ListObjectsV2. */
export const MAX_LIST_LIMIT = 1000;

function isCount(value: unknown, min: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min;
}

function invalid(message: string): StorageError {
  return new StorageError('INVALID_ARGUMENT', message);
}

export function checkRange(range: ByteRange): void {
  if ('suffix' in range) {
    if (!isCount(range.suffix, 1)) {
      throw invalid(`range.suffix: expected an integer >= 1, got ${String(range.suffix)}`);
    }
    return;
  }
  if (!isCount(range.offset, 0)) {
    throw invalid(`range.offset: expected an integer >= 0, got ${String(range.offset)}`);
  }
  if (range.length !== undefined && !isCount(range.length, 1)) {
    throw invalid(`range.length: expected an integer >= 1, got ${String(range.length)}`);
  }
}

export function checkGetOptions(key: string, options: GetOptions | undefined): void {
  checkKey(key);
  if (options?.range !== undefined) checkRange(options.range);
  checkEtagArgument(options?.ifMatch, 'ifMatch');
  checkEtagArgument(options?.ifNoneMatch, 'ifNoneMatch');
}

function checkEtagArgument(value: string | undefined, what: string): void {
  if (value === undefined) return;
  if (typeof value !== 'string' || value.length === 0 || /["\s,]/.test(value)) {
    throw invalid(`${what}: expected an etag without quotes, got ${JSON.stringify(value)}`);
  }
}

export function checkPutOptions(key: string, options: PutOptions | undefined): void {
  checkKey(key);
  if (options?.ifNoneMatch !== undefined && options.ifNoneMatch !== '*') {
    throw invalid(
      `ifNoneMatch: only '*' is supported on put, got ${JSON.stringify(options.ifNoneMatch)}`,
    );
  }
  if (options?.ifNoneMatch !== undefined && options.ifMatch !== undefined) {
    throw invalid('ifMatch and ifNoneMatch: give one condition, not both');
  }
  checkEtagArgument(options?.ifMatch, 'ifMatch');
  if (options?.contentLength !== undefined && !isCount(options.contentLength, 0)) {
    throw invalid(`contentLength: expected an integer >= 0, got ${String(options.contentLength)}`);
  }
}

export function checkCopyOptions(from: string, to: string, options: CopyOptions | undefined): void {
  checkKey(from, 'from');
  checkKey(to, 'to');
  if (from === to) {
    throw invalid(`from and to: both are ${JSON.stringify(from)}; a copy needs two keys`);
  }
  if (options?.ifNoneMatch !== undefined && options.ifNoneMatch !== '*') {
    throw invalid(
      `ifNoneMatch: only '*' is supported on copy, got ${JSON.stringify(options.ifNoneMatch)}`,
    );
  }
  checkEtagArgument(options?.sourceIfMatch, 'sourceIfMatch');
}

/** Checks list options; returns the page size to use (at most MAX_LIST_LIMIT). */
export function checkListOptions(options: ListOptions): number {
  checkPrefix(options.prefix);
  if (options.limit === undefined) return DEFAULT_LIST_LIMIT;
  if (!isCount(options.limit, 1)) {
    throw invalid(`limit: expected an integer >= 1, got ${String(options.limit)}`);
  }
  return Math.min(options.limit, MAX_LIST_LIMIT);
}

/**
 * Where `range` falls in an object of `size` bytes, as HTTP Range does it: a range running past
 * the end is cut at the end, a suffix longer than the object is the whole object, and a range
 * starting at or past the end (or any range of an empty object) is RANGE_NOT_SATISFIABLE.
 */
export function resolveRange(
  range: ByteRange,
  size: number,
  key: string,
): { offset: number; length: number } {
  if ('suffix' in range) {
    if (size === 0) throw notSatisfiable(key, size);
    const length = Math.min(range.suffix, size);
    return { offset: size - length, length };
  }
  if (range.offset >= size) throw notSatisfiable(key, size);
  const rest = size - range.offset;
  return { offset: range.offset, length: Math.min(range.length ?? rest, rest) };
}

export function notSatisfiable(key: string, size: number, cause?: unknown): StorageError {
  return new StorageError(
    'RANGE_NOT_SATISFIABLE',
    `${key}: the range starts past the end of the object (${size} bytes)`,
    { size, cause },
  );
}

export function notFound(key: string, cause?: unknown): StorageError {
  return new StorageError('NOT_FOUND', `${key}: no such object`, { cause });
}

export function preconditionFailed(key: string, what: string, cause?: unknown): StorageError {
  return new StorageError('PRECONDITION_FAILED', `${key}: ${what}`, { cause });
}

/** The HTTP Range header value for a checked range. */
export function rangeHeader(range: ByteRange): string {
  if ('suffix' in range) return `bytes=-${range.suffix}`;
  return range.length === undefined
    ? `bytes=${range.offset}-`
    : `bytes=${range.offset}-${range.offset + range.length - 1}`;
}

const encoder = new TextEncoder();

/** Orders keys as S3 lists them: by their UTF-8 bytes, not by UTF-16 code units. */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}
