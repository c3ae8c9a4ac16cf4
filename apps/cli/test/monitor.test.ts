/**
 * `cairn monitor` against a real network on 127.0.0.1: an origin in this process publishing
 * into a directory with its transparency log, edges (the mirror code `cairn mirror serve`
 * runs) serving that directory and copies of it that the tests tamper with, and a node:http
 * webhook receiver. The monitor runs in-process (runMonitor), and once as the built `cairn`
 * in a child process, and reads only what the mirrors serve over HTTP.
 *
 * The tests run in order and build on each other: the origin's log only grows.
 */
import { cp, mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEdgeConfig } from '@cairn/edge/config';
import { startEdge, type RunningEdge } from '@cairn/edge/node';
import { initRepository, proposeRootChange, publishPendingRoot } from '@cairn/origin/admin';
import { DEFAULT_POLICY } from '@cairn/origin/config';
import { createLogger } from '@cairn/origin/log';
import { PublisherClient } from '@cairn/origin/publisher-client';
import { serveOrigin, type RunningOrigin } from '@cairn/origin/server';
import { RootChain } from '@cairn/origin/repository';
import { OriginService } from '@cairn/origin/service';
import { FsBlobStore } from '@cairn/storage/fs-store';
import { encodeEntry } from '@cairn/tlog/entry';
import { createEd25519Signer } from '@cairn/tlog/note';
import { LogWriter } from '@cairn/tlog/log-writer';
import { sha256Hex, webHashPort } from '@cairn/verify/hash';
import { MetaFile, Metadata, Root, Snapshot, Targets, Timestamp } from '@cairn/verify/metadata';
import { Ed25519Signer, signMetadata } from '@cairn/verify/signer';
import type { CliIo } from '../src/cli-io.js';
import { readHistory } from '../src/log-history.js';
import {
  EXIT_CRITICAL,
  EXIT_OK,
  EXIT_WARNINGS,
  renderMetrics,
  runMonitor,
  type Alert,
  type MonitorReport,
} from '../src/monitor-command.js';
import { builtBin, runBuilt } from './support/run-cli.js';

const LOG_NAME = 'cairn.test/log';
const HOUR = 3_600_000;

function captured(): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (l) => out.push(l), stderr: (l) => err.push(l) };
}

interface Keys {
  root: Ed25519Signer;
  alice: Ed25519Signer;
  bob: Ed25519Signer;
  snapshot: Ed25519Signer;
  timestamp: Ed25519Signer;
  log: Ed25519Signer;
}

let work: string;
let originDir: string;
let keys: Keys;
let origin: RunningOrigin;
let service: OriginService;
let publisher: PublisherClient;
let releases = 0;
let rootFile: string;
/** The edges started, closed after the suite. */
const edges: RunningEdge[] = [];
/** Mirror A: an edge straight on the origin's directory. */
let mirrorA: string;

const ref = (s: Ed25519Signer) => ({ keyid: s.keyid, key: s.publicKey });

async function publish(files: Record<string, string>): Promise<void> {
  const tree = join(work, 'releases', String(++releases));
  for (const [name, content] of Object.entries(files)) {
    await mkdir(dirname(join(tree, name)), { recursive: true });
    await writeFile(join(tree, name), content);
  }
  const draft = await publisher.push(tree);
  const signed = await publisher.sign(draft.id, tree);
  if (signed.published === undefined) throw new Error(`release ${draft.id} not published`);
}

/** An edge (the code behind `cairn mirror serve`) over `dir`. */
async function serveMirror(dir: string): Promise<string> {
  const edge = await startEdge({ config: parseEdgeConfig({}), store: new FsBlobStore(dir) });
  edges.push(edge);
  return edge.url;
}

/** A copy of the origin's public files as they are now: a mirror's bucket. */
async function copyOfOrigin(name: string): Promise<string> {
  const dir = join(work, name);
  await cp(originDir, dir, {
    recursive: true,
    filter: (src) => !src.startsWith(join(originDir, '_origin')),
  });
  return dir;
}

async function monitor(
  args: readonly string[],
  now?: () => Date,
): Promise<{ code: number; io: ReturnType<typeof captured>; report: MonitorReport }> {
  const io = captured();
  const code = await runMonitor([...args, '--json'], io, now === undefined ? {} : { now });
  const report = JSON.parse(io.out.join('\n')) as MonitorReport;
  return { code, io, report };
}

const codes = (alerts: readonly Alert[]) => alerts.map((a) => a.code);

interface Received {
  readonly path: string;
  readonly body: unknown;
}

/** A webhook receiver: records every POST, answers `status`. */
async function webhookReceiver(): Promise<{
  url: string;
  received: Received[];
  status: number;
  server: Server;
}> {
  const state = { received: [] as Received[], status: 204 };
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      state.received.push({ path: req.url ?? '', body: JSON.parse(body) as unknown });
      res.writeHead(state.status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, { url: `http://127.0.0.1:${String(port)}/hook`, server });
}

/** A URL nothing listens on. */
async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${String(port)}`;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'cairn-monitor-'));
  originDir = join(work, 'origin');
  const [root, alice, bob, snapshot, timestamp, log] = await Promise.all(
    [0, 1, 2, 3, 4, 5].map(() => Ed25519Signer.generate()),
  );
  if (!root || !alice || !bob || !snapshot || !timestamp || !log) throw new Error('no keys');
  keys = { root, alice, bob, snapshot, timestamp, log };
  const store = new FsBlobStore(originDir);
  await initRepository(store, {
    rootSigners: [root],
    rootThreshold: 1,
    publishers: [
      { ...ref(alice), name: 'alice' },
      { ...ref(bob), name: 'bob' },
    ],
    targetsThreshold: 1,
    snapshotKey: ref(snapshot),
    timestampKey: ref(timestamp),
    rootExpiry: DEFAULT_POLICY.expiry.root,
    now: new Date(),
    log: { name: LOG_NAME, key: log },
  });
  service = new OriginService({
    store,
    online: { snapshot: [snapshot], timestamp: [timestamp] },
    policy: DEFAULT_POLICY,
    authWindowMs: 300_000,
    logger: createLogger({ write: () => undefined }),
    logKey: log,
  });
  origin = await serveOrigin(service, { host: '127.0.0.1', port: 0 });
  publisher = new PublisherClient(origin.url, alice);
  rootFile = join(work, 'root.json');
  await writeFile(rootFile, await readFile(join(originDir, 'metadata', '1.root.json')));
  await publish({ 'main.cvd': 'release one\n' });
  await publish({ 'main.cvd': 'release two\n', 'daily.cvd': 'daily two\n' });
  mirrorA = await serveMirror(originDir);
}, 60_000);

afterAll(async () => {
  for (const edge of edges) await edge.close();
  await origin.close();
  await rm(work, { recursive: true, force: true });
});

describe('cairn monitor on a healthy network', () => {
  it('exits 0 with no alert, and says what it checked', async () => {
    const io = captured();
    const code = await runMonitor(['--mirror', mirrorA, '--root', rootFile], io);
    expect(io.err).toEqual([]);
    expect(code).toBe(EXIT_OK);
    expect(io.out[0]).toBe(
      `✔ log ${LOG_NAME}: 5 entries, checkpoint verified through ${mirrorA}; 5 checked now (root v1, targets v2, snapshot v2)`,
    );
    expect(io.out.at(-1)).toBe('✔ no alerts');
  });

  it('is what the built `cairn monitor` runs, with the documented exit status', async () => {
    const result = await runBuilt(
      builtBin('main'),
      ['monitor', '--mirror', mirrorA, '--root', rootFile],
      {
        env: { PATH: process.env.PATH ?? '' },
      },
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT_OK);
    expect(result.stdout.split('\n').at(-2)).toBe('✔ no alerts');
    const warned = await runBuilt(
      builtBin('main'),
      ['monitor', '--mirror', mirrorA, '--root', rootFile, '--min-approvals', '2'],
      { env: { PATH: process.env.PATH ?? '' } },
    );
    expect(warned.code).toBe(EXIT_WARNINGS);
  });

  it('reads the history: roots, releases with signers by name, inclusion proofs', async () => {
    const history = await readHistory({
      mirror: mirrorA,
      trustedRoot: await readFile(rootFile),
    });
    expect(history.anomalies).toEqual([]);
    expect(history.entries.map((e) => [e.index, e.role, e.version, e.status])).toEqual([
      [0, 'root', 1, 'verified'],
      [1, 'targets', 1, 'verified'],
      [2, 'snapshot', 1, 'verified'],
      [3, 'targets', 2, 'verified'],
      [4, 'snapshot', 2, 'verified'],
    ]);
    const release = history.releases[1];
    expect(release?.approvals?.signers).toEqual([
      { keyid: keys.alice.keyid, name: 'alice', named: true },
    ]);
    expect(release?.release?.files.map((f) => f.path).sort()).toEqual(['daily.cvd', 'main.cvd']);
    expect(release?.inclusionProof.length).toBeGreaterThan(0);
    expect(history.keyChanges[0]?.root?.changes.roles.map((r) => r.role)).toEqual([
      'root',
      'timestamp',
      'snapshot',
      'targets',
    ]);
  });

  it('writes the metrics file atomically, and keeps state between checks', async () => {
    const state = join(work, 'state-healthy');
    const metrics = join(work, 'metrics', 'cairn.prom');
    const first = await monitor([
      '--mirror',
      mirrorA,
      '--root',
      rootFile,
      '--state',
      state,
      '--metrics-file',
      metrics,
    ]);
    expect(first.code).toBe(EXIT_OK);
    const text = await readFile(metrics, 'utf8');
    expect(text).toBe(renderMetrics(first.report));
    expect(text).toContain('\ncairn_monitor_log_size 5\n');
    expect(text).toContain('\ncairn_monitor_alerts{severity="critical"} 0\n');
    expect(text).toContain(`\ncairn_monitor_mirror_up{mirror="${mirrorA}"} 1\n`);
    expect(text).toContain('\ncairn_monitor_latest_version{role="targets"} 2\n');
    expect(text).toContain(`\ncairn_monitor_mirror_snapshot_version{mirror="${mirrorA}"} 2\n`);
    expect(await readdir(join(work, 'metrics'))).toEqual(['cairn.prom']);
    expect((await readFile(join(state, 'checkpoint'), 'utf8')).split('\n').slice(0, 2)).toEqual([
      LOG_NAME,
      '5',
    ]);
    // The second check only verifies what is new: nothing.
    const second = await monitor(['--mirror', mirrorA, '--root', rootFile, '--state', state]);
    expect(second.code).toBe(EXIT_OK);
    expect(second.report.log?.newEntries).toBe(0);
  });

  it('warns of expiry ahead, and of approvals below policy, with exit 4', async () => {
    const expiring = await monitor([
      '--mirror',
      mirrorA,
      '--root',
      rootFile,
      '--expiry-warning',
      '400',
    ]);
    expect(expiring.code).toBe(EXIT_WARNINGS);
    expect(expiring.report.alerts.map((a) => [a.code, a.severity, a.role, a.version])).toEqual([
      ['EXPIRY_AHEAD', 'warning', 'root', 1],
      ['EXPIRY_AHEAD', 'warning', 'targets', 2],
    ]);
    const policy = await monitor(['--mirror', mirrorA, '--root', rootFile, '--min-approvals', '2']);
    expect(policy.code).toBe(EXIT_WARNINGS);
    expect(policy.report.alerts.map((a) => [a.code, a.severity, a.role, a.version])).toEqual([
      ['BELOW_POLICY', 'warning', 'targets', 1],
      ['BELOW_POLICY', 'warning', 'targets', 2],
    ]);
    expect(policy.report.alerts[0]?.message).toBe(
      'targets v1 (log index 1) was approved by 1 (alice); policy asks for 2',
    );
  });
});

describe('cairn monitor with mirrors down', () => {
  it('follows the log through the next mirror, and warns of the one down (exit 4)', async () => {
    const down = await closedPort();
    const io = captured();
    const code = await runMonitor(['--mirror', down, '--mirror', mirrorA, '--root', rootFile], io);
    expect(code).toBe(EXIT_WARNINGS);
    expect(io.out[0]).toMatch(
      new RegExp(`^✔ log ${LOG_NAME}: 5 entries, checkpoint verified through ${mirrorA};`),
    );
    expect(io.out.filter((l) => l.startsWith('⚠'))).toEqual([
      `⚠ MIRROR_UNREACHABLE: ${down}/metadata/2.root.json: fetch failed: connect ECONNREFUSED ${down.slice('http://'.length)}`,
    ]);
    expect(io.out.at(-1)).toBe('0 critical, 1 warning');
  });

  it('is critical when no mirror answers', async () => {
    const down = await closedPort();
    const { code, report } = await monitor(['--mirror', down, '--root', rootFile]);
    expect(code).toBe(EXIT_CRITICAL);
    expect(codes(report.alerts)).toEqual(['MIRROR_UNREACHABLE', 'NO_MIRROR']);
    expect(report.log).toBeUndefined();
  });

  it('checks again every --interval until stopped', async () => {
    const stop = new AbortController();
    let checks = 0;
    const io: CliIo = {
      stdout: (line) => {
        if (line === '✔ no alerts' && ++checks === 2) stop.abort();
      },
      stderr: () => undefined,
    };
    const started = Date.now();
    const code = await runMonitor(
      ['--mirror', mirrorA, '--root', rootFile, '--interval', '1'],
      io,
      {
        signal: stop.signal,
      },
    );
    expect(code).toBe(EXIT_OK);
    expect(checks).toBe(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
  });
});

describe('cairn monitor detects', () => {
  it('a log entry altered in storage', async () => {
    const dir = await copyOfOrigin('altered-entry');
    const bundle = join(dir, 'log', 'tile', 'entries', '000.p', '5');
    const bytes = await readFile(bundle);
    // Another sha256 for targets v2 (the last targets entry): the entry still parses, only
    // the tiles' hashes can tell.
    const marker = '"role":"targets","sha256":"';
    const at = Buffer.from(bytes).toString('latin1').lastIndexOf(marker) + marker.length;
    bytes[at] = bytes[at] === 0x30 ? 0x31 : 0x30;
    await writeFile(bundle, bytes);
    const mirror = await serveMirror(dir);
    const { code, report } = await monitor(['--mirror', mirror, '--root', rootFile]);
    expect(code).toBe(EXIT_CRITICAL);
    expect(codes(report.alerts)).toEqual(['LOG_INVALID']);
  });

  it('a log entry removed from storage', async () => {
    const dir = await copyOfOrigin('removed-entry');
    await rm(join(dir, 'log', 'tile', 'entries', '000.p', '5'));
    const mirror = await serveMirror(dir);
    const { code, report } = await monitor(['--mirror', mirror, '--root', rootFile]);
    expect(code).toBe(EXIT_CRITICAL);
    expect(codes(report.alerts)).toEqual(['LOG_INCOMPLETE']);
    // With a mirror that serves the whole log, the log is read through that one instead.
    const both = await monitor(['--mirror', mirror, '--mirror', mirrorA, '--root', rootFile]);
    expect(both.code).toBe(EXIT_CRITICAL);
    expect(both.report.primary).toBe(mirrorA);
    expect(both.report.alerts.map((a) => [a.code, a.mirror])).toEqual([['LOG_INCOMPLETE', mirror]]);
  });

  it('a logged metadata file that differs from its entry', async () => {
    const dir = await copyOfOrigin('altered-file');
    const file = join(dir, 'metadata', '1.targets.json');
    await writeFile(file, `${await readFile(file, 'utf8')} `);
    const mirror = await serveMirror(dir);
    const { code, report } = await monitor(['--mirror', mirror, '--root', rootFile]);
    expect(code).toBe(EXIT_CRITICAL);
    expect(report.alerts.map((a) => [a.code, a.index, a.role, a.version])).toEqual([
      ['ENTRY_MISMATCH', 1, 'targets', 1],
    ]);
  });

  it('a release signed with stolen keys written straight into a mirror’s bucket, and tells the webhook once', async () => {
    const dir = await copyOfOrigin('stolen-keys');
    const forged = await forgeRelease(dir);
    const mirrorB = await serveMirror(dir);
    const hook = await webhookReceiver();
    try {
      const state = join(work, 'state-stolen');
      const args = [
        '--mirror',
        mirrorA,
        '--mirror',
        mirrorB,
        '--root',
        rootFile,
        '--state',
        state,
        '--webhook',
        hook.url,
      ];
      const { code, report } = await monitor(args);
      expect(code).toBe(EXIT_CRITICAL);
      expect(report.alerts.map((a) => [a.code, a.severity, a.mirror, a.role, a.version])).toEqual([
        ['UNLOGGED_RELEASE', 'critical', mirrorB, 'snapshot', 3],
      ]);
      expect(report.alerts[0]?.message).toBe(
        `${mirrorB}: its timestamp v${String(forged.timestampVersion)} names snapshot v3, which is not in the log`,
      );
      expect(hook.received).toHaveLength(1);
      expect(hook.received[0]?.path).toBe('/hook');
      const body = hook.received[0]?.body as { source: string; alerts: Alert[]; exitCode: number };
      expect(body.source).toBe('cairn-monitor');
      expect(body.exitCode).toBe(EXIT_CRITICAL);
      expect(body.alerts).toEqual(report.alerts);
      // The same alert on the next check is not news: no second POST.
      const again = await monitor(args);
      expect(again.code).toBe(EXIT_CRITICAL);
      expect(again.report.newAlerts).toEqual([]);
      expect(hook.received).toHaveLength(1);
      // A webhook that fails is an error of its own, and the alerts stay news.
      hook.status = 500;
      const failing = await monitor([
        '--mirror',
        mirrorB,
        '--root',
        rootFile,
        '--webhook',
        hook.url,
      ]);
      expect(failing.code).toBe(EXIT_CRITICAL);
      expect(failing.io.err).toEqual([
        `✘ WEBHOOK_FAILED: POST ${hook.url}: HTTP 500`,
        '  hint: check --webhook and that the receiver is up; the alerts are in the output above',
      ]);
    } finally {
      await new Promise((resolve) => hook.server.close(resolve));
    }
  });

  it('a timestamp that pins other snapshot bytes than the logged ones', async () => {
    const dir = await copyOfOrigin('other-bytes');
    const file = join(dir, 'metadata', 'timestamp.json');
    const old = Metadata.fromBytes(await readFile(file), 'timestamp').signed;
    const forged = await signMetadata(
      new Metadata(
        new Timestamp({
          specVersion: old.specVersion,
          version: old.version + 1,
          expires: old.expires,
          snapshotMeta: new MetaFile({
            version: old.snapshotMeta.version,
            hashes: { sha256: '0'.repeat(64) },
          }),
        }),
      ),
      [keys.timestamp],
    );
    await writeFile(file, forged.toBytes());
    const mirror = await serveMirror(dir);
    const { code, report } = await monitor([
      '--mirror',
      mirrorA,
      '--mirror',
      mirror,
      '--root',
      rootFile,
    ]);
    expect(code).toBe(EXIT_CRITICAL);
    expect(report.alerts.map((a) => [a.code, a.mirror, a.role, a.version])).toEqual([
      ['UNLOGGED_RELEASE', mirror, 'snapshot', 2],
    ]);
    expect(report.alerts[0]?.message).toMatch(
      new RegExp(
        `^${mirror}: its timestamp v${String(old.version + 1)} names snapshot v2 by other bytes than it serves \\(.*sha256`,
      ),
    );
  });

  it('a forked checkpoint: a split view between mirrors, and against the state', async () => {
    const state = join(work, 'state-fork');
    expect((await monitor(['--mirror', mirrorA, '--root', rootFile, '--state', state])).code).toBe(
      EXIT_OK,
    );
    // Whoever holds the log key shows one mirror a log the others never see.
    const dir = await copyOfOrigin('forked');
    const writer = new LogWriter({
      store: new FsBlobStore(dir),
      signer: await createEd25519Signer(LOG_NAME, keys.log.exportSecretKey()),
      prefix: 'log/',
      lockKey: '_origin/log/lock.json',
    });
    const forged = await sha256Hex(webHashPort, new TextEncoder().encode('forged'));
    const time = new Date().toISOString();
    // Two entries, as many as the origin's next release appends: two logs of one size.
    await writer.append([
      encodeEntry({ role: 'targets', version: 3, length: 6, sha256: forged, time }),
      encodeEntry({ role: 'snapshot', version: 3, length: 6, sha256: forged, time }),
    ]);
    const mirrorF = await serveMirror(dir);
    // A mirror that stops syncing here, for the next test.
    await copyOfOrigin('stale');
    // The origin goes on publishing: its log and the fork now disagree.
    await publish({ 'main.cvd': 'release three\n' });
    const between = await monitor(['--mirror', mirrorA, '--mirror', mirrorF, '--root', rootFile]);
    expect(between.code).toBe(EXIT_CRITICAL);
    expect(
      between.report.alerts.filter((a) => a.code === 'SPLIT_VIEW').map((a) => a.mirror),
    ).toEqual([mirrorF]);
    // The monitor's own state has moved on with the real log: the fork does not extend it.
    expect((await monitor(['--mirror', mirrorA, '--root', rootFile, '--state', state])).code).toBe(
      EXIT_OK,
    );
    const alone = await monitor(['--mirror', mirrorF, '--root', rootFile, '--state', state]);
    expect(alone.code).toBe(EXIT_CRITICAL);
    expect(codes(alone.report.alerts)).toContain('SPLIT_VIEW');
  });

  it('a stale mirror', async () => {
    // The copy taken before the newest release, log and all, served as it is.
    const stale = await serveMirror(join(work, 'stale'));
    const args = ['--mirror', mirrorA, '--mirror', stale, '--root', rootFile];
    // Just published: not stale yet.
    expect((await monitor(args)).code).toBe(EXIT_OK);
    const later = await monitor(args, () => new Date(Date.now() + 3 * HOUR));
    expect(later.code).toBe(EXIT_CRITICAL);
    expect(later.report.alerts.map((a) => [a.code, a.mirror])).toEqual([['STALE_MIRROR', stale]]);
    expect(later.report.alerts[0]?.message).toMatch(
      /still serves snapshot v2; v3 was logged [23]h ago \(--max-age 3600s\)$/,
    );
  });
});

describe('key changes', () => {
  it('are logged and read as keys added per role, and later releases verify under the new root', async () => {
    const carol = await Ed25519Signer.generate();
    const store = new FsBlobStore(originDir);
    await proposeRootChange(
      {
        store,
        roots: new RootChain(store),
        now: new Date(),
        rootExpiry: DEFAULT_POLICY.expiry.root,
      },
      { kind: 'add-publisher', publisher: { ...ref(carol), name: 'carol' } },
      [keys.root],
    );
    expect(await publishPendingRoot(service.ctx)).toBe(2);
    await publish({ 'main.cvd': 'release four\n' });
    const history = await readHistory({ mirror: mirrorA, trustedRoot: await readFile(rootFile) });
    expect(history.anomalies).toEqual([]);
    const rotation = history.keyChanges[1];
    expect([rotation?.version, rotation?.status, rotation?.rootVersion]).toEqual([
      2,
      'verified',
      1,
    ]);
    expect(rotation?.root?.changes).toEqual({
      previousVersion: 1,
      roles: [
        {
          role: 'targets',
          added: [{ keyid: carol.keyid, name: 'carol', named: true }],
          removed: [],
          thresholdBefore: 1,
          thresholdAfter: 1,
        },
      ],
      logKeyChanged: false,
    });
    expect(rotation?.approvals?.signers.map((s) => s.keyid)).toEqual([keys.root.keyid]);
    const last = history.releases.at(-1);
    expect([last?.version, last?.status, last?.rootVersion]).toEqual([4, 'verified', 2]);
    expect((await monitor(['--mirror', mirrorA, '--root', rootFile])).code).toBe(EXIT_OK);
  });

  it('a root written into a mirror’s bucket without the log is an unlogged root', async () => {
    const dir = await copyOfOrigin('unlogged-root');
    const current = Metadata.fromBytes(
      await readFile(join(dir, 'metadata', '2.root.json')),
      'root',
    );
    const next = await signMetadata(
      new Metadata(
        new Root({
          specVersion: current.signed.specVersion,
          version: 3,
          expires: current.signed.expires,
          extra: current.signed.extra,
          consistentSnapshot: current.signed.consistentSnapshot,
          keys: current.signed.keys,
          roles: current.signed.roles,
        }),
      ),
      [keys.root],
    );
    await writeFile(join(dir, 'metadata', '3.root.json'), next.toBytes());
    const mirror = await serveMirror(dir);
    const { code, report } = await monitor(['--mirror', mirror, '--root', rootFile]);
    expect(code).toBe(EXIT_CRITICAL);
    expect(report.alerts.map((a) => [a.code, a.role, a.version, a.message])).toEqual([
      ['UNLOGGED_ROOT', 'root', 3, 'the mirror serves root v3, which the log does not hold'],
    ]);
  });
});

/**
 * A release made with stolen publisher, snapshot and timestamp keys, written into `dir` as an
 * attacker with write access to a mirror's bucket would: targets v3, snapshot v3, timestamp v3,
 * none of them logged.
 */
async function forgeRelease(dir: string): Promise<{ timestampVersion: number }> {
  const read = async (name: string) => readFile(join(dir, 'metadata', name));
  const oldTargets = Metadata.fromBytes(await read('2.targets.json'), 'targets').signed;
  const oldTimestamp = Metadata.fromBytes(await read('timestamp.json'), 'timestamp').signed;
  const expires = oldTimestamp.expires;
  const targets = await signMetadata(
    new Metadata(
      new Targets({
        specVersion: oldTargets.specVersion,
        version: 3,
        expires,
        targets: oldTargets.targets,
      }),
    ),
    [keys.alice],
  );
  const targetsBytes = targets.toBytes();
  const snapshot = await signMetadata(
    new Metadata(
      new Snapshot({
        specVersion: oldTargets.specVersion,
        version: 3,
        expires,
        meta: new Map([['targets.json', new MetaFile({ version: 3 })]]),
      }),
    ),
    [keys.snapshot],
  );
  const snapshotBytes = snapshot.toBytes();
  const timestamp = await signMetadata(
    new Metadata(
      new Timestamp({
        specVersion: oldTargets.specVersion,
        version: oldTimestamp.version + 1,
        expires,
        snapshotMeta: new MetaFile({
          version: 3,
          length: snapshotBytes.length,
          hashes: { sha256: await sha256Hex(webHashPort, snapshotBytes) },
        }),
      }),
    ),
    [keys.timestamp],
  );
  await writeFile(join(dir, 'metadata', '3.targets.json'), targetsBytes);
  await writeFile(join(dir, 'metadata', '3.snapshot.json'), snapshotBytes);
  await writeFile(join(dir, 'metadata', 'timestamp.json'), timestamp.toBytes());
  return { timestampVersion: oldTimestamp.version + 1 };
}
