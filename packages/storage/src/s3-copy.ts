/**
 * What the two S3 adapters (the AWS SDK one and the aws4fetch one) share for a server-side copy:
 * the `x-amz-copy-source` value, how a copy too large for one CopyObject is cut into
 * UploadPartCopy ranges, how long a copy may take, and running parts a few at a time.
 * Web-standard only: the Worker adapter uses it too.
 */
import type { CopyOptions, ObjectInfo } from './blob-store.js';
import { StorageError } from './errors.js';
import { notFound, preconditionFailed } from './options.js';

const MiB = 1024 * 1024;

/** S3's largest CopyObject, and its largest part: 5 GiB. Larger objects are copied in parts. */
export const MAX_SINGLE_COPY_BYTES = 5 * 1024 * MiB;
/** S3's smallest part, but for the last. */
export const MIN_COPY_PART_BYTES = 5 * MiB;
/**
 * Parts of a multipart copy: few requests for a large object (11 for 5 GiB), each one short
 * enough to finish well inside its deadline.
 */
export const DEFAULT_COPY_PART_BYTES = 512 * MiB;
/** S3's most parts in one upload. */
const MAX_PARTS = 10_000;
/**
 * The slowest server-side copy we wait for, beyond a request's usual deadline: S3 copies
 * hundreds of MB/s inside a region, so at 16 MiB/s a request is lost, not slow. 5 GiB: 320 s.
 */
const MIN_COPY_BYTES_PER_SECOND = 16 * MiB;

/** Thrown inside an adapter's copy when the source no longer has the etag the copy pinned. */
export class SourceChangedError extends Error {
  override readonly name = 'SourceChangedError';
}

/**
 * The `x-amz-copy-source` value for `key` in `bucket`: S3 URL-decodes it, so every byte of the
 * key but the `/` between segments is percent-encoded (RFC 3986; a raw `+` could be read as a
 * space, a raw `%` as an escape, and non-ASCII cannot go in a header at all).
 */
export function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeRfc3986).join('/')}`;
}

/** Percent-encodes everything but RFC 3986's unreserved characters. */
export function encodeRfc3986(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

export interface CopyPart {
  readonly partNumber: number;
  readonly length: number;
  /** The `x-amz-copy-source-range`; undefined when the one part is the whole object. */
  readonly range: string | undefined;
}

/**
 * The UploadPartCopy parts of an object of `size` bytes, of `partSize` bytes each but the last;
 * the parts grow (by whole MiB) when 10 000 of them would not hold the object. An object that
 * fits in one part (an empty one too) is one part without a range.
 */
export function planCopyParts(size: number, partSize: number): CopyPart[] {
  const chosen = Math.max(partSize, Math.ceil(size / MAX_PARTS / MiB) * MiB);
  if (size <= chosen) return [{ partNumber: 1, length: size, range: undefined }];
  const parts: CopyPart[] = [];
  for (let offset = 0; offset < size; offset += chosen) {
    const length = Math.min(chosen, size - offset);
    parts.push({
      partNumber: parts.length + 1,
      length,
      range: `bytes=${offset}-${offset + length - 1}`,
    });
  }
  return parts;
}

/** How much longer than an ordinary request a server-side copy of `bytes` may take. */
export function copyAllowanceMs(bytes: number): number {
  return Math.ceil((bytes / MIN_COPY_BYTES_PER_SECOND) * 1000);
}

/**
 * Runs `work` on every item, at most `concurrency` at a time, and resolves with the results in
 * item order. After a failure it starts nothing new, waits for the work under way (so nothing
 * is still running when the caller cleans up), and rejects with the first failure.
 */
export async function forEachLimited<T, R>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  let failure: { reason: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const index = next++;
      try {
        results[index] = await work(items[index] as T);
      } catch (error) {
        failure ??= { reason: error };
      }
    }
  };
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker),
  );
  if (failure !== undefined) throw failure.reason;
  return results;
}

/** What an S3 adapter does for one attempt of a copy, given the source's info as seen. */
export interface CopySteps {
  head(key: string): Promise<ObjectInfo | undefined>;
  /** One CopyObject; only for a plain (not create-only) copy up to the threshold. */
  copyObject(source: ObjectInfo, to: string, contentType: string | undefined): Promise<ObjectInfo>;
  /** A multipart copy whose completion carries the destination's condition. */
  copyInParts(source: ObjectInfo, to: string, options: CopyOptions): Promise<ObjectInfo>;
  readonly multipartCopyThreshold: number;
}

/**
 * The copy loop both S3 adapters run: head the source, copy the version seen (each request
 * pinned to its etag), and start over if it changed meanwhile — unless the caller pinned the
 * source with `sourceIfMatch`, which then has failed. Three attempts, then UNAVAILABLE.
 */
export async function copyPinned(
  from: string,
  to: string,
  options: CopyOptions,
  steps: CopySteps,
): Promise<ObjectInfo> {
  const { sourceIfMatch } = options;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const source = await steps.head(from);
    if (source === undefined) throw notFound(from);
    if (sourceIfMatch !== undefined && source.etag !== sourceIfMatch) {
      throw preconditionFailed(from, 'the etag does not match sourceIfMatch');
    }
    try {
      return options.ifNoneMatch === undefined && source.size <= steps.multipartCopyThreshold
        ? await steps.copyObject(source, to, options.contentType)
        : await steps.copyInParts(source, to, options);
    } catch (error) {
      if (!(error instanceof SourceChangedError)) throw error;
      if (sourceIfMatch !== undefined) {
        throw preconditionFailed(from, 'the etag does not match sourceIfMatch', error);
      }
    }
  }
  throw new StorageError('UNAVAILABLE', `copy ${from}: the object kept changing while copied`);
}
