import { describe, expect, test } from 'vitest';
import { tilePath, tilesForSize } from '@cairn/tlog/tiles';
import { classifyPath } from './paths.js';

const SHA = 'ab'.repeat(32);
const BASE = 'cd'.repeat(32);

describe('classifyPath: the repository layout', () => {
  test('timestamp.json and the unversioned root.json are mutable', () => {
    expect(classifyPath('/metadata/timestamp.json')).toEqual({
      key: 'metadata/timestamp.json',
      kind: 'timestamp',
      immutable: false,
      role: 'timestamp',
    });
    expect(classifyPath('/metadata/root.json')).toEqual({
      key: 'metadata/root.json',
      kind: 'root-copy',
      immutable: false,
      role: 'root',
    });
  });

  test('versioned metadata is immutable, with its version and role', () => {
    expect(classifyPath('/metadata/1.root.json')).toEqual({
      key: 'metadata/1.root.json',
      kind: 'root',
      immutable: true,
      version: 1,
      role: 'root',
    });
    expect(classifyPath('/metadata/12.targets.json')).toEqual({
      key: 'metadata/12.targets.json',
      kind: 'metadata',
      immutable: true,
      version: 12,
      role: 'targets',
    });
    expect(classifyPath('/metadata/3.snapshot.json')).toMatchObject({
      kind: 'metadata',
      version: 3,
      role: 'snapshot',
    });
    expect(classifyPath('/metadata/5.my-role_2.json')).toMatchObject({
      kind: 'metadata',
      version: 5,
      role: 'my-role_2',
    });
    expect(classifyPath('/metadata/9007199254740991.targets.json')).toMatchObject({
      version: Number.MAX_SAFE_INTEGER,
    });
    expect(classifyPath(`/metadata/1.${'r'.repeat(128)}.json`)).toMatchObject({ version: 1 });
  });

  test('hash-named targets, at the top or in directories, are immutable', () => {
    expect(classifyPath(`/targets/${SHA}.main.cvd`)).toEqual({
      key: `targets/${SHA}.main.cvd`,
      kind: 'target',
      immutable: true,
      sha256: SHA,
      targetPath: 'main.cvd',
    });
    expect(classifyPath(`/targets/daily/x/${SHA}.bytecode.cvd`)).toEqual({
      key: `targets/daily/x/${SHA}.bytecode.cvd`,
      kind: 'target',
      immutable: true,
      sha256: SHA,
      targetPath: 'daily/x/bytecode.cvd',
    });
    expect(classifyPath(`/targets/${SHA}.a.b.c`)).toMatchObject({ targetPath: 'a.b.c' });
  });

  test('percent-encoded names are decoded into the key', () => {
    expect(classifyPath(`/targets/my%20dir/${SHA}.n%C3%A4me%2B1.txt`)).toMatchObject({
      key: `targets/my dir/${SHA}.näme+1.txt`,
      targetPath: 'my dir/näme+1.txt',
    });
  });

  test('deltas are targets under _delta/', () => {
    expect(classifyPath(`/targets/_delta/main.cvd/${SHA}.${BASE}`)).toEqual({
      key: `targets/_delta/main.cvd/${SHA}.${BASE}`,
      kind: 'delta',
      immutable: true,
      sha256: SHA,
      targetPath: `_delta/main.cvd/${BASE}`,
    });
    expect(classifyPath(`/targets/_delta/daily/bytecode.cvd/${SHA}.${BASE}`)).toMatchObject({
      kind: 'delta',
      targetPath: `_delta/daily/bytecode.cvd/${BASE}`,
    });
    expect(classifyPath(`/targets/x/_delta/${SHA}.y`)).toMatchObject({ kind: 'target' });
  });

  test('32 segments at most, directories and the name together', () => {
    const deep = (n: number) => `/targets/${'d/'.repeat(n)}${SHA}.f`;
    expect(classifyPath(deep(31))).toMatchObject({ kind: 'target' });
    expect(classifyPath(deep(32))).toBeUndefined();
  });
});

describe('classifyPath: the transparency log (C2SP tlog-tiles)', () => {
  test('log/checkpoint is mutable', () => {
    expect(classifyPath('/log/checkpoint')).toEqual({
      key: 'log/checkpoint',
      kind: 'checkpoint',
      immutable: false,
    });
  });

  test('hash tiles, full and partial, at any level, are immutable', () => {
    expect(classifyPath('/log/tile/0/000')).toEqual({
      key: 'log/tile/0/000',
      kind: 'tile',
      immutable: true,
      tile: { level: 0, index: 0, width: 256 },
    });
    expect(classifyPath('/log/tile/0/000.p/5')).toEqual({
      key: 'log/tile/0/000.p/5',
      kind: 'tile',
      immutable: true,
      tile: { level: 0, index: 0, width: 5 },
    });
    expect(classifyPath('/log/tile/1/x001/x234/067.p/255')).toMatchObject({
      key: 'log/tile/1/x001/x234/067.p/255',
      tile: { level: 1, index: 1_234_067, width: 255 },
    });
    expect(classifyPath('/log/tile/63/999')).toMatchObject({
      tile: { level: 63, index: 999, width: 256 },
    });
    expect(classifyPath('/log/tile/2/x001/000.p/1')).toMatchObject({
      tile: { level: 2, index: 1000, width: 1 },
    });
  });

  test('entry bundles are immutable tiles too', () => {
    expect(classifyPath('/log/tile/entries/000')).toEqual({
      key: 'log/tile/entries/000',
      kind: 'tile',
      immutable: true,
      tile: { level: 'entries', index: 0, width: 256 },
    });
    expect(classifyPath('/log/tile/entries/x123/456.p/17')).toMatchObject({
      tile: { level: 'entries', index: 123_456, width: 17 },
    });
  });

  test('every tile of a real tree is a path the edge serves, and names the same tile', () => {
    for (const size of [1, 255, 256, 257, 65_536, 70_000, 1_234_567]) {
      for (const tile of tilesForSize(size)) {
        expect(classifyPath(`/log/${tilePath(tile)}`)?.tile).toEqual(tile);
      }
    }
  });
});

describe('classifyPath: everything else is refused', () => {
  test.each([
    ['the root', '/'],
    ['nothing', ''],
    ['a metadata listing', '/metadata/'],
    ['metadata without a slash', '/metadata'],
    ['a targets listing', '/targets/'],
    ['targets without a slash', '/targets'],
    ['a directory listing', '/targets/daily/'],
    ['the private prefix', '/_origin/draft.json'],
    ['the private prefix listing', '/_origin/'],
    ['a release under the private prefix', '/_origin/releases/1/release.json'],
    ['another top-level prefix', `/other/${SHA}.main.cvd`],
    ['a differently cased prefix', '/Metadata/timestamp.json'],
    ['version 0', '/metadata/0.root.json'],
    ['a leading zero', '/metadata/01.root.json'],
    ['a negative version', '/metadata/-1.root.json'],
    ['17 digits', '/metadata/12345678901234567.root.json'],
    ['a version past 2^53', '/metadata/9007199254740992.root.json'],
    ['16 digits past 2^53', '/metadata/9999999999999999.root.json'],
    ['no version', '/metadata/x.root.json'],
    ['a versioned timestamp', '/metadata/1.timestamp.json'],
    ['a role of 129 characters', `/metadata/1.${'r'.repeat(129)}.json`],
    ['a role with a dot', '/metadata/1.ro.le.json'],
    ['an encoded role', '/metadata/1.ro%20le.json'],
    ['another extension', '/metadata/1.root.txt'],
    ['a trailing slash', '/metadata/1.root.json/'],
    ['a backup of timestamp.json', '/metadata/timestamp.json.bak'],
    ['a slash after timestamp.json', '/metadata/timestamp.json/'],
    ['a metadata subdirectory', '/metadata/sub/1.root.json'],
    ['metadata named by an encoded dot', '/metadata/timestamp%2Ejson'],
    ['a target without a name', `/targets/${SHA}`],
    ['a target with an empty name', `/targets/${SHA}.`],
    ['a target without a hash', '/targets/main.cvd'],
    ['an upper-case hash', `/targets/${SHA.toUpperCase()}.main.cvd`],
    ['a 63-digit hash', `/targets/${SHA.slice(1)}.main.cvd`],
    ['a 65-digit hash', `/targets/a${SHA}.main.cvd`],
    ['an empty segment', `/targets/a//${SHA}.x`],
    ['a dot segment', `/targets/./${SHA}.x`],
    ['a dot-dot segment', `/targets/../${SHA}.x`],
    ['an encoded dot-dot segment', `/targets/%2e%2e/${SHA}.x`],
    ['an encoded dot segment', `/targets/%2E/${SHA}.x`],
    ['an encoded slash', `/targets/a%2Fb/${SHA}.x`],
    ['an encoded slash in the name', `/targets/${SHA}.a%2f..%2f..%2f_origin`],
    ['an encoded backslash', `/targets/a%5Cb/${SHA}.x`],
    ['a raw backslash', `/targets/a\\b/${SHA}.x`],
    ['an encoded NUL', `/targets/a%00/${SHA}.x`],
    ['an encoded newline', `/targets/${SHA}.x%0A`],
    ['an encoded DEL', `/targets/${SHA}.x%7F`],
    ['a malformed escape', `/targets/%E0%A4%A/${SHA}.x`],
    ['a lone percent', `/targets/100%/${SHA}.x`],
    ['the log prefix', '/log/'],
    ['the log without a slash', '/log'],
    ['a tile listing', '/log/tile/'],
    ['a level listing', '/log/tile/0/'],
    ['a differently cased checkpoint', '/log/Checkpoint'],
    ['a checkpoint with a slash', '/log/checkpoint/'],
    ['a checkpoint backup', '/log/checkpoint.bak'],
    ['an encoded checkpoint', '/log/%63heckpoint'],
    ['the writer lease', '/log/lock.json'],
    ['the private lease', '/_origin/log/lock.json'],
    ['two digits', '/log/tile/0/00'],
    ['four digits', '/log/tile/0/0000'],
    ['a group without x', '/log/tile/0/001/234'],
    ['a last group with x', '/log/tile/0/x001'],
    ['a leading zero group', '/log/tile/0/x000/001'],
    ['width 0', '/log/tile/0/000.p/0'],
    ['width 256', '/log/tile/0/000.p/256'],
    ['a width with a leading zero', '/log/tile/0/000.p/05'],
    ['a width without .p', '/log/tile/0/000/5'],
    ['an encoded slash in the width', '/log/tile/0/000.p%2F5'],
    ['level 64', '/log/tile/64/000'],
    ['a level with a leading zero', '/log/tile/01/000'],
    ['a negative level', '/log/tile/-1/000'],
    ['an entries level with a number', '/log/tile/entries/0/000'],
    ['an upper-case entries', '/log/tile/Entries/000'],
    ['a tile with a suffix', '/log/tile/0/000.json'],
    ['a tile with a trailing slash', '/log/tile/0/000/'],
    ['a dot-dot tile', '/log/tile/../000'],
    ['an index past 2^53', '/log/tile/0/x009/x007/x199/x254/x740/x992/000'],
  ])('%s: %s', (_what, path) => {
    expect(classifyPath(path)).toBeUndefined();
  });
});
