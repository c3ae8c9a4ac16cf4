/**
 * The storage port: what the origin and the edge need from object storage, and nothing
 * more. Adapters (memory, filesystem, S3 through the AWS SDK, S3 from a Worker through
 * aws4fetch, the R2 binding) each live in their own file, and one contract suite
 * (contract.ts) holds every one of them to the same behaviour.
 *
 * Bodies are Web streams, so the same port serves Node and Workers and no adapter has to
 * hold an object in memory.
 */

export interface ObjectInfo {
  readonly key: string;
  /** Bytes in the whole object. */
  readonly size: number;
  /** A strong entity tag, without quotes: it changes whenever the content may have changed. */
  readonly etag: string;
  readonly lastModified: Date;
  readonly contentType?: string | undefined;
}

/**
 * A byte range: `offset` and optional `length` (to the end when absent), or the last
 * `suffix` bytes, as HTTP Range allows.
 */
export type ByteRange =
  { readonly offset: number; readonly length?: number | undefined } | { readonly suffix: number };

export interface GetOptions {
  readonly range?: ByteRange | undefined;
  /** Fail with PRECONDITION_FAILED unless the object's etag is this one. */
  readonly ifMatch?: string | undefined;
  /** Answer `{ notModified: true }` (no body) when the object's etag is this one. */
  readonly ifNoneMatch?: string | undefined;
}

export type GetResult =
  | {
      readonly notModified: false;
      readonly info: ObjectInfo;
      /** The bytes served: the whole object, or the range asked for. */
      readonly body: ReadableStream<Uint8Array>;
      /** Where the served bytes are in the object, when a range was asked for. */
      readonly range?: { readonly offset: number; readonly length: number } | undefined;
    }
  | { readonly notModified: true; readonly info: ObjectInfo };

export interface PutOptions {
  /** `'*'`: create only; fail with PRECONDITION_FAILED if the key exists. */
  readonly ifNoneMatch?: '*' | undefined;
  /** Compare-and-swap: fail with PRECONDITION_FAILED unless the current etag is this one. */
  readonly ifMatch?: string | undefined;
  readonly contentType?: string | undefined;
  /** The body's length when known in advance; lets adapters choose single or multipart upload. */
  readonly contentLength?: number | undefined;
}

export interface CopyOptions {
  /** `'*'`: create only; fail with PRECONDITION_FAILED if the destination exists. */
  readonly ifNoneMatch?: '*' | undefined;
  /** Fail with PRECONDITION_FAILED unless the source's etag is this one. */
  readonly sourceIfMatch?: string | undefined;
  /** The copy's content type; by default the source's. */
  readonly contentType?: string | undefined;
}

export interface ListOptions {
  readonly prefix: string;
  /** From a previous page's `cursor`. */
  readonly cursor?: string | undefined;
  /** Objects per page; adapters may return fewer. Default 1000. */
  readonly limit?: number | undefined;
}

export interface ListPage {
  /** Objects in key order. */
  readonly objects: readonly ObjectInfo[];
  /** Present when there are more objects: pass it to the next `list` call. */
  readonly cursor?: string | undefined;
}

export type PutBody = ReadableStream<Uint8Array> | Uint8Array;

export interface BlobStore {
  /** Rejects with NOT_FOUND for a missing key, RANGE_NOT_SATISFIABLE for a range past the end. */
  get(key: string, options?: GetOptions): Promise<GetResult>;
  /** Undefined for a missing key. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Streams the body in without holding it in memory; resolves with the stored object's info. */
  put(key: string, body: PutBody, options?: PutOptions): Promise<ObjectInfo>;
  /**
   * Copies the object at `from` to `to` inside the store, without the bytes passing through the
   * caller where the service allows. Rejects NOT_FOUND when `from` is missing; honours
   * `ifNoneMatch: '*'` on the destination (PRECONDITION_FAILED when `to` exists) and
   * `sourceIfMatch` on the source (PRECONDITION_FAILED unless the source's etag is this one).
   * Copying a key onto itself is INVALID_ARGUMENT. Resolves with the new object's info, whose
   * etag may differ from the source's.
   */
  copy(from: string, to: string, options?: CopyOptions): Promise<ObjectInfo>;
  /** Deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  list(options: ListOptions): Promise<ListPage>;
}
