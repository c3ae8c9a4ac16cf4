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
/**
 * Tokens are counted in 1/60 000ths, so that a millisecond refills exactly `perMinute` of them:
 * integer arithmetic, where summed fractions of a token would drift and put a second too many
 * in Retry-After.
 */
const PARTS_PER_TOKEN = 60_000;

interface Bucket {
  parts: number;
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
    const full = this.#limit.burst * PARTS_PER_TOKEN;
    const existing = this.#buckets.get(address);
    const bucket = existing ?? { parts: full, updatedMs: nowMs };
    const elapsedMs = Math.max(0, nowMs - bucket.updatedMs);
    bucket.parts = Math.min(full, bucket.parts + elapsedMs * this.#limit.perMinute);
    bucket.updatedMs = nowMs;
    // Re-insert so the map's order is least recently used first.
    this.#buckets.delete(address);
    this.#buckets.set(address, bucket);
    if (this.#buckets.size > MAX_ADDRESSES) {
      const oldest = this.#buckets.keys().next();
      if (oldest.done !== true) this.#buckets.delete(oldest.value);
    }
    if (bucket.parts >= PARTS_PER_TOKEN) {
      bucket.parts -= PARTS_PER_TOKEN;
      return 0;
    }
    const missing = PARTS_PER_TOKEN - bucket.parts;
    return Math.max(1, Math.ceil(missing / (this.#limit.perMinute * 1000)));
  }
}
