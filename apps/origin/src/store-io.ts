/**
 * Small helpers over the BlobStore port that every origin module needs: whole-object reads
 * and writes of small JSON and metadata documents, with storage failures turned into the
 * origin's own codes so the HTTP layer can answer 503 rather than 500.
 */
import { createHash } from 'node:crypto';
import type { BlobStore, ObjectInfo, PutOptions } from '@cairn/storage/blob-store';
import { isStorageError } from '@cairn/storage/errors';
import { OriginError } from './errors.js';

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Runs a storage operation; UNAVAILABLE becomes STORAGE_UNAVAILABLE, other codes pass through. */
export async function storage<T>(what: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (isStorageError(error, 'UNAVAILABLE')) {
      throw new OriginError('STORAGE_UNAVAILABLE', `${what}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

export async function readBytes(
  store: BlobStore,
  key: string,
): Promise<{ bytes: Uint8Array; info: ObjectInfo } | undefined> {
  return storage(`reading ${key}`, async () => {
    try {
      const result = await store.get(key);
      if (result.notModified) throw new OriginError('INTERNAL', `${key}: unexpected 304`);
      const bytes = new Uint8Array(await new Response(result.body).arrayBuffer());
      return { bytes, info: result.info };
    } catch (error) {
      if (isStorageError(error, 'NOT_FOUND')) return undefined;
      throw error;
    }
  });
}

export async function readJson<T>(
  store: BlobStore,
  key: string,
): Promise<{ value: T; etag: string } | undefined> {
  const found = await readBytes(store, key);
  if (found === undefined) return undefined;
  try {
    return { value: JSON.parse(new TextDecoder().decode(found.bytes)) as T, etag: found.info.etag };
  } catch (error) {
    throw new OriginError('INTEGRITY', `${key}: stored state is not JSON`, { cause: error });
  }
}

export function jsonBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(value, null, 1)}\n`);
}

export async function writeBytes(
  store: BlobStore,
  key: string,
  bytes: Uint8Array,
  options: PutOptions = {},
): Promise<ObjectInfo> {
  return storage(`writing ${key}`, () =>
    store.put(key, bytes, { contentLength: bytes.length, ...options }),
  );
}

export async function writeJson(
  store: BlobStore,
  key: string,
  value: unknown,
  options: PutOptions = {},
): Promise<ObjectInfo> {
  return writeBytes(store, key, jsonBytes(value), {
    contentType: 'application/json',
    ...options,
  });
}

/**
 * Creates `key` with exactly these bytes, or accepts it when it already holds exactly these
 * bytes (a retried or recovered step). Anything else there is CONFLICT: another writer won.
 */
export async function createOrMatch(
  store: BlobStore,
  key: string,
  bytes: Uint8Array,
  contentType = 'application/json',
): Promise<void> {
  try {
    await writeBytes(store, key, bytes, { ifNoneMatch: '*', contentType });
  } catch (error) {
    if (!isStorageError(error, 'PRECONDITION_FAILED')) throw error;
    const existing = await readBytes(store, key);
    if (existing === undefined || Buffer.compare(existing.bytes, bytes) !== 0) {
      throw new OriginError('CONFLICT', `${key} already holds other content`, { cause: error });
    }
  }
}

export async function deleteKey(store: BlobStore, key: string): Promise<void> {
  await storage(`deleting ${key}`, () => store.delete(key));
}

/** Every object under `prefix`, paging through the listing. */
export async function listAll(store: BlobStore, prefix: string): Promise<ObjectInfo[]> {
  const all: ObjectInfo[] = [];
  let cursor: string | undefined;
  do {
    const page = await storage(`listing ${prefix}`, () => store.list({ prefix, cursor }));
    all.push(...page.objects);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return all;
}
