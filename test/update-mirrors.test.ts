// The updater (`createUpdater(config).update()`) through real edges backed by MinIO: an origin
// publishing signature databases with deltas into its bucket, a direct edge on that bucket and
// two sync mirrors with buckets of their own (one of them frozen at release 1: stale), each
// behind a fault proxy. Mirrors die mid-download, go stale, turn malicious (rollback, tampered
// and endless data), stall, trickle and throttle; the client crashes mid-download and
// mid-install and meets a full disk. Every case checks the installed bytes against the
// published ones, the report, and what the proxies saw.
import { join } from 'node:path';
import { DEFAULT_LIMITS } from '@cairn/verify/limits';
import {
  createUpdater,
  type UpdateEvent,
  type UpdateReport,
  type UpdaterConfig,
} from '@cairn/client/update';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BUFFERED_SLACK } from './support/attacker.js';
import type { FaultProxy, ProxiedRequest } from './support/fault-proxy.js';
import {
  ClientDirs,
  INSTALL_TEMP,
  UpdateNetwork,
  deltaRequestPrefix,
  expectedInstall,
  runUpdateInChild,
  targetRequestPath,
  type MirrorName,
  type PublishedRelease,
} from './support/update-network.js';

let network: UpdateNetwork;
let a: FaultProxy;
let b: FaultProxy;
let c: FaultProxy;
const clients: ClientDirs[] = [];

beforeAll(async () => {
  network = await UpdateNetwork.start();
  a = network.mirror('a').proxy;
  b = network.mirror('b').proxy;
  c = network.mirror('c').proxy;
  await network.publish();
  // Mirror c keeps release 1 for good: the stale mirror.
  network.freeze('c');
  await network.publish();
}, 300_000);

afterAll(async () => {
  await network?.close();
});

afterEach(async () => {
  network.resetProxies();
  for (const client of clients.splice(0)) await client.remove();
});

async function newClient(): Promise<ClientDirs> {
  const client = await ClientDirs.create();
  clients.push(client);
  return client;
}

/**
 * a nearest, then b, then c. The gaps are wide because the proxies, edges and client share one
 * event loop and MinIO: a probe's round trip jitters by tens of milliseconds under load.
 */
const A_NEAREST = { a: 0, b: 150, c: 300 } as const;

/** Which mirror the probe finds nearest: added round-trip milliseconds per proxy. */
function latencies(ms: Readonly<Record<MirrorName, number>>): void {
  a.latencyMs = ms.a;
  b.latencyMs = ms.b;
  c.latencyMs = ms.c;
}

function clearLogs(): void {
  for (const proxy of [a, b, c]) proxy.clearLog();
}

function configFor(client: ClientDirs, extra: Partial<UpdaterConfig> = {}): UpdaterConfig {
  return {
    installDir: client.installDir,
    stateDir: client.stateDir,
    mirrors: network.mirrorUrls(),
    trustedRoot: network.trustedRoot,
    requestTimeoutMs: 5_000,
    // A stalled mirror is left after 3 s instead of the default 30 s.
    idleTimeoutMs: 3_000,
    probeTimeoutMs: 3_000,
    ...extra,
  };
}

async function update(
  client: ClientDirs,
  extra: Partial<UpdaterConfig> = {},
): Promise<{ report: UpdateReport; events: UpdateEvent[] }> {
  const events: UpdateEvent[] = [];
  const report = await createUpdater(configFor(client, extra), (e) => events.push(e)).update();
  return { report, events };
}

/** A client holding exactly the latest release, installed through the honest network. */
async function clientAtLatest(): Promise<ClientDirs> {
  const client = await newClient();
  await update(client);
  expect(await client.installed()).toEqual(expectedInstall(network.latest));
  return client;
}

function fileOf(report: UpdateReport, path: string) {
  const file = report.files.find((f) => f.path === path);
  expect(file, `report entry for ${path}`).toBeDefined();
  return file as NonNullable<typeof file>;
}

function mainPath(release: PublishedRelease): string {
  return targetRequestPath('main.cvd', release.sha256.get('main.cvd') ?? '');
}

function mainBytes(release: PublishedRelease): number {
  return release.files.get('main.cvd')?.length ?? 0;
}

/** The start of a `Range: bytes=N-` header, or undefined for none. */
function rangeStart(request: ProxiedRequest | undefined): number | undefined {
  const match = /^bytes=(\d+)-$/.exec(request?.range ?? '');
  return match === null ? undefined : Number(match[1]);
}

function mirrorFailed(events: readonly UpdateEvent[], proxy: FaultProxy): boolean {
  return events.some((e) => e.type === 'mirror-failed' && e.mirror === proxy.url);
}

/** Installed files, temp files left aside. */
async function installedFiles(client: ClientDirs): Promise<Record<string, string>> {
  const all = await client.installed();
  return Object.fromEntries(
    Object.entries(all).filter(([path]) => !INSTALL_TEMP.test(path.split('/').at(-1) ?? '')),
  );
}

async function tempFiles(client: ClientDirs): Promise<string[]> {
  return Object.keys(await client.installed()).filter((path) =>
    INSTALL_TEMP.test(path.split('/').at(-1) ?? ''),
  );
}

describe('updating through mirrors', () => {
  it('takes one release as deltas from the nearest mirror', async () => {
    latencies(A_NEAREST);
    const client = await clientAtLatest();
    const from = network.latest;
    const to = await network.publish();
    clearLogs();

    const { report } = await update(client);

    expect(await client.installed()).toEqual(expectedInstall(to));
    expect(report.timestampVersion).toBe(to.timestampVersion);
    expect(report.targetsVersion).toBe(to.version);
    let deltaBytes = 0;
    for (const path of ['main.cvd', 'daily/daily.cvd']) {
      const delta = network.delta(to, path, from.sha256.get(path) ?? '');
      expect(delta, `release ${to.version} has a delta for ${path}`).toBeDefined();
      const length = delta?.length ?? 0;
      const full = to.files.get(path)?.length ?? 0;
      deltaBytes += length;
      expect(fileOf(report, path)).toMatchObject({
        action: 'delta',
        sha256: to.sha256.get(path),
        length: full,
        bytesDownloaded: length,
        bytesSaved: full - length,
        mirror: a.url,
      });
      // One request for the delta, from the nearest mirror; no full file from anyone.
      expect(a.requestsTo(deltaRequestPrefix(path)).map((r) => [r.range, r.status])).toEqual([
        [undefined, 200],
      ]);
    }
    expect(report.bytesDownloaded).toBe(deltaBytes);
    expect(report.bytesFull).toBe(mainBytes(to) + (to.files.get('daily/daily.cvd')?.length ?? 0));
    // A 1% change costs a few percent of the file, not the file.
    expect(deltaBytes).toBeLessThan(0.05 * report.bytesFull);
    for (const proxy of [a, b, c]) {
      expect(proxy.requestsTo(mainPath(to))).toEqual([]);
    }
    expect(b.requestsTo('/targets/')).toEqual([]);
    expect(c.requestsTo('/targets/')).toEqual([]);
  });

  it('finishes from the next mirror when the nearest dies mid-download, resuming rather than restarting', async () => {
    latencies(A_NEAREST);
    const client = await newClient();
    const release = network.latest;
    const path = mainPath(release);
    const size = mainBytes(release);
    const cut = 1_000_000;
    expect(size).toBeGreaterThan(2 * cut);
    a.inject(path, { kind: 'die', afterBytes: cut });

    const { report, events } = await update(client);

    expect(await client.installed()).toEqual(expectedInstall(release));
    expect(fileOf(report, 'main.cvd')).toMatchObject({
      action: 'full',
      sha256: release.sha256.get('main.cvd'),
      mirror: b.url,
    });
    expect(mirrorFailed(events, a)).toBe(true);
    const fromA = a.requestsTo(path);
    expect(fromA[0]).toMatchObject({ range: undefined, status: 200, bodyBytes: cut, fault: 'die' });
    const fromB = b.requestsTo(path);
    expect(fromB).toHaveLength(1);
    // The next mirror was asked only for the rest.
    const resumedAt = rangeStart(fromB[0]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(cut);
    expect(fromB[0]).toMatchObject({ status: 206, bodyBytes: size - (resumedAt ?? 0) });
    // About the file's size in all, not twice it.
    const total = a.bodyBytes(path) + b.bodyBytes(path) + c.bodyBytes(path);
    expect(total).toBeGreaterThanOrEqual(size);
    expect(total).toBeLessThan(size + 256 * 1024);
    expect(c.requestsTo('/targets/')).toEqual([]);
  });

  it('passes over a stale mirror, even the nearest', async () => {
    // c serves release 1 only; it answers fastest.
    latencies({ a: 150, b: 300, c: 0 });
    const client = await newClient();
    const release = network.latest;
    expect(release.version).toBeGreaterThan(1);

    const { report, events } = await update(client);

    expect(await client.installed()).toEqual(expectedInstall(release));
    expect(report.timestampVersion).toBe(release.timestampVersion);
    expect(report.targetsVersion).toBe(release.version);
    const ranking = events.find((e) => e.type === 'mirrors');
    expect(ranking?.ranked.map((m) => [m.url, m.reachable, m.timestampVersion])).toEqual([
      [a.url, true, release.timestampVersion],
      [b.url, true, release.timestampVersion],
      [c.url, true, network.release(1).timestampVersion],
    ]);
    const metadata = events.find((e) => e.type === 'metadata');
    expect(metadata?.mirror).toBe(a.url);
    for (const file of report.files) expect(file.mirror).toBe(a.url);
    expect(c.requestsTo('/targets/')).toEqual([]);
  });

  it('refuses a mirror serving a rolled-back timestamp and completes elsewhere', async () => {
    latencies(A_NEAREST);
    const client = await clientAtLatest();
    const to = await network.publish();
    // a now answers with release 1's timestamp, older than the one the client trusts.
    a.inject('/metadata/timestamp.json', { kind: 'serve', body: network.release(1).timestamp });
    clearLogs();

    const { report, events } = await update(client);

    expect(await client.installed()).toEqual(expectedInstall(to));
    expect(report.timestampVersion).toBe(to.timestampVersion);
    expect(a.faulted('serve')).toBeGreaterThanOrEqual(1);
    // a was asked first (the remembered ranking), refused as a rollback, and left.
    expect(events).toContainEqual({
      type: 'mirror-failed',
      mirror: a.url,
      reason: expect.stringMatching(/^ROLLBACK: /) as string,
    });
    expect(events.find((e) => e.type === 'metadata')?.mirror).toBe(b.url);

    // The client kept the newest timestamp: the same rollback again changes nothing.
    const again = await update(client);
    expect(again.report.timestampVersion).toBe(to.timestampVersion);
    expect(again.report.files.every((f) => f.action === 'current')).toBe(true);
    expect(await client.installed()).toEqual(expectedInstall(to));
  });

  it('refuses tampered deltas from the nearest mirror and takes them from the next', async () => {
    latencies(A_NEAREST);
    const client = await clientAtLatest();
    const from = network.latest;
    const to = await network.publish();
    a.inject('/targets/', { kind: 'tamper' });
    clearLogs();

    const { report, events } = await update(client);

    expect(await client.installed()).toEqual(expectedInstall(to));
    expect(a.faulted('tamper')).toBeGreaterThanOrEqual(1);
    expect(mirrorFailed(events, a)).toBe(true);
    for (const path of ['main.cvd', 'daily/daily.cvd']) {
      const delta = network.delta(to, path, from.sha256.get(path) ?? '');
      expect(fileOf(report, path)).toMatchObject({ action: 'delta', mirror: b.url });
      expect(b.requestsTo(deltaRequestPrefix(path)).map((r) => r.bodyBytes)).toEqual([
        delta?.length,
      ]);
    }
  });

  it('refuses tampered metadata from the nearest mirror and completes elsewhere', async () => {
    latencies(A_NEAREST);
    const client = await clientAtLatest();
    const to = await network.publish();
    a.inject(/^\/metadata\/\d+\.(snapshot|targets)\.json$/, { kind: 'tamper' });
    clearLogs();

    const { report } = await update(client);

    expect(await client.installed()).toEqual(expectedInstall(to));
    expect(report.targetsVersion).toBe(to.version);
    expect(a.faulted('tamper')).toBeGreaterThanOrEqual(1);
    expect(b.requestsTo(/^\/metadata\/\d+\.(snapshot|targets)\.json$/).length).toBeGreaterThan(0);
  });

  it('stops reading an endless target at its signed length and completes elsewhere', async () => {
    latencies(A_NEAREST);
    const client = await newClient();
    const release = network.latest;
    const path = mainPath(release);
    a.inject(path, { kind: 'endless' });

    const { report } = await update(client);

    expect(await client.installed()).toEqual(expectedInstall(release));
    expect(fileOf(report, 'main.cvd')).toMatchObject({ action: 'full', mirror: b.url });
    expect(a.faulted('endless')).toBeGreaterThanOrEqual(1);
    // Cut off at the cap (plus what socket buffers held), not read on.
    expect(a.bodyBytes(path)).toBeLessThan(mainBytes(release) + BUFFERED_SLACK);
  });

  it('stops reading an endless timestamp at its cap and completes elsewhere', async () => {
    latencies(A_NEAREST);
    const client = await clientAtLatest();
    const to = await network.publish();
    a.inject('/metadata/timestamp.json', { kind: 'endless' });
    clearLogs();

    const { report, events } = await update(client);

    expect(await client.installed()).toEqual(expectedInstall(to));
    expect(report.timestampVersion).toBe(to.timestampVersion);
    expect(a.faulted('endless')).toBeGreaterThanOrEqual(1);
    expect(events.find((e) => e.type === 'metadata')?.mirror).toBe(b.url);
    for (const request of a.requestsTo('/metadata/timestamp.json')) {
      expect(request.bodyBytes).toBeLessThan(DEFAULT_LIMITS.timestampMaxLength + BUFFERED_SLACK);
    }
  });

  it.each([
    ['a delta', 503, '/targets/_delta/'],
    ['timestamp.json', 429, '/metadata/timestamp.json'],
  ] as const)(
    'takes %s elsewhere when the nearest mirror answers %i, and asks it again only after its Retry-After',
    async (_what, status, match) => {
      latencies(A_NEAREST);
      const client = await clientAtLatest();
      const to = await network.publish();
      a.inject(match, { kind: 'status', status, retryAfter: 2 }, { times: 1 });
      clearLogs();

      const { report } = await update(client);

      expect(await client.installed()).toEqual(expectedInstall(to));
      expect(report.timestampVersion).toBe(to.timestampVersion);
      const refused = a.requestsTo(match).filter((r) => r.fault === 'status');
      expect(refused.map((r) => r.status)).toEqual([status]);
      const first = refused[0] as ProxiedRequest;
      // The same file again from a: not before the 2 s it was told to wait.
      for (const again of a.requestsTo((p) => p === first.path)) {
        if (again === first) continue;
        expect(again.at - first.at).toBeGreaterThanOrEqual(1_900);
      }
      // Meanwhile the next mirror served it.
      expect(b.requestsTo((p) => p === first.path).map((r) => r.status)).toEqual([200]);
    },
  );

  it('leaves a stalled mirror for the next and resumes there', async () => {
    latencies(A_NEAREST);
    const client = await newClient();
    const release = network.latest;
    const path = mainPath(release);
    a.inject(path, { kind: 'stall', afterBytes: 500_000 });

    // Silence is caught by the download's idle timeout (30 s; not an UpdaterConfig setting).
    const { report } = await update(client);

    expect(await client.installed()).toEqual(expectedInstall(release));
    expect(fileOf(report, 'main.cvd')).toMatchObject({ action: 'full', mirror: b.url });
    const resumedAt = rangeStart(b.requestsTo(path)[0]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(500_000);
    expect(b.bodyBytes(path)).toBe(mainBytes(release) - (resumedAt ?? 0));
  });

  it('leaves a trickling mirror for the next and resumes there', async () => {
    latencies(A_NEAREST);
    const client = await newClient();
    const release = network.latest;
    const path = mainPath(release);
    a.inject(path, { kind: 'trickle', bytesPerSecond: 2_000, afterBytes: 300_000 });

    const { report } = await update(client, { minBytesPerSecond: 64 * 1024 });

    expect(await client.installed()).toEqual(expectedInstall(release));
    expect(fileOf(report, 'main.cvd')).toMatchObject({ action: 'full', mirror: b.url });
    const resumedAt = rangeStart(b.requestsTo(path)[0]);
    expect(resumedAt).toBeGreaterThanOrEqual(300_000);
    expect(b.bodyBytes(path)).toBe(mainBytes(release) - (resumedAt ?? 0));
    expect(a.bodyBytes(path) + b.bodyBytes(path)).toBeLessThan(mainBytes(release) + 256 * 1024);
  });
});

describe('crashes and full disks', () => {
  function childConfig(client: ClientDirs) {
    const { trustedRoot: _root, ...rest } = configFor(client);
    return { ...rest, trustedRootBase64: Buffer.from(network.trustedRoot).toString('base64') };
  }

  it('resumes a download that a crash interrupted', async () => {
    latencies(A_NEAREST);
    const client = await newClient();
    const release = network.latest;
    const path = mainPath(release);
    const size = mainBytes(release);

    const crashed = await runUpdateInChild(childConfig(client), {
      kind: 'kill-at-progress',
      path: 'main.cvd',
      share: 0.5,
    });
    expect(crashed.signal, crashed.stderr).toBe('SIGKILL');
    expect(crashed.report).toBeUndefined();
    expect(await client.read('main.cvd')).toBeUndefined();
    clearLogs();

    const { report } = await update(client);

    expect(await client.installed()).toEqual(expectedInstall(release));
    const requests = [a, b, c].flatMap((proxy) => proxy.requestsTo(path));
    expect(requests).toHaveLength(1);
    const resumedAt = rangeStart(requests[0]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThan(size);
    expect(requests[0]).toMatchObject({ status: 206, bodyBytes: size - (resumedAt ?? 0) });
    expect(fileOf(report, 'main.cvd')).toMatchObject({
      action: 'full',
      bytesDownloaded: size - (resumedAt ?? 0),
    });
  });

  it('keeps the previous version intact and usable when the disk fills during install', async () => {
    latencies(A_NEAREST);
    const client = await clientAtLatest();
    const from = network.latest;
    const to = await network.publish({ change: ['main.cvd'] });

    // Install and state directories share the disk, which fills up as the new file is written
    // into the install directory.
    const failed = await runUpdateInChild(childConfig(client), {
      kind: 'disk-full',
      dirs: [client.installDir, client.stateDir],
      trigger: client.installDir,
    });

    expect(failed.code, failed.stderr).toBe(1);
    expect(failed.error).toMatchObject({ code: 'ENOSPC' });
    expect(failed.events.filter((e) => e.type === 'installed')).toEqual([]);
    expect(await client.installed()).toEqual(expectedInstall(from));
    expect(await tempFiles(client)).toEqual([]);

    // The disk has room again: the next update installs the new release.
    const { report } = await update(client);
    expect(await client.installed()).toEqual(expectedInstall(to));
    expect(fileOf(report, 'main.cvd')).toMatchObject({ action: 'delta' });
    expect(fileOf(report, 'daily/daily.cvd')).toMatchObject({ action: 'current' });
  });

  it('keeps the previous version intact and usable after a crash during install', async () => {
    latencies(A_NEAREST);
    const client = await clientAtLatest();
    const from = network.latest;
    const to = await network.publish({ change: ['main.cvd'] });

    const crashed = await runUpdateInChild(childConfig(client), {
      kind: 'kill-before-rename',
      path: join(client.installDir, 'main.cvd'),
    });

    expect(crashed.signal, crashed.stderr).toBe('SIGKILL');
    expect(crashed.events.some((e) => e.type === 'plan')).toBe(true);
    // The program still reads the old release, whole; at most a temp file lies beside it.
    expect(await installedFiles(client)).toEqual(expectedInstall(from));

    const { report } = await update(client);
    expect(await client.installed()).toEqual(expectedInstall(to));
    expect(await tempFiles(client)).toEqual([]);
    expect(fileOf(report, 'main.cvd').sha256).toBe(to.sha256.get('main.cvd'));
  });
});
