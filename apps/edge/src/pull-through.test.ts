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
import { parseEdgeConfig } from './config.js';
import { PullThroughSource } from './pull-through.js';

let repo: SignedRepository;
let upstream: FakeUpstream;
let mirror: RecordingStore;
let clock: Date;
let logs: Record<string, unknown>[];

async function source(vars: Record<string, string> = {}): Promise<PullThroughSource> {
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
    fetch: upstream.fetch,
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
      utf8(snapshot.replace(/"sig": "(.)/, '"sig": "0')),
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
