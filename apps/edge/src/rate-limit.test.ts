import { describe, expect, test } from 'vitest';
import { FullFileRateLimiter } from './rate-limit.js';

const MINUTE = 60_000;

describe('FullFileRateLimiter (the clock is the `nowMs` argument)', () => {
  test('burst at once, then one token per 60/perMinute seconds', () => {
    const limiter = new FullFileRateLimiter({ perMinute: 1, burst: 2 });
    expect(limiter.take('a', 0)).toBe(0);
    expect(limiter.take('a', 0)).toBe(0);
    expect(limiter.take('a', 0)).toBe(60);
    // Half a token has refilled: half a minute to go.
    expect(limiter.take('a', 30_000)).toBe(30);
    expect(limiter.take('a', 59_001)).toBe(1);
    expect(limiter.take('a', MINUTE)).toBe(0);
    expect(limiter.take('a', MINUTE)).toBe(60);
  });

  test('a refused take costs nothing', () => {
    const limiter = new FullFileRateLimiter({ perMinute: 1, burst: 1 });
    expect(limiter.take('a', 0)).toBe(0);
    for (let second = 1; second < 60; second++) {
      expect(limiter.take('a', second * 1000)).toBe(60 - second);
    }
    expect(limiter.take('a', MINUTE)).toBe(0);
  });

  test('the wait is rounded up to whole seconds, and is at least one', () => {
    const seven = new FullFileRateLimiter({ perMinute: 7, burst: 1 });
    expect(seven.take('a', 0)).toBe(0);
    // 60/7 = 8.57 s for the next token.
    expect(seven.take('a', 0)).toBe(9);
    const fast = new FullFileRateLimiter({ perMinute: 600, burst: 1 });
    expect(fast.take('a', 0)).toBe(0);
    // A token every 100 ms: Retry-After cannot say less than 1.
    expect(fast.take('a', 0)).toBe(1);
    expect(fast.take('a', 100)).toBe(0);
  });

  test('an idle address refills to the burst and no further', () => {
    const limiter = new FullFileRateLimiter({ perMinute: 6, burst: 3 });
    for (let i = 0; i < 3; i++) expect(limiter.take('a', 0)).toBe(0);
    expect(limiter.take('a', 0)).toBe(10);
    const later = 24 * 60 * MINUTE;
    for (let i = 0; i < 3; i++) expect(limiter.take('a', later)).toBe(0);
    expect(limiter.take('a', later)).toBe(10);
  });

  test('addresses have buckets of their own', () => {
    const limiter = new FullFileRateLimiter({ perMinute: 1, burst: 1 });
    expect(limiter.take('198.51.100.1', 0)).toBe(0);
    expect(limiter.take('198.51.100.1', 0)).toBe(60);
    expect(limiter.take('198.51.100.2', 0)).toBe(0);
    expect(limiter.take('2001:db8::1', 0)).toBe(0);
    expect(limiter.take('198.51.100.1', 0)).toBe(60);
  });

  test('a clock that steps back refills nothing and never makes the wait negative', () => {
    const limiter = new FullFileRateLimiter({ perMinute: 1, burst: 1 });
    expect(limiter.take('a', 10_000)).toBe(0);
    expect(limiter.take('a', 5_000)).toBe(60);
    expect(limiter.take('a', 35_000)).toBe(30);
  });

  test('the table keeps the 10 000 most recently seen addresses: a flood cannot grow it', () => {
    const limited = new FullFileRateLimiter({ perMinute: 1, burst: 1 });
    expect(limited.take('first', 0)).toBe(0);
    for (let i = 0; i < 9_999; i++) limited.take(`other-${i}`, 0);
    // 10 000 addresses: 'first' is still held, and still limited.
    expect(limited.take('first', 0)).toBe(60);

    const evicted = new FullFileRateLimiter({ perMinute: 1, burst: 1 });
    expect(evicted.take('first', 0)).toBe(0);
    for (let i = 0; i < 10_000; i++) evicted.take(`other-${i}`, 0);
    // The 10 001st address pushed out the least recently seen one, which starts afresh.
    expect(evicted.take('first', 0)).toBe(0);
  });
});
