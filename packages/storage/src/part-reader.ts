/**
 * Cuts a Web stream into parts of a fixed size for multipart uploads, holding at most one part
 * in memory per call: the bound that lets a Worker (128 MB of memory) upload an object of
 * several GB whose length it does not know in advance.
 */
import { StorageError } from './errors.js';

export class PartReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  /** The unread tail of the last chunk, when it straddled a part boundary. */
  #leftover: Uint8Array | undefined;
  #done = false;
  /** Bytes handed out in parts so far. */
  bytesRead = 0;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /**
   * The next part: exactly `size` bytes, or fewer for the last part, or undefined at the end
   * of the stream. Every part but the last is full, as S3 and R2 require.
   */
  async read(size: number): Promise<Uint8Array<ArrayBuffer> | undefined> {
    let part: Uint8Array<ArrayBuffer> | undefined;
    let filled = 0;
    while (filled < size) {
      let chunk = this.#leftover;
      this.#leftover = undefined;
      if (chunk === undefined) {
        if (this.#done) break;
        const result = await this.#reader.read();
        if (result.done) {
          this.#done = true;
          break;
        }
        chunk = result.value;
        if (!(chunk instanceof Uint8Array)) {
          throw new TypeError(`body: expected Uint8Array chunks, got ${typeof chunk}`);
        }
      }
      part ??= new Uint8Array(size);
      const take = Math.min(chunk.length, size - filled);
      part.set(take === chunk.length ? chunk : chunk.subarray(0, take), filled);
      filled += take;
      if (take < chunk.length) this.#leftover = chunk.subarray(take);
    }
    if (part === undefined || filled === 0) return undefined;
    this.bytesRead += filled;
    // The last part is copied out at its length, so the full-size buffer can be collected.
    return filled === size ? part : part.slice(0, filled);
  }

  /** True once the stream is known to have ended and every byte was handed out. */
  get ended(): boolean {
    return this.#done && this.#leftover === undefined;
  }

  /** Refuses a body longer than `declared`, or, once it has ended, of any other length. */
  checkLength(declared: number | undefined): void {
    if (declared === undefined) return;
    const read = this.bytesRead;
    if (read > declared || (this.ended && read !== declared)) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `contentLength: ${declared}, but the body held ${this.ended ? '' : 'more than '}${read} bytes`,
      );
    }
  }

  /** Stops the source: after a failure, so a producer does not keep writing into nothing. */
  async cancel(reason: unknown): Promise<void> {
    try {
      await this.#reader.cancel(reason);
    } catch {
      // The source already failed: that failure is the one being reported.
    }
  }

  release(): void {
    this.#reader.releaseLock();
  }
}
