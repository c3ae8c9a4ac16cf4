/**
 * The sync mirror for real. On Node, `syncMirror` (the built code `cairn mirror sync` runs) in a
 * child process of its own, over a filesystem store, SIGKILLed halfway: the mirror must stay
 * consistent — a TUF client reading it sees the previous release complete — and the next run
 * must finish. In Miniflare, the Worker in sync mode, its Cron Trigger fired by hand, fills its
 * R2 bucket, which it then serves. Upstream is an edge (startEdge, direct) over a real origin's
 * store.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FsBlobStore } from '@cairn/storage/fs-store';
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { parseEdgeConfig } from '../src/config.js';
import { startEdge } from '../src/node.js';
import { nodeHashPort } from '@cairn/client/node-hash';
import { isEdgeError } from '../src/errors.js';
import { syncMirror, type SyncProgress, type SyncReport } from '../src/sync.js';
import { checkpointPolicy, logConfigFromRoot } from '@cairn/tlog/log-config';
import { LogReader } from '@cairn/tlog/log-reader';
import { Metadata } from '@cairn/verify/metadata';
import { forkOf } from './support/log.js';
import {
  keysOf,
  loggedRepository,
  readAll,
  tufClientView,
  type ClientView,
} from './support/mirror-memory.js';
import { ORIGIN_LOG_NAME, startMirrorOrigin } from './support/mirror-origin.js';
import { checkBuild, startSyncWorker } from './support/mirror-worker.js';
import { buildRepository, verifyThrough } from './support/repository.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'support', 'mirror-sync-child.mjs');
const closing: (() => Promise<void>)[] = [];

beforeAll(async () => {
  await checkBuild();
});

afterEach(async () => {
  for (const close of closing.splice(0).reverse()) await close();
});

interface ChildRun {
  readonly signal: NodeJS.Signals | null;
  readonly code: number | null;
  readonly events: SyncProgress[];
  readonly report: SyncReport | undefined;
  readonly stderr: string;
}

/** Runs one sync in a child process (the pinned Node, the built code). */
function runSync(upstreamUrl: string, mirrorDir: string, rootFile: string, killAt?: string) {
  return new Promise<ChildRun>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [CHILD, upstreamUrl, mirrorDir, rootFile, ...(killAt === undefined ? [] : [killAt])],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const lines = stdout
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as { kind: string });
      const report = lines.find((l) => l.kind === 'report') as
        (SyncReport & { kind: 'report' }) | undefined;
      resolve({
        code,
        signal,
        events: lines.filter((l) => l.kind !== 'report') as SyncProgress[],
        report:
          report === undefined
            ? undefined
            : {
                timestampVersion: report.timestampVersion,
                previousVersion: report.previousVersion,
                objectsCopied: report.objectsCopied,
                bytesCopied: report.bytesCopied,
                upToDate: report.upToDate,
              },
        stderr,
      });
    });
  });
}

const encode = (text: string) => new TextEncoder().encode(text);

function records(seed: string, count: number): Uint8Array {
  const lines: string[] = [];
  for (let i = 0; i < count; i++)
    lines.push(`Sig.${seed}.${String(i).padStart(6, '0')}:0:*:${(i * 2654435761) % 4294967296}`);
  return encode(`${lines.join('\n')}\n`);
}

function contents(view: ClientView): Record<string, number> {
  return Object.fromEntries([...view.files].map(([path, bytes]) => [path, bytes.length]));
}

describe('sync on Node (`cairn mirror sync`), killed halfway', () => {
  test('a killed sync leaves the previous release consistent; the next run finishes the new one', async () => {
    const origin = await startMirrorOrigin();
    closing.push(() => origin.close());
    const release1 = new Map([
      ['main.cvd', records('a', 4000)],
      ['daily/bytecode.cvd', records('b', 600)],
      ['notes.txt', encode('release one\n')],
    ]);
    const release2 = new Map([
      ['main.cvd', records('a', 4100)],
      ['daily/bytecode.cvd', records('b', 650)],
      ['notes.txt', encode('release two\n')],
    ]);
    await origin.publish(release1);
    const upstream = await startEdge({
      config: parseEdgeConfig({ CAIRN_MIRROR_NAME: 'upstream' }),
      store: origin.store,
      log: () => undefined,
    });
    closing.push(() => upstream.close());
    const work = await mkdtemp(join(tmpdir(), 'cairn-sync-'));
    closing.push(() => rm(work, { recursive: true, force: true }));
    const mirrorDir = join(work, 'mirror');
    const rootFile = join(work, 'root.json');
    await writeFile(rootFile, origin.trustedRoot);
    const mirror = new FsBlobStore(mirrorDir);
    const url = `${upstream.url}/`;

    const first = await runSync(url, mirrorDir, rootFile);
    expect([first.code, first.signal, first.stderr]).toEqual([0, null, '']);
    expect(first.report).toMatchObject({ previousVersion: undefined, upToDate: false });
    const v1 = await tufClientView(mirror, origin.trustedRoot);
    expect(v1.targetsVersion).toBe(1);
    expect(contents(v1)).toEqual(
      Object.fromEntries([...release1].map(([path, bytes]) => [path, bytes.length])),
    );
    const timestampV1 = await readAll(mirror, 'metadata/timestamp.json');

    await origin.publish(release2);
    const targetsBefore = await keysOf(mirror, 'targets/');

    // Killed while copying blobs: two of the new objects are in, unreferenced.
    const killed = await runSync(url, mirrorDir, rootFile, '2');
    expect([killed.code, killed.signal]).toEqual([null, 'SIGKILL']);
    expect(killed.events.filter((e) => e.kind === 'copied')).toHaveLength(2);
    expect((await keysOf(mirror, 'targets/')).length).toBe(targetsBefore.length + 2);
    expect(await readAll(mirror, 'metadata/timestamp.json')).toEqual(timestampV1);
    expect(contents(await tufClientView(mirror, origin.trustedRoot))).toEqual(contents(v1));

    // Killed after every blob and the versioned metadata, before timestamp.json.
    const late = await runSync(url, mirrorDir, rootFile, 'last');
    expect([late.code, late.signal]).toEqual([null, 'SIGKILL']);
    const lateCopies = late.events.filter((e) => e.kind === 'copied').map((e) => e.key);
    expect(lateCopies.at(-1)).toMatch(/^metadata\/\d+\.snapshot\.json$/);
    expect(lateCopies).not.toContain('metadata/timestamp.json');
    expect(await readAll(mirror, 'metadata/timestamp.json')).toEqual(timestampV1);
    const stillV1 = await tufClientView(mirror, origin.trustedRoot);
    expect([stillV1.timestampVersion, stillV1.targetsVersion]).toEqual([v1.timestampVersion, 1]);
    expect(contents(stillV1)).toEqual(contents(v1));

    const finished = await runSync(url, mirrorDir, rootFile);
    expect([finished.code, finished.signal, finished.stderr]).toEqual([0, null, '']);
    expect(finished.report).toEqual({
      timestampVersion: finished.report?.timestampVersion,
      previousVersion: v1.timestampVersion,
      objectsCopied: 1,
      bytesCopied: finished.report?.bytesCopied,
      upToDate: false,
    });
    expect(finished.events.filter((e) => e.kind === 'copied').map((e) => e.key)).toEqual([
      'metadata/timestamp.json',
    ]);
    const v2 = await tufClientView(mirror, origin.trustedRoot);
    expect(v2.targetsVersion).toBe(2);
    for (const [path, bytes] of release2) expect(v2.files.get(path)).toEqual(bytes);
    expect(
      [...v2.files.keys()].filter((path) => path.startsWith('_delta/')).length,
    ).toBeGreaterThan(0);
    expect(await keysOf(mirror, '_edge/')).toEqual([]);
    expect(await keysOf(mirror, 'targets/')).toEqual(await keysOf(origin.store, 'targets/'));

    const again = await runSync(url, mirrorDir, rootFile);
    expect(again.report).toMatchObject({ upToDate: true, objectsCopied: 0 });
  });
});

describe('sync in the Worker (Miniflare): the Cron Trigger fills R2', () => {
  test('before the first trigger nothing is served; after it the Worker serves the release, verified', async () => {
    const repo = await buildRepository();
    const upstream = await startEdge({
      config: parseEdgeConfig({ CAIRN_MIRROR_NAME: 'upstream' }),
      store: repo.store,
      log: () => undefined,
    });
    closing.push(() => upstream.close());
    const worker = await startSyncWorker({
      CAIRN_MODE: 'sync',
      CAIRN_MIRROR_NAME: 'sync-mirror',
      CAIRN_UPSTREAM_URL: `${upstream.url}/`,
      CAIRN_TRUSTED_ROOT: new TextDecoder().decode(repo.trustedRoot),
    });
    closing.push(() => worker.close());

    expect((await fetch(`${worker.url}/metadata/timestamp.json`)).status).toBe(404);
    await worker.cron();
    const view = await verifyThrough(worker.url, repo.trustedRoot);
    expect(view.targetsVersion).toBe(2);
    expect(view.timestampVersion).toBe(repo.timestampVersion);
    for (const [path, file] of repo.releases[1].files)
      expect(view.files.get(path)).toEqual(file.bytes);
    for (const delta of repo.deltas) expect(view.files.get(delta.path)).toEqual(delta.bytes);
    expect(await keysOf(worker.store, '_edge/')).toEqual([]);
    expect(await keysOf(worker.store, '_origin/')).toEqual([]);
    const served = await fetch(`${worker.url}/metadata/timestamp.json`);
    expect(served.headers.get('x-cairn-mirror')).toBe('sync-mirror');
    expect(new Uint8Array(await served.arrayBuffer())).toEqual(
      await repo.read('metadata/timestamp.json'),
    );

    await worker.cron();
    const reports = worker.logs
      .map((line) => JSON.parse(line) as { message?: string })
      .map(
        (entry) =>
          (entry.message?.startsWith('{') === true ? JSON.parse(entry.message) : entry) as Record<
            string,
            unknown
          >,
      )
      .filter((entry) => entry.event === 'sync');
    expect(reports).toEqual([
      expect.objectContaining({
        level: 'info',
        cron: '*/5 * * * *',
        timestampVersion: repo.timestampVersion,
        upToDate: false,
      }),
      expect.objectContaining({
        level: 'info',
        timestampVersion: repo.timestampVersion,
        previousVersion: repo.timestampVersion,
        objectsCopied: 0,
        upToDate: true,
      }),
    ]);
    // An empty mirror had no previous version: JSON leaves the undefined out.
    expect(reports[0]).not.toHaveProperty('previousVersion');
    expect(reports[0]?.objectsCopied).toBe(
      (await keysOf(worker.store, 'targets/')).length +
        (await keysOf(worker.store, 'metadata/')).length,
    );
  });
});

describe('sync and the transparency log, over HTTP', () => {
  async function loggedUpstream() {
    const logged = await loggedRepository();
    const upstream = await startEdge({
      config: parseEdgeConfig({ CAIRN_MIRROR_NAME: 'upstream' }),
      store: logged.repo.store,
      log: () => undefined,
    });
    closing.push(() => upstream.close());
    return { ...logged, url: `${upstream.url}/` };
  }

  async function fsMirror(): Promise<FsBlobStore> {
    const work = await mkdtemp(join(tmpdir(), 'cairn-sync-log-'));
    closing.push(() => rm(work, { recursive: true, force: true }));
    return new FsBlobStore(work);
  }

  test('Node: tiles, then the checkpoint, are copied before timestamp.json; a forked upstream is refused and nothing copied', async () => {
    const { repo, log, trustedRoot, url } = await loggedUpstream();
    const mirror = await fsMirror();
    const events: SyncProgress[] = [];
    const report = await syncMirror({
      store: mirror,
      upstreamUrl: url,
      trustedRoot,
      hash: nodeHashPort,
      onProgress: (event) => events.push(event),
    });
    expect(report).toMatchObject({ upToDate: false, logSize: 305 });
    const copied = events.flatMap((e) => (e.kind === 'copied' ? [e.key] : []));
    const logKeys = copied.filter((key) => key.startsWith('log/'));
    expect(logKeys).toEqual([
      'log/tile/1/000.p/1',
      'log/tile/0/000',
      'log/tile/entries/000',
      'log/tile/0/001.p/49',
      'log/tile/entries/001.p/49',
      'log/checkpoint',
    ]);
    expect(copied.indexOf('log/checkpoint')).toBeLessThan(
      copied.indexOf('metadata/timestamp.json'),
    );
    expect(copied.at(-1)).toBe('metadata/timestamp.json');
    for (const key of logKeys) expect(await readAll(mirror, key)).toEqual(await repo.read(key));

    // A new release upstream, under a log someone with the log key forked.
    const before = new Map<string, Uint8Array>();
    for (const key of await keysOf(mirror)) before.set(key, await readAll(mirror, key));
    const fork = await forkOf(log, 200, 200);
    await repo.release({ 'a.txt': 'alpha 3' });
    for (const key of await keysOf(fork.store, 'log/')) {
      await repo.store.put(key, await readAll(fork.store, key));
    }
    const refused = await syncMirror({
      store: mirror,
      upstreamUrl: url,
      trustedRoot,
      hash: nodeHashPort,
    }).then(
      () => 'synced',
      (error: unknown) => (isEdgeError(error) ? `${error.code}: ${error.message}` : String(error)),
    );
    expect(refused).toMatch(/^SPLIT_VIEW: /);
    expect(await keysOf(mirror)).toEqual([...before.keys()]);
    for (const [key, bytes] of before) expect(await readAll(mirror, key)).toEqual(bytes);
  });

  test('Worker: the Cron Trigger copies the log, which the Worker then serves verified', async () => {
    const { repo, log, trustedRoot, url } = await loggedUpstream();
    const worker = await startSyncWorker({
      CAIRN_MODE: 'sync',
      CAIRN_MIRROR_NAME: 'sync-mirror',
      CAIRN_UPSTREAM_URL: url,
      CAIRN_TRUSTED_ROOT: new TextDecoder().decode(trustedRoot),
    });
    closing.push(() => worker.close());
    expect((await fetch(`${worker.url}/log/checkpoint`)).status).toBe(404);
    await worker.cron();
    const checkpoint = await fetch(`${worker.url}/log/checkpoint`);
    expect(checkpoint.status).toBe(200);
    expect(new Uint8Array(await checkpoint.arrayBuffer())).toEqual(log.checkpoints.at(-1));
    // The tiles of a log of 305 entries; not upstream's partial tiles of smaller sizes.
    expect(await keysOf(worker.store, 'log/')).toEqual([
      'log/checkpoint',
      'log/tile/0/000',
      'log/tile/0/001.p/49',
      'log/tile/1/000.p/1',
      'log/tile/entries/000',
      'log/tile/entries/001.p/49',
    ]);
    const tile = await fetch(`${worker.url}/log/tile/entries/001.p/49`);
    expect(new Uint8Array(await tile.arrayBuffer())).toEqual(
      await repo.read('log/tile/entries/001.p/49'),
    );
    const health = await (await fetch(`${worker.url}/health`)).json<Record<string, unknown>>();
    expect(health).toMatchObject({
      status: 'ok',
      mode: 'sync',
      verified: true,
      log: { size: 305 },
    });
    const reports = worker.logs
      .map((line) => JSON.parse(line) as { message?: string })
      .map(
        (entry) =>
          (entry.message?.startsWith('{') === true ? JSON.parse(entry.message) : entry) as Record<
            string,
            unknown
          >,
      )
      .filter((entry) => entry.event === 'sync');
    expect(reports).toEqual([expect.objectContaining({ level: 'info', logSize: 305 })]);
  });
});

describe("sync of the real origin's transparency log", () => {
  test('the log the origin appends is copied and proven; the release is in it, with inclusion proofs', async () => {
    const origin = await startMirrorOrigin({ log: true });
    closing.push(() => origin.close());
    await origin.publish(new Map([['main.cvd', records('a', 500)]]));
    const upstream = await startEdge({
      config: parseEdgeConfig({ CAIRN_MIRROR_NAME: 'upstream' }),
      store: origin.store,
      log: () => undefined,
    });
    closing.push(() => upstream.close());
    const work = await mkdtemp(join(tmpdir(), 'cairn-sync-origin-log-'));
    closing.push(() => rm(work, { recursive: true, force: true }));
    const mirror = new FsBlobStore(work);
    const run = () =>
      syncMirror({
        store: mirror,
        upstreamUrl: `${upstream.url}/`,
        trustedRoot: origin.trustedRoot,
        hash: nodeHashPort,
      });

    // Root 1, then targets 1 and snapshot 1.
    expect(await run()).toMatchObject({ timestampVersion: 1, logSize: 3 });
    await origin.publish(new Map([['main.cvd', records('a', 600)]]));
    expect(await run()).toMatchObject({ timestampVersion: 2, previousVersion: 1, logSize: 5 });
    expect(await keysOf(mirror, '_origin/')).toEqual([]);

    // What a client does with the mirror: the current release's entries, proven.
    const root = Metadata.fromBytes(origin.trustedRoot, 'root');
    const config = logConfigFromRoot(root.signed.extra);
    expect(config?.origin).toBe(ORIGIN_LOG_NAME);
    if (config === undefined) throw new Error('the root declares no log');
    const reader = new LogReader(
      (path) => readAll(mirror, `log/${path}`),
      await checkpointPolicy(config),
    );
    const { checkpoint } = await reader.latest();
    const found = await reader.findMetadata(checkpoint, [
      { role: 'targets', version: 2, bytes: await readAll(mirror, 'metadata/2.targets.json') },
      { role: 'snapshot', version: 2, bytes: await readAll(mirror, 'metadata/2.snapshot.json') },
      { role: 'root', version: 1, bytes: await readAll(mirror, 'metadata/1.root.json') },
    ]);
    expect(found.map((entry) => entry?.index)).toEqual([3, 4, 0]);

    // Served by a verifying edge over the mirror: the checkpoint checks out.
    const served = await startEdge({
      config: parseEdgeConfig({
        CAIRN_MODE: 'sync',
        CAIRN_UPSTREAM_URL: `${upstream.url}/`,
        CAIRN_TRUSTED_ROOT: new TextDecoder().decode(origin.trustedRoot),
      }),
      store: mirror,
      log: () => undefined,
    });
    closing.push(() => served.close());
    const response = await fetch(`${served.url}/log/checkpoint`);
    expect(response.status).toBe(200);
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(
      await readAll(origin.store, 'log/checkpoint'),
    );
  });
});
