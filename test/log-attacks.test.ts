// The transparency log against attackers, end to end: a real origin appending every root,
// targets and snapshot version to its log in MinIO, a direct edge on its bucket and a verified
// sync mirror with a bucket of its own (each behind a fault proxy), clients running
// `createUpdater` with log inclusion required (the default), and the built `cairn monitor`
// following the log through the mirrors as a child process. Each attack is checked from both
// sides: the client refuses it and installs nothing, and the monitor alerts with its exit code.
//
//   - a log entry altered, or removed, in the mirror's bucket;
//   - a release signed with stolen publisher and online keys, written straight into the
//     mirror's bucket without going through the log;
//   - a forked checkpoint, signed by the log key, served by a compromised mirror.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBlobStore } from '@cairn/storage/memory-store';
import type { BlobStore } from '@cairn/storage/blob-store';
import { createUpdater, type UpdateReport, type UpdaterConfig } from '@cairn/client/update';
import { isClientError } from '@cairn/client/errors';
import { parseCheckpoint } from '@cairn/tlog/checkpoint';
import { LogReader } from '@cairn/tlog/log-reader';
import { LogWriter } from '@cairn/tlog/log-writer';
import { parseEntry, encodeEntry } from '@cairn/tlog/entry';
import { createEd25519Signer, parseNote } from '@cairn/tlog/note';
import { entriesPath } from '@cairn/tlog/tiles';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signDocument, parseDocument } from './support/attacker.js';
import {
  ClientDirs,
  NETWORK_LOG_NAME,
  REPOSITORY_ROOT,
  UpdateNetwork,
  expectedInstall,
  readObject,
} from './support/update-network.js';

const CAIRN = join(REPOSITORY_ROOT, 'apps/cli/dist/main.js');

let network: UpdateNetwork;
let work: string;
let rootFile: string;
const clients: ClientDirs[] = [];

beforeAll(async () => {
  network = await UpdateNetwork.start({
    syncMirrors: 1,
    files: [{ path: 'main.cvd', seed: 7, approximateBytes: 64 * 1024 }],
  });
  await network.publish();
  await network.publish();
  work = await mkdtemp(join(tmpdir(), 'cairn-log-attacks-'));
  rootFile = join(work, '1.root.json');
  await writeFile(rootFile, network.trustedRoot);
}, 300_000);

afterAll(async () => {
  await network?.close();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

afterEach(async () => {
  network.resetProxies();
  for (const client of clients.splice(0)) await client.remove();
});

const a = () => network.mirror('a');
const b = () => network.mirror('b');

async function newClient(): Promise<ClientDirs> {
  const client = await ClientDirs.create();
  clients.push(client);
  return client;
}

function configFor(client: ClientDirs, mirrors: readonly string[]): UpdaterConfig {
  return {
    installDir: client.installDir,
    stateDir: client.stateDir,
    mirrors,
    trustedRoot: network.trustedRoot,
    requestTimeoutMs: 5_000,
    idleTimeoutMs: 3_000,
    probeTimeoutMs: 3_000,
  };
}

/** The update's report, or the ClientError code it failed with. */
async function update(
  client: ClientDirs,
  mirrors: readonly string[],
): Promise<{ report?: UpdateReport; code?: string; message?: string }> {
  try {
    return { report: await createUpdater(configFor(client, mirrors)).update() };
  } catch (e) {
    if (!isClientError(e)) throw e;
    return { code: e.code, message: e.message };
  }
}

interface MonitorRun {
  readonly exitCode: number | null;
  readonly report: { alerts: { code: string; mirror?: string; severity: string }[] };
}

/** One check by the built `cairn monitor --once --json`. */
async function monitor(mirrors: readonly string[], state?: string): Promise<MonitorRun> {
  const args = [CAIRN, 'monitor', '--root', rootFile, '--once', '--json', '--timeout', '10'];
  for (const m of mirrors) args.push('--mirror', m);
  if (state !== undefined) args.push('--state', state);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exitCode = await new Promise<number | null>((resolve) => child.on('close', resolve));
  let report: MonitorRun['report'];
  try {
    report = JSON.parse(stdout) as MonitorRun['report'];
  } catch {
    throw new Error(`cairn monitor printed no JSON (exit ${String(exitCode)}): ${stderr}`);
  }
  return { exitCode, report };
}

function alertCodes(run: MonitorRun, mirror?: string): string[] {
  return run.report.alerts
    .filter((alert) => mirror === undefined || alert.mirror === mirror)
    .map((alert) => alert.code)
    .sort();
}

async function bytesOf(store: BlobStore, key: string): Promise<Uint8Array> {
  return readObject(store, key);
}

/** The log's current checkpoint in a store, parsed (its signature is checked by the clients). */
async function checkpointIn(store: BlobStore) {
  return parseCheckpoint(parseNote(await bytesOf(store, 'log/checkpoint')).text);
}

/** Index of the entry logging `role` at `version` in the store's log. */
async function entryIndex(store: BlobStore, role: string, version: number): Promise<number> {
  const checkpoint = await checkpointIn(store);
  const reader = new LogReader((path) => bytesOf(store, `log/${path}`));
  const entries = await reader.entries(checkpoint, 0, checkpoint.size);
  const index = entries.findIndex((bytes) => {
    const entry = parseEntry(bytes);
    return entry.role === role && entry.version === version;
  });
  expect(index, `${role} v${String(version)} is logged`).toBeGreaterThanOrEqual(0);
  return index;
}

describe('the monitor and a client on the honest network', () => {
  it('see one consistent, complete log: no alert, exit 0; the client proves its release', async () => {
    const run = await monitor([a().proxy.url, b().proxy.url]);
    expect(alertCodes(run)).toEqual([]);
    expect(run.exitCode).toBe(0);
    const client = await newClient();
    const { report } = await update(client, [b().proxy.url]);
    // A client pinned to root v1 proves the one new file it accepts: the latest targets.
    expect(report?.log).toMatchObject({ origin: NETWORK_LOG_NAME, proofs: 1 });
    expect(await client.installed()).toEqual(expectedInstall(network.latest));
  });
});

describe('a log entry altered or removed in the mirror bucket', () => {
  it('altered: the client refuses the release (NOT_IN_LOG), the monitor reports LOG_INVALID', async () => {
    const store = b().store;
    const checkpoint = await checkpointIn(store);
    const index = await entryIndex(store, 'targets', network.latest.version);
    const bundleKey = `log/${entriesPath(0, checkpoint.size)}`;
    const original = await bytesOf(store, bundleKey);
    // One entry's recorded sha256 changed in place: the bundle keeps its length.
    const reader = new LogReader((path) => bytesOf(store, `log/${path}`));
    const entries = await reader.entries(checkpoint, 0, checkpoint.size);
    const entry = parseEntry(entries[index] as Uint8Array);
    const text = new TextDecoder().decode(original);
    const at = text.indexOf(entry.sha256);
    expect(at).toBeGreaterThan(0);
    await store.put(
      bundleKey,
      new TextEncoder().encode(text.replace(entry.sha256, 'f'.repeat(64))),
    );
    try {
      const client = await newClient();
      const result = await update(client, [b().proxy.url]);
      expect(result.code).toBe('NOT_IN_LOG');
      expect(result.message).toContain('does not verify');
      expect(await client.installed()).toEqual({});

      const run = await monitor([b().proxy.url]);
      expect(alertCodes(run, b().proxy.url)).toContain('LOG_INVALID');
      expect(run.exitCode).toBe(1);
    } finally {
      await store.put(bundleKey, original);
    }
  });

  it('removed: the client refuses the release (NOT_IN_LOG), the monitor reports LOG_INCOMPLETE', async () => {
    const store = b().store;
    const checkpoint = await checkpointIn(store);
    const bundleKey = `log/${entriesPath(0, checkpoint.size)}`;
    const original = await bytesOf(store, bundleKey);
    await store.delete(bundleKey);
    try {
      const client = await newClient();
      const result = await update(client, [b().proxy.url]);
      expect(result.code).toBe('NOT_IN_LOG');
      expect(await client.installed()).toEqual({});

      const run = await monitor([b().proxy.url]);
      expect(alertCodes(run, b().proxy.url)).toContain('LOG_INCOMPLETE');
      expect(run.exitCode).toBe(1);
    } finally {
      await store.put(bundleKey, original);
    }
    // Restored: the mirror serves a provable release again.
    const client = await newClient();
    expect((await update(client, [b().proxy.url])).report?.log?.proofs).toBe(1);
  });
});

describe('a forked checkpoint signed by the log key', () => {
  it('is a split view: the client holding the honest checkpoint fails hard, the monitor alerts', async () => {
    // The honest client holds the current checkpoint.
    const client = await newClient();
    await update(client, [a().proxy.url]);
    expect(await client.installed()).toEqual(expectedInstall(network.latest));

    // A fork: the same entries but the last one's time, appended by the stolen log key.
    const honest = a().store;
    const checkpoint = await checkpointIn(honest);
    const reader = new LogReader((path) => bytesOf(honest, `log/${path}`));
    const entries = await reader.entries(checkpoint, 0, checkpoint.size);
    const last = parseEntry(entries.at(-1) as Uint8Array);
    const forkedEntries = [
      ...entries.slice(0, -1),
      encodeEntry({ ...last, time: new Date(Date.parse(last.time) + 1000).toISOString() }),
    ];
    const forked = new MemoryBlobStore();
    const logSigner = await createEd25519Signer(
      NETWORK_LOG_NAME,
      network.keys.log.exportSecretKey(),
    );
    await new LogWriter({ store: forked, signer: logSigner }).append(forkedEntries);
    // Mirror b's proxy serves the forked log files instead of b's.
    const listing = await forked.list({ prefix: 'log/' });
    for (const object of listing.objects) {
      b().proxy.inject(`/${object.key}`, {
        kind: 'serve',
        body: await bytesOf(forked, object.key),
      });
    }

    const result = await update(client, [b().proxy.url]);
    expect(result.code).toBe('SPLIT_VIEW');
    expect(await client.installed()).toEqual(expectedInstall(network.latest));

    const run = await monitor([a().proxy.url, b().proxy.url]);
    expect(alertCodes(run)).toContain('SPLIT_VIEW');
    expect(run.exitCode).toBe(1);
  });
});

describe('a release signed with stolen keys, written straight into the mirror bucket', () => {
  it('is refused by the client (NOT_IN_LOG; the honest mirror serves the real release) and reported by the monitor', async () => {
    const store = b().store;
    const keys = network.keys;
    const release = network.latest;
    const evil = new TextEncoder().encode('a signature database that disables detection\n');
    const evilSha = createHash('sha256').update(evil).digest('hex');

    // targets v+1: main.cvd replaced, signed by both (stolen) publisher keys.
    const targetsDoc = parseDocument(
      await bytesOf(store, `metadata/${String(release.version)}.targets.json`),
    );
    const targetsSigned = structuredClone(targetsDoc.signed) as {
      version: number;
      targets: Record<string, unknown>;
    };
    targetsSigned.version = release.version + 1;
    targetsSigned.targets = {
      ...targetsSigned.targets,
      'main.cvd': { length: evil.length, hashes: { sha256: evilSha } },
    };
    const targetsBytes = await signDocument(targetsSigned, [keys.alice, keys.bob]);
    // snapshot v+1 and a timestamp naming it, signed by the (stolen) online keys.
    const timestampDoc = parseDocument(await bytesOf(store, 'metadata/timestamp.json'));
    const snapshotVersion = (timestampDoc.signed as { meta: Record<string, { version: number }> })
      .meta['snapshot.json']?.version as number;
    const snapshotDoc = parseDocument(
      await bytesOf(store, `metadata/${String(snapshotVersion)}.snapshot.json`),
    );
    const snapshotSigned = structuredClone(snapshotDoc.signed) as {
      version: number;
      meta: Record<string, Record<string, unknown>>;
    };
    snapshotSigned.version = snapshotVersion + 1;
    snapshotSigned.meta['targets.json'] = { version: release.version + 1 };
    const snapshotBytes = await signDocument(snapshotSigned, [keys.snapshot]);
    const timestampSigned = structuredClone(timestampDoc.signed) as {
      version: number;
      meta: Record<string, Record<string, unknown>>;
    };
    timestampSigned.version += 1;
    timestampSigned.meta['snapshot.json'] = {
      version: snapshotVersion + 1,
      length: snapshotBytes.length,
      hashes: { sha256: createHash('sha256').update(snapshotBytes).digest('hex') },
    };
    const timestampBytes = await signDocument(timestampSigned, [keys.timestamp]);
    await store.put(`targets/${evilSha}.main.cvd`, evil);
    await store.put(`metadata/${String(release.version + 1)}.targets.json`, targetsBytes);
    await store.put(`metadata/${String(snapshotVersion + 1)}.snapshot.json`, snapshotBytes);
    await store.put('metadata/timestamp.json', timestampBytes);
    // The verified edge rereads the stored timestamp at most once a second; its signatures are
    // all valid, so it serves the forged release (the edge checks TUF, not the log).
    await expect
      .poll(
        async () =>
          new Uint8Array(
            await (await fetch(`${b().edge.url}/metadata/timestamp.json`)).arrayBuffer(),
          ),
        { timeout: 10_000, interval: 250 },
      )
      .toEqual(timestampBytes);

    // Through the compromised mirror alone: refused, nothing installed.
    const alone = await newClient();
    const refused = await update(alone, [b().proxy.url]);
    expect(refused.code).toBe('NOT_IN_LOG');
    expect(refused.message).toContain(`targets v${String(release.version + 1)}`);
    expect(await alone.installed()).toEqual({});

    // With the honest mirror too, the compromised one first: refused there, the real release
    // installed from the other — the forged timestamp did not become the client's reference.
    const both = await newClient();
    const honest = await update(both, [b().proxy.url, a().proxy.url]);
    expect(honest.code).toBeUndefined();
    expect(await both.installed()).toEqual(expectedInstall(release));

    // The monitor reports the unlogged release on mirror b, and only there.
    const run = await monitor([a().proxy.url, b().proxy.url]);
    expect(alertCodes(run, b().proxy.url)).toContain('UNLOGGED_RELEASE');
    expect(alertCodes(run, a().proxy.url)).toEqual([]);
    expect(run.exitCode).toBe(1);
  });
});
