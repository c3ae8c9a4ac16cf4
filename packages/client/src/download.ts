/**
 * Downloads one file (a target, a delta) from a ranked list of untrusted mirrors into a local
 * file, verified against the signed length and hashes before it is handed back.
 *
 * Every attempt has a length cap (the signed length: one byte more and the mirror is cut off),
 * a timeout until the response headers, an idle timeout between chunks and a minimum
 * throughput, so no mirror can hold a client with endless, stalled or trickling data.
 *
 * The local file doubles as the resume point: whatever an interrupted attempt wrote (on this
 * mirror or another, in this run or an earlier one) stays, and the next attempt asks only for
 * the rest with `Range: bytes=N-`. The prefix is re-hashed from disk first, so the final check
 * covers every byte, wherever it came from.
 */
import { createReadStream } from 'node:fs';
import { open, rm, stat, type FileHandle } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { isVerifyError } from '@cairn/verify/errors';
import { ContentVerifier, type HashPort } from '@cairn/verify/hash';
import {
  Backoff,
  DEFAULT_MAX_ATTEMPTS_PER_MIRROR,
  FailoverExhausted,
  failover,
  parseRetryAfter,
  type FailureVerdict,
  type Sleep,
} from './backoff.js';
import { ClientError, isClientError } from './errors.js';
import { describeNetworkError, discardBody } from './http-fetcher.js';
import { mirrorUrl, type Mirror, type RankedMirrors } from './mirrors.js';
import { nodeHashPort } from './node-hash.js';

/** Until the response headers arrive. As HttpFetcher: a slow mirror may start late, a dead
 * one is left. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Longest silence between two chunks of a body: a stalled connection, not a slow one. */
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
/** Slowest acceptable transfer, bytes/s. A mirror trickling below this could hold a client
 * for days on a 2 GB file (the slow-retrieval attack); 8 KiB/s is below any real link the
 * files are meant for, so an honest but congested mirror is only left for a faster one. */
export const DEFAULT_MIN_BYTES_PER_SECOND = 8_192;
/** Throughput is averaged over this window: long enough to ride out TCP slow start and a
 * congested moment, short enough to leave a trickling mirror within a minute. */
export const DEFAULT_THROUGHPUT_WINDOW_MS = 30_000;
/** No throughput judgement before this much of a response has passed (connection warm-up). */
export const DEFAULT_THROUGHPUT_GRACE_MS = 10_000;

export interface DownloadRequest {
  /** The file's path under each mirror's base URL, percent-encoded, e.g.
   * `targets/ab12….daily.cvd` (see `mirrorPathOfTarget`). */
  readonly path: string;
  /** The signed length: the cap, and what a complete file must have. */
  readonly length: number;
  /** The signed hashes (sha256, sha512), all checked. */
  readonly hashes: Readonly<Record<string, string>>;
  /** The local file the bytes go into, and the resume point. Name it after the content
   * (its sha256, say) so a later run resumes only the same file. */
  readonly destination: string;
  /** Names the file in messages, e.g. `target daily.cvd`. Default the path. */
  readonly what?: string | undefined;
}

export interface DownloadProgress {
  /** Bytes of the file on disk so far, including a resumed prefix. */
  readonly received: number;
  readonly total: number;
  /** Base URL of the mirror sending them. */
  readonly mirror: string;
}

export interface DownloadOptions {
  readonly mirrors: RankedMirrors;
  /** Default nodeHashPort. */
  readonly hash?: HashPort | undefined;
  /** Default DEFAULT_REQUEST_TIMEOUT_MS. */
  readonly requestTimeoutMs?: number | undefined;
  /** Default DEFAULT_IDLE_TIMEOUT_MS. */
  readonly idleTimeoutMs?: number | undefined;
  /** 0 turns the check off. Default DEFAULT_MIN_BYTES_PER_SECOND. */
  readonly minBytesPerSecond?: number | undefined;
  /** Default DEFAULT_THROUGHPUT_WINDOW_MS. */
  readonly throughputWindowMs?: number | undefined;
  /** Default DEFAULT_THROUGHPUT_GRACE_MS. */
  readonly throughputGraceMs?: number | undefined;
  /** Attempts per mirror, the first included. Default 3. */
  readonly maxAttemptsPerMirror?: number | undefined;
  readonly backoff?: Backoff | undefined;
  readonly sleep?: Sleep | undefined;
  /** Monotonic clock in ms, for throughput and retry times. Default performance.now. */
  readonly now?: (() => number) | undefined;
  readonly userAgent?: string | undefined;
  readonly onProgress?: ((progress: DownloadProgress) => void) | undefined;
}

export interface DownloadResult {
  /** The destination, now holding exactly the verified file (fsynced). */
  readonly path: string;
  /** Base URL of the mirror that sent the final bytes; undefined when a complete, verified
   * file was already there and nothing was requested. */
  readonly mirror: string | undefined;
  /** Body bytes received over the network by this call, over all attempts. */
  readonly transferred: number;
}

/**
 * Where a mirror serves a target under consistent snapshots:
 * `targets/{dir/}{sha256}.{name}` (DESIGN.md, storage layout), each segment percent-encoded.
 * Without a sha256 the first listed hash names it, as the verify Updater does.
 */
export function mirrorPathOfTarget(target: {
  readonly path: string;
  readonly hashes: Readonly<Record<string, string>>;
}): string {
  const hash = target.hashes.sha256 ?? Object.values(target.hashes)[0];
  if (hash === undefined) {
    throw new ClientError('CONFIG_INVALID', `target ${target.path}: no hash to name it by`);
  }
  const segments = target.path.split('/');
  const name = segments.pop() ?? '';
  return ['targets', ...segments, `${hash}.${name}`].map(encodeURIComponent).join('/');
}

interface Settings {
  readonly request: DownloadRequest;
  readonly what: string;
  readonly hash: HashPort;
  readonly requestTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly minBytesPerSecond: number;
  readonly windowMs: number;
  readonly graceMs: number;
  readonly now: () => number;
  readonly headers: Record<string, string>;
  readonly onProgress: ((progress: DownloadProgress) => void) | undefined;
  /** Body bytes received by this call, over all attempts. */
  readonly tally: { transferred: number };
}

/** What the failover loop should do after each kind of failure; kept beside the error. */
interface Handling extends FailureVerdict {
  /** Move the mirror to the end of the ranking for the rest of the run. */
  readonly demote: boolean;
  /** The local file holds bytes that must not be resumed. */
  readonly discard: boolean;
}
const handlingOf = new WeakMap<object, Handling>();

function fail(
  code: ClientError['code'],
  message: string,
  handling: Partial<Handling> & { retry: boolean },
  options: { cause?: unknown; retryAfterSeconds?: number | undefined } = {},
): ClientError {
  const error = new ClientError(code, message, options);
  handlingOf.set(error, { demote: true, discard: false, ...handling });
  return error;
}

function checked(value: number, name: string, allowZero = false): number {
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new RangeError(
      `${name}: expected a ${allowZero ? 'non-negative' : 'positive'} number, received ${value}`,
    );
  }
  return value;
}

/**
 * Downloads `request.path` from the mirrors, best first, into `request.destination`, and
 * resolves once the file there has exactly the signed length and hashes.
 *
 * On a failure the partial file is kept and the next mirror resumes it. 429 and 503 send the
 * download to the next mirror at once and bring this one back after its Retry-After (capped,
 * jittered); network errors, timeouts and slowness come back after a backoff too, up to
 * `maxAttemptsPerMirror` attempts each. A complete file that fails verification is deleted and
 * the mirror that sent it is dropped and demoted; so is one that sends more than the signed
 * length. When every mirror has failed: NO_MIRROR, naming each mirror's last reason. Local
 * file-system errors are thrown as they are, since no other mirror can fix them.
 */
export async function downloadFromMirrors(
  request: DownloadRequest,
  options: DownloadOptions,
): Promise<DownloadResult> {
  if (!Number.isSafeInteger(request.length) || request.length < 0) {
    throw new RangeError(`length: expected a non-negative integer, received ${request.length}`);
  }
  const s: Settings = {
    request,
    what: request.what ?? request.path,
    hash: options.hash ?? nodeHashPort,
    requestTimeoutMs: checked(
      options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      'requestTimeoutMs',
    ),
    idleTimeoutMs: checked(options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, 'idleTimeoutMs'),
    minBytesPerSecond: checked(
      options.minBytesPerSecond ?? DEFAULT_MIN_BYTES_PER_SECOND,
      'minBytesPerSecond',
      true,
    ),
    windowMs: checked(
      options.throughputWindowMs ?? DEFAULT_THROUGHPUT_WINDOW_MS,
      'throughputWindowMs',
    ),
    graceMs: checked(
      options.throughputGraceMs ?? DEFAULT_THROUGHPUT_GRACE_MS,
      'throughputGraceMs',
      true,
    ),
    now: options.now ?? (() => performance.now()),
    headers: options.userAgent === undefined ? {} : { 'user-agent': options.userAgent },
    onProgress: options.onProgress,
    tally: { transferred: 0 },
  };

  // A complete file from an earlier run needs no mirror at all.
  if (await completeOnDisk(s)) {
    return { path: request.destination, mirror: undefined, transferred: 0 };
  }
  const mirrors = await options.mirrors.ranked();
  if (mirrors.length === 0) {
    throw new ClientError('NO_MIRROR', `${s.what}: no mirrors to download from`);
  }
  try {
    const mirror = await failover(
      mirrors,
      async (m: Mirror) => {
        await attempt(m, s);
        return m;
      },
      // Not one of ours: a local file-system error, or a bug; another mirror cannot help.
      (error) => handlingOf.get(error as object) ?? { retry: false, fatal: true },
      {
        maxAttemptsPerMirror: options.maxAttemptsPerMirror ?? DEFAULT_MAX_ATTEMPTS_PER_MIRROR,
        backoff: options.backoff ?? new Backoff(),
        ...(options.sleep === undefined ? {} : { sleep: options.sleep }),
        now: s.now,
        onFailure: async (m, error) => {
          const handling = handlingOf.get(error as object);
          // Removed before any other mirror resumes from it.
          if (handling?.discard === true) await rm(request.destination, { force: true });
          if (handling?.demote === true) {
            options.mirrors.demote(m.url, (error as ClientError).message);
          }
        },
      },
    );
    return { path: request.destination, mirror: mirror.url, transferred: s.tally.transferred };
  } catch (e) {
    if (e instanceof FailoverExhausted) {
      const failures = (e as FailoverExhausted<Mirror>).failures;
      const reasons = failures.map(({ mirror, error }) => {
        const code = isClientError(error) ? `${error.code}: ` : '';
        return `${mirror.url} (${code}${error instanceof Error ? error.message : String(error)})`;
      });
      throw new ClientError(
        'NO_MIRROR',
        `${s.what}: no mirror could provide it: ${reasons.join('; ')}`,
        { cause: e },
      );
    }
    throw e;
  }
}

/** Bytes already in the local file; a file longer than the signed length cannot be a prefix
 * of it and is removed. */
async function partialLength(path: string, length: number): Promise<number> {
  try {
    const info = await stat(path);
    if (!info.isFile()) {
      throw new ClientError('CONFIG_INVALID', `destination ${path}: not a regular file`);
    }
    if (info.size <= length) return info.size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
  await rm(path, { force: true });
  return 0;
}

async function hashFromDisk(
  path: string,
  length: number,
  verifier: ContentVerifier,
): Promise<void> {
  if (length === 0) return;
  for await (const chunk of createReadStream(path, { start: 0, end: length - 1 })) {
    verifier.update(chunk as Uint8Array);
  }
}

function newVerifier(s: Settings): ContentVerifier {
  return new ContentVerifier(
    s.hash,
    { length: s.request.length, hashes: s.request.hashes },
    s.what,
  );
}

/** Whether the local file is already the whole, verified file; a whole but wrong one is
 * removed. (An empty file is always fetched: absent and empty look alike here.) */
async function completeOnDisk(s: Settings): Promise<boolean> {
  const { destination, length } = s.request;
  if (length === 0 || (await partialLength(destination, length)) !== length) return false;
  const verifier = newVerifier(s);
  await hashFromDisk(destination, length, verifier);
  try {
    await verifier.finish();
    return true;
  } catch (e) {
    if (!isVerifyError(e)) throw e;
    await rm(destination, { force: true });
    return false;
  }
}

const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+)$/;

/**
 * Bytes per second over the last `windowMs`, judged only after `graceMs`. Samples older than
 * the window are dropped except the newest of them, so the measured span is at least the
 * window once there is that much history.
 */
class ThroughputMeter {
  readonly #samples: { t: number; bytes: number }[];
  readonly #start: number;
  readonly #min: number;
  readonly #windowMs: number;
  readonly #graceMs: number;

  constructor(start: number, s: Settings) {
    this.#start = start;
    this.#samples = [{ t: start, bytes: 0 }];
    this.#min = s.minBytesPerSecond;
    this.#windowMs = s.windowMs;
    this.#graceMs = s.graceMs;
  }

  /** Records `bytes` received so far at time `t`; returns the rate when it is too low. */
  tooSlow(t: number, bytes: number): number | undefined {
    this.#samples.push({ t, bytes });
    while (this.#samples.length > 2 && (this.#samples[1]?.t ?? t) <= t - this.#windowMs) {
      this.#samples.shift();
    }
    if (this.#min === 0 || t - this.#start < this.#graceMs) return undefined;
    const base = this.#samples[0] ?? { t, bytes };
    const span = t - base.t;
    if (span <= 0) return undefined;
    const rate = ((bytes - base.bytes) * 1000) / span;
    return rate < this.#min ? rate : undefined;
  }
}

async function writeAll(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
    offset += bytesWritten;
  }
}

/** One request's timers: the first ClientError to fire aborts the request and is the reason. */
class Watchdog {
  readonly controller = new AbortController();
  #reason: ClientError | undefined;
  #timer: NodeJS.Timeout | undefined;

  get reason(): ClientError | undefined {
    return this.#reason;
  }

  /** (Re)starts the one timer: `error` becomes the reason if it fires. */
  arm(ms: number, error: () => ClientError): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#reason ??= error();
      this.controller.abort();
    }, ms);
  }

  stop(): void {
    clearTimeout(this.#timer);
  }
}

/** One request to one mirror: resumes what is on disk, appends, verifies at the end. */
async function attempt(mirror: Mirror, s: Settings): Promise<void> {
  const { request } = s;
  const get = `GET ${mirrorUrl(mirror, request.path)}`;
  // A whole file left by an attempt whose connection failed after its last byte.
  if (await completeOnDisk(s)) return;
  const offset = await partialLength(request.destination, request.length);
  const verifier = newVerifier(s);
  // The prefix is hashed before the request, so the connection never waits on the disk.
  await hashFromDisk(request.destination, offset, verifier);

  const watchdog = new Watchdog();
  try {
    watchdog.arm(s.requestTimeoutMs, () =>
      fail('DOWNLOAD_FAILED', `${get}: no response within ${s.requestTimeoutMs} ms`, {
        retry: true,
      }),
    );
    const headers: Record<string, string> = { ...s.headers };
    // A range counts bytes of the representation as sent, so a resumed download needs it
    // unencoded; fetch adds `Accept-Encoding: identity` itself to a request with a Range.
    if (offset > 0) headers.range = `bytes=${offset}-`;
    else headers['accept-encoding'] = 'identity';
    let response: Response;
    try {
      response = await fetch(mirrorUrl(mirror, request.path), {
        headers,
        signal: watchdog.controller.signal,
        redirect: 'follow',
      });
    } catch (e) {
      throw (
        watchdog.reason ??
        fail('DOWNLOAD_FAILED', `${get}: ${describeNetworkError(e)}`, { retry: true }, { cause: e })
      );
    }
    watchdog.stop();
    const start = await checkResponse(response, offset, get, s);
    if (start === 0 && offset > 0) {
      // The mirror ignored the range and sends the whole file: start over.
      await receive(response, 0, newVerifier(s), mirror, s, watchdog);
    } else {
      await receive(response, offset, verifier, mirror, s, watchdog);
    }
  } finally {
    watchdog.stop();
  }
}

/** Refuses a response that cannot continue the file at `offset`; returns where its body
 * starts in the file (0 for a whole-file 200). */
async function checkResponse(
  response: Response,
  offset: number,
  get: string,
  s: Settings,
): Promise<number> {
  const { length } = s.request;
  const status = `HTTP ${response.status}${response.statusText === '' ? '' : ` ${response.statusText}`}`;
  if (response.status === 429 || response.status === 503) {
    await discardBody(response.body);
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), Date.now());
    const after = retryAfterMs === undefined ? '' : `, retry after ${retryAfterMs / 1000} s`;
    throw fail(
      'RETRY_LATER',
      `${get}: ${status}${after}`,
      { retry: true, retryAfterMs },
      { retryAfterSeconds: retryAfterMs === undefined ? undefined : retryAfterMs / 1000 },
    );
  }
  const encoding = response.headers.get('content-encoding');
  const identity = encoding === null || encoding === 'identity';
  let start: number;
  if (response.status === 206) {
    const contentRange = response.headers.get('content-range');
    const range = CONTENT_RANGE.exec(contentRange ?? '');
    if (
      range === null ||
      Number(range[1]) !== offset ||
      Number(range[2]) !== length - 1 ||
      Number(range[3]) !== length ||
      !identity
    ) {
      await discardBody(response.body);
      // Byte ranges that do not line up with the signed file cannot continue it.
      throw fail(
        'DOWNLOAD_FAILED',
        `${get}: ${status} with Content-Range ${JSON.stringify(contentRange)}${identity ? '' : ` and Content-Encoding ${encoding}`}, expected bytes ${offset}-${length - 1}/${length}`,
        { retry: false },
      );
    }
    start = offset;
  } else if (response.status === 200) {
    start = 0;
  } else {
    await discardBody(response.body);
    // Server errors may pass; an answer such as 404 or 416 will not change within a run.
    throw fail('DOWNLOAD_FAILED', `${get}: ${status}`, { retry: response.status >= 500 });
  }
  // Content-Length counts encoded bytes; only without a content coding is it the body length.
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (identity && declared > length - start) {
    await discardBody(response.body);
    throw fail(
      'TOO_LARGE',
      `${get}: Content-Length ${declared} is more than the ${length - start} bytes expected`,
      { retry: false },
    );
  }
  return start;
}

/** Streams the body into the file from byte `offset`, through the verifier and the limits. */
async function receive(
  response: Response,
  offset: number,
  verifier: ContentVerifier,
  mirror: Mirror,
  s: Settings,
  watchdog: Watchdog,
): Promise<void> {
  const { request } = s;
  const get = `GET ${mirrorUrl(mirror, request.path)}`;
  const body: ReadableStream<Uint8Array> | null = response.body;
  let handle: FileHandle;
  try {
    handle = await open(request.destination, offset > 0 ? 'a' : 'w');
  } catch (e) {
    await discardBody(body);
    throw e;
  }
  const reader = body?.getReader();
  const meter = new ThroughputMeter(s.now(), s);
  const idle = (): ClientError =>
    fail('DOWNLOAD_FAILED', `${get}: no data for ${s.idleTimeoutMs} ms`, { retry: true });
  let received = offset;
  try {
    if (reader !== undefined) {
      for (;;) {
        let next: Awaited<ReturnType<typeof reader.read>>;
        // The idle timer runs only while waiting for the network: a slow disk is not a stalled
        // mirror, and aborting while chunks wait unread would throw them away.
        watchdog.arm(s.idleTimeoutMs, idle);
        try {
          next = await reader.read();
          watchdog.stop();
        } catch (e) {
          throw (
            watchdog.reason ??
            fail(
              'DOWNLOAD_FAILED',
              `${get}: ${describeNetworkError(e)} after ${received} of ${request.length} bytes`,
              { retry: true },
              { cause: e },
            )
          );
        }
        if (next.done) break;
        const chunk = next.value;
        s.tally.transferred += chunk.length;
        try {
          verifier.update(chunk);
        } catch (e) {
          // Past the signed length: cut off here, and the bytes on disk are suspect.
          throw fail(
            'TOO_LARGE',
            `${get}: more than the ${request.length} bytes signed for ${s.what}`,
            { retry: false, discard: true },
            { cause: e },
          );
        }
        await writeAll(handle, chunk);
        received += chunk.length;
        s.onProgress?.({ received, total: request.length, mirror: mirror.url });
        const rate = meter.tooSlow(s.now(), received - offset);
        if (rate !== undefined) {
          throw fail(
            'TOO_SLOW',
            `${get}: ${Math.floor(rate)} bytes/s, below the minimum of ${s.minBytesPerSecond}`,
            { retry: true },
          );
        }
      }
    }
    watchdog.stop();
    if (received < request.length) {
      throw fail(
        'DOWNLOAD_FAILED',
        `${get}: the body ended after ${received} of ${request.length} bytes`,
        { retry: true },
      );
    }
    await handle.sync();
  } catch (e) {
    watchdog.controller.abort();
    await reader?.cancel().catch(() => undefined);
    throw e;
  } finally {
    watchdog.stop();
    await handle.close();
  }
  try {
    await verifier.finish();
  } catch (e) {
    if (!isVerifyError(e)) throw e;
    // Complete and wrong. From a fresh start this mirror sent every byte: it is bad. After a
    // resume the prefix came from elsewhere, so nobody is to blame yet: start over.
    throw fail(
      'VERIFICATION_FAILED',
      `${get}: ${e.message}${offset > 0 ? ` (resumed at byte ${offset})` : ''}`,
      offset > 0 ? { retry: true, demote: false, discard: true } : { retry: false, discard: true },
      { cause: e },
    );
  }
}
