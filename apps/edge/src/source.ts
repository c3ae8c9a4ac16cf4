/**
 * Where the app's objects come from. The app speaks HTTP; a source finds bytes: straight from
 * storage (`StorageSource`), from storage with metadata verified first (verified-source.ts), or
 * from storage filled from an upstream on demand (pull-through.ts). Every source answers in
 * bounded time and reports failures as EdgeErrors, so the app maps them in one place.
 */
import type { BlobStore, ByteRange, ObjectInfo } from '@cairn/storage/blob-store';
import { isStorageError } from '@cairn/storage/errors';
import { EdgeError, isEdgeError } from './errors.js';
import type { RepoPath } from './paths.js';

export interface SourceObject {
  readonly info: ObjectInfo;
  /** The whole object, or the range asked for. */
  readonly body: ReadableStream<Uint8Array>;
  /** Where the served bytes are in the object, when a range was asked for. */
  readonly range?: { readonly offset: number; readonly length: number } | undefined;
}

export interface ObjectSource {
  /**
   * The object's info, undefined when it is missing. Rejects with an EdgeError:
   * STORAGE_UNAVAILABLE, VERIFICATION_FAILED, UPSTREAM_UNAVAILABLE, UPSTREAM_INVALID.
   */
  head(path: RepoPath): Promise<ObjectInfo | undefined>;
  /**
   * The object, or the range of it. Rejects with an EdgeError: NOT_FOUND, RANGE_NOT_SATISFIABLE
   * (with `size`), and the failures `head` has.
   */
  get(path: RepoPath, range?: ByteRange): Promise<SourceObject>;
}

/**
 * Runs one storage operation with a deadline and turns storage errors into edge errors, so a
 * stalled store is a 503 after `timeoutMs`, never a hung request.
 */
export async function storageCall<T>(
  what: string,
  timeoutMs: number,
  run: () => Promise<T>,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new EdgeError(
          'STORAGE_UNAVAILABLE',
          `${what}: storage did not answer within ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
  });
  try {
    return await Promise.race([run(), deadline]);
  } catch (error) {
    if (isEdgeError(error)) throw error;
    if (isStorageError(error, 'NOT_FOUND')) {
      throw new EdgeError('NOT_FOUND', `${what}: not found`, { cause: error });
    }
    if (isStorageError(error, 'RANGE_NOT_SATISFIABLE')) {
      throw new EdgeError('RANGE_NOT_SATISFIABLE', `${what}: range not satisfiable`, {
        cause: error,
        size: error.size,
      });
    }
    throw new EdgeError('STORAGE_UNAVAILABLE', `${what}: storage failed`, { cause: error });
  } finally {
    if (timer !== null) clearTimeout(timer);
  }
}

/** Serves the store as it is: the `direct` mode without a trusted root. */
export class StorageSource implements ObjectSource {
  readonly #store: BlobStore;
  readonly #timeoutMs: number;

  constructor(store: BlobStore, timeoutMs: number) {
    this.#store = store;
    this.#timeoutMs = timeoutMs;
  }

  head(path: RepoPath): Promise<ObjectInfo | undefined> {
    return storageCall(path.key, this.#timeoutMs, () => this.#store.head(path.key));
  }

  get(path: RepoPath, range?: ByteRange): Promise<SourceObject> {
    return storageCall(path.key, this.#timeoutMs, async () => {
      const result = await this.#store.get(path.key, range === undefined ? {} : { range });
      if (result.notModified) {
        throw new EdgeError('STORAGE_UNAVAILABLE', `${path.key}: unexpected not-modified answer`);
      }
      return { info: result.info, body: result.body, range: result.range };
    });
  }
}

/**
 * The SourceObject for bytes held in memory (verified metadata): the whole of them, or a range
 * resolved as storage would, RANGE_NOT_SATISFIABLE past the end.
 */
export function bytesObject(bytes: Uint8Array, info: ObjectInfo, range?: ByteRange): SourceObject {
  const size = bytes.length;
  const whole = (part: Uint8Array) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(part.slice());
        controller.close();
      },
    });
  if (range === undefined) return { info, body: whole(bytes) };
  let offset: number;
  let length: number;
  if ('suffix' in range) {
    length = Math.min(range.suffix, size);
    offset = size - length;
    if (range.suffix === 0 || size === 0) {
      throw new EdgeError('RANGE_NOT_SATISFIABLE', `${info.key}: range not satisfiable`, { size });
    }
  } else {
    if (range.offset >= size) {
      throw new EdgeError('RANGE_NOT_SATISFIABLE', `${info.key}: range not satisfiable`, { size });
    }
    offset = range.offset;
    length = Math.min(range.length ?? size - offset, size - offset);
  }
  return {
    info,
    body: whole(bytes.subarray(offset, offset + length)),
    range: { offset, length },
  };
}
