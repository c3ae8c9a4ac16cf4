/**
 * The pull-through mirror served for real — the Worker bundle in Miniflare on R2, and the Node
 * server on a filesystem store — in front of an upstream that is itself an edge: startEdge
 * (direct mode, no pin) over a filesystem store the test corrupts, with every storage read
 * counted, so "fetched once" is a count and not a guess.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsBlobStore } from '@cairn/storage/fs-store';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { parseEdgeConfig } from '../src/config.js';
import { startEdge, type RunningEdge } from '../src/node.js';
import { startDeployment, type Deployment, type DeploymentKind } from './support/deployments.js';
import {
  RecordingStore,
  SignedRepository,
  keysOf,
  loggedRepository,
  readAll,
  text,
  utf8,
} from './support/mirror-memory.js';
import { buildRepository, verifyThrough, type BuiltRepository } from './support/repository.js';

const KINDS: readonly DeploymentKind[] = ['workerd-r2', 'node-fs'];

interface Upstream {
  readonly url: string;
  /** The upstream edge's storage, each call recorded. */
  readonly store: RecordingStore;
  close(): Promise<void>;
}

let repo: BuiltRepository;
const closing: (() => Promise<void>)[] = [];

beforeAll(async () => {
  repo = await buildRepository();
});

afterEach(async () => {
  await Promise.all(closing.splice(0).map((close) => close()));
});

afterAll(async () => {
  await Promise.all(closing.splice(0).map((close) => close()));
});

async function startUpstream(fill: (store: RecordingStore) => Promise<void>): Promise<Upstream> {
  const directory = await mkdtemp(join(tmpdir(), 'cairn-upstream-'));
  const store = new RecordingStore(new FsBlobStore(directory));
  await fill(store);
  store.calls.length = 0;
  const edge: RunningEdge = await startEdge({
    config: parseEdgeConfig({ CAIRN_MIRROR_NAME: 'upstream' }),
    store,
    log: () => undefined,
  });
  const upstream = {
    url: `${edge.url}/`,
    store,
    async close() {
      await edge.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
  closing.push(() => upstream.close());
  return upstream;
}

async function mirror(
  kind: DeploymentKind,
  upstream: Upstream,
  trustedRoot: Uint8Array,
  vars: Record<string, string> = {},
): Promise<Deployment> {
  const deployment = await startDeployment(kind, {
    vars: {
      CAIRN_MODE: 'pull-through',
      CAIRN_MIRROR_NAME: 'pull-through-mirror',
      CAIRN_UPSTREAM_URL: upstream.url,
      CAIRN_TRUSTED_ROOT: text(trustedRoot),
      ...vars,
    },
  });
  closing.push(() => deployment.close());
  return deployment;
}

/** Same length, one byte changed: only the hash can tell. */
function corrupt(bytes: Uint8Array): Uint8Array {
  const copy = bytes.slice();
  copy[0] = (copy[0] ?? 0) ^ 0xff;
  return copy;
}

async function error(response: Response): Promise<string> {
  return (await response.json<{ error: string }>()).error;
}

describe.each(KINDS)('%s pull-through mirror', (kind) => {
  test('a TUF client through it sees release 2; each object is fetched from upstream once', async () => {
    const upstream = await startUpstream((store) => repo.copyPublic(store));
    const edge = await mirror(kind, upstream, repo.trustedRoot);
    const view = await verifyThrough(edge.url, repo.trustedRoot);
    expect(view.targetsVersion).toBe(2);
    for (const [path, file] of repo.releases[1].files)
      expect(view.files.get(path)).toEqual(file.bytes);
    for (const delta of repo.deltas) expect(view.files.get(delta.path)).toEqual(delta.bytes);

    const targetReads = () =>
      upstream.store.calls.filter((c) => c.op === 'get' && c.key.startsWith('targets/'));
    const first = targetReads()
      .map((c) => c.key)
      .sort();
    const listed = [
      ...[...repo.releases[1].files.values()].map((f) => f.key),
      ...repo.deltas.map((d) => d.key),
    ].sort();
    expect(first).toEqual(listed);

    // Again: a fresh client, the same objects — all from the mirror.
    await verifyThrough(edge.url, repo.trustedRoot);
    expect(
      targetReads()
        .map((c) => c.key)
        .sort(),
    ).toEqual(listed);
    const file = [...repo.releases[1].files.values()][0];
    if (file === undefined) throw new Error('no file');
    const response = await fetch(`${edge.url}/${file.key}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(response.headers.get('etag')).toMatch(/^"[^"]+"$/);
    expect(response.headers.get('x-cairn-mirror')).toBe('pull-through-mirror');
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(file.bytes);
    expect(targetReads()).toHaveLength(listed.length);

    // What the mirror stored: verified metadata and the objects asked for, nothing staged.
    const stored = await keysOf(edge.store, 'targets/');
    expect(stored).toEqual(listed);
    expect(await keysOf(edge.store, '_edge/')).toEqual([]);
    for (const key of stored) expect(await readAll(edge.store, key)).toEqual(await repo.read(key));
  });

  test('a corrupted target or delta upstream is 502 UPSTREAM_INVALID, never stored, and served once upstream is fixed', async () => {
    const file = repo.releases[1].files.get('main.cvd');
    const delta = repo.deltas[0];
    if (file === undefined || delta === undefined) throw new Error('fixture');
    const upstream = await startUpstream(async (store) => {
      await repo.copyPublic(store);
      await store.put(file.key, corrupt(file.bytes));
      await store.put(delta.key, corrupt(delta.bytes));
    });
    const edge = await mirror(kind, upstream, repo.trustedRoot);
    for (const key of [file.key, delta.key]) {
      const refused = await fetch(`${edge.url}/${key}`);
      expect(refused.status).toBe(502);
      expect(await error(refused)).toBe('UPSTREAM_INVALID');
      expect((await fetch(`${edge.url}/${key}`, { method: 'HEAD' })).status).toBe(502);
    }
    expect(await keysOf(edge.store, 'targets/')).toEqual([]);
    expect(await keysOf(edge.store, '_edge/')).toEqual([]);

    await upstream.store.put(file.key, file.bytes);
    await upstream.store.put(delta.key, delta.bytes);
    for (const [key, bytes] of [
      [file.key, file.bytes],
      [delta.key, delta.bytes],
    ] as const) {
      const served = await fetch(`${edge.url}/${key}`);
      expect(served.status).toBe(200);
      expect(new Uint8Array(await served.arrayBuffer())).toEqual(bytes);
    }
    expect(await keysOf(edge.store, 'targets/')).toEqual([file.key, delta.key].sort());
  });

  test('corrupted metadata upstream is 502 UPSTREAM_INVALID, nothing is written, and it recovers once fixed', async () => {
    const timestamp = JSON.parse(text(await repo.read('metadata/timestamp.json'))) as {
      signed: { meta: { 'snapshot.json': { version: number } } };
    };
    const snapshotKey = `metadata/${timestamp.signed.meta['snapshot.json'].version}.snapshot.json`;
    const snapshot = await repo.read(snapshotKey);
    const upstream = await startUpstream(async (store) => {
      await repo.copyPublic(store);
      await store.put(snapshotKey, utf8(text(snapshot).replace('"version":', '"version": ')));
    });
    const edge = await mirror(kind, upstream, repo.trustedRoot, {
      CAIRN_TIMESTAMP_MAX_AGE: '0',
    });
    const refused = await fetch(`${edge.url}/metadata/timestamp.json`);
    expect(refused.status).toBe(502);
    expect(await error(refused)).toBe('UPSTREAM_INVALID');
    expect(await keysOf(edge.store)).toEqual([]);

    await upstream.store.put(snapshotKey, snapshot);
    const served = await fetch(`${edge.url}/metadata/timestamp.json`);
    expect(served.status).toBe(200);
    expect(new Uint8Array(await served.arrayBuffer())).toEqual(
      await repo.read('metadata/timestamp.json'),
    );
    expect(await readAll(edge.store, snapshotKey)).toEqual(snapshot);
  });

  test('with max-age 0 the timestamp is revalidated on every request and a new release is picked up (in-memory signed repository)', async () => {
    const signed = await SignedRepository.create({ 'a.txt': 'alpha' });
    const upstream = await startUpstream((store) => signed.copyTo(store));
    const edge = await mirror(kind, upstream, await signed.trustedRoot, {
      CAIRN_TIMESTAMP_MAX_AGE: '0',
    });
    const first = await fetch(`${edge.url}/metadata/timestamp.json`);
    expect(first.headers.get('cache-control')).toBe('public, max-age=0');
    expect(JSON.parse(await first.text())).toMatchObject({ signed: { version: 1 } });

    await signed.release({ 'a.txt': 'alpha 2' });
    await signed.copyTo(upstream.store);
    const second = await fetch(`${edge.url}/metadata/timestamp.json`);
    expect(JSON.parse(await second.text())).toMatchObject({ signed: { version: 2 } });
    const view = await verifyThrough(edge.url, await signed.trustedRoot);
    expect(view.targetsVersion).toBe(2);
    expect(text(view.files.get('a.txt') ?? new Uint8Array())).toBe('alpha 2');
  });
});

describe.each(KINDS)('%s pull-through mirror and the transparency log', (kind) => {
  test('the checkpoint is verified and each tile fetched from upstream once; a tile past the log is 404 and never stored', async () => {
    const logged = await loggedRepository();
    const upstream = await startUpstream(async (store) => {
      await logged.repo.copyTo(store);
      // Junk under well-formed tile paths past the log: kept for good if a mirror stored it.
      await store.put('log/tile/0/002', new Uint8Array(8192));
      await store.put('log/tile/0/001.p/50', new Uint8Array(1600));
    });
    const edge = await mirror(kind, upstream, logged.trustedRoot);
    const tiles = [
      'log/tile/1/000.p/1',
      'log/tile/0/000',
      'log/tile/entries/000',
      'log/tile/0/001.p/49',
      'log/tile/entries/001.p/49',
    ];

    const checkpoint = await fetch(`${edge.url}/log/checkpoint`);
    expect(checkpoint.status).toBe(200);
    expect(checkpoint.headers.get('cache-control')).toBe('public, max-age=60');
    expect(new Uint8Array(await checkpoint.arrayBuffer())).toEqual(logged.log.checkpoints.at(-1));
    for (const round of [1, 2]) {
      for (const key of tiles) {
        const response = await fetch(`${edge.url}/${key}`);
        expect(response.status, `${round} ${key}`).toBe(200);
        expect(response.headers.get('cache-control'), key).toBe(
          'public, max-age=31536000, immutable',
        );
        expect(new Uint8Array(await response.arrayBuffer()), key).toEqual(
          await logged.repo.read(key),
        );
      }
    }
    const tileReads = () =>
      upstream.store.calls
        .filter((c) => c.op === 'get' && c.key.startsWith('log/tile/'))
        .map((c) => c.key)
        .sort();
    expect(tileReads()).toEqual([...tiles].sort());

    for (const path of ['/log/tile/0/002', '/log/tile/0/001.p/50', '/log/tile/entries/002']) {
      const refused = await fetch(`${edge.url}${path}`);
      expect(refused.status, path).toBe(404);
      expect(await error(refused), path).toBe('NOT_FOUND');
      expect((await fetch(`${edge.url}${path}`, { method: 'HEAD' })).status, path).toBe(404);
    }
    expect(tileReads()).toEqual([...tiles].sort());
    expect(await keysOf(edge.store, 'log/')).toEqual(['log/checkpoint', ...tiles].sort());
    expect(await keysOf(edge.store, '_edge/')).toEqual([]);
    const health = await (await fetch(`${edge.url}/health`)).json<Record<string, unknown>>();
    expect(health).toMatchObject({ status: 'ok', mode: 'pull-through', log: { size: 305 } });
  });
});
