/**
 * The BlobStore contract: one suite that every adapter must pass, so the origin and the edge
 * can swap storage without noticing. Call `describeBlobStoreContract` from an adapter's test
 * file with a factory that makes a fresh, empty store for each test.
 *
 * This module must load in workerd as well as Node (the Worker adapters run it inside
 * Miniflare): it imports only vitest and the port, and uses only Web APIs. Node-only checks
 * (the 1 GB upload with bounded memory) are in contract-node.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BlobStore, GetResult, ObjectInfo, PutBody } from './blob-store.js';
import { StorageError, type StorageErrorCode } from './errors.js';

export interface ContractStore {
  readonly store: BlobStore;
  /** Removes what the store left behind (a bucket, a directory). Runs after each test. */
  readonly cleanup?: (() => Promise<void>) | undefined;
}

/** Makes a fresh, empty store. Called once per test. */
export type MakeContractStore = () => Promise<ContractStore>;

export interface BlobStoreContractOptions {
  /**
   * Bytes in the streamed upload of unknown length, which must come back exactly. Default
   * 12 MiB: more than two parts at the 5 MiB minimum part size of S3 multipart uploads.
   */
  readonly streamedUploadBytes?: number | undefined;
  /** How many times two writers race on one compare-and-swap (and on one create). Default 10. */
  readonly races?: number | undefined;
  /**
   * Whether the store keeps the `contentType` given to `put`. Default true. The filesystem
   * store keeps no metadata beside the bytes, so it says false.
   */
  readonly keepsContentType?: boolean | undefined;
  /**
   * What the store does with a key and keys below it (`a/b` and `a/b/c`). `'kept'` (the
   * default, as in AWS S3 and R2): both are stored and listed. `'refused'`: the second is refused
   * with INVALID_KEY (the filesystem store, where `a/b` cannot be a file and a directory at
   * once). `'untested'`: the service stores both but does not list them reliably (MinIO hides
   * `a/b/c` from listings), so the suite does not test it. Callers must not rely on nesting.
   */
  readonly nestedKeys?: 'kept' | 'refused' | 'untested' | undefined;
  /**
   * Makes a store whose service does not answer (a closed port, a stopped server): every
   * operation must fail with UNAVAILABLE within `unavailableTimeoutMs`. Omit for stores that
   * cannot be unavailable (memory, filesystem).
   */
  readonly unavailable?:
    ReadonlyArray<{ readonly name: string; readonly make: MakeContractStore }> | undefined;
  /** The test timeout of each UNAVAILABLE test, which bounds how long a failure may take. Default 20 s. */
  readonly unavailableTimeoutMs?: number | undefined;
  /** Test timeout for ordinary tests. Default 30 s. */
  readonly timeoutMs?: number | undefined;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
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

export async function readText(stream: ReadableStream<Uint8Array>): Promise<string> {
  return decoder.decode(await readAll(stream));
}

/**
 * A body stream of unknown length (no `contentLength` is passed with it) that yields `chunks`
 * one pull at a time, then fails with `failWith` if given instead of closing.
 */
export function streamOf(
  chunks: readonly Uint8Array[],
  failWith?: Error,
): ReadableStream<Uint8Array> {
  let next = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = chunks[next++];
      if (chunk !== undefined) controller.enqueue(chunk.slice());
      else if (failWith) controller.error(failWith);
      else controller.close();
    },
  });
}

/**
 * The byte at `position` of the test pattern named by `seed`: a cheap hash of the position, so
 * any slice of a large pattern can be produced or checked without the rest, and a byte that is
 * moved, dropped, duplicated or framed (aws-chunked) shows up.
 */
export function patternByte(seed: number, position: number): number {
  let x = Math.imul((position ^ seed) >>> 0, 0x9e3779b1);
  x ^= x >>> 15;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  // The high word keeps positions past 4 GiB from repeating the first 4 GiB.
  return (x ^ Math.floor(position / 0x1_0000_0000)) & 0xff;
}

export function patternSlice(seed: number, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = patternByte(seed, offset + i);
  return out;
}

// Chunk sizes that never line up with part sizes (primes, 1 byte, a little over 64 KiB).
const ODD_CHUNK_SIZES = [65_537, 1, 131_071, 7_919, 262_147, 3, 1_048_573];

/** The pattern as a stream of unknown length, in chunk sizes that never line up with parts. */
export function patternStream(seed: number, total: number): ReadableStream<Uint8Array> {
  let offset = 0;
  let turn = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= total) {
        controller.close();
        return;
      }
      const size = Math.min(ODD_CHUNK_SIZES[turn++ % ODD_CHUNK_SIZES.length] ?? 1, total - offset);
      controller.enqueue(patternSlice(seed, offset, size));
      offset += size;
    },
  });
}

/** Reads `stream` to the end, checking every byte against the pattern; returns the count. */
export async function expectPattern(
  stream: ReadableStream<Uint8Array>,
  seed: number,
  offset = 0,
): Promise<number> {
  let at = offset;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    for (let i = 0; i < value.byteLength; i++) {
      if (value[i] !== patternByte(seed, at + i)) {
        await reader.cancel();
        throw new Error(
          `byte ${at + i} is ${value[i]}, expected ${patternByte(seed, at + i)} (pattern ${seed})`,
        );
      }
    }
    at += value.byteLength;
  }
  return at - offset;
}

/** Awaits `promise` and checks it rejects with a StorageError of `code`; returns the error. */
export async function expectStorageError(
  promise: Promise<unknown>,
  code: StorageErrorCode,
): Promise<StorageError> {
  let outcome: unknown;
  try {
    outcome = await promise;
  } catch (e) {
    if (!(e instanceof StorageError)) {
      throw new Error(`expected StorageError ${code}, got ${String(e)}`, { cause: e });
    }
    expect(e.name).toBe('StorageError');
    expect(e.code).toBe(code);
    return e;
  }
  throw new Error(`expected StorageError ${code}, but it resolved with ${JSON.stringify(outcome)}`);
}

function found(result: GetResult): Extract<GetResult, { notModified: false }> {
  if (result.notModified) throw new Error('expected a body, got notModified');
  return result;
}

async function getText(store: BlobStore, key: string): Promise<string> {
  return readText(found(await store.get(key)).body);
}

function expectSameObject(a: ObjectInfo | undefined, b: ObjectInfo): void {
  expect(a).toBeDefined();
  expect(a?.key).toBe(b.key);
  expect(a?.size).toBe(b.size);
  expect(a?.etag).toBe(b.etag);
}

async function listAll(
  store: BlobStore,
  prefix: string,
  limit: number,
): Promise<{ keys: string[]; pages: ObjectInfo[][] }> {
  const pages: ObjectInfo[][] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list({ prefix, limit, cursor });
    pages.push([...page.objects]);
    cursor = page.cursor;
    if (pages.length > 10_000) throw new Error('list never ends');
  } while (cursor !== undefined);
  return { keys: pages.flat().map((o) => o.key), pages };
}

/** Compares keys as S3 does: by their UTF-8 bytes, not by UTF-16 code units. */
export function compareKeys(a: string, b: string): number {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/** Settles both promises; returns which fulfilled and which rejected. */
async function race<T>(
  a: Promise<T>,
  b: Promise<T>,
): Promise<{ winners: number[]; values: (T | undefined)[]; errors: unknown[] }> {
  const settled = await Promise.allSettled([a, b]);
  return {
    winners: settled.flatMap((s, i) => (s.status === 'fulfilled' ? [i] : [])),
    values: settled.map((s) => (s.status === 'fulfilled' ? s.value : undefined)),
    errors: settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : [])),
  };
}

export function describeBlobStoreContract(
  name: string,
  makeStore: MakeContractStore,
  options: BlobStoreContractOptions = {},
): void {
  const streamedUploadBytes = options.streamedUploadBytes ?? 12 * 1024 * 1024;
  const races = options.races ?? 10;
  const keepsContentType = options.keepsContentType ?? true;
  const nestedKeys = options.nestedKeys ?? 'kept';
  const timeout = options.timeoutMs ?? 30_000;
  const unavailableTimeout = options.unavailableTimeoutMs ?? 20_000;

  describe(`BlobStore contract: ${name}`, () => {
    let store: BlobStore;
    let cleanup: (() => Promise<void>) | undefined;

    beforeEach(async () => {
      const made = await makeStore();
      store = made.store;
      cleanup = made.cleanup;
    }, timeout);

    afterEach(async () => {
      await cleanup?.();
      cleanup = undefined;
    }, timeout);

    const put = (key: string, body: PutBody | string, opts?: Parameters<BlobStore['put']>[2]) =>
      store.put(key, typeof body === 'string' ? bytes(body) : body, opts);

    describe('get, head, put, delete', () => {
      it(
        'stores bytes and gives them back with the same info from put, head and get',
        async () => {
          const info = await put('a/b.txt', 'hello, world');
          expect(info.key).toBe('a/b.txt');
          expect(info.size).toBe(12);
          expect(info.etag).toMatch(/^[^"\s]+$/);
          expect(info.lastModified).toBeInstanceOf(Date);
          expect(Math.abs(info.lastModified.getTime() - Date.now())).toBeLessThan(5 * 60_000);
          expectSameObject(await store.head('a/b.txt'), info);
          const got = found(await store.get('a/b.txt'));
          expectSameObject(got.info, info);
          expect(got.range).toBeUndefined();
          expect(await readText(got.body)).toBe('hello, world');
        },
        timeout,
      );

      it(
        'stores a stream body with and without contentLength',
        async () => {
          const known = await put('known', streamOf([bytes('abc'), bytes('defg')]), {
            contentLength: 7,
          });
          expect(known.size).toBe(7);
          const unknown = await put('unknown', streamOf([bytes('x'), bytes(''), bytes('yz')]));
          expect(unknown.size).toBe(3);
          expect(await getText(store, 'known')).toBe('abcdefg');
          expect(await getText(store, 'unknown')).toBe('xyz');
        },
        timeout,
      );

      it(
        'stores an empty object, from bytes and from an empty stream',
        async () => {
          const a = await put('empty-a', new Uint8Array(0));
          const b = await put('empty-b', streamOf([]));
          expect([a.size, b.size]).toEqual([0, 0]);
          expect((await store.head('empty-b'))?.size).toBe(0);
          expect(await getText(store, 'empty-a')).toBe('');
          expect(await getText(store, 'empty-b')).toBe('');
        },
        timeout,
      );

      it(
        'gives a new etag when the content changes, and the same bytes to every reader',
        async () => {
          const first = await put('k', 'one');
          const second = await put('k', 'two!');
          expect(second.etag).not.toBe(first.etag);
          expect(second.size).toBe(4);
          expectSameObject(await store.head('k'), second);
          expect(await getText(store, 'k')).toBe('two!');
        },
        timeout,
      );

      it(
        'answers a missing key: get NOT_FOUND, head undefined, delete succeeds',
        async () => {
          const error = await expectStorageError(store.get('no/such/key'), 'NOT_FOUND');
          expect(error.message).toContain('no/such/key');
          expect(await store.head('no/such/key')).toBeUndefined();
          await expect(store.delete('no/such/key')).resolves.toBeUndefined();
          await expectStorageError(store.get('no/such/key', { range: { offset: 0 } }), 'NOT_FOUND');
          await expectStorageError(store.get('no/such/key', { ifMatch: 'x' }), 'NOT_FOUND');
          await expectStorageError(store.get('no/such/key', { ifNoneMatch: 'x' }), 'NOT_FOUND');
        },
        timeout,
      );

      it(
        'deletes an object and only that object',
        async () => {
          await put('d/1', '1');
          await put('d/2', '2');
          await store.delete('d/1');
          expect(await store.head('d/1')).toBeUndefined();
          await expectStorageError(store.get('d/1'), 'NOT_FOUND');
          expect(await getText(store, 'd/2')).toBe('2');
          const page = await store.list({ prefix: 'd/' });
          expect(page.objects.map((o) => o.key)).toEqual(['d/2']);
        },
        timeout,
      );

      it(
        'keeps keys with spaces, unicode, %, +, = and dots inside names',
        async () => {
          const keys = [
            'targets/a b.txt',
            'targets/ünï/çødé.json',
            'targets/100%25 real+plus=eq&amp.bin',
            'targets/.hidden',
            'targets/..x',
            'targets/x..',
            'targets/~tilde',
            'targets/emoji-🙂',
          ];
          for (const [i, key] of keys.entries()) await put(key, `value ${i}`);
          for (const [i, key] of keys.entries()) {
            expect(await getText(store, key)).toBe(`value ${i}`);
            expect((await store.head(key))?.key).toBe(key);
          }
          const { keys: listed } = await listAll(store, 'targets/', 1000);
          expect(listed).toEqual([...keys].sort(compareKeys));
        },
        timeout,
      );

      if (nestedKeys === 'kept') {
        it(
          'keeps a key and keys below it side by side',
          async () => {
            await put('n/x', 'file');
            await put('n/x/y', 'below');
            expect(await getText(store, 'n/x')).toBe('file');
            expect(await getText(store, 'n/x/y')).toBe('below');
            expect((await listAll(store, 'n/', 1)).keys).toEqual(['n/x', 'n/x/y']);
          },
          timeout,
        );
      } else if (nestedKeys === 'refused') {
        it(
          'refuses a key that would nest under another key, or hold others, with INVALID_KEY',
          async () => {
            await put('n/x', 'file');
            await expectStorageError(put('n/x/y', 'below'), 'INVALID_KEY');
            await put('n/z/y', 'below');
            await expectStorageError(put('n/z', 'file'), 'INVALID_KEY');
            expect(await store.head('n/x/y')).toBeUndefined();
            expect(await store.head('n/z')).toBeUndefined();
            await expectStorageError(store.get('n/x/y'), 'NOT_FOUND');
            await expectStorageError(store.get('n/z'), 'NOT_FOUND');
            expect((await listAll(store, 'n/', 1)).keys).toEqual(['n/x', 'n/z/y']);
          },
          timeout,
        );
      }

      if (keepsContentType) {
        it(
          'keeps the content type',
          async () => {
            await put('ct.json', '{}', { contentType: 'application/json' });
            expect((await store.head('ct.json'))?.contentType).toBe('application/json');
            expect(found(await store.get('ct.json')).info.contentType).toBe('application/json');
          },
          timeout,
        );
      }

      it(
        'refuses bad keys with INVALID_KEY before touching storage',
        async () => {
          const badKeys = [
            '',
            '/abs',
            '../up',
            'a/../../up',
            'a/./b',
            'a//b',
            'trailing/',
            'nul\u0000byte',
            'new\nline',
            'back\\slash',
            'x'.repeat(1025),
          ];
          for (const key of badKeys) {
            await expectStorageError(store.get(key), 'INVALID_KEY');
            await expectStorageError(store.head(key), 'INVALID_KEY');
            await expectStorageError(put(key, 'x'), 'INVALID_KEY');
            await expectStorageError(store.delete(key), 'INVALID_KEY');
          }
          await expectStorageError(store.list({ prefix: '../' }), 'INVALID_KEY');
          await expectStorageError(store.list({ prefix: '/a' }), 'INVALID_KEY');
          expect((await store.list({ prefix: '' })).objects).toEqual([]);
        },
        timeout,
      );

      it(
        'stores nothing and keeps the previous object when the body stream fails midway',
        async () => {
          const before = await put('atomic', 'previous');
          const failing = streamOf(
            [bytes('partial '), bytes('content')],
            new Error('source broke'),
          );
          await expect(put('atomic', failing)).rejects.toThrow();
          expectSameObject(await store.head('atomic'), before);
          expect(await getText(store, 'atomic')).toBe('previous');
          await expect(put('fresh', streamOf([bytes('p')], new Error('broke')))).rejects.toThrow();
          expect(await store.head('fresh')).toBeUndefined();
          const { keys } = await listAll(store, '', 1000);
          expect(keys).toEqual(['atomic']);
        },
        timeout,
      );
    });

    describe('ranges', () => {
      // 26 bytes: a..z, so every offset names its letter.
      const alphabet = 'abcdefghijklmnopqrstuvwxyz';

      async function ranged(range: Parameters<BlobStore['get']>[1] & object) {
        const result = found(await store.get('r', range));
        return { text: await readText(result.body), range: result.range, size: result.info.size };
      }

      beforeEach(async () => {
        await put('r', alphabet);
      });

      it(
        'serves the first byte, the last byte and a middle slice',
        async () => {
          expect(await ranged({ range: { offset: 0, length: 1 } })).toEqual({
            text: 'a',
            range: { offset: 0, length: 1 },
            size: 26,
          });
          expect(await ranged({ range: { offset: 25, length: 1 } })).toEqual({
            text: 'z',
            range: { offset: 25, length: 1 },
            size: 26,
          });
          expect(await ranged({ range: { offset: 25 } })).toEqual({
            text: 'z',
            range: { offset: 25, length: 1 },
            size: 26,
          });
          expect(await ranged({ range: { offset: 3, length: 4 } })).toEqual({
            text: 'defg',
            range: { offset: 3, length: 4 },
            size: 26,
          });
          expect(await ranged({ range: { offset: 0 } })).toEqual({
            text: alphabet,
            range: { offset: 0, length: 26 },
            size: 26,
          });
        },
        timeout,
      );

      it(
        'serves a suffix, and the whole object for a suffix longer than it',
        async () => {
          expect(await ranged({ range: { suffix: 1 } })).toEqual({
            text: 'z',
            range: { offset: 25, length: 1 },
            size: 26,
          });
          expect(await ranged({ range: { suffix: 5 } })).toEqual({
            text: 'vwxyz',
            range: { offset: 21, length: 5 },
            size: 26,
          });
          expect(await ranged({ range: { suffix: 26 } })).toEqual({
            text: alphabet,
            range: { offset: 0, length: 26 },
            size: 26,
          });
          expect(await ranged({ range: { suffix: 1000 } })).toEqual({
            text: alphabet,
            range: { offset: 0, length: 26 },
            size: 26,
          });
        },
        timeout,
      );

      it(
        'cuts a range that runs past the end at the end',
        async () => {
          expect(await ranged({ range: { offset: 20, length: 100 } })).toEqual({
            text: 'uvwxyz',
            range: { offset: 20, length: 6 },
            size: 26,
          });
        },
        timeout,
      );

      it(
        'refuses a range that starts at or past the end with RANGE_NOT_SATISFIABLE and the size',
        async () => {
          for (const offset of [26, 27, 1_000_000]) {
            const error = await expectStorageError(
              store.get('r', { range: { offset, length: 1 } }),
              'RANGE_NOT_SATISFIABLE',
            );
            expect(error.size).toBe(26);
            const open = await expectStorageError(
              store.get('r', { range: { offset } }),
              'RANGE_NOT_SATISFIABLE',
            );
            expect(open.size).toBe(26);
          }
        },
        timeout,
      );

      it(
        'refuses every range of an empty object with RANGE_NOT_SATISFIABLE and size 0',
        async () => {
          await put('empty', new Uint8Array(0));
          for (const range of [{ offset: 0 }, { offset: 0, length: 1 }, { suffix: 1 }]) {
            const error = await expectStorageError(
              store.get('empty', { range }),
              'RANGE_NOT_SATISFIABLE',
            );
            expect(error.size).toBe(0);
          }
        },
        timeout,
      );

      it(
        'refuses malformed ranges with INVALID_ARGUMENT',
        async () => {
          const bad = [
            { offset: -1 },
            { offset: 1.5 },
            { offset: 0, length: 0 },
            { offset: 0, length: -3 },
            { offset: Number.NaN },
            { suffix: 0 },
            { suffix: -1 },
            { suffix: 2.5 },
          ];
          for (const range of bad) {
            await expectStorageError(store.get('r', { range }), 'INVALID_ARGUMENT');
          }
        },
        timeout,
      );

      it(
        'serves ranges of a large object in the right place',
        async () => {
          const size = 3 * 1024 * 1024 + 17;
          await put('big', patternStream(7, size));
          for (const [offset, length] of [
            [0, 1],
            [size - 1, 1],
            [1024 * 1024 - 3, 70_000],
            [size - 100, 100],
          ] as const) {
            const result = found(await store.get('big', { range: { offset, length } }));
            expect(result.range).toEqual({ offset, length });
            expect(result.info.size).toBe(size);
            expect(await expectPattern(result.body, 7, offset)).toBe(length);
          }
          const suffix = found(await store.get('big', { range: { suffix: 4096 } }));
          expect(suffix.range).toEqual({ offset: size - 4096, length: 4096 });
          expect(await expectPattern(suffix.body, 7, size - 4096)).toBe(4096);
        },
        timeout,
      );
    });

    describe('conditional reads', () => {
      it(
        'serves the object when If-Match holds and refuses with PRECONDITION_FAILED when not',
        async () => {
          const info = await put('c', 'content');
          expect(await readText(found(await store.get('c', { ifMatch: info.etag })).body)).toBe(
            'content',
          );
          await expectStorageError(
            store.get('c', { ifMatch: `${info.etag}x` }),
            'PRECONDITION_FAILED',
          );
          await expectStorageError(
            store.get('c', { ifMatch: 'not-the-etag', range: { offset: 0, length: 1 } }),
            'PRECONDITION_FAILED',
          );
          await put('c', 'changed');
          await expectStorageError(store.get('c', { ifMatch: info.etag }), 'PRECONDITION_FAILED');
        },
        timeout,
      );

      it(
        'answers notModified with the info and no body when If-None-Match names the current etag',
        async () => {
          const info = await put('c', 'content');
          const result = await store.get('c', { ifNoneMatch: info.etag });
          expect(result.notModified).toBe(true);
          expect('body' in result).toBe(false);
          expectSameObject(result.info, info);
          const ranged = await store.get('c', {
            ifNoneMatch: info.etag,
            range: { offset: 1, length: 2 },
          });
          expect(ranged.notModified).toBe(true);
        },
        timeout,
      );

      it(
        'serves the body when If-None-Match names another etag',
        async () => {
          const old = await put('c', 'old');
          const current = await put('c', 'new content');
          const result = found(await store.get('c', { ifNoneMatch: old.etag }));
          expectSameObject(result.info, current);
          expect(await readText(result.body)).toBe('new content');
          const ranged = found(
            await store.get('c', { ifNoneMatch: old.etag, range: { offset: 4, length: 3 } }),
          );
          expect(await readText(ranged.body)).toBe('con');
        },
        timeout,
      );

      it(
        'checks If-Match before the range: a stale etag fails even for a range past the end',
        async () => {
          await put('c', 'short');
          await expectStorageError(
            store.get('c', { ifMatch: 'stale', range: { offset: 100 } }),
            'PRECONDITION_FAILED',
          );
        },
        timeout,
      );
    });

    describe('conditional writes', () => {
      it(
        'creates with If-None-Match: * only when the key is free',
        async () => {
          const created = await put('once', 'first', { ifNoneMatch: '*' });
          expect(created.size).toBe(5);
          await expectStorageError(
            put('once', 'second', { ifNoneMatch: '*' }),
            'PRECONDITION_FAILED',
          );
          await expectStorageError(
            put('once', streamOf([bytes('stream'), bytes('ed')]), { ifNoneMatch: '*' }),
            'PRECONDITION_FAILED',
          );
          expectSameObject(await store.head('once'), created);
          expect(await getText(store, 'once')).toBe('first');
          const { keys } = await listAll(store, '', 1000);
          expect(keys).toEqual(['once']);
        },
        timeout,
      );

      it(
        'creates again with If-None-Match: * after a delete',
        async () => {
          await put('again', 'one', { ifNoneMatch: '*' });
          await store.delete('again');
          await put('again', 'two', { ifNoneMatch: '*' });
          expect(await getText(store, 'again')).toBe('two');
        },
        timeout,
      );

      it(
        'swaps with If-Match only while the etag is current',
        async () => {
          const v1 = await put('cas', 'v1');
          const v2 = await put('cas', 'v2', { ifMatch: v1.etag });
          expect(v2.etag).not.toBe(v1.etag);
          expect(await getText(store, 'cas')).toBe('v2');
          await expectStorageError(put('cas', 'v3', { ifMatch: v1.etag }), 'PRECONDITION_FAILED');
          await expectStorageError(
            put('cas', streamOf([bytes('v'), bytes('3')]), { ifMatch: v1.etag }),
            'PRECONDITION_FAILED',
          );
          expectSameObject(await store.head('cas'), v2);
          const v3 = await put('cas', streamOf([bytes('v'), bytes('3')]), { ifMatch: v2.etag });
          expectSameObject(await store.head('cas'), v3);
          expect(await getText(store, 'cas')).toBe('v3');
        },
        timeout,
      );

      it(
        'refuses If-Match on a missing key with PRECONDITION_FAILED and creates nothing',
        async () => {
          await expectStorageError(
            put('absent', 'x', { ifMatch: 'anything' }),
            'PRECONDITION_FAILED',
          );
          await put('taken', 'x');
          await expectStorageError(
            store.copy('no/such', 'taken', { ifNoneMatch: '*' }),
            'NOT_FOUND',
          );
          await store.delete('taken');
          const gone = await put('gone', 'x');
          await store.delete('gone');
          await expectStorageError(put('gone', 'y', { ifMatch: gone.etag }), 'PRECONDITION_FAILED');
          expect(await store.head('absent')).toBeUndefined();
          expect(await store.head('gone')).toBeUndefined();
        },
        timeout,
      );

      it(
        'refuses If-Match together with If-None-Match: * as INVALID_ARGUMENT',
        async () => {
          const info = await put('both', 'x');
          await expectStorageError(
            put('both', 'y', { ifMatch: info.etag, ifNoneMatch: '*' }),
            'INVALID_ARGUMENT',
          );
          expect(await getText(store, 'both')).toBe('x');
        },
        timeout,
      );

      it(
        `lets exactly one of two writers win a compare-and-swap (${races} races)`,
        async () => {
          let base = await put('race/cas', 'base');
          for (let round = 0; round < races; round++) {
            const bodies = [`round ${round} writer A`, `round ${round} writer B ...`];
            const { winners, values, errors } = await race(
              put('race/cas', bodies[0] ?? '', { ifMatch: base.etag }),
              put('race/cas', bodies[1] ?? '', { ifMatch: base.etag }),
            );
            expect(winners).toHaveLength(1);
            expect(errors).toHaveLength(1);
            expect(errors[0]).toBeInstanceOf(StorageError);
            expect((errors[0] as StorageError).code).toBe('PRECONDITION_FAILED');
            const winner = winners[0] ?? -1;
            const won = values[winner];
            if (won === undefined) throw new Error('no winner info');
            expect(await getText(store, 'race/cas')).toBe(bodies[winner]);
            expectSameObject(await store.head('race/cas'), won);
            base = won;
          }
        },
        timeout * 2,
      );

      it(
        `lets exactly one of two writers create a key with If-None-Match: * (${races} races)`,
        async () => {
          for (let round = 0; round < races; round++) {
            const key = `race/create-${round}`;
            const bodies = [`A${round}`, `B${round}!`];
            const { winners, values, errors } = await race(
              put(key, bodies[0] ?? '', { ifNoneMatch: '*' }),
              put(key, bodies[1] ?? '', { ifNoneMatch: '*' }),
            );
            expect(winners).toHaveLength(1);
            expect((errors[0] as StorageError | undefined)?.code).toBe('PRECONDITION_FAILED');
            const winner = winners[0] ?? -1;
            expect(await getText(store, key)).toBe(bodies[winner]);
            expect((await store.head(key))?.etag).toBe(values[winner]?.etag);
          }
        },
        timeout * 2,
      );
    });

    describe('copy', () => {
      it(
        'makes an identical object at the new key and leaves the source as it was',
        async () => {
          const source = await put('staging/upload-1', 'the bytes of a target');
          const copied = await store.copy('staging/upload-1', 'targets/abc.bin');
          expect(copied.key).toBe('targets/abc.bin');
          expect(copied.size).toBe(21);
          expect(copied.etag).toMatch(/^[^"\s]+$/);
          expect(Math.abs(copied.lastModified.getTime() - Date.now())).toBeLessThan(5 * 60_000);
          expectSameObject(await store.head('targets/abc.bin'), copied);
          const got = found(await store.get('targets/abc.bin'));
          expectSameObject(got.info, copied);
          expect(await readText(got.body)).toBe('the bytes of a target');
          expectSameObject(await store.head('staging/upload-1'), source);
          expect(await getText(store, 'staging/upload-1')).toBe('the bytes of a target');
          expect((await listAll(store, '', 1000)).keys).toEqual([
            'staging/upload-1',
            'targets/abc.bin',
          ]);
        },
        timeout,
      );

      it(
        'copies a multi-MiB object and an empty one byte for byte, with and without a condition',
        async () => {
          const size = 3 * 1024 * 1024 + 17;
          await put('big', patternStream(8, size));
          const plain = await store.copy('big', 'copies/big');
          expect(plain.size).toBe(size);
          const once = await store.copy('big', 'copies/big-once', { ifNoneMatch: '*' });
          expect(once.size).toBe(size);
          for (const info of [plain, once]) {
            const result = found(await store.get(info.key));
            expectSameObject(result.info, info);
            expect(await expectPattern(result.body, 8)).toBe(size);
          }
          await put('empty', new Uint8Array(0));
          expect((await store.copy('empty', 'copies/empty')).size).toBe(0);
          expect((await store.copy('empty', 'copies/empty-once', { ifNoneMatch: '*' })).size).toBe(
            0,
          );
          expect(await getText(store, 'copies/empty')).toBe('');
          expect((await store.head('copies/empty-once'))?.size).toBe(0);
        },
        timeout,
      );

      if (keepsContentType) {
        it(
          "keeps the source's content type, or sets the one given",
          async () => {
            await put('typed.json', '{}', { contentType: 'application/json' });
            const kept = await store.copy('typed.json', 'copies/kept.json');
            expect(kept.contentType).toBe('application/json');
            expect((await store.head('copies/kept.json'))?.contentType).toBe('application/json');
            const once = await store.copy('typed.json', 'copies/once.json', { ifNoneMatch: '*' });
            expect(once.contentType).toBe('application/json');
            expect((await store.head('copies/once.json'))?.contentType).toBe('application/json');
            const set = await store.copy('typed.json', 'copies/set.txt', {
              contentType: 'text/plain',
            });
            expect(set.contentType).toBe('text/plain');
            expect(found(await store.get('copies/set.txt')).info.contentType).toBe('text/plain');
            expect((await store.head('typed.json'))?.contentType).toBe('application/json');
          },
          timeout,
        );
      }

      it(
        'replaces an existing destination, and the copy does not follow its source',
        async () => {
          await put('a', 'source v1');
          const old = await put('b', 'the old destination');
          const copied = await store.copy('a', 'b');
          expect(copied.etag).not.toBe(old.etag);
          expect(await getText(store, 'b')).toBe('source v1');
          await put('a', 'source v2');
          expect(await getText(store, 'b')).toBe('source v1');
          await store.delete('a');
          expectSameObject(await store.head('b'), copied);
          expect(await getText(store, 'b')).toBe('source v1');
        },
        timeout,
      );

      it(
        'refuses a missing source with NOT_FOUND and creates nothing',
        async () => {
          const error = await expectStorageError(store.copy('no/such', 'dest'), 'NOT_FOUND');
          expect(error.message).toContain('no/such');
          await expectStorageError(
            store.copy('no/such', 'dest', { ifNoneMatch: '*' }),
            'NOT_FOUND',
          );
          await expectStorageError(
            store.copy('no/such', 'dest', { sourceIfMatch: 'anything' }),
            'NOT_FOUND',
          );
          await put('taken', 'x');
          await expectStorageError(
            store.copy('no/such', 'taken', { ifNoneMatch: '*' }),
            'NOT_FOUND',
          );
          await store.delete('taken');
          const gone = await put('gone', 'x');
          await store.delete('gone');
          await expectStorageError(
            store.copy('gone', 'dest', { sourceIfMatch: gone.etag }),
            'NOT_FOUND',
          );
          expect(await store.head('dest')).toBeUndefined();
          expect((await store.list({ prefix: '' })).objects).toEqual([]);
        },
        timeout,
      );

      it(
        'copies with If-None-Match: * only to a free key, and leaves an existing one unchanged',
        async () => {
          await put('src', 'new bytes');
          const existing = await put('dst', 'already here');
          await expectStorageError(
            store.copy('src', 'dst', { ifNoneMatch: '*' }),
            'PRECONDITION_FAILED',
          );
          expectSameObject(await store.head('dst'), existing);
          expect(await getText(store, 'dst')).toBe('already here');
          const created = await store.copy('src', 'fresh', { ifNoneMatch: '*' });
          expectSameObject(await store.head('fresh'), created);
          expect(await getText(store, 'fresh')).toBe('new bytes');
          await expectStorageError(
            store.copy('src', 'fresh', { ifNoneMatch: '*' }),
            'PRECONDITION_FAILED',
          );
          expectSameObject(await store.head('fresh'), created);
          expect((await listAll(store, '', 1000)).keys).toEqual(['dst', 'fresh', 'src']);
        },
        timeout,
      );

      it(
        "copies only while the source's etag is sourceIfMatch",
        async () => {
          const v1 = await put('src', 'v1');
          const v2 = await put('src', 'v2!');
          await expectStorageError(
            store.copy('src', 'dst', { sourceIfMatch: v1.etag }),
            'PRECONDITION_FAILED',
          );
          await expectStorageError(
            store.copy('src', 'dst', { sourceIfMatch: v1.etag, ifNoneMatch: '*' }),
            'PRECONDITION_FAILED',
          );
          expect(await store.head('dst')).toBeUndefined();
          const copied = await store.copy('src', 'dst', { sourceIfMatch: v2.etag });
          expect(copied.size).toBe(3);
          expect(await getText(store, 'dst')).toBe('v2!');
          const once = await store.copy('src', 'once', {
            sourceIfMatch: v2.etag,
            ifNoneMatch: '*',
          });
          expectSameObject(await store.head('once'), once);
          expect(await getText(store, 'once')).toBe('v2!');
        },
        timeout,
      );

      it(
        'copies between keys with spaces, unicode, %, +, = and other special characters',
        async () => {
          const names = [
            'a b.txt',
            'ünï/çødé.json',
            '100%25 real+plus=eq&amp.bin',
            "!'()*~ 🙂",
            'q?x#y;z,@$',
            '%2F%20+',
          ];
          for (const [i, name] of names.entries()) await put(`in/${name}`, `value ${i}`);
          for (const [i, name] of names.entries()) {
            const copied = await store.copy(`in/${name}`, `out/${name}`);
            expect(copied.key).toBe(`out/${name}`);
            expect(copied.size).toBe(`value ${i}`.length);
            const once = await store.copy(`in/${name}`, `once/${name} +`, { ifNoneMatch: '*' });
            expect(once.key).toBe(`once/${name} +`);
          }
          for (const [i, name] of names.entries()) {
            expect(await getText(store, `out/${name}`)).toBe(`value ${i}`);
            expect(await getText(store, `once/${name} +`)).toBe(`value ${i}`);
            expect((await store.head(`out/${name}`))?.key).toBe(`out/${name}`);
          }
          const expected = names.map((name) => `out/${name}`).sort(compareKeys);
          expect((await listAll(store, 'out/', 1000)).keys).toEqual(expected);
        },
        timeout,
      );

      it(
        'refuses bad keys, a key copied onto itself and bad options, before touching storage',
        async () => {
          await put('ok', 'x');
          for (const key of [
            '',
            '/abs',
            '../up',
            'a//b',
            'trailing/',
            'new\nline',
            'back\\slash',
          ]) {
            await expectStorageError(store.copy(key, 'dest'), 'INVALID_KEY');
            await expectStorageError(store.copy('ok', key), 'INVALID_KEY');
          }
          await expectStorageError(store.copy('x'.repeat(1025), 'dest'), 'INVALID_KEY');
          await expectStorageError(store.copy('ok', 'x'.repeat(1025)), 'INVALID_KEY');
          await expectStorageError(store.copy('ok', 'ok'), 'INVALID_ARGUMENT');
          await expectStorageError(
            store.copy('ok', 'dest', { ifNoneMatch: 'etag' as '*' }),
            'INVALID_ARGUMENT',
          );
          for (const sourceIfMatch of ['', '"quoted"', 'two words']) {
            await expectStorageError(
              store.copy('ok', 'dest', { sourceIfMatch }),
              'INVALID_ARGUMENT',
            );
          }
          expect((await listAll(store, '', 1000)).keys).toEqual(['ok']);
        },
        timeout,
      );

      it(
        `lets exactly one of two create-only copies to one key win (${races} races)`,
        async () => {
          const sources = ['race/from-a', 'race/from-b'];
          const texts = ['copied from A', 'copied from B, longer'];
          for (const [i, key] of sources.entries()) await put(key, texts[i] ?? '');
          for (let round = 0; round < races; round++) {
            const key = `race/copy-${round}`;
            const { winners, values, errors } = await race(
              store.copy(sources[0] ?? '', key, { ifNoneMatch: '*' }),
              store.copy(sources[1] ?? '', key, { ifNoneMatch: '*' }),
            );
            expect(winners).toHaveLength(1);
            expect((errors[0] as StorageError | undefined)?.code).toBe('PRECONDITION_FAILED');
            const winner = winners[0] ?? -1;
            expect(await getText(store, key)).toBe(texts[winner]);
            expect((await store.head(key))?.etag).toBe(values[winner]?.etag);
          }
        },
        timeout * 2,
      );
    });

    describe('list', () => {
      // Keys that a naive directory walk or a UTF-16 sort would put in the wrong order:
      // '-' < '/' < '0' in bytes, and U+FFFD sorts after U+1F642 in UTF-16 but before it in UTF-8.
      const tricky = ['l/a-c', 'l/a/b', 'l/a/bc', 'l/a0', 'l/z\u{fffd}', 'l/z\u{1f642}'];

      it(
        'lists past one page: every key exactly once, in UTF-8 byte order',
        async () => {
          const keys = [...tricky];
          for (let i = 0; i < 17; i++) keys.push(`l/n/${String(i).padStart(3, '0')}`);
          await Promise.all(keys.map((key, i) => put(key, 'x'.repeat(i))));
          await put('outside', 'x');
          await put('l0', 'x');
          const expected = [...keys].sort(compareKeys);
          expect(expected.slice(0, 4)).toEqual(['l/a-c', 'l/a/b', 'l/a/bc', 'l/a0']);

          for (const limit of [1, 4, 5, 23, 1000]) {
            const { keys: listed, pages } = await listAll(store, 'l/', limit);
            expect(listed).toEqual(expected);
            for (const page of pages) expect(page.length).toBeLessThanOrEqual(limit);
            expect(pages.length).toBeGreaterThanOrEqual(Math.ceil(expected.length / limit));
          }
        },
        timeout * 2,
      );

      it(
        'gives each listed object its size and etag',
        async () => {
          const a = await put('m/a', 'aaaa');
          const b = await put('m/b', '');
          const page = await store.list({ prefix: 'm/' });
          expect(page.cursor).toBeUndefined();
          expect(page.objects.map((o) => [o.key, o.size, o.etag])).toEqual([
            ['m/a', 4, a.etag],
            ['m/b', 0, b.etag],
          ]);
          for (const o of page.objects) expect(o.lastModified).toBeInstanceOf(Date);
        },
        timeout,
      );

      it(
        'matches a prefix that does not end in / against key beginnings',
        async () => {
          for (const key of tricky) await put(key, 'x');
          await put('l/b', 'x');
          const { keys } = await listAll(store, 'l/a', 2);
          expect(keys).toEqual(['l/a-c', 'l/a/b', 'l/a/bc', 'l/a0']);
          expect((await listAll(store, 'l/a/b', 1)).keys).toEqual(['l/a/b', 'l/a/bc']);
          expect((await listAll(store, 'l/a/', 10)).keys).toEqual(['l/a/b', 'l/a/bc']);
          expect((await listAll(store, 'l/z', 10)).keys).toEqual(['l/z\u{fffd}', 'l/z\u{1f642}']);
        },
        timeout,
      );

      it(
        'answers an empty page without a cursor for a prefix with no objects',
        async () => {
          await put('p/x', 'x');
          expect(await store.list({ prefix: 'q/' })).toEqual({ objects: [] });
          expect(await store.list({ prefix: 'p/x/' })).toEqual({ objects: [] });
          expect(await store.list({ prefix: 'p/y' })).toEqual({ objects: [] });
        },
        timeout,
      );

      it(
        'sees objects put and deleted between pages without repeating or skipping others',
        async () => {
          for (const k of ['s/1', 's/3', 's/5', 's/7']) await put(k, 'x');
          const first = await store.list({ prefix: 's/', limit: 2 });
          expect(first.objects.map((o) => o.key)).toEqual(['s/1', 's/3']);
          await put('s/0', 'x');
          await put('s/6', 'x');
          await store.delete('s/5');
          const rest: string[] = [];
          let cursor = first.cursor;
          while (cursor !== undefined) {
            const page = await store.list({ prefix: 's/', limit: 2, cursor });
            rest.push(...page.objects.map((o) => o.key));
            cursor = page.cursor;
          }
          expect(rest).toEqual(['s/6', 's/7']);
        },
        timeout,
      );

      it(
        'refuses a limit below 1 or not an integer with INVALID_ARGUMENT',
        async () => {
          for (const limit of [0, -1, 1.5, Number.NaN]) {
            await expectStorageError(store.list({ prefix: '', limit }), 'INVALID_ARGUMENT');
          }
        },
        timeout,
      );
    });

    describe('streamed upload of unknown length', () => {
      it(
        `round-trips the exact bytes of a ${(streamedUploadBytes / 1024 / 1024).toFixed(1)} MiB stream in odd-sized chunks`,
        async () => {
          const info = await put('stream/blob.bin', patternStream(42, streamedUploadBytes));
          expect(info.size).toBe(streamedUploadBytes);
          expect((await store.head('stream/blob.bin'))?.size).toBe(streamedUploadBytes);
          const result = found(await store.get('stream/blob.bin'));
          expect(result.info.size).toBe(streamedUploadBytes);
          expect(await expectPattern(result.body, 42)).toBe(streamedUploadBytes);
          // The same through a create-only put, which S3 adapters must carry to the last step.
          const created = await put('stream/once.bin', patternStream(43, streamedUploadBytes), {
            ifNoneMatch: '*',
          });
          expect(created.size).toBe(streamedUploadBytes);
          await expectStorageError(
            put('stream/once.bin', patternStream(44, streamedUploadBytes), { ifNoneMatch: '*' }),
            'PRECONDITION_FAILED',
          );
          expect(await expectPattern(found(await store.get('stream/once.bin')).body, 43)).toBe(
            streamedUploadBytes,
          );
          // And a compare-and-swap of a multipart body: a stale etag loses, a current one wins.
          await expectStorageError(
            put('stream/blob.bin', patternStream(45, streamedUploadBytes), {
              ifMatch: created.etag,
            }),
            'PRECONDITION_FAILED',
          );
          const swapped = await put('stream/blob.bin', patternStream(46, streamedUploadBytes), {
            ifMatch: info.etag,
          });
          expect(swapped.etag).not.toBe(info.etag);
          expect(await expectPattern(found(await store.get('stream/blob.bin')).body, 46)).toBe(
            streamedUploadBytes,
          );
        },
        timeout * 4,
      );
    });

    for (const unavailable of options.unavailable ?? []) {
      describe(`when the service is unavailable (${unavailable.name})`, () => {
        let down: ContractStore;
        beforeEach(async () => {
          down = await unavailable.make();
        }, timeout);
        afterEach(async () => {
          await down.cleanup?.();
        }, timeout);

        it(
          'fails get with UNAVAILABLE, in bounded time',
          async () => {
            await expectStorageError(down.store.get('k'), 'UNAVAILABLE');
          },
          unavailableTimeout,
        );
        it(
          'fails head with UNAVAILABLE, in bounded time',
          async () => {
            await expectStorageError(down.store.head('k'), 'UNAVAILABLE');
          },
          unavailableTimeout,
        );
        it(
          'fails put (bytes and stream) with UNAVAILABLE, in bounded time',
          async () => {
            await expectStorageError(down.store.put('k', bytes('x')), 'UNAVAILABLE');
            await expectStorageError(
              down.store.put('k', streamOf([bytes('a'), bytes('b')])),
              'UNAVAILABLE',
            );
          },
          unavailableTimeout,
        );
        it(
          'fails copy with UNAVAILABLE, in bounded time',
          async () => {
            await expectStorageError(down.store.copy('k', 'l'), 'UNAVAILABLE');
            await expectStorageError(
              down.store.copy('k', 'l', { ifNoneMatch: '*' }),
              'UNAVAILABLE',
            );
          },
          unavailableTimeout,
        );
        it(
          'fails delete and list with UNAVAILABLE, in bounded time',
          async () => {
            await expectStorageError(down.store.delete('k'), 'UNAVAILABLE');
            await expectStorageError(down.store.list({ prefix: '' }), 'UNAVAILABLE');
          },
          unavailableTimeout,
        );
      });
    }
  });
}
