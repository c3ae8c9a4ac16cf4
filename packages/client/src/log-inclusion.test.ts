// The transparency log through the whole updater: a repository whose roots declare a log
// (testing/logged-repository.ts, written by @cairn/tlog's LogWriter), served by fake mirrors
// on 127.0.0.1, updated with createUpdater and requireLogInclusion at its default (on).
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { utf8 } from '@cairn/verify/encoding';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClientError } from './errors.js';
import { LOG_CHECKPOINT_FILE } from './log-inclusion.js';
import {
  METADATA_DIRECTORY,
  createUpdater,
  type UpdateEvent,
  type UpdaterConfig,
} from './update.js';
import { LoggedRepository, type TestLog } from './testing/logged-repository.js';
import { makeTempDir, removeTempDir } from './testing/temp-dir.js';
import { TestServers } from './testing/test-servers.js';

const ORIGIN = 'cairn.test/log';

interface FakeMirror {
  readonly url: string;
  /** What it serves, by path: the repository's files unless a test gives it its own. */
  files: Map<string, Uint8Array>;
  /** Answers 404 for paths it returns true for. */
  hide: ((path: string) => boolean) | undefined;
  readonly requests: string[];
}

const servers = new TestServers();
let dir: string;
let installDir: string;
let stateDir: string;

beforeEach(async () => {
  dir = await makeTempDir('cairn-log-');
  installDir = join(dir, 'install');
  stateDir = join(dir, 'state');
});

afterEach(async () => {
  await servers.closeAll();
  await removeTempDir(dir);
});

async function fakeMirror(files: Map<string, Uint8Array>): Promise<FakeMirror> {
  const { url } = await servers.start((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').slice(1);
    fake.requests.push(path);
    const bytes = fake.hide?.(path) === true ? undefined : fake.files.get(path);
    if (bytes === undefined) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-length': bytes.length });
    res.end(bytes);
  });
  const fake: FakeMirror = { url, files, hide: undefined, requests: [] };
  return fake;
}

function configFor(
  repo: LoggedRepository,
  mirrors: readonly FakeMirror[],
  extra: Partial<UpdaterConfig> = {},
): UpdaterConfig {
  return {
    installDir,
    stateDir,
    mirrors: mirrors.map((m) => m.url),
    trustedRoot: repo.rootBytes,
    ...extra,
  };
}

async function update(config: UpdaterConfig) {
  const events: UpdateEvent[] = [];
  const report = await createUpdater(config, (e) => events.push(e)).update();
  return { report, events };
}

/** The error an update fails with (a ClientError, or the test fails). */
async function failure(config: UpdaterConfig): Promise<ClientError> {
  try {
    await createUpdater(config).update();
  } catch (e) {
    expect(e).toBeInstanceOf(ClientError);
    return e as ClientError;
  }
  throw new Error('the update succeeded');
}

/** The checkpoint the client holds: its text, or undefined. */
async function held(): Promise<string | undefined> {
  try {
    return await readFile(join(stateDir, LOG_CHECKPOINT_FILE), 'utf8');
  } catch {
    return undefined;
  }
}

/** The tree size line of a checkpoint note. */
function sizeOf(note: string | undefined): number | undefined {
  return note === undefined ? undefined : Number(note.split('\n')[1]);
}

async function installed(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let names: string[];
  try {
    names = await readdir(installDir);
  } catch {
    return out;
  }
  for (const name of names.filter((n) => !n.startsWith('.')).sort()) {
    out[name] = await readFile(join(installDir, name), 'utf8');
  }
  return out;
}

function served(repo: LoggedRepository, path: string): Uint8Array {
  const bytes = repo.files.get(path);
  if (bytes === undefined) throw new Error(`nothing served at ${path}`);
  return bytes;
}

/** Replaces the first occurrence of `from` by `to` (same length) in a served file's bytes. */
function tamper(bytes: Uint8Array, from: string, to: string): Uint8Array {
  const text = Buffer.from(bytes).toString('latin1');
  const at = text.indexOf(from);
  expect(at).toBeGreaterThanOrEqual(0);
  return new Uint8Array(
    Buffer.from(text.slice(0, at) + to + text.slice(at + from.length), 'latin1'),
  );
}

describe('requireLogInclusion (default on)', () => {
  it('accepts a logged release, reports the proofs and holds the checkpoint; the next one is proven consistent', async () => {
    const repo = await LoggedRepository.create();
    await repo.publish({ 'a.txt': 'A1' });
    const mirror = await fakeMirror(repo.files);

    const first = await update(configFor(repo, [mirror]));
    expect(await installed()).toEqual({ 'a.txt': 'A1' });
    // root v1 (the trusted one, never proven again), targets v1, snapshot v1.
    expect(first.report.log).toEqual({
      origin: ORIGIN,
      size: 3,
      previousSize: undefined,
      proofs: 1,
      mirror: mirror.url,
    });
    const types = first.events.map((e) => e.type);
    expect(types.indexOf('log')).toBe(types.indexOf('metadata') + 1);
    expect(first.events[types.indexOf('log')]).toEqual({ type: 'log', ...first.report.log });
    expect(await held()).toBe(Buffer.from(served(repo, 'log/checkpoint')).toString('utf8'));

    await repo.publish({ 'a.txt': 'A2' });
    const second = await update(configFor(repo, [mirror]));
    expect(await installed()).toEqual({ 'a.txt': 'A2' });
    expect(second.report.log).toEqual({
      origin: ORIGIN,
      size: 5,
      previousSize: 3,
      proofs: 1,
      mirror: mirror.url,
    });
    expect(sizeOf(await held())).toBe(5);
    expect(mirror.requests).toContain('log/checkpoint');

    // Nothing new: no proof needed, but the checkpoint is still checked against the held one
    // (a fork shows on every run); equal sizes need no tiles.
    mirror.requests.length = 0;
    const third = await update(configFor(repo, [mirror]));
    expect(third.report.log).toEqual({
      origin: ORIGIN,
      size: 5,
      previousSize: 5,
      proofs: 0,
      mirror: mirror.url,
    });
    expect(mirror.requests.filter((p) => p.startsWith('log/'))).toEqual(['log/checkpoint']);
  });

  it.each<[string, (repo: LoggedRepository, files: Map<string, Uint8Array>) => void]>([
    [
      'an entry altered in the served entry bundle',
      (repo, files) =>
        files.set(
          'log/tile/entries/000.p/3',
          tamper(served(repo, 'log/tile/entries/000.p/3'), '"version":1}', '"version":7}'),
        ),
    ],
    ['the entry bundle removed', (_repo, files) => files.delete('log/tile/entries/000.p/3')],
    [
      'a leaf hash altered in the served tile',
      (repo, files) => {
        const tile = served(repo, 'log/tile/0/000.p/3').slice();
        tile[40] = (tile[40] ?? 0) ^ 1;
        files.set('log/tile/0/000.p/3', tile);
      },
    ],
  ])('%s: NOT_IN_LOG, nothing installed, no checkpoint held', async (_name, change) => {
    const repo = await LoggedRepository.create();
    await repo.publish({ 'a.txt': 'A1' });
    const files = new Map(repo.files);
    change(repo, files);
    const mirror = await fakeMirror(files);
    const error = await failure(configFor(repo, [mirror]));
    expect(error.code).toBe('NOT_IN_LOG');
    expect(error.message).toContain(`${mirror.url}`);
    expect(await installed()).toEqual({});
    expect(await held()).toBeUndefined();
    expect(await readdir(join(stateDir, METADATA_DIRECTORY))).not.toContain('targets.json');
  });

  it('targets signed with the right keys but never appended to the log: NOT_IN_LOG, the previous release kept', async () => {
    const repo = await LoggedRepository.create();
    await repo.publish({ 'a.txt': 'A1' });
    const mirror = await fakeMirror(repo.files);
    await update(configFor(repo, [mirror]));
    const before = await held();

    await repo.publish({ 'a.txt': 'EVIL' }, { logged: false });
    const error = await failure(configFor(repo, [mirror]));
    expect(error.code).toBe('NOT_IN_LOG');
    expect(error.message).toContain('targets v2 is not in the transparency log cairn.test/log');
    expect(error.message).toContain('not among the entries of its checkpoint of size 3');
    expect(await installed()).toEqual({ 'a.txt': 'A1' });
    expect(await held()).toBe(before);
  });

  describe('split view', () => {
    /** A client holding the real log's checkpoint at size 3 (release 1), then a fork with the
     * same key serving release 2. */
    async function forkedAfterFirstUpdate(
      buildFork: (fork: TestLog, repo: LoggedRepository) => Promise<void>,
    ) {
      const repo = await LoggedRepository.create();
      await repo.publish({ 'a.txt': 'A1' });
      const mirror = await fakeMirror(repo.files);
      await update(configFor(repo, [mirror]));
      const before = await held();
      const real = repo.log;
      const fork = await real!.fork();
      await repo.publish({ 'a.txt': 'FORKED' }, { logged: false });
      await buildFork(fork, repo);
      await repo.serveLog(fork);
      return { repo, mirror, before };
    }

    const release2 = (repo: LoggedRepository) => [
      { role: 'targets', version: 2, bytes: served(repo, 'metadata/2.targets.json') },
      { role: 'snapshot', version: 2, bytes: served(repo, 'metadata/2.snapshot.json') },
    ];

    it('a checkpoint of the same size with another root: SPLIT_VIEW, nothing installed, the held checkpoint unchanged', async () => {
      const { repo, mirror, before } = await forkedAfterFirstUpdate(async (fork, r) => {
        // Three entries, like the real log, the last two release 2's.
        await fork.append([{ role: 'root', version: 1, bytes: r.rootBytes }, ...release2(r)]);
      });
      const error = await failure(configFor(repo, [mirror]));
      expect(error.code).toBe('SPLIT_VIEW');
      expect(error.message).toContain('inconsistent with the one this client holds');
      expect(error.message).toContain('two different roots for the same size');
      expect(await installed()).toEqual({ 'a.txt': 'A1' });
      expect(await held()).toBe(before);
    });

    it('a fork is found on a run with nothing new to install: SPLIT_VIEW, the held checkpoint unchanged', async () => {
      const repo = await LoggedRepository.create();
      await repo.publish({ 'a.txt': 'A1' });
      const mirror = await fakeMirror(repo.files);
      await update(configFor(repo, [mirror]));
      const before = await held();
      // Same metadata, but the log served is a fork of the same size (other entries).
      const fork = await repo.log!.fork();
      await fork.append([
        { role: 'root', version: 1, bytes: repo.rootBytes },
        { role: 'targets', version: 99, bytes: utf8('other') },
        { role: 'snapshot', version: 99, bytes: utf8('other') },
      ]);
      await repo.serveLog(fork);
      const error = await failure(configFor(repo, [mirror]));
      expect(error.code).toBe('SPLIT_VIEW');
      expect(error.message).toContain('two different roots for the same size');
      expect(await installed()).toEqual({ 'a.txt': 'A1' });
      expect(await held()).toBe(before);
    });

    it('a larger tree that does not extend the held one: SPLIT_VIEW, the held checkpoint unchanged', async () => {
      const { repo, mirror, before } = await forkedAfterFirstUpdate(async (fork, r) => {
        // Release 1 left out of the fork's history: size 3 differs, then release 2.
        await fork.append([{ role: 'root', version: 1, bytes: r.rootBytes }, ...release2(r)]);
        await fork.append([{ role: 'targets', version: 99, bytes: utf8('more') }]);
      });
      const error = await failure(configFor(repo, [mirror]));
      expect(error.code).toBe('SPLIT_VIEW');
      expect(error.message).toContain('sizes 3 and 4 cannot both be true');
      expect(await installed()).toEqual({ 'a.txt': 'A1' });
      expect(await held()).toBe(before);
    });

    it("two mirrors' checkpoints that are inconsistent with each other: SPLIT_VIEW, nothing held", async () => {
      const repo = await LoggedRepository.create();
      await repo.publish({ 'a.txt': 'A1' });
      const real = repo.log!;
      // Mirror A serves the metadata with a forked log that lacks targets v1; mirror B has the
      // real log but (lagging) no metadata yet, so A's log is asked first, then B's.
      const fork = await real.fork();
      await fork.append([
        { role: 'root', version: 1, bytes: repo.rootBytes },
        { role: 'targets', version: 99, bytes: utf8('other') },
        { role: 'snapshot', version: 99, bytes: utf8('other') },
      ]);
      const forkedFiles = new Map(repo.files);
      for (const [path, bytes] of await fork.files()) forkedFiles.set(path, bytes);
      const a = await fakeMirror(forkedFiles);
      const b = await fakeMirror(repo.files);
      b.hide = (path) => path.startsWith('metadata/') || path.startsWith('targets/');
      const error = await failure(configFor(repo, [a, b]));
      expect(error.code).toBe('SPLIT_VIEW');
      expect(error.message).toContain(
        `${a.url} and ${b.url} serve checkpoints of the log that are inconsistent`,
      );
      expect(await installed()).toEqual({});
      expect(await held()).toBeUndefined();
    });
  });

  it('a stale mirror (checkpoint older than the held one) is passed over for one that proves the release', async () => {
    const repo = await LoggedRepository.create();
    await repo.publish({ 'a.txt': 'A1' });
    const staleCheckpoint = served(repo, 'log/checkpoint');
    await repo.publish({ 'a.txt': 'A2' });
    const a = await fakeMirror(repo.files);
    await update(configFor(repo, [a]));
    expect(sizeOf(await held())).toBe(5);

    await repo.publish({ 'a.txt': 'A3' });
    // A serves the new metadata with its log left at size 3; B has the log but no metadata.
    a.files = new Map(repo.files);
    a.files.set('log/checkpoint', staleCheckpoint);
    const b = await fakeMirror(repo.files);
    b.hide = (path) => path.startsWith('metadata/') || path.startsWith('targets/');
    const { report } = await update(configFor(repo, [a, b]));
    expect(await installed()).toEqual({ 'a.txt': 'A3' });
    expect(report.log).toEqual({
      origin: ORIGIN,
      size: 7,
      previousSize: 5,
      proofs: 1,
      mirror: b.url,
    });
    expect(sizeOf(await held())).toBe(7);
  });

  it('root rotations are proven in the log the previous root declares; an unlogged root is NOT_IN_LOG', async () => {
    const repo = await LoggedRepository.create();
    await repo.publish({ 'a.txt': 'A1' });
    const mirror = await fakeMirror(repo.files);
    await update(configFor(repo, [mirror]));

    await repo.publishRoot();
    await repo.publish({ 'a.txt': 'A2' });
    const { report } = await update(configFor(repo, [mirror]));
    expect(report.log).toMatchObject({ size: 6, previousSize: 3, proofs: 2 });
    const rootV2 = served(repo, 'metadata/2.root.json');
    expect(new Uint8Array(await readFile(join(stateDir, METADATA_DIRECTORY, 'root.json')))).toEqual(
      rootV2,
    );

    // Root v3 signed by the root key but not appended: refused, root v2 stays trusted.
    await repo.publishRoot({ logged: false });
    const error = await failure(configFor(repo, [mirror]));
    expect(error.code).toBe('NOT_IN_LOG');
    expect(error.message).toContain('root v3 is not in the transparency log');
    expect(new Uint8Array(await readFile(join(stateDir, METADATA_DIRECTORY, 'root.json')))).toEqual(
      rootV2,
    );
    expect(sizeOf(await held())).toBe(6);
  });

  it('a mirror serving a root version not in the log is blamed, and the update completes from another', async () => {
    const repo = await LoggedRepository.create();
    await repo.publish({ 'a.txt': 'A1' });
    const honest = await fakeMirror(new Map(repo.files));
    // Root v2 signed with the root key but written straight to one mirror, around the log.
    await repo.publishRoot({ logged: false });
    const tampered = await fakeMirror(repo.files);
    const { report, events } = await update(configFor(repo, [tampered, honest]));
    expect(await installed()).toEqual({ 'a.txt': 'A1' });
    expect(report.log).toMatchObject({ size: 3, proofs: 1 });
    expect(new Uint8Array(await readFile(join(stateDir, METADATA_DIRECTORY, 'root.json')))).toEqual(
      repo.rootBytes,
    );
    const failed = events.filter((e) => e.type === 'mirror-failed');
    expect(failed).toContainEqual({
      type: 'mirror-failed',
      mirror: tampered.url,
      reason: expect.stringMatching(
        /^NOT_IN_LOG: root v2 is not in the transparency log cairn\.test\/log: /,
      ) as string,
    });
  });

  it('an unreadable held checkpoint is a warning, and replaced by the next verified one', async () => {
    const repo = await LoggedRepository.create();
    await repo.publish({ 'a.txt': 'A1' });
    const mirror = await fakeMirror(repo.files);
    await mkdir(stateDir, { recursive: true });
    await writeFile(join(stateDir, LOG_CHECKPOINT_FILE), 'not a note');
    const { report } = await update(configFor(repo, [mirror]));
    expect(report.warnings).toEqual([
      `the held log checkpoint ${join(stateDir, LOG_CHECKPOINT_FILE)} is unreadable and was ignored (MALFORMED_NOTE: note has no blank line before its signatures)`,
    ]);
    expect(report.log).toMatchObject({ size: 3, previousSize: undefined });
    expect(sizeOf(await held())).toBe(3);
  });

  it('a trusted root that declares no log: LOG_REQUIRED before any metadata is fetched; off, the update runs', async () => {
    const repo = await LoggedRepository.create({ log: false });
    await repo.publish({ 'a.txt': 'A1' });
    const mirror = await fakeMirror(repo.files);
    const error = await failure(configFor(repo, [mirror]));
    expect(error.code).toBe('LOG_REQUIRED');
    expect(error.message).toBe(
      'root v1: the trusted root v1 declares no transparency log, and log inclusion is required; set requireLogInclusion: false (cairn update --no-require-log) to update from a repository without a transparency log',
    );
    expect(await readdir(join(stateDir, METADATA_DIRECTORY))).toEqual(['root.json']);

    const { report, events } = await update(
      configFor(repo, [mirror], { requireLogInclusion: false }),
    );
    expect(await installed()).toEqual({ 'a.txt': 'A1' });
    expect(report.log).toBeUndefined();
    expect(events.some((e) => e.type === 'log')).toBe(false);
    expect(await held()).toBeUndefined();
  });

  it('refuses a requireLogInclusion that is not a boolean (CONFIG_INVALID)', async () => {
    const repo = await LoggedRepository.create();
    const error = await failure(
      configFor(repo, [], {
        requireLogInclusion: 'no' as unknown as boolean,
        mirrors: ['http://127.0.0.1:9/'],
      }),
    );
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toBe('requireLogInclusion: expected true or false, received "no"');
  });
});
