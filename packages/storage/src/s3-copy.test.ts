import { describe, expect, it } from 'vitest';

import { copyAllowanceMs, copySource, forEachLimited, planCopyParts } from './s3-copy.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe('copySource', () => {
  it('percent-encodes every byte of the key but the slashes between segments', () => {
    expect(copySource('bucket', 'targets/a b.txt')).toBe('bucket/targets/a%20b.txt');
    expect(copySource('b', "x/100%25 +=&?#!'()*~")).toBe(
      'b/x/100%2525%20%2B%3D%26%3F%23%21%27%28%29%2A~',
    );
    expect(copySource('b', 'ünï/🙂')).toBe('b/%C3%BCn%C3%AF/%F0%9F%99%82');
  });
});

describe('planCopyParts', () => {
  it('makes one part without a range for an object that fits in one, an empty one too', () => {
    expect(planCopyParts(0, 512 * MiB)).toEqual([{ partNumber: 1, length: 0, range: undefined }]);
    expect(planCopyParts(512 * MiB, 512 * MiB)).toEqual([
      { partNumber: 1, length: 512 * MiB, range: undefined },
    ]);
  });

  it('cuts a larger object into ranges that cover every byte once', () => {
    expect(planCopyParts(12 * MiB + 1, 5 * MiB)).toEqual([
      { partNumber: 1, length: 5 * MiB, range: `bytes=0-${5 * MiB - 1}` },
      { partNumber: 2, length: 5 * MiB, range: `bytes=${5 * MiB}-${10 * MiB - 1}` },
      { partNumber: 3, length: 2 * MiB + 1, range: `bytes=${10 * MiB}-${12 * MiB}` },
    ]);
    const sixGiB = planCopyParts(6 * GiB, 512 * MiB);
    expect(sixGiB).toHaveLength(12);
    expect(sixGiB.reduce((sum, part) => sum + part.length, 0)).toBe(6 * GiB);
    expect(sixGiB.at(-1)?.range).toBe(`bytes=${6 * GiB - 512 * MiB}-${6 * GiB - 1}`);
  });

  it('grows the parts by whole MiB when 10 000 would not hold the object', () => {
    const size = 5 * 1024 * GiB; // S3's largest object
    const parts = planCopyParts(size, 5 * MiB);
    expect(parts.length).toBeLessThanOrEqual(10_000);
    expect(parts[0]?.length).toBe(525 * MiB);
    expect(parts.reduce((sum, part) => sum + part.length, 0)).toBe(size);
  });
});

describe('copyAllowanceMs', () => {
  it('allows 16 MiB a second', () => {
    expect(copyAllowanceMs(0)).toBe(0);
    expect(copyAllowanceMs(16 * MiB)).toBe(1000);
    expect(copyAllowanceMs(5 * GiB)).toBe(320_000);
  });
});

describe('forEachLimited', () => {
  it('runs at most `concurrency` at a time and keeps the results in order', async () => {
    let running = 0;
    let most = 0;
    const results = await forEachLimited([5, 1, 4, 2, 3, 0], 2, async (ms) => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, ms));
      running--;
      return ms * 10;
    });
    expect(results).toEqual([50, 10, 40, 20, 30, 0]);
    expect(most).toBe(2);
  });

  it('starts nothing after a failure, waits for the work under way, and rejects with the first failure', async () => {
    const started: number[] = [];
    const finished: number[] = [];
    const outcome = forEachLimited([0, 1, 2, 3, 4], 2, async (item) => {
      started.push(item);
      if (item === 0) throw new Error('first');
      await new Promise((resolve) => setTimeout(resolve, 20));
      finished.push(item);
      if (item === 1) throw new Error('second');
    });
    await expect(outcome).rejects.toThrow('first');
    expect(started).toEqual([0, 1]);
    expect(finished).toEqual([1]);
  });
});
