/**
 * `cairn demo`: the main job on the embedded default, narrated for a newcomer. In one directory
 * (`.cairn-demo/`) it keeps a repository whose releases need two publishers' signatures, runs
 * the whole network on this machine — the origin and two edge mirrors on Node, over that
 * directory — publishes co-signed releases of a generated signature database, and has the
 * updater install them through the mirrors, in full and then as deltas. The log's watchers
 * check it: the monitor (`cairn monitor`, in-process, its checkpoint kept in the directory) over
 * both mirrors. Three attacks follow (a mirror serving a tampered file; a release signed by one
 * stolen publisher key; a release signed by every stolen key but the log's, written straight
 * into a mirror's directory, which the client refuses and the monitor reports), then the audit
 * report (`cairn audit`) of everything the log holds, and the network keeps running, with
 * commands to try, until SIGINT or SIGTERM.
 *
 * Run again, it reuses the repository and publishes the next release, and the monitor proves
 * the log extends the checkpoint it kept. The keys are demo keys: plain key files under a
 * passphrase printed here, never for real data.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { copyFile, cp, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { nodeHashPort } from '@cairn/client/node-hash';
import { createUpdater, type UpdateEvent, type UpdateReport } from '@cairn/client/update';
import { parseEdgeConfig } from '@cairn/edge/config';
import { startEdge, type RunningEdge } from '@cairn/edge/node';
import { storeFromOptions } from '@cairn/edge/node-store';
import { initRepository } from '@cairn/origin/admin';
import { loadConfig, openStore, type OriginConfig } from '@cairn/origin/config';
import { MIN_SCRYPT_N, publicKeyFileText, readKeyFile, writeKeyFile } from '@cairn/origin/key-file';
import { targetBlobKey } from '@cairn/origin/layout';
import { createLogger } from '@cairn/origin/log';
import { PublisherClient } from '@cairn/origin/publisher-client';
import type { ReleaseSummary } from '@cairn/origin/releases';
import { startOrigin } from '@cairn/origin/start';
import { parseCheckpoint } from '@cairn/tlog/checkpoint';
import { parseNote } from '@cairn/tlog/note';
import { utf8 } from '@cairn/verify/encoding';
import { Metadata, type Targets } from '@cairn/verify/metadata';
import { buildSnapshot, buildTimestamp, describeMetadata } from '@cairn/verify/repository';
import { Ed25519Signer, signMetadata } from '@cairn/verify/signer';
import {
  AUDIT_FORMATS,
  auditReport,
  parseWindow,
  renderReport,
  reportFileName,
  writeFileAtomic,
} from './audit-command.js';
import { anomalyText, plural } from './audit-report.js';
import { UsageError, type CliIo } from './cli-io.js';
import { formatBytes, untilSignal } from './command-support.js';
import { readHistory } from './log-history.js';
import {
  alertLine,
  checkOnce,
  loadState,
  parseMonitorArgs,
  saveState,
  type MonitorReport,
  type MonitorState,
} from './monitor-command.js';

/** Written into the directory so a re-run knows it may reuse (or replace) what is there. */
const MARKER = '.cairn-demo';
/** The passphrase of every demo key file. Printed on purpose: these keys protect nothing. */
export const DEMO_PASSPHRASE = 'demo';
/** Set to anything but empty: the same as `--no-wait`. */
export const NO_WAIT_VARIABLE = 'CAIRN_DEMO_NO_WAIT';

/** Where the network listens when the port is free; any free port otherwise. */
const PREFERRED_PORTS = { origin: 8700, 'mirror-a': 8701, 'mirror-b': 8702 } as const;
const MIRROR_NAMES = ['mirror-a', 'mirror-b'] as const;

const DAY = 86_400_000;

/**
 * The generated signature database: `main.cvd` is big and changes by about 1% a release,
 * `daily.cvd` is small and changes faster — as with real antivirus databases, where deltas pay.
 */
const DATABASES = [
  { path: 'main.cvd', records: 61_000, changePercent: 1 },
  { path: 'daily.cvd', records: 4_000, changePercent: 5 },
] as const;

const USAGE = 'cairn demo [--dir DIR] [--no-wait]';
const HELP = [
  `Usage: ${USAGE}`,
  '',
  'Runs the whole network on this machine and narrates it: a repository whose releases need two',
  "publishers' signatures, the origin and two edge mirrors on 127.0.0.1, co-signed releases of a",
  'generated signature database, and an updater that installs them through the mirrors (in full,',
  'then as deltas). The monitor checks the transparency log through both mirrors; three attacks',
  'are refused (a tampered file, a release signed by one stolen publisher key, and a release',
  'signed by every stolen key but written into a mirror past the log, which the monitor reports);',
  'the audit report of the log is written to DIR/audit. Then it prints the URLs and commands to',
  'try, and keeps the network running until Ctrl-C (SIGINT) or SIGTERM.',
  '',
  '  --dir DIR    where the demo keeps everything (default .cairn-demo); run again, it reuses the',
  '               repository there and publishes the next release',
  `  --no-wait    stop the network after the last step instead of waiting (also: ${NO_WAIT_VARIABLE}=1)`,
  '',
  `The keys it makes are demo keys, under the passphrase "${DEMO_PASSPHRASE}": never use them for real data.`,
].join('\n');

// ---------------------------------------------------------------------------------------------
// The generated signature database

/** A 32-bit integer hash of two integers (murmur3's finaliser over a mix of both). */
function mix(a: number, b: number): number {
  let x = (Math.imul(a ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca6b)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x21f0aaad) >>> 0;
  x = Math.imul(x ^ (x >>> 15), 0x735a2d97) >>> 0;
  return (x ^ (x >>> 15)) >>> 0;
}

const FAMILIES = [
  'Win.Trojan.Agent',
  'Win.Malware.Emotet',
  'Win.Ransomware.Lockbit',
  'Doc.Downloader.Valyria',
  'Html.Phishing.Bank',
  'Unix.Trojan.Mirai',
  'Andr.Spyware.Joker',
  'Js.Coinminer.Generic',
] as const;

/** One `md5:size:name` line, as in a ClamAV .hdb file: record `i` as it is since release `g`. */
function record(i: number, g: number): string {
  let hash = '';
  for (let w = 0; w < 4; w++)
    hash += mix(i * 4 + w, g)
      .toString(16)
      .padStart(8, '0');
  const r = mix(i, g ^ 0x3c6ef372);
  const family = FAMILIES[r % FAMILIES.length] ?? FAMILIES[0];
  return `${hash}:${1024 + (mix(r, 1) % 4_000_000)}:${family}-${1_000_000 + (mix(r, 2) % 9_000_000)}`;
}

/**
 * A database file of `release`: record `i` is as it was last changed, at the newest release
 * up to `release` whose draw picked it. Sorted by hash, as scanners load them, so changes are
 * spread all through the file.
 */
function databaseFile(index: number, release: number): Uint8Array {
  const db = DATABASES[index] ?? DATABASES[0];
  const lines: string[] = [];
  for (let i = 0; i < db.records; i++) {
    let changed = 1;
    for (let v = release; v >= 2; v--) {
      if (mix(i + index * 1_000_003, v) % 100 < db.changePercent) {
        changed = v;
        break;
      }
    }
    lines.push(record(i + index * 1_000_003, changed));
  }
  lines.sort();
  return utf8(`${lines.join('\n')}\n`);
}

/**
 * `bytes` with the hash of its first ransomware signature zeroed: the same length, and that
 * ransomware would go undetected. Returns the bytes and the signature's name.
 */
function disableOneSignature(bytes: Uint8Array): { bytes: Uint8Array; name: string } {
  const lines = new TextDecoder().decode(bytes).split('\n');
  const at = lines.findIndex((l) => l.includes(':Win.Ransomware.'));
  const line = lines[at] ?? '';
  const [hash = '', size = '', name = ''] = line.split(':');
  lines[at] = `${'0'.repeat(hash.length)}:${size}:${name}`;
  return { bytes: utf8(lines.join('\n')), name };
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

// ---------------------------------------------------------------------------------------------
// The directory

interface DemoPaths {
  readonly dir: string;
  readonly config: string;
  readonly keys: string;
  readonly repository: string;
  /** The publishers' copy of the release they push and sign. */
  readonly release: string;
  readonly install: string;
  readonly state: string;
  /** What the attacks use: the lying mirror's storage, a new machine. */
  readonly attack: string;
  readonly log: string;
  /** The root every client, mirror and the monitor pin: trust starts there. */
  readonly trustedRoot: string;
  /** The monitor's last verified checkpoint, kept from one run to the next. */
  readonly monitor: string;
  readonly audit: string;
}

function demoPaths(dir: string): DemoPaths {
  return {
    dir,
    config: join(dir, 'origin.json'),
    keys: join(dir, 'keys'),
    repository: join(dir, 'repository'),
    release: join(dir, 'release'),
    install: join(dir, 'client', 'install'),
    state: join(dir, 'client', 'state'),
    attack: join(dir, 'attack'),
    log: join(dir, 'network.log'),
    trustedRoot: join(dir, 'repository', 'metadata', '1.root.json'),
    monitor: join(dir, 'monitor'),
    audit: join(dir, 'audit'),
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/**
 * Makes the directory, or checks it is the demo's own. A directory of an earlier demo that ran
 * no network (it has no origin.json) is started over; one with a repository is reused.
 */
async function prepareDir(paths: DemoPaths): Promise<'new' | 'reuse'> {
  if (await exists(paths.dir)) {
    if (!(await exists(join(paths.dir, MARKER)))) {
      throw new UsageError(
        `${paths.dir} exists and was not made by cairn demo; choose another --dir`,
      );
    }
    if (await exists(paths.config)) return 'reuse';
    await rm(paths.dir, { recursive: true, force: true });
  }
  await mkdir(paths.dir, { recursive: true });
  await writeFile(join(paths.dir, MARKER), 'made by cairn demo; safe to delete\n');
  return 'new';
}

// ---------------------------------------------------------------------------------------------
// Keys and the repository

const ROLE_KEYS = ['root-1', 'root-2', 'alice', 'bob', 'snapshot', 'timestamp', 'log'] as const;
type KeyName = (typeof ROLE_KEYS)[number];
/** `log` is absent in a directory made before the demo had a transparency log. */
type DemoKeys = Readonly<Record<Exclude<KeyName, 'log'>, Ed25519Signer>> & {
  readonly log?: Ed25519Signer | undefined;
};

/** The transparency log's name: the checkpoints' origin line. */
const DEMO_LOG_NAME = 'demo.cairn.invalid/log';

const KEYS_NOTE = `Demo keys made by \`cairn demo\`. Their passphrase is "${DEMO_PASSPHRASE}", printed for anyone to
read: they protect nothing. Never sign real data with them.
`;

async function createKeys(paths: DemoPaths): Promise<DemoKeys> {
  await mkdir(paths.keys, { recursive: true, mode: 0o700 });
  await writeFile(join(paths.keys, 'README.txt'), KEYS_NOTE);
  const keys = {} as Record<KeyName, Ed25519Signer>;
  for (const name of ROLE_KEYS) {
    const signer = await Ed25519Signer.generate();
    const file = join(paths.keys, `${name}.key`);
    // The weakest stretching the format allows: the passphrase is public anyway.
    await writeKeyFile(file, signer, DEMO_PASSPHRASE, { scryptN: MIN_SCRYPT_N });
    await writeFile(`${file}.pub`, publicKeyFileText(signer.keyid, signer.publicKey));
    keys[name] = signer;
  }
  return keys;
}

async function readKeys(paths: DemoPaths): Promise<DemoKeys> {
  const keys = {} as Record<KeyName, Ed25519Signer>;
  for (const name of ROLE_KEYS) {
    const file = join(paths.keys, `${name}.key`);
    if (name === 'log' && !(await exists(file))) continue;
    keys[name] = await readKeyFile(file, DEMO_PASSPHRASE);
  }
  return keys;
}

/** The origin's configuration file: what `cairn serve --config` and `cairn keys list` read. */
const ORIGIN_CONFIG = {
  listen: { host: '127.0.0.1', port: PREFERRED_PORTS.origin },
  storage: { type: 'fs', directory: 'repository' },
  keys: { snapshot: 'keys/snapshot.key', timestamp: 'keys/timestamp.key', log: 'keys/log.key' },
  log: { name: DEMO_LOG_NAME },
};

async function originConfig(paths: DemoPaths): Promise<OriginConfig> {
  // No environment: the demo's origin is the one its file describes, whatever CAIRN_* is set.
  return loadConfig(paths.config, {});
}

// ---------------------------------------------------------------------------------------------
// The network

interface Network {
  readonly origin: { readonly url: string; close(): Promise<void> };
  readonly mirrors: readonly { readonly name: string; readonly edge: RunningEdge }[];
  readonly trustedRoot: Uint8Array;
  log(component: string, entry: Readonly<Record<string, unknown>>): void;
  close(): Promise<void>;
}

function isAddressInUse(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';
}

/** Starts on `port`, or on any free port when something else holds that one. */
async function onPreferredPort<T>(port: number, start: (port: number) => Promise<T>): Promise<T> {
  try {
    return await start(port);
  } catch (error) {
    if (!isAddressInUse(error)) throw error;
    return start(0);
  }
}

async function startNetwork(paths: DemoPaths, config: OriginConfig): Promise<Network> {
  const logFile = createWriteStream(paths.log, { flags: 'a' });
  const log = (component: string, entry: Readonly<Record<string, unknown>>) =>
    void logFile.write(
      `${JSON.stringify({ time: new Date().toISOString(), component, ...entry })}\n`,
    );
  const closers: (() => Promise<void>)[] = [];
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      for (const c of closers.reverse()) await c().catch(() => undefined);
      await new Promise<void>((done) => logFile.end(done));
    })());
  try {
    const logger = createLogger({
      write: (line) => void logFile.write(`${line}\n`),
      fields: { component: 'origin' },
    });
    const origin = await onPreferredPort(PREFERRED_PORTS.origin, (port) =>
      startOrigin(
        { ...config, listen: { ...config.listen, port } },
        { env: { CAIRN_ONLINE_PASSPHRASE: DEMO_PASSPHRASE }, logger },
      ),
    );
    closers.push(() => origin.close());
    const trustedRoot = new Uint8Array(await readFile(paths.trustedRoot));
    const store = await storeFromOptions({ dir: paths.repository });
    const mirrors: { name: string; edge: RunningEdge }[] = [];
    for (const name of MIRROR_NAMES) {
      const edge = await onPreferredPort(PREFERRED_PORTS[name], (port) =>
        startEdge({
          config: parseEdgeConfig({
            CAIRN_MIRROR_NAME: name,
            CAIRN_TRUSTED_ROOT: new TextDecoder().decode(trustedRoot),
            // Releases here follow each other within seconds: look at timestamp.json every time.
            CAIRN_TIMESTAMP_MAX_AGE: '0',
          }),
          store,
          port,
          log: (entry) => log(name, entry),
        }),
      );
      closers.push(() => edge.close());
      mirrors.push({ name, edge });
    }
    return { origin, mirrors, trustedRoot, log, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The mirror's name for a URL an event names, or the URL when it is none of ours. */
function mirrorLabel(network: Network) {
  const known = network.mirrors.map((m) => ({ name: m.name, url: m.edge.url }));
  const strip = (url: string) => url.replace(/\/+$/, '');
  return (mirror: string | undefined): string => {
    if (mirror === undefined) return 'a mirror';
    return known.find((m) => m.name === mirror || strip(m.url) === strip(mirror))?.name ?? mirror;
  };
}

// ---------------------------------------------------------------------------------------------
// Publishing

async function writeRelease(paths: DemoPaths, release: number): Promise<Map<string, Uint8Array>> {
  await rm(paths.release, { recursive: true, force: true });
  await mkdir(paths.release, { recursive: true });
  const files = new Map<string, Uint8Array>();
  for (const [index, db] of DATABASES.entries()) {
    const bytes = databaseFile(index, release);
    await writeFile(join(paths.release, db.path), bytes);
    files.set(db.path, bytes);
  }
  return files;
}

function fileLine(path: string, bytes: Uint8Array): string {
  const records = bytes.reduce((n, b) => n + (b === 0x0a ? 1 : 0), 0);
  return `   ${path.padEnd(10)} ${formatBytes(bytes.length).padStart(9)}  ${String(records).padStart(6)} signatures  sha256 ${sha256(bytes).slice(0, 16)}…`;
}

/** `from v2: main.cvd 18.9 KiB, daily.cvd 7.1 KiB; from v1: ...`, newest base first. */
function deltaWords(summary: ReleaseSummary): string | undefined {
  const byBase = new Map<number, string[]>();
  for (const f of summary.files) {
    for (const d of f.deltas) {
      byBase.set(d.baseVersion, [
        ...(byBase.get(d.baseVersion) ?? []),
        `${f.path} ${formatBytes(d.length)}`,
      ]);
    }
  }
  const parts = [...byBase]
    .sort(([a], [b]) => b - a)
    .map(([base, files]) => `from v${base}: ${files.join(', ')}`);
  return parts.length === 0 ? undefined : parts.join('; ');
}

async function publishRelease(
  io: CliIo,
  paths: DemoPaths,
  network: Network,
  keys: DemoKeys,
  release: number,
  step: number,
): Promise<void> {
  io.stdout(
    release === 1
      ? `\n${step}. Release 1: a signature database, generated for the demo`
      : `\n${step}. Release ${release}: about 1% of the signatures in main.cvd change, 5% in daily.cvd`,
  );
  const files = await writeRelease(paths, release);
  for (const [path, bytes] of files) io.stdout(fileLine(path, bytes));
  const alice = new PublisherClient(network.origin.url, keys.alice);
  const bob = new PublisherClient(network.origin.url, keys.bob);
  const draft = await alice.push(paths.release, { note: `demo release ${release}` });
  io.stdout(
    `   alice pushes it to the origin: release ${draft.id}, a draft of targets v${draft.targetsVersion ?? '?'}`,
  );
  const deltas = deltaWords(draft);
  if (deltas !== undefined) {
    io.stdout(`   the origin computes deltas ${deltas}`);
  }
  const byAlice = await alice.sign(draft.id, paths.release);
  io.stdout(
    `   alice checks the draft against her copy and signs: ${byAlice.signatures} of ${byAlice.threshold} signatures — not enough, nothing is published`,
  );
  const byBob = await bob.sign(draft.id, paths.release);
  if (byBob.published === undefined) {
    throw new Error(`release ${draft.id} was not published with ${byBob.signatures} signatures`);
  }
  io.stdout(
    `   bob checks it against his own copy and signs: ${byBob.signatures} of ${byBob.threshold} — threshold reached: published as targets v${byBob.published.targetsVersion} (snapshot v${byBob.published.snapshotVersion})`,
  );
}

// ---------------------------------------------------------------------------------------------
// Updating

interface UpdateTarget {
  readonly installDir: string;
  readonly stateDir: string;
  readonly mirrors: readonly { readonly name: string; readonly url: string }[];
}

function narrateUpdate(io: CliIo, label: (mirror: string | undefined) => string) {
  return (event: UpdateEvent): void => {
    switch (event.type) {
      case 'mirrors': {
        const reachable = event.ranked.filter((m) => m.reachable);
        const down = event.ranked.filter((m) => !m.reachable);
        const probed = reachable.some((m) => m.rttMs !== undefined);
        const names = reachable.map(
          (m) =>
            `${label(m.name ?? m.url)}${m.rttMs === undefined ? '' : ` ${m.rttMs.toFixed(1)} ms`}`,
        );
        io.stdout(
          `   mirrors, nearest first${probed ? ' (by round-trip time)' : ''}: ${names.join(', ') || 'none'}${down.length > 0 ? `; unreachable: ${down.map((m) => label(m.name ?? m.url)).join(', ')}` : ''}`,
        );
        break;
      }
      case 'metadata':
        io.stdout(
          `   ✔ metadata verified from the trusted root: timestamp v${event.timestampVersion}, snapshot v${event.snapshotVersion}, targets v${event.targetsVersion} (signed by alice and bob) — from ${label(event.mirror)}`,
        );
        break;
      case 'plan':
        for (const item of event.items) {
          const what =
            item.action === 'current'
              ? 'already installed, nothing to download'
              : item.action === 'delta'
                ? `delta: ${formatBytes(item.downloadBytes)} instead of ${formatBytes(item.fullBytes)}`
                : `full file: ${formatBytes(item.fullBytes)}`;
          io.stdout(`   ${item.path.padEnd(10)} ${what}`);
        }
        break;
      case 'log':
        io.stdout(
          `   ✔ in the transparency log ${event.origin}: ${event.proofs} inclusion proof(s) verified against its checkpoint of ${event.size ?? 0} entries${event.previousSize === undefined ? '' : `, which extends the one of ${event.previousSize} held before`}`,
        );
        break;
      case 'fallback':
        io.stdout(
          `   ! ${event.path}: the delta did not work (${event.reason}); full file instead`,
        );
        break;
      case 'mirror-failed':
        io.stdout(`   ! ${label(event.mirror)} failed: ${event.reason}; trying the next mirror`);
        break;
      case 'installed':
        io.stdout(
          event.kind === 'delta'
            ? `   ✔ ${event.path}: delta of ${formatBytes(event.bytesDownloaded)} from ${label(event.mirror)} applied to the installed copy; the result's sha256 matches the signed targets: installed`
            : `   ✔ ${event.path}: ${formatBytes(event.bytesDownloaded)} from ${label(event.mirror)}, sha256 matches the signed targets: installed`,
        );
        break;
      case 'progress':
        break;
    }
  };
}

function savedWords(report: UpdateReport): string {
  if (report.bytesFull === 0) return 'already up to date: nothing downloaded';
  if (report.bytesDownloaded >= report.bytesFull) {
    return `downloaded ${formatBytes(report.bytesDownloaded)} (full files)`;
  }
  const percent = Math.floor((1 - report.bytesDownloaded / report.bytesFull) * 100);
  return `downloaded ${formatBytes(report.bytesDownloaded)} instead of ${formatBytes(report.bytesFull)} (${percent}% saved)`;
}

function update(
  target: UpdateTarget,
  trustedRoot: Uint8Array,
  listener?: (event: UpdateEvent) => void,
): Promise<UpdateReport> {
  return createUpdater(
    {
      installDir: target.installDir,
      stateDir: target.stateDir,
      mirrors: target.mirrors,
      trustedRoot,
      // The mirrors are on this machine: a few seconds is already far too long.
      probeTimeoutMs: 2_000,
      requestTimeoutMs: 10_000,
    },
    listener,
  ).update();
}

async function runUpdate(
  io: CliIo,
  paths: DemoPaths,
  network: Network,
  step: number,
  title: string,
): Promise<UpdateReport> {
  io.stdout(`\n${step}. ${title}`);
  const label = mirrorLabel(network);
  const report = await update(
    {
      installDir: paths.install,
      stateDir: paths.state,
      mirrors: network.mirrors.map((m) => ({ name: m.name, url: m.edge.url })),
    },
    network.trustedRoot,
    narrateUpdate(io, label),
  );
  io.stdout(`   ${savedWords(report)}`);
  return report;
}

// ---------------------------------------------------------------------------------------------
// Watching the log: the monitor and the audit report

function namedMirrors(network: Network): NamedMirror[] {
  return network.mirrors.map((m) => ({ name: m.name, url: m.edge.url }));
}

/**
 * The `cairn monitor` arguments of one check of `mirrors`: what the demo runs in-process, and
 * prints (with `shown` paths) for the reader to run.
 */
function monitorArgs(
  paths: DemoPaths,
  mirrors: readonly NamedMirror[],
  approvals: number,
  shown: (path: string) => string = (path) => path,
): string[] {
  return [
    ...mirrors.flatMap((m) => ['--mirror', m.url]),
    '--root',
    shown(paths.trustedRoot),
    '--state',
    shown(paths.monitor),
    '--min-approvals',
    String(approvals),
  ];
}

/** One `cairn monitor --once` check, in-process, from `state`; nothing saved. */
async function checkLog(
  args: readonly string[],
  trustedRoot: Uint8Array,
  state: MonitorState,
): Promise<{ report: MonitorReport; state: MonitorState }> {
  const settings = parseMonitorArgs(args);
  if (settings === undefined) throw new Error(`cairn monitor ${args.join(' ')}: no check`);
  return checkOnce(settings, trustedRoot, state);
}

/** The size of the checkpoint a monitor state holds, if it holds one. */
function checkpointSize(state: MonitorState): number | undefined {
  return state.checkpoint === undefined
    ? undefined
    : parseCheckpoint(parseNote(state.checkpoint).text).size;
}

async function runMonitorStep(
  io: CliIo,
  paths: DemoPaths,
  network: Network,
  approvals: number,
  step: number,
): Promise<boolean> {
  io.stdout(`\n${step}. The monitor: anyone can check the log and the mirrors, from public data`);
  const mirrors = namedMirrors(network);
  const before = await loadState(paths.monitor);
  const { report, state } = await checkLog(
    monitorArgs(paths, mirrors, approvals),
    network.trustedRoot,
    before,
  );
  await saveState(paths.monitor, state);
  for (const alert of report.alerts) io.stdout(`   ${tidy(alertLine(alert), mirrors)}`);
  if (report.log === undefined || report.alerts.some((a) => a.severity === 'critical')) {
    io.stderr("   ✘ the monitor raised an alert on the demo's own network — this is a bug");
    return false;
  }
  if (report.alerts.length === 0) {
    io.stdout(
      `   ✔ monitor: log of ${plural(report.log.size, 'entry', 'entries')} consistent on both mirrors, every release logged and approved by ${approvals} publishers`,
    );
  }
  const held = checkpointSize(before);
  io.stdout(
    held === undefined
      ? `   its checkpoint is kept in ${paths.monitor}: the next check must find a log that extends it, or it reports a fork`
      : `   ✔ the log extends the checkpoint of ${plural(held, 'entry', 'entries')} kept in ${paths.monitor} by the last check; ${plural(report.log.newEntries, 'new entry', 'new entries')} verified`,
  );
  return true;
}

/** The audit window the demo reports, as `--from` and `--to` days: all of its history. */
interface AuditDays {
  readonly from: string;
  readonly to: string;
}

function auditArgs(
  paths: DemoPaths,
  mirror: NamedMirror,
  days: AuditDays,
  shown: (path: string) => string,
): string[] {
  return [
    '--mirror',
    mirror.url,
    '--root',
    shown(paths.trustedRoot),
    '--from',
    days.from,
    '--to',
    days.to,
    '--out',
    shown(paths.audit),
  ];
}

/**
 * Writes the audit report of everything the log holds, from its first entry's day to today,
 * as `cairn audit` does (without --generated-at: the same log gives the same files). Returns
 * the days, or undefined (a bug) when the report lists anomalies.
 */
async function writeAudit(
  io: CliIo,
  paths: DemoPaths,
  network: Network,
  step: number,
): Promise<AuditDays | undefined> {
  io.stdout(`\n${step}. The audit report: every release and key change, with its evidence`);
  const [mirror] = namedMirrors(network);
  if (mirror === undefined) throw new Error('the network has no mirror');
  const history = await readHistory({ mirror: mirror.url, trustedRoot: network.trustedRoot });
  const day = (time: string) => time.slice(0, 10);
  const days = {
    from: day(history.entries[0]?.time ?? new Date().toISOString()),
    to: day(new Date().toISOString()),
  };
  const report = auditReport(history, {
    window: parseWindow(days.from, days.to),
    pinnedRoot: {
      version: Metadata.fromBytes(network.trustedRoot, 'root').signed.version,
      sha256: sha256(network.trustedRoot),
    },
  });
  await mkdir(paths.audit, { recursive: true });
  const written: string[] = [];
  for (const format of AUDIT_FORMATS) {
    const file = join(paths.audit, reportFileName(format));
    await writeFileAtomic(file, renderReport(report, format));
    written.push(file);
  }
  const window = days.from === days.to ? days.from : `${days.from} to ${days.to}`;
  const checkpoint = report.log.checkpoint;
  io.stdout(
    `   ✔ audit of ${window} through ${mirror.name}: ${plural(report.releases.length, 'release')}, ${plural(report.keyChanges.length, 'key change')}, ${report.anomalies.length === 0 ? 'no anomalies' : plural(report.anomalies.length, 'anomaly', 'anomalies')}`,
  );
  if (checkpoint !== null) {
    io.stdout(
      `   each with its files, signers, log index and inclusion proof against the checkpoint of ${plural(checkpoint.size, 'entry', 'entries')}`,
    );
  }
  for (const anomaly of report.anomalies) io.stdout(`   ✘ ${anomalyText(anomaly)}`);
  for (const file of written) {
    io.stdout(
      `   wrote ${file}${file.endsWith('.html') ? '   a timeline and a table per release, for a browser' : ''}`,
    );
  }
  if (report.anomalies.length > 0 || checkpoint === null) {
    io.stderr("   ✘ the audit of the demo's own log lists anomalies — this is a bug");
    return undefined;
  }
  return days;
}

// ---------------------------------------------------------------------------------------------
// Attacks

function codeOf(error: Error): string | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

interface NamedMirror {
  readonly name: string;
  readonly url: string;
}

/** `message` for a reader: mirror URLs shown by name, hashes shortened. */
function tidy(message: string, mirrors: readonly NamedMirror[]): string {
  let text = message;
  for (const m of mirrors) {
    const base = m.url.replace(/\/+$/, '');
    // The base URL alone (`http://127.0.0.1:8701/: ...`) is the mirror; with a path, a file on it.
    for (const after of [' ', ':']) text = text.replaceAll(`${base}/${after}`, `${m.name}${after}`);
    text = text.replaceAll(base, m.name);
  }
  return text.replace(/\b([0-9a-f]{12})[0-9a-f]{52}\b/g, '$1…');
}

/**
 * Why the updater refused, for a reader: the deepest coded error (the check that failed), with
 * mirror URLs shown by name and hashes shortened, and the updater's own code when it wraps it.
 */
function refusal(error: unknown, mirrors: readonly NamedMirror[]): string {
  if (!(error instanceof Error)) return String(error);
  const chain: Error[] = [];
  for (let e: unknown = error; e instanceof Error && chain.length < 8; e = e.cause) chain.push(e);
  const deepest = chain.reverse().find((e) => codeOf(e) !== undefined) ?? error;
  const line = `${codeOf(deepest) ?? deepest.name} — ${tidy(deepest.message, mirrors)}`;
  const wrapper = codeOf(error) ?? error.name;
  return deepest === error || wrapper === codeOf(deepest)
    ? line
    : `${line} (the updater's error: ${wrapper})`;
}

/** Copies the repository's public files a client reads for the current release. */
async function copyCurrentRelease(
  paths: DemoPaths,
  to: string,
): Promise<{ targets: Metadata<Targets>; snapshotVersion: number; timestampVersion: number }> {
  const from = join(paths.repository, 'metadata');
  await mkdir(join(to, 'metadata'), { recursive: true });
  const timestamp = Metadata.fromBytes(await readFile(join(from, 'timestamp.json')), 'timestamp');
  const snapshotVersion = timestamp.signed.snapshotMeta.version;
  const snapshot = Metadata.fromBytes(
    await readFile(join(from, `${snapshotVersion}.snapshot.json`)),
    'snapshot',
  );
  const targetsVersion = snapshot.signed.meta.get('targets.json')?.version ?? 1;
  const targetsFile = `${targetsVersion}.targets.json`;
  const targets = Metadata.fromBytes(await readFile(join(from, targetsFile)), 'targets');
  const names = (await readdir(from)).filter((n) => /^\d+\.root\.json$/.test(n));
  for (const name of [
    ...names,
    'root.json',
    'timestamp.json',
    `${snapshotVersion}.snapshot.json`,
    targetsFile,
  ]) {
    await copyFile(join(from, name), join(to, 'metadata', name));
  }
  // The real transparency log too: what a mirror copying the repository serves.
  const log = join(paths.repository, 'log');
  if (await exists(log)) await cp(log, join(to, 'log'), { recursive: true });
  return { targets, snapshotVersion, timestampVersion: timestamp.signed.version };
}

async function putFile(dir: string, key: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(join(dir, key)), { recursive: true });
  await writeFile(join(dir, key), bytes);
}

/** Whether `path` holds exactly `bytes`; false when it is missing. */
async function holds(path: string, bytes: Uint8Array): Promise<boolean> {
  try {
    return Buffer.compare(await readFile(path), bytes) === 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

interface Attacks {
  readonly network: Network;
  readonly paths: DemoPaths;
  readonly keys: DemoKeys;
  /** The lying mirror, over `storage`. */
  readonly rogue: { readonly name: string; readonly url: string; readonly storage: string };
  /** Publisher signatures a release needs: the targets threshold. */
  readonly threshold: number;
}

/**
 * The lying mirror's storage, made a faithful copy of the repository's current release: its
 * metadata, its log, and every file its targets name. Each attack starts from here, and the
 * last one ends here, so whatever a run left behind does not matter to the next.
 */
async function restoreRogue(a: Attacks): ReturnType<typeof copyCurrentRelease> {
  const { paths, rogue } = a;
  await rm(rogue.storage, { recursive: true, force: true });
  const current = await copyCurrentRelease(paths, rogue.storage);
  for (const [path, target] of current.targets.signed.targets) {
    const hash = target.hashes.sha256;
    if (hash === undefined) continue;
    await putFile(
      rogue.storage,
      targetBlobKey(path, hash),
      await readFile(join(paths.repository, targetBlobKey(path, hash))),
    );
  }
  return current;
}

async function attackTamperedFile(io: CliIo, a: Attacks, step: number): Promise<boolean> {
  io.stdout(`\n${step}. Attack: a mirror serves a tampered file`);
  const { paths, rogue } = a;
  const { targets } = await restoreRogue(a);
  const dailyHash = targets.signed.targets.get('daily.cvd')?.hashes.sha256;
  if (dailyHash === undefined) {
    throw new Error('the current release does not list daily.cvd');
  }
  const real = await readFile(join(paths.repository, targetBlobKey('daily.cvd', dailyHash)));
  const evil = disableOneSignature(real);
  await putFile(rogue.storage, targetBlobKey('daily.cvd', dailyHash), evil.bytes);
  io.stdout(
    `   Anyone can run a mirror. ${rogue.name} (${rogue.url}) serves the real signed metadata, but a`,
  );
  io.stdout(
    `   daily.cvd of the same length with the signature of ${evil.name} zeroed: that ransomware would go undetected.`,
  );
  io.stdout(`   A new machine, with only ${rogue.name} to update from, installs the database:`);
  const machine = join(paths.attack, 'new-machine');
  await rm(machine, { recursive: true, force: true });
  const installDir = join(machine, 'install');
  try {
    await update(
      {
        installDir,
        stateDir: join(machine, 'state'),
        mirrors: [{ name: rogue.name, url: rogue.url }],
      },
      a.network.trustedRoot,
    );
  } catch (error) {
    io.stdout(`   ✔ refused: ${refusal(error, [rogue])}`);
  }
  if (await holds(join(installDir, 'daily.cvd'), evil.bytes)) {
    io.stderr('   ✘ the tampered daily.cvd was installed — this is a bug');
    return false;
  }
  io.stdout(
    "   ✔ the tampered daily.cvd is not installed: the client checks every byte against the publishers' signed hashes",
  );
  return true;
}

/** The thief's draft on the origin, and the daily.cvd it ships (one signature zeroed). */
interface StolenDraft {
  readonly summary: ReleaseSummary;
  readonly daily: Uint8Array;
}

/**
 * A copy of the demo's client for an attack: one that has verified the thief's timestamp waits
 * for the repository to pass that version, and the demo's own client goes on updating after
 * this. With the daily.cvd it holds.
 */
async function clientCopy(
  a: Attacks,
): Promise<{ installDir: string; stateDir: string; daily: Uint8Array }> {
  const client = join(a.paths.attack, 'client-copy');
  await rm(client, { recursive: true, force: true });
  await cp(dirname(a.paths.install), client, { recursive: true });
  const installDir = join(client, basename(a.paths.install));
  return {
    installDir,
    stateDir: join(client, basename(a.paths.state)),
    daily: await readFile(join(installDir, 'daily.cvd')),
  };
}

/**
 * What a thief holding the origin's online keys makes the lying mirror serve: the repository's
 * current release, and over it the draft as the newest targets, signed by `signers` (the
 * publisher keys they hold), under a snapshot and timestamp the online keys really sign.
 * Written straight into the mirror's storage: never through the origin, so never in its log.
 * Returns the forged targets version.
 */
async function serveForgedRelease(
  a: Attacks,
  draft: StolenDraft,
  signers: readonly Ed25519Signer[],
): Promise<number> {
  const { rogue, keys } = a;
  const current = await restoreRogue(a);
  const { signed } = draft.summary;
  if (signed === undefined) throw new Error(`release ${draft.summary.id} has no draft`);
  const draftBytes = utf8(signed);
  const forgedTargets = utf8(
    JSON.stringify({
      signatures: await Promise.all(
        signers.map(async (s) => ({ keyid: s.keyid, sig: await s.sign(draftBytes) })),
      ),
      signed: JSON.parse(signed) as unknown,
    }),
  );
  const targetsVersion = draft.summary.targetsVersion ?? current.targets.signed.version + 1;
  const snapshotVersion = current.snapshotVersion + 1;
  const now = Date.now();
  const snapshot = await signMetadata(
    new Metadata(
      buildSnapshot({
        version: snapshotVersion,
        expires: new Date(now + 7 * DAY),
        meta: {
          'targets.json': await describeMetadata(nodeHashPort, targetsVersion, forgedTargets),
        },
      }),
    ),
    [keys.snapshot],
  );
  const timestamp = await signMetadata(
    new Metadata(
      buildTimestamp({
        version: current.timestampVersion + 1,
        expires: new Date(now + DAY),
        snapshot: await describeMetadata(nodeHashPort, snapshotVersion, snapshot.toBytes(), {
          length: true,
          hashes: true,
        }),
      }),
    ),
    [keys.timestamp],
  );
  await putFile(rogue.storage, `metadata/${targetsVersion}.targets.json`, forgedTargets);
  await putFile(rogue.storage, `metadata/${snapshotVersion}.snapshot.json`, snapshot.toBytes());
  await putFile(rogue.storage, 'metadata/timestamp.json', timestamp.toBytes());
  await putFile(rogue.storage, targetBlobKey('daily.cvd', sha256(draft.daily)), draft.daily);
  return targetsVersion;
}

/**
 * Updates the client copy from the lying mirror alone and prints the refusal; false (a bug)
 * when its daily.cvd changed.
 */
async function updateCopyFromRogue(
  io: CliIo,
  a: Attacks,
  client: { installDir: string; stateDir: string; daily: Uint8Array },
): Promise<boolean> {
  const { rogue, network } = a;
  io.stdout(
    `   The client (a copy: the demo goes on with the original) updates from ${rogue.name}:`,
  );
  try {
    await update(
      {
        installDir: client.installDir,
        stateDir: client.stateDir,
        mirrors: [{ name: rogue.name, url: rogue.url }],
      },
      network.trustedRoot,
    );
  } catch (error) {
    io.stdout(`   ✔ refused: ${refusal(error, [rogue])}`);
  }
  if (!(await holds(join(client.installDir, 'daily.cvd'), client.daily))) {
    io.stderr('   ✘ the installed daily.cvd changed — this is a bug');
    return false;
  }
  return true;
}

async function attackStolenKey(
  io: CliIo,
  a: Attacks,
  step: number,
): Promise<StolenDraft | undefined> {
  io.stdout(`\n${step}. Attack: a thief with alice's key publishes a release alone`);
  const { paths, rogue, keys, network } = a;
  const client = await clientCopy(a);
  const evil = disableOneSignature(client.daily);
  const thiefDir = join(paths.attack, 'stolen-release');
  await rm(thiefDir, { recursive: true, force: true });
  await mkdir(thiefDir, { recursive: true });
  await copyFile(join(paths.release, 'main.cvd'), join(thiefDir, 'main.cvd'));
  await writeFile(join(thiefDir, 'daily.cvd'), evil.bytes);
  const thief = new PublisherClient(network.origin.url, keys.alice);
  const draft = await thief.push(thiefDir, { note: `no signature for ${evil.name}` });
  const signed = await thief.sign(draft.id, thiefDir);
  io.stdout(
    `   The thief pushes a daily.cvd without the signature of ${evil.name}, and signs as alice:`,
  );
  io.stdout(
    `   ✔ the origin holds release ${draft.id} as a draft with ${signed.signatures} of ${signed.threshold} signatures; bob, comparing it with his copy, would not sign`,
  );

  // The worst case: the thief also holds the origin's online keys and publishes the draft
  // themselves, through a mirror of their own.
  const stolen = { summary: await thief.show(draft.id), daily: evil.bytes };
  const targetsVersion = await serveForgedRelease(a, stolen, [keys.alice]);
  io.stdout(
    `   Worse: they also stole the origin's online keys, and ${rogue.name} serves the draft as targets v${targetsVersion},`,
  );
  io.stdout(
    '   signed by alice alone, under a snapshot and timestamp that the online keys really signed.',
  );
  if (!(await updateCopyFromRogue(io, a, client))) return undefined;
  io.stdout(
    `   ✔ the installed daily.cvd is unchanged, byte for byte: targets need ${signed.threshold} publishers, whoever signs snapshot and timestamp`,
  );
  return stolen;
}

/** `mirror-a, mirror-b and mirror-x` */
function names(mirrors: readonly NamedMirror[]): string {
  const all = mirrors.map((m) => m.name);
  const last = all.pop();
  return all.length === 0 ? (last ?? '') : `${all.join(', ')} and ${last ?? ''}`;
}

async function attackUnloggedRelease(
  io: CliIo,
  a: Attacks,
  step: number,
  draft: StolenDraft,
): Promise<boolean> {
  io.stdout(
    `\n${step}. Attack: a thief with both publishers' keys writes a release straight into a mirror, past the log`,
  );
  const { paths, rogue, keys, network } = a;
  const client = await clientCopy(a);
  const targetsVersion = await serveForgedRelease(a, draft, [keys.alice, keys.bob]);
  io.stdout(
    `   The thief steals bob's key too, signs the same draft as bob, and writes it into ${rogue.name}'s directory as`,
  );
  io.stdout(
    `   targets v${targetsVersion}, under a snapshot and timestamp signed by the online keys: every signature is valid,`,
  );
  io.stdout(
    '   but the release never went through the origin, so it is not in the transparency log.',
  );
  if (!(await updateCopyFromRogue(io, a, client))) return false;
  io.stdout(
    '   ✔ the installed daily.cvd is unchanged, byte for byte: a client takes a release only with a proof that it is in the log, where everyone sees it',
  );

  const honest = namedMirrors(network);
  const all = [...honest, rogue];
  io.stdout(`   The monitor checks the log through ${names(all)}:`);
  // The demo's monitor state: this check must extend its checkpoint too. Not saved: the
  // state keeps what the honest network showed.
  const state = await loadState(paths.monitor);
  const { report } = await checkLog(
    monitorArgs(paths, all, a.threshold),
    network.trustedRoot,
    state,
  );
  const onRogue = report.alerts.filter((alert) => alert.mirror === rogue.url);
  const onHonest = report.alerts.filter((alert) => alert.mirror !== rogue.url);
  for (const alert of onRogue) {
    io.stdout(`   ✔ monitor: ${alert.code} — ${tidy(alert.message, all)}`);
  }
  for (const alert of onHonest) io.stderr(`   ${tidy(alertLine(alert), all)}`);
  if (!onRogue.some((alert) => alert.code === 'UNLOGGED_RELEASE') || onHonest.length > 0) {
    io.stderr(
      `   ✘ the monitor did not report the unlogged release on ${rogue.name} alone — this is a bug`,
    );
    return false;
  }
  io.stdout(`   ✔ monitor: no alert on ${names(honest)}`);

  await restoreRogue(a);
  const after = await checkLog(
    monitorArgs(paths, [rogue], a.threshold),
    network.trustedRoot,
    state,
  );
  if (after.report.alerts.length > 0) {
    for (const alert of after.report.alerts) io.stderr(`   ${tidy(alertLine(alert), all)}`);
    io.stderr(`   ✘ ${rogue.name}, restored, still raises alerts — this is a bug`);
    return false;
  }
  io.stdout(`   ✔ ${rogue.name} restored from the repository: the monitor finds no alert on it`);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Waiting

/** How to run this very `cairn`: `cairn` when installed, else `node path/to/main.js`. */
function cairnCommand(): string {
  const script = process.argv[1];
  if (script === undefined || basename(script) !== 'main.js') return 'cairn';
  const shown = relative(process.cwd(), script);
  return `node ${shown.startsWith('..') ? script : shown}`;
}

function printRunning(
  io: CliIo,
  paths: DemoPaths,
  network: Network,
  shown: {
    readonly draftId: string | undefined;
    readonly approvals: number;
    /** undefined: the repository has no log to audit. */
    readonly auditDays: AuditDays | undefined;
  },
): void {
  const { draftId, auditDays } = shown;
  const cairn = cairnCommand();
  const rel = (path: string) => relative(process.cwd(), path) || '.';
  const [a, b] = network.mirrors;
  io.stdout('\nThe network is running:');
  io.stdout(`   origin     ${network.origin.url}   publishers push and sign here`);
  for (const m of network.mirrors) {
    io.stdout(`   ${m.name.padEnd(10)} ${m.edge.url}   serves ${rel(paths.repository)}, verified`);
  }
  io.stdout(`   logs       ${rel(paths.log)}`);
  io.stdout('\nTry, in another terminal:');
  const mirrorFlags = network.mirrors.map((m) => `--mirror ${m.name}=${m.edge.url}`).join(' ');
  const tries: [string, string][] = [
    [`curl ${a?.edge.url ?? ''}/health`, "a mirror's health: its name and the timestamp it serves"],
    [
      `curl -sI ${b?.edge.url ?? ''}/metadata/timestamp.json`,
      'the HTTP a client sees: ETag, Cache-Control, X-Cairn-Mirror',
    ],
    [
      `${cairn} status --origin ${network.origin.url}`,
      "the origin's versions, and the thief's draft",
    ],
    [
      `CAIRN_PASSPHRASE=${DEMO_PASSPHRASE} ${cairn} release show ${draftId ?? 'ID'} --origin ${network.origin.url} --key ${rel(join(paths.keys, 'bob.key'))}`,
      "the thief's draft: what it changes, and its 1 signature of 2",
    ],
    [
      `${cairn} update --dir ${rel(paths.install)} --state ${rel(paths.state)} ${mirrorFlags}`,
      "the demo client's update, as a command: up to date, until a new release",
    ],
    ...(auditDays === undefined || a === undefined
      ? []
      : ([
          [
            `${cairn} monitor ${monitorArgs(paths, namedMirrors(network), shown.approvals, rel).join(' ')}`,
            `the demo's monitor check, as a command: it must extend the checkpoint kept in ${rel(paths.monitor)}; add --interval 10 to keep watching`,
          ],
          [
            `${cairn} audit ${auditArgs(paths, { name: a.name, url: a.edge.url }, auditDays, rel).join(' ')}`,
            'the audit report again, from public data alone: the same files, byte for byte, until the log grows',
          ],
        ] satisfies [string, string][])),
    [
      `${cairn} mirror serve --dir ${rel(paths.repository)} --listen 127.0.0.1:0 --name my-mirror --trusted-root ${rel(paths.trustedRoot)}`,
      'a third mirror of your own',
    ],
    [
      `${cairn} demo${paths.dir === resolve('.cairn-demo') ? '' : ` --dir ${rel(paths.dir)}`}`,
      'after Ctrl-C: the next release, as a delta',
    ],
  ];
  for (const [command, what] of tries) {
    io.stdout(`   ${command}`);
    io.stdout(`      ${what}`);
  }
  io.stdout('\nCtrl-C stops the network.');
}

// ---------------------------------------------------------------------------------------------
// cairn demo

function parseDemoArgs(args: readonly string[]) {
  try {
    return parseArgs({
      args: [...args],
      options: {
        dir: { type: 'string' },
        'no-wait': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (e) {
    throw new UsageError(`cairn demo: ${(e as Error).message} (usage: ${USAGE})`);
  }
}

/** The targets version the origin has published, 0 before the first release. */
async function publishedVersion(network: Network, keys: DemoKeys): Promise<number> {
  const status = await new PublisherClient(network.origin.url, keys.alice).status();
  return status.targets?.version ?? 0;
}

export async function runDemo(args: readonly string[], io: CliIo): Promise<number> {
  const values = parseDemoArgs(args);
  if (values.help === true) {
    io.stdout(HELP);
    return 0;
  }
  const noWait = values['no-wait'] === true || (process.env[NO_WAIT_VARIABLE] ?? '') !== '';
  const paths = demoPaths(resolve(values.dir ?? '.cairn-demo'));
  const started = performance.now();
  const state = await prepareDir(paths);
  io.stdout(`Cairn demo: the whole network on this machine, kept in ${paths.dir}`);

  io.stdout('\n1. The repository');
  let keys: DemoKeys;
  if (state === 'new') {
    keys = await createKeys(paths);
    await writeFile(paths.config, `${JSON.stringify(ORIGIN_CONFIG, null, 2)}\n`);
    const config = await originConfig(paths);
    await initRepository(openStore(config.storage), {
      rootSigners: [keys['root-1'], keys['root-2']],
      rootThreshold: config.policy.thresholds.root,
      publishers: (['alice', 'bob'] as const).map((name) => ({
        keyid: keys[name].keyid,
        key: keys[name].publicKey,
        name,
      })),
      targetsThreshold: config.policy.thresholds.targets,
      snapshotKey: { keyid: keys.snapshot.keyid, key: keys.snapshot.publicKey },
      timestampKey: { keyid: keys.timestamp.keyid, key: keys.timestamp.publicKey },
      rootExpiry: config.policy.expiry.root,
      now: new Date(),
      log: keys.log === undefined ? undefined : { name: DEMO_LOG_NAME, key: keys.log },
    });
    io.stdout(
      `   new: root v1 in ${paths.repository}, signed by 2 root keys (a new root needs both)`,
    );
  } else {
    keys = await readKeys(paths);
    io.stdout(`   reused: the repository in ${paths.repository} and its keys`);
  }
  const short = (s: Ed25519Signer) => s.keyid.slice(0, 12);
  io.stdout(
    `   publishers alice (${short(keys.alice)}) and bob (${short(keys.bob)}): both must sign every release — the two-person rule, enforced by signatures`,
  );
  io.stdout(
    `   the origin's online keys sign snapshot (${short(keys.snapshot)}) and timestamp (${short(keys.timestamp)})`,
  );
  if (keys.log !== undefined) {
    io.stdout(
      `   every version it publishes goes first to the transparency log ${DEMO_LOG_NAME} (key ${short(keys.log)}, declared in root v1), served by every mirror under log/`,
    );
  }
  io.stdout(
    `   these are demo keys in ${paths.keys}, under the passphrase "${DEMO_PASSPHRASE}": never use them for real data`,
  );

  const config = await originConfig(paths);
  const network = await startNetwork(paths, config);
  let draftId: string | undefined;
  try {
    io.stdout('\n2. The network, on 127.0.0.1');
    io.stdout(
      `   origin     ${network.origin.url}   publishers push and sign here; it writes the repository directory`,
    );
    for (const m of network.mirrors) {
      io.stdout(
        `   ${m.name.padEnd(10)} ${m.edge.url}   an edge mirror on Node over that directory; checks all metadata against root v1 before serving it`,
      );
    }

    let step = 3;
    const before = await publishedVersion(network, keys);
    if (before === 0) {
      await publishRelease(io, paths, network, keys, 1, step++);
      await runUpdate(
        io,
        paths,
        network,
        step++,
        'The client updates through the mirrors; all it trusts is root v1, shipped with it',
      );
    }
    await publishRelease(io, paths, network, keys, Math.max(before, 1) + 1, step++);
    await runUpdate(
      io,
      paths,
      network,
      step++,
      before === 0
        ? 'The client updates again: deltas'
        : 'The client updates through the mirrors, from the release it installed last time',
    );

    // A directory made before the demo had a transparency log has nothing for the log's
    // watchers to check: its run skips them.
    const logged = keys.log !== undefined;
    const approvals = config.policy.thresholds.targets;
    if (logged && !(await runMonitorStep(io, paths, network, approvals, step++))) return 1;

    const rogueStorage = join(paths.attack, 'mirror-x');
    await mkdir(rogueStorage, { recursive: true });
    const rogueEdge = await startEdge({
      config: parseEdgeConfig({ CAIRN_MIRROR_NAME: 'mirror-x', CAIRN_TIMESTAMP_MAX_AGE: '0' }),
      store: await storeFromOptions({ dir: rogueStorage }),
      log: (entry) => network.log('mirror-x', entry),
    });
    try {
      const attacks: Attacks = {
        network,
        paths,
        keys,
        rogue: { name: 'mirror-x', url: rogueEdge.url, storage: rogueStorage },
        threshold: approvals,
      };
      if (!(await attackTamperedFile(io, attacks, step++))) return 1;
      const stolen = await attackStolenKey(io, attacks, step++);
      if (stolen === undefined) return 1;
      if (logged && !(await attackUnloggedRelease(io, attacks, step++, stolen))) return 1;
      draftId = (await new PublisherClient(network.origin.url, keys.alice).status()).draft?.id;
    } finally {
      await rogueEdge.close();
    }

    let auditDays: AuditDays | undefined;
    if (logged) {
      auditDays = await writeAudit(io, paths, network, step++);
      if (auditDays === undefined) return 1;
    }

    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    if (noWait) {
      io.stdout(`\n✔ done in ${seconds} s (--no-wait: the network stops here)`);
      return 0;
    }
    io.stdout(`\n✔ done in ${seconds} s`);
    // Listening before the line that invites Ctrl-C: a signal sent on reading it must count.
    const stop = untilSignal();
    printRunning(io, paths, network, { draftId, approvals, auditDays });
    const signal = await stop;
    io.stdout(`\n${signal}: stopping the network`);
    await network.close();
    io.stdout('✔ stopped');
    return 0;
  } finally {
    await network.close();
  }
}
