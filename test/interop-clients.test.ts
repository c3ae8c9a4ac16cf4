// A repository built and signed by our code (RepositorySimulator over @cairn/verify's builders
// and signers), consumed by TUF clients no one here wrote: tuf-js 6.0.2's Updater, in this
// process, and python-tuf 7.0.1's ngclient.Updater, in the pinned venv
// (test/fixtures/interop/ngclient_download.py). Each client keeps its own metadata directory
// across releases, as an installed client would.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Updater as TufjsUpdater } from 'tuf-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flipSignatureByte } from './support/foreign-repository.js';
import { runPython } from './support/python.js';
import { RepositorySimulator, newSigner } from './support/repository-simulator.js';

const ngclientScript = fileURLToPath(
  new URL('./fixtures/interop/ngclient_download.py', import.meta.url),
);

const README = 'readme.txt';
/** A target path with directories: clients must hash-prefix only the last segment. */
const DATABASE = 'products/av/daily.cvd';
const README_BYTES = new TextEncoder().encode('Cairn: signed update delivery.\n');
const RELEASE_1 = new TextEncoder().encode('signature database, release 1\n'.repeat(64));
const RELEASE_2 = new TextEncoder().encode('signature database, release 2 (hotfix)\n'.repeat(80));

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

interface Download {
  /** The file's name in the client's target directory. */
  file: string;
  length: number;
  sha256: string;
}

/** What one client run ended with; the same shape from both clients. */
interface ClientRun {
  downloads?: Record<string, Download>;
  error?: { type: string; message: string };
  /** Role file name (without .json) -> version, for every *.json in the metadata dir. */
  trusted: Record<string, number>;
}

interface ClientDirs {
  metadataDir: string;
  targetDir: string;
}

async function trustedVersions(metadataDir: string): Promise<Record<string, number>> {
  const versions: Record<string, number> = {};
  for (const name of (await readdir(metadataDir)).sort()) {
    if (!name.endsWith('.json')) continue;
    const doc = JSON.parse(await readFile(join(metadataDir, name), 'utf8')) as {
      signed: { version: number };
    };
    versions[name.slice(0, -'.json'.length)] = doc.signed.version;
  }
  return versions;
}

async function runTufjs(
  sim: RepositorySimulator,
  dirs: ClientDirs,
  targets: string[],
): Promise<ClientRun> {
  const run: ClientRun = { trusted: {} };
  try {
    const updater = new TufjsUpdater({
      metadataDir: dirs.metadataDir,
      metadataBaseUrl: `${sim.url}metadata/`,
      targetDir: dirs.targetDir,
      targetBaseUrl: `${sim.url}targets/`,
      // No retries: a refused file must fail the run, not be asked for again.
      config: { fetchRetries: 0 },
    });
    await updater.refresh();
    const downloads: Record<string, Download> = {};
    for (const path of targets) {
      const info = await updater.getTargetInfo(path);
      if (info === undefined) throw new Error(`target ${path} is not listed by any trusted role`);
      const local = (await updater.findCachedTarget(info)) ?? (await updater.downloadTarget(info));
      const bytes = new Uint8Array(await readFile(local));
      downloads[path] = {
        file: local.slice(dirs.targetDir.length + 1),
        length: bytes.length,
        sha256: sha256(bytes),
      };
    }
    run.downloads = downloads;
  } catch (e) {
    // tuf-js's error classes do not set `name`; the class is what says what went wrong.
    const error = e instanceof Error ? e : new Error(String(e));
    run.error = { type: error.constructor.name, message: error.message };
  }
  run.trusted = await trustedVersions(dirs.metadataDir);
  return run;
}

async function runNgclient(
  sim: RepositorySimulator,
  dirs: ClientDirs,
  targets: string[],
  bootstrap: string | null,
): Promise<ClientRun> {
  const result = await runPython(ngclientScript, [], {
    input: JSON.stringify({
      metadata_url: `${sim.url}metadata/`,
      targets_url: `${sim.url}targets/`,
      metadata_dir: dirs.metadataDir,
      target_dir: dirs.targetDir,
      bootstrap,
      targets,
    }),
  });
  if (result.code !== 0 && result.code !== 1) {
    throw new Error(`ngclient_download.py exited with ${result.code}:\n${result.stderr}`);
  }
  const run = JSON.parse(result.stdout) as ClientRun;
  // Exit code and output must tell the same story.
  expect(Object.keys(run).sort()).toEqual(
    result.code === 0 ? ['downloads', 'trusted'] : ['error', 'trusted'],
  );
  return run;
}

describe(
  'a repository signed by @cairn/verify, read by tuf-js and python-tuf',
  { timeout: 60_000 },
  () => {
    let sim: RepositorySimulator;
    let work: string;
    /** Root v1, the trust anchor both clients are installed with. */
    let rootV1: string;
    let tufjs: ClientDirs;
    let ngclient: ClientDirs;

    async function clientDirs(name: string): Promise<ClientDirs> {
      const dirs = {
        metadataDir: join(work, name, 'metadata'),
        targetDir: join(work, name, 'targets'),
      };
      await mkdir(dirs.metadataDir, { recursive: true });
      await mkdir(dirs.targetDir, { recursive: true });
      return dirs;
    }

    /** tuf-js has no bootstrap argument: its trust anchor is metadataDir/root.json. */
    async function installTufjs(name: string): Promise<ClientDirs> {
      const dirs = await clientDirs(name);
      await writeFile(join(dirs.metadataDir, 'root.json'), sim.rootBytes(1));
      return dirs;
    }

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'cairn-interop-clients-'));
      // Top-level roles on ECDSA P-256 keys; the delegated role (and, later, the new root key)
      // on ed25519 keys: both key types every client must verify.
      sim = await RepositorySimulator.create({ keyKind: 'ecdsa' });
      await sim.delegate('targets', { name: 'products', paths: ['products/*/*'] });
      sim.addTarget(README, README_BYTES);
      sim.addTarget(DATABASE, RELEASE_1, 'products');
      await sim.publish();
      await sim.serve();
      rootV1 = join(work, '1.root.json');
      await writeFile(rootV1, sim.rootBytes(1));
      tufjs = await installTufjs('tufjs');
      ngclient = await clientDirs('ngclient');
    });

    afterAll(async () => {
      await sim.close();
      await rm(work, { recursive: true, force: true });
    });

    const release1 = {
      downloads: {
        [README]: { file: 'readme.txt', length: README_BYTES.length, sha256: sha256(README_BYTES) },
        [DATABASE]: {
          file: 'products%2Fav%2Fdaily.cvd',
          length: RELEASE_1.length,
          sha256: sha256(RELEASE_1),
        },
      },
      trusted: { products: 1, root: 1, snapshot: 2, targets: 2, timestamp: 2 },
    };

    it('the repository signs with both ECDSA P-256 and ed25519 keys', () => {
      const kinds = (role: string) => sim.signersOf(role).map((s) => s.publicKey.scheme);
      expect(['root', 'timestamp', 'snapshot', 'targets'].map(kinds)).toEqual([
        ['ecdsa-sha2-nistp256'],
        ['ecdsa-sha2-nistp256'],
        ['ecdsa-sha2-nistp256'],
        ['ecdsa-sha2-nistp256'],
      ]);
      expect(kinds('products')).toEqual(['ed25519']);
    });

    it('tuf-js refreshes and downloads release 1, through the delegation', async () => {
      const start = sim.requests.length;
      expect(await runTufjs(sim, tufjs, [README, DATABASE])).toEqual(release1);
      expect(sim.requests.slice(start)).toEqual([
        'metadata/2.root.json',
        'metadata/timestamp.json',
        'metadata/2.snapshot.json',
        'metadata/2.targets.json',
        `targets/${sha256(README_BYTES)}.readme.txt`,
        'metadata/1.products.json',
        `targets/products/av/${sha256(RELEASE_1)}.daily.cvd`,
      ]);
    });

    it('python-tuf refreshes and downloads release 1, through the delegation', async () => {
      const start = sim.requests.length;
      expect(await runNgclient(sim, ngclient, [README, DATABASE], rootV1)).toEqual(release1);
      expect(sim.requests.slice(start)).toEqual([
        'metadata/2.root.json',
        'metadata/timestamp.json',
        'metadata/2.snapshot.json',
        'metadata/2.targets.json',
        `targets/${sha256(README_BYTES)}.readme.txt`,
        'metadata/1.products.json',
        `targets/products/av/${sha256(RELEASE_1)}.daily.cvd`,
      ]);
    });

    it('both update to exactly release 2, across a root rotation signed by old and new keys', async () => {
      await sim.rotate('root', [await newSigner('ed25519')]);
      const rootV2 = await sim.publishRoot();
      expect(rootV2.signatures.length).toBe(2);
      sim.addTarget(DATABASE, RELEASE_2, 'products');
      await sim.publish();

      const release2 = {
        downloads: {
          ...release1.downloads,
          [DATABASE]: {
            file: 'products%2Fav%2Fdaily.cvd',
            length: RELEASE_2.length,
            sha256: sha256(RELEASE_2),
          },
        },
        trusted: { products: 2, root: 2, snapshot: 3, targets: 2, timestamp: 3 },
      };
      // Both clients read the unchanged targets v2 from their own disk and keep readme.txt.
      const expectedRequests = [
        'metadata/2.root.json',
        'metadata/3.root.json',
        'metadata/timestamp.json',
        'metadata/3.snapshot.json',
        'metadata/2.products.json',
        `targets/products/av/${sha256(RELEASE_2)}.daily.cvd`,
      ];

      let start = sim.requests.length;
      expect(await runTufjs(sim, tufjs, [README, DATABASE])).toEqual(release2);
      expect(sim.requests.slice(start)).toEqual(expectedRequests);

      start = sim.requests.length;
      expect(await runNgclient(sim, ngclient, [README, DATABASE], null)).toEqual(release2);
      expect(sim.requests.slice(start)).toEqual(expectedRequests);
      // python-tuf keeps every root it accepted; root.json points at the newest.
      expect((await readdir(join(ngclient.metadataDir, 'root_history'))).sort()).toEqual([
        '1.root.json',
        '2.root.json',
      ]);
    });

    it('both refuse a tampered target and keep nothing of it', async () => {
      const path = `targets/products/av/${sha256(RELEASE_2)}.daily.cvd`;
      const tampered = RELEASE_2.slice();
      tampered[7] = (tampered[7] ?? 0) ^ 0x01;
      sim.overrides = [(p) => (p === path ? { status: 200, body: tampered } : undefined)];
      try {
        const trusted = { products: 2, root: 2, snapshot: 3, targets: 2, timestamp: 3 };
        const tufjsFresh = await installTufjs('tufjs-tampered-target');
        expect(await runTufjs(sim, tufjsFresh, [DATABASE])).toEqual({
          error: {
            type: 'LengthOrHashMismatchError',
            message: `Expected hash ${sha256(RELEASE_2)} but got ${sha256(tampered)}`,
          },
          trusted,
        });
        expect(await readdir(tufjsFresh.targetDir)).toEqual([]);

        const ngFresh = await clientDirs('ngclient-tampered-target');
        const run = await runNgclient(sim, ngFresh, [DATABASE], rootV1);
        expect(run).toEqual({
          error: { type: 'LengthOrHashMismatchError', message: run.error?.message },
          trusted,
        });
        expect(run.error?.message).toContain(sha256(RELEASE_2));
        expect(await readdir(ngFresh.targetDir)).toEqual([]);
      } finally {
        sim.overrides = [];
      }
    });

    it('both refuse a timestamp whose signature has one byte flipped', async () => {
      const timestamp = sim.files.get('metadata/timestamp.json') ?? new Uint8Array();
      const sig = sim.latest.get('timestamp')?.signatures[0]?.sig ?? '';
      const forged = flipSignatureByte(timestamp, sig);
      sim.overrides = [
        (p) => (p === 'metadata/timestamp.json' ? { status: 200, body: forged } : undefined),
      ];
      try {
        const tufjsFresh = await installTufjs('tufjs-forged-timestamp');
        expect(await runTufjs(sim, tufjsFresh, [DATABASE])).toEqual({
          error: { type: 'UnsignedMetadataError', message: 'timestamp was signed by 0/1 keys' },
          trusted: { root: 2 },
        });

        const ngFresh = await clientDirs('ngclient-forged-timestamp');
        expect(await runNgclient(sim, ngFresh, [DATABASE], rootV1)).toEqual({
          error: {
            type: 'UnsignedMetadataError',
            message: 'timestamp was signed by 0/1 keys',
          },
          trusted: { root: 2 },
        });
      } finally {
        sim.overrides = [];
      }
    });
  },
);
