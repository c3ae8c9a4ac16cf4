import { mkdtemp, readdir, readFile, rm, writeFile, mkdir, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  bytes,
  describeBlobStoreContract,
  expectStorageError,
  readText,
  streamOf,
} from './contract.js';
import { describeLargeUploadContract } from './contract-node.js';
import { FsBlobStore } from './fs-store.js';

async function makeFsStore() {
  const directory = await mkdtemp(join(tmpdir(), 'cairn-fs-store-'));
  return {
    store: new FsBlobStore(directory),
    cleanup: () => rm(directory, { recursive: true, force: true }),
  };
}

describeBlobStoreContract('filesystem', makeFsStore, {
  keepsContentType: false,
  nestedKeys: 'refused',
});

describeLargeUploadContract('filesystem', makeFsStore);

/** Every file under `dir`, as relative paths, sorted. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

describe('FsBlobStore', () => {
  let dir: string;
  let store: FsBlobStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cairn-fs-store-'));
    store = new FsBlobStore(dir);
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps each object as a plain file at its key, byte for byte', async () => {
    await store.put('metadata/1.root.json', bytes('{"signed":{}}'));
    await store.put('targets/ab.main.cvd', streamOf([bytes('sig'), bytes('db')]));
    expect(await filesUnder(dir)).toEqual(['metadata/1.root.json', 'targets/ab.main.cvd']);
    expect(await readFile(join(dir, 'metadata/1.root.json'), 'utf8')).toBe('{"signed":{}}');
    expect(await readFile(join(dir, 'targets/ab.main.cvd'), 'utf8')).toBe('sigdb');
  });

  it('leaves no temp file behind after puts that succeed, fail a condition or fail midway', async () => {
    await store.put('k', bytes('1'));
    await expectStorageError(
      store.put('k', bytes('2'), { ifNoneMatch: '*' }),
      'PRECONDITION_FAILED',
    );
    await expectStorageError(
      store.put('k', bytes('2'), { ifMatch: 'stale' }),
      'PRECONDITION_FAILED',
    );
    await expect(store.put('k', streamOf([bytes('x')], new Error('broke')))).rejects.toThrow(
      'broke',
    );
    await expectStorageError(
      store.put('k', streamOf([bytes('abc')]), { contentLength: 4 }),
      'INVALID_ARGUMENT',
    );
    expect(await readdir(dir)).toEqual(['k']);
  });

  it('copies to a plain file and leaves no temp file behind, whatever the outcome', async () => {
    await store.put('staging/u1', bytes('target bytes'));
    await store.put('targets/t', bytes('taken'));
    await store.copy('staging/u1', 'targets/a b');
    await expectStorageError(
      store.copy('staging/u1', 'targets/t', { ifNoneMatch: '*' }),
      'PRECONDITION_FAILED',
    );
    await expectStorageError(
      store.copy('staging/u1', 'targets/x', { sourceIfMatch: 'stale' }),
      'PRECONDITION_FAILED',
    );
    await expectStorageError(store.copy('staging/none', 'targets/x'), 'NOT_FOUND');
    // Like put: a key below an object, or over a directory of keys, cannot be stored.
    await expectStorageError(store.copy('staging/u1', 'targets/t/below'), 'INVALID_KEY');
    await expectStorageError(store.copy('staging/u1', 'staging'), 'INVALID_KEY');
    // A directory is no object to copy.
    await expectStorageError(store.copy('targets', 'elsewhere'), 'NOT_FOUND');
    expect(await filesUnder(dir)).toEqual(['staging/u1', 'targets/a b', 'targets/t']);
    expect(await readFile(join(dir, 'targets', 'a b'), 'utf8')).toBe('target bytes');
    expect(await readFile(join(dir, 'targets', 't'), 'utf8')).toBe('taken');
  });

  it('never lists a temp file and refuses keys that look like one', async () => {
    await store.put('a/real', bytes('x'));
    await writeFile(join(dir, 'a', '.real.0123456789ab.cairn-tmp'), 'half-written');
    expect((await store.list({ prefix: '' })).objects.map((o) => o.key)).toEqual(['a/real']);
    await expectStorageError(store.get('a/.real.0123456789ab.cairn-tmp'), 'INVALID_KEY');
    await expectStorageError(store.put('.x.cairn-tmp', bytes('x')), 'INVALID_KEY');
  });

  it('gives a new etag on every write, even of the same bytes, and after delete and re-create', async () => {
    const etags = new Set<string>();
    for (let i = 0; i < 50; i++) {
      etags.add((await store.put('same', bytes('same bytes'))).etag);
      if (i % 2 === 1) await store.delete('same');
    }
    expect(etags.size).toBe(50);
  });

  it('takes paths only inside its directory', () => {
    expect(store.pathOf('a/b')).toBe(join(dir, 'a', 'b'));
    for (const key of ['../x', 'a/../../x', '/etc/passwd', 'a\\..\\..\\x']) {
      expect(() => store.pathOf(key)).toThrow(expect.objectContaining({ code: 'INVALID_KEY' }));
    }
  });

  it('decides If-None-Match: * at the moment of linking, against a file another writer made', async () => {
    // The file appears while our body is still streaming, as if another process wrote it.
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (pulled++ === 0) {
          await writeFile(join(dir, 'race'), 'other process');
          controller.enqueue(bytes('ours'));
        } else controller.close();
      },
    });
    await expectStorageError(store.put('race', body, { ifNoneMatch: '*' }), 'PRECONDITION_FAILED');
    expect(await readFile(join(dir, 'race'), 'utf8')).toBe('other process');
    expect(await readdir(dir)).toEqual(['race']);
  });

  it('lets exactly one of two stores over the same directory win a compare-and-swap', async () => {
    const other = new FsBlobStore(dir);
    let base = await store.put('cas', bytes('0'));
    for (let round = 1; round <= 20; round++) {
      const results = await Promise.allSettled([
        store.put('cas', bytes(`${round}a`), { ifMatch: base.etag }),
        other.put('cas', bytes(`${round}b`), { ifMatch: base.etag }),
      ]);
      const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      expect(won).toHaveLength(1);
      base = won[0] ?? base;
    }
  });

  it('serves the version it opened while a writer replaces the file', async () => {
    await store.put('v', bytes('old version'));
    const result = await store.get('v');
    if (result.notModified) throw new Error('expected a body');
    await store.put('v', bytes('new'));
    expect(await readText(result.body)).toBe('old version');
    expect(result.info.size).toBe(11);
  });

  it('prunes directories a delete leaves empty, so the name can hold an object again', async () => {
    await store.put('a/b/c', bytes('x'));
    await store.delete('a/b/c');
    expect(await readdir(dir)).toEqual([]);
    await store.put('a', bytes('now a file'));
    expect(await readFile(join(dir, 'a'), 'utf8')).toBe('now a file');
  });

  it('finds objects a previous store left in the directory', async () => {
    await mkdir(join(dir, 'x'));
    await writeFile(join(dir, 'x', 'y'), 'from before');
    const info = await store.head('x/y');
    expect(info?.size).toBe(11);
    const result = await store.get('x/y', { ifMatch: info?.etag });
    if (result.notModified) throw new Error('expected a body');
    expect(await readText(result.body)).toBe('from before');
  });

  it('treats a directory as no object: head undefined, get NOT_FOUND', async () => {
    await store.put('d/inner', bytes('x'));
    expect(await store.head('d')).toBeUndefined();
    await expectStorageError(store.get('d'), 'NOT_FOUND');
    await store.delete('d');
    expect(await store.head('d/inner')).toBeDefined();
  });

  it('skips symbolic links and other non-files when listing', async () => {
    await store.put('l/file', bytes('x'));
    await symlink('/etc', join(dir, 'l', 'link'));
    expect((await store.list({ prefix: 'l/' })).objects.map((o) => o.key)).toEqual(['l/file']);
  });
});
