/**
 * A BlobStore over the S3 API through @aws-sdk/client-s3, for Node: MinIO, Cloudflare R2's S3
 * endpoint and AWS S3.
 *
 * - Path-style addressing, so an endpoint like `http://127.0.0.1:9000` works without DNS.
 * - Checksums only when an operation requires them. With the SDK's default, a streamed body is
 *   sent with aws-chunked framing and a trailing checksum, and some S3-compatible servers store
 *   the framing inside the object.
 * - Bodies of unknown length go up as multipart uploads with bounded part buffers (lib-storage's
 *   Upload): about `partSize × (partConcurrency + 1)` bytes in memory, whatever the object size.
 *   Conditions (If-None-Match: *, If-Match) ride on CompleteMultipartUpload, so the swap is as
 *   atomic as a single PutObject; a quick HEAD first fails a doomed upload before it starts.
 * - Every request has bounded time: a connect timeout, a socket idle timeout, and a deadline
 *   for each operation (for `get`, until the response headers arrive). A service that does not
 *   answer, or answers 5xx, is UNAVAILABLE.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCopyCommand,
  type CompletedPart,
  type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
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
import { isStorageError, StorageError } from './errors.js';
import { checkKey } from './keys.js';
import {
  checkCopyOptions,
  checkGetOptions,
  checkListOptions,
  checkPutOptions,
  MAX_LIST_LIMIT,
  notFound,
  notSatisfiable,
  preconditionFailed,
  rangeHeader,
  resolveRange,
} from './options.js';
import {
  copyAllowanceMs,
  copySource,
  DEFAULT_COPY_PART_BYTES,
  forEachLimited,
  MAX_SINGLE_COPY_BYTES,
  MIN_COPY_PART_BYTES,
  planCopyParts,
  copyPinned,
  SourceChangedError,
  type CopyPart,
} from './s3-copy.js';

export interface S3BlobStoreOptions {
  readonly bucket: string;
  /** The service's URL; omit for AWS S3. R2: `https://<account id>.r2.cloudflarestorage.com`. */
  readonly endpoint?: string | undefined;
  /** Default `us-east-1`; R2 takes `auto`. */
  readonly region?: string | undefined;
  /** Default: the SDK's credential chain (environment, profile, instance role). */
  readonly credentials?:
    | {
        readonly accessKeyId: string;
        readonly secretAccessKey: string;
        readonly sessionToken?: string | undefined;
      }
    | undefined;
  /** Default true: path-style addressing (`endpoint/bucket/key`). */
  readonly forcePathStyle?: boolean | undefined;
  /** How long a TCP (and TLS) connect may take. Default 5 s. */
  readonly connectTimeoutMs?: number | undefined;
  /** How long a socket may sit idle mid-request, including mid-body. Default 30 s. */
  readonly idleTimeoutMs?: number | undefined;
  /**
   * The deadline of one operation, retries included: the whole of head, delete, list and a
   * put of bytes; a get until its headers arrive. Default 60 s. Streamed puts are bounded per
   * part by the idle timeout instead, since a large upload rightly takes long.
   */
  readonly operationTimeoutMs?: number | undefined;
  /** Attempts per request, for retryable failures (5xx, throttling, connection errors). Default 3. */
  readonly maxAttempts?: number | undefined;
  /** Multipart part size for streamed bodies. Default 8 MiB (S3's minimum is 5 MiB). */
  readonly partSize?: number | undefined;
  /** Parts uploaded at once, and parts of a multipart copy copied at once. Default 4. */
  readonly partConcurrency?: number | undefined;
  /**
   * `copy` uses one CopyObject up to this size and UploadPartCopy parts above it. Default and
   * most 5 GiB, S3's largest CopyObject.
   */
  readonly multipartCopyThreshold?: number | undefined;
  /** Part size of a multipart copy. Default 512 MiB; from 5 MiB to 5 GiB. */
  readonly copyPartSize?: number | undefined;
}

const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
const MIN_PART_SIZE = 5 * 1024 * 1024;
/** S3 allows at most 10 000 parts; a known length picks a part size that fits. */
const MAX_PARTS = 10_000;

interface ServiceErrorShape {
  readonly name?: string;
  readonly code?: string;
  readonly message?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
  readonly $response?: { readonly headers?: Record<string, string | undefined> };
  readonly ActualObjectSize?: string | number;
  readonly cause?: unknown;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'ETIMEDOUT',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  'UND_ERR_SOCKET',
]);

function statusOf(error: unknown): number | undefined {
  return (error as ServiceErrorShape | undefined)?.$metadata?.httpStatusCode;
}

function isNetworkError(error: unknown): boolean {
  for (let e = error as ServiceErrorShape | undefined, depth = 0; e && depth < 5; depth++) {
    if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true;
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return true;
    if (typeof e.message === 'string' && /socket hang up|timed out/i.test(e.message)) return true;
    e = e.cause as ServiceErrorShape | undefined;
  }
  return false;
}

function unquote(etag: string | undefined): string {
  if (etag === undefined) return '';
  const bare = etag.startsWith('W/') ? etag.slice(2) : etag;
  return bare.replace(/^"(.*)"$/, '$1');
}

function quote(etag: string): string {
  return `"${etag}"`;
}

function uploadVanished(key: string, cause: unknown): StorageError {
  return new StorageError('UNAVAILABLE', `copy ${key}: the multipart upload vanished`, { cause });
}

/** `bytes 0-0/26` → offset 0, length 1, size 26. */
function parseContentRange(
  value: string | undefined,
): { offset: number; length: number; size: number } | undefined {
  const match = value === undefined ? null : /^bytes (\d+)-(\d+)\/(\d+)$/.exec(value.trim());
  if (!match) return undefined;
  const [first, last, size] = [Number(match[1]), Number(match[2]), Number(match[3])];
  return { offset: first, length: last - first + 1, size };
}

/**
 * The body as served, except that a failure mid-body (the socket idle timeout, a reset) reaches
 * the reader as UNAVAILABLE, like a failure before the headers would have.
 */
function unavailableOnError(
  stream: ReadableStream<Uint8Array>,
  key: string,
): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (e) {
          controller.error(
            new StorageError('UNAVAILABLE', `get ${key}: the body broke off: ${String(e)}`, {
              cause: e,
            }),
          );
        }
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/** The bytes of `stream` from `offset`, `length` of them. */
function sliceStream(
  stream: ReadableStream<Uint8Array>,
  offset: number,
  length: number,
): ReadableStream<Uint8Array> {
  let position = 0;
  const end = offset + length;
  return stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        const from = Math.max(offset - position, 0);
        const to = Math.min(end - position, chunk.byteLength);
        position += chunk.byteLength;
        if (to > from) controller.enqueue(chunk.subarray(from, to));
      },
    }),
  );
}

export class S3BlobStore implements BlobStore {
  readonly client: S3Client;
  readonly bucket: string;
  readonly #operationTimeoutMs: number;
  readonly #partSize: number;
  readonly #partConcurrency: number;
  readonly #multipartCopyThreshold: number;
  readonly #copyPartSize: number;

  constructor(options: S3BlobStoreOptions) {
    this.bucket = options.bucket;
    this.#operationTimeoutMs = options.operationTimeoutMs ?? 60_000;
    this.#partSize = Math.max(options.partSize ?? DEFAULT_PART_SIZE, MIN_PART_SIZE);
    this.#partConcurrency = options.partConcurrency ?? 4;
    this.#multipartCopyThreshold = Math.min(
      Math.max(options.multipartCopyThreshold ?? MAX_SINGLE_COPY_BYTES, 0),
      MAX_SINGLE_COPY_BYTES,
    );
    this.#copyPartSize = Math.min(
      Math.max(options.copyPartSize ?? DEFAULT_COPY_PART_BYTES, MIN_COPY_PART_BYTES),
      MAX_SINGLE_COPY_BYTES,
    );
    const connectionTimeout = options.connectTimeoutMs ?? 5_000;
    const socketTimeout = options.idleTimeoutMs ?? 30_000;
    const agentOptions = { keepAlive: true, maxSockets: 64 };
    this.client = new S3Client({
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      region: options.region ?? 'us-east-1',
      ...(options.credentials
        ? {
            credentials: {
              accessKeyId: options.credentials.accessKeyId,
              secretAccessKey: options.credentials.secretAccessKey,
              ...(options.credentials.sessionToken === undefined
                ? {}
                : { sessionToken: options.credentials.sessionToken }),
            },
          }
        : {}),
      forcePathStyle: options.forcePathStyle ?? true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: options.maxAttempts ?? 3,
      // The SDK builds its NodeHttpHandler from these options.
      requestHandler: {
        connectionTimeout,
        socketTimeout,
        httpAgent: new HttpAgent(agentOptions),
        httpsAgent: new HttpsAgent(agentOptions),
      },
    });
  }

  /** Closes idle connections. The store must not be used afterwards. */
  destroy(): void {
    this.client.destroy();
  }

  /** Runs `operation` with an abort signal that fires at the operation deadline. */
  async #withDeadline<T>(
    key: string,
    what: string,
    operation: (abortSignal: AbortSignal) => Promise<T>,
    timeoutMs = this.#operationTimeoutMs,
  ): Promise<T> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      return await operation(controller.signal);
    } catch (e) {
      if (controller.signal.aborted) {
        throw new StorageError(
          'UNAVAILABLE',
          `${what} ${key}: no answer from the storage service within ${timeoutMs} ms`,
          { cause: e },
        );
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Maps an SDK or network failure to a StorageError. Anything that came neither from the service
   * nor from the network (a failing body stream, a bug) is returned unchanged.
   */
  #failure(error: unknown, key: string, what: string): unknown {
    if (error instanceof StorageError) return error;
    const status = statusOf(error);
    const name = (error as ServiceErrorShape | undefined)?.name ?? '';
    const detail = `${name || 'error'}${status === undefined ? '' : ` (HTTP ${status})`}`;
    if (status === 412) return preconditionFailed(key, 'the condition did not hold', error);
    if (name === 'NoSuchBucket') {
      return new StorageError('UNAVAILABLE', `${what} ${key}: no bucket ${this.bucket}`, {
        cause: error,
      });
    }
    if (status === 404 || name === 'NoSuchKey' || name === 'NotFound') return notFound(key, error);
    if (status === 400 && name !== 'RequestTimeout') {
      return new StorageError('INVALID_ARGUMENT', `${what} ${key}: refused: ${detail}`, {
        cause: error,
      });
    }
    if (status === undefined && !isNetworkError(error)) return error;
    // Connection refused, timeouts, 5xx, throttling, and 403 (credentials that do not work are
    // an operator's problem the caller cannot fix by retrying differently; see the README).
    return new StorageError('UNAVAILABLE', `${what} ${key}: storage unavailable: ${detail}`, {
      cause: error,
    });
  }

  #info(
    key: string,
    output: {
      ETag?: string | undefined;
      LastModified?: Date | undefined;
      ContentType?: string | undefined;
    },
    size: number,
  ): ObjectInfo {
    return {
      key,
      size,
      etag: unquote(output.ETag),
      lastModified: output.LastModified ?? new Date(),
      contentType: output.ContentType,
    };
  }

  async get(key: string, options?: GetOptions): Promise<GetResult> {
    checkGetOptions(key, options);
    // A 304 carries no size, so we HEAD for the info; if the object changed in between, ask again.
    for (let attempt = 0; attempt < 3; attempt++) {
      let output: GetObjectCommandOutput;
      try {
        output = await this.#withDeadline(key, 'get', (abortSignal) =>
          this.client.send(
            new GetObjectCommand({
              Bucket: this.bucket,
              Key: key,
              Range: options?.range === undefined ? undefined : rangeHeader(options.range),
              IfMatch: options?.ifMatch === undefined ? undefined : quote(options.ifMatch),
              IfNoneMatch:
                options?.ifNoneMatch === undefined ? undefined : quote(options.ifNoneMatch),
            }),
            { abortSignal },
          ),
        );
      } catch (e) {
        const status = statusOf(e);
        if (status === 304 && options?.ifNoneMatch !== undefined) {
          const info = await this.head(key);
          if (info === undefined) throw notFound(key, e);
          if (info.etag === options.ifNoneMatch) return { notModified: true, info };
          continue;
        }
        if (status === 416 || (e as ServiceErrorShape | undefined)?.name === 'InvalidRange') {
          throw notSatisfiable(key, await this.#sizeForRangeError(key, e), e);
        }
        throw this.#failure(e, key, 'get');
      }
      const body = output.Body;
      if (body === undefined) throw new StorageError('UNAVAILABLE', `get ${key}: no body`);
      const stream = unavailableOnError(
        body.transformToWebStream() as ReadableStream<Uint8Array>,
        key,
      );
      if (options?.range === undefined) {
        return {
          notModified: false,
          info: this.#info(key, output, output.ContentLength ?? 0),
          body: stream,
        };
      }
      const served = parseContentRange(output.ContentRange);
      if (served === undefined) {
        // 200 to a range request: the service sent the whole object (MinIO does for any range of
        // an empty object). Cut the range ourselves, as HTTP would have.
        const size = output.ContentLength ?? 0;
        let range: { offset: number; length: number };
        try {
          range = resolveRange(options.range, size, key);
        } catch (e) {
          await stream.cancel().catch(() => undefined);
          throw e;
        }
        return {
          notModified: false,
          info: this.#info(key, output, size),
          body: sliceStream(stream, range.offset, range.length),
          range,
        };
      }
      return {
        notModified: false,
        info: this.#info(key, output, served.size),
        body: stream,
        range: { offset: served.offset, length: served.length },
      };
    }
    throw new StorageError('UNAVAILABLE', `get ${key}: the object kept changing while it was read`);
  }

  /** The object size for a 416: from the error when the service says it, else from a HEAD. */
  async #sizeForRangeError(key: string, error: unknown): Promise<number> {
    const shape = error as ServiceErrorShape | undefined;
    const fromBody = Number(shape?.ActualObjectSize);
    if (shape?.ActualObjectSize !== undefined && Number.isSafeInteger(fromBody)) return fromBody;
    const fromHeader = parseContentRange(
      shape?.$response?.headers?.['content-range']?.replace('bytes */', 'bytes 0-0/'),
    );
    if (fromHeader) return fromHeader.size;
    const info = await this.head(key);
    if (info === undefined) throw notFound(key, error);
    return info.size;
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    checkKey(key);
    try {
      const output = await this.#withDeadline(key, 'head', (abortSignal) =>
        this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }), {
          abortSignal,
        }),
      );
      return this.#info(key, output, output.ContentLength ?? 0);
    } catch (e) {
      const failure = this.#failure(e, key, 'head');
      if (isStorageError(failure, 'NOT_FOUND')) return undefined;
      throw failure;
    }
  }

  async put(key: string, body: PutBody, options?: PutOptions): Promise<ObjectInfo> {
    checkPutOptions(key, options);
    const conditional = options?.ifMatch !== undefined || options?.ifNoneMatch !== undefined;
    const conditionFailed = (e: unknown): unknown => {
      const status = statusOf(e);
      // AWS answers If-Match on a missing key with 404, and two conditional writes that overlap
      // with 409: for a compare-and-swap both mean "your condition did not hold".
      if (conditional && (status === 404 || status === 409 || status === 412)) {
        return preconditionFailed(key, 'the condition did not hold', e);
      }
      return this.#failure(e, key, 'put');
    };
    const params = {
      Bucket: this.bucket,
      Key: key,
      ContentType: options?.contentType,
      IfNoneMatch: options?.ifNoneMatch,
      IfMatch: options?.ifMatch === undefined ? undefined : quote(options.ifMatch),
    };

    if (body instanceof Uint8Array) {
      try {
        const output = await this.#withDeadline(key, 'put', (abortSignal) =>
          this.client.send(
            new PutObjectCommand({ ...params, Body: body, ContentLength: body.byteLength }),
            { abortSignal },
          ),
        );
        return {
          key,
          size: body.byteLength,
          etag: unquote(output.ETag),
          lastModified: new Date(),
          contentType: options?.contentType,
        };
      } catch (e) {
        throw conditionFailed(e);
      }
    }

    if (conditional) {
      // Fail fast rather than upload gigabytes that CompleteMultipartUpload would refuse.
      let current: ObjectInfo | undefined;
      try {
        current = await this.head(key);
      } catch (e) {
        await body.cancel().catch(() => undefined);
        throw e;
      }
      const holds =
        options?.ifNoneMatch === '*' ? current === undefined : current?.etag === options?.ifMatch;
      if (!holds) {
        await body.cancel().catch(() => undefined);
        throw preconditionFailed(
          key,
          options?.ifNoneMatch === '*'
            ? 'the object exists (If-None-Match: *)'
            : current
              ? 'the etag does not match If-Match'
              : 'no object to match If-Match',
        );
      }
    }

    let size = 0;
    const expected = options?.contentLength;
    const counted = body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          size += chunk.byteLength;
          controller.enqueue(chunk);
        },
        flush(controller) {
          if (expected !== undefined && size !== expected) {
            controller.error(
              new StorageError(
                'INVALID_ARGUMENT',
                `put ${key}: contentLength is ${expected} but the body had ${size} bytes`,
              ),
            );
          }
        },
      }),
    );
    const partSize =
      expected === undefined
        ? this.#partSize
        : Math.max(this.#partSize, Math.ceil(expected / MAX_PARTS));
    const upload = new Upload({
      client: this.client,
      params: { ...params, Body: counted },
      partSize,
      queueSize: this.#partConcurrency,
      leavePartsOnError: false,
    });
    try {
      const output = await upload.done();
      return {
        key,
        size,
        etag: unquote(output.ETag),
        lastModified: new Date(),
        contentType: options?.contentType,
      };
    } catch (e) {
      throw conditionFailed(e);
    }
  }

  /**
   * A server-side copy. CopyObject answers no size, so the source is HEADed first, and every
   * request that reads it then carries CopySourceIfMatch with the etag seen: the size reported
   * and the bytes copied are of one version. If the source changes in between, the copy starts
   * over (unless the caller pinned the source with `sourceIfMatch`: then it has failed).
   *
   * A create-only copy (`ifNoneMatch: '*'`) always goes through a multipart upload, whose
   * CompleteMultipartUpload carries If-None-Match: MinIO (the 2026-02 build the tests use)
   * accepts If-None-Match on CopyObject and ignores it, overwriting the destination, while every
   * S3 we meet honours it on CompleteMultipartUpload. Objects above `multipartCopyThreshold`
   * (5 GiB, S3's CopyObject limit) are copied in parts too.
   */
  async copy(from: string, to: string, options: CopyOptions = {}): Promise<ObjectInfo> {
    checkCopyOptions(from, to, options);
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
    try {
      const output = await this.#withDeadline(
        to,
        'copy',
        (abortSignal) =>
          this.client.send(
            new CopyObjectCommand({
              Bucket: this.bucket,
              Key: to,
              CopySource: copySource(this.bucket, source.key),
              CopySourceIfMatch: quote(source.etag),
              ...(contentType === undefined
                ? {}
                : { MetadataDirective: 'REPLACE', ContentType: contentType }),
            }),
            { abortSignal },
          ),
        this.#operationTimeoutMs + copyAllowanceMs(source.size),
      );
      return {
        key: to,
        size: source.size,
        etag: unquote(output.CopyObjectResult?.ETag),
        lastModified: output.CopyObjectResult?.LastModified ?? new Date(),
        contentType: contentType ?? source.contentType,
      };
    } catch (e) {
      throw this.#copyFailure(e, source.key, to);
    }
  }

  async #copyInParts(source: ObjectInfo, to: string, options: CopyOptions): Promise<ObjectInfo> {
    const contentType = options.contentType ?? source.contentType;
    // CompleteMultipartUpload decides; this spares copying gigabytes it would refuse.
    if (options.ifNoneMatch === '*' && (await this.head(to)) !== undefined) {
      throw preconditionFailed(to, 'the object exists (If-None-Match: *)');
    }
    const uploadId = await this.#createCopyUpload(to, contentType);
    try {
      const parts = await forEachLimited(
        planCopyParts(source.size, this.#copyPartSize),
        this.#partConcurrency,
        (part) => this.#copyPart(source, to, uploadId, part),
      );
      const etag = await this.#completeCopy(source, to, uploadId, parts, options.ifNoneMatch);
      return { key: to, size: source.size, etag, lastModified: new Date(), contentType };
    } catch (e) {
      try {
        await this.client.send(
          new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: to, UploadId: uploadId }),
        );
      } catch {
        // Best effort: a bucket lifecycle rule removes what is left. The copy's failure counts.
      }
      throw e;
    }
  }

  async #createCopyUpload(to: string, contentType: string | undefined): Promise<string> {
    let uploadId: string | undefined;
    try {
      const created = await this.#withDeadline(to, 'copy', (abortSignal) =>
        this.client.send(
          new CreateMultipartUploadCommand({
            Bucket: this.bucket,
            Key: to,
            ContentType: contentType,
          }),
          { abortSignal },
        ),
      );
      uploadId = created.UploadId;
    } catch (e) {
      throw this.#failure(e, to, 'copy');
    }
    if (uploadId === undefined || uploadId === '') {
      throw new StorageError('UNAVAILABLE', `copy ${to}: no upload id in the answer`);
    }
    return uploadId;
  }

  async #copyPart(
    source: ObjectInfo,
    to: string,
    uploadId: string,
    part: CopyPart,
  ): Promise<CompletedPart> {
    try {
      const output = await this.#withDeadline(
        to,
        `copy (part ${part.partNumber})`,
        (abortSignal) =>
          this.client.send(
            new UploadPartCopyCommand({
              Bucket: this.bucket,
              Key: to,
              UploadId: uploadId,
              PartNumber: part.partNumber,
              CopySource: copySource(this.bucket, source.key),
              CopySourceIfMatch: quote(source.etag),
              CopySourceRange: part.range,
            }),
            { abortSignal },
          ),
        this.#operationTimeoutMs + copyAllowanceMs(part.length),
      );
      return { PartNumber: part.partNumber, ETag: output.CopyPartResult?.ETag };
    } catch (e) {
      throw this.#copyFailure(e, source.key, to);
    }
  }

  /** Completes a multipart copy, with its If-None-Match; resolves with the new etag. */
  async #completeCopy(
    source: ObjectInfo,
    to: string,
    uploadId: string,
    parts: CompletedPart[],
    ifNoneMatch: '*' | undefined,
  ): Promise<string> {
    try {
      const output = await this.#withDeadline(
        to,
        'copy',
        (abortSignal) =>
          this.client.send(
            new CompleteMultipartUploadCommand({
              Bucket: this.bucket,
              Key: to,
              UploadId: uploadId,
              IfNoneMatch: ifNoneMatch,
              MultipartUpload: { Parts: parts },
            }),
            { abortSignal },
          ),
        // S3 may take a while to assemble a large object (it keeps the connection alive).
        this.#operationTimeoutMs + copyAllowanceMs(source.size),
      );
      return unquote(output.ETag);
    } catch (e) {
      const status = statusOf(e);
      const name = (e as ServiceErrorShape | undefined)?.name;
      // 409: another conditional write to the key won the race. A failure inside a 200 answer
      // reaches us as a 503 that carries S3's error code.
      if (
        ifNoneMatch === '*' &&
        (status === 412 ||
          status === 409 ||
          name === 'PreconditionFailed' ||
          name === 'ConditionalRequestConflict')
      ) {
        throw preconditionFailed(to, 'the object exists (If-None-Match: *)', e);
      }
      if (name === 'NoSuchUpload') throw uploadVanished(to, e);
      throw this.#failure(e, to, 'copy');
    }
  }

  /**
   * A failed CopyObject or UploadPartCopy, whose only condition is the source pin: a 412 (or a
   * PreconditionFailed inside a 200) means the source changed; a 404 that the source is gone.
   */
  #copyFailure(error: unknown, from: string, to: string): unknown {
    if (error instanceof StorageError) return error;
    const status = statusOf(error);
    const name = (error as ServiceErrorShape | undefined)?.name;
    if (status === 412 || name === 'PreconditionFailed') {
      return new SourceChangedError(`copy ${from}: the source changed`, { cause: error });
    }
    if (name === 'NoSuchUpload') return uploadVanished(to, error);
    if (name === 'NoSuchKey' || (status === 404 && name !== 'NoSuchBucket')) {
      return notFound(from, error);
    }
    return this.#failure(error, to, 'copy');
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    try {
      await this.#withDeadline(key, 'delete', (abortSignal) =>
        this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }), {
          abortSignal,
        }),
      );
    } catch (e) {
      const failure = this.#failure(e, key, 'delete');
      if (!isStorageError(failure, 'NOT_FOUND')) throw failure;
    }
  }

  async list(options: ListOptions): Promise<ListPage> {
    const limit = checkListOptions(options);
    const what = `prefix ${JSON.stringify(options.prefix)}`;
    try {
      // The cursor is the last key served, sent as StartAfter. We never ask for one key:
      // MinIO answers MaxKeys=1 for a prefix that is itself a key with that object alone and
      // IsTruncated false, hiding the rest. One key more than a page also tells us if there is
      // a next page without trusting IsTruncated.
      const output = await this.#withDeadline(what, 'list', (abortSignal) =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: options.prefix === '' ? undefined : options.prefix,
            MaxKeys: Math.min(limit + 1, MAX_LIST_LIMIT),
            StartAfter: options.cursor,
          }),
          { abortSignal },
        ),
      );
      const all = (output.Contents ?? []).flatMap((o): ObjectInfo[] =>
        o.Key === undefined ? [] : [this.#info(o.Key, o, o.Size ?? 0)],
      );
      const objects = all.slice(0, limit);
      const more = all.length > limit || output.IsTruncated === true;
      const last = objects.at(-1);
      return more && last ? { objects, cursor: last.key } : { objects };
    } catch (e) {
      throw this.#failure(e, what, 'list');
    }
  }
}
