import { webHashPort } from '@cairn/verify/hash';
import { beforeEach, describe, expect, test } from 'vitest';
import {
  T0,
  bodyText,
  contentKey,
  keysOf,
  mirrorFixture,
  readAll,
  refusal,
  repoPath,
  text,
  utf8,
  type FakeUpstream,
  type RecordingStore,
  type SignedRepository,
} from '../test/support/mirror-memory.js';
import type { TestLog } from '../test/support/log.js';
import { createLogKey, forkOf } from '../test/support/log.js';
import { parseEdgeConfig } from './config.js';
import { PullThroughSource } from './pull-through.js';

let repo: SignedRepository;
let upstream: FakeUpstream;
let mirror: RecordingStore;
let clock: Date;
let logs: Record<string, unknown>[];

async function source(
  vars: Record<string, string> = {},
  fetch: typeof globalThis.fetch = upstream.fetch,
): Promise<PullThroughSource> {
  return new PullThroughSource({
    store: mirror,
    config: parseEdgeConfig({
      CAIRN_MODE: 'pull-through',
      CAIRN_UPSTREAM_URL: 'http://upstream.test/',
      CAIRN_TRUSTED_ROOT: text(await repo.trustedRoot),
      CAIRN_STORAGE_TIMEOUT_MS: '2000',
      ...vars,
    }),
    hash: webHashPort,
    fetch,
    now: () => clock,
    log: (entry) => logs.push(entry),
  });
}

const alpha = contentKey('a.txt', 'alpha');

beforeEach(async () => {
  ({ repo, upstream, mirror } = await mirrorFixture());
  clock = new Date(T0.getTime() + 1000);
  logs = [];
});

describe('PullThroughSource from an in-memory upstream (fake fetch)', () => {
  test('the timestamp is verified upstream, written in publication order, and served from the mirror', async () => {
    const edge = await source();
    expect(await bodyText(edge, '/metadata/timestamp.json')).toBe(
      text(await repo.read('metadata/timestamp.json')),
    );
    expect(mirror.writes()).toEqual([
      'metadata/1.root.json',
      'metadata/1.targets.json',
      'metadata/1.snapshot.json',
      'metadata/root.json',
      'metadata/timestamp.json',
    ]);
    expect(upstream.requests).toEqual([
      'GET /metadata/2.root.json',
      'GET /metadata/timestamp.json',
      'GET /metadata/1.snapshot.json',
      'GET /metadata/1.targets.json',
      'GET /metadata/1.root.json',
    ]);
    // Within max-age: no upstream request at all.
    expect(await bodyText(edge, '/metadata/1.snapshot.json')).toBe(
      text(await repo.read('metadata/1.snapshot.json')),
    );
    expect(await bodyText(edge, '/metadata/timestamp.json')).toBe(
      text(await repo.read('metadata/timestamp.json')),
    );
    expect(upstream.requests).toHaveLength(5);
  });

  test('a target is fetched once, verified, stored, then served from the mirror', async () => {
    const edge = await source();
    expect(await bodyText(edge, `/${alpha}`)).toBe('alpha');
    const fetched = upstream.requests.filter((r) => r.startsWith('GET /targets/'));
    expect(fetched).toEqual([`GET /${alpha}`]);
    expect(await bodyText(edge, `/${alpha}`)).toBe('alpha');
    expect((await edge.head(repoPath(`/${alpha}`)))?.size).toBe(5);
    expect(upstream.requests.filter((r) => r.startsWith('GET /targets/'))).toEqual(fetched);
    expect(await keysOf(mirror, 'targets/')).toEqual([alpha]);
    expect(await keysOf(mirror, '_edge/')).toEqual([]);
  });

  test('concurrent misses of one object share one upstream fetch', async () => {
    const edge = await source();
    await bodyText(edge, '/metadata/timestamp.json');
    const bodies = await Promise.all([1, 2, 3, 4].map(() => bodyText(edge, `/${alpha}`)));
    expect(bodies).toEqual(['alpha', 'alpha', 'alpha', 'alpha']);
    expect(upstream.requests.filter((r) => r.startsWith('GET /targets/'))).toEqual([
      `GET /${alpha}`,
    ]);
  });

  test('a corrupted target upstream is UPSTREAM_INVALID, nothing is stored, and it is served once upstream is fixed', async () => {
    await repo.store.put(alpha, utf8('alphA'));
    const edge = await source();
    expect(await refusal(edge.get(repoPath(`/${alpha}`)))).toBe('UPSTREAM_INVALID');
    expect(await refusal(edge.head(repoPath(`/${alpha}`)))).toBe('UPSTREAM_INVALID');
    expect(await keysOf(mirror, 'targets/')).toEqual([]);
    expect(await keysOf(mirror, '_edge/')).toEqual([]);
    await repo.store.put(alpha, utf8('alpha'));
    expect(await bodyText(edge, `/${alpha}`)).toBe('alpha');
  });

  test('a file not in the current release is checked against the hash in its name', async () => {
    const edge = await source();
    await repo.release({ 'a.txt': 'alpha 2' });
    const old = contentKey('dir/b.txt', 'beta');
    expect(await bodyText(edge, `/${old}`)).toBe('beta');
    const bogus = contentKey('a.txt', 'not there');
    expect(await refusal(edge.get(repoPath(`/${bogus}`)))).toBe('NOT_FOUND');
    await repo.store.put(bogus, utf8('something else'));
    expect(await refusal(edge.get(repoPath(`/${bogus}`)))).toBe('UPSTREAM_INVALID');
    expect(await mirror.head(bogus)).toBeUndefined();
  });

  test('after max-age the timestamp is revalidated with If-None-Match, and a new release is picked up', async () => {
    const edge = await source({ CAIRN_TIMESTAMP_MAX_AGE: '60' });
    await bodyText(edge, '/metadata/timestamp.json');
    upstream.requests.length = 0;
    clock = new Date(clock.getTime() + 61_000);
    await bodyText(edge, '/metadata/timestamp.json');
    expect(upstream.requests).toEqual([
      'GET /metadata/2.root.json',
      'GET /metadata/timestamp.json (If-None-Match)',
    ]);
    await repo.release({ 'a.txt': 'alpha 2' });
    expect(JSON.parse(await bodyText(edge, '/metadata/timestamp.json'))).toMatchObject({
      signed: { version: 1 },
    });
    clock = new Date(clock.getTime() + 61_000);
    expect(JSON.parse(await bodyText(edge, '/metadata/timestamp.json'))).toMatchObject({
      signed: { version: 2 },
    });
    expect(await bodyText(edge, `/${contentKey('a.txt', 'alpha 2')}`)).toBe('alpha 2');
  });

  test('an upstream that went away leaves the mirror serving what it holds', async () => {
    const edge = await source({ CAIRN_TIMESTAMP_MAX_AGE: '0' });
    const held = await bodyText(edge, '/metadata/timestamp.json');
    await bodyText(edge, `/${alpha}`);
    upstream.down = true;
    expect(await bodyText(edge, '/metadata/timestamp.json')).toBe(held);
    expect(await bodyText(edge, `/${alpha}`)).toBe('alpha');
    expect(await refusal(edge.get(repoPath(`/${contentKey('dir/b.txt', 'beta')}`)))).toBe(
      'UPSTREAM_UNAVAILABLE',
    );
    expect(logs.filter((l) => l.event === 'upstream-unavailable')).toHaveLength(1);

    // A fresh mirror process over the same store, upstream still down: it verifies what it holds.
    const restarted = await source({ CAIRN_TIMESTAMP_MAX_AGE: '0' });
    expect(await bodyText(restarted, '/metadata/timestamp.json')).toBe(held);
  });

  test('an empty mirror with its upstream down answers UPSTREAM_UNAVAILABLE, not 404', async () => {
    upstream.down = true;
    const edge = await source();
    expect(await refusal(edge.get(repoPath('/metadata/timestamp.json')))).toBe(
      'UPSTREAM_UNAVAILABLE',
    );
    expect(await refusal(edge.get(repoPath('/metadata/1.snapshot.json')))).toBe(
      'UPSTREAM_UNAVAILABLE',
    );
  });

  test('upstream metadata that does not verify is UPSTREAM_INVALID and nothing is written', async () => {
    const snapshot = text(await repo.read('metadata/1.snapshot.json'));
    await repo.store.put(
      'metadata/1.snapshot.json',
      // Another first character, whatever it was (the keys are fresh every run).
      utf8(snapshot.replace(/"sig": "(.)/, (_, c: string) => `"sig": "${c === '0' ? '1' : '0'}`)),
    );
    const edge = await source();
    expect(await refusal(edge.get(repoPath('/metadata/timestamp.json')))).toBe('UPSTREAM_INVALID');
    expect(mirror.writes()).toEqual([]);
    expect(logs).toEqual([expect.objectContaining({ level: 'error', event: 'upstream-refused' })]);
  });

  test('an upstream that rolls back is refused; the mirror keeps the newer release', async () => {
    await repo.release({ 'a.txt': 'alpha 2' });
    const edge = await source({ CAIRN_TIMESTAMP_MAX_AGE: '0' });
    const newer = await bodyText(edge, '/metadata/timestamp.json');
    const [older] = repo.timestamps;
    if (older === undefined) throw new Error('no first timestamp');
    await repo.store.put('metadata/timestamp.json', older);
    expect(await refusal(edge.get(repoPath('/metadata/timestamp.json')))).toBe('UPSTREAM_INVALID');
    expect(text(await readAll(mirror, 'metadata/timestamp.json'))).toBe(newer);
    // A restarted mirror takes its own timestamp as the rollback reference.
    const restarted = await source({ CAIRN_TIMESTAMP_MAX_AGE: '0' });
    expect(await refusal(restarted.get(repoPath('/metadata/timestamp.json')))).toBe(
      'UPSTREAM_INVALID',
    );
  });

  test('an older snapshot is fetched on a miss once it checks out', async () => {
    await repo.release({ 'a.txt': 'alpha 2' });
    const edge = await source();
    expect(await bodyText(edge, '/metadata/1.snapshot.json')).toBe(
      text(await repo.read('metadata/1.snapshot.json')),
    );
    expect(await keysOf(mirror, 'metadata/')).toContain('metadata/1.snapshot.json');
    expect(await refusal(edge.get(repoPath('/metadata/9.snapshot.json')))).toBe('NOT_FOUND');
  });
});

describe('PullThroughSource and the transparency log (in-memory)', () => {
  let log: TestLog;

  beforeEach(async () => {
    ({ repo, upstream, mirror } = await mirrorFixture({ log: await createLogKey() }));
    if (repo.log === undefined) throw new Error('no log');
    log = repo.log;
  });

  const tileRequests = () => upstream.requests.filter((r) => r.startsWith('GET /log/tile/'));
  const later = (seconds: number) => {
    clock = new Date(clock.getTime() + seconds * 1000);
  };

  test('the checkpoint is verified and written before timestamp.json, and served from the mirror', async () => {
    const edge = await source();
    expect(await bodyText(edge, '/metadata/timestamp.json')).toBe(
      text(await repo.read('metadata/timestamp.json')),
    );
    expect(mirror.writes()).toEqual([
      'log/checkpoint',
      'metadata/1.root.json',
      'metadata/1.targets.json',
      'metadata/1.snapshot.json',
      'metadata/root.json',
      'metadata/timestamp.json',
    ]);
    expect(await bodyText(edge, '/log/checkpoint')).toBe(text(log.checkpoints.at(-1) ?? utf8('')));
    // The right edge of the tree was proven against the checkpoint; nothing stored for it.
    expect(tileRequests()).toEqual(['GET /log/tile/0/000.p/3']);
    expect(edge.logSize).toBe(3);
  });

  test('a tile is fetched once, proven, stored create-only, then served from the mirror', async () => {
    const edge = await source();
    const tile = await repo.read('log/tile/0/000.p/3');
    const bundle = await repo.read('log/tile/entries/000.p/3');
    const served = async (path: string) =>
      new Uint8Array(await new Response((await edge.get(repoPath(path))).body).arrayBuffer());
    expect(await served('/log/tile/0/000.p/3')).toEqual(tile);
    expect(await served('/log/tile/entries/000.p/3')).toEqual(bundle);
    expect(await served('/log/tile/0/000.p/3')).toEqual(tile);
    expect((await edge.head(repoPath('/log/tile/entries/000.p/3')))?.size).toBe(bundle.length);
    expect(tileRequests()).toEqual(['GET /log/tile/0/000.p/3', 'GET /log/tile/entries/000.p/3']);
    expect(await keysOf(mirror, 'log/')).toEqual([
      'log/checkpoint',
      'log/tile/0/000.p/3',
      'log/tile/entries/000.p/3',
    ]);
  });

  test('a tile past the verified log is 404 without an upstream request, and nothing is stored', async () => {
    // Upstream holds junk past the log: what a poisoned cache would keep for good.
    await repo.store.put('log/tile/0/000.p/4', new Uint8Array(128));
    await repo.store.put('log/tile/0/000', new Uint8Array(8192));
    const edge = await source();
    await bodyText(edge, '/log/checkpoint');
    for (const path of ['/log/tile/0/000.p/4', '/log/tile/0/000', '/log/tile/entries/001.p/1']) {
      expect(await refusal(edge.get(repoPath(path)))).toBe('NOT_FOUND');
      expect(await edge.head(repoPath(path))).toBeUndefined();
    }
    expect(tileRequests()).toEqual(['GET /log/tile/0/000.p/3']);
    expect(await keysOf(mirror, 'log/')).toEqual(['log/checkpoint']);
  });

  test('a tile upstream that is not the tree the checkpoint signs is UPSTREAM_INVALID, never stored', async () => {
    const bundle = await repo.read('log/tile/entries/000.p/3');
    const junk = bundle.slice();
    junk[junk.length - 1] = (junk[junk.length - 1] ?? 0) ^ 1;
    await repo.store.put('log/tile/entries/000.p/3', junk);
    const edge = await source();
    expect(await refusal(edge.get(repoPath('/log/tile/entries/000.p/3')))).toBe('UPSTREAM_INVALID');
    expect(await keysOf(mirror, 'log/tile/')).toEqual([]);
    await repo.store.put('log/tile/entries/000.p/3', bundle);
    expect(await bodyText(edge, '/log/tile/entries/000.p/3')).toBe(text(bundle));
  });

  test('a new release upstream extends the log: pulled after max-age with a consistency proof', async () => {
    const edge = await source();
    expect(await bodyText(edge, '/log/checkpoint')).toBe(text(log.checkpoints.at(-1) ?? utf8('')));
    await repo.release({ 'a.txt': 'alpha 2' });
    await log.fill(300, 'more');
    later(61);
    expect(await bodyText(edge, '/log/checkpoint')).toBe(text(log.checkpoints.at(-1) ?? utf8('')));
    expect(edge.logSize).toBe(305);
    const writes = mirror.writes();
    expect(writes.indexOf('log/checkpoint', 1)).toBeLessThan(
      writes.lastIndexOf('metadata/timestamp.json'),
    );
    // Tiles of the new tree now come from upstream, proven against the new checkpoint.
    expect(await bodyText(edge, '/log/tile/0/000')).toBe(text(await repo.read('log/tile/0/000')));
  });

  test('an upstream that fails between the release and its checkpoint leaves the mirror serving what it holds', async () => {
    const edge = await source({ CAIRN_TIMESTAMP_MAX_AGE: '0' });
    const held = await bodyText(edge, '/log/checkpoint');
    const timestamp = await bodyText(edge, '/metadata/timestamp.json');
    await bodyText(edge, '/log/tile/0/000.p/3');
    await repo.release({ 'a.txt': 'alpha 2' });
    // Metadata answers, the log does not.
    const stalled = await source({ CAIRN_TIMESTAMP_MAX_AGE: '0' }, (input, init) =>
      new Request(input, init).url.includes('/log/')
        ? Promise.resolve(new Response('down', { status: 503 }))
        : upstream.fetch(input, init),
    );
    expect(await bodyText(stalled, '/metadata/timestamp.json')).toBe(timestamp);
    expect(await bodyText(stalled, '/log/checkpoint')).toBe(held);
    expect(await bodyText(stalled, '/log/tile/0/000.p/3')).toBe(
      text(await readAll(mirror, 'log/tile/0/000.p/3')),
    );
    expect(logs.filter((l) => l.event === 'upstream-unavailable')).toHaveLength(1);
    expect(edge.logSize).toBe(3);
  });

  test('an upstream whose log forked or went back is 502 SPLIT_VIEW; the mirror keeps its log and release', async () => {
    const edge = await source({ CAIRN_TIMESTAMP_MAX_AGE: '0' });
    const held = log.checkpoints.at(-1) ?? utf8('');
    expect(await bodyText(edge, '/log/checkpoint')).toBe(text(held));
    const timestamp = text(await readAll(mirror, 'metadata/timestamp.json'));

    // Someone with the log key: the first two entries, then a tree of their own, and a new
    // release on top so the timestamp moves too.
    const fork = await forkOf(log, 2, 4);
    await repo.release({ 'a.txt': 'alpha 2' });
    for (const key of await keysOf(fork.store, 'log/')) {
      await repo.store.put(key, await readAll(fork.store, key));
    }
    expect(await refusal(edge.get(repoPath('/metadata/timestamp.json')))).toBe('SPLIT_VIEW');
    expect(logs.at(-1)).toMatchObject({ level: 'error', event: 'upstream-refused' });
    expect(text(await readAll(mirror, 'log/checkpoint'))).toBe(text(held));
    expect(text(await readAll(mirror, 'metadata/timestamp.json'))).toBe(timestamp);
    expect(await keysOf(mirror, 'log/tile/')).toEqual([]);

    // Rolled back to the first checkpoint (size 1): refused the same way.
    await repo.store.put('log/checkpoint', log.checkpoints[0] ?? utf8(''));
    later(10);
    expect(await refusal(edge.get(repoPath('/log/checkpoint')))).toBe('SPLIT_VIEW');
    expect(text(await readAll(mirror, 'log/checkpoint'))).toBe(text(held));
  });
});
