/**
 * Reads a tiled log from anywhere (a mirror over HTTP, object storage) and proves what it
 * reads against signed checkpoints: the client's, the monitor's and the edge's side of the
 * log. Nothing fetched is trusted: tiles and entry bundles only count through proofs that end
 * at a checkpoint the log key signed.
 */
import { bytesEqual } from './bytes.js';
import {
  openCheckpoint,
  type Checkpoint,
  type CheckpointPolicy,
  type OpenedCheckpoint,
} from './checkpoint.js';
import { entryDescribes, parseEntry, type MetadataEntry } from './entry.js';
import { isTlogError, TlogError } from './errors.js';
import { HASH_SIZE, TILE_WIDTH } from './limits.js';
import { leafHash, verifyConsistency, verifyInclusion } from './merkle.js';
import {
  consistencyProofFromTiles,
  entriesPath,
  inclusionProofFromTiles,
  parseEntryBundle,
  rootFromTiles,
  tilePath,
  type TileReader,
} from './tiles.js';

/** Fetches a log file by its path under the log's prefix: `checkpoint`, `tile/0/000.p/5`, … */
export type LogFetch = (path: string) => Promise<Uint8Array>;

export interface FoundEntry {
  readonly index: number;
  readonly bytes: Uint8Array;
  readonly entry: MetadataEntry;
  /** The verified inclusion proof, leaf side first. */
  readonly proof: readonly Uint8Array[];
}

export interface WantedMetadata {
  readonly role: string;
  readonly version: number;
  /** The exact metadata bytes the entry must pin. */
  readonly bytes: Uint8Array;
}

/** Entries a search reads back from the newest before giving up. */
export const DEFAULT_MAX_SCAN = 16_384;

export class LogReader {
  readonly #fetch: LogFetch;
  readonly #policy: CheckpointPolicy | undefined;
  readonly #files = new Map<string, Promise<Uint8Array>>();
  /** Tree sizes whose tiles were checked to hash to the checkpoint's root. */
  readonly #checkedRoots = new Map<number, Promise<void>>();

  /** Without a policy the reader proves against checkpoints it is given, and cannot open any. */
  constructor(fetch: LogFetch, policy?: CheckpointPolicy) {
    this.#fetch = fetch;
    this.#policy = policy;
  }

  /** The current checkpoint, its log signature, origin and witness quorum verified. */
  async latest(): Promise<OpenedCheckpoint> {
    return this.open(await this.#fetch('checkpoint'));
  }

  /** Verifies a signed checkpoint (e.g. one held from an earlier run) under this log's policy. */
  open(note: Uint8Array | string): Promise<OpenedCheckpoint> {
    if (this.#policy === undefined) {
      return Promise.reject(
        new TlogError('INVALID_ARGUMENT', 'this reader has no checkpoint policy'),
      );
    }
    return openCheckpoint(note, this.#policy);
  }

  /**
   * Proves that two signed checkpoints describe one log, the smaller a prefix of the larger,
   * and returns the consistency proof (empty for equal sizes). SPLIT_VIEW when they cannot
   * both be true; INVALID_PROOF when the tiles served do not hash to the larger checkpoint (a
   * bad mirror, not a fork).
   */
  async checkConsistent(a: Checkpoint, b: Checkpoint): Promise<Uint8Array[]> {
    if (a.origin !== b.origin) {
      throw new TlogError('WRONG_ORIGIN', `checkpoints of two logs: ${a.origin}, ${b.origin}`);
    }
    const [small, large] = a.size <= b.size ? [a, b] : [b, a];
    if (small.size === large.size) {
      if (!bytesEqual(small.rootHash, large.rootHash)) {
        throw splitView(small, large, 'two different roots for the same size');
      }
      return [];
    }
    await this.#checkRoot(large);
    const proof = await consistencyProofFromTiles(small.size, large.size, this.#tiles());
    try {
      await verifyConsistency(small.size, large.size, small.rootHash, large.rootHash, proof);
    } catch (error) {
      if (isTlogError(error, 'INVALID_PROOF') || isTlogError(error, 'INCONSISTENT')) {
        throw splitView(small, large, error.message);
      }
      throw error;
    }
    return proof;
  }

  /**
   * Entries [start, end) of the tree at `checkpoint`, each proven: its leaf hash is in a
   * level-0 tile whose hashes an inclusion proof ties to the signed root.
   */
  async entries(checkpoint: Checkpoint, start: number, end: number): Promise<Uint8Array[]> {
    if (
      !(Number.isSafeInteger(start) && Number.isSafeInteger(end)) ||
      start < 0 ||
      end < start ||
      end > checkpoint.size
    ) {
      throw new TlogError(
        'INVALID_ARGUMENT',
        `entries [${String(start)}, ${String(end)}) are outside a log of ${String(checkpoint.size)}`,
      );
    }
    const out: Uint8Array[] = [];
    for (let t = Math.floor(start / TILE_WIDTH); t * TILE_WIDTH < end; t++) {
      const bundle = await this.#provenBundle(checkpoint, t);
      for (let k = 0; k < bundle.length; k++) {
        const index = t * TILE_WIDTH + k;
        if (index >= start && index < end) out.push(bundle[k] as Uint8Array);
      }
    }
    return out;
  }

  /** The inclusion proof for `entry` at `index`, verified against the checkpoint's root. */
  async proveInclusion(
    checkpoint: Checkpoint,
    index: number,
    entry: Uint8Array,
  ): Promise<Uint8Array[]> {
    const proof = await inclusionProofFromTiles(index, checkpoint.size, this.#tiles());
    await verifyInclusion(
      await leafHash(entry),
      index,
      checkpoint.size,
      proof,
      checkpoint.rootHash,
    );
    return proof;
  }

  /**
   * Searches back from the newest entry for an entry pinning each wanted metadata file, reading
   * at most `maxScan` entries (and none below `stopBelow`). Found entries come back with
   * verified inclusion proofs, in the order of `wanted`; the rest are undefined.
   */
  async findMetadata(
    checkpoint: Checkpoint,
    wanted: readonly WantedMetadata[],
    options: { maxScan?: number; stopBelow?: number } = {},
  ): Promise<(FoundEntry | undefined)[]> {
    const found: (FoundEntry | undefined)[] = wanted.map(() => undefined);
    const floor = Math.max(
      options.stopBelow ?? 0,
      checkpoint.size - (options.maxScan ?? DEFAULT_MAX_SCAN),
      0,
    );
    for (let t = Math.floor((checkpoint.size - 1) / TILE_WIDTH); t >= 0; t--) {
      if (found.every((f) => f !== undefined) || (t + 1) * TILE_WIDTH <= floor) break;
      const bundle = await this.#provenBundle(checkpoint, t);
      for (let k = bundle.length - 1; k >= 0; k--) {
        const index = t * TILE_WIDTH + k;
        if (index < floor) break;
        const bytes = bundle[k] as Uint8Array;
        let entry: MetadataEntry;
        try {
          entry = parseEntry(bytes);
        } catch {
          continue; // not one of ours; a monitor reports it
        }
        for (let w = 0; w < wanted.length; w++) {
          const want = wanted[w] as WantedMetadata;
          if (
            found[w] === undefined &&
            (await entryDescribes(entry, want.role, want.version, want.bytes))
          ) {
            found[w] = {
              index,
              bytes,
              entry,
              proof: await this.proveInclusion(checkpoint, index, bytes),
            };
          }
        }
      }
    }
    return found;
  }

  /** Entry bundle `t` of the tree at `checkpoint`, every entry matched to a proven tile. */
  async #provenBundle(checkpoint: Checkpoint, t: number): Promise<Uint8Array[]> {
    const width = Math.min(TILE_WIDTH, checkpoint.size - t * TILE_WIDTH);
    const bundle = parseEntryBundle(await this.#file(entriesPath(t, width)), width);
    const hashes = await this.#file(tilePath({ level: 0, index: t, width }));
    if (hashes.length !== width * HASH_SIZE) {
      throw new TlogError('MALFORMED_TILE', `tile 0/${String(t)} has the wrong length`);
    }
    for (let k = 0; k < width; k++) {
      const leaf = await leafHash(bundle[k] as Uint8Array);
      if (!bytesEqual(leaf, hashes.slice(k * HASH_SIZE, (k + 1) * HASH_SIZE))) {
        throw new TlogError(
          'INVALID_PROOF',
          `entry ${String(t * TILE_WIDTH + k)} does not match its leaf hash in the tile`,
        );
      }
    }
    // The proof path of the tile's first leaf runs through the tile's own hashes: if it reaches
    // the signed root, the whole tile is the one the log committed to.
    await this.proveInclusion(checkpoint, t * TILE_WIDTH, bundle[0] as Uint8Array);
    return bundle;
  }

  #checkRoot(checkpoint: Checkpoint): Promise<void> {
    let pending = this.#checkedRoots.get(checkpoint.size);
    if (pending === undefined) {
      pending = rootFromTiles(checkpoint.size, this.#tiles()).then((root) => {
        if (!bytesEqual(root, checkpoint.rootHash)) {
          throw new TlogError(
            'INVALID_PROOF',
            `the tiles served do not hash to the checkpoint's root at size ${String(checkpoint.size)}`,
          );
        }
      });
      this.#checkedRoots.set(checkpoint.size, pending);
      pending.catch(() => this.#checkedRoots.delete(checkpoint.size));
    }
    return pending;
  }

  #tiles(): TileReader {
    return (level, index, width) => this.#file(tilePath({ level, index, width }));
  }

  /** Immutable files are fetched once per reader. */
  #file(path: string): Promise<Uint8Array> {
    let pending = this.#files.get(path);
    if (pending === undefined) {
      pending = this.#fetch(path);
      this.#files.set(path, pending);
      pending.catch(() => this.#files.delete(path));
    }
    return pending;
  }
}

function splitView(small: Checkpoint, large: Checkpoint, why: string): TlogError {
  return new TlogError(
    'SPLIT_VIEW',
    `split view: the log's checkpoints at sizes ${String(small.size)} and ${String(large.size)} cannot both be true (${why})`,
  );
}
