/**
 * The Fetcher port over HTTP(S) with the runtime's global fetch. It enforces the cap itself,
 * while bytes arrive: a mirror that sends an endless body is cut off at `maxLength + 1` bytes,
 * never buffered in full.
 */
import { concatBytes } from '@cairn/verify/encoding';
import { VerifyError } from '@cairn/verify/errors';
import type { Fetcher } from '@cairn/verify/ports';

export interface HttpFetcherOptions {
  /** Milliseconds for the whole request, headers and body. Default 30 000. */
  readonly timeoutMs?: number;
  /** Sent as User-Agent when set; otherwise the runtime's default is sent. */
  readonly userAgent?: string;
}

/** Long enough for a slow mirror to start answering, short enough that a stalled one is left. */
export const DEFAULT_FETCH_TIMEOUT_MS = 30_000;

/**
 * The message of a fetch that failed before a response, or mid-body: Node's fetch wraps the real
 * reason (ECONNREFUSED, ENOTFOUND, ECONNRESET, "other side closed") in its `cause`.
 */
export function describeNetworkError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause;
  if (cause instanceof Error && cause.message !== '') return `${error.message}: ${cause.message}`;
  return error.message;
}

/** Cancels a response body that will not be read, so its connection is let go. */
export async function discardBody(body: ReadableStream<Uint8Array> | null): Promise<void> {
  try {
    await body?.cancel();
  } catch {
    // The connection is being dropped anyway; a failure to cancel changes nothing.
  }
}

export class HttpFetcher implements Fetcher {
  readonly #timeoutMs: number;
  readonly #headers: Record<string, string>;

  constructor(options: HttpFetcherOptions = {}) {
    const timeoutMs = options.timeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new RangeError(`timeoutMs: expected a positive number, received ${timeoutMs}`);
    }
    this.#timeoutMs = timeoutMs;
    this.#headers = options.userAgent === undefined ? {} : { 'user-agent': options.userAgent };
  }

  async fetch(url: string, maxLength: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(maxLength) || maxLength < 0) {
      throw new RangeError(`maxLength: expected a non-negative integer, received ${maxLength}`);
    }
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.#timeoutMs);
    const failed = (error: unknown): VerifyError =>
      timedOut
        ? new VerifyError(
            'FETCH_FAILED',
            `GET ${url}: no complete response within ${this.#timeoutMs} ms`,
            { cause: error },
          )
        : new VerifyError('FETCH_FAILED', `GET ${url}: ${describeNetworkError(error)}`, {
            cause: error,
          });
    try {
      let response: Response;
      try {
        response = await fetch(url, {
          headers: this.#headers,
          signal: controller.signal,
          redirect: 'follow',
        });
      } catch (e) {
        throw failed(e);
      }
      if (!response.ok) {
        await discardBody(response.body);
        const status = `HTTP ${response.status}${response.statusText === '' ? '' : ` ${response.statusText}`}`;
        // 403 counts as absent: S3-style stores answer 403 for a missing key without list rights.
        const code =
          response.status === 403 || response.status === 404 ? 'NOT_FOUND' : 'FETCH_FAILED';
        throw new VerifyError(code, `GET ${url}: ${status}`, { cause: response });
      }
      // Content-Length counts encoded bytes; only without a content coding is it the body length.
      const encoding = response.headers.get('content-encoding');
      const declared = Number(response.headers.get('content-length') ?? Number.NaN);
      if ((encoding === null || encoding === 'identity') && declared > maxLength) {
        await discardBody(response.body);
        throw new VerifyError(
          'TOO_LARGE',
          `GET ${url}: Content-Length ${declared} is more than the ${maxLength} bytes allowed`,
        );
      }
      return await readCapped(response.body, maxLength, url, failed);
    } finally {
      clearTimeout(timer);
    }
  }
}

async function readCapped(
  body: ReadableStream<Uint8Array> | null,
  maxLength: number,
  url: string,
  failed: (error: unknown) => VerifyError,
): Promise<Uint8Array> {
  if (body === null) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  const next = async () => {
    try {
      return await reader.read();
    } catch (e) {
      throw failed(e);
    }
  };
  for (;;) {
    const { done, value } = await next();
    if (done) break;
    total += value.length;
    if (total > maxLength) {
      await reader.cancel().catch(() => undefined);
      throw new VerifyError(
        'TOO_LARGE',
        `GET ${url}: the body is more than the ${maxLength} bytes allowed`,
      );
    }
    chunks.push(value);
  }
  return concatBytes(chunks);
}
