import { webHashPort } from '@cairn/verify/hash';
import { beforeEach, describe, expect, test } from 'vitest';
import {
  DAY,
  RecordingStore,
  T0,
  contentKey,
  failure,
  keysOf,
  mirrorFixture,
  readAll,
  sha256Hex,
  targetKey,
  text,
  utf8,
  type FakeUpstream,
  type SignedRepository,
} from '../test/support/mirror-memory.js';
import { MemoryBlobStore } from '@cairn/storage/memory-store';
import { checkpointPolicy, logConfigFromRoot } from '@cairn/tlog/log-config';
import { LogReader } from '@cairn/tlog/log-reader';
import { TestLog, createLogKey, forkOf } from '../test/support/log.js';
import { isEdgeError } from './errors.js';
import { syncMirror, type SyncOptions, type SyncProgress } from './sync.js';
import { VerifiedSource } from './verified-source.js';

let repo: SignedRepository;
let upstream: FakeUpstream;
let mirror: RecordingStore;
let events: SyncProgress[];
const now = () => new Date(T0.getTime() + 1000);

async function sync(extra: Partial<SyncOptions> = {}) {
  return syncMirror({
    store: mirror,
    upstreamUrl: 'http://upstream.test/',
    trustedRoot: await repo.trustedRoot,
    hash: webHashPort,
    fetch: upstream.fetch,
    timeoutMs: 2_000,
    now,
    onProgress: (event) => events.push(event),
    ...extra,
  });
}

/** What a TUF client sees through a verifying edge over the mirror: version and files. */
async function clientView(store: MemoryBlobStore | RecordingStore) {
  const edge = new VerifiedSource({
    store,
    trustedRoot: await repo.trustedRoot,
    hash: webHashPort,
    timeoutMs: 2_000,
    recheckMs: 0,
    now,
    log: () => undefined,
  });
  const release = await edge.current();
  const files: Record<string, string> = {};
  for (const [path, file] of release.targets.metadata.signed.targets) {
    const bytes = await readAll(store, targetKey(path, file.hashes.sha256 ?? ''));
    expect(sha256Hex(bytes)).toBe(file.hashes.sha256);
    files[path] = text(bytes);
  }
  return { version: release.timestamp.metadata.signed.version, files };
}

beforeEach(async () => {
  ({ repo, upstream, mirror } = await mirrorFixture());
  events = [];
});

describe('syncMirror from an in-memory upstream (fake fetch)', () => {
  test('a first sync copies everything, blobs first, timestamp last, and reports it', async () => {
    const report = await sync();
    expect(report).toEqual({
      timestampVersion: 1,
      previousVersion: undefined,
      objectsCopied: 7,
      bytesCopied: report.bytesCopied,
      upToDate: false,
    });
    const a = contentKey('a.txt', 'alpha');
    const b = contentKey('dir/b.txt', 'beta');
    expect(mirror.writes()).toEqual([
      a,
      b,
      'metadata/1.root.json',
      'metadata/1.targets.json',
      'metadata/1.snapshot.json',
      'metadata/root.json',
      'metadata/timestamp.json',
    ]);
    expect(await keysOf(mirror)).toEqual(await keysOf(repo.store));
    for (const key of await keysOf(repo.store)) {
      expect(text(await readAll(mirror, key))).toBe(text(await repo.read(key)));
    }
    expect(events[0]).toEqual({ kind: 'checked', upstreamVersion: 1, mirrorVersion: undefined });
    const copied = events.filter((e) => e.kind === 'copied');
    expect(copied.map((e) => [e.done, e.total])).toEqual([
      [1, 7],
      [2, 7],
      [3, 7],
      [4, 7],
      [5, 7],
      [6, 7],
      [7, 7],
    ]);
    expect(report.bytesCopied).toBe(
      copied.reduce((sum, e) => sum + (e.kind === 'copied' ? e.bytes : 0), 0),
    );
    expect(await clientView(mirror)).toEqual({
      version: 1,
      files: { 'a.txt': 'alpha', 'dir/b.txt': 'beta' },
    });
  });

  test('a second run with nothing new is up to date and writes nothing', async () => {
    await sync();
    const writes = mirror.writes().length;
    expect(await sync()).toEqual({
      timestampVersion: 1,
      previousVersion: 1,
      objectsCopied: 0,
      bytesCopied: 0,
      upToDate: true,
    });
    expect(mirror.writes().length).toBe(writes);
  });

  test('a new release copies only what is new; a timestamp-only refresh copies the timestamp', async () => {
    await sync();
    await repo.release({ 'a.txt': 'alpha', 'dir/b.txt': 'beta 2' });
    mirror.calls.length = 0;
    const report = await sync();
    expect(report).toMatchObject({ timestampVersion: 2, previousVersion: 1, objectsCopied: 4 });
    expect(mirror.writes()).toEqual([
      contentKey('dir/b.txt', 'beta 2'),
      'metadata/2.targets.json',
      'metadata/2.snapshot.json',
      'metadata/timestamp.json',
    ]);
    expect(await clientView(mirror)).toEqual({
      version: 2,
      files: { 'a.txt': 'alpha', 'dir/b.txt': 'beta 2' },
    });
    await repo.publishTimestamp();
    mirror.calls.length = 0;
    expect(await sync()).toMatchObject({
      timestampVersion: 3,
      previousVersion: 2,
      objectsCopied: 1,
    });
    expect(mirror.writes()).toEqual(['metadata/timestamp.json']);
  });

  test('a run that dies halfway leaves the previous release consistent, and the next run finishes it', async () => {
    await sync();
    await repo.release({ 'a.txt': 'alpha 2', 'dir/b.txt': 'beta 2', 'c.txt': 'gamma' });
    // Each run may write twice (one blob: staging put and copy), then storage fails.
    let failed = 0;
    for (;;) {
      mirror = new RecordingStore(mirror.inner);
      mirror.failAfterPuts = 2;
      const outcome = await sync().then(
        () => 'done',
        (error: unknown) => (isEdgeError(error) ? error.code : String(error)),
      );
      mirror.failAfterPuts = Infinity;
      if (outcome === 'done') break;
      expect(outcome).toBe('STORAGE_UNAVAILABLE');
      failed++;
      expect(await clientView(mirror)).toEqual({
        version: 1,
        files: { 'a.txt': 'alpha', 'dir/b.txt': 'beta' },
      });
    }
    // Three blobs, then targets and snapshot in one run, then the timestamp.
    expect(failed).toBe(4);
    expect(await clientView(mirror)).toEqual({
      version: 2,
      files: { 'a.txt': 'alpha 2', 'dir/b.txt': 'beta 2', 'c.txt': 'gamma' },
    });
    expect(await keysOf(mirror, '_edge/')).toEqual([]);
    mirror.calls.length = 0;
    expect(await sync()).toMatchObject({ timestampVersion: 2, previousVersion: 2, upToDate: true });
    expect(mirror.writes()).toEqual([]);
  });

  test('a re-run skips blobs already there (by size) and replaces one of the wrong size', async () => {
    await sync();
    await repo.release({ 'a.txt': 'alpha 2', 'dir/b.txt': 'beta' });
    const fresh = contentKey('a.txt', 'alpha 2');
    await mirror.inner.put(fresh, utf8('trunc'));
    events = [];
    mirror.calls.length = 0;
    const report = await sync();
    expect(report).toMatchObject({ timestampVersion: 2, objectsCopied: 4 });
    expect(text(await readAll(mirror, fresh))).toBe('alpha 2');
    expect(events.filter((e) => e.kind === 'skipped').map((e) => e.key)).toEqual([
      contentKey('dir/b.txt', 'beta'),
      'metadata/1.root.json',
      'metadata/root.json',
    ]);
  });
  test('an upstream behind the mirror is refused and nothing is written', async () => {
    await repo.release({ 'a.txt': 'alpha 2' });
    await sync();
    const [older] = repo.timestamps;
    if (older === undefined) throw new Error('no first timestamp');
    await repo.store.put('metadata/timestamp.json', older);
    mirror.calls.length = 0;
    expect(await failure(sync())).toMatch(
      /^UPSTREAM_INVALID: upstream is behind this mirror \(timestamp: version 1 is older than trusted version 2\)/,
    );
    expect(mirror.writes()).toEqual([]);
  });

  test("an upstream snapshot whose targets version went back from the mirror's is refused (5.5.5)", async () => {
    await repo.release({ 'a.txt': 'alpha 2' });
    await sync();
    // The snapshot key signs a new snapshot naming targets v1 again: only the mirror's own
    // snapshot (targets v2) can tell it went backwards.
    repo.targetsVersion = 0;
    await repo.release({ 'a.txt': 'alpha 3' });
    mirror.calls.length = 0;
    expect(await failure(sync())).toBe(
      "UPSTREAM_INVALID: upstream's snapshot v3 has an older targets.json than this mirror's (v2): refusing to go backwards; nothing was copied",
    );
    expect(mirror.writes()).toEqual([]);
  });

  test('a corrupted blob upstream is refused; nothing lands under its key and the mirror keeps its release', async () => {
    await sync();
    await repo.release({ 'a.txt': 'alpha 2' });
    const key = contentKey('a.txt', 'alpha 2');
    await repo.store.put(key, utf8('alpha 3'));
    expect(await failure(sync())).toMatch(
      new RegExp(`^UPSTREAM_INVALID: ${key}: target|^UPSTREAM_INVALID: ${key}: `),
    );
    expect(await mirror.head(key)).toBeUndefined();
    expect(await keysOf(mirror, '_edge/')).toEqual([]);
    expect((await clientView(mirror)).version).toBe(1);
    await repo.store.put(key, utf8('alpha 2'));
    expect(await sync()).toMatchObject({ timestampVersion: 2 });
    expect(await clientView(mirror)).toEqual({ version: 2, files: { 'a.txt': 'alpha 2' } });
  });

  test('upstream metadata that does not verify is UPSTREAM_INVALID', async () => {
    const snapshot = text(await repo.read('metadata/1.snapshot.json'));
    await repo.store.put(
      'metadata/1.snapshot.json',
      utf8(snapshot.replace('"version": 1', '"version": 2')),
    );
    expect(await failure(sync())).toMatch(
      /^UPSTREAM_INVALID: upstream http:\/\/upstream.test\/ does not verify: /,
    );
    expect(mirror.writes()).toEqual([]);
  });

  test('root rotations are copied in order, and an expired mirror timestamp is still the rollback reference', async () => {
    await sync();
    await repo.publishRoot({ rotate: ['timestamp', 'snapshot'] });
    await repo.release({ 'a.txt': 'alpha 2' });
    mirror.calls.length = 0;
    const report = await sync({ now: () => new Date(T0.getTime() + 2 * DAY) }).catch(
      (error: unknown) => error,
    );
    // The repository's own timestamp expired too: a frozen upstream is refused, nothing written.
    expect(isEdgeError(report, 'UPSTREAM_INVALID')).toBe(true);
    expect(mirror.writes()).toEqual([]);
    expect(await sync()).toMatchObject({ timestampVersion: 2, previousVersion: undefined });
    expect(mirror.writes()).toEqual([
      contentKey('a.txt', 'alpha 2'),
      'metadata/2.root.json',
      'metadata/2.targets.json',
      'metadata/2.snapshot.json',
      'metadata/root.json',
      'metadata/timestamp.json',
    ]);
    expect(text(await readAll(mirror, 'metadata/root.json'))).toBe(
      text(await repo.read('metadata/2.root.json')),
    );
  });

  test('staging objects a killed job left are removed once an hour old', async () => {
    await mirror.put('_edge/staging/left-behind', utf8('partial'));
    await sync({ now: () => new Date(Date.now() + 2 * 3_600_000) }).catch(() => undefined);
    expect(await keysOf(mirror, '_edge/')).toEqual([]);
  });

  test('an unreachable upstream is UPSTREAM_UNAVAILABLE', async () => {
    upstream.down = true;
    expect(await failure(sync())).toMatch(
      /^UPSTREAM_UNAVAILABLE: GET http:\/\/upstream.test\/metadata\/2.root.json: HTTP 503/,
    );
  });
});

describe('syncMirror and the transparency log (in-memory)', () => {
  let log: TestLog;

  beforeEach(async () => {
    ({ repo, upstream, mirror } = await mirrorFixture({ log: await createLogKey() }));
    if (repo.log === undefined) throw new Error('no log');
    log = repo.log;
  });

  /** The mirror's log read through tlog's LogReader: every entry proven against its checkpoint. */
  async function mirroredEntries(): Promise<string[]> {
    const config = logConfigFromRoot(log.key.rootField);
    if (config === undefined) throw new Error('no config');
    const reader = new LogReader(
      (path) => readAll(mirror, `log/${path}`),
      await checkpointPolicy(config),
    );
    const { checkpoint } = await reader.latest();
    return (await reader.entries(checkpoint, 0, checkpoint.size)).map(text);
  }

  test('a first sync copies the tiles, then the checkpoint, all before timestamp.json', async () => {
    const report = await sync();
    expect(report).toEqual({
      timestampVersion: 1,
      previousVersion: undefined,
      objectsCopied: 10,
      bytesCopied: report.bytesCopied,
      upToDate: false,
      logSize: 3,
    });
    expect(mirror.writes()).toEqual([
      contentKey('a.txt', 'alpha'),
      contentKey('dir/b.txt', 'beta'),
      'log/tile/0/000.p/3',
      'log/tile/entries/000.p/3',
      'log/checkpoint',
      'metadata/1.root.json',
      'metadata/1.targets.json',
      'metadata/1.snapshot.json',
      'metadata/root.json',
      'metadata/timestamp.json',
    ]);
    expect(await mirroredEntries()).toEqual(log.entries.map(text));
    expect(text(await readAll(mirror, 'log/checkpoint'))).toBe(
      text(log.checkpoints.at(-1) ?? utf8('')),
    );
    mirror.calls.length = 0;
    expect(await sync()).toMatchObject({ upToDate: true, objectsCopied: 0, logSize: 3 });
    expect(mirror.writes()).toEqual([]);
  });

  test('a grown log copies only the new tiles (a full one, the new right edge) and the checkpoint', async () => {
    await sync();
    await repo.release({ 'a.txt': 'alpha 2', 'dir/b.txt': 'beta' });
    await log.fill(300, 'more');
    mirror.calls.length = 0;
    const report = await sync();
    expect(report).toMatchObject({ timestampVersion: 2, previousVersion: 1, logSize: 305 });
    expect(mirror.writes()).toEqual([
      contentKey('a.txt', 'alpha 2'),
      'log/tile/1/000.p/1',
      'log/tile/0/000',
      'log/tile/entries/000',
      'log/tile/0/001.p/49',
      'log/tile/entries/001.p/49',
      'log/checkpoint',
      'metadata/2.targets.json',
      'metadata/2.snapshot.json',
      'metadata/timestamp.json',
    ]);
    expect(await mirroredEntries()).toEqual(log.entries.map(text));
  });

  test('the log grown without a new timestamp is still copied', async () => {
    await sync();
    await log.fill(2, 'cosigned-later');
    mirror.calls.length = 0;
    expect(await sync()).toMatchObject({ upToDate: false, objectsCopied: 3, logSize: 5 });
    expect(mirror.writes()).toEqual([
      'log/tile/0/000.p/5',
      'log/tile/entries/000.p/5',
      'log/checkpoint',
    ]);
  });

  test('a forked upstream log is SPLIT_VIEW and nothing is written', async () => {
    await sync();
    await repo.release({ 'a.txt': 'alpha 2' });
    const fork = await forkOf(log, 2, 300);
    for (const key of await keysOf(fork.store, 'log/')) {
      await repo.store.put(key, await readAll(fork.store, key));
    }
    mirror.calls.length = 0;
    expect(await failure(sync())).toMatch(
      /^SPLIT_VIEW: upstream's log does not extend this mirror's \(split view: .*\): refusing it; nothing was copied$/,
    );
    expect(mirror.writes()).toEqual([]);
    expect(await clientView(mirror)).toMatchObject({ version: 1 });
  });

  test('an upstream log that went back is SPLIT_VIEW and nothing is written', async () => {
    await repo.release({ 'a.txt': 'alpha 2' });
    await sync();
    await repo.store.put('log/checkpoint', log.checkpoints[1] ?? utf8(''));
    await repo.release({ 'a.txt': 'alpha 3' });
    await repo.store.put('log/checkpoint', log.checkpoints[1] ?? utf8(''));
    mirror.calls.length = 0;
    expect(await failure(sync())).toMatch(/^SPLIT_VIEW: .*went back from 5 to 2 entries/);
    expect(mirror.writes()).toEqual([]);
  });

  test('a checkpoint not signed by the log key, or a tile that is not the tree, is UPSTREAM_INVALID', async () => {
    const other = new TestLog(await createLogKey(), new MemoryBlobStore());
    await other.append(log.entries);
    const real = await repo.read('log/checkpoint');
    await repo.store.put('log/checkpoint', other.checkpoints.at(-1) ?? utf8(''));
    expect(await failure(sync())).toMatch(
      /^UPSTREAM_INVALID: upstream's log does not verify: UNKNOWN_KEY/,
    );
    expect(mirror.writes()).toEqual([]);

    await repo.store.put('log/checkpoint', real);
    const bundle = await repo.read('log/tile/entries/000.p/3');
    await repo.store.put('log/tile/entries/000.p/3', bundle.slice(0, -1));
    expect(await failure(sync())).toMatch(
      /^UPSTREAM_INVALID: upstream's log does not verify: MALFORMED_TILE/,
    );
    expect(await keysOf(mirror, 'log/')).toEqual(['log/tile/0/000.p/3']);
    expect(await keysOf(mirror, 'metadata/')).toEqual([]);
    await repo.store.put('log/tile/entries/000.p/3', bundle);
    expect(await sync()).toMatchObject({ logSize: 3 });
    expect(await mirroredEntries()).toEqual(log.entries.map(text));
  });

  test('a run that dies while copying tiles leaves the old checkpoint; the next run finishes', async () => {
    await sync();
    await repo.release({ 'a.txt': 'alpha 2', 'dir/b.txt': 'beta' });
    await log.fill(300, 'more');
    const before = await readAll(mirror, 'log/checkpoint');
    mirror = new RecordingStore(mirror.inner);
    // The blob (staging put and copy), then two tiles.
    mirror.failAfterPuts = 4;
    expect(await failure(sync())).toMatch(/^STORAGE_UNAVAILABLE/);
    expect(mirror.writes()).toEqual([
      contentKey('a.txt', 'alpha 2'),
      'log/tile/1/000.p/1',
      'log/tile/0/000',
    ]);
    expect(await readAll(mirror, 'log/checkpoint')).toEqual(before);
    expect(await clientView(mirror)).toMatchObject({ version: 1 });
    mirror = new RecordingStore(mirror.inner);
    expect(await sync()).toMatchObject({ timestampVersion: 2, logSize: 305 });
    expect(mirror.writes()).toEqual([
      'log/tile/entries/000',
      'log/tile/0/001.p/49',
      'log/tile/entries/001.p/49',
      'log/checkpoint',
      'metadata/2.targets.json',
      'metadata/2.snapshot.json',
      'metadata/timestamp.json',
    ]);
    expect(await mirroredEntries()).toEqual(log.entries.map(text));
  });
});
