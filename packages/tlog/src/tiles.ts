/**
 * C2SP tlog-tiles: the log's hashes stored as immutable tiles of 2^8 hashes, so any mirror can
 * serve the log with the same caching as targets, and a client can prove inclusion and
 * consistency from tiles fetched from anywhere.
 *
 * A tile at level L holds, for k in [N·256, N·256 + W), the hash of the complete subtree of
 * 256^L leaves starting at leaf k·256^L. A tile is full at W = 256; smaller widths are partial
 * tiles, which a later, larger tree replaces by a wider one at a different path.
 */
import {
  perfectSubtreeRoot,
  type SubtreeReader,
  consistencyProof,
  inclusionProof,
  treeRoot,
} from './merkle.js';
import { TlogError } from './errors.js';
import { HASH_SIZE, MAX_TREE_SIZE, TILE_HEIGHT, TILE_WIDTH } from './limits.js';

export interface Tile {
  /** 0 for leaf hashes, 1 for hashes of 256-leaf subtrees, and so on. */
  readonly level: number;
  /** The tile's position within its level. */
  readonly index: number;
  /** How many hashes it holds: TILE_WIDTH for a full tile, 1..255 for a partial one. */
  readonly width: number;
}

/** Fetches one tile's bytes (width × 32), e.g. from object storage or any mirror. */
export type TileReader = (level: number, index: number, width: number) => Promise<Uint8Array>;

/** The N path element: 3-digit groups, all but the last prefixed with `x` (1234067 → x001/x234/067). */
export function tileIndexPath(index: number): string {
  checkNonNegative(index, 'index');
  const groups: string[] = [];
  let n = index;
  do {
    groups.unshift(String(n % 1000).padStart(3, '0'));
    n = Math.floor(n / 1000);
  } while (n > 0);
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join('/');
}

function widthSuffix(width: number): string {
  if (!Number.isInteger(width) || width < 1 || width > TILE_WIDTH) {
    throw new TlogError(
      'INVALID_ARGUMENT',
      `width must be in [1, ${String(TILE_WIDTH)}], got ${String(width)}`,
    );
  }
  return width === TILE_WIDTH ? '' : `.p/${String(width)}`;
}

/** `tile/{L}/{N}[.p/{W}]`, relative to the log's prefix. */
export function tilePath(tile: Tile): string {
  checkNonNegative(tile.level, 'level');
  return `tile/${String(tile.level)}/${tileIndexPath(tile.index)}${widthSuffix(tile.width)}`;
}

/** `tile/entries/{N}[.p/{W}]`: the entry bundle beside level-0 tile N. */
export function entriesPath(index: number, width: number): string {
  return `tile/entries/${tileIndexPath(index)}${widthSuffix(width)}`;
}

/** Parses a tile path (hash or entries tile); `level` is 'entries' for entry bundles. */
export function parseTilePath(path: string): {
  level: number | 'entries';
  index: number;
  width: number;
} {
  const match =
    /^tile\/(entries|0|[1-9][0-9]{0,2})\/((?:x[0-9]{3}\/)*)([0-9]{3})(?:\.p\/([1-9][0-9]{0,2}))?$/.exec(
      path,
    );
  if (match === null) throw new TlogError('MALFORMED_TILE', `not a tile path: ${path}`);
  const [, levelText = '', prefix = '', last = '', widthText] = match;
  const groups = [
    ...prefix
      .split('/')
      .filter((g) => g !== '')
      .map((g) => g.slice(1)),
    last,
  ];
  // The first group of a multi-group index cannot be zero: one index, one path.
  if (groups.length > 1 && groups[0] === '000') {
    throw new TlogError('MALFORMED_TILE', `non-canonical tile index in ${path}`);
  }
  let index = 0;
  for (const g of groups) index = index * 1000 + Number(g);
  const width = widthText === undefined ? TILE_WIDTH : Number(widthText);
  if ((widthText !== undefined && width >= TILE_WIDTH) || !Number.isSafeInteger(index)) {
    throw new TlogError('MALFORMED_TILE', `non-canonical tile path ${path}`);
  }
  return { level: levelText === 'entries' ? 'entries' : Number(levelText), index, width };
}

/** How many complete level-`level` hashes a tree of `size` leaves has. */
function hashesAtLevel(size: number, level: number): number {
  return Math.floor(size / TILE_WIDTH ** level);
}

/** Every tile of a tree of `size` leaves, full and partial, lowest level first. */
export function tilesForSize(size: number): Tile[] {
  checkNonNegative(size, 'size');
  const tiles: Tile[] = [];
  for (let level = 0; ; level++) {
    const count = hashesAtLevel(size, level);
    if (count === 0) break;
    const full = Math.floor(count / TILE_WIDTH);
    for (let index = 0; index < full; index++) tiles.push({ level, index, width: TILE_WIDTH });
    if (count % TILE_WIDTH !== 0) tiles.push({ level, index: full, width: count % TILE_WIDTH });
  }
  return tiles;
}

/** The tiles a tree of `newSize` has and one of `oldSize` does not: what an append writes. */
export function newTiles(oldSize: number, newSize: number): Tile[] {
  const old = new Set(tilesForSize(oldSize).map(tilePath));
  return tilesForSize(newSize).filter((t) => !old.has(tilePath(t)));
}

/** A tile's bytes, from subtree hashes (e.g. `subtreeReaderFromLeafHashes` over the new leaves). */
export async function buildTile(read: SubtreeReader, tile: Tile): Promise<Uint8Array> {
  const out = new Uint8Array(tile.width * HASH_SIZE);
  for (let k = 0; k < tile.width; k++) {
    out.set(await read(TILE_HEIGHT * tile.level, tile.index * TILE_WIDTH + k), k * HASH_SIZE);
  }
  return out;
}

/**
 * A SubtreeReader for the tree of `size` leaves that reads only tiles of that tree, each at the
 * width that tree gives it, fetching each tile once. Wrong tile lengths are MALFORMED_TILE; wrong
 * contents show up as INVALID_PROOF when the result is checked against a signed head.
 */
export function tileSubtreeReader(size: number, readTile: TileReader): SubtreeReader {
  checkNonNegative(size, 'size');
  const cache = new Map<string, Promise<Uint8Array>>();
  const fetchTile = (level: number, index: number): Promise<Uint8Array> => {
    const width = Math.min(TILE_WIDTH, hashesAtLevel(size, level) - index * TILE_WIDTH);
    if (width < 1) {
      throw new TlogError(
        'INVALID_ARGUMENT',
        `tile ${String(level)}/${String(index)} is outside a tree of ${String(size)}`,
      );
    }
    const key = `${String(level)}/${String(index)}`;
    let pending = cache.get(key);
    if (pending === undefined) {
      pending = readTile(level, index, width).then((bytes) => {
        if (bytes.length !== width * HASH_SIZE) {
          throw new TlogError(
            'MALFORMED_TILE',
            `tile ${tilePath({ level, index, width })} is ${String(bytes.length)} bytes, expected ${String(width * HASH_SIZE)}`,
          );
        }
        return bytes;
      });
      cache.set(key, pending);
    }
    return pending;
  };
  return async (height, index) => {
    const level = Math.floor(height / TILE_HEIGHT);
    const span = 2 ** (height % TILE_HEIGHT);
    const first = index * span;
    const tileIndex = Math.floor(first / TILE_WIDTH);
    const offset = first % TILE_WIDTH;
    const bytes = await fetchTile(level, tileIndex);
    const hashes: Uint8Array[] = [];
    for (let k = 0; k < span; k++) {
      hashes.push(bytes.slice((offset + k) * HASH_SIZE, (offset + k + 1) * HASH_SIZE));
    }
    return perfectSubtreeRoot(hashes);
  };
}

/** The head of the tree of `size` leaves, from its tiles. */
export function rootFromTiles(size: number, readTile: TileReader): Promise<Uint8Array> {
  return treeRoot(tileSubtreeReader(size, readTile), size);
}

/** The inclusion proof for leaf `index` in the tree of `size` leaves, from its tiles. */
export function inclusionProofFromTiles(
  index: number,
  size: number,
  readTile: TileReader,
): Promise<Uint8Array[]> {
  return inclusionProof(tileSubtreeReader(size, readTile), index, size);
}

/** The consistency proof between trees of `oldSize` and `newSize` leaves, from the new tree's tiles. */
export function consistencyProofFromTiles(
  oldSize: number,
  newSize: number,
  readTile: TileReader,
): Promise<Uint8Array[]> {
  return consistencyProof(tileSubtreeReader(newSize, readTile), oldSize, newSize);
}

/** tlog-tiles entry bundle: each entry as a big-endian uint16 length, then its bytes. */
export function encodeEntryBundle(entries: readonly Uint8Array[]): Uint8Array {
  if (entries.length > TILE_WIDTH) {
    throw new TlogError('TOO_LARGE', `an entry bundle holds at most ${String(TILE_WIDTH)} entries`);
  }
  let total = 0;
  for (const e of entries) {
    if (e.length > 0xffff)
      throw new TlogError('TOO_LARGE', `entry of ${String(e.length)} bytes exceeds 65535`);
    total += 2 + e.length;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const e of entries) {
    out[at] = e.length >>> 8;
    out[at + 1] = e.length & 0xff;
    out.set(e, at + 2);
    at += 2 + e.length;
  }
  return out;
}

export function parseEntryBundle(bytes: Uint8Array, width: number): Uint8Array[] {
  const entries: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + 2 > bytes.length) throw new TlogError('MALFORMED_TILE', 'truncated entry length');
    const length = ((bytes[at] ?? 0) << 8) | (bytes[at + 1] ?? 0);
    if (at + 2 + length > bytes.length) throw new TlogError('MALFORMED_TILE', 'truncated entry');
    entries.push(bytes.slice(at + 2, at + 2 + length));
    at += 2 + length;
  }
  if (entries.length !== width) {
    throw new TlogError(
      'MALFORMED_TILE',
      `entry bundle has ${String(entries.length)} entries, expected ${String(width)}`,
    );
  }
  return entries;
}

function checkNonNegative(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > MAX_TREE_SIZE) {
    throw new TlogError(
      'INVALID_ARGUMENT',
      `${name} must be a safe non-negative integer, got ${String(value)}`,
    );
  }
}
