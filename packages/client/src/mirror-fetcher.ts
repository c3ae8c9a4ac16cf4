/**
 * The verify Fetcher port over a ranked list of mirrors, for the Updater's metadata fetches.
 *
 * The Updater builds every metadata URL as `metadataBaseUrl + name`. Give it
 * `metadataBaseUrl: METADATA_PATH` (`metadata/`, a relative reference): each "URL" it asks
 * for is then a path relative to the repository's base, which this fetcher resolves on each
 * mirror in turn (`{mirror}metadata/3.root.json`). No placeholder scheme to map, and a path
 * can never reach an address no mirror is at.
 *
 * Mirrors are untrusted and may lag: a 404 from one mirror (a stale mirror that has not yet
 * copied a new root, say) sends the request to the next one; NOT_FOUND comes back only when
 * no mirror had the file and at least one answered that it has none.
 */
import { VerifyError, isVerifyError } from '@cairn/verify/errors';
import { performance } from 'node:perf_hooks';
import type { Fetcher } from '@cairn/verify/ports';
import {
  Backoff,
  FailoverExhausted,
  failover,
  parseRetryAfter,
  type FailureVerdict,
  type Sleep,
} from './backoff.js';
import { DEFAULT_FETCH_TIMEOUT_MS, HttpFetcher } from './http-fetcher.js';
import { checkMirrorPath, mirrorUrl, type Mirror, type RankedMirrors } from './mirrors.js';

/** The Updater's `metadataBaseUrl` for a MirrorFetcher: the metadata directory of every
 * mirror. */
export const METADATA_PATH = 'metadata/';

/** Attempts per mirror for one metadata file. Two: one retry rides out a blip or a short
 * Retry-After; past that, the next mirror is the better bet, and a refresh makes several
 * fetches. */
export const DEFAULT_METADATA_ATTEMPTS_PER_MIRROR = 2;

/** Paths remembered for servedBy: a refresh fetches a handful, a long-lived process keeps the
 * newest ones. */
const MAX_REMEMBERED_PATHS = 1_000;

export interface MirrorFetcherOptions {
  /** The whole request, headers and body, per attempt. Default DEFAULT_FETCH_TIMEOUT_MS. */
  readonly timeoutMs?: number | undefined;
  readonly userAgent?: string | undefined;
  /** Default DEFAULT_METADATA_ATTEMPTS_PER_MIRROR. */
  readonly maxAttemptsPerMirror?: number | undefined;
  readonly backoff?: Backoff | undefined;
  readonly sleep?: Sleep | undefined;
  /** Monotonic clock in ms for retry times. Default performance.now. */
  readonly now?: (() => number) | undefined;
}

/** Who served a path. */
export interface ServedFrom {
  readonly path: string;
  readonly mirror: string;
}

interface Outcome extends FailureVerdict {
  readonly kind: 'not-found' | 'too-large' | 'failed';
}

function classify(error: unknown): Outcome {
  if (!isVerifyError(error)) return { kind: 'failed', retry: false, fatal: true };
  if (error.code === 'NOT_FOUND') return { kind: 'not-found', retry: false };
  // Endless or oversized: broken or hostile, and it will not get better.
  if (error.code === 'TOO_LARGE') return { kind: 'too-large', retry: false };
  const response = error.cause instanceof Response ? error.cause : undefined;
  // No response: a network error or the timeout, which may pass.
  if (response === undefined) return { kind: 'failed', retry: true };
  if (response.status === 429 || response.status >= 500) {
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), Date.now());
    return { kind: 'failed', retry: true, retryAfterMs };
  }
  return { kind: 'failed', retry: false };
}

export class MirrorFetcher implements Fetcher {
  readonly #mirrors: RankedMirrors;
  readonly #http: HttpFetcher;
  readonly #maxAttempts: number;
  readonly #backoff: Backoff;
  readonly #sleep: Sleep | undefined;
  readonly #now: () => number;
  readonly #servedBy = new Map<string, string>();
  /** Mirrors that served bad data for a path, never asked for it again by this fetcher:
   * versioned metadata is immutable, so they would serve the same bytes. */
  readonly #refused = new Map<string, Set<string>>();
  #last: ServedFrom | undefined;

  constructor(mirrors: RankedMirrors, options: MirrorFetcherOptions = {}) {
    this.#mirrors = mirrors;
    this.#http = new HttpFetcher({
      timeoutMs: options.timeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS,
      ...(options.userAgent === undefined ? {} : { userAgent: options.userAgent }),
    });
    this.#maxAttempts = options.maxAttemptsPerMirror ?? DEFAULT_METADATA_ATTEMPTS_PER_MIRROR;
    this.#backoff = options.backoff ?? new Backoff();
    this.#sleep = options.sleep;
    this.#now = options.now ?? (() => performance.now());
  }

  /**
   * Fetches `path` (relative to the repository base, e.g. `metadata/timestamp.json`) from the
   * first mirror that has it, at most `maxLength` bytes. Rejects with a VerifyError:
   * NOT_FOUND when no mirror served it and at least one answered 403/404; TOO_LARGE when
   * every mirror sent too much; FETCH_FAILED otherwise, naming each mirror's reason.
   * Mirrors that fail (other than by not having the file) are demoted.
   */
  async fetch(path: string, maxLength: number): Promise<Uint8Array> {
    checkMirrorPath(path);
    const refused = this.#refused.get(path);
    const mirrors = (await this.#mirrors.ranked()).filter((m) => refused?.has(m.url) !== true);
    if (mirrors.length === 0) {
      throw new VerifyError(
        'FETCH_FAILED',
        `${path}: no mirror left to ask (${refused?.size ?? 0} served data that failed verification)`,
      );
    }
    try {
      const [mirror, bytes] = await failover(
        mirrors,
        async (m: Mirror) => [m, await this.#http.fetch(mirrorUrl(m, path), maxLength)] as const,
        classify,
        {
          maxAttemptsPerMirror: this.#maxAttempts,
          backoff: this.#backoff,
          ...(this.#sleep === undefined ? {} : { sleep: this.#sleep }),
          now: this.#now,
          onFailure: (m, error, verdict) => {
            // Not having a file is normal (the next root does not exist yet); anything else
            // sends the next fetch elsewhere first.
            if ((verdict as Outcome).kind !== 'not-found') {
              this.#mirrors.demote(m.url, (error as Error).message);
            }
          },
        },
      );
      this.#remember(path, mirror.url);
      return bytes;
    } catch (e) {
      if (!(e instanceof FailoverExhausted)) throw e;
      throw summarize(path, e as FailoverExhausted<Mirror>);
    }
  }

  /** The mirror that served `path` last, if any did. */
  servedBy(path: string): string | undefined {
    return this.#servedBy.get(path);
  }

  /** The most recent successful fetch: when a refresh fails verification, the file at fault. */
  get lastServed(): ServedFrom | undefined {
    return this.#last;
  }

  /**
   * Reports that what `path` returned failed verification: the mirror that served it is
   * demoted, and this fetcher never asks it for `path` again. Returns that mirror's URL, or
   * undefined when no mirror served `path`.
   */
  reportBadData(path: string, reason: string): string | undefined {
    const mirror = this.#servedBy.get(path);
    if (mirror === undefined) return undefined;
    this.#mirrors.demote(mirror, reason);
    const refused = this.#refused.get(path) ?? new Set<string>();
    refused.add(mirror);
    this.#refused.set(path, refused);
    this.#servedBy.delete(path);
    if (this.#last?.path === path) this.#last = undefined;
    return mirror;
  }

  #remember(path: string, mirror: string): void {
    this.#servedBy.delete(path);
    this.#servedBy.set(path, mirror);
    if (this.#servedBy.size > MAX_REMEMBERED_PATHS) {
      const oldest = this.#servedBy.keys().next().value;
      if (oldest !== undefined) this.#servedBy.delete(oldest);
    }
    this.#last = { path, mirror };
  }
}

function summarize(path: string, exhausted: FailoverExhausted<Mirror>): VerifyError {
  const outcomes = exhausted.failures.map(({ mirror, error }) => ({
    mirror,
    error,
    kind: classify(error).kind,
  }));
  const reasons = outcomes
    .map(({ mirror, error }) => `${mirror.url} (${(error as Error).message})`)
    .join('; ');
  // A stale mirror's 404 is no proof; but if no mirror served it and one says it does not
  // exist, it does not exist as far as this client can tell. Unreachable, overloaded and
  // misbehaving mirrors are not evidence either way.
  if (outcomes.some((o) => o.kind === 'not-found')) {
    return new VerifyError('NOT_FOUND', `${path}: no mirror has it: ${reasons}`, {
      cause: exhausted,
    });
  }
  if (outcomes.every((o) => o.kind === 'too-large')) {
    return new VerifyError('TOO_LARGE', `${path}: every mirror sent too much: ${reasons}`, {
      cause: exhausted,
    });
  }
  return new VerifyError('FETCH_FAILED', `${path}: no mirror could serve it: ${reasons}`, {
    cause: exhausted,
  });
}
