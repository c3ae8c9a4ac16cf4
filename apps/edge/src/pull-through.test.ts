import { webHashPort } from '@cairn/verify/hash';
import { beforeEach, describe, expect, test } from 'vitest';
import {
  RecordingStore,
  SignedRepository,
  T0,
  fakeUpstream,
  keysOf,
  readAll,
  sha256Hex,
  targetKey,
  text,
  utf8,
  type FakeUpstream,
} from '../test/support/mirror-memory.js';
import { parseEdgeConfig } from './config.js';
import { isEdgeError } from './errors.js';
import { classifyPath, type RepoPath } from './paths.js';
import { PullThroughSource } from './pull-through.js';

function path(p: string): RepoPath {
  const classified = classifyPath(p);
  if (classified === undefined) throw new Error(`${p}: not a repository path`);
  return classified;
}

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

async function body(edge: PullThroughSource, p: string): Promise<string> {
  const object = await edge.get(path(p));
  return text(new Uint8Array(await new Response(object.body).arrayBuffer()));
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (isEdgeError(error)) return error.code;
    throw error;
  }
  throw new Error('expected a refusal');
}

const alpha = targetKey('a.txt', sha256Hex(utf8('alpha')));

beforeEach(async () => {
  repo = await SignedRepository.create({ 'a.txt': 'alpha', 'dir/b.txt': 'beta' });
  upstream = fakeUpstream(repo.store);
  mirror = new RecordingStore();
  clock = new Date(T0.getTime() + 1000);
  logs = [];
});

describe('PullThroughSource from an in-memory upstream (fake fetch)', () => {
  test('the timestamp is verified upstream, written in publication order, and served from the mirror', async () => {
    const edge = await source();
    expect(await body(edge, '/metadata/timestamp.json')).toBe(
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
    expect(await body(edge, '/metadata/1.snapshot.json')).toBe(
      text(await repo.read('metadata/1.snapshot.json')),
    );
    expect(await body(edge, '/metadata/timestamp.json')).toBe(
      text(await repo.read('metadata/timestamp.json')),
    );
    expect(upstream.requests).toHaveLength(5);
  });

  test('a target is fetched once, verified, stored, then served from the mirror', async () => {
    const edge = await source();
    expect(await body(edge, `/${alpha}`)).toBe('alpha');
    const fetched = upstream.requests.filter((r) => r.startsWith('GET /targets/'));
    expect(fetched).toEqual([`GET /${alpha}`]);
    expect(await body(edge, `/${alpha}`)).toBe('alpha');
    expect((await edge.head(path(`/${alpha}`)))?.size).toBe(5);
    expect(upstream.requests.filter((r) => r.startsWith('GET /targets/'))).toEqual(fetched);
    expect(await keysOf(mirror, 'targets/')).toEqual([alpha]);
    expect(await keysOf(mirror, '_edge/')).toEqual([]);
  });

  test('concurrent misses of one object share one upstream fetch', async () => {
    const edge = await source();
    await body(edge, '/metadata/timestamp.json');
    const bodies = await Promise.all([1, 2, 3, 4].map(() => body(edge, `/${alpha}`)));
    expect(bodies).toEqual(['alpha', 'alpha', 'alpha', 'alpha']);
    expect(upstream.requests.filter((r) => r.startsWith('GET /targets/'))).toEqual([
      `GET /${alpha}`,
    ]);
  });

  test('a corrupted target upstream is UPSTREAM_INVALID, nothing is stored, and it is served once upstream is fixed', async () => {
    await repo.store.put(alpha, utf8('alphA'));
    const edge = await source();
    expect(await refusal(edge.get(path(`/${alpha}`)))).toBe('UPSTREAM_INVALID');
    expect(await refusal(edge.head(path(`/${alpha}`)))).toBe('UPSTREAM_INVALID');
    expect(await keysOf(mirror, 'targets/')).toEqual([]);
    expect(await keysOf(mirror, '_edge/')).toEqual([]);
    await repo.store.put(alpha, utf8('alpha'));
    expect(await body(edge, `/${alpha}`)).toBe('alpha');
  });

  test('a file not in the current release is checked against the hash in its name', async () => {
    const edge = await source();
    await repo.release({ 'a.txt': 'alpha 2' });
    const old = targetKey('dir/b.txt', sha256Hex(utf8('beta')));
    expect(await body(edge, `/${old}`)).toBe('beta');
    const bogus = targetKey('a.txt', sha256Hex(utf8('not there')));
    expect(await refusal(edge.get(path(`/${bogus}`)))).toBe('NOT_FOUND');
    await repo.store.put(bogus, utf8('something else'));
    expect(await refusal(edge.get(path(`/${bogus}`)))).toBe('UPSTREAM_INVALID');
    expect(await mirror.head(bogus)).toBeUndefined();
  });

  test('after max-age the timestamp is revalidated with If-None-Match, and a new release is picked up', async () => {
    const edge = await source({ CAIRN_TIMESTAMP_MAX_AGE: '60' });
    await body(edge, '/metadata/timestamp.json');
    upstream.requests.length = 0;
    clock = new Date(clock.getTime() + 61_000);
    await body(edge, '/metadata/timestamp.json');
    expect(upstream.requests).toEqual([
      'GET /metadata/2.root.json',
      'GET /metadata/timestamp.json (If-None-Match)',
    ]);
    await repo.release({ 'a.txt': 'alpha 2' });
    expect(JSON.parse(await body(edge, '/metadata/timestamp.json'))).toMatchObject({
      signed: { version: 1 },
    });
    clock = new Date(clock.getTime() + 61_000);
    expect(JSON.parse(await body(edge, '/metadata/timestamp.json'))).toMatchObject({
      signed: { version: 2 },
    });
    expect(await body(edge, `/${targetKey('a.txt', sha256Hex(utf8('alpha 2')))}`)).toBe('alpha 2');
  });

  test('an upstream that went away leaves the mirror serving what it holds', async () => {
    const edge = await source({ CAIRN_TIMESTAMP_MAX_AGE: '0' });
    const held = await body(edge, '/metadata/timestamp.json');
    await body(edge, `/${alpha}`);
    upstream.down = true;
    expect(await body(edge, '/metadata/timestamp.json')).toBe(held);
    expect(await body(edge, `/${alpha}`)).toBe('alpha');
    expect(
      await refusal(edge.get(path(`/${targetKey('dir/b.txt', sha256Hex(utf8('beta')))}`))),
    ).toBe('UPSTREAM_UNAVAILABLE');
    expect(logs.filter((l) => l.event === 'upstream-unavailable')).toHaveLength(1);

    // A fresh mirror process over the same store, upstream still down: it verifies what it holds.
    const restarted = await source({ CAIRN_TIMESTAMP_MAX_AGE: '0' });
    expect(await body(restarted, '/metadata/timestamp.json')).toBe(held);
  });

  test('an empty mirror with its upstream down answers UPSTREAM_UNAVAILABLE, not 404', async () => {
    upstream.down = true;
    const edge = await source();
    expect(await refusal(edge.get(path('/metadata/timestamp.json')))).toBe('UPSTREAM_UNAVAILABLE');
    expect(await refusal(edge.get(path('/metadata/1.snapshot.json')))).toBe('UPSTREAM_UNAVAILABLE');
  });

  test('upstream metadata that does not verify is UPSTREAM_INVALID and nothing is written', async () => {
    const snapshot = text(await repo.read('metadata/1.snapshot.json'));
    await repo.store.put(
      'metadata/1.snapshot.json',
      utf8(snapshot.replace(/"sig": "(.)/, '"sig": "0')),
    );
    const edge = await source();
    expect(await refusal(edge.get(path('/metadata/timestamp.json')))).toBe('UPSTREAM_INVALID');
    expect(mirror.writes()).toEqual([]);
    expect(logs).toEqual([expect.objectContaining({ level: 'error', event: 'upstream-refused' })]);
  });

  test('an upstream that rolls back is refused; the mirror keeps the newer release', async () => {
    await repo.release({ 'a.txt': 'alpha 2' });
    const edge = await source({ CAIRN_TIMESTAMP_MAX_AGE: '0' });
    const newer = await body(edge, '/metadata/timestamp.json');
    const [older] = repo.timestamps;
    if (older === undefined) throw new Error('no first timestamp');
    await repo.store.put('metadata/timestamp.json', older);
    expect(await refusal(edge.get(path('/metadata/timestamp.json')))).toBe('UPSTREAM_INVALID');
    expect(text(await readAll(mirror, 'metadata/timestamp.json'))).toBe(newer);
    // A restarted mirror takes its own timestamp as the rollback reference.
    const restarted = await source({ CAIRN_TIMESTAMP_MAX_AGE: '0' });
    expect(await refusal(restarted.get(path('/metadata/timestamp.json')))).toBe('UPSTREAM_INVALID');
  });

  test('an older snapshot is fetched on a miss once it checks out', async () => {
    await repo.release({ 'a.txt': 'alpha 2' });
    const edge = await source();
    expect(await body(edge, '/metadata/1.snapshot.json')).toBe(
      text(await repo.read('metadata/1.snapshot.json')),
    );
    expect(await keysOf(mirror, 'metadata/')).toContain('metadata/1.snapshot.json');
    expect(await refusal(edge.get(path('/metadata/9.snapshot.json')))).toBe('NOT_FOUND');
  });
});
