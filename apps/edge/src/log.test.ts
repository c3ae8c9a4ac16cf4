import { MemoryBlobStore } from '@cairn/storage/memory-store';
import { openCheckpoint, type Checkpoint } from '@cairn/tlog/checkpoint';
import { isTlogError } from '@cairn/tlog/errors';
import { checkpointPolicy, logConfigFromRoot } from '@cairn/tlog/log-config';
import { LogReader } from '@cairn/tlog/log-reader';
import { tilePath, tilesForSize } from '@cairn/tlog/tiles';
import { beforeAll, describe, expect, test } from 'vitest';
import { readAll } from '../test/support/mirror-memory.js';
import { TestLog, createLogKey, forkOf, type TestLogKey } from '../test/support/log.js';
import { isEdgeError } from './errors.js';
import { TreeTiles, checkExtends, logTilePath, tileWidthAt, tileWithinSize } from './log.js';
import type { LogTile } from './paths.js';

/** Every tile and entry bundle of a tree of `size`, bundles after their level-0 tiles. */
function allTiles(size: number): LogTile[] {
  return tilesForSize(size).flatMap((tile): LogTile[] =>
    tile.level === 0 ? [tile, { level: 'entries', index: tile.index, width: tile.width }] : [tile],
  );
}

describe('which tiles a tree has', () => {
  test('tileWithinSize is membership in tilesForSize (and the bundles beside level 0)', () => {
    for (const size of [0, 1, 2, 255, 256, 257, 511, 512, 65_535, 65_536, 65_537, 70_000]) {
      const has = new Set(tilesForSize(size).map(tilePath));
      for (const level of [0, 1, 2, 3]) {
        for (let index = 0; index < 300; index++) {
          for (const width of [1, 2, 100, 255, 256]) {
            const tile = { level, index, width };
            expect(tileWithinSize(tile, size), `${size} ${tilePath(tile)}`).toBe(
              has.has(tilePath(tile)),
            );
            if (level === 0) {
              expect(tileWithinSize({ level: 'entries', index, width }, size)).toBe(
                has.has(tilePath(tile)),
              );
            }
          }
        }
      }
    }
  });

  test('tileWidthAt gives the width a tree gives a tile, 0 past its end', () => {
    expect(tileWidthAt(600, 0, 0)).toBe(256);
    expect(tileWidthAt(600, 0, 2)).toBe(88);
    expect(tileWidthAt(600, 0, 3)).toBe(0);
    expect(tileWidthAt(600, 1, 0)).toBe(2);
    expect(tileWidthAt(600, 2, 0)).toBe(0);
  });

  test('logTilePath names hash tiles and entry bundles as C2SP does', () => {
    expect(logTilePath({ level: 1, index: 1_234_067, width: 5 })).toBe('tile/1/x001/x234/067.p/5');
    expect(logTilePath({ level: 'entries', index: 3, width: 256 })).toBe('tile/entries/003');
  });
});

describe('TreeTiles: tiles from an untrusted upstream, proven against a signed checkpoint', () => {
  let key: TestLogKey;
  let log: TestLog;
  let checkpoint: Checkpoint;

  beforeAll(async () => {
    key = await createLogKey();
    log = new TestLog(key, new MemoryBlobStore());
    // Two full level-0 tiles, a partial one, and a partial level-1 tile.
    await log.fill(600, 'entry');
    const policy = await checkpointPolicy({
      origin: key.signer.name,
      key: key.vkey,
      witnesses: [],
      witnessThreshold: 0,
    });
    checkpoint = (await openCheckpoint(log.checkpoints.at(-1) ?? '', policy)).checkpoint;
  });

  /** A tree over `upstream` (with `change` applied), counting fetches; nothing held. */
  function tree(change: (path: string, bytes: Uint8Array) => Uint8Array = (_, b) => b) {
    const fetched: string[] = [];
    const tiles = new TreeTiles(checkpoint, {
      held: () => Promise.resolve(undefined),
      fetch: async (path) => {
        fetched.push(path);
        const bytes = await readAll(log.store, `log/${path}`).catch(() => undefined);
        return bytes === undefined ? undefined : change(path, bytes);
      },
    });
    return { tiles, fetched };
  }

  async function code(promise: Promise<unknown>): Promise<string> {
    try {
      await promise;
    } catch (error) {
      if (isTlogError(error) || isEdgeError(error)) return error.code;
      throw error;
    }
    return 'resolved';
  }

  test('every tile and bundle of the tree is handed out exactly as stored', async () => {
    const { tiles } = tree();
    const all = allTiles(600);
    expect(all.map(logTilePath)).toEqual([
      'tile/0/000',
      'tile/entries/000',
      'tile/0/001',
      'tile/entries/001',
      'tile/0/002.p/88',
      'tile/entries/002.p/88',
      'tile/1/000.p/2',
    ]);
    for (const tile of all) {
      expect(await tiles.tile(tile)).toEqual(await readAll(log.store, `log/${logTilePath(tile)}`));
    }
  });

  test('a tile past the tree is NOT_FOUND without a fetch', async () => {
    const { tiles, fetched } = tree();
    for (const tile of [
      { level: 0, index: 2, width: 89 },
      { level: 0, index: 3, width: 1 },
      { level: 0, index: 2, width: 256 },
      { level: 'entries', index: 3, width: 5 },
      { level: 1, index: 0, width: 3 },
      { level: 2, index: 0, width: 1 },
    ] as const) {
      expect(await code(tiles.tile(tile))).toBe('NOT_FOUND');
    }
    expect(fetched).toEqual([]);
  });

  test.each([
    ['a full level-0 tile', 'tile/0/001', { level: 0, index: 1, width: 256 }, 'INVALID_PROOF'],
    [
      'a partial level-0 tile',
      'tile/0/002.p/88',
      { level: 0, index: 2, width: 88 },
      'INVALID_PROOF',
    ],
    ['the level-1 tile', 'tile/1/000.p/2', { level: 1, index: 0, width: 2 }, 'INVALID_PROOF'],
    [
      'an entry bundle',
      'tile/entries/000',
      { level: 'entries', index: 0, width: 256 },
      'INVALID_PROOF',
    ],
  ] as const)('%s with one bit flipped is refused', async (_what, path, tile, expected) => {
    const { tiles } = tree((p, bytes) => {
      if (p !== path) return bytes;
      const copy = bytes.slice();
      copy[copy.length - 1] = (copy[copy.length - 1] ?? 0) ^ 1;
      return copy;
    });
    expect(await code(tiles.tile(tile))).toBe(expected);
  });

  test('a hash tile of the wrong length is MALFORMED_TILE; a missing one NOT_FOUND', async () => {
    const short = tree((p, bytes) => (p === 'tile/0/000' ? bytes.slice(0, 64) : bytes));
    expect(await code(short.tiles.tile({ level: 0, index: 0, width: 256 }))).toBe('MALFORMED_TILE');
    const tiles = new TreeTiles(checkpoint, {
      held: () => Promise.resolve(undefined),
      fetch: () => Promise.resolve(undefined),
    });
    expect(await code(tiles.tile({ level: 0, index: 0, width: 256 }))).toBe('NOT_FOUND');
  });

  test('held tiles are trusted and never fetched', async () => {
    const fetched: string[] = [];
    const tiles = new TreeTiles(checkpoint, {
      held: (path) => readAll(log.store, `log/${path}`).catch(() => undefined),
      fetch: (path) => {
        fetched.push(path);
        return Promise.resolve(undefined);
      },
    });
    for (const tile of allTiles(600)) await tiles.tile(tile);
    await tiles.checkRoot();
    expect(fetched).toEqual([]);
  });
});

describe('checkExtends', () => {
  test('an extension passes; a fork, a shrink and a same-size fork are SPLIT_VIEW', async () => {
    const key = await createLogKey();
    const log = new TestLog(key, new MemoryBlobStore());
    await log.fill(300, 'a');
    await log.fill(20, 'b');
    const config = logConfigFromRoot(key.rootField);
    if (config === undefined) throw new Error('no log config');
    const policy = await checkpointPolicy(config);
    const open = async (bytes: Uint8Array | undefined) =>
      (await openCheckpoint(bytes ?? '', policy)).checkpoint;
    const [older, newer] = [await open(log.checkpoints[0]), await open(log.checkpoints[1])];
    const reader = (store = log.store) =>
      new LogReader((path) => readAll(store, `log/${path}`), policy);

    await checkExtends(reader(), older, newer);
    await checkExtends(reader(), newer, newer);
    await checkExtends(reader(), undefined, newer);

    const splitView = async (promise: Promise<unknown>) => {
      const error: unknown = await promise.then(
        () => undefined,
        (e: unknown) => e,
      );
      return isTlogError(error) ? error.code : String(error);
    };
    expect(await splitView(checkExtends(reader(), newer, older))).toBe('SPLIT_VIEW');
    const fork = await forkOf(log, 250, 80);
    const forked = await open(fork.checkpoints.at(-1));
    expect(forked.size).toBe(330);
    expect(await splitView(checkExtends(reader(fork.store), newer, forked))).toBe('SPLIT_VIEW');
    const sameSize = await forkOf(log, 300, 20);
    const twin = await open(sameSize.checkpoints.at(-1));
    expect(twin.size).toBe(newer.size);
    expect(await splitView(checkExtends(reader(sameSize.store), newer, twin))).toBe('SPLIT_VIEW');
  });
});
