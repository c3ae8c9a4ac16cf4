/**
 * A writer racing an upload: what both Worker adapters must get right, because each checks a
 * put's condition early and again at its last step (R2's final put, S3's
 * CompleteMultipartUpload), and only the last check can see a write that landed meanwhile.
 */
import { expect } from 'vitest';
import type { BlobStore, ObjectInfo } from '../src/blob-store.js';
import { bytes, expectStorageError, patternStream } from '../src/contract.js';

/**
 * The pattern as a body of unknown length that, as it ends, waits for `atEnd`: another
 * writer's put landing after the adapter's early condition check and before its last step.
 */
export function bodyRacing(seed: number, size: number, atEnd: () => Promise<unknown>) {
  const source = patternStream(seed, size).getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await source.read();
      if (!done) {
        controller.enqueue(value);
        return;
      }
      await atEnd();
      controller.close();
    },
  });
}

/**
 * A compare-and-swap on `key` (whose etag is `etag`) and a create-only put of `newKey`, each
 * raced by another writer landing on the same key while the parts go up: both must fail with
 * PRECONDITION_FAILED and leave the other writer's object in place.
 */
export async function expectRacedConditionsRefused(
  store: BlobStore,
  race: { key: string; etag: string; newKey: string; size: number; seeds: [number, number] },
): Promise<void> {
  let other: ObjectInfo | undefined;
  const landOther = async (key: string) => {
    other = await store.put(key, bytes('the other writer'));
  };
  await expectStorageError(
    store.put(
      race.key,
      bodyRacing(race.seeds[0], race.size, () => landOther(race.key)),
      { ifMatch: race.etag },
    ),
    'PRECONDITION_FAILED',
  );
  expect((await store.head(race.key))?.etag).toBe(other?.etag);
  await expectStorageError(
    store.put(
      race.newKey,
      bodyRacing(race.seeds[1], race.size, () => landOther(race.newKey)),
      { ifNoneMatch: '*' },
    ),
    'PRECONDITION_FAILED',
  );
  expect((await store.head(race.newKey))?.etag).toBe(other?.etag);
}
