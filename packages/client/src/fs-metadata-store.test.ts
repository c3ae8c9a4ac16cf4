import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { utf8 } from '@cairn/verify/encoding';
import { isTempName, tempPathFor } from './atomic-file.js';
import { FsMetadataStore } from './fs-metadata-store.js';
import { makeTempDir, removeTempDir } from './testing/temp-dir.js';

let dir: string;

beforeEach(async () => {
  dir = await makeTempDir('cairn-store-');
});

afterEach(async () => {
  await removeTempDir(dir);
});

describe('FsMetadataStore', () => {
  it('persists the exact bytes as <role>.json and loads them back', async () => {
    const store = new FsMetadataStore(dir);
    // Not canonical, trailing space: stored as received, byte for byte.
    const bytes = utf8('{"signed": {"_type": "timestamp"}, "signatures": []} ');
    await store.persist('timestamp', bytes);
    expect(await readdir(dir)).toEqual(['timestamp.json']);
    expect(new Uint8Array(await readFile(join(dir, 'timestamp.json')))).toEqual(bytes);
    expect(await store.load('timestamp')).toEqual(bytes);
  });

  it('returns undefined for a role that was never stored', async () => {
    expect(await new FsMetadataStore(dir).load('snapshot')).toBeUndefined();
  });

  it('creates the directory when it does not exist yet', async () => {
    const store = new FsMetadataStore(join(dir, 'a', 'b'));
    expect(await store.load('root')).toBeUndefined();
    await store.persist('root', utf8('1'));
    expect(await readdir(join(dir, 'a', 'b'))).toEqual(['root.json']);
  });

  it('names files quote(role, "") + ".json", one flat file per role', async () => {
    const store = new FsMetadataStore(dir);
    const names = ['?', '#', '/delegatedrole', '../delegatedrole', 'a b/ü'];
    for (const [i, name] of names.entries()) await store.persist(name, utf8(String(i)));
    expect((await readdir(dir)).sort()).toEqual(
      [
        '%3F.json',
        '%23.json',
        '%2Fdelegatedrole.json',
        '..%2Fdelegatedrole.json',
        'a%20b%2F%C3%BC.json',
      ].sort(),
    );
    for (const [i, name] of names.entries())
      expect(await store.load(name)).toEqual(utf8(String(i)));
  });

  it('replaces an existing file and leaves no temp file behind', async () => {
    const store = new FsMetadataStore(dir);
    await store.persist('snapshot', utf8('old'));
    await store.persist('snapshot', utf8('new, and longer than the old bytes'));
    expect(await readdir(dir)).toEqual(['snapshot.json']);
    expect(await store.load('snapshot')).toEqual(utf8('new, and longer than the old bytes'));
  });

  it('on a failed write, keeps what was there and removes its temp file', async () => {
    const store = new FsMetadataStore(dir);
    // A directory where the file should go: the final rename fails after the temp is written.
    await mkdir(join(dir, 'targets.json'));
    await store.persist('root', utf8('root v1'));
    await expect(store.persist('targets', utf8('x'))).rejects.toMatchObject({ code: 'EISDIR' });
    expect((await readdir(dir)).sort()).toEqual(['root.json', 'targets.json']);
    expect(await store.load('root')).toEqual(utf8('root v1'));
  });

  it('removes a role, and ignores a role that is absent', async () => {
    const store = new FsMetadataStore(dir);
    await store.persist('timestamp', utf8('t'));
    await store.remove('timestamp');
    await store.remove('timestamp');
    await store.remove('never-stored');
    expect(await readdir(dir)).toEqual([]);
    expect(await store.load('timestamp')).toBeUndefined();
  });

  it('does not touch files it does not own', async () => {
    await writeFile(join(dir, 'notes.txt'), 'keep');
    const store = new FsMetadataStore(dir);
    await store.persist('root', utf8('r'));
    expect((await readdir(dir)).sort()).toEqual(['notes.txt', 'root.json']);
  });
});

describe('temp files', () => {
  it('are hidden, in the same directory, and never end in .json', () => {
    const temp = tempPathFor(join(dir, 'root.json'));
    const name = temp.slice(dir.length + 1);
    expect(dirname(temp)).toBe(dir);
    expect(name).toMatch(/^\.root\.json\.[0-9a-f]{12}\.tmp$/);
    expect(name.endsWith('.json')).toBe(false);
    expect(isTempName(name)).toBe(true);
    expect(tempPathFor(join(dir, 'root.json'))).not.toBe(temp);
  });
});
