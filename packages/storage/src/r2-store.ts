/**
 * BlobStore over a Cloudflare R2 bucket binding (`env.BUCKET` in a Worker). No `node:` imports
 * and no dependency on @cloudflare/workers-types: the binding is described by the few methods
 * used here, which the real `R2Bucket` satisfies.
 *
 * How the port maps onto R2:
 * - Conditions are R2's `onlyIf` (`etagMatches` for If-Match, `etagDoesNotMatch` for
 *   If-None-Match), evaluated by R2 together with the read or write, so a compare-and-swap has
 *   exactly one winner. A failed `put` condition is `null`; a failed `get` condition is an
 *   object without a body.
 * - Etags are R2's `etag` (no quotes), never `httpEtag`.
 * - R2 stores a stream only when its length is known. With `contentLength` the body streams
 *   through a FixedLengthStream into one `put`; without it, bodies larger than one part go up
 *   as a multipart upload, at most two parts in memory.
 * - R2's `complete()` of a multipart upload takes no condition. A conditional put of a stream
 *   of unknown length larger than one part is therefore first assembled under a staging key
 *   (which no valid key can equal, and which `list` never shows), then copied, streaming and
 *   with its condition, by one `put`, and the staging object removed. That costs a second write
 *   of the object: pass `contentLength` to avoid it.
 * - The binding has no copy. `copy` reads the source (with `sourceIfMatch` as the read's
 *   `onlyIf`, so the bytes are of that version) and streams it into one `put` at the
 *   destination, with If-None-Match as the put's `onlyIf`: the bytes pass through the Worker,
 *   but never more than a chunk at a time. A source above R2's largest put (5 GiB less 5 MiB)
 *   goes up as a multipart upload instead, which takes no condition: a create-only copy of one
 *   is INVALID_ARGUMENT. For server-side copies, use the S3 store on R2's S3 endpoint.
 */
import type {
  BlobStore,
  CopyOptions,
  GetOptions,
  GetResult,
  ListOptions,
  ListPage,
  ObjectInfo,
  PutBody,
  PutOptions,
} from './blob-store.js';
import { StorageError, isStorageError } from './errors.js';
import { checkKey } from './keys.js';
import {
  checkCopyOptions,
  checkGetOptions,
  checkListOptions,
  checkPutOptions,
  notFound,
  preconditionFailed,
  resolveRange,
} from './options.js';
import { PartReader } from './part-reader.js';

const MiB = 1024 * 1024;
/** Two parts in memory at a time: 16 MiB, an eighth of a Worker's 128 MB. */
const DEFAULT_PART_SIZE = 8 * MiB;
/** R2's minimum for every part but the last (which all must be the same size, as ours are). */
const MIN_PART_SIZE = 5 * MiB;
/** R2's maximum number of parts in one upload. */
const MAX_PARTS = 10_000;
/** R2's largest single `put`: 5 GiB less 5 MiB. Larger objects need a multipart upload. */
const MAX_SINGLE_PUT = 5 * 1024 * MiB - 5 * MiB;
/**
 * Staging keys for conditional multipart uploads start with a backslash, which checkKey refuses
 * in every key and prefix: no caller's key can collide with one, and list() drops them.
 */
const STAGING_PREFIX = '\\cairn-staging\\';

/** The part of an R2 object's metadata that the port uses. */
export interface R2ObjectLike {
  readonly key: string;
  readonly size: number;
  readonly etag: string;
  readonly uploaded: Date;
  readonly httpMetadata?: { readonly contentType?: string | undefined } | undefined;
}

export interface R2ObjectBodyLike extends R2ObjectLike {
  readonly body: ReadableStream<Uint8Array>;
}

export interface R2ConditionsLike {
  readonly etagMatches?: string;
  readonly etagDoesNotMatch?: string;
}

export type R2RangeLike =
  { readonly offset: number; readonly length?: number | undefined } | { readonly suffix: number };

export interface R2UploadedPartLike {
  readonly partNumber: number;
  readonly etag: string;
}

export interface R2MultipartUploadLike {
  uploadPart(partNumber: number, value: Uint8Array<ArrayBuffer>): Promise<R2UploadedPartLike>;
  abort(): Promise<void>;
  complete(uploadedParts: R2UploadedPartLike[]): Promise<R2ObjectLike>;
}

/** The methods of an `R2Bucket` binding that R2BlobStore calls. */
export interface R2BucketLike {
  head(key: string): Promise<R2ObjectLike | null>;
  get(
    key: string,
    options?: { onlyIf?: R2ConditionsLike; range?: R2RangeLike },
  ): Promise<R2ObjectBodyLike | R2ObjectLike | null>;
  put(
    key: string,
    value: ReadableStream<Uint8Array> | Uint8Array<ArrayBuffer>,
    options?: { onlyIf?: R2ConditionsLike; httpMetadata?: { contentType?: string } },
  ): Promise<R2ObjectLike | null>;
  delete(key: string): Promise<void>;
  list(options?: {
    prefix?: string;
    cursor?: string;
    limit?: number;
    include?: ('httpMetadata' | 'customMetadata')[];
  }): Promise<{ objects: R2ObjectLike[]; truncated: boolean; cursor?: string }>;
  createMultipartUpload(
    key: string,
    options?: { httpMetadata?: { contentType?: string } },
  ): Promise<R2MultipartUploadLike>;
}

export interface R2BlobStoreOptions {
  /** Multipart part size in bytes, at least 5 MiB. Default 8 MiB. */
  readonly partSize?: number | undefined;
}

/** workerd's TransformStream that gives its readable side a known length. */
type FixedLengthStreamConstructor = new (length: number) => TransformStream<Uint8Array, Uint8Array>;

interface PutParameters {
  readonly onlyIf: R2ConditionsLike | undefined;
  readonly httpMetadata: { contentType: string } | undefined;
}

/** A body of unknown length being cut into parts, its first two parts already read. */
interface PartedBody {
  readonly reader: PartReader;
  readonly firstParts: [Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>];
  readonly partSize: number;
  readonly contentLength: number | undefined;
  readonly parameters: PutParameters;
}

export class R2BlobStore implements BlobStore {
  readonly #bucket: R2BucketLike;
  readonly #partSize: number;

  constructor(bucket: R2BucketLike, options: R2BlobStoreOptions = {}) {
    const partSize = options.partSize ?? DEFAULT_PART_SIZE;
    if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE || partSize > MAX_SINGLE_PUT) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `partSize: expected an integer from ${MIN_PART_SIZE} to ${MAX_SINGLE_PUT}, got ${partSize}`,
      );
    }
    this.#bucket = bucket;
    this.#partSize = partSize;
  }

  async get(key: string, options: GetOptions = {}): Promise<GetResult> {
    checkGetOptions(key, options);
    const { range, ifMatch, ifNoneMatch } = options;
    const onlyIf: R2ConditionsLike = {
      ...(ifMatch === undefined ? {} : { etagMatches: ifMatch }),
      ...(ifNoneMatch === undefined ? {} : { etagDoesNotMatch: ifNoneMatch }),
    };
    let object: R2ObjectBodyLike | R2ObjectLike | null;
    try {
      object = await this.#bucket.get(key, {
        ...(ifMatch === undefined && ifNoneMatch === undefined ? {} : { onlyIf }),
        ...(range === undefined ? {} : { range }),
      });
    } catch (error) {
      // R2 throws for a range it cannot satisfy, with nothing but the message to tell it by;
      // the object itself says whether that was the reason.
      if (range === undefined) throw unavailable(`get ${key}`, error);
      const info = await this.head(key);
      if (info === undefined) throw notFound(key, error);
      if (ifMatch !== undefined && info.etag !== ifMatch) {
        throw preconditionFailed(key, 'the etag does not match If-Match', error);
      }
      if (ifNoneMatch !== undefined && info.etag === ifNoneMatch) {
        return { notModified: true, info };
      }
      resolveRange(range, info.size, key);
      throw unavailable(`get ${key}`, error);
    }
    if (object === null) throw notFound(key);
    const info = objectInfo(object);
    if (!('body' in object)) {
      // R2 answers a failed onlyIf with the object's metadata and no body.
      if (ifMatch !== undefined && info.etag !== ifMatch) {
        throw preconditionFailed(key, 'the etag does not match If-Match');
      }
      return { notModified: true, info };
    }
    if (range === undefined) return { notModified: false, info, body: object.body };
    return {
      notModified: false,
      info,
      body: object.body,
      range: resolveRange(range, info.size, key),
    };
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    checkKey(key);
    const object = await this.#call(`head ${key}`, () => this.#bucket.head(key));
    return object === null ? undefined : objectInfo(object);
  }

  async put(key: string, body: PutBody, options: PutOptions = {}): Promise<ObjectInfo> {
    checkPutOptions(key, options);
    const { contentLength, contentType, ifMatch, ifNoneMatch } = options;
    const parameters: PutParameters = {
      onlyIf:
        ifMatch !== undefined
          ? { etagMatches: ifMatch }
          : ifNoneMatch !== undefined
            ? { etagDoesNotMatch: '*' }
            : undefined,
      httpMetadata: contentType === undefined ? undefined : { contentType },
    };
    if (body instanceof Uint8Array) {
      if (contentLength !== undefined && contentLength !== body.length) {
        throw new StorageError(
          'INVALID_ARGUMENT',
          `contentLength: ${contentLength}, but the body holds ${body.length} bytes`,
        );
      }
      return this.#putOnce(key, copyIfShared(body), parameters);
    }
    if (!(body instanceof ReadableStream)) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `body: expected a Uint8Array or a ReadableStream, got ${typeof body}`,
      );
    }
    const FixedLengthStream = (globalThis as { FixedLengthStream?: FixedLengthStreamConstructor })
      .FixedLengthStream;
    if (
      contentLength !== undefined &&
      contentLength <= MAX_SINGLE_PUT &&
      FixedLengthStream !== undefined
    ) {
      return this.#putKnownLength(key, body, contentLength, FixedLengthStream, parameters);
    }

    if (
      parameters.onlyIf !== undefined &&
      contentLength !== undefined &&
      contentLength > MAX_SINGLE_PUT
    ) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `put ${key}: R2 cannot apply a condition to ${contentLength} bytes (at most ${MAX_SINGLE_PUT}, in one put)`,
      );
    }
    const partSize =
      contentLength === undefined
        ? this.#partSize
        : Math.max(this.#partSize, Math.ceil(contentLength / MAX_PARTS / MiB) * MiB);
    const reader = new PartReader(body);
    try {
      const first = await reader.read(partSize);
      const second = first?.length === partSize ? await reader.read(partSize) : undefined;
      reader.checkLength(contentLength);
      if (second === undefined) {
        return await this.#putOnce(key, first ?? new Uint8Array(0), parameters);
      }
      const firstParts: [Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>] = [
        first ?? new Uint8Array(0),
        second,
      ];
      const upload: PartedBody = { reader, firstParts, partSize, contentLength, parameters };
      if (parameters.onlyIf === undefined) {
        return objectInfo(await this.#putMultipart(key, upload));
      }
      return await this.#putStaged(key, upload);
    } catch (error) {
      await reader.cancel(error);
      throw error;
    }
  }

  async copy(from: string, to: string, options: CopyOptions = {}): Promise<ObjectInfo> {
    checkCopyOptions(from, to, options);
    const { ifNoneMatch, sourceIfMatch, contentType } = options;
    const onlyIf: R2ConditionsLike | undefined =
      ifNoneMatch === undefined ? undefined : { etagDoesNotMatch: '*' };
    const source = await this.#call(`copy ${from}`, () =>
      this.#bucket.get(
        from,
        sourceIfMatch === undefined ? {} : { onlyIf: { etagMatches: sourceIfMatch } },
      ),
    );
    if (source === null) throw notFound(from);
    // R2 answers a failed onlyIf with the object's metadata and no body.
    if (!('body' in source)) {
      throw preconditionFailed(from, 'the etag does not match sourceIfMatch');
    }
    const type = contentType ?? source.httpMetadata?.contentType;
    try {
      // The put below decides; this spares streaming a source whose copy would be refused.
      if (onlyIf !== undefined && (await this.head(to)) !== undefined) {
        throw refusedWrite(to, onlyIf);
      }
      if (source.size <= MAX_SINGLE_PUT) {
        return await this.#putOnce(to, source.body, {
          onlyIf,
          httpMetadata: type === undefined ? undefined : { contentType: type },
        });
      }
      if (onlyIf !== undefined) {
        throw new StorageError(
          'INVALID_ARGUMENT',
          `copy ${from} to ${to}: R2 cannot apply a condition to ${source.size} bytes (at most ${MAX_SINGLE_PUT}, in one put)`,
        );
      }
      return await this.put(to, source.body, { contentLength: source.size, contentType: type });
    } catch (error) {
      await source.body.cancel(error).catch(() => undefined);
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    await this.#call(`delete ${key}`, () => this.#bucket.delete(key));
  }

  async list(options: ListOptions): Promise<ListPage> {
    const limit = checkListOptions(options);
    const { prefix, cursor } = options;
    const page = await this.#call(`list ${prefix}`, () =>
      this.#bucket.list({
        prefix,
        limit,
        include: ['httpMetadata'],
        ...(cursor === undefined ? {} : { cursor }),
      }),
    );
    const objects = page.objects
      .filter((object) => !object.key.startsWith(STAGING_PREFIX))
      .map(objectInfo);
    if (!page.truncated) return { objects };
    if (page.cursor === undefined || page.cursor === '') {
      throw new StorageError('UNAVAILABLE', `list ${prefix}: a truncated page without a cursor`);
    }
    return { objects, cursor: page.cursor };
  }

  /** One `put` of bytes or of a stream of known length, with the write's condition. */
  async #putOnce(
    key: string,
    value: ReadableStream<Uint8Array> | Uint8Array<ArrayBuffer>,
    { onlyIf, httpMetadata }: PutParameters,
  ): Promise<ObjectInfo> {
    const object = await this.#call(`put ${key}`, () =>
      this.#bucket.put(key, value, {
        ...(onlyIf === undefined ? {} : { onlyIf }),
        ...(httpMetadata === undefined ? {} : { httpMetadata }),
      }),
    );
    if (object === null) throw refusedWrite(key, onlyIf);
    return objectInfo(object);
  }

  /** Streams a body of known length into one `put`; R2 refuses streams of unknown length. */
  async #putKnownLength(
    key: string,
    body: ReadableStream<Uint8Array>,
    contentLength: number,
    FixedLengthStream: FixedLengthStreamConstructor,
    parameters: PutParameters,
  ): Promise<ObjectInfo> {
    const fixed = new FixedLengthStream(contentLength);
    const reader = body.getReader();
    const writer = fixed.writable.getWriter();
    // A pump of our own rather than pipeTo: every promise it makes is awaited here, so a body
    // that fails, or holds the wrong number of bytes, is one rejection and not a stray one.
    writer.closed.catch(() => undefined);
    let failure: { reason: unknown } | undefined;
    const pump = (async (): Promise<void> => {
      try {
        let counted = 0;
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          counted += value.length;
          if (counted > contentLength) {
            throw new StorageError(
              'INVALID_ARGUMENT',
              `contentLength: ${contentLength}, but the body held more than that`,
            );
          }
          await writer.write(value);
        }
        if (counted !== contentLength) {
          throw new StorageError(
            'INVALID_ARGUMENT',
            `contentLength: ${contentLength}, but the body held ${counted} bytes`,
          );
        }
        await writer.close();
      } catch (error) {
        failure ??= { reason: error };
        await writer.abort(error).catch(() => undefined);
        await reader.cancel(error).catch(() => undefined);
      }
    })();
    const [written] = await Promise.allSettled([this.#putOnce(key, fixed.readable, parameters)]);
    if (written.status === 'fulfilled') {
      await pump;
      return written.value;
    }
    // The body's own failure (or a wrong length) is why the put failed: report that first.
    const bodyFailure = failure;
    // R2 gave up on the stream: stop feeding it.
    await reader.cancel(written.reason).catch(() => undefined);
    await writer.abort(written.reason).catch(() => undefined);
    await pump;
    if (isStorageError(written.reason, 'PRECONDITION_FAILED') || bodyFailure === undefined) {
      throw written.reason;
    }
    throw bodyFailure.reason;
  }

  async #putMultipart(key: string, upload: PartedBody): Promise<R2ObjectLike> {
    const { reader, firstParts, partSize, contentLength, parameters } = upload;
    const { httpMetadata } = parameters;
    const what = `put ${key}`;
    const multipart = await this.#call(`${what}: create multipart upload`, () =>
      this.#bucket.createMultipartUpload(key, httpMetadata === undefined ? {} : { httpMetadata }),
    );
    try {
      const parts: R2UploadedPartLike[] = [];
      let current: Uint8Array<ArrayBuffer> | undefined = firstParts[0];
      let following: Uint8Array<ArrayBuffer> | undefined = firstParts[1];
      while (current !== undefined) {
        const partNumber = parts.length + 1;
        if (partNumber > MAX_PARTS) {
          throw new StorageError(
            'INVALID_ARGUMENT',
            `${what}: more than ${MAX_PARTS} parts of ${partSize} bytes; pass contentLength`,
          );
        }
        const part: Uint8Array<ArrayBuffer> = current;
        const next = following !== undefined ? Promise.resolve(following) : reader.read(partSize);
        following = undefined;
        const [uploaded, nextPart]: [R2UploadedPartLike, Uint8Array<ArrayBuffer> | undefined] =
          await Promise.all([
            this.#call(`${what}: part ${partNumber}`, (): Promise<R2UploadedPartLike> =>
              multipart.uploadPart(partNumber, part),
            ),
            next,
          ]);
        reader.checkLength(contentLength);
        parts.push({ partNumber: uploaded.partNumber, etag: uploaded.etag });
        current = nextPart;
      }
      reader.checkLength(contentLength);
      return await this.#call(`${what}: complete multipart upload`, () =>
        multipart.complete(parts),
      );
    } catch (error) {
      // Best effort: R2 also drops unfinished uploads after a week.
      await multipart.abort().catch(() => undefined);
      throw error;
    }
  }

  /**
   * A conditional put of a stream too large for one part and of unknown length: assembled
   * under a staging key, then copied by one conditional `put` of its (now known-length) body.
   */
  async #putStaged(key: string, upload: PartedBody): Promise<ObjectInfo> {
    const { onlyIf } = upload.parameters;
    // Fail fast: the conditional put below decides, but need not wait for gigabytes to fail.
    const current = await this.head(key);
    if (
      onlyIf?.etagMatches === undefined
        ? current !== undefined
        : current?.etag !== onlyIf.etagMatches
    ) {
      throw refusedWrite(key, onlyIf);
    }
    const stagingKey = `${STAGING_PREFIX}${crypto.randomUUID()}`;
    try {
      const staged = await this.#putMultipart(stagingKey, upload);
      if (staged.size > MAX_SINGLE_PUT) {
        throw new StorageError(
          'INVALID_ARGUMENT',
          `put ${key}: R2 cannot apply a condition to ${staged.size} bytes (at most ${MAX_SINGLE_PUT}, in one put)`,
        );
      }
      const copy = await this.#call(`put ${key}: read the staged upload`, () =>
        this.#bucket.get(stagingKey),
      );
      if (copy === null || !('body' in copy)) {
        throw new StorageError('UNAVAILABLE', `put ${key}: the staged upload disappeared`);
      }
      return await this.#putOnce(key, copy.body, upload.parameters);
    } finally {
      await this.#bucket.delete(stagingKey).catch(() => undefined);
    }
  }

  /** Runs a binding call; its failures (R2 errors, a broken connection) are UNAVAILABLE. */
  async #call<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw isStorageError(error) ? error : unavailable(what, error);
    }
  }
}

function objectInfo(object: R2ObjectLike): ObjectInfo {
  return {
    key: object.key,
    size: object.size,
    etag: object.etag,
    lastModified: object.uploaded,
    contentType: object.httpMetadata?.contentType,
  };
}

function refusedWrite(key: string, onlyIf: R2ConditionsLike | undefined): StorageError {
  return preconditionFailed(
    key,
    onlyIf?.etagMatches === undefined
      ? 'the object exists (If-None-Match: *)'
      : 'the etag does not match If-Match, or there is no object',
  );
}

function unavailable(what: string, cause: unknown): StorageError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new StorageError('UNAVAILABLE', `${what}: R2 failed (${detail})`, { cause });
}

/** A view of a SharedArrayBuffer cannot be sent; anything else goes as it is. */
function copyIfShared(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer
    ? (bytes as Uint8Array<ArrayBuffer>)
    : new Uint8Array(bytes);
}
