/**
 * When to ask a mirror again. Millions of clients fail at the same moment when a mirror goes
 * down, so every wait is jittered ("full jitter": a uniform draw below an exponentially growing
 * ceiling), and a server's Retry-After is honoured as a floor, never shortened, with jitter
 * added above it so a crowd told "come back in 5 s" does not return in the same millisecond.
 *
 * `failover` is the one loop that both downloads and metadata fetches use to walk a ranked
 * mirror list: try the next ready mirror, put a failed one back with a delay or drop it, sleep
 * only when every remaining mirror is waiting.
 */
import { setTimeout as delay } from 'node:timers/promises';

export interface BackoffOptions {
  /** Ceiling of the first retry's wait, ms. Default 1 000: long enough for a restarting mirror
   * to come back, short enough that a blip costs the user nothing noticeable. */
  readonly baseMs?: number;
  /** Ceiling of any exponential wait, ms. Default 30 000: beyond that, waiting longer tells us
   * nothing new and the user is better served by the failure report. */
  readonly maxMs?: number;
  /** Longest Retry-After honoured, ms. Default 120 000: a mirror asking for an hour is asked
   * again after two minutes (or skipped once attempts run out) instead of holding an update. */
  readonly maxRetryAfterMs?: number;
  /** A uniform draw in [0, 1); injectable so tests can assert exact delays. */
  readonly random?: () => number;
}

export const DEFAULT_BACKOFF_BASE_MS = 1_000;
export const DEFAULT_BACKOFF_MAX_MS = 30_000;
export const DEFAULT_MAX_RETRY_AFTER_MS = 120_000;

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name}: expected a positive number, received ${value}`);
  }
  return value;
}

export class Backoff {
  readonly baseMs: number;
  readonly maxMs: number;
  readonly maxRetryAfterMs: number;
  readonly #random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = positive(options.baseMs ?? DEFAULT_BACKOFF_BASE_MS, 'baseMs');
    this.maxMs = positive(options.maxMs ?? DEFAULT_BACKOFF_MAX_MS, 'maxMs');
    this.maxRetryAfterMs = positive(
      options.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS,
      'maxRetryAfterMs',
    );
    this.#random = options.random ?? Math.random;
  }

  /** The exponential ceiling for retry number `retry` (0 for the first retry). */
  ceilingMs(retry: number): number {
    if (!Number.isSafeInteger(retry) || retry < 0) {
      throw new RangeError(`retry: expected a non-negative integer, received ${retry}`);
    }
    // 2 ** 60 overflows nothing in a double, and min() caps it long before that matters.
    return Math.min(this.maxMs, this.baseMs * 2 ** Math.min(retry, 60));
  }

  /**
   * Milliseconds to wait before retry number `retry`. Without Retry-After: a uniform draw in
   * [0, ceiling). With it: the (capped) Retry-After plus such a draw, so never earlier than
   * the server asked.
   */
  delayMs(retry: number, retryAfterMs?: number): number {
    const jitter = Math.floor(this.#random() * this.ceilingMs(retry));
    if (retryAfterMs === undefined) return jitter;
    return Math.min(Math.max(0, retryAfterMs), this.maxRetryAfterMs) + jitter;
  }
}

/**
 * A Retry-After header in milliseconds from `nowMs`: delay-seconds (`120`) or an HTTP-date
 * (`Wed, 21 Oct 2015 07:28:00 GMT`; RFC 9110 10.2.3). A date in the past is 0. Anything else
 * is undefined: the caller falls back to its own backoff rather than trusting a garbled value.
 */
export function parseRetryAfter(
  value: string | null | undefined,
  nowMs: number,
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    // Huge values are still "wait long"; the Backoff caps them.
    return Number.isSafeInteger(seconds) ? seconds * 1000 : Number.MAX_SAFE_INTEGER;
  }
  // Only date-shaped text: Date.parse accepts bare numbers and other forms HTTP does not.
  if (!/^[A-Za-z]{3},? /.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/** Waits `ms`; injectable so tests advance a fake clock instead of sleeping. */
export type Sleep = (ms: number) => Promise<void>;

export const realSleep: Sleep = (ms) => delay(ms);

/** How `failover` should treat one failed attempt. */
export interface FailureVerdict {
  /** True: put the mirror back and try it again after a delay; false: done with it. */
  readonly retry: boolean;
  /** The server's Retry-After, when it gave one (ms). */
  readonly retryAfterMs?: number | undefined;
  /** True: no mirror can help (a local disk error, a bug): stop and throw this error. */
  readonly fatal?: boolean | undefined;
}

export interface FailoverOptions<M> {
  /** Attempts per mirror, the first included. Default 3. */
  readonly maxAttemptsPerMirror?: number;
  readonly backoff?: Backoff;
  readonly sleep?: Sleep;
  /** Wall clock in ms. Default Date.now. */
  readonly now?: () => number;
  /** Awaited after each failed attempt that is not fatal, before the next one starts: to
   * demote the mirror, or clean up what it left. */
  readonly onFailure?: (mirror: M, error: unknown, verdict: FailureVerdict) => void | Promise<void>;
}

export const DEFAULT_MAX_ATTEMPTS_PER_MIRROR = 3;

/** Every attempt failed: the last error of each mirror, in the order they were ranked. */
export class FailoverExhausted<M> extends Error {
  override readonly name = 'FailoverExhausted';
  readonly failures: readonly { readonly mirror: M; readonly error: unknown }[];

  constructor(failures: readonly { readonly mirror: M; readonly error: unknown }[]) {
    super(`all ${failures.length} mirrors failed`);
    this.failures = failures;
  }
}

/**
 * Tries `attempt` on the mirrors in order until one succeeds. A failure the verdict says to
 * retry puts that mirror back with a backoff delay (and the next mirror is tried now); a
 * mirror is dropped after `maxAttemptsPerMirror` attempts or a final verdict. The loop sleeps
 * only when every remaining mirror is waiting out its delay.
 */
export async function failover<M, T>(
  mirrors: readonly M[],
  attempt: (mirror: M, attemptNumber: number) => Promise<T>,
  classify: (error: unknown) => FailureVerdict,
  options: FailoverOptions<M> = {},
): Promise<T> {
  const maxAttempts = options.maxAttemptsPerMirror ?? DEFAULT_MAX_ATTEMPTS_PER_MIRROR;
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) {
    throw new RangeError(`maxAttemptsPerMirror: expected an integer >= 1, received ${maxAttempts}`);
  }
  const backoff = options.backoff ?? new Backoff();
  const sleep = options.sleep ?? realSleep;
  const now = options.now ?? Date.now;
  interface Turn {
    readonly mirror: M;
    attempts: number;
    readyAt: number;
    lastError: unknown;
    done: boolean;
  }
  const queue = mirrors.map((mirror): Turn => ({
    mirror,
    attempts: 0,
    readyAt: Number.NEGATIVE_INFINITY,
    lastError: undefined,
    done: false,
  }));
  for (;;) {
    const pending = queue.filter((q) => !q.done);
    if (pending.length === 0) {
      throw new FailoverExhausted(queue.map((q) => ({ mirror: q.mirror, error: q.lastError })));
    }
    const t = now();
    // Ranked order among the ready ones: a mirror that failed waits behind those that did not.
    const next = pending.find((q) => q.readyAt <= t);
    if (next === undefined) {
      const soonest = Math.min(...pending.map((q) => q.readyAt));
      await sleep(soonest - t);
      continue;
    }
    next.attempts++;
    try {
      return await attempt(next.mirror, next.attempts);
    } catch (e) {
      const verdict = classify(e);
      if (verdict.fatal === true) throw e;
      next.lastError = e;
      await options.onFailure?.(next.mirror, e, verdict);
      if (!verdict.retry || next.attempts >= maxAttempts) {
        next.done = true;
      } else {
        next.readyAt = now() + backoff.delayMs(next.attempts - 1, verdict.retryAfterMs);
      }
    }
  }
}
