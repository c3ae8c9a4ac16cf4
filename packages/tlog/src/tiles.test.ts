import { describe, expect, it } from 'vitest';
import { toHex } from './bytes.js';
import { isTlogError, type TlogErrorCode } from './errors.js';
import {
  consistencyProof,
  inclusionProof,
  leafHash,
  rootFromLeafHashes,
  subtreeReaderFromLeafHashes,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';
import {
  buildTile,
  consistencyProofFromTiles,
  encodeEntryBundle,
  entriesPath,
  inclusionProofFromTiles,
  newTiles,
  parseEntryBundle,
  parseTilePath,
  rootFromTiles,
  tileIndexPath,
  tilePath,
  tilesForSize,
  type TileReader,
} from './tiles.js';

async function rejects(promise: Promise<unknown>, code: TlogErrorCode): Promise<void> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isTlogError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
}

describe('tile paths (C2SP tlog-tiles)', () => {
  it('encodes indexes in 3-digit x-prefixed groups', () => {
    expect(tileIndexPath(0)).toBe('000');
    expect(tileIndexPath(67)).toBe('067');
    expect(tileIndexPath(999)).toBe('999');
    expect(tileIndexPath(1000)).toBe('x001/000');
    expect(tileIndexPath(1234067)).toBe('x001/x234/067');
  });

  it('names full, partial and entries tiles', () => {
    expect(tilePath({ level: 0, index: 1234067, width: 256 })).toBe('tile/0/x001/x234/067');
    expect(tilePath({ level: 1, index: 1234067, width: 8 })).toBe('tile/1/x001/x234/067.p/8');
    expect(entriesPath(1234067, 8)).toBe('tile/entries/x001/x234/067.p/8');
    expect(entriesPath(5, 256)).toBe('tile/entries/005');
    expect(() => tilePath({ level: 0, index: 0, width: 0 })).toThrow(/width/);
    expect(() => tilePath({ level: 0, index: 0, width: 257 })).toThrow(/width/);
  });

  it('parses only canonical paths', () => {
    expect(parseTilePath('tile/0/x001/x234/067.p/8')).toEqual({
      level: 0,
      index: 1234067,
      width: 8,
    });
    expect(parseTilePath('tile/entries/005')).toEqual({ level: 'entries', index: 5, width: 256 });
    for (const bad of [
      'tile/0/67',
      'tile/0/x000/067',
      'tile/0/067.p/256',
      'tile/0/067.p/0',
      'tile/01/067',
      'tile/0/x1/067',
    ]) {
      expect(() => parseTilePath(bad), bad).toThrow(
        expect.objectContaining({ code: 'MALFORMED_TILE' }) as Error,
      );
    }
  });
});

describe('which tiles a tree has', () => {
  it('lists full and partial tiles per level', () => {
    expect(tilesForSize(0)).toEqual([]);
    expect(tilesForSize(5)).toEqual([{ level: 0, index: 0, width: 5 }]);
    expect(tilesForSize(256)).toEqual([
      { level: 0, index: 0, width: 256 },
      { level: 1, index: 0, width: 1 },
    ]);
    expect(tilesForSize(70_000).filter((t) => t.width !== 256)).toEqual([
      { level: 0, index: 273, width: 112 },
      { level: 1, index: 1, width: 17 },
      { level: 2, index: 0, width: 1 },
    ]);
    expect(tilesForSize(70_000)).toHaveLength(274 + 2 + 1);
  });

  it('lists what an append writes', () => {
    expect(newTiles(5, 5)).toEqual([]);
    expect(newTiles(5, 300).map(tilePath)).toEqual([
      'tile/0/000',
      'tile/0/001.p/44',
      'tile/1/000.p/1',
    ]);
    expect(newTiles(300, 513).map(tilePath)).toEqual([
      'tile/0/001',
      'tile/0/002.p/1',
      'tile/1/000.p/2',
    ]);
  });
});

describe('proofs from tiles', async () => {
  const SIZES = [1, 7, 256, 300, 513, 1000];
  const MAX = SIZES[SIZES.length - 1] ?? 0;
  const leaves = await Promise.all(
    Array.from({ length: MAX }, (_, i) => leafHash(new TextEncoder().encode(`entry ${String(i)}`))),
  );
  const memory = subtreeReaderFromLeafHashes(leaves);
  // Tiles as successive appends leave them in storage: old partial tiles stay beside new ones.
  const store = new Map<string, Uint8Array>();
  let previous = 0;
  for (const size of SIZES) {
    for (const tile of newTiles(previous, size))
      store.set(tilePath(tile), await buildTile(memory, tile));
    previous = size;
  }
  const reads: string[] = [];
  const readTile: TileReader = (level, index, width) => {
    const path = tilePath({ level, index, width });
    reads.push(path);
    const bytes = store.get(path);
    return bytes === undefined
      ? Promise.reject(new Error(`missing ${path}`))
      : Promise.resolve(bytes);
  };

  it('stores every tile of every published size', () => {
    expect(store.size).toBe(11);
    expect([...store.keys()].sort()).toEqual(
      [
        'tile/0/000',
        'tile/0/000.p/7',
        'tile/0/001',
        'tile/0/001.p/44',
        'tile/0/002',
        'tile/0/002.p/1',
        'tile/0/003.p/232',
        'tile/1/000.p/1',
        'tile/1/000.p/2',
        'tile/1/000.p/3',
        'tile/0/000.p/1',
      ].sort(),
    );
  });

  it('gives the same roots and proofs as the leaves in memory', async () => {
    for (const size of SIZES) {
      const root = await rootFromTiles(size, readTile);
      expect(toHex(root)).toBe(toHex(await rootFromLeafHashes(leaves.slice(0, size))));
      for (const index of [0, 1, size >> 1, size - 2, size - 1].filter((i) => i >= 0 && i < size)) {
        const proof = await inclusionProofFromTiles(index, size, readTile);
        expect(proof.map(toHex)).toEqual((await inclusionProof(memory, index, size)).map(toHex));
        await verifyInclusion(leaves[index] as Uint8Array, index, size, proof, root);
      }
      for (const old of SIZES.filter((s) => s < size)) {
        const proof = await consistencyProofFromTiles(old, size, readTile);
        expect(proof.map(toHex)).toEqual((await consistencyProof(memory, old, size)).map(toHex));
        await verifyConsistency(old, size, await rootFromTiles(old, readTile), root, proof);
      }
    }
  });

  it('reads each tile once per proof, at the width of the tree proved', async () => {
    reads.length = 0;
    await inclusionProofFromTiles(700, 1000, readTile);
    // The leaf's own tile, the right edge's partial tile, and the level-1 hashes to its left.
    expect(reads.sort()).toEqual(['tile/0/002', 'tile/0/003.p/232', 'tile/1/000.p/3']);
  });

  it('rejects tiles of the wrong length, and tampered tiles fail verification', async () => {
    const short: TileReader = (level, index, width) =>
      readTile(level, index, width).then((b) => b.slice(0, b.length - 1));
    await rejects(rootFromTiles(1000, short), 'MALFORMED_TILE');

    const root = await rootFromLeafHashes(leaves);
    const tampered: TileReader = (level, index, width) =>
      readTile(level, index, width).then((b) => {
        const copy = b.slice();
        if (level === 1) copy[0] = (copy[0] ?? 0) ^ 1;
        return copy;
      });
    const proof = await inclusionProofFromTiles(999, 1000, tampered);
    await rejects(
      verifyInclusion(leaves[999] as Uint8Array, 999, 1000, proof, root),
      'INVALID_PROOF',
    );
  });
});

describe('entry bundles', () => {
  it('round-trips length-prefixed entries', () => {
    const entries = [new Uint8Array([]), new Uint8Array([1, 2, 3]), new Uint8Array(300).fill(9)];
    const bundle = encodeEntryBundle(entries);
    expect(Array.from(bundle.slice(0, 7))).toEqual([0, 0, 0, 3, 1, 2, 3]);
    expect(Array.from(bundle.slice(7, 9))).toEqual([1, 44]);
    expect(parseEntryBundle(bundle, 3)).toEqual(entries);
    expect(() => parseEntryBundle(bundle, 2)).toThrow(/expected 2/);
    expect(() => parseEntryBundle(bundle.slice(0, -1), 3)).toThrow(/truncated/);
    expect(() => encodeEntryBundle([new Uint8Array(65536)])).toThrow(/65535/);
  });
});
