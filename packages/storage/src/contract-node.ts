/**
 * The part of the BlobStore contract that needs Node: a 1 GiB upload of unknown length whose
 * process memory must stay bounded. The body is generated on the fly and hashed as it is
 * generated; the stored object is read back and hashed again. Then the object is copied
 * (create-only, as the origin publishes), in the same bounded memory, and the copy is read back
 * and hashed too.
 */
import { createHash, randomFillSync, type Hash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { BlobStore } from './blob-store.js';
import type { MakeContractStore } from './contract.js';

export interface LargeUploadContractOptions {
  /** Default 1 GiB. */
  readonly bytes?: number | undefined;
  /** How far the process's resident memory may grow above where it started. Default 256 MiB. */
  readonly maxRssGrowthBytes?: number | undefined;
  /** Default 10 minutes. */
  readonly timeoutMs?: number | undefined;
}

export interface MemoryFigures {
  readonly bytes: number;
  readonly baselineRss: number;
  readonly peakRssDuringUpload: number;
  readonly peakRssDuringDownload: number;
  readonly uploadMs: number;
  readonly downloadMs: number;
  readonly peakRssDuringCopy: number;
  readonly copyMs: number;
}

const MiB = 1024 * 1024;
const CHUNK = MiB;

/** Samples `process.memoryUsage.rss()` every few milliseconds and on demand; keeps the peak. */
class RssPeak {
  peak = 0;
  readonly #timer: ReturnType<typeof setInterval>;
  constructor() {
    this.sample();
    this.#timer = setInterval(() => this.sample(), 10);
  }
  sample(): void {
    const rss = process.memoryUsage.rss();
    if (rss > this.peak) this.peak = rss;
  }
  stop(): number {
    clearInterval(this.#timer);
    this.sample();
    return this.peak;
  }
}

/** Random bytes, made a chunk at a time as they are pulled and hashed on the way out. */
function randomStream(
  total: number,
  onChunk: (chunk: Uint8Array) => void,
): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (sent >= total) {
          controller.close();
          return;
        }
        const chunk = randomFillSync(new Uint8Array(Math.min(CHUNK, total - sent)));
        sent += chunk.byteLength;
        onChunk(chunk);
        controller.enqueue(chunk);
      },
    },
    { highWaterMark: 0 },
  );
}

/** Reads the whole object into `hash`; returns its length. */
async function readAndHash(
  store: BlobStore,
  key: string,
  hash: Hash,
  peak?: RssPeak,
): Promise<number> {
  const result = await store.get(key);
  if (result.notModified) throw new Error('expected a body');
  const reader = result.body.getReader();
  let count = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    hash.update(value);
    count += value.byteLength;
    peak?.sample();
  }
  expect(result.info.size).toBe(count);
  return count;
}

export function describeLargeUploadContract(
  name: string,
  makeStore: MakeContractStore,
  options: LargeUploadContractOptions = {},
  report: (figures: MemoryFigures) => void = (f) => {
    const mib = (n: number): string => `${(n / MiB).toFixed(0)} MiB`;
    console.info(
      `[${name}] ${mib(f.bytes)} streamed: upload ${(f.uploadMs / 1000).toFixed(1)} s, ` +
        `peak RSS +${mib(f.peakRssDuringUpload - f.baselineRss)}; ` +
        `download ${(f.downloadMs / 1000).toFixed(1)} s, ` +
        `peak RSS +${mib(f.peakRssDuringDownload - f.baselineRss)}; ` +
        `copy ${(f.copyMs / 1000).toFixed(1)} s, ` +
        `peak RSS +${mib(f.peakRssDuringCopy - f.baselineRss)} (baseline ${mib(f.baselineRss)})`,
    );
  },
): void {
  const bytes = options.bytes ?? 1024 * MiB;
  const bound = options.maxRssGrowthBytes ?? 256 * MiB;
  const timeout = options.timeoutMs ?? 10 * 60_000;

  describe(`BlobStore contract (Node): ${name}`, () => {
    it(
      `stores a ${(bytes / MiB).toFixed(0)} MiB stream of unknown length with RSS growth under ${(bound / MiB).toFixed(0)} MiB, gives back the same sha256, and copies it server-side`,
      async () => {
        const { store, cleanup } = await makeStore();
        try {
          const gc = (globalThis as { gc?: () => void }).gc;
          gc?.();
          const baselineRss = process.memoryUsage.rss();

          const sent = createHash('sha256');
          const uploadPeak = new RssPeak();
          const uploadStart = performance.now();
          const info = await store.put(
            'large/blob.bin',
            randomStream(bytes, (chunk) => {
              sent.update(chunk);
              uploadPeak.sample();
            }),
          );
          const uploadMs = performance.now() - uploadStart;
          const peakRssDuringUpload = uploadPeak.stop();
          expect(info.size).toBe(bytes);
          expect((await store.head('large/blob.bin'))?.size).toBe(bytes);

          const received = createHash('sha256');
          const downloadPeak = new RssPeak();
          const downloadStart = performance.now();
          const count = await readAndHash(store, 'large/blob.bin', received, downloadPeak);
          const downloadMs = performance.now() - downloadStart;
          const peakRssDuringDownload = downloadPeak.stop();

          const copyPeak = new RssPeak();
          const copyStart = performance.now();
          const copied = await store.copy('large/blob.bin', 'large/copy.bin', { ifNoneMatch: '*' });
          const copyMs = performance.now() - copyStart;
          const peakRssDuringCopy = copyPeak.stop();
          expect(copied.size).toBe(bytes);
          expect((await store.head('large/copy.bin'))?.etag).toBe(copied.etag);
          const copiedHash = createHash('sha256');
          expect(await readAndHash(store, 'large/copy.bin', copiedHash)).toBe(bytes);

          report({
            bytes,
            baselineRss,
            peakRssDuringUpload,
            peakRssDuringDownload,
            uploadMs,
            downloadMs,
            peakRssDuringCopy,
            copyMs,
          });
          expect(count).toBe(bytes);
          const sentHash = sent.digest('hex');
          expect(received.digest('hex')).toBe(sentHash);
          expect(copiedHash.digest('hex')).toBe(sentHash);
          expect(peakRssDuringUpload - baselineRss).toBeLessThan(bound);
          expect(peakRssDuringDownload - baselineRss).toBeLessThan(bound);
          // Bounded as the rest; a server-side copy should barely move it at all.
          expect(peakRssDuringCopy - baselineRss).toBeLessThan(bound);
        } finally {
          await cleanup?.();
        }
      },
      timeout,
    );
  });
}
