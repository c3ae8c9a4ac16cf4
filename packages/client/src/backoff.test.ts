import { describe, expect, it } from 'vitest';
import {
  Backoff,
  FailoverExhausted,
  failover,
  parseRetryAfter,
  type FailureVerdict,
} from './backoff.js';
import { fakeTime } from './testing/fake-time.js';

describe('Backoff', () => {
  it('doubles the ceiling per retry from baseMs up to maxMs', () => {
    const b = new Backoff({ baseMs: 100, maxMs: 1000 });
    expect([0, 1, 2, 3, 4, 5, 60, 1000].map((r) => b.ceilingMs(r))).toEqual([
      100, 200, 400, 800, 1000, 1000, 1000, 1000,
    ]);
  });

  it('draws a full-jitter delay below the ceiling', () => {
    const draws = [0, 0.5, 0.999];
    const b = new Backoff({ baseMs: 1000, maxMs: 8000, random: () => draws.shift() ?? 0 });
    expect([b.delayMs(0), b.delayMs(1), b.delayMs(3)]).toEqual([0, 1000, 7992]);
  });

  it('waits at least the Retry-After, with jitter above it', () => {
    const b = new Backoff({ baseMs: 1000, random: () => 0.5 });
    expect(b.delayMs(0, 7000)).toBe(7500);
    expect(b.delayMs(2, 7000)).toBe(9000);
    expect(b.delayMs(0, 0)).toBe(500);
  });

  it('caps the Retry-After at maxRetryAfterMs', () => {
    const b = new Backoff({ maxRetryAfterMs: 60_000, random: () => 0 });
    expect(b.delayMs(0, 3_600_000)).toBe(60_000);
    expect(new Backoff({ random: () => 0 }).delayMs(0, Number.MAX_SAFE_INTEGER)).toBe(120_000);
  });

  it('defaults to 1 s base, 30 s cap', () => {
    const b = new Backoff();
    expect([b.baseMs, b.maxMs, b.maxRetryAfterMs]).toEqual([1000, 30_000, 120_000]);
    expect(b.ceilingMs(10)).toBe(30_000);
  });

  it('refuses nonsense settings and retry numbers, naming them', () => {
    expect(() => new Backoff({ baseMs: 0 })).toThrow(
      'baseMs: expected a positive number, received 0',
    );
    expect(() => new Backoff({ maxMs: Number.NaN })).toThrow(
      'maxMs: expected a positive number, received NaN',
    );
    expect(() => new Backoff().ceilingMs(-1)).toThrow(
      'retry: expected a non-negative integer, received -1',
    );
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');

  it('reads delay-seconds', () => {
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('99999999999999999999', now)).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('reads an HTTP-date relative to now, and a past date as 0', () => {
    expect(parseRetryAfter('Tue, 01 Jan 2030 00:00:42 GMT', now)).toBe(42_000);
    expect(parseRetryAfter('Mon, 31 Dec 2029 23:00:00 GMT', now)).toBe(0);
  });

  it('ignores absent, negative, fractional and garbled values', () => {
    for (const value of [
      null,
      undefined,
      '',
      '-5',
      '1.5',
      'soon',
      '2030-01-01T00:00:42Z',
      'Tue, nonsense',
    ]) {
      expect(parseRetryAfter(value, now)).toBeUndefined();
    }
  });
});

describe('failover', () => {
  const retry: FailureVerdict = { retry: true };
  const never: FailureVerdict = { retry: false };

  it('returns the first success, trying mirrors in order', async () => {
    const tried: string[] = [];
    const result = await failover(
      ['a', 'b', 'c'],
      (m) => {
        tried.push(m);
        return m === 'b' ? Promise.resolve('from b') : Promise.reject(new Error(m));
      },
      () => never,
    );
    expect(result).toBe('from b');
    expect(tried).toEqual(['a', 'b']);
  });

  it('tries the next mirror now and comes back to a retryable one after its delay', async () => {
    const { time, now, sleep } = fakeTime();
    const tried: string[] = [];
    const result = await failover(
      ['a', 'b'],
      (m, n) => {
        tried.push(`${m}${n}@${time.t}`);
        if (m === 'a' && n === 1) return Promise.reject(new Error('busy'));
        if (m === 'b') return Promise.reject(new Error('gone'));
        return Promise.resolve('ok');
      },
      (e) => ((e as Error).message === 'busy' ? { retry: true, retryAfterMs: 7000 } : never),
      { now, sleep, backoff: new Backoff({ random: () => 0.5 }) },
    );
    expect(result).toBe('ok');
    expect(tried).toEqual(['a1@0', 'b1@0', 'a2@7500']);
    expect(time.sleeps).toEqual([7500]);
  });

  it('stops after maxAttemptsPerMirror and reports each mirror’s last error', async () => {
    const { time, now, sleep } = fakeTime();
    const errors: string[] = [];
    const promise = failover(
      ['a', 'b'],
      (m, n) => Promise.reject(new Error(`${m}${n}`)),
      (e) => ((e as Error).message.startsWith('a') ? retry : never),
      {
        now,
        sleep,
        maxAttemptsPerMirror: 3,
        backoff: new Backoff({ baseMs: 100, random: () => 0.5 }),
        onFailure: (m, e) => {
          errors.push(`${m}:${(e as Error).message}`);
        },
      },
    );
    const e = await promise.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(FailoverExhausted);
    const failures = (e as FailoverExhausted<string>).failures;
    expect(failures.map((f) => [f.mirror, (f.error as Error).message])).toEqual([
      ['a', 'a3'],
      ['b', 'b1'],
    ]);
    expect((e as Error).message).toBe('all 2 mirrors failed');
    expect(errors).toEqual(['a:a1', 'b:b1', 'a:a2', 'a:a3']);
    // Retry 0 then retry 1 of "a": half of 100, then half of 200.
    expect(time.sleeps).toEqual([50, 100]);
  });

  it('throws a fatal error at once, without trying other mirrors', async () => {
    const tried: string[] = [];
    const fatal = new Error('disk full');
    await expect(
      failover(
        ['a', 'b'],
        (m) => {
          tried.push(m);
          return Promise.reject(fatal);
        },
        () => ({ retry: false, fatal: true }),
      ),
    ).rejects.toBe(fatal);
    expect(tried).toEqual(['a']);
  });

  it('awaits onFailure before the next attempt', async () => {
    const log: string[] = [];
    await failover(
      ['a', 'b'],
      (m) => {
        log.push(`try ${m}`);
        return m === 'a' ? Promise.reject(new Error('x')) : Promise.resolve(m);
      },
      () => never,
      {
        onFailure: async (m) => {
          await new Promise((r) => setImmediate(r));
          log.push(`cleaned ${m}`);
        },
      },
    );
    expect(log).toEqual(['try a', 'cleaned a', 'try b']);
  });

  it('with no mirrors, is exhausted at once', async () => {
    const e = await failover(
      [],
      () => Promise.resolve(1),
      () => never,
    ).catch((x: unknown) => x);
    expect((e as FailoverExhausted<string>).failures).toEqual([]);
  });

  it('refuses maxAttemptsPerMirror below 1', async () => {
    await expect(
      failover(
        ['a'],
        () => Promise.resolve(1),
        () => never,
        { maxAttemptsPerMirror: 0 },
      ),
    ).rejects.toThrow('maxAttemptsPerMirror: expected an integer >= 1, received 0');
  });
});
