import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { encodeDelta } from '@cairn/delta/encode';
import { utf8 } from '@cairn/verify/encoding';
import type { TargetFile } from '@cairn/verify/metadata';
import {
  buildRoot,
  buildSnapshot,
  buildTargets,
  buildTimestamp,
  describeMetadata,
  describeTarget,
  signNew,
} from '@cairn/verify/repository';
import { Ed25519Signer, type Signer } from '@cairn/verify/signer';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deltaTargetPath } from './delta-plan.js';
import { mirrorPathOfTarget } from './download.js';
import { nodeHashPort } from './node-hash.js';
import {
  MIRROR_LIST_FILE,
  PARTIAL_DIRECTORY,
  createUpdater,
  type UpdateEvent,
  type UpdaterConfig,
} from './update.js';
import { deltaTargetFile } from './testing/delta-target.js';
import { failure } from './testing/failure.js';
import { TestServers } from './testing/test-servers.js';
import { makeTempDir, removeTempDir } from './testing/temp-dir.js';

const DAY = 86_400_000;

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A signature database of `count` lines; `version` changes every 50th line, so two versions
 * differ in 2% of their lines and a delta between them is a small fraction of the file. */
function database(name: string, count: number, version: number): Uint8Array {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const changed = i % 50 === 7 ? version : 0;
    lines.push(
      `${name}.Agent-${i}-${changed}:0:*:${(i * 2654435761) % 4294967296}${'f'.repeat(20)}`,
    );
  }
  return utf8(`${lines.join('\n')}\n`);
}

interface Release {
  /** The files of the release, by target path. */
  readonly files: Readonly<Record<string, Uint8Array>>;
  /** Earlier contents of a path to make deltas from (encodeDelta, as apps/origin does). */
  readonly deltasFrom?: Readonly<Record<string, readonly Uint8Array[]>>;
  /** Replaces the encoded delta of (path, base) with other bytes, still signed as that delta. */
  readonly deltaBytes?: (path: string, base: Uint8Array) => Promise<Uint8Array>;
  /** Older deltas still listed (base → result), which make chains to the current file. */
  readonly olderDeltas?: readonly {
    readonly path: string;
    readonly base: Uint8Array;
    readonly result: Uint8Array;
  }[];
  /** Publishes `mirrors.json` listing these. */
  readonly mirrors?: readonly { readonly url: string; readonly name?: string }[];
}

/**
 * A real signed repository (consistent snapshots), laid out as the origin publishes it:
 * `metadata/{N}.root.json`, `metadata/{V}.snapshot.json`, `metadata/{V}.targets.json`,
 * `metadata/timestamp.json`, `targets/{dir/}{sha256}.{name}`. Fake mirrors serve `files`.
 */
class TestRepository {
  readonly files = new Map<string, Uint8Array>();
  /** The signed targets of the latest release. */
  targets = new Map<string, TargetFile>();
  version = 0;
  rootBytes: Uint8Array = new Uint8Array();
  readonly #signers: Record<'root' | 'timestamp' | 'snapshot' | 'targets', Signer>;

  private constructor(signers: Record<'root' | 'timestamp' | 'snapshot' | 'targets', Signer>) {
    this.#signers = signers;
  }

  static async create(): Promise<TestRepository> {
    const repo = new TestRepository({
      root: await Ed25519Signer.generate(),
      timestamp: await Ed25519Signer.generate(),
      snapshot: await Ed25519Signer.generate(),
      targets: await Ed25519Signer.generate(),
    });
    const spec = (s: Signer) => ({
      keys: [{ keyid: s.keyid, publicKey: s.publicKey }],
      threshold: 1,
    });
    const root = await signNew(
      buildRoot({
        version: 1,
        expires: new Date(Date.now() + 365 * DAY),
        roles: {
          root: spec(repo.#signers.root),
          timestamp: spec(repo.#signers.timestamp),
          snapshot: spec(repo.#signers.snapshot),
          targets: spec(repo.#signers.targets),
        },
      }),
      [repo.#signers.root],
    );
    repo.rootBytes = root.toBytes();
    repo.files.set('metadata/1.root.json', repo.rootBytes);
    return repo;
  }

  async publish(release: Release): Promise<void> {
    this.version++;
    const list: TargetFile[] = [];
    const add = (target: TargetFile, bytes: Uint8Array): void => {
      list.push(target);
      this.files.set(mirrorPathOfTarget(target), bytes);
    };
    const addDelta = (path: string, base: Uint8Array, result: Uint8Array, delta: Uint8Array) =>
      add(deltaTargetFile(path, delta, base, result), delta);
    for (const [path, bytes] of Object.entries(release.files)) {
      add(
        await describeTarget(nodeHashPort, path, bytes, { algorithms: ['sha256', 'sha512'] }),
        bytes,
      );
      for (const base of release.deltasFrom?.[path] ?? []) {
        const delta =
          release.deltaBytes === undefined
            ? await encodeDelta(base, bytes)
            : await release.deltaBytes(path, base);
        addDelta(path, base, bytes, delta);
      }
    }
    for (const { path, base, result } of release.olderDeltas ?? []) {
      addDelta(path, base, result, await encodeDelta(base, result));
    }
    if (release.mirrors !== undefined) {
      const bytes = utf8(JSON.stringify({ mirrors: release.mirrors }));
      add(await describeTarget(nodeHashPort, 'mirrors.json', bytes), bytes);
    }
    this.targets = new Map(list.map((t) => [t.path, t]));
    const expires = new Date(Date.now() + 7 * DAY);
    const targets = await signNew(buildTargets({ version: this.version, expires, targets: list }), [
      this.#signers.targets,
    ]);
    this.files.set(`metadata/${this.version}.targets.json`, targets.toBytes());
    const snapshot = await signNew(
      buildSnapshot({
        version: this.version,
        expires,
        meta: {
          'targets.json': await describeMetadata(nodeHashPort, this.version, targets.toBytes()),
        },
      }),
      [this.#signers.snapshot],
    );
    this.files.set(`metadata/${this.version}.snapshot.json`, snapshot.toBytes());
    this.files.set(
      'metadata/timestamp.json',
      await this.timestamp(this.version, snapshot.toBytes()),
    );
  }

  /** A timestamp for `snapshotBytes`, signed by the timestamp key or, to forge one, another. */
  async timestamp(
    version: number,
    snapshotBytes: Uint8Array,
    signer?: Signer,
  ): Promise<Uint8Array> {
    const ts = await signNew(
      buildTimestamp({
        version,
        expires: new Date(Date.now() + DAY),
        snapshot: await describeMetadata(nodeHashPort, this.version, snapshotBytes, {
          length: true,
          hashes: true,
        }),
      }),
      [signer ?? this.#signers.timestamp],
    );
    return ts.toBytes();
  }

  target(path: string): TargetFile {
    const t = this.targets.get(path);
    if (t === undefined) throw new Error(`no target ${path}`);
    return t;
  }

  /** The delta target from `base` to the current `path`. */
  delta(path: string, base: Uint8Array): TargetFile {
    return this.target(deltaTargetPath(path, sha256(base)));
  }
}

interface LoggedRequest {
  readonly path: string;
  readonly range: string | undefined;
}

/** A node:http server standing in for a mirror: serves a repository's files (Range included). */
interface FakeMirror {
  readonly url: string;
  readonly server: Server;
  readonly requests: LoggedRequest[];
  /** Answers instead of the repository when it returns bytes (or handles the response). */
  override:
    ((path: string, req: IncomingMessage, res: ServerResponse) => Uint8Array | boolean) | undefined;
  /** Holds every request under targets/ until released. */
  gate: Promise<void> | undefined;
  /** Resolved when a request reaches the gate. */
  reachedGate: (() => void) | undefined;
}

const servers = new TestServers();
let dir: string;
let installDir: string;
let stateDir: string;

beforeEach(async () => {
  dir = await makeTempDir('cairn-update-');
  installDir = join(dir, 'install');
  stateDir = join(dir, 'state');
});

afterEach(async () => {
  await servers.closeAll();
  await removeTempDir(dir);
});

function send(req: IncomingMessage, res: ServerResponse, bytes: Uint8Array): void {
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (range === null) {
    res.writeHead(200, { 'content-length': bytes.length, 'accept-ranges': 'bytes' });
    res.end(bytes);
    return;
  }
  const start = Number(range[1]);
  if (start >= bytes.length) {
    res.writeHead(416, { 'content-range': `bytes */${bytes.length}` });
    res.end();
    return;
  }
  res.writeHead(206, {
    'content-length': bytes.length - start,
    'content-range': `bytes ${start}-${bytes.length - 1}/${bytes.length}`,
  });
  res.end(bytes.subarray(start));
}

async function fakeMirror(repo: TestRepository): Promise<FakeMirror> {
  const { server, url } = await servers.start((req, res) => {
    const path = (req.url ?? '/').slice(1);
    fake.requests.push({ path, range: req.headers.range });
    const answer = async (): Promise<void> => {
      if (fake.gate !== undefined && path.startsWith('targets/')) {
        fake.reachedGate?.();
        await fake.gate;
      }
      const own = fake.override?.(path, req, res);
      if (own === true) return;
      const bytes = own instanceof Uint8Array ? own : repo.files.get(path);
      if (bytes === undefined) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"error":"NOT_FOUND"}');
        return;
      }
      send(req, res, bytes);
    };
    void answer();
  });
  const fake: FakeMirror = {
    url,
    server,
    requests: [],
    override: undefined,
    gate: undefined,
    reachedGate: undefined,
  };
  return fake;
}

function stop(mirror: FakeMirror): Promise<void> {
  return servers.stop(mirror.server);
}

function configFor(
  repo: TestRepository,
  mirrors: readonly FakeMirror[],
  extra: Partial<UpdaterConfig> = {},
): UpdaterConfig {
  return {
    installDir,
    stateDir,
    mirrors: mirrors.map((m) => m.url),
    trustedRoot: repo.rootBytes,
    // These tests are about mirrors, deltas and installs, and TestRepository publishes no
    // transparency log: inclusion is switched off here, and tested in log-inclusion.test.ts.
    requireLogInclusion: false,
    ...extra,
  };
}

/** Runs an update, collecting its events. */
async function update(config: UpdaterConfig) {
  const events: UpdateEvent[] = [];
  const report = await createUpdater(config, (e) => events.push(e)).update();
  return { report, events };
}

async function installedFile(path: string): Promise<string> {
  return sha256(new Uint8Array(await readFile(join(installDir, path))));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The events without the mirrors' round-trip times, which no test can know. */
function withoutRtt(events: readonly UpdateEvent[]): unknown[] {
  return events.map((e) => {
    if (e.type !== 'mirrors') return e;
    for (const m of e.ranked) expect(m.rttMs).toBeGreaterThanOrEqual(0);
    return { ...e, ranked: e.ranked.map(({ rttMs: _rttMs, ...m }) => m) };
  });
}

const DAILY_V1 = database('Win.Trojan', 3000, 1);
const DAILY_V2 = database('Win.Trojan', 3000, 2);
const MAIN_V1 = database('Unix.Worm', 1500, 1);

/**
 * A repository whose daily.cvd DAILY_V1 is installed through one fake mirror, then DAILY_V2
 * published with a delta from DAILY_V1 (`deltaBytes` in place of the encoded delta, when given).
 */
async function installedV1ThenV2WithDelta(deltaBytes?: Release['deltaBytes']) {
  const repo = await TestRepository.create();
  await repo.publish({ files: { 'daily.cvd': DAILY_V1 } });
  const mirror = await fakeMirror(repo);
  await update(configFor(repo, [mirror]));
  await repo.publish({
    files: { 'daily.cvd': DAILY_V2 },
    deltasFrom: { 'daily.cvd': [DAILY_V1] },
    ...(deltaBytes === undefined ? {} : { deltaBytes }),
  });
  return { repo, mirror };
}

describe('createUpdater().update() against fake mirrors', () => {
  it('first install: full files from the fake mirror, verified, events in order', async () => {
    const repo = await TestRepository.create();
    await repo.publish({ files: { 'daily.cvd': DAILY_V1, 'main.cvd': MAIN_V1 } });
    const mirror = await fakeMirror(repo);
    const { report, events } = await update(configFor(repo, [mirror]));

    const daily = repo.target('daily.cvd');
    const main = repo.target('main.cvd');
    expect(report).toEqual({
      timestampVersion: 1,
      targetsVersion: 1,
      files: [
        {
          path: 'daily.cvd',
          action: 'full',
          sha256: sha256(DAILY_V1),
          length: DAILY_V1.length,
          bytesDownloaded: DAILY_V1.length,
          bytesSaved: 0,
          mirror: mirror.url,
        },
        {
          path: 'main.cvd',
          action: 'full',
          sha256: sha256(MAIN_V1),
          length: MAIN_V1.length,
          bytesDownloaded: MAIN_V1.length,
          bytesSaved: 0,
          mirror: mirror.url,
        },
      ],
      bytesDownloaded: DAILY_V1.length + MAIN_V1.length,
      bytesFull: DAILY_V1.length + MAIN_V1.length,
      unmatched: [],
      warnings: [],
    });
    expect(withoutRtt(events)).toEqual([
      {
        type: 'mirrors',
        ranked: [
          {
            url: mirror.url,
            name: undefined,
            timestampVersion: 1,
            reachable: true,
            source: 'configured',
            error: undefined,
          },
        ],
      },
      {
        type: 'metadata',
        timestampVersion: 1,
        snapshotVersion: 1,
        targetsVersion: 1,
        mirror: mirror.url,
      },
      {
        type: 'plan',
        items: [
          {
            path: 'daily.cvd',
            action: 'full',
            downloadBytes: daily.length,
            fullBytes: daily.length,
          },
          { path: 'main.cvd', action: 'full', downloadBytes: main.length, fullBytes: main.length },
        ],
      },
      {
        type: 'progress',
        path: 'daily.cvd',
        kind: 'full',
        bytes: daily.length,
        total: daily.length,
        mirror: mirror.url,
      },
      {
        type: 'installed',
        path: 'daily.cvd',
        kind: 'full',
        bytesDownloaded: daily.length,
        bytesSaved: 0,
        mirror: mirror.url,
      },
      {
        type: 'progress',
        path: 'main.cvd',
        kind: 'full',
        bytes: main.length,
        total: main.length,
        mirror: mirror.url,
      },
      {
        type: 'installed',
        path: 'main.cvd',
        kind: 'full',
        bytesDownloaded: main.length,
        bytesSaved: 0,
        mirror: mirror.url,
      },
    ]);
    expect(await installedFile('daily.cvd')).toBe(sha256(DAILY_V1));
    expect(await installedFile('main.cvd')).toBe(sha256(MAIN_V1));
    // Nothing left beside the program's files, nothing left half-downloaded.
    expect((await readdir(installDir)).sort()).toEqual(['daily.cvd', 'main.cvd']);
    expect(await readdir(join(stateDir, PARTIAL_DIRECTORY))).toEqual([]);
    expect(JSON.parse(await readFile(join(stateDir, 'metadata', 'root.json'), 'utf8'))).toEqual(
      JSON.parse(new TextDecoder().decode(repo.rootBytes)),
    );

    // Nothing changed: the next run downloads nothing.
    const again = await update(configFor(repo, [mirror]));
    expect(again.report.files.map((f) => [f.path, f.action, f.bytesDownloaded])).toEqual([
      ['daily.cvd', 'current', 0],
      ['main.cvd', 'current', 0],
    ]);
    expect([again.report.bytesDownloaded, again.report.bytesFull]).toEqual([0, 0]);
    expect(again.events.map((e) => e.type)).toEqual(['mirrors', 'metadata', 'plan']);
  });

  it('next release via a delta: downloads the delta only, bytesSaved exact', async () => {
    const repo = await TestRepository.create();
    await repo.publish({ files: { 'daily.cvd': DAILY_V1, 'main.cvd': MAIN_V1 } });
    const mirror = await fakeMirror(repo);
    await update(configFor(repo, [mirror]));

    await repo.publish({
      files: { 'daily.cvd': DAILY_V2, 'main.cvd': MAIN_V1 },
      deltasFrom: { 'daily.cvd': [DAILY_V1] },
    });
    const delta = repo.delta('daily.cvd', DAILY_V1);
    expect(delta.length).toBeLessThan(DAILY_V2.length / 10);
    mirror.requests.length = 0;
    const { report, events } = await update(configFor(repo, [mirror]));

    expect(report).toEqual({
      timestampVersion: 2,
      targetsVersion: 2,
      files: [
        {
          path: 'daily.cvd',
          action: 'delta',
          sha256: sha256(DAILY_V2),
          length: DAILY_V2.length,
          bytesDownloaded: delta.length,
          bytesSaved: DAILY_V2.length - delta.length,
          mirror: mirror.url,
        },
        {
          path: 'main.cvd',
          action: 'current',
          sha256: sha256(MAIN_V1),
          length: MAIN_V1.length,
          bytesDownloaded: 0,
          bytesSaved: 0,
        },
      ],
      bytesDownloaded: delta.length,
      bytesFull: DAILY_V2.length,
      unmatched: [],
      warnings: [],
    });
    expect(withoutRtt(events).slice(2)).toEqual([
      {
        type: 'plan',
        items: [
          {
            path: 'daily.cvd',
            action: 'delta',
            downloadBytes: delta.length,
            fullBytes: DAILY_V2.length,
          },
          { path: 'main.cvd', action: 'current', downloadBytes: 0, fullBytes: MAIN_V1.length },
        ],
      },
      {
        type: 'progress',
        path: 'daily.cvd',
        kind: 'delta',
        bytes: delta.length,
        total: delta.length,
        mirror: mirror.url,
      },
      {
        type: 'installed',
        path: 'daily.cvd',
        kind: 'delta',
        bytesDownloaded: delta.length,
        bytesSaved: DAILY_V2.length - delta.length,
        mirror: mirror.url,
      },
    ]);
    expect(await installedFile('daily.cvd')).toBe(sha256(DAILY_V2));
    // The full file was never asked for; the delta was, once.
    const targetRequests = mirror.requests.filter((r) => r.path.startsWith('targets/'));
    expect(targetRequests).toEqual([{ path: mirrorPathOfTarget(delta), range: undefined }]);
    expect(await readdir(join(stateDir, PARTIAL_DIRECTORY))).toEqual([]);
  });

  it('a chain of deltas (v1 → v2 → v3) when only older deltas start at the installed file', async () => {
    const repo = await TestRepository.create();
    await repo.publish({ files: { 'daily.cvd': DAILY_V1 } });
    const mirror = await fakeMirror(repo);
    await update(configFor(repo, [mirror]));
    const v3 = database('Win.Trojan', 3000, 3);
    await repo.publish({
      files: { 'daily.cvd': v3 },
      deltasFrom: { 'daily.cvd': [DAILY_V2] },
      olderDeltas: [{ path: 'daily.cvd', base: DAILY_V1, result: DAILY_V2 }],
    });
    const first = repo.delta('daily.cvd', DAILY_V1);
    const second = repo.delta('daily.cvd', DAILY_V2);
    const { report, events } = await update(configFor(repo, [mirror]));
    const downloaded = first.length + second.length;
    expect(report.files).toEqual([
      {
        path: 'daily.cvd',
        action: 'delta',
        sha256: sha256(v3),
        length: v3.length,
        bytesDownloaded: downloaded,
        bytesSaved: v3.length - downloaded,
        mirror: mirror.url,
      },
    ]);
    expect(events.slice(2)).toEqual([
      {
        type: 'plan',
        items: [
          { path: 'daily.cvd', action: 'delta', downloadBytes: downloaded, fullBytes: v3.length },
        ],
      },
      ...[first, second].map((d) => ({
        type: 'progress',
        path: 'daily.cvd',
        kind: 'delta',
        bytes: d.length,
        total: d.length,
        mirror: mirror.url,
      })),
      {
        type: 'installed',
        path: 'daily.cvd',
        kind: 'delta',
        bytesDownloaded: downloaded,
        bytesSaved: v3.length - downloaded,
        mirror: mirror.url,
      },
    ]);
    expect(await installedFile('daily.cvd')).toBe(sha256(v3));
    expect((await readdir(installDir)).sort()).toEqual(['daily.cvd']);
    expect(await readdir(join(stateDir, PARTIAL_DIRECTORY))).toEqual([]);
  });

  it('with deltas: false, downloads the full file even when a delta is listed', async () => {
    const { repo, mirror } = await installedV1ThenV2WithDelta();
    const { report } = await update(configFor(repo, [mirror], { deltas: false }));
    expect(report.files).toEqual([
      {
        path: 'daily.cvd',
        action: 'full',
        sha256: sha256(DAILY_V2),
        length: DAILY_V2.length,
        bytesDownloaded: DAILY_V2.length,
        bytesSaved: 0,
        mirror: mirror.url,
      },
    ]);
    expect(await installedFile('daily.cvd')).toBe(sha256(DAILY_V2));
  });

  it('a corrupt delta on the fake mirror: mirror demoted, fallback to the full file, verified', async () => {
    const { repo, mirror } = await installedV1ThenV2WithDelta();
    const delta = repo.delta('daily.cvd', DAILY_V1);
    const deltaPath = mirrorPathOfTarget(delta);
    mirror.override = (path) => {
      if (path !== deltaPath) return false;
      const corrupt = (repo.files.get(path) ?? new Uint8Array()).slice();
      const middle = corrupt.length >> 1;
      corrupt[middle] = (corrupt[middle] ?? 0) ^ 0xff;
      return corrupt;
    };

    const { report, events } = await update(configFor(repo, [mirror]));
    const file = report.files[0];
    expect(file?.action).toBe('full');
    expect(file?.sha256).toBe(sha256(DAILY_V2));
    expect(file?.bytesDownloaded).toBe(delta.length + DAILY_V2.length);
    expect(file?.bytesSaved).toBe(-delta.length);
    expect(file?.fallbackReason).toMatch(
      /^NO_MIRROR: delta _delta\/daily\.cvd\/[0-9a-f]{64}: no mirror could provide it: .*VERIFICATION_FAILED/,
    );
    expect(await installedFile('daily.cvd')).toBe(sha256(DAILY_V2));
    expect(events.slice(3)).toEqual([
      {
        type: 'progress',
        path: 'daily.cvd',
        kind: 'delta',
        bytes: delta.length,
        total: delta.length,
        mirror: mirror.url,
      },
      {
        type: 'mirror-failed',
        mirror: mirror.url,
        reason: expect.stringMatching(
          new RegExp(`^${escapeRegExp(`GET ${mirror.url}${deltaPath}: `)}`),
        ) as unknown,
      },
      { type: 'fallback', path: 'daily.cvd', reason: file?.fallbackReason },
      {
        type: 'progress',
        path: 'daily.cvd',
        kind: 'full',
        bytes: DAILY_V2.length,
        total: DAILY_V2.length,
        mirror: mirror.url,
      },
      {
        type: 'installed',
        path: 'daily.cvd',
        kind: 'full',
        bytesDownloaded: delta.length + DAILY_V2.length,
        bytesSaved: -delta.length,
        mirror: mirror.url,
      },
    ]);
    expect(await readdir(join(stateDir, PARTIAL_DIRECTORY))).toEqual([]);
  });

  it('a signed delta that does not rebuild the target: fallback (DELTA_FAILED) to the full file', async () => {
    // A well-formed delta to some other file, listed as the delta to v2.
    const { repo, mirror } = await installedV1ThenV2WithDelta((_path, base) =>
      encodeDelta(base, database('Win.Trojan', 3000, 9)),
    );
    const delta = repo.delta('daily.cvd', DAILY_V1);

    const { report, events } = await update(configFor(repo, [mirror]));
    expect(report.files[0]?.action).toBe('full');
    expect(report.files[0]?.fallbackReason).toMatch(
      /^DELTA_FAILED: applying deltas to daily\.cvd failed: /,
    );
    expect(report.files[0]?.bytesDownloaded).toBe(delta.length + DAILY_V2.length);
    expect(events.filter((e) => e.type === 'fallback')).toEqual([
      { type: 'fallback', path: 'daily.cvd', reason: report.files[0]?.fallbackReason },
    ]);
    // The mirror served what was signed: not its fault.
    expect(events.filter((e) => e.type === 'mirror-failed')).toEqual([]);
    expect(await installedFile('daily.cvd')).toBe(sha256(DAILY_V2));
    expect((await readdir(installDir)).sort()).toEqual(['daily.cvd']);
  });

  it('a fake mirror serving tampered metadata is demoted and the update completes from another', async () => {
    const repo = await TestRepository.create();
    await repo.publish({ files: { 'daily.cvd': DAILY_V1 } });
    const honest = await fakeMirror(repo);
    const tampering = await fakeMirror(repo);
    // A newer-looking timestamp (so the probe ranks this mirror first), signed by a stranger.
    const forged = await repo.timestamp(
      7,
      repo.files.get('metadata/1.snapshot.json') ?? new Uint8Array(),
      await Ed25519Signer.generate(),
    );
    tampering.override = (path) => (path === 'metadata/timestamp.json' ? forged : false);

    const { report, events } = await update(configFor(repo, [honest, tampering]));
    expect(report.files.map((f) => [f.path, f.action, f.mirror])).toEqual([
      ['daily.cvd', 'full', honest.url],
    ]);
    expect(await installedFile('daily.cvd')).toBe(sha256(DAILY_V1));
    expect(withoutRtt(events).slice(0, 3)).toEqual([
      {
        type: 'mirrors',
        ranked: [
          {
            url: tampering.url,
            name: undefined,
            timestampVersion: 7,
            reachable: true,
            source: 'configured',
            error: undefined,
          },
          {
            url: honest.url,
            name: undefined,
            timestampVersion: 1,
            reachable: true,
            source: 'configured',
            error: undefined,
          },
        ],
      },
      {
        type: 'mirror-failed',
        mirror: tampering.url,
        reason: expect.stringMatching(/^THRESHOLD: /) as unknown,
      },
      {
        type: 'metadata',
        timestampVersion: 1,
        snapshotVersion: 1,
        targetsVersion: 1,
        mirror: honest.url,
      },
    ]);
    expect(events.filter((e) => e.type === 'mirror-failed')).toHaveLength(1);
    // Probed, then asked once for the timestamp it forged; nothing after that.
    expect(tampering.requests.map((r) => r.path)).toEqual([
      'metadata/timestamp.json',
      'metadata/2.root.json',
      'metadata/timestamp.json',
    ]);
  });

  it('fails with NO_MIRROR naming the refusal when the only fake mirror tampers with metadata', async () => {
    const repo = await TestRepository.create();
    await repo.publish({ files: { 'daily.cvd': DAILY_V1 } });
    const tampering = await fakeMirror(repo);
    const forged = await repo.timestamp(
      1,
      repo.files.get('metadata/1.snapshot.json') ?? new Uint8Array(),
      await Ed25519Signer.generate(),
    );
    tampering.override = (path) => (path === 'metadata/timestamp.json' ? forged : false);
    const e = await failure(update(configFor(repo, [tampering])));
    expect(e.code).toBe('NO_MIRROR');
    expect(e.message).toMatch(
      new RegExp(
        `^${escapeRegExp(
          `no mirror served metadata that verifies: ${tampering.url} (THRESHOLD: timestamp: `,
        )}.*; then FETCH_FAILED: metadata/2\\.root\\.json: no mirror left to ask`,
      ),
    );
    expect((e.cause as { code?: string }).code).toBe('THRESHOLD');
    expect(await stat(join(installDir, 'daily.cvd')).catch(() => undefined)).toBeUndefined();
  });

  it('mirrors.json adds a fake mirror, used by the next run when the configured one is gone', async () => {
    const repo = await TestRepository.create();
    const configured = await fakeMirror(repo);
    const listed = await fakeMirror(repo);
    const list = [{ url: listed.url, name: 'eu-1' }];
    await repo.publish({ files: { 'daily.cvd': DAILY_V1 }, mirrors: list });

    const first = await update(configFor(repo, [configured]));
    const mirrorsEvents = withoutRtt(first.events.filter((e) => e.type === 'mirrors'));
    expect(mirrorsEvents).toHaveLength(2);
    // After the list was read: both, probed.
    const second = mirrorsEvents[1] as Extract<UpdateEvent, { type: 'mirrors' }>;
    expect([...second.ranked].sort((a, b) => (a.url < b.url ? -1 : 1))).toEqual(
      [
        {
          url: configured.url,
          name: undefined,
          timestampVersion: 1,
          reachable: true,
          source: 'configured',
          error: undefined,
        },
        {
          url: listed.url,
          name: 'eu-1',
          timestampVersion: 1,
          reachable: true,
          source: 'repository',
          error: undefined,
        },
      ].sort((a, b) => (a.url < b.url ? -1 : 1)),
    );
    // Remembered as signed; not installed as a program file.
    expect(new Uint8Array(await readFile(join(stateDir, MIRROR_LIST_FILE)))).toEqual(
      repo.files.get(mirrorPathOfTarget(repo.target('mirrors.json'))),
    );
    expect(await readdir(installDir)).toEqual(['daily.cvd']);
    expect(first.report.files.map((f) => f.path)).toEqual(['daily.cvd']);

    await stop(configured);
    await repo.publish({ files: { 'daily.cvd': DAILY_V2 }, mirrors: list });
    listed.requests.length = 0;
    const next = await update(configFor(repo, [configured]));
    expect(next.report.files.map((f) => [f.path, f.action, f.mirror])).toEqual([
      ['daily.cvd', 'full', listed.url],
    ]);
    expect(
      next.events[0]?.type === 'mirrors' && next.events[0].ranked.map((m) => m.url).sort(),
    ).toEqual([configured.url, listed.url].sort());
    expect(listed.requests.map((r) => r.path)).toContain(
      mirrorPathOfTarget(repo.target('daily.cvd')),
    );
    expect(await installedFile('daily.cvd')).toBe(sha256(DAILY_V2));
  });

  it('installs only the targets the globs and names select, and reports unmatched ones', async () => {
    const repo = await TestRepository.create();
    const bytecode = database('Bytecode', 100, 1);
    const nested = database('Nested', 100, 1);
    await repo.publish({
      files: {
        'daily.cvd': DAILY_V1,
        'main.cvd': MAIN_V1,
        'bytecode.cld': bytecode,
        'extra/nested.cvd': nested,
      },
      mirrors: [],
    });
    const mirror = await fakeMirror(repo);
    const { report, events } = await update(
      configFor(repo, [mirror], { targets: ['*.cvd', 'missing.cud', '*.json'] }),
    );
    expect(report.files.map((f) => [f.path, f.action])).toEqual([
      ['daily.cvd', 'full'],
      ['main.cvd', 'full'],
    ]);
    // `*.json` does not reach the mirror list: only its exact name does.
    expect(report.unmatched).toEqual(['missing.cud', '*.json']);
    expect(events.find((e) => e.type === 'plan')).toEqual({
      type: 'plan',
      items: [
        {
          path: 'daily.cvd',
          action: 'full',
          downloadBytes: DAILY_V1.length,
          fullBytes: DAILY_V1.length,
        },
        {
          path: 'main.cvd',
          action: 'full',
          downloadBytes: MAIN_V1.length,
          fullBytes: MAIN_V1.length,
        },
      ],
    });
    expect((await readdir(installDir)).sort()).toEqual(['daily.cvd', 'main.cvd']);

    const named = await update(
      configFor(repo, [mirror], { targets: ['extra/**', 'mirrors.json'] }),
    );
    expect(named.report.files.map((f) => [f.path, f.action])).toEqual([
      ['extra/nested.cvd', 'full'],
      ['mirrors.json', 'full'],
    ]);
    expect(named.report.unmatched).toEqual([]);
    expect(await installedFile('extra/nested.cvd')).toBe(sha256(nested));
  });

  it('resumes with Range a partial download left by an interrupted run, and removes stale ones', async () => {
    const repo = await TestRepository.create();
    await repo.publish({ files: { 'daily.cvd': DAILY_V1 } });
    const mirror = await fakeMirror(repo);
    const prefix = 40_000;
    const partialDir = join(stateDir, PARTIAL_DIRECTORY);
    await mkdir(partialDir, { recursive: true });
    await writeFile(join(partialDir, sha256(DAILY_V1)), DAILY_V1.subarray(0, prefix));
    const stale = sha256(utf8('an older release'));
    await writeFile(join(partialDir, stale), utf8('an older rel'));

    const { report } = await update(configFor(repo, [mirror]));
    expect(report.files).toEqual([
      {
        path: 'daily.cvd',
        action: 'full',
        sha256: sha256(DAILY_V1),
        length: DAILY_V1.length,
        bytesDownloaded: DAILY_V1.length - prefix,
        bytesSaved: prefix,
        mirror: mirror.url,
      },
    ]);
    expect(mirror.requests.filter((r) => r.path.startsWith('targets/'))).toEqual([
      { path: mirrorPathOfTarget(repo.target('daily.cvd')), range: `bytes=${prefix}-` },
    ]);
    expect(await installedFile('daily.cvd')).toBe(sha256(DAILY_V1));
    expect(await readdir(partialDir)).toEqual([]);
  });

  it('rollback restores the previous version, and a second rollback undoes it', async () => {
    const repo = await TestRepository.create();
    await repo.publish({ files: { 'daily.cvd': DAILY_V1, 'main.cvd': MAIN_V1 } });
    const mirror = await fakeMirror(repo);
    const config = configFor(repo, [mirror]);
    await update(config);
    await repo.publish({
      files: { 'daily.cvd': DAILY_V2, 'main.cvd': MAIN_V1 },
      deltasFrom: { 'daily.cvd': [DAILY_V1] },
    });
    await update(config);

    const updater = createUpdater(config);
    expect(await updater.rollback()).toEqual([{ path: 'daily.cvd', restored: sha256(DAILY_V1) }]);
    expect(await installedFile('daily.cvd')).toBe(sha256(DAILY_V1));
    expect(await updater.rollback('daily.cvd')).toEqual([
      { path: 'daily.cvd', restored: sha256(DAILY_V2) },
    ]);
    expect(await installedFile('daily.cvd')).toBe(sha256(DAILY_V2));
    const none = await failure(updater.rollback('main.cvd'));
    expect(none.code).toBe('NO_PREVIOUS_VERSION');
  });

  it('a second concurrent update of the same state directory fails with LOCKED', async () => {
    const repo = await TestRepository.create();
    await repo.publish({ files: { 'daily.cvd': DAILY_V1 } });
    const mirror = await fakeMirror(repo);
    let release: () => void = () => {};
    mirror.gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const reached = new Promise<void>((resolve) => {
      mirror.reachedGate = resolve;
    });
    const config = configFor(repo, [mirror]);
    const first = createUpdater(config).update();
    await reached;

    const second = await failure(createUpdater(config).update());
    expect(second.code).toBe('LOCKED');
    expect(second.message).toContain(`held by pid ${process.pid}`);
    const rollback = await failure(createUpdater(config).rollback());
    expect(rollback.code).toBe('LOCKED');

    release();
    const report = await first;
    expect(report.files.map((f) => [f.path, f.action])).toEqual([['daily.cvd', 'full']]);
    // The lock is released: the next run goes ahead.
    expect((await update(config)).report.files.map((f) => f.action)).toEqual(['current']);
  });

  it('refuses to start without a trusted root or without mirrors (CONFIG_INVALID)', async () => {
    const repo = await TestRepository.create();
    await repo.publish({ files: { 'daily.cvd': DAILY_V1 } });
    const mirror = await fakeMirror(repo);
    const noRoot = await failure(update({ installDir, stateDir, mirrors: [mirror.url] }));
    expect(noRoot.code).toBe('CONFIG_INVALID');
    expect(noRoot.message).toMatch(/^no trusted root in .*metadata and no trustedRoot configured/);

    const badRoot = await failure(update(configFor(repo, [mirror], { trustedRoot: utf8('{}') })));
    expect(badRoot.code).toBe('CONFIG_INVALID');

    const noMirrors = await failure(update(configFor(repo, [])));
    expect(noMirrors.code).toBe('CONFIG_INVALID');
    expect(noMirrors.message).toBe(
      'mirrors: expected at least one mirror (none configured, none remembered)',
    );
    const same = await failure(update(configFor(repo, [mirror], { stateDir: installDir })));
    expect(same.code).toBe('CONFIG_INVALID');
    expect(await stat(join(installDir, 'daily.cvd')).catch(() => undefined)).toBeUndefined();
  });
});
