/**
 * BlobStore over the S3 REST API with nothing but `fetch` and aws4fetch's SigV4 signing, for
 * Workers (and any other runtime with Web streams and WebCrypto): no `node:` imports, no SDK.
 * It speaks to MinIO, Cloudflare R2's S3 endpoint and AWS S3 with path-style URLs
 * (`endpoint/bucket/key`).
 *
 * Bodies stream. A download is handed to the caller as the response stream; an upload of
 * unknown length goes up as a multipart upload in parts of `partSize`, with at most two parts
 * in memory (one uploading, the next being read), so the memory an upload needs does not grow
 * with the object.
 *
 * `copy` is server-side: CopyObject, or UploadPartCopy parts of a multipart upload for objects
 * above 5 GiB and for create-only copies (see `copy`); the bytes never pass through the Worker.
 *
 * Every request has a deadline: the answer's headers must arrive within `timeoutMs`, and a body
 * being read must not stall for longer than that. A store that does not answer is
 * UNAVAILABLE within a bounded time, never a hang.
 */
import { AwsClient } from 'aws4fetch';

import type {
  BlobStore,
  ByteRange,
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
  compareKeys,
  notFound,
  notSatisfiable,
  preconditionFailed,
  rangeHeader,
  resolveRange,
} from './options.js';
import { PartReader } from './part-reader.js';
import {
  copyAllowanceMs,
  copySource,
  DEFAULT_COPY_PART_BYTES,
  encodeRfc3986,
  forEachLimited,
  MAX_SINGLE_COPY_BYTES,
  MIN_COPY_PART_BYTES,
  planCopyParts,
  copyPinned,
  SourceChangedError,
  type CopyPart,
} from './s3-copy.js';
import { XmlError, childElements, childText, parseXml, requiredChildText } from './s3-xml.js';
import type { XmlElement } from './s3-xml.js';

const MiB = 1024 * 1024;
/** Two parts in memory at a time: 16 MiB, an eighth of a Worker's 128 MB. */
const DEFAULT_PART_SIZE = 8 * MiB;
/** S3's minimum for every part but the last. */
const MIN_PART_SIZE = 5 * MiB;
/** S3's maximum part size. */
const MAX_PART_SIZE = 5 * 1024 * MiB;
/** S3's maximum number of parts in one upload. */
const MAX_PARTS = 10_000;
/** Long enough for a slow store under load, short enough that an edge answers 503 promptly. */
const DEFAULT_TIMEOUT_MS = 30_000;
/** A ListObjectsV2 page of 1000 keys of 1024 bytes is about 1.5 MB of XML. */
const MAX_XML_BYTES = 16 * MiB;
/** An error answer is a few hundred bytes; more is read only to name the S3 error code. */
const MAX_ERROR_BYTES = 64 * 1024;
/** S3's most keys in one ListObjectsV2 answer. */
const MAX_LIST_KEYS = 1000;
/** A part is already in memory, so a transient failure costs one retry, not the whole upload. */
const PART_ATTEMPTS = 3;
const PART_RETRY_DELAY_MS = 200;
/**
 * Parts of a multipart copy under way at once: the store does the copying and each request only
 * waits, and four leave room within a Worker's six simultaneous connections.
 */
const COPY_PART_CONCURRENCY = 4;

export interface S3FetchBlobStoreOptions {
  /** `http(s)://host[:port][/path]`: MinIO, `https://<account>.r2.cloudflarestorage.com`, ... */
  readonly endpoint: string;
  readonly bucket: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
  /** The SigV4 region: `us-east-1` (the default; MinIO's), `auto` for R2. */
  readonly region?: string | undefined;
  /** Deadline for an answer's headers, and for each stall while reading a body. */
  readonly timeoutMs?: number | undefined;
  /** Multipart part size in bytes, at least 5 MiB. Default 8 MiB. */
  readonly partSize?: number | undefined;
  /**
   * `copy` uses one CopyObject up to this size and UploadPartCopy parts above it. Default and
   * most 5 GiB, S3's largest CopyObject.
   */
  readonly multipartCopyThreshold?: number | undefined;
  /** Part size of a multipart copy, from 5 MiB to 5 GiB. Default 512 MiB. */
  readonly copyPartSize?: number | undefined;
  /** The fetch to send signed requests with (a service binding's, a test double's); default the global one. */
  readonly fetch?: ((request: Request) => Promise<Response>) | undefined;
}

type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';

interface Exchange {
  readonly response: Response;
  /** Aborting it ends the response body too: how a stalled body is given up. */
  readonly controller: AbortController;
  readonly what: string;
  /** The longest a read of the body may wait for the next bytes. */
  readonly idleMs: number;
}

interface ResolvedRange {
  readonly offset: number;
  readonly length: number;
}

export class S3FetchBlobStore implements BlobStore {
  readonly #client: AwsClient;
  readonly #base: string;
  readonly #bucket: string;
  readonly #bucketPath: string;
  readonly #timeoutMs: number;
  readonly #partSize: number;
  readonly #multipartCopyThreshold: number;
  readonly #copyPartSize: number;
  readonly #fetch: (request: Request) => Promise<Response>;

  constructor(options: S3FetchBlobStoreOptions) {
    let endpoint: URL;
    try {
      endpoint = new URL(options.endpoint);
    } catch (error) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `endpoint: ${JSON.stringify(options.endpoint)} is not a URL`,
        { cause: error },
      );
    }
    if (
      (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') ||
      endpoint.search !== '' ||
      endpoint.hash !== ''
    ) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `endpoint: expected http(s)://host[:port][/path], got ${JSON.stringify(options.endpoint)}`,
      );
    }
    // S3's bucket naming rules; they also keep the bucket a single, unencoded path segment.
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(options.bucket)) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `bucket: ${JSON.stringify(options.bucket)} is not a valid S3 bucket name`,
      );
    }
    const partSize = options.partSize ?? DEFAULT_PART_SIZE;
    if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE || partSize > MAX_PART_SIZE) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `partSize: expected an integer from ${MIN_PART_SIZE} to ${MAX_PART_SIZE}, got ${partSize}`,
      );
    }
    const multipartCopyThreshold = options.multipartCopyThreshold ?? MAX_SINGLE_COPY_BYTES;
    if (
      !Number.isSafeInteger(multipartCopyThreshold) ||
      multipartCopyThreshold < 0 ||
      multipartCopyThreshold > MAX_SINGLE_COPY_BYTES
    ) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `multipartCopyThreshold: expected an integer from 0 to ${MAX_SINGLE_COPY_BYTES}, got ${multipartCopyThreshold}`,
      );
    }
    const copyPartSize = options.copyPartSize ?? DEFAULT_COPY_PART_BYTES;
    if (
      !Number.isSafeInteger(copyPartSize) ||
      copyPartSize < MIN_COPY_PART_BYTES ||
      copyPartSize > MAX_SINGLE_COPY_BYTES
    ) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `copyPartSize: expected an integer from ${MIN_COPY_PART_BYTES} to ${MAX_SINGLE_COPY_BYTES}, got ${copyPartSize}`,
      );
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `timeoutMs: expected a positive integer, got ${timeoutMs}`,
      );
    }
    this.#client = new AwsClient({
      accessKeyId: options.accessKeyId,
      secretAccessKey: options.secretAccessKey,
      ...(options.sessionToken === undefined ? {} : { sessionToken: options.sessionToken }),
      service: 's3',
      region: options.region ?? 'us-east-1',
      // Retries are ours to decide (only for parts): aws4fetch's would stretch a deadline.
      retries: 0,
    });
    this.#base = `${endpoint.origin}${endpoint.pathname.replace(/\/+$/, '')}`;
    this.#bucket = options.bucket;
    this.#bucketPath = `/${options.bucket}`;
    this.#timeoutMs = timeoutMs;
    this.#partSize = partSize;
    this.#multipartCopyThreshold = multipartCopyThreshold;
    this.#copyPartSize = copyPartSize;
    const fetchFn = options.fetch;
    // Called as a plain function: workerd's fetch refuses to run with another object as `this`.
    this.#fetch = fetchFn ?? ((request) => fetch(request));
  }

  async get(key: string, options: GetOptions = {}): Promise<GetResult> {
    checkGetOptions(key, options);
    const { range } = options;
    const headers: Record<string, string> = {};
    if (range !== undefined) headers.range = rangeHeader(range);
    if (options.ifMatch !== undefined) headers['if-match'] = quoteEtag(options.ifMatch);
    if (options.ifNoneMatch !== undefined)
      headers['if-none-match'] = quoteEtag(options.ifNoneMatch);
    const what = `get ${key}`;
    // A 304 carries no size, so the info comes from a HEAD; if the object changed in between,
    // the GET is asked again rather than answering with info about another version.
    for (let attempt = 0; ; attempt++) {
      const exchange = await this.#send('GET', this.#objectUrl(key), what, headers);
      const { response } = exchange;
      switch (response.status) {
        case 200:
        case 206:
          return this.#served(key, exchange, range);
        case 304: {
          await discard(exchange);
          const info = await this.head(key);
          if (info === undefined) throw notFound(key);
          if (info.etag === options.ifNoneMatch) return { notModified: true, info };
          if (attempt >= 2) {
            throw new StorageError('UNAVAILABLE', `${what}: the object keeps changing`);
          }
          continue;
        }
        case 404:
          return this.#notFoundOr(exchange, key);
        case 412:
          await discard(exchange);
          throw preconditionFailed(key, 'the etag does not match If-Match');
        case 416:
          return this.#rangeNotSatisfiable(exchange, key);
        default:
          return this.#unexpected(exchange);
      }
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    checkKey(key);
    const exchange = await this.#send('HEAD', this.#objectUrl(key), `head ${key}`);
    const { response } = exchange;
    switch (response.status) {
      case 200:
        await discard(exchange);
        return objectInfo(key, response.headers, contentLengthOf(response.headers), exchange.what);
      case 404:
        // A HEAD answer has no body, so a missing bucket looks like a missing key here.
        await discard(exchange);
        return undefined;
      default:
        return this.#unexpected(exchange);
    }
  }

  async put(key: string, body: PutBody, options: PutOptions = {}): Promise<ObjectInfo> {
    checkPutOptions(key, options);
    const conditions = conditionHeaders(options);
    const { contentLength } = options;
    if (body instanceof Uint8Array) {
      if (contentLength !== undefined && contentLength !== body.length) {
        throw new StorageError(
          'INVALID_ARGUMENT',
          `contentLength: ${contentLength} but the body holds ${body.length} bytes`,
        );
      }
      return this.#putSingle(key, copyIfShared(body), conditions, options.contentType);
    }
    if (!(body instanceof ReadableStream)) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `body: expected a Uint8Array or a ReadableStream, got ${typeof body}`,
      );
    }
    // With the length known, parts grow so that the whole object fits in 10 000 of them.
    const partSize =
      contentLength === undefined
        ? this.#partSize
        : Math.max(this.#partSize, Math.ceil(contentLength / MAX_PARTS / MiB) * MiB);
    const reader = new PartReader(body);
    try {
      const checkLength = (): void => reader.checkLength(contentLength);
      const first = await reader.read(partSize);
      const second = first?.length === partSize ? await reader.read(partSize) : undefined;
      checkLength();
      if (second === undefined) {
        return await this.#putSingle(
          key,
          first ?? new Uint8Array(0),
          conditions,
          options.contentType,
        );
      }
      return await this.#putMultipart(key, reader, [first ?? new Uint8Array(), second], {
        partSize,
        conditions,
        contentType: options.contentType,
        checkLength,
      });
    } catch (error) {
      await reader.cancel(error);
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    const exchange = await this.#send('DELETE', this.#objectUrl(key), `delete ${key}`);
    const { status } = exchange.response;
    if (status === 200 || status === 204) {
      await discard(exchange);
      return;
    }
    if (status === 404) {
      // S3 answers 204 for a missing key; a 404 is about something else (the bucket).
      const code = await errorCode(exchange);
      if (code === 'NoSuchKey') return;
      throw unavailable(exchange, code);
    }
    return this.#unexpected(exchange);
  }

  /**
   * One page of ListObjectsV2. The cursor is the last key served, sent back as `start-after`
   * rather than S3's continuation token, and one key more than the page is asked for, so that
   * whether more follow is known from the keys themselves: MinIO answers `max-keys=1` for a
   * prefix that is itself an object with that object alone and IsTruncated false.
   */
  async list(options: ListOptions): Promise<ListPage> {
    const limit = checkListOptions(options);
    const { prefix, cursor } = options;
    if (cursor === '') {
      throw new StorageError('INVALID_ARGUMENT', 'cursor: expected a cursor from list, got ""');
    }
    const query: [string, string][] = [
      ['list-type', '2'],
      ['prefix', prefix],
      ['max-keys', String(Math.min(limit + 1, MAX_LIST_KEYS))],
    ];
    if (cursor !== undefined) query.push(['start-after', cursor]);
    const what = `list ${prefix}`;
    const exchange = await this.#send('GET', this.#url(this.#bucketPath, query), what);
    if (exchange.response.status !== 200) return this.#unexpected(exchange);
    const root = await readXml(exchange, 'ListBucketResult');
    try {
      const listed = childElements(root, 'Contents').map((entry): ObjectInfo => {
        const key = requiredChildText(entry, 'Key');
        if (!key.startsWith(prefix) || (cursor !== undefined && compareKeys(key, cursor) <= 0)) {
          throw new XmlError(`listed ${JSON.stringify(key)}, outside the page asked for`);
        }
        return {
          key,
          size: parseSize(requiredChildText(entry, 'Size')),
          etag: unquoteEtag(requiredChildText(entry, 'ETag')),
          lastModified: parseDate(requiredChildText(entry, 'LastModified')),
        };
      });
      const objects = listed.slice(0, limit);
      const more = listed.length > limit || childText(root, 'IsTruncated') === 'true';
      const last = objects.at(-1);
      if (!more) return { objects };
      if (last === undefined) throw new XmlError('a truncated page without keys');
      return { objects, cursor: last.key };
    } catch (error) {
      throw malformed(what, error);
    }
  }

  /**
   * A server-side copy. CopyObject answers no size, so the source is HEADed first, and every
   * request that reads it then carries `x-amz-copy-source-if-match` with the etag seen: the size
   * reported and the bytes copied are of one version. If the source changes in between, the
   * copy starts over (unless the caller pinned the source with `sourceIfMatch`: then it failed).
   *
   * A create-only copy goes through a multipart upload whose CompleteMultipartUpload carries
   * If-None-Match: MinIO accepts If-None-Match on CopyObject and ignores it, overwriting the
   * destination. Objects above `multipartCopyThreshold` (5 GiB, S3's CopyObject limit) are copied
   * in parts too.
   */
  async copy(from: string, to: string, options: CopyOptions = {}): Promise<ObjectInfo> {
    checkCopyOptions(from, to, options);
    if (options.contentType !== undefined) checkContentType(options.contentType);
    return copyPinned(from, to, options, {
      head: (key) => this.head(key),
      copyObject: (source, target, contentType) => this.#copyObject(source, target, contentType),
      copyInParts: (source, target, copyOptions) => this.#copyInParts(source, target, copyOptions),
      multipartCopyThreshold: this.#multipartCopyThreshold,
    });
  }

  async #copyObject(
    source: ObjectInfo,
    to: string,
    contentType: string | undefined,
  ): Promise<ObjectInfo> {
    const headers = this.#copySourceHeaders(source);
    if (contentType !== undefined) {
      headers['x-amz-metadata-directive'] = 'REPLACE';
      headers['content-type'] = contentType;
    }
    const exchange = await this.#send(
      'PUT',
      this.#objectUrl(to),
      `copy ${source.key} to ${to}`,
      headers,
      new Uint8Array(0),
      this.#timeoutMs + copyAllowanceMs(source.size),
    );
    const root = await copyAnswer(exchange, source.key, 'CopyObjectResult');
    try {
      const type = contentType ?? source.contentType;
      return {
        key: to,
        size: source.size,
        etag: unquoteEtag(requiredChildText(root, 'ETag')),
        lastModified: parseDate(requiredChildText(root, 'LastModified')),
        ...(type === undefined ? {} : { contentType: type }),
      };
    } catch (error) {
      throw malformed(exchange.what, error);
    }
  }

  async #copyInParts(source: ObjectInfo, to: string, options: CopyOptions): Promise<ObjectInfo> {
    const contentType = options.contentType ?? source.contentType;
    const conditions: Record<string, string> =
      options.ifNoneMatch === '*' ? { 'if-none-match': '*' } : {};
    // CompleteMultipartUpload decides; this spares copying gigabytes it would refuse.
    await this.#precheck(to, conditions);
    const uploadId = await this.#createUpload(to, contentType, 'copy');
    try {
      const parts = await forEachLimited(
        planCopyParts(source.size, this.#copyPartSize),
        COPY_PART_CONCURRENCY,
        (part) => this.#copyPart(source, to, uploadId, part),
      );
      const etag = await this.#completeUpload(to, uploadId, parts, conditions, 'copy');
      return {
        key: to,
        size: source.size,
        etag: etag.value,
        lastModified: etag.at,
        ...(contentType === undefined ? {} : { contentType }),
      };
    } catch (error) {
      await this.#abortUpload(to, uploadId, 'copy');
      throw error;
    }
  }

  async #copyPart(
    source: ObjectInfo,
    to: string,
    uploadId: string,
    part: CopyPart,
  ): Promise<{ partNumber: number; etag: string }> {
    const url = this.#objectUrl(to, [
      ['partNumber', String(part.partNumber)],
      ['uploadId', uploadId],
    ]);
    const headers = this.#copySourceHeaders(source);
    if (part.range !== undefined) headers['x-amz-copy-source-range'] = part.range;
    const what = `copy ${source.key} to ${to}: part ${part.partNumber}`;
    for (let attempt = 1; ; attempt++) {
      try {
        const exchange = await this.#send(
          'PUT',
          url,
          what,
          headers,
          new Uint8Array(0),
          this.#timeoutMs + copyAllowanceMs(part.length),
        );
        const root = await copyAnswer(exchange, source.key, 'CopyPartResult');
        try {
          return {
            partNumber: part.partNumber,
            etag: unquoteEtag(requiredChildText(root, 'ETag')),
          };
        } catch (error) {
          throw malformed(what, error);
        }
      } catch (error) {
        if (!isStorageError(error, 'UNAVAILABLE') || attempt >= PART_ATTEMPTS) throw error;
        await delay(PART_RETRY_DELAY_MS * 2 ** (attempt - 1));
      }
    }
  }

  /** The copy's source, pinned to the version whose size we report. */
  #copySourceHeaders(source: ObjectInfo): Record<string, string> {
    return {
      'x-amz-copy-source': copySource(this.#bucket, source.key),
      'x-amz-copy-source-if-match': quoteEtag(source.etag),
    };
  }

  // --- uploads ---

  async #putSingle(
    key: string,
    bytes: Uint8Array<ArrayBuffer>,
    conditions: Record<string, string>,
    contentType: string | undefined,
  ): Promise<ObjectInfo> {
    const headers = { ...conditions };
    if (contentType !== undefined) headers['content-type'] = contentType;
    const exchange = await this.#send('PUT', this.#objectUrl(key), `put ${key}`, headers, bytes);
    const { response } = exchange;
    if (response.status === 200) {
      await discard(exchange);
      return {
        key,
        size: bytes.length,
        etag: requiredEtag(response.headers, exchange.what),
        lastModified: writtenAt(response.headers),
        ...(contentType === undefined ? {} : { contentType }),
      };
    }
    return this.#writeRefused(exchange, key, conditions);
  }

  async #putMultipart(
    key: string,
    reader: PartReader,
    firstParts: [Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>],
    upload: {
      partSize: number;
      conditions: Record<string, string>;
      contentType: string | undefined;
      checkLength: () => void;
    },
  ): Promise<ObjectInfo> {
    const { partSize, conditions, contentType, checkLength } = upload;
    // The condition is checked again, atomically, by CompleteMultipartUpload; checking it here
    // too spares uploading gigabytes that are bound to be refused.
    await this.#precheck(key, conditions);
    const uploadId = await this.#createUpload(key, contentType);
    try {
      const parts: { partNumber: number; etag: string }[] = [];
      let current: Uint8Array<ArrayBuffer> | undefined = firstParts[0];
      let following: Uint8Array<ArrayBuffer> | undefined = firstParts[1];
      while (current !== undefined) {
        const partNumber = parts.length + 1;
        if (partNumber > MAX_PARTS) {
          throw new StorageError(
            'INVALID_ARGUMENT',
            `put ${key}: more than ${MAX_PARTS} parts of ${partSize} bytes; pass contentLength`,
          );
        }
        const next = following !== undefined ? Promise.resolve(following) : reader.read(partSize);
        following = undefined;
        const [etag, nextPart]: [string, Uint8Array<ArrayBuffer> | undefined] = await Promise.all([
          this.#uploadPart(key, uploadId, partNumber, current),
          next,
        ]);
        checkLength();
        parts.push({ partNumber, etag });
        current = nextPart;
      }
      checkLength();
      const etag = await this.#completeUpload(key, uploadId, parts, conditions);
      return {
        key,
        size: reader.bytesRead,
        etag: etag.value,
        lastModified: etag.at,
        ...(contentType === undefined ? {} : { contentType }),
      };
    } catch (error) {
      await this.#abortUpload(key, uploadId);
      throw error;
    }
  }

  async #precheck(key: string, conditions: Record<string, string>): Promise<void> {
    const ifMatch = conditions['if-match'];
    if (ifMatch === undefined && conditions['if-none-match'] === undefined) return;
    const current = await this.head(key);
    if (ifMatch === undefined ? current !== undefined : current?.etag !== unquoteEtag(ifMatch)) {
      throw preconditionFailed(
        key,
        ifMatch === undefined
          ? 'the object exists (If-None-Match: *)'
          : 'the etag does not match If-Match',
      );
    }
  }

  async #createUpload(
    key: string,
    contentType: string | undefined,
    operation: 'put' | 'copy' = 'put',
  ): Promise<string> {
    const headers: Record<string, string> = {};
    if (contentType !== undefined) headers['content-type'] = contentType;
    const what = `${operation} ${key}: create multipart upload`;
    const exchange = await this.#send(
      'POST',
      this.#objectUrl(key, [['uploads', '']]),
      what,
      headers,
      new Uint8Array(0),
    );
    if (exchange.response.status !== 200) return this.#unexpected(exchange);
    const root = await readXml(exchange, 'InitiateMultipartUploadResult');
    try {
      const uploadId = requiredChildText(root, 'UploadId');
      if (uploadId === '') throw new XmlError('an empty UploadId');
      return uploadId;
    } catch (error) {
      throw malformed(what, error);
    }
  }

  async #uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    bytes: Uint8Array<ArrayBuffer>,
  ): Promise<string> {
    const url = this.#objectUrl(key, [
      ['partNumber', String(partNumber)],
      ['uploadId', uploadId],
    ]);
    const what = `put ${key}: part ${partNumber}`;
    for (let attempt = 1; ; attempt++) {
      try {
        const exchange = await this.#send('PUT', url, what, {}, bytes);
        if (exchange.response.status !== 200) return await this.#unexpected(exchange);
        await discard(exchange);
        return requiredEtag(exchange.response.headers, what);
      } catch (error) {
        if (!isStorageError(error, 'UNAVAILABLE') || attempt >= PART_ATTEMPTS) throw error;
        await delay(PART_RETRY_DELAY_MS * 2 ** (attempt - 1));
      }
    }
  }

  async #completeUpload(
    key: string,
    uploadId: string,
    parts: readonly { partNumber: number; etag: string }[],
    conditions: Record<string, string>,
    operation: 'put' | 'copy' = 'put',
  ): Promise<{ value: string; at: Date }> {
    const xml =
      '<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
      parts
        .map(
          ({ partNumber, etag }) =>
            `<Part><PartNumber>${partNumber}</PartNumber><ETag>${escapeXml(`"${etag}"`)}</ETag></Part>`,
        )
        .join('') +
      '</CompleteMultipartUpload>';
    const exchange = await this.#send(
      'POST',
      this.#objectUrl(key, [['uploadId', uploadId]]),
      `${operation} ${key}: complete multipart upload`,
      { ...conditions, 'content-type': 'application/xml' },
      new TextEncoder().encode(xml),
    );
    if (exchange.response.status !== 200) return this.#writeRefused(exchange, key, conditions);
    // S3 answers 200 at once and may still fail the upload: the error is then the body.
    const root = await readXml(exchange, 'CompleteMultipartUploadResult', 'Error');
    if (root.name === 'Error') {
      const code = childText(root, 'Code');
      if (code === 'PreconditionFailed') throw refusedWrite(key, conditions);
      throw unavailable(exchange, code);
    }
    try {
      return {
        value: unquoteEtag(requiredChildText(root, 'ETag')),
        at: writtenAt(exchange.response.headers),
      };
    } catch (error) {
      throw malformed(exchange.what, error);
    }
  }

  /** Best effort: a failed abort leaves parts that a bucket lifecycle rule cleans up. */
  async #abortUpload(
    key: string,
    uploadId: string,
    operation: 'put' | 'copy' = 'put',
  ): Promise<void> {
    try {
      const exchange = await this.#send(
        'DELETE',
        this.#objectUrl(key, [['uploadId', uploadId]]),
        `${operation} ${key}: abort multipart upload`,
      );
      await discard(exchange);
    } catch {
      // The upload's own failure is the one worth reporting.
    }
  }

  // --- answers ---

  async #served(key: string, exchange: Exchange, range: ByteRange | undefined): Promise<GetResult> {
    const { response, what } = exchange;
    let info: ObjectInfo;
    let served: ResolvedRange | undefined;
    try {
      if (response.status === 206) {
        const header = response.headers.get('content-range');
        const contentRange = parseContentRange(header);
        // MinIO answers a suffix range of an empty object with 206 and `bytes 0--1/0`.
        if (header !== null && /\/0$/.test(header.trim())) throw notSatisfiable(key, 0);
        if (contentRange?.first === undefined) {
          throw new XmlError('a 206 answer without a byte range in Content-Range');
        }
        info = objectInfo(key, response.headers, contentRange.size, what);
        served = { offset: contentRange.first, length: contentRange.last - contentRange.first + 1 };
      } else {
        info = objectInfo(key, response.headers, contentLengthOf(response.headers), what);
        served = range === undefined ? undefined : { offset: 0, length: info.size };
      }
      // A server that ignored or bent the Range header must not pass off other bytes as it.
      if (range !== undefined) {
        const expected = resolveRange(range, info.size, key);
        if (served?.offset !== expected.offset || served.length !== expected.length) {
          throw new XmlError(
            `asked for ${rangeHeader(range)} of ${info.size} bytes, got ${JSON.stringify(served)}`,
          );
        }
      }
    } catch (error) {
      await discard(exchange);
      // RANGE_NOT_SATISFIABLE for a range of an empty object that was answered 200 or 206.
      throw isStorageError(error) ? error : malformed(what, error);
    }
    const body = guardBody(exchange);
    return served === undefined
      ? { notModified: false, info, body }
      : { notModified: false, info, body, range: served };
  }

  async #notFoundOr(exchange: Exchange, key: string): Promise<never> {
    const code = await errorCode(exchange);
    // NoSuchBucket is a broken configuration, not a missing object: never a quiet 404.
    if (code === undefined || code === 'NoSuchKey') throw notFound(key);
    throw unavailable(exchange, code);
  }

  async #rangeNotSatisfiable(exchange: Exchange, key: string): Promise<never> {
    let size = parseContentRange(exchange.response.headers.get('content-range'))?.size;
    if (size === undefined) {
      const text = await readText(exchange, MAX_ERROR_BYTES).catch(() => '');
      const actual = /<ActualObjectSize>(\d+)<\/ActualObjectSize>/.exec(text)?.[1];
      size = actual === undefined ? (await this.head(key))?.size : Number(actual);
    } else {
      await discard(exchange);
    }
    if (size === undefined) throw notFound(key);
    throw notSatisfiable(key, size);
  }

  /** A refused PutObject or CompleteMultipartUpload: which refusals mean the condition lost. */
  async #writeRefused(
    exchange: Exchange,
    key: string,
    conditions: Record<string, string>,
  ): Promise<never> {
    const { status } = exchange.response;
    const conditional = Object.keys(conditions).length > 0;
    if (status === 412) {
      await discard(exchange);
      throw refusedWrite(key, conditions);
    }
    if (conditional && (status === 404 || status === 409)) {
      // 404: If-Match named an object that is not there. 409 (ConditionalRequestConflict):
      // another conditional write to the key won the race; both mean this one lost.
      const code = await errorCode(exchange);
      if (code === undefined || code === 'NoSuchKey' || code === 'ConditionalRequestConflict') {
        throw refusedWrite(key, conditions);
      }
      throw unavailable(exchange, code);
    }
    return this.#unexpected(exchange);
  }

  async #unexpected(exchange: Exchange): Promise<never> {
    throw unavailable(exchange, await errorCode(exchange));
  }

  // --- requests ---

  #objectUrl(key: string, query: readonly [string, string][] = []): URL {
    return this.#url(`${this.#bucketPath}/${key.split('/').map(encodeRfc3986).join('/')}`, query);
  }

  #url(path: string, query: readonly [string, string][]): URL {
    const search = query
      .map(([name, value]) => (value === '' ? name : `${name}=${encodeRfc3986(value)}`))
      .join('&');
    return new URL(`${this.#base}${path}${search === '' ? '' : `?${search}`}`);
  }

  /**
   * Signs and sends one request. Resolves once the answer's headers are in; the caller reads
   * (or discards) the body, under guardBody's stall timeout.
   */
  async #send(
    method: Method,
    url: URL,
    what: string,
    headers: Record<string, string> = {},
    body?: Uint8Array<ArrayBuffer>,
    timeoutMs = this.#timeoutMs,
  ): Promise<Exchange> {
    const controller = new AbortController();
    // Not AbortSignal.timeout: that one cannot be stopped once the headers are in, and would
    // cut off a long download that is still making progress.
    const timer = setTimeout(() => {
      controller.abort(new StorageError('UNAVAILABLE', `${what}: no answer in ${timeoutMs} ms`));
    }, timeoutMs);
    try {
      const signedHeaders = { ...headers };
      if (body !== undefined) {
        // Signing the payload's hash makes the store check the bytes it received.
        signedHeaders['x-amz-content-sha256'] = hex(await crypto.subtle.digest('SHA-256', body));
      }
      const request = await this.#client.sign(url.toString(), {
        method,
        headers: signedHeaders,
        body: body ?? null,
        signal: controller.signal,
      });
      const response = await this.#fetch(request);
      return { response, controller, what, idleMs: timeoutMs };
    } catch (error) {
      const reason: unknown = controller.signal.reason;
      if (isStorageError(reason)) throw reason;
      throw new StorageError('UNAVAILABLE', `${what}: the request failed`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }
}

// --- arguments ---

/** The port's etags have no quotes (checkGetOptions and checkPutOptions saw to that); HTTP's do. */
function quoteEtag(etag: string): string {
  return `"${etag}"`;
}

function unquoteEtag(value: string): string {
  const match = /^(?:W\/)?"([^"]*)"$/.exec(value.trim());
  return match?.[1] ?? value.trim();
}

/** The write's condition as S3 headers; also refuses a content type no header can carry. */
function conditionHeaders(options: PutOptions): Record<string, string> {
  const conditions: Record<string, string> = {};
  if (options.ifNoneMatch !== undefined) conditions['if-none-match'] = '*';
  if (options.ifMatch !== undefined) conditions['if-match'] = quoteEtag(options.ifMatch);
  if (options.contentType !== undefined) checkContentType(options.contentType);
  return conditions;
}

/** Refuses a content type no header can carry. */
function checkContentType(contentType: string): void {
  if (!/^[\x20-\x7e]+$/.test(contentType)) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `contentType: expected printable ASCII, got ${JSON.stringify(contentType)}`,
    );
  }
}

/** fetch will not send a view of a SharedArrayBuffer; anything else goes as it is. */
function copyIfShared(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer
    ? (bytes as Uint8Array<ArrayBuffer>)
    : new Uint8Array(bytes);
}

// --- responses ---

function objectInfo(
  key: string,
  headers: Headers,
  size: number | undefined,
  what: string,
): ObjectInfo {
  try {
    if (size === undefined) throw new XmlError('no object size in the answer');
    const contentType = headers.get('content-type');
    return {
      key,
      size,
      etag: requiredEtag(headers, what),
      lastModified: parseDate(headers.get('last-modified') ?? ''),
      ...(contentType === null ? {} : { contentType }),
    };
  } catch (error) {
    throw isStorageError(error) ? error : malformed(what, error);
  }
}

function requiredEtag(headers: Headers, what: string): string {
  const etag = headers.get('etag');
  if (etag === null || unquoteEtag(etag) === '') throw malformed(what, 'no ETag in the answer');
  return unquoteEtag(etag);
}

function contentLengthOf(headers: Headers): number | undefined {
  const value = headers.get('content-length');
  return value === null ? undefined : parseSize(value);
}

/**
 * When a write took effect, as the store's clock has it. PutObject answers carry no
 * Last-Modified, and a HEAD afterwards could see a later writer's object; the answer's Date is
 * the store's clock at the write, to the second, as Last-Modified is.
 */
function writtenAt(headers: Headers): Date {
  for (const name of ['last-modified', 'date']) {
    const value = headers.get(name);
    if (value !== null && !Number.isNaN(Date.parse(value))) return new Date(value);
  }
  return new Date(Math.floor(Date.now() / 1000) * 1000);
}

/** `bytes first-last/size`, `bytes first-last/*` or `bytes *\/size`. */
function parseContentRange(
  value: string | null,
): { first: number; last: number; size: number } | { first: undefined; size: number } | undefined {
  if (value === null) return undefined;
  const match = /^bytes (?:(\d+)-(\d+)|\*)\/(\d+)$/.exec(value.trim());
  if (match === null) return undefined;
  const [, first, last, size] = match;
  if (first === undefined || last === undefined) return { first: undefined, size: Number(size) };
  const range = { first: Number(first), last: Number(last), size: Number(size) };
  return range.first <= range.last && range.last < range.size ? range : undefined;
}

function parseSize(value: string): number {
  const size = /^\d{1,16}$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isSafeInteger(size)) throw new XmlError(`${JSON.stringify(value)} is not a size`);
  return size;
}

function parseDate(value: string): Date {
  const time = Date.parse(value);
  if (Number.isNaN(time)) throw new XmlError(`${JSON.stringify(value)} is not a date`);
  return new Date(time);
}

// --- bodies ---

/**
 * The response body, handed on as it arrives; a stall longer than the store's timeout or a broken
 * connection errors the stream with UNAVAILABLE instead of leaving the reader waiting.
 */
function guardBody(exchange: Exchange): ReadableStream<Uint8Array> {
  const source = exchange.response.body;
  if (source === null) return new ReadableStream({ start: (controller) => controller.close() });
  const reader = source.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const result = await readWithin(reader, exchange);
          if (result.done) controller.close();
          else controller.enqueue(result.value);
        } catch (error) {
          controller.error(
            isStorageError(error)
              ? error
              : new StorageError('UNAVAILABLE', `${exchange.what}: the body broke off`, {
                  cause: error,
                }),
          );
        }
      },
      async cancel(reason) {
        exchange.controller.abort(reason);
        await reader.cancel(reason).catch(() => undefined);
      },
    },
    { highWaterMark: 0 },
  );
}

async function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  exchange: Exchange,
): Promise<ReadableStreamReadResult> {
  const { idleMs } = exchange;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new StorageError(
        'UNAVAILABLE',
        `${exchange.what}: the body stalled for ${idleMs} ms`,
      );
      exchange.controller.abort(error);
      reader.cancel(error).catch(() => undefined);
      reject(error);
    }, idleMs);
  });
  try {
    return await Promise.race([reader.read(), stalled]);
  } finally {
    clearTimeout(timer);
  }
}

async function readText(exchange: Exchange, maxBytes: number): Promise<string> {
  const body = guardBody(exchange);
  const reader = body.getReader();
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let text = '';
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text + decoder.decode();
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel();
      throw new StorageError(
        'UNAVAILABLE',
        `${exchange.what}: an answer of more than ${maxBytes} bytes`,
      );
    }
    text += decoder.decode(value, { stream: true });
  }
}

async function readXml(exchange: Exchange, ...roots: string[]): Promise<XmlElement> {
  const text = await readText(exchange, MAX_XML_BYTES);
  try {
    const root = parseXml(text);
    if (!roots.includes(root.name)) throw new XmlError(`unexpected <${root.name}>`);
    return root;
  } catch (error) {
    throw malformed(exchange.what, error);
  }
}

/** Releases an answer whose body is not needed. */
async function discard(exchange: Exchange): Promise<void> {
  await exchange.response.body?.cancel().catch(() => undefined);
}

/** The S3 error code in an error answer's XML body, if there is one to read. */
async function errorCode(exchange: Exchange): Promise<string | undefined> {
  try {
    const text = await readText(exchange, MAX_ERROR_BYTES);
    if (text.trim() === '') return undefined;
    const root = parseXml(text);
    return root.name === 'Error' ? childText(root, 'Code') : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The answer to a CopyObject or UploadPartCopy, whose only condition is the source pin: its
 * result element, or why not. S3 answers 200 as soon as a copy starts, so a copy that fails
 * later fails inside a 200, with an <Error> body.
 */
async function copyAnswer(exchange: Exchange, from: string, result: string): Promise<XmlElement> {
  const { status } = exchange.response;
  if (status === 412) {
    await discard(exchange);
    throw new SourceChangedError(`${exchange.what}: the source changed`);
  }
  if (status === 404) {
    // NoSuchKey is the source; NoSuchBucket, NoSuchUpload are not about it.
    const code = await errorCode(exchange);
    if (code === undefined || code === 'NoSuchKey') throw notFound(from);
    throw unavailable(exchange, code);
  }
  if (status !== 200) throw unavailable(exchange, await errorCode(exchange));
  const root = await readXml(exchange, result, 'Error');
  if (root.name === result) return root;
  let code: string | undefined;
  try {
    code = childText(root, 'Code');
  } catch (error) {
    throw malformed(exchange.what, error);
  }
  if (code === 'PreconditionFailed') {
    throw new SourceChangedError(`${exchange.what}: the source changed`);
  }
  if (code === 'NoSuchKey') throw notFound(from);
  throw unavailable(exchange, code);
}

// --- errors ---

function refusedWrite(key: string, conditions: Record<string, string>): StorageError {
  return preconditionFailed(
    key,
    conditions['if-match'] === undefined
      ? 'the object exists (If-None-Match: *)'
      : 'the etag does not match If-Match, or there is no object',
  );
}

function unavailable(exchange: Exchange, code: string | undefined): StorageError {
  const { status } = exchange.response;
  return new StorageError(
    'UNAVAILABLE',
    `${exchange.what}: the store answered ${status}${code === undefined ? '' : ` ${code}`}`,
  );
}

function malformed(what: string, cause: unknown): StorageError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new StorageError('UNAVAILABLE', `${what}: a malformed answer (${detail})`, { cause });
}

type ReadableStreamReadResult = Awaited<
  ReturnType<ReadableStreamDefaultReader<Uint8Array>['read']>
>;

// --- encoding ---

function escapeXml(value: string): string {
  return value.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] ?? c,
  );
}

function hex(buffer: ArrayBuffer): string {
  return Array.from(new Uint8Array(buffer), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
