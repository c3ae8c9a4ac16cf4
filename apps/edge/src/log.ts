/**
 * The transparency log as the edge sees it (DESIGN.md, "Storage layout": `log/checkpoint` and
 * C2SP tlog-tiles under `log/tile/`): which log the verified root declares, which tiles a tree
 * of a given size has, whether a checkpoint extends the one held before it, and tiles from an
 * untrusted upstream checked against a signed checkpoint before a mirror keeps them.
 *
 * Why mirrors check tiles and do not just copy them: tiles are immutable and stored
 * create-only, so one wrong tile would be served for good. A tile is kept only once it is
 * proven part of the tree the log key signed:
 *
 *   partial tiles (width < 256)   the tree's root computed from them (and held tiles) equals
 *                                 the checkpoint's root hash: they are the tree's right edge
 *   a full tile at level L        its 256 hashes hash up to its entry in the level L+1 tile,
 *                                 itself proven the same way (recursively, up to the edge)
 *   an entry bundle               each entry's leaf hash is the level-0 tile's hash for it
 *
 * A tile the tree of the checkpoint's size does not have is refused without a request.
 */
import type { Checkpoint, CheckpointPolicy } from '@cairn/tlog/checkpoint';
import { MAX_ENTRY_BYTES } from '@cairn/tlog/entry';
import { isTlogError, TlogError } from '@cairn/tlog/errors';
import { HASH_SIZE, TILE_WIDTH } from '@cairn/tlog/limits';
import { checkpointPolicy, logConfigFromRoot } from '@cairn/tlog/log-config';
import type { LogFetch, LogReader } from '@cairn/tlog/log-reader';
import { leafHash, perfectSubtreeRoot } from '@cairn/tlog/merkle';
import {
  entriesPath,
  parseEntryBundle,
  parseTilePath,
  rootFromTiles,
  tilePath,
} from '@cairn/tlog/tiles';
import { bytesEqual } from '@cairn/verify/encoding';
import type { Root } from '@cairn/verify/metadata';
import { EdgeError } from './errors.js';
import type { LogTile } from './paths.js';

/** The path of a tile relative to the log prefix: `tile/0/000.p/5`, `tile/entries/x001/234`. */
export function logTilePath(tile: LogTile): string {
  return tile.level === 'entries'
    ? entriesPath(tile.index, tile.width)
    : tilePath({ level: tile.level, index: tile.index, width: tile.width });
}

/** How many level-`level` hashes a tree of `size` leaves has (entry bundles: level 0). */
function hashesAt(size: number, level: number): number {
  return Math.floor(size / TILE_WIDTH ** level);
}

/** The width tile `index` of `level` has in a tree of `size` leaves; 0 when it has no such tile. */
export function tileWidthAt(size: number, level: number, index: number): number {
  return Math.max(0, Math.min(TILE_WIDTH, hashesAt(size, level) - index * TILE_WIDTH));
}

/**
 * Whether the tree of `size` leaves has exactly this tile (`tilesForSize(size)`, and its entry
 * bundles, in O(1)): a full tile it has completed, or the partial tile of that very width.
 */
export function tileWithinSize(tile: LogTile, size: number): boolean {
  const level = tile.level === 'entries' ? 0 : tile.level;
  return tileWidthAt(size, level, tile.index) === tile.width;
}

/**
 * The most bytes a tile may have: a hash tile is exactly `width` hashes; an entry bundle
 * `width` entries of at most MAX_ENTRY_BYTES (the origin writes nothing bigger) and their
 * 2-byte lengths.
 */
export function tileCap(tile: LogTile): number {
  return tile.level === 'entries' ? tile.width * (2 + MAX_ENTRY_BYTES) : tile.width * HASH_SIZE;
}

const policies = new WeakMap<Root, Promise<CheckpointPolicy | undefined>>();

/**
 * The checkpoint policy of the log `root` declares (its `x-cairn-log` field), or undefined when
 * it declares none. Rejects with a TlogError (MALFORMED_KEY) when the declaration is wrong.
 * Computed once per root object.
 */
export function logPolicyOf(root: Root): Promise<CheckpointPolicy | undefined> {
  let policy = policies.get(root);
  if (policy === undefined) {
    policy = (async () => {
      const config = logConfigFromRoot(root.extra);
      return config === undefined ? undefined : checkpointPolicy(config);
    })();
    policies.set(root, policy);
  }
  return policy;
}

/**
 * Checks that `newer` extends `older`: the same log, never smaller, and (larger) a consistency
 * proof from the tiles `reader` reads at newer's size. Rejects TlogError SPLIT_VIEW for a fork
 * or a shrinking log; INVALID_PROOF when the tiles do not hash to newer's root. A checkpoint of
 * another origin (the root declared a new log) has nothing to extend.
 */
export async function checkExtends(
  reader: LogReader,
  older: Checkpoint | undefined,
  newer: Checkpoint,
): Promise<void> {
  if (older === undefined || older.origin !== newer.origin) return;
  if (newer.size < older.size) {
    throw new TlogError(
      'SPLIT_VIEW',
      `the log went back from ${String(older.size)} to ${String(newer.size)} entries`,
    );
  }
  await reader.checkConsistent(older, newer);
}

export interface TileSources {
  /** A tile this store already holds: trusted, it was checked when it was placed. */
  readonly held: (path: string) => Promise<Uint8Array | undefined>;
  /** A tile from upstream, at most `cap` bytes: untrusted until checked. Undefined if missing. */
  readonly fetch: (path: string, cap: number) => Promise<Uint8Array | undefined>;
}

/**
 * Upstream's tiles, each fetched once however many trees ask: the few worth keeping (the right
 * edge and levels above 0) are remembered, so checking a checkpoint and then filling tiles under
 * it costs no second request for them.
 */
export function fetchOnce(fetch: TileSources['fetch']): TileSources['fetch'] {
  const fetched = new Map<string, Promise<Uint8Array | undefined>>();
  return (path, cap) => {
    let pending = fetched.get(path);
    if (pending === undefined) {
      pending = fetch(path, cap);
      let tile: LogTile | undefined;
      try {
        tile = parseTilePath(path);
      } catch {
        tile = undefined;
      }
      if (tile !== undefined && keep(tile)) {
        fetched.set(path, pending);
        pending.catch(() => fetched.delete(path));
      }
    }
    return pending;
  };
}

/** No tile is held: a tree that proves everything it hands out from upstream's bytes alone. */
export const NOTHING_HELD: TileSources['held'] = () => Promise.resolve(undefined);

/**
 * The tiles of the tree at one signed checkpoint, each from the store when held, otherwise
 * fetched and proven part of the tree (see the top of this file) before it is handed out.
 * Rejects EdgeError NOT_FOUND for a tile the tree does not have or upstream lacks, TlogError
 * (INVALID_PROOF, MALFORMED_TILE) for one that is not the tree's, and what the sources reject.
 *
 * Held tiles are the mirror's own, proven against the checkpoint it holds: use a tree that
 * holds nothing (NOTHING_HELD) to check that a new checkpoint extends that one, since a fork
 * shows up exactly as upstream's tiles disagreeing with the held ones.
 */
export class TreeTiles {
  readonly checkpoint: Checkpoint;
  readonly #sources: TileSources;
  readonly #verified = new Map<string, Promise<Uint8Array>>();
  /** Raw bytes, held or fetched: what the root check reads. */
  readonly #raw = new Map<string, Promise<{ bytes: Uint8Array; held: boolean }>>();
  #edge: Promise<void> | undefined;

  constructor(checkpoint: Checkpoint, sources: TileSources) {
    this.checkpoint = checkpoint;
    this.#sources = sources;
  }

  get size(): number {
    return this.checkpoint.size;
  }

  /** Whether the tree has this tile. */
  has(tile: LogTile): boolean {
    return tileWithinSize(tile, this.size);
  }

  /** The tile's bytes, proven. */
  tile(tile: LogTile): Promise<Uint8Array> {
    const path = logTilePath(tile);
    if (!this.has(tile)) {
      return Promise.reject(
        new EdgeError('NOT_FOUND', `${path} is not a tile of the log at size ${this.size}`),
      );
    }
    let pending = this.#verified.get(path);
    if (pending === undefined) {
      pending = this.#prove(tile, path);
      this.#verified.set(path, pending);
      const forget = () => {
        this.#verified.delete(path);
        this.#raw.delete(path);
      };
      pending.then(keep(tile) ? () => undefined : forget, forget);
    }
    return pending;
  }

  /** A LogFetch (for a LogReader) over proven tiles; anything but a tile is NOT_FOUND. */
  readonly fetch: LogFetch = (path) => {
    let tile: LogTile;
    try {
      tile = parseTilePath(path);
    } catch (error) {
      return Promise.reject(new EdgeError('NOT_FOUND', `${path}: not a tile`, { cause: error }));
    }
    return this.tile(tile);
  };

  /** Proves the tree's right edge (every partial tile) against the signed root. */
  checkRoot(): Promise<void> {
    this.#edge ??= (async () => {
      const root = await rootFromTiles(this.size, (level, index, width) =>
        this.#bytes(tilePath({ level, index, width }), { level, index, width }).then(
          (raw) => raw.bytes,
        ),
      );
      if (!bytesEqual(root, this.checkpoint.rootHash)) {
        throw new TlogError(
          'INVALID_PROOF',
          `the tiles do not hash to the checkpoint's root at size ${String(this.size)}`,
        );
      }
    })();
    this.#edge.catch(() => {
      this.#edge = undefined;
    });
    return this.#edge;
  }

  #bytes(path: string, tile: LogTile): Promise<{ bytes: Uint8Array; held: boolean }> {
    let pending = this.#raw.get(path);
    if (pending === undefined) {
      pending = (async () => {
        const held = await this.#sources.held(path);
        if (held !== undefined) return { bytes: held, held: true };
        const fetched = await this.#sources.fetch(path, tileCap(tile));
        if (fetched === undefined) {
          throw new EdgeError('NOT_FOUND', `${path}: upstream has no such tile`);
        }
        return { bytes: fetched, held: false };
      })();
      this.#raw.set(path, pending);
      pending.catch(() => this.#raw.delete(path));
    }
    return pending;
  }

  async #prove(tile: LogTile, path: string): Promise<Uint8Array> {
    const { bytes, held } = await this.#bytes(path, tile);
    if (held) return bytes;
    if (tile.level === 'entries') {
      const entries = parseEntryBundle(bytes, tile.width);
      const hashes = await this.tile({ level: 0, index: tile.index, width: tile.width });
      for (let k = 0; k < entries.length; k++) {
        const leaf = await leafHash(entries[k] ?? new Uint8Array());
        if (!bytesEqual(leaf, hashes.subarray(k * HASH_SIZE, (k + 1) * HASH_SIZE))) {
          throw new TlogError(
            'INVALID_PROOF',
            `${path}: entry ${String(tile.index * TILE_WIDTH + k)} is not the leaf the tree holds`,
          );
        }
      }
      return bytes;
    }
    if (bytes.length !== tile.width * HASH_SIZE) {
      throw new TlogError(
        'MALFORMED_TILE',
        `${path} is ${String(bytes.length)} bytes, not ${String(tile.width * HASH_SIZE)}`,
      );
    }
    if (tile.width < TILE_WIDTH) {
      await this.checkRoot();
      return bytes;
    }
    const parentIndex = Math.floor(tile.index / TILE_WIDTH);
    const parent = await this.tile({
      level: tile.level + 1,
      index: parentIndex,
      width: tileWidthAt(this.size, tile.level + 1, parentIndex),
    });
    const slot = tile.index % TILE_WIDTH;
    if (
      !bytesEqual(await subtreeOf(bytes), parent.subarray(slot * HASH_SIZE, (slot + 1) * HASH_SIZE))
    ) {
      throw new TlogError('INVALID_PROOF', `${path} does not hash to its entry in the level above`);
    }
    return bytes;
  }
}

/**
 * Whether a proven tile stays in memory: the few that prove others (levels above 0, the right
 * edge). Full level-0 tiles and entry bundles, nearly all of a log, are read again if needed.
 */
function keep(tile: LogTile): boolean {
  return tile.level !== 'entries' && (tile.level > 0 || tile.width < TILE_WIDTH);
}

/** The root of the complete subtree a full tile's 256 hashes make. */
function subtreeOf(tile: Uint8Array): Promise<Uint8Array> {
  const hashes: Uint8Array[] = [];
  for (let k = 0; k < TILE_WIDTH; k++)
    hashes.push(tile.subarray(k * HASH_SIZE, (k + 1) * HASH_SIZE));
  return perfectSubtreeRoot(hashes);
}

/**
 * A TlogError about upstream's log as the mirror reports it: SPLIT_VIEW for a fork or a
 * shrinking log, UPSTREAM_INVALID for anything else that does not verify; undefined for
 * other errors.
 */
export function logRefusal(error: unknown): EdgeError | undefined {
  if (isTlogError(error, 'SPLIT_VIEW')) {
    return new EdgeError(
      'SPLIT_VIEW',
      `upstream's log does not extend this mirror's (${error.message}): refusing it; nothing was copied`,
      { cause: error },
    );
  }
  if (isTlogError(error)) {
    return new EdgeError(
      'UPSTREAM_INVALID',
      `upstream's log does not verify: ${error.code}: ${error.message}`,
      { cause: error },
    );
  }
  return undefined;
}
