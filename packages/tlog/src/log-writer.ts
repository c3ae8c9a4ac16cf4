/**
 * Appends to a tiled log kept in object storage: the origin's side of the log.
 *
 * An append writes the new tiles and entry bundles first, then the signed checkpoint by
 * compare-and-swap, so a crash at any point leaves the previous checkpoint and every tile it
 * covers untouched: readers only ever read tiles a checkpoint covers. Writers on several
 * origin instances take turns through a lease object (create-only, taken over by If-Match
 * once expired); the checkpoint's If-Match is the final guard. Tiles beyond the checkpoint
 * that a crashed or overtaken writer left behind are rewritten by the next append; tiles the
 * checkpoint covers are never rewritten.
 *
 * Before extending the tree the writer recomputes the stored checkpoint's root from the stored
 * tiles and checks the entries it carries over, so it never signs on top of tampered storage.
 */
import type { BlobStore } from '@cairn/storage/blob-store';
import { isStorageError } from '@cairn/storage/errors';
import { bytesEqual, fromUtf8, toHex, utf8 } from './bytes.js';
import { formatCheckpoint, parseCheckpoint, type Checkpoint } from './checkpoint.js';
import { TlogError } from './errors.js';
import { HASH_SIZE, TILE_WIDTH } from './limits.js';
import { consistencyProof, extendSubtreeReader, leafHash, treeRoot } from './merkle.js';
import { LogReader } from './log-reader.js';
import { formatNote, parseNote, signNote, type NoteSignature, type NoteSigner } from './note.js';
import {
  buildTile,
  encodeEntryBundle,
  entriesPath,
  newTiles,
  parseEntryBundle,
  rootFromTiles,
  tilePath,
  tileSubtreeReader,
  type Tile,
} from './tiles.js';

export interface LogWriterOptions {
  readonly store: BlobStore;
  /** Signs checkpoints; its name is the checkpoint's origin line. */
  readonly signer: NoteSigner;
  /** Where the log lives in the store, ending in `/`. Default `log/`. */
  readonly prefix?: string | undefined;
  /** The append lease's key, under a prefix no mirror serves. Default `_origin/log/lock.json`. */
  readonly lockKey?: string | undefined;
  /** How long a lease lasts unless released. Default 30 s. */
  readonly lockTtlMs?: number | undefined;
  /** How long to wait for another writer's lease before LOCKED. Default 60 s. */
  readonly lockWaitMs?: number | undefined;
  /** How many entries back an append looks for the same entries already logged. Default 1024. */
  readonly lookback?: number | undefined;
  readonly now?: (() => Date) | undefined;
  readonly sleep?: ((ms: number) => Promise<void>) | undefined;
  /** Witness cosignatures for a new checkpoint (C2SP tlog-cosignature), added after the log's. */
  readonly cosign?: ((request: CosignRequest) => Promise<readonly NoteSignature[]>) | undefined;
}

/** What a witness needs to cosign a new checkpoint (C2SP tlog-witness add-checkpoint). */
export interface CosignRequest {
  /** The new checkpoint as signed by the log: the note a witness is sent. */
  readonly note: string;
  /** Its body: what cosignatures sign. */
  readonly body: string;
  /** The size of the checkpoint it replaces. */
  readonly oldSize: number;
  readonly newSize: number;
  /** A consistency proof from `fromSize` to the new tree (built in memory, no store reads). */
  consistencyProof(fromSize: number): Promise<Uint8Array[]>;
}

export interface AppendResult {
  /** Each entry's index in the log. */
  readonly indices: readonly number[];
  readonly size: number;
  readonly rootHash: Uint8Array;
  /** The signed checkpoint note that covers the entries. */
  readonly checkpoint: string;
  /** False when the same entries were already the log's (a recovered publication). */
  readonly appended: boolean;
  /** Tiles beyond the old checkpoint that held other bytes and were rewritten. */
  readonly repairedTiles: readonly string[];
}

interface Head {
  readonly checkpoint: Checkpoint;
  readonly text: string;
  readonly etag: string;
}

const EMPTY = new Uint8Array(0);
const DEFAULT_TTL_MS = 30_000;
const DEFAULT_WAIT_MS = 60_000;
const MAX_CHECKPOINT_RACES = 5;

export class LogWriter {
  readonly #store: BlobStore;
  readonly #signer: NoteSigner;
  readonly #prefix: string;
  readonly #lockKey: string;
  readonly #ttl: number;
  readonly #wait: number;
  readonly #lookback: number;
  readonly #now: () => Date;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #cosign: LogWriterOptions['cosign'];

  constructor(options: LogWriterOptions) {
    this.#store = options.store;
    this.#signer = options.signer;
    this.#prefix = options.prefix ?? 'log/';
    if (!this.#prefix.endsWith('/')) {
      throw new TlogError('INVALID_ARGUMENT', `prefix must end in "/": ${this.#prefix}`);
    }
    this.#lockKey = options.lockKey ?? '_origin/log/lock.json';
    this.#ttl = options.lockTtlMs ?? DEFAULT_TTL_MS;
    this.#wait = options.lockWaitMs ?? DEFAULT_WAIT_MS;
    this.#lookback = options.lookback ?? 1024;
    this.#now = options.now ?? (() => new Date());
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.#cosign = options.cosign;
  }

  /** The current signed checkpoint, or undefined while nothing was ever appended. */
  async checkpointText(): Promise<string | undefined> {
    return (await this.#head())?.text;
  }

  /**
   * Appends `entries` in order, unless the same entries are already, in order, among the log's
   * last `lookback` entries: then their indices come back with `appended: false`.
   */
  async append(entries: readonly Uint8Array[]): Promise<AppendResult> {
    if (entries.length === 0) throw new TlogError('INVALID_ARGUMENT', 'nothing to append');
    for (const entry of entries) {
      if (entry.length > 0xffff) {
        throw new TlogError('TOO_LARGE', `entry of ${String(entry.length)} bytes exceeds 65535`);
      }
    }
    const lease = await this.#acquire();
    try {
      for (let race = 0; race < MAX_CHECKPOINT_RACES; race++) {
        const result = await this.#appendOnce(entries);
        if (result !== undefined) return result;
      }
      throw new TlogError(
        'CONFLICT',
        `the checkpoint changed under ${String(MAX_CHECKPOINT_RACES)} appends in a row`,
      );
    } finally {
      await this.#release(lease);
    }
  }

  /** One attempt; undefined when the checkpoint moved before our compare-and-swap. */
  async #appendOnce(entries: readonly Uint8Array[]): Promise<AppendResult | undefined> {
    const head = await this.#head();
    const size = head?.checkpoint.size ?? 0;
    const readOld = this.#tileReader();
    if (head !== undefined) {
      const root = await rootFromTiles(size, readOld);
      if (!bytesEqual(root, head.checkpoint.rootHash)) {
        throw new TlogError(
          'INVALID_PROOF',
          `the stored tiles do not hash to the stored checkpoint's root (size ${String(size)}): the log's storage was altered`,
        );
      }
      const already = await this.#findLogged(head, entries);
      if (already !== undefined) return already;
    }

    const leaves = await Promise.all(entries.map((e) => leafHash(e)));
    const newSize = size + entries.length;
    const read = extendSubtreeReader(size, tileSubtreeReader(size, readOld), leaves);
    const repaired: string[] = [];
    for (const tile of newTiles(size, newSize)) {
      await this.#writeTile(tilePath(tile), await buildTile(read, tile), repaired);
      if (tile.level === 0) {
        const bundle = await this.#bundle(tile, size, entries, readOld);
        await this.#writeTile(entriesPath(tile.index, tile.width), bundle, repaired);
      }
    }
    const rootHash = await treeRoot(read, newSize);
    const body = formatCheckpoint({
      origin: this.#signer.name,
      size: newSize,
      rootHash,
      extensions: [],
    });
    let text = await signNote(body, [this.#signer]);
    if (this.#cosign !== undefined) {
      const extra = await this.#cosign({
        note: text,
        body,
        oldSize: size,
        newSize,
        consistencyProof: (fromSize) => consistencyProof(read, fromSize, newSize),
      });
      if (extra.length > 0) {
        const note = parseNote(text);
        text = formatNote({ text: note.text, signatures: [...note.signatures, ...extra] });
      }
    }
    try {
      await this.#store.put(`${this.#prefix}checkpoint`, utf8(text), {
        ...(head === undefined ? { ifNoneMatch: '*' as const } : { ifMatch: head.etag }),
        contentType: 'text/plain; charset=utf-8',
      });
    } catch (error) {
      if (isStorageError(error, 'PRECONDITION_FAILED')) return undefined;
      throw error;
    }
    return {
      indices: entries.map((_, i) => size + i),
      size: newSize,
      rootHash,
      checkpoint: text,
      appended: true,
      repairedTiles: repaired,
    };
  }

  /**
   * The same entries, in order, among the last `lookback` entries of the log. Bundles are
   * compared as stored; a match counts only once each matched entry's inclusion is proven, so
   * planted bytes cannot make the writer skip an append.
   */
  async #findLogged(head: Head, entries: readonly Uint8Array[]): Promise<AppendResult | undefined> {
    const size = head.checkpoint.size;
    if (size < entries.length) return undefined;
    const from = Math.max(0, size - this.#lookback - entries.length);
    const firstTile = Math.floor(from / TILE_WIDTH);
    const logged: Uint8Array[] = [];
    for (let t = firstTile; t * TILE_WIDTH < size; t++) {
      const width = Math.min(TILE_WIDTH, size - t * TILE_WIDTH);
      logged.push(...parseEntryBundle(await this.#read(entriesPath(t, width)), width));
    }
    const offset = firstTile * TILE_WIDTH;
    for (let start = size - entries.length; start >= from; start--) {
      if (!entries.every((e, i) => bytesEqual(e, logged[start - offset + i] ?? EMPTY))) continue;
      const reader = new LogReader((path) => this.#read(path));
      for (const [i, e] of entries.entries())
        await reader.proveInclusion(head.checkpoint, start + i, e);
      return {
        indices: entries.map((_, i) => start + i),
        size,
        rootHash: head.checkpoint.rootHash,
        checkpoint: head.text,
        appended: false,
        repairedTiles: [],
      };
    }
    return undefined;
  }

  /** The entry bundle for a new level-0 tile: entries the old tree had, then the new ones. */
  async #bundle(
    tile: Tile,
    size: number,
    entries: readonly Uint8Array[],
    readOld: (level: number, index: number, width: number) => Promise<Uint8Array>,
  ): Promise<Uint8Array> {
    const start = tile.index * TILE_WIDTH;
    const carried = Math.max(0, Math.min(size - start, tile.width));
    const old = carried > 0 ? await this.#entriesOfTile(tile.index, carried, readOld) : [];
    const fresh = entries.slice(Math.max(0, start - size), start + tile.width - size);
    return encodeEntryBundle([...old, ...fresh]);
  }

  async #entriesOfTile(
    index: number,
    width: number,
    readOld: (level: number, index: number, width: number) => Promise<Uint8Array>,
  ): Promise<Uint8Array[]> {
    const bundle = parseEntryBundle(await this.#read(entriesPath(index, width)), width);
    const hashes = await readOld(0, index, width);
    for (let k = 0; k < width; k++) {
      if (
        !bytesEqual(
          await leafHash(bundle[k] as Uint8Array),
          hashes.slice(k * HASH_SIZE, (k + 1) * HASH_SIZE),
        )
      ) {
        throw new TlogError(
          'INVALID_PROOF',
          `stored entry ${String(index * TILE_WIDTH + k)} does not match its tile: the log's storage was altered`,
        );
      }
    }
    return bundle;
  }

  /** Create-only; identical bytes already there are fine; other bytes beyond the checkpoint are rewritten. */
  async #writeTile(path: string, bytes: Uint8Array, repaired: string[]): Promise<void> {
    const key = `${this.#prefix}${path}`;
    try {
      await this.#store.put(key, bytes, {
        ifNoneMatch: '*',
        contentType: 'application/octet-stream',
      });
      return;
    } catch (error) {
      if (!isStorageError(error, 'PRECONDITION_FAILED')) throw error;
    }
    const existing = await this.#store.get(key);
    if (existing.notModified) throw new TlogError('INVALID_ARGUMENT', 'unexpected 304');
    const stored = new Uint8Array(await new Response(existing.body).arrayBuffer());
    if (bytesEqual(stored, bytes)) return;
    // A tile the current checkpoint does not cover, left by a writer that crashed or lost the
    // checkpoint race: ours is the one the next checkpoint will cover.
    await this.#store.put(key, bytes, {
      ifMatch: existing.info.etag,
      contentType: 'application/octet-stream',
    });
    repaired.push(path);
  }

  async #read(path: string): Promise<Uint8Array> {
    try {
      const result = await this.#store.get(`${this.#prefix}${path}`);
      if (result.notModified) throw new TlogError('INVALID_ARGUMENT', 'unexpected 304');
      return new Uint8Array(await new Response(result.body).arrayBuffer());
    } catch (error) {
      if (isStorageError(error, 'NOT_FOUND')) {
        throw new TlogError('NOT_FOUND', `the log has no ${path}`, { cause: error });
      }
      throw error;
    }
  }

  #tileReader(): (level: number, index: number, width: number) => Promise<Uint8Array> {
    return (level, index, width) => this.#read(tilePath({ level, index, width }));
  }

  async #head(): Promise<Head | undefined> {
    let result;
    try {
      result = await this.#store.get(`${this.#prefix}checkpoint`);
    } catch (error) {
      if (isStorageError(error, 'NOT_FOUND')) return undefined;
      throw error;
    }
    if (result.notModified) throw new TlogError('INVALID_ARGUMENT', 'unexpected 304');
    const text = fromUtf8(new Uint8Array(await new Response(result.body).arrayBuffer()));
    if (text === undefined) throw new TlogError('MALFORMED_NOTE', 'stored checkpoint is not UTF-8');
    const checkpoint = parseCheckpoint(parseNote(text).text);
    if (checkpoint.origin !== this.#signer.name) {
      throw new TlogError(
        'WRONG_ORIGIN',
        `the stored checkpoint is for ${JSON.stringify(checkpoint.origin)}, this writer signs for ${JSON.stringify(this.#signer.name)}`,
      );
    }
    return { checkpoint, text, etag: result.info.etag };
  }

  async #acquire(): Promise<{ etag: string; holder: string }> {
    const holder = toHex(crypto.getRandomValues(new Uint8Array(12)));
    const deadline = this.#now().getTime() + this.#wait;
    let delay = 20;
    for (;;) {
      const expires = new Date(this.#now().getTime() + this.#ttl).toISOString();
      const body = utf8(JSON.stringify({ holder, expires }));
      try {
        const info = await this.#store.put(this.#lockKey, body, {
          ifNoneMatch: '*',
          contentType: 'application/json',
        });
        return { etag: info.etag, holder };
      } catch (error) {
        if (!isStorageError(error, 'PRECONDITION_FAILED')) throw error;
      }
      const current = await this.#readLease();
      if (current !== undefined && (current.free || current.expires <= this.#now().getTime())) {
        try {
          const info = await this.#store.put(this.#lockKey, body, {
            ifMatch: current.etag,
            contentType: 'application/json',
          });
          return { etag: info.etag, holder };
        } catch (error) {
          if (!isStorageError(error, 'PRECONDITION_FAILED')) throw error;
        }
      }
      if (this.#now().getTime() >= deadline) {
        throw new TlogError(
          'LOCKED',
          `another writer has held the log's append lease (${this.#lockKey}) for over ${String(this.#wait)} ms`,
        );
      }
      await this.#sleep(delay + Math.floor(Math.random() * delay));
      delay = Math.min(delay * 2, 500);
    }
  }

  async #readLease(): Promise<{ etag: string; free: boolean; expires: number } | undefined> {
    let result;
    try {
      result = await this.#store.get(this.#lockKey);
    } catch (error) {
      if (isStorageError(error, 'NOT_FOUND')) return undefined;
      throw error;
    }
    if (result.notModified) return undefined;
    const text = fromUtf8(new Uint8Array(await new Response(result.body).arrayBuffer())) ?? '';
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const record = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<
      string,
      unknown
    >;
    const expires = typeof record.expires === 'string' ? Date.parse(record.expires) : NaN;
    // An unreadable lease is treated as expired: only a writer could have written it.
    return {
      etag: result.info.etag,
      free: record.released === true,
      expires: Number.isFinite(expires) ? expires : 0,
    };
  }

  async #release(lease: { etag: string; holder: string }): Promise<void> {
    try {
      await this.#store.put(
        this.#lockKey,
        utf8(JSON.stringify({ holder: lease.holder, released: true })),
        { ifMatch: lease.etag, contentType: 'application/json' },
      );
    } catch {
      // Taken over after expiry, or storage is failing: the lease expires on its own.
    }
  }
}
