/**
 * A token bucket per client address for full-file downloads: `burst` at once, then `perMinute`
 * on average. Metadata and deltas never pass through it: a client that cannot refresh
 * metadata cannot learn it is being held back, and deltas are what we want clients to fetch.
 *
 * State is per process (Node) or per isolate (Workers); the table is bounded so that a flood
 * of addresses cannot grow memory without limit.
 */
import type { RateLimit } from './config.js';

const MAX_ADDRESSES = 10_000;

interface Bucket {
  tokens: number;
  updatedMs: number;
}

export class FullFileRateLimiter {
  readonly #limit: RateLimit;
  readonly #buckets = new Map<string, Bucket>();

  constructor(limit: RateLimit) {
    this.#limit = limit;
  }

  /** Takes one token for `address`: 0 when allowed, else the seconds until one is free. */
  take(address: string, nowMs: number): number {
    const ratePerMs = this.#limit.perMinute / 60_000;
    const existing = this.#buckets.get(address);
    const bucket = existing ?? { tokens: this.#limit.burst, updatedMs: nowMs };
    bucket.tokens = Math.min(
      this.#limit.burst,
      bucket.tokens + Math.max(0, nowMs - bucket.updatedMs) * ratePerMs,
    );
    bucket.updatedMs = nowMs;
    // Re-insert so the map's order is least recently used first.
    this.#buckets.delete(address);
    this.#buckets.set(address, bucket);
    if (this.#buckets.size > MAX_ADDRESSES) {
      const oldest = this.#buckets.keys().next();
      if (oldest.done !== true) this.#buckets.delete(oldest.value);
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / ratePerMs / 1000));
  }
}
