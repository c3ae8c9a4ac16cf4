import { describe, expect, it } from 'vitest';

import { StorageError } from './errors.js';
import { PartReader } from './part-reader.js';

function streamOf(chunks: number[][]): ReadableStream<Uint8Array> {
  let next = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = chunks[next++];
      if (chunk === undefined) controller.close();
      else controller.enqueue(new Uint8Array(chunk));
    },
  });
}

async function partsOf(reader: PartReader, size: number): Promise<number[][]> {
  const parts: number[][] = [];
  for (let part = await reader.read(size); part; part = await reader.read(size)) {
    parts.push([...part]);
  }
  return parts;
}

describe('PartReader', () => {
  it('cuts chunks that straddle part boundaries into full parts and a short last one', async () => {
    const reader = new PartReader(streamOf([[1, 2], [3, 4, 5, 6, 7], [], [8], [9, 10, 11]]));
    expect(await partsOf(reader, 4)).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
      [9, 10, 11],
    ]);
    expect(reader.bytesRead).toBe(11);
    expect(reader.ended).toBe(true);
  });

  it('ends with a full part when the length is a multiple of the part size', async () => {
    const reader = new PartReader(
      streamOf([
        [1, 2, 3],
        [4, 5, 6],
      ]),
    );
    expect(await reader.read(3)).toEqual(new Uint8Array([1, 2, 3]));
    expect(reader.ended).toBe(false);
    expect(await reader.read(3)).toEqual(new Uint8Array([4, 5, 6]));
    expect(await reader.read(3)).toBeUndefined();
    expect(reader.ended).toBe(true);
  });

  it('gives no part at all for an empty stream', async () => {
    const reader = new PartReader(streamOf([[], []]));
    expect(await reader.read(8)).toBeUndefined();
    expect(reader.bytesRead).toBe(0);
  });

  it('cuts one chunk larger than several parts', async () => {
    const reader = new PartReader(streamOf([[1, 2, 3, 4, 5, 6, 7]]));
    expect(await partsOf(reader, 3)).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
  });

  it('copies its parts: a producer that reuses its buffer cannot change them', async () => {
    const reused = new Uint8Array([1, 2]);
    let pulls = 0;
    const reader = new PartReader(
      new ReadableStream<Uint8Array>(
        {
          pull(controller) {
            // The producer refills its one buffer for each chunk, as a file reader might.
            reused.fill(++pulls);
            if (pulls > 3) controller.close();
            else controller.enqueue(reused);
          },
        },
        // No read-ahead: the buffer is refilled only when the reader asks for the next chunk.
        { highWaterMark: 0 },
      ),
    );
    const first = await reader.read(2);
    const second = await reader.read(2);
    expect([first, second]).toEqual([new Uint8Array([1, 1]), new Uint8Array([2, 2])]);
  });

  it('checks a declared length: more bytes at once, fewer once the stream ends', async () => {
    const long = new PartReader(streamOf([[1, 2, 3, 4, 5]]));
    await long.read(4);
    expect(() => long.checkLength(3)).toThrow(StorageError);
    expect(() => long.checkLength(4)).not.toThrow(); // not ended: more may come, and fit
    await long.read(4);
    expect(() => long.checkLength(5)).not.toThrow();
    try {
      long.checkLength(6);
      expect.unreachable();
    } catch (e) {
      expect((e as StorageError).code).toBe('INVALID_ARGUMENT');
    }
    expect(() => long.checkLength(undefined)).not.toThrow();
  });

  it('passes on the source failure, and cancels the source', async () => {
    let cancelled: unknown;
    const reader = new PartReader(
      new ReadableStream<Uint8Array>({
        pull(controller) {
          controller.error(new Error('source broke'));
        },
        cancel(reason) {
          cancelled = reason;
        },
      }),
    );
    await expect(reader.read(4)).rejects.toThrow('source broke');
    const healthy = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new Uint8Array(1));
      },
      cancel(reason) {
        cancelled = reason;
      },
    });
    const other = new PartReader(healthy);
    await other.read(2);
    await other.cancel('stop');
    expect(cancelled).toBe('stop');
  });
});
