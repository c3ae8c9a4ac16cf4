/**
 * Defense in depth, served for real: the Worker bundle in Miniflare on an R2 binding, and the
 * Node server on a filesystem store. With a trusted root pinned, a bucket someone wrote into
 * without the keys is refused (503 VERIFICATION_FAILED, a log line at level error); without
 * the pin, the very same bucket is served as it is — so the check is what refuses.
 */
import { Metadata, type Timestamp } from '@cairn/verify/metadata';
import { buildTimestamp } from '@cairn/verify/repository';
import { Ed25519Signer, signMetadata } from '@cairn/verify/signer';
import { afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import type { BlobStore } from '@cairn/storage/blob-store';
import { MemoryBlobStore } from '@cairn/storage/memory-store';
import { TestLog, createLogKey, forkOf } from './support/log.js';
import {
  SignedRepository,
  keysOf,
  loggedRepository,
  readAll,
  text,
} from './support/mirror-memory.js';
import { startDeployment, type Deployment, type DeploymentKind } from './support/deployments.js';
import { buildRepository, verifyThrough, type BuiltRepository } from './support/repository.js';

const KINDS: readonly DeploymentKind[] = ['workerd-r2', 'node-fs'];

let repo: BuiltRepository;
const open: Deployment[] = [];

beforeAll(async () => {
  repo = await buildRepository();
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
});

async function deploy(kind: DeploymentKind, vars: Record<string, string>): Promise<Deployment> {
  const deployment = await startDeployment(kind, { vars });
  open.push(deployment);
  return deployment;
}

const pinned = () => ({ CAIRN_TRUSTED_ROOT: text(repo.trustedRoot) });

/** Someone without the keys: a well-formed timestamp, one version up, under a key of theirs. */
async function forgedTimestamp(current: Uint8Array): Promise<Uint8Array> {
  const signed = Metadata.fromBytes(current, 'timestamp').signed;
  const forger = await Ed25519Signer.generate();
  const forged = await signMetadata(
    new Metadata<Timestamp>(
      buildTimestamp({
        version: signed.version + 1,
        expires: signed.expires,
        snapshot: signed.snapshotMeta,
      }),
    ),
    [forger],
  );
  return forged.toBytes();
}

async function copyAll(from: BlobStore, to: BlobStore): Promise<void> {
  for (const key of await keysOf(from)) await to.put(key, await readAll(from, key));
}

/** The edge's log entries: Node's JSON lines, or workerd's structured logs wrapping them. */
function logEntries(deployment: Deployment): Record<string, unknown>[] {
  return deployment.logs.map((line) => {
    const entry = JSON.parse(line) as Record<string, unknown>;
    const message = entry.message;
    if (typeof message === 'string' && message.startsWith('{')) {
      return JSON.parse(message) as Record<string, unknown>;
    }
    return entry;
  });
}

/** Lines at level error about a refusal to serve: what an operator's alert fires on. */
function refusedLines(deployment: Deployment): string[] {
  return logEntries(deployment)
    .filter(
      (entry) => entry.level === 'error' && JSON.stringify(entry).includes('VERIFICATION_FAILED'),
    )
    .map((entry) => JSON.stringify(entry));
}

async function expectRefused(deployment: Deployment, path: string): Promise<void> {
  const response = await fetch(`${deployment.url}${path}`);
  expect(response.status).toBe(503);
  expect(response.headers.get('retry-after')).toBe('5');
  expect(response.headers.get('cache-control')).toBe('no-store');
  expect((await response.json<{ error: string }>()).error).toBe('VERIFICATION_FAILED');
}

describe.each(KINDS)('%s, metadata verified before it is served', (kind) => {
  test('an untouched bucket is served: a TUF client through the edge sees release 2', async () => {
    const edge = await deploy(kind, pinned());
    await repo.copyPublic(edge.store);
    const view = await verifyThrough(edge.url, repo.trustedRoot);
    expect(view.targetsVersion).toBe(2);
    expect(view.timestampVersion).toBe(repo.timestampVersion);
    for (const [path, file] of repo.releases[1].files)
      expect(view.files.get(path)).toEqual(file.bytes);
    const timestamp = await fetch(`${edge.url}/metadata/timestamp.json`);
    expect(new Uint8Array(await timestamp.arrayBuffer())).toEqual(
      await repo.read('metadata/timestamp.json'),
    );
    const health = await (await fetch(`${edge.url}/health`)).json<Record<string, unknown>>();
    expect(health).toMatchObject({ status: 'ok', verified: true });
    expect(refusedLines(edge)).toEqual([]);
  });

  test('a timestamp signed without the keys is refused with 503 and an error log line; unpinned, it is served', async () => {
    const forged = await forgedTimestamp(await repo.read('metadata/timestamp.json'));
    const snapshotVersion = Metadata.fromBytes(forged, 'timestamp').signed.snapshotMeta.version;

    const edge = await deploy(kind, pinned());
    await repo.copyPublic(edge.store);
    await edge.store.put('metadata/timestamp.json', forged);
    await expectRefused(edge, '/metadata/timestamp.json');
    await expectRefused(edge, `/metadata/${snapshotVersion}.snapshot.json`);
    const health = await fetch(`${edge.url}/health`);
    expect(health.status).toBe(503);
    await vi.waitFor(() => {
      expect(refusedLines(edge).length).toBeGreaterThanOrEqual(2);
    });
    expect(refusedLines(edge).some((line) => line.includes('THRESHOLD'))).toBe(true);

    const unpinned = await deploy(kind, {});
    await repo.copyPublic(unpinned.store);
    await unpinned.store.put('metadata/timestamp.json', forged);
    const served = await fetch(`${unpinned.url}/metadata/timestamp.json`);
    expect(served.status).toBe(200);
    expect(new Uint8Array(await served.arrayBuffer())).toEqual(forged);
  });

  test('a modified snapshot is refused, timestamp.json with it', async () => {
    const timestamp = Metadata.fromBytes(await repo.read('metadata/timestamp.json'), 'timestamp');
    const key = `metadata/${timestamp.signed.snapshotMeta.version}.snapshot.json`;
    const original = text(await repo.read(key));
    const modified = original.replace(
      /"expires": "(\d{4})/,
      (_, year: string) => `"expires": "${Number(year) + 10}`,
    );
    expect(modified).not.toBe(original);

    const edge = await deploy(kind, pinned());
    await repo.copyPublic(edge.store);
    await edge.store.put(key, new TextEncoder().encode(modified));
    await expectRefused(edge, '/metadata/timestamp.json');
    await expectRefused(edge, `/${key}`);
    await vi.waitFor(() => {
      expect(refusedLines(edge).some((line) => line.includes('BAD_HASH'))).toBe(true);
    });

    const unpinned = await deploy(kind, {});
    await repo.copyPublic(unpinned.store);
    await unpinned.store.put(key, new TextEncoder().encode(modified));
    const served = await fetch(`${unpinned.url}/${key}`);
    expect(served.status).toBe(200);
    expect(await served.text()).toBe(modified);
  });

  test('a bucket rolled back to an older, validly signed timestamp is refused (in-memory signed repository)', async () => {
    // Two timestamps, both signed with the repository's own key: an insider restoring an old
    // object, or storage losing a write. Only the edge's memory of the newer one refuses it.
    const signed = await SignedRepository.create({ 'a.txt': 'alpha' });
    await signed.release({ 'a.txt': 'alpha 2' });
    const [older, newer] = signed.timestamps;
    if (older === undefined || newer === undefined) throw new Error('two timestamps expected');
    const root = text(await signed.trustedRoot);
    // Its metadata expires in 2030 and later: valid by the edge's (real) clock.
    const edge = await deploy(kind, { CAIRN_TRUSTED_ROOT: root, CAIRN_TIMESTAMP_MAX_AGE: '0' });
    await copyAll(signed.store, edge.store);
    const first = await fetch(`${edge.url}/metadata/timestamp.json`);
    expect(first.status).toBe(200);
    expect(new Uint8Array(await first.arrayBuffer())).toEqual(newer);

    await edge.store.put('metadata/timestamp.json', older);
    await expectRefused(edge, '/metadata/timestamp.json');
    await vi.waitFor(() => {
      expect(refusedLines(edge).some((line) => line.includes('ROLLBACK'))).toBe(true);
    });

    await edge.store.put('metadata/timestamp.json', newer);
    const restored = await fetch(`${edge.url}/metadata/timestamp.json`);
    expect(restored.status).toBe(200);
    expect(new Uint8Array(await restored.arrayBuffer())).toEqual(newer);
  });
});

describe.each(KINDS)('%s, the log checkpoint verified before it is served', (kind) => {
  /** A pinned edge over a repository with a log (in-memory, signed), rechecking every request. */
  async function loggedEdge() {
    const logged = await loggedRepository();
    const edge = await deploy(kind, {
      CAIRN_TRUSTED_ROOT: text(logged.trustedRoot),
      CAIRN_TIMESTAMP_MAX_AGE: '0',
    });
    await copyAll(logged.repo.store, edge.store);
    return { ...logged, edge };
  }

  async function served(edge: Deployment, path: string): Promise<Uint8Array> {
    const response = await fetch(`${edge.url}${path}`);
    expect(response.status, path).toBe(200);
    return new Uint8Array(await response.arrayBuffer());
  }

  test('a checkpoint signed by the declared log key is served; /health says how big the log is', async () => {
    const { edge, log } = await loggedEdge();
    expect(await served(edge, '/log/checkpoint')).toEqual(log.checkpoints.at(-1));
    expect(await served(edge, '/log/tile/0/000')).toEqual(
      await readAll(log.store, 'log/tile/0/000'),
    );
    const health = await (await fetch(`${edge.url}/health`)).json<Record<string, unknown>>();
    expect(health).toMatchObject({ status: 'ok', verified: true, log: { size: 305 } });
    expect(refusedLines(edge)).toEqual([]);
  });

  test('a forged checkpoint (another key) is refused with 503 and an error log line; unpinned, it is served', async () => {
    const { edge, log, repo } = await loggedEdge();
    const forger = new TestLog(await createLogKey(), new MemoryBlobStore());
    await forger.append(log.entries);
    const forged = forger.checkpoints.at(-1) ?? new Uint8Array();
    await edge.store.put('log/checkpoint', forged);
    await expectRefused(edge, '/log/checkpoint');
    await vi.waitFor(() => {
      expect(refusedLines(edge).some((line) => line.includes('UNKNOWN_KEY'))).toBe(true);
    });
    const health = await (await fetch(`${edge.url}/health`)).json<Record<string, unknown>>();
    expect(health).toMatchObject({ status: 'ok', log: { error: 'VERIFICATION_FAILED' } });

    const unpinned = await deploy(kind, {});
    await copyAll(repo.store, unpinned.store);
    await unpinned.store.put('log/checkpoint', forged);
    expect(await served(unpinned, '/log/checkpoint')).toEqual(forged);
  });

  test('a checkpoint that forks, or goes back, from the one served is refused with 503', async () => {
    const { edge, log } = await loggedEdge();
    const newest = log.checkpoints.at(-1) ?? new Uint8Array();
    expect(await served(edge, '/log/checkpoint')).toEqual(newest);

    // Someone with the log key writes another tree into the bucket: every tile and checkpoint.
    const fork = await forkOf(log, 100, 250);
    for (const key of await keysOf(fork.store, 'log/')) {
      await edge.store.put(key, await readAll(fork.store, key));
    }
    await expectRefused(edge, '/log/checkpoint');
    await vi.waitFor(() => {
      expect(refusedLines(edge).some((line) => line.includes('SPLIT_VIEW'))).toBe(true);
    });

    // An older checkpoint of the real log: validly signed, but the log went back.
    await edge.store.put('log/checkpoint', log.checkpoints[2] ?? new Uint8Array());
    await expectRefused(edge, '/log/checkpoint');
    await vi.waitFor(() => {
      expect(refusedLines(edge).some((line) => line.includes('went back from 305 to 3'))).toBe(
        true,
      );
    });
  });
});
