/**
 * The repository a pull-through or sync mirror copies from, over HTTP. Everything that comes
 * back is untrusted until checked: metadata goes through the verify core, blobs through a
 * ContentVerifier, and nothing reaches a public key of the mirror's store before the check
 * passed (`copyVerified`).
 *
 * Every request is bounded twice: in time (no answer within `timeoutMs`, or a body that stalls
 * for that long between chunks, is UPSTREAM_UNAVAILABLE) and in size (a body longer than the
 * cap is UPSTREAM_INVALID as soon as the byte past it arrives — TUF's "endless data" attack).
 */
import type { BlobStore } from '@cairn/storage/blob-store';
import { isStorageError } from '@cairn/storage/errors';
import { concatBytes } from '@cairn/verify/encoding';
import { isVerifyError } from '@cairn/verify/errors';
import { ContentVerifier, type HashPort } from '@cairn/verify/hash';
import { EdgeError, isEdgeError } from './errors.js';
import { TIMESTAMP_KEY, type MetadataReader, type StoredBytes } from './verified-source.js';

export interface UpstreamOptions {
  /** The repository's base URL, ending in `/`. */
  readonly baseUrl: string;
  /** Default the global fetch. */
  readonly fetch?: typeof fetch | undefined;
  /** Until the answer's headers, and then between two chunks of its body. */
  readonly timeoutMs: number;
}

export interface UpstreamObject {
  readonly bytes: Uint8Array;
  /** Upstream's entity tag, without quotes (W/ kept: it is only ever sent back). */
  readonly etag: string | undefined;
  readonly lastModified: Date | undefined;
}

export interface UpstreamStream {
  readonly body: ReadableStream<Uint8Array>;
  /** Content-Length, when upstream sent one and no content coding. */
  readonly length: number | undefined;
}

/** The expectation an immutable object is checked against before it is stored. */
export interface Expected {
  /** Exact, when verified metadata gives it; otherwise only the cap applies. */
  readonly length?: number | undefined;
  /** Every listed hash must match; at least the sha256 of the hash-prefixed name. */
  readonly hashes: Readonly<Record<string, string>>;
  /** The most bytes read when `length` is unknown. */
  readonly cap: number;
}

/** Where bytes are staged before they are known good: a prefix the edge never serves. */
export const STAGING_PREFIX = '_edge/staging/';

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause;
  // Node's fetch hides the real reason (ECONNREFUSED, ...) in `cause`.
  if (cause instanceof Error && cause.message !== '') return `${error.message}: ${cause.message}`;
  return error.message;
}

function unquote(etag: string | null): string | undefined {
  if (etag === null) return undefined;
  const match = /^(W\/)?"([^"]*)"$/.exec(etag.trim());
  return match === null ? etag.trim() : `${match[1] ?? ''}${match[2] ?? ''}`;
}

function quote(etag: string): string {
  return etag.startsWith('W/') ? `W/"${etag.slice(2)}"` : `"${etag}"`;
}

/** The URL path of a storage key: each segment percent-encoded, so a name is never a query. */
function encodeKey(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

interface Exchange {
  readonly response: Response;
  readonly read: (
    reader: ReadableStreamDefaultReader<Uint8Array>,
  ) => Promise<ReadableStreamReadResult<Uint8Array>>;
}

async function discard(body: ReadableStream<Uint8Array> | null): Promise<void> {
  await body?.cancel().catch(() => undefined);
}

export class Upstream {
  readonly baseUrl: string;
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;
  #requests = 0;

  constructor(options: UpstreamOptions) {
    this.baseUrl = options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`;
    // Unbound, workerd's fetch throws "Illegal invocation".
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#timeoutMs = options.timeoutMs;
  }

  /** Requests made so far (for logs and tests). */
  get requests(): number {
    return this.#requests;
  }

  url(key: string): string {
    return `${this.baseUrl}${encodeKey(key)}`;
  }

  /**
   * Sends the request; resolves once the headers are in, or rejects UPSTREAM_UNAVAILABLE after
   * `timeoutMs`. `read` takes the next body chunk under the same deadline, restarted for each
   * chunk (an idle timer: a large body may take long, a stalled one may not). The deadline is
   * raced, not only signalled, so a fetch that ignores the abort cannot hang a request.
   */
  async #request(key: string, headers: Record<string, string>): Promise<Exchange> {
    const controller = new AbortController();
    const url = this.url(key);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = () => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    };
    const within = <T>(work: Promise<T>, what: string): Promise<T> => {
      done();
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          controller.abort();
          reject(
            new EdgeError(
              'UPSTREAM_UNAVAILABLE',
              `GET ${url}: ${what} within ${this.#timeoutMs} ms`,
            ),
          );
        }, this.#timeoutMs);
      });
      return Promise.race([work, deadline]).finally(done);
    };
    this.#requests++;
    let response: Response;
    try {
      response = await within(
        this.#fetch(url, { headers, signal: controller.signal, redirect: 'follow' }),
        'no answer',
      );
    } catch (error) {
      if (isEdgeError(error)) throw error;
      throw new EdgeError('UPSTREAM_UNAVAILABLE', `GET ${url}: ${describe(error)}`, {
        cause: error,
      });
    }
    return {
      response,
      read: async (reader) => {
        try {
          return await within(reader.read(), 'no data');
        } catch (error) {
          await reader.cancel().catch(() => undefined);
          if (isEdgeError(error)) throw error;
          throw new EdgeError('UPSTREAM_UNAVAILABLE', `GET ${url}: ${describe(error)}`, {
            cause: error,
          });
        }
      },
    };
  }

  /** Maps a non-200 answer: undefined for a missing object, an EdgeError otherwise. */
  async #refuse(key: string, response: Response): Promise<undefined> {
    await discard(response.body);
    // 403 is absent too: a public S3-style bucket without list rights answers 403 for a miss.
    if (response.status === 404 || response.status === 403) return undefined;
    throw new EdgeError('UPSTREAM_UNAVAILABLE', `GET ${this.url(key)}: HTTP ${response.status}`);
  }

  #declaredLength(response: Response): number | undefined {
    // Content-Length counts encoded bytes; only without a content coding is it the body's.
    const encoding = response.headers.get('content-encoding');
    if (encoding !== null && encoding !== 'identity') return undefined;
    const text = response.headers.get('content-length');
    return text !== null && /^\d+$/.test(text) ? Number(text) : undefined;
  }

  #tooLarge(key: string, cap: number): EdgeError {
    return new EdgeError(
      'UPSTREAM_INVALID',
      `GET ${this.url(key)}: more than the ${cap} bytes allowed`,
    );
  }

  /**
   * A whole small object (metadata), at most `maxLength` bytes. Undefined when upstream has no
   * such object; `'not-modified'` when `ifNoneMatch` was sent and still holds.
   */
  async bytes(
    key: string,
    maxLength: number,
    options: { readonly ifNoneMatch?: string | undefined } = {},
  ): Promise<UpstreamObject | 'not-modified' | undefined> {
    const headers: Record<string, string> = {};
    if (options.ifNoneMatch !== undefined) headers['if-none-match'] = quote(options.ifNoneMatch);
    const { response, read } = await this.#request(key, headers);
    if (response.status === 304 && options.ifNoneMatch !== undefined) {
      await discard(response.body);
      return 'not-modified';
    }
    if (response.status !== 200) return this.#refuse(key, response);
    const declared = this.#declaredLength(response);
    if (declared !== undefined && declared > maxLength) {
      await discard(response.body);
      throw this.#tooLarge(key, maxLength);
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    const reader = (response.body ?? new ReadableStream<Uint8Array>()).getReader();
    for (;;) {
      const next = await read(reader);
      if (next.done) break;
      total += next.value.length;
      if (total > maxLength) {
        await reader.cancel().catch(() => undefined);
        throw this.#tooLarge(key, maxLength);
      }
      chunks.push(next.value);
    }
    const modified = response.headers.get('last-modified');
    return {
      bytes: concatBytes(chunks),
      etag: unquote(response.headers.get('etag')),
      lastModified: modified === null ? undefined : new Date(modified),
    };
  }

  /**
   * A large object as a stream, cut off (UPSTREAM_INVALID) past `maxLength` bytes and failed
   * (UPSTREAM_UNAVAILABLE) when it stalls. Undefined when upstream has no such object.
   */
  async open(key: string, maxLength: number): Promise<UpstreamStream | undefined> {
    const { response, read } = await this.#request(key, {});
    if (response.status !== 200) return this.#refuse(key, response);
    const declared = this.#declaredLength(response);
    if (declared !== undefined && declared > maxLength) {
      await discard(response.body);
      throw this.#tooLarge(key, maxLength);
    }
    const reader = (response.body ?? new ReadableStream<Uint8Array>()).getReader();
    let total = 0;
    const body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          const next = await read(reader);
          if (next.done) {
            controller.close();
            return;
          }
          total += next.value.length;
          if (total > maxLength) {
            await reader.cancel().catch(() => undefined);
            throw this.#tooLarge(key, maxLength);
          }
          controller.enqueue(next.value);
        } catch (error) {
          controller.error(error);
        }
      },
      cancel: async (reason) => {
        await reader.cancel(reason).catch(() => undefined);
      },
    });
    return { body, length: declared };
  }
}

function stagingKey(): string {
  return `${STAGING_PREFIX}${crypto.randomUUID()}`;
}

/**
 * Copies one immutable object (a target or a delta) from upstream into `store` under `key`,
 * checked against `expected` on the way: the bytes stream through a ContentVerifier into a
 * staging key, and only once every hash and the length matched are they copied, create-only,
 * to `key`. On a mismatch the staging object is deleted and nothing is left under `key`, so
 * no unverified byte is ever stored under a public key, whatever the store does with a body
 * that fails halfway. Resolves with the bytes copied; `PRECONDITION_FAILED` on the final copy
 * means another request or instance placed the same (hash-named, verified) object first,
 * which is success.
 *
 * Rejects NOT_FOUND (upstream has no such object), UPSTREAM_INVALID (wrong bytes, too many
 * bytes), UPSTREAM_UNAVAILABLE, STORAGE_UNAVAILABLE.
 */
export async function copyVerified(
  store: BlobStore,
  upstream: Upstream,
  hash: HashPort,
  key: string,
  expected: Expected,
): Promise<number> {
  const limit = expected.length ?? expected.cap;
  const opened = await upstream.open(key, limit);
  if (opened === undefined) {
    throw new EdgeError('NOT_FOUND', `${key}: upstream has no such object`);
  }
  if (
    expected.length !== undefined &&
    opened.length !== undefined &&
    opened.length !== expected.length
  ) {
    await discard(opened.body);
    throw new EdgeError(
      'UPSTREAM_INVALID',
      `${key}: upstream sends ${opened.length} bytes, verified metadata says ${expected.length}`,
    );
  }
  const verifier = new ContentVerifier(hash, expected, key);
  const reader = opened.body.getReader();
  let failure: EdgeError | undefined;
  let verified = false;
  const checked = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await reader.read();
        if (next.done) {
          // Before close: a store cannot finish the put until this has passed.
          await verifier.finish();
          verified = true;
          controller.close();
          return;
        }
        verifier.update(next.value);
        controller.enqueue(next.value);
      } catch (error) {
        failure = isVerifyError(error)
          ? new EdgeError('UPSTREAM_INVALID', `${key}: ${error.message}`, { cause: error })
          : isEdgeError(error)
            ? error
            : new EdgeError('UPSTREAM_UNAVAILABLE', `${key}: ${describe(error)}`, {
                cause: error,
              });
        await reader.cancel().catch(() => undefined);
        controller.error(failure);
      }
    },
    async cancel(reason) {
      await reader.cancel(reason).catch(() => undefined);
    },
  });
  const staging = stagingKey();
  try {
    try {
      await store.put(staging, checked, {
        contentLength: expected.length,
        contentType: 'application/octet-stream',
      });
    } catch (error) {
      if (failure !== undefined) throw failure;
      throw new EdgeError('STORAGE_UNAVAILABLE', `${key}: staging the upstream copy failed`, {
        cause: error,
      });
    }
    // A store that took a body which errored halfway must still not see it promoted.
    if (!verified) {
      throw (
        failure ?? new EdgeError('UPSTREAM_INVALID', `${key}: the upstream body was not verified`)
      );
    }
    try {
      await store.copy(staging, key, { ifNoneMatch: '*' });
    } catch (error) {
      if (!isStorageError(error, 'PRECONDITION_FAILED')) {
        throw new EdgeError('STORAGE_UNAVAILABLE', `${key}: placing the verified copy failed`, {
          cause: error,
        });
      }
    }
    return verifier.received;
  } finally {
    await store.delete(staging).catch(() => undefined);
  }
}

/**
 * Upstream as a MetadataReader for a TrustedRepository. timestamp.json is revalidated with
 * If-None-Match: a 304 gives back the very bytes of the last answer, which the Updater then
 * keeps as the same version (5.4.3.1), so an unchanged upstream costs no body.
 */
export function upstreamReader(
  upstream: Upstream,
  now: () => Date = () => new Date(),
): MetadataReader {
  let lastTimestamp: (StoredBytes & { readonly upstreamEtag: string }) | undefined;
  return async (key, maxLength) => {
    const previous = key === TIMESTAMP_KEY ? lastTimestamp : undefined;
    const answer = await upstream.bytes(key, maxLength, { ifNoneMatch: previous?.upstreamEtag });
    if (answer === 'not-modified' && previous !== undefined) return previous;
    if (answer === undefined || answer === 'not-modified') return undefined;
    const file: StoredBytes = {
      bytes: answer.bytes,
      info: {
        key,
        size: answer.bytes.length,
        etag: answer.etag ?? '',
        lastModified: answer.lastModified ?? now(),
      },
    };
    if (key === TIMESTAMP_KEY && answer.etag !== undefined) {
      lastTimestamp = { ...file, upstreamEtag: answer.etag };
    }
    return file;
  };
}
