/**
 * A BlobStore in memory, for tests and for small embedded uses. It holds every object's bytes,
 * so it is exempt from the bounded-memory rule the other adapters follow. Web-standard only: it
 * runs in Workers too.
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
import {
  checkCopyOptions,
  checkGetOptions,
  checkListOptions,
  checkPutOptions,
  compareKeys,
  notFound,
  preconditionFailed,
  resolveRange,
} from './options.js';
import { checkKey } from './keys.js';

interface StoredObject {
  readonly info: ObjectInfo;
  readonly bytes: Uint8Array;
}

async function collect(body: PutBody): Promise<Uint8Array> {
  if (body instanceof Uint8Array) return body.slice();
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value.slice());
    total += value.byteLength;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (bytes.byteLength > 0) controller.enqueue(bytes.slice());
      controller.close();
    },
  });
}

/** Runs `work` now and settles with its outcome: no await, so nothing interleaves with it. */
function settle<T>(work: () => T): Promise<T> {
  return new Promise((resolve) => resolve(work()));
}

export class MemoryBlobStore implements BlobStore {
  readonly #objects = new Map<string, StoredObject>();

  get(key: string, options?: GetOptions): Promise<GetResult> {
    // Checks and lookups run synchronously, so each call sees one consistent object.
    return settle((): GetResult => {
      checkGetOptions(key, options);
      const stored = this.#objects.get(key);
      if (!stored) throw notFound(key);
      const { info, bytes } = stored;
      if (options?.ifMatch !== undefined && options.ifMatch !== info.etag) {
        throw preconditionFailed(key, 'the etag does not match If-Match');
      }
      if (options?.ifNoneMatch !== undefined && options.ifNoneMatch === info.etag) {
        return { notModified: true, info };
      }
      if (options?.range === undefined) {
        return { notModified: false, info, body: streamOf(bytes) };
      }
      const range = resolveRange(options.range, info.size, key);
      const slice = bytes.subarray(range.offset, range.offset + range.length);
      return { notModified: false, info, body: streamOf(slice), range };
    });
  }

  head(key: string): Promise<ObjectInfo | undefined> {
    return settle(() => {
      checkKey(key);
      return this.#objects.get(key)?.info;
    });
  }

  async put(key: string, body: PutBody, options?: PutOptions): Promise<ObjectInfo> {
    checkPutOptions(key, options);
    const bytes = await collect(body);
    // No await from here on: the condition check and the write are one step, so of two racing
    // compare-and-swaps exactly one wins.
    const current = this.#objects.get(key);
    if (options?.ifNoneMatch === '*' && current) {
      throw preconditionFailed(key, 'the object exists (If-None-Match: *)');
    }
    if (options?.ifMatch !== undefined && current?.info.etag !== options.ifMatch) {
      throw preconditionFailed(
        key,
        current ? 'the etag does not match If-Match' : 'no object to match If-Match',
      );
    }
    const info: ObjectInfo = {
      key,
      size: bytes.byteLength,
      etag: crypto.randomUUID().replaceAll('-', ''),
      lastModified: new Date(),
      contentType: options?.contentType,
    };
    this.#objects.set(key, { info, bytes });
    return info;
  }

  copy(from: string, to: string, options?: CopyOptions): Promise<ObjectInfo> {
    // One synchronous step, as put's condition and write are. Stored bytes are never changed in
    // place, so the copy can share them.
    return settle((): ObjectInfo => {
      checkCopyOptions(from, to, options);
      const source = this.#objects.get(from);
      if (!source) throw notFound(from);
      if (options?.sourceIfMatch !== undefined && options.sourceIfMatch !== source.info.etag) {
        throw preconditionFailed(from, 'the etag does not match sourceIfMatch');
      }
      if (options?.ifNoneMatch === '*' && this.#objects.has(to)) {
        throw preconditionFailed(to, 'the object exists (If-None-Match: *)');
      }
      const info: ObjectInfo = {
        key: to,
        size: source.info.size,
        etag: crypto.randomUUID().replaceAll('-', ''),
        lastModified: new Date(),
        contentType: options?.contentType ?? source.info.contentType,
      };
      this.#objects.set(to, { info, bytes: source.bytes });
      return info;
    });
  }

  delete(key: string): Promise<void> {
    return settle(() => {
      checkKey(key);
      this.#objects.delete(key);
    });
  }

  list(options: ListOptions): Promise<ListPage> {
    return settle((): ListPage => {
      const limit = checkListOptions(options);
      const { prefix, cursor } = options;
      const keys = [...this.#objects.keys()]
        .filter((k) => k.startsWith(prefix) && (cursor === undefined || compareKeys(k, cursor) > 0))
        .sort(compareKeys);
      const objects = keys.slice(0, limit).flatMap((k) => this.#objects.get(k)?.info ?? []);
      const last = objects.at(-1);
      return keys.length > limit && last ? { objects, cursor: last.key } : { objects };
    });
  }
}
