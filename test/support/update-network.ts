// A whole delivery network for updater tests and the update benchmark, every part real: MinIO
// (S3 API), an origin (in this process, over 127.0.0.1) publishing signature databases into
// its bucket with deltas, edges on Node over S3 buckets — one direct on the origin's bucket,
// the others sync mirrors with buckets of their own, each copying from the direct edge after
// every release unless frozen (a stale mirror) — and a fault proxy in front of each edge, whose
// URL is the mirror's address as clients are given it.
//
// Also: the generated databases (records, ~1% changed per release), client directories, and a
// child process that runs one update and can crash itself at a chosen moment or meet a full disk.
//
// Imported by bench/ too (Node type stripping): erasable syntax only, `.ts` relative imports.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { UpdateEvent, UpdateReport, UpdaterConfig } from '@cairn/client/update';
import { nodeHashPort } from '@cairn/client/node-hash';
import type { EdgeLog } from '@cairn/edge/app';
import { parseEdgeConfig } from '@cairn/edge/config';
import { startEdge, type RunningEdge } from '@cairn/edge/node';
import { syncMirror } from '@cairn/edge/sync';
import { initRepository } from '@cairn/origin/admin';
import type { Policy } from '@cairn/origin/context';
import { createLogger } from '@cairn/origin/log';
import { PublisherClient } from '@cairn/origin/publisher-client';
import { serveOrigin, type RunningOrigin } from '@cairn/origin/server';
import { OriginService } from '@cairn/origin/service';
import type { BlobStore } from '@cairn/storage/blob-store';
import { S3BlobStore } from '@cairn/storage/s3-store';
import {
  createBucket,
  minioFromEnv,
  removeBucket,
  startMinio,
  uniqueBucketName,
  type MinioConnection,
  type MinioServer,
} from '@cairn/storage/testing/minio';
import { Metadata, type TargetFile, type Targets, type Timestamp } from '@cairn/verify/metadata';
import { Ed25519Signer, type Signer } from '@cairn/verify/signer';
import { FaultProxy } from './fault-proxy.ts';

const DAY = 86_400_000;

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Signature databases

/** mulberry32: the same bytes on every run, so failures reproduce. */
class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  uint32(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, n). */
  below(n: number): number {
    return Math.floor((this.uint32() / 0x1_0000_0000) * n);
  }

  unit(): number {
    return this.uint32() / 0x1_0000_0000;
  }

  hex(digits: number): string {
    let text = '';
    while (text.length < digits) text += this.uint32().toString(16).padStart(8, '0');
    return text.slice(0, digits);
  }
}

const FAMILIES = ['Agent', 'Emotet', 'Zbot', 'Generic', 'Qakbot', 'Mirai', 'Remcos', 'Dridex'];
const PLATFORMS = ['Win', 'Unix', 'Osx', 'Doc', 'Pdf', 'Html', 'Js', 'Andr'];

interface SignatureRecord {
  /** The top 48 bits of the sample's sha256: the sort key. */
  readonly prefix: number;
  readonly line: string;
}

/**
 * A ClamAV-style hash database (`sha256:size:Platform.Family-id-rev:flevel` lines of ~100
 * bytes, sorted by hash) that evolves release by release: `next()` removes, revises (same hash,
 * new size, revision and flevel) or adds after about `changeShare` of the records, a third each,
 * at random places.
 */
export class SignatureDatabase {
  readonly #random: Random;
  #records: SignatureRecord[];

  constructor(seed: number, approximateBytes: number) {
    this.#random = new Random(seed);
    const count = Math.max(1, Math.round(approximateBytes / 100));
    const gap = Math.floor(2 ** 48 / (count + 1));
    this.#records = [];
    let prefix = 0;
    for (let i = 0; i < count; i++) {
      prefix += 2 + this.#random.below(2 * gap - 3);
      this.#records.push(this.#record(prefix));
    }
  }

  get records(): number {
    return this.#records.length;
  }

  #record(prefix: number, revision = 0): SignatureRecord {
    const r = this.#random;
    const name = `${PLATFORMS[r.below(PLATFORMS.length)]}.Trojan.${FAMILIES[r.below(FAMILIES.length)]}-${1_000_000 + r.below(9_000_000)}-${revision}`;
    const size = Math.floor(100 * 10 ** (r.unit() * 5));
    const line = `${prefix.toString(16).padStart(12, '0')}${r.hex(52)}:${size}:${name}:${70 + r.below(30)}\n`;
    return { prefix, line };
  }

  /** The next release's database: about `changeShare` of the records changed. */
  next(changeShare = 0.01): void {
    const r = this.#random;
    const out: SignatureRecord[] = [];
    const records = this.#records;
    for (let i = 0; i < records.length; i++) {
      const record = records[i] as SignatureRecord;
      if (r.unit() >= changeShare) {
        out.push(record);
        continue;
      }
      const kind = r.below(3);
      if (kind === 0) continue; // removed
      if (kind === 1) {
        const revised = this.#record(record.prefix, 1 + r.below(9));
        // The hash stays; size, name revision and flevel change.
        out.push({
          prefix: record.prefix,
          line: record.line.slice(0, 64) + revised.line.slice(64),
        });
        continue;
      }
      out.push(record);
      const following = records[i + 1]?.prefix ?? record.prefix + 2 ** 20;
      if (following - record.prefix >= 2) {
        out.push(this.#record(record.prefix + 1 + r.below(following - record.prefix - 1)));
      }
    }
    this.#records = out;
  }

  bytes(): Uint8Array {
    return new TextEncoder().encode(this.#records.map((record) => record.line).join(''));
  }
}

// ---------------------------------------------------------------------------------------------
// The network

export interface DatabaseFile {
  /** The TUF target path, e.g. `main.cvd` or `daily/daily.cvd`. */
  readonly path: string;
  readonly approximateBytes: number;
  readonly seed: number;
}

export const DEFAULT_FILES: readonly DatabaseFile[] = [
  { path: 'main.cvd', approximateBytes: 3_000_000, seed: 11 },
  { path: 'daily/daily.cvd', approximateBytes: 300_000, seed: 12 },
];

export interface PublishedRelease {
  /** The targets metadata version: release N of the network is targets version N. */
  readonly version: number;
  /** Target path → bytes (deltas excluded). */
  readonly files: ReadonlyMap<string, Uint8Array>;
  readonly sha256: ReadonlyMap<string, string>;
  /** `metadata/timestamp.json` as published with this release. */
  readonly timestamp: Uint8Array;
  readonly timestampVersion: number;
  /** The signed targets metadata of this release, deltas included. */
  readonly targets: Metadata<Targets>;
}

export type MirrorName = 'a' | 'b' | 'c';

export interface NetworkMirror {
  readonly name: MirrorName;
  readonly mode: 'direct' | 'sync';
  readonly edge: RunningEdge;
  /** In front of the edge: give clients `proxy.url`. */
  readonly proxy: FaultProxy;
  readonly store: BlobStore;
  readonly bucket: string;
  /** A sync mirror copies each release as it is published unless frozen (stale). */
  following: boolean;
}

export interface NetworkOptions {
  /** Sync mirrors besides the direct edge `a`: 0, 1 (`b`) or 2 (`b`, `c`). Default 2. */
  readonly syncMirrors?: 0 | 1 | 2;
  readonly files?: readonly DatabaseFile[];
  /** Share of records changed per release. Default 0.01. */
  readonly changeShare?: number;
  /** The origin's `deltas.pastVersions`. Default 10, the most the origin's config accepts. */
  readonly pastVersions?: number;
  /** The origin's `deltas.maxFileBytes`. Default 256 MiB. */
  readonly deltaMaxFileBytes?: number;
  /** Told of each step (the benchmark prints them). */
  readonly log?: ((message: string) => void) | undefined;
  /**
   * Default true. False keeps only the latest release's bytes in memory (`files` of older
   * releases is emptied; their sha256 stay): the benchmark's 100 MB releases.
   */
  readonly keepReleaseBytes?: boolean;
  /** The edges' log lines; default dropped. */
  readonly edgeLog?: EdgeLog | undefined;
}

export interface PublishOptions {
  /** Which files change in this release (default all); the others keep their bytes. */
  readonly change?: readonly string[];
}

function policyOf(pastVersions: number, maxFileBytes: number): Policy {
  return {
    expiry: { root: 365 * DAY, targets: 90 * DAY, snapshot: 7 * DAY, timestamp: DAY },
    refreshBefore: { snapshot: 3 * DAY, timestamp: DAY / 2 },
    targetsWarning: 14 * DAY,
    deltas: { pastVersions, maxFileBytes },
    // Nothing is collected: a client ten releases behind still finds its delta's base.
    retention: { releases: 100, graceSeconds: 3600 },
    limits: { maxFiles: 100, maxFileBytes: 2 ** 31, maxReleaseBytes: 2 ** 33, maxNameBytes: 255 },
  };
}

export async function readObject(store: BlobStore, key: string): Promise<Uint8Array> {
  const result = await store.get(key);
  if (result.notModified) throw new Error(`${key}: unexpected 304`);
  return new Uint8Array(await new Response(result.body).arrayBuffer());
}

/** The path of a target on a mirror, as a request path: `/targets/{dir/}{sha256}.{name}`. */
export function targetRequestPath(path: string, sha256: string): string {
  const segments = path.split('/');
  const name = segments.pop() ?? '';
  return `/${['targets', ...segments, `${sha256}.${name}`].map(encodeURIComponent).join('/')}`;
}

/** The request path prefix of every delta of `path`: `/targets/_delta/{path}/`. */
export function deltaRequestPrefix(path: string): string {
  return `/${['targets', '_delta', ...path.split('/')].map(encodeURIComponent).join('/')}/`;
}

export interface OriginKeys {
  readonly root: readonly Signer[];
  readonly alice: Signer;
  readonly bob: Signer;
  readonly snapshot: Signer;
  readonly timestamp: Signer;
  /** Signs the transparency log's checkpoints; root version 1 declares it. */
  readonly log: Ed25519Signer;
}

/** The checkpoint origin line of the network's log. */
export const NETWORK_LOG_NAME = 'update-network.test/log';

export class UpdateNetwork {
  readonly minio: MinioConnection;
  /** metadata/1.root.json: what clients pin. */
  readonly trustedRoot: Uint8Array;
  readonly originStore: S3BlobStore;
  readonly mirrors: ReadonlyMap<MirrorName, NetworkMirror>;
  readonly releases: PublishedRelease[] = [];
  readonly #ownMinio: MinioServer | undefined;
  readonly #keys: OriginKeys;
  readonly #databases: Map<string, SignatureDatabase>;
  readonly #changeShare: number;
  readonly #work: string;
  readonly #log: (message: string) => void;
  readonly #keepReleaseBytes: boolean;
  #previousFiles: Map<string, Uint8Array> | undefined;
  #origin: RunningOrigin;
  #maxFileBytes: number;

  private constructor(init: {
    minio: MinioConnection;
    ownMinio: MinioServer | undefined;
    trustedRoot: Uint8Array;
    originStore: S3BlobStore;
    mirrors: Map<MirrorName, NetworkMirror>;
    keys: OriginKeys;
    databases: Map<string, SignatureDatabase>;
    changeShare: number;
    work: string;
    origin: RunningOrigin;
    maxFileBytes: number;
    log: (message: string) => void;
    keepReleaseBytes: boolean;
  }) {
    this.minio = init.minio;
    this.#ownMinio = init.ownMinio;
    this.trustedRoot = init.trustedRoot;
    this.originStore = init.originStore;
    this.mirrors = init.mirrors;
    this.#keys = init.keys;
    this.#databases = init.databases;
    this.#changeShare = init.changeShare;
    this.#work = init.work;
    this.#origin = init.origin;
    this.#maxFileBytes = init.maxFileBytes;
    this.#log = init.log;
    this.#keepReleaseBytes = init.keepReleaseBytes;
  }

  /**
   * MinIO (the one CAIRN_MINIO_* names, else a server of its own), the origin initialised with
   * two root keys and two publishers (both must sign a release), the edges and their proxies.
   * No release is published yet.
   */
  static async start(options: NetworkOptions = {}): Promise<UpdateNetwork> {
    const log = options.log ?? (() => undefined);
    const shared = minioFromEnv();
    const ownMinio = shared === undefined ? await startMinio() : undefined;
    const minio = shared ?? (ownMinio as MinioServer).connection;
    const s3 = (bucket: string) =>
      new S3BlobStore({
        bucket,
        endpoint: minio.endpoint,
        region: minio.region,
        credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
      });
    const originBucket = uniqueBucketName('update-origin');
    await createBucket(minio, originBucket);
    const originStore = s3(originBucket);

    const g = () => Ed25519Signer.generate();
    const keys: OriginKeys = {
      root: [await g(), await g()],
      alice: await g(),
      bob: await g(),
      snapshot: await g(),
      timestamp: await g(),
      log: await g(),
    };
    const ref = (s: Signer) => ({ keyid: s.keyid, key: s.publicKey });
    await initRepository(originStore, {
      rootSigners: keys.root,
      rootThreshold: 2,
      publishers: [
        { ...ref(keys.alice), name: 'alice' },
        { ...ref(keys.bob), name: 'bob' },
      ],
      targetsThreshold: 2,
      snapshotKey: ref(keys.snapshot),
      timestampKey: ref(keys.timestamp),
      rootExpiry: 365 * DAY,
      now: new Date(),
      log: { name: NETWORK_LOG_NAME, key: keys.log },
    });
    const trustedRoot = await readObject(originStore, 'metadata/1.root.json');
    const maxFileBytes = options.deltaMaxFileBytes ?? 256 * 2 ** 20;
    const origin = await UpdateNetwork.#serveOrigin(
      originStore,
      keys,
      policyOf(options.pastVersions ?? 10, maxFileBytes),
    );

    const mirrors = new Map<MirrorName, NetworkMirror>();
    const edgeLog = options.edgeLog ?? (() => undefined);
    const direct = await startEdge({
      config: parseEdgeConfig({ CAIRN_MIRROR_NAME: 'edge-a', CAIRN_MODE: 'direct' }),
      store: originStore,
      log: edgeLog,
    });
    mirrors.set('a', {
      name: 'a',
      mode: 'direct',
      edge: direct,
      proxy: await FaultProxy.start(direct.url),
      store: originStore,
      bucket: originBucket,
      following: true,
    });
    const syncNames: MirrorName[] = (['b', 'c'] as const).slice(0, options.syncMirrors ?? 2);
    for (const name of syncNames) {
      const bucket = uniqueBucketName(`update-mirror-${name}`);
      await createBucket(minio, bucket);
      const store = s3(bucket);
      const edge = await startEdge({
        config: parseEdgeConfig({
          CAIRN_MIRROR_NAME: `edge-${name}`,
          CAIRN_MODE: 'sync',
          CAIRN_UPSTREAM_URL: `${direct.url}/`,
          CAIRN_TRUSTED_ROOT: new TextDecoder().decode(trustedRoot),
        }),
        store,
        log: edgeLog,
      });
      mirrors.set(name, {
        name,
        mode: 'sync',
        edge,
        proxy: await FaultProxy.start(edge.url),
        store,
        bucket,
        following: true,
      });
    }

    const files = options.files ?? DEFAULT_FILES;
    const databases = new Map<string, SignatureDatabase>();
    for (const file of files) {
      databases.set(file.path, new SignatureDatabase(file.seed, file.approximateBytes));
    }
    return new UpdateNetwork({
      minio,
      ownMinio,
      trustedRoot,
      originStore,
      mirrors,
      keys,
      databases,
      changeShare: options.changeShare ?? 0.01,
      work: await mkdtemp(join(tmpdir(), 'cairn-update-network-')),
      origin,
      maxFileBytes,
      log,
      keepReleaseBytes: options.keepReleaseBytes ?? true,
    });
  }

  static async #serveOrigin(
    store: BlobStore,
    keys: OriginKeys,
    policy: Policy,
  ): Promise<RunningOrigin> {
    const service = new OriginService({
      store,
      online: { snapshot: [keys.snapshot], timestamp: [keys.timestamp] },
      logKey: keys.log,
      policy,
      authWindowMs: 300_000,
      logger: createLogger({ write: () => undefined }),
    });
    return serveOrigin(service, { host: '127.0.0.1', port: 0 });
  }

  /**
   * The network's signing keys, for attack tests: a thief with the publishers' and the online
   * keys (everything but the root keys), and the log key for a fork.
   */
  get keys(): OriginKeys {
    return this.#keys;
  }

  mirror(name: MirrorName): NetworkMirror {
    const mirror = this.mirrors.get(name);
    if (mirror === undefined) throw new Error(`no mirror ${name} in this network`);
    return mirror;
  }

  /** Every mirror's proxy URL, a first. */
  mirrorUrls(): string[] {
    return [...this.mirrors.values()].map((m) => m.proxy.url);
  }

  get latest(): PublishedRelease {
    const release = this.releases.at(-1);
    if (release === undefined) throw new Error('nothing is published yet');
    return release;
  }

  release(version: number): PublishedRelease {
    const release = this.releases[version - 1];
    if (release === undefined) throw new Error(`release ${version} is not published`);
    return release;
  }

  /**
   * The origin from now on makes deltas from this many past versions (it restarts on the same
   * bucket: it keeps no state of its own).
   */
  async setPastVersions(pastVersions: number): Promise<void> {
    await this.#origin.close();
    this.#origin = await UpdateNetwork.#serveOrigin(
      this.originStore,
      this.#keys,
      policyOf(pastVersions, this.#maxFileBytes),
    );
  }

  /**
   * Generates the next release (each database one step on, or only those in `change`), pushes
   * it, signs it with both publishers (the origin publishes it, deltas included), then syncs
   * every following mirror.
   */
  async publish(options: PublishOptions = {}): Promise<PublishedRelease> {
    const first = this.releases.length === 0;
    const contents = new Map<string, Uint8Array>();
    for (const [path, database] of this.#databases) {
      const changes = !first && (options.change === undefined || options.change.includes(path));
      if (changes) database.next(this.#changeShare);
      const previous = this.releases.at(-1)?.files.get(path);
      contents.set(path, changes || previous === undefined ? database.bytes() : previous);
    }
    const dir = join(this.#work, 'release');
    await rm(dir, { recursive: true, force: true });
    for (const [path, bytes] of contents) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), bytes);
    }
    const started = performance.now();
    const alice = new PublisherClient(this.#origin.url, this.#keys.alice);
    const draft = await alice.push(dir);
    await alice.sign(draft.id, dir);
    const result = await new PublisherClient(this.#origin.url, this.#keys.bob).sign(draft.id, dir);
    if (result.published === undefined) throw new Error('the release was not published');
    await rm(dir, { recursive: true, force: true });

    const timestamp = await readObject(this.originStore, 'metadata/timestamp.json');
    const timestampMetadata: Metadata<Timestamp> = Metadata.fromBytes(
      timestamp,
      'timestamp',
      'timestamp.json',
    );
    const version = this.releases.length + 1;
    const targets: Metadata<Targets> = Metadata.fromBytes(
      await readObject(this.originStore, `metadata/${version}.targets.json`),
      'targets',
      `${version}.targets.json`,
    );
    const sha256 = new Map([...contents].map(([path, bytes]) => [path, sha256Hex(bytes)]));
    for (const [path, hash] of sha256) {
      if (targets.signed.targets.get(path)?.hashes.sha256 !== hash) {
        throw new Error(`release ${version}: targets metadata does not list ${path} as published`);
      }
    }
    const release: PublishedRelease = {
      version,
      files: contents,
      sha256,
      timestamp,
      timestampVersion: timestampMetadata.signed.version,
      targets,
    };
    this.releases.push(release);
    if (!this.#keepReleaseBytes) this.#previousFiles?.clear();
    this.#previousFiles = contents;
    this.#log(`release ${version} published in ${Math.round(performance.now() - started)} ms`);
    for (const mirror of this.mirrors.values()) {
      if (mirror.mode === 'sync' && mirror.following) await this.sync(mirror.name);
    }
    return release;
  }

  /** Runs a sync mirror's job once: it copies what the direct edge serves. */
  async sync(name: MirrorName): Promise<void> {
    const mirror = this.mirror(name);
    if (mirror.mode !== 'sync') throw new Error(`mirror ${name} is not a sync mirror`);
    await syncMirror({
      store: mirror.store,
      upstreamUrl: `${this.mirror('a').edge.url}/`,
      trustedRoot: this.trustedRoot,
      hash: nodeHashPort,
    });
  }

  /** The mirror stops copying releases: it goes stale at the release it has. */
  freeze(name: MirrorName): void {
    this.mirror(name).following = false;
  }

  /** The delta `release` lists from `baseSha256` to its version of `path`, if any. */
  delta(release: PublishedRelease, path: string, baseSha256: string): TargetFile | undefined {
    return release.targets.signed.targets.get(`_delta/${path}/${baseSha256}`);
  }

  /** Every proxy back to honest, no latency, empty logs. */
  resetProxies(): void {
    for (const mirror of this.mirrors.values()) mirror.proxy.reset();
  }

  async close(): Promise<void> {
    for (const mirror of this.mirrors.values()) {
      await mirror.proxy.close();
      await mirror.edge.close();
    }
    await this.#origin.close();
    const buckets = new Set([...this.mirrors.values()].map((m) => m.bucket));
    for (const bucket of buckets) await removeBucket(this.minio, bucket).catch(() => undefined);
    await this.#ownMinio?.stop();
    await rm(this.#work, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Clients

/** Temp-file names an install leaves beside its target (install.ts). */
export const INSTALL_TEMP = /^\..+\.cairn-[0-9a-f]{12}\.tmp$/;

export class ClientDirs {
  readonly root: string;
  readonly installDir: string;
  readonly stateDir: string;

  constructor(root: string) {
    this.root = root;
    this.installDir = join(root, 'install');
    this.stateDir = join(root, 'state');
  }

  static async create(parent?: string): Promise<ClientDirs> {
    const root = await mkdtemp(join(parent ?? tmpdir(), 'cairn-update-client-'));
    return new ClientDirs(root);
  }

  /** The installed bytes of `path`, or undefined. */
  async read(path: string): Promise<Uint8Array | undefined> {
    try {
      return new Uint8Array(await readFile(join(this.installDir, path)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /** sha256 of every file under the install directory, temp files included: path → hex. */
  async installed(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    let entries;
    try {
      entries = await readdir(this.installDir, { recursive: true, withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
      throw e;
    }
    for (const entry of entries) {
      if (!entry.isFile()) continue;
      const path = join(entry.parentPath, entry.name);
      out[path.slice(this.installDir.length + 1)] = sha256Hex(await readFile(path));
    }
    return out;
  }

  async remove(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }
}

/** What `installed()` should equal for a client holding exactly `release`. */
export function expectedInstall(release: PublishedRelease): Record<string, string> {
  return Object.fromEntries(release.sha256);
}

// ---------------------------------------------------------------------------------------------
// An update in a child process

/** Serialisable UpdaterConfig: the root as base64. */
export type ChildConfig = Omit<UpdaterConfig, 'trustedRoot' | 'now'> & {
  readonly trustedRootBase64?: string | undefined;
};

export type ChildFault =
  /**
   * The disk holding `dirs` fills up at the first file opened for writing under `trigger`: from
   * then on every write into a file under `dirs` fails with ENOSPC.
   */
  | { readonly kind: 'disk-full'; readonly dirs: readonly string[]; readonly trigger: string }
  /** SIGKILL just before the rename that would put a new file at `path`: a crash mid-install. */
  | { readonly kind: 'kill-before-rename'; readonly path: string }
  /** SIGKILL once a progress event for `path` reports `share` of it: a crash mid-download. */
  | { readonly kind: 'kill-at-progress'; readonly path: string; readonly share: number };

export interface ChildResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly events: UpdateEvent[];
  readonly report: UpdateReport | undefined;
  readonly error: { name: string; code?: string; message: string } | undefined;
  /** process.cpuUsage() of the child at the end, microseconds (absent if it was killed). */
  readonly cpu: { user: number; system: number } | undefined;
  /** Milliseconds spent in createUpdater(...).update(), measured inside the child. */
  readonly updateMs: number | undefined;
  readonly stderr: string;
}

const CHILD_SCRIPT = `
import fsp from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
const input = JSON.parse(process.env.CAIRN_UPDATE_CHILD);
const fault = input.fault;
const out = (value) => process.stdout.write(JSON.stringify(value) + '\\n');
const die = () => { process.kill(process.pid, 'SIGKILL'); return new Promise(() => {}); };
if (fault && fault.kind === 'disk-full') {
  // The disk holding fault.dirs fills up at the first write into fault.trigger, and stays full.
  let full = false;
  const onDisk = (p) => fault.dirs.some((dir) => String(p).startsWith(dir + '/'));
  const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'),
    { code: 'ENOSPC', errno: -28, syscall: 'write' });
  const realOpen = fsp.open;
  fsp.open = async function (path, flags, mode) {
    const handle = await realOpen.call(this, path, flags, mode);
    if (onDisk(path) && /[wa+]/.test(String(flags ?? 'r'))) {
      if (String(path).startsWith(fault.trigger + '/')) full = true;
      for (const name of ['write', 'writev', 'writeFile', 'appendFile']) {
        const real = handle[name];
        handle[name] = async function (...args) {
          if (full) throw enospc();
          return real.apply(this, args);
        };
      }
    }
    return handle;
  };
  for (const name of ['writeFile', 'appendFile', 'copyFile']) {
    const real = fsp[name];
    fsp[name] = async function (...args) {
      if (full && onDisk(args[name === 'copyFile' ? 1 : 0])) throw enospc();
      return real.apply(this, args);
    };
  }
}
if (fault && fault.kind === 'kill-before-rename') {
  const realRename = fsp.rename;
  fsp.rename = async function (from, to) {
    if (String(to) === fault.path) return die();
    return realRename.call(this, from, to);
  };
}
syncBuiltinESMExports();
const { createUpdater } = await import('@cairn/client/update');
const { trustedRootBase64, ...rest } = input.config;
const config = {
  ...rest,
  ...(trustedRootBase64 === undefined ? {} : { trustedRoot: new Uint8Array(Buffer.from(trustedRootBase64, 'base64')) }),
};
const listener = (event) => {
  out({ event });
  if (fault && fault.kind === 'kill-at-progress' && event.type === 'progress' &&
      event.path === fault.path && event.bytes >= fault.share * event.total && event.bytes < event.total) {
    void die();
  }
};
const started = performance.now();
try {
  const report = await createUpdater(config, listener).update();
  out({ report, updateMs: performance.now() - started, cpu: process.cpuUsage() });
  process.exitCode = 0;
} catch (e) {
  out({ error: { name: e?.name, code: e?.code, message: String(e?.message ?? e) },
        updateMs: performance.now() - started, cpu: process.cpuUsage() });
  process.exitCode = 1;
}
`;

/** The repository's root directory: where `@cairn/client` resolves from. */
export const REPOSITORY_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Runs one `createUpdater(config).update()` in a fresh Node process, with `fault` arranged
 * inside it, and collects its events, report or error.
 */
export async function runUpdateInChild(
  config: ChildConfig,
  fault?: ChildFault,
  options: { timeoutMs?: number } = {},
): Promise<ChildResult> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD_SCRIPT], {
    cwd: REPOSITORY_ROOT,
    env: { ...process.env, CAIRN_UPDATE_CHILD: JSON.stringify({ config, fault }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((done) =>
    child.once('close', (c, s) => done([c, s])),
  );
  clearTimeout(timer);
  const events: UpdateEvent[] = [];
  let report: UpdateReport | undefined;
  let error: ChildResult['error'];
  let cpu: ChildResult['cpu'];
  let updateMs: number | undefined;
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    const value = JSON.parse(line) as {
      event?: UpdateEvent;
      report?: UpdateReport;
      error?: ChildResult['error'];
      cpu?: ChildResult['cpu'];
      updateMs?: number;
    };
    if (value.event !== undefined) events.push(value.event);
    if (value.report !== undefined) report = value.report;
    if (value.error !== undefined) error = value.error;
    if (value.cpu !== undefined) cpu = value.cpu;
    if (value.updateMs !== undefined) updateMs = value.updateMs;
  }
  return { code, signal, events, report, error, cpu, updateMs, stderr };
}
