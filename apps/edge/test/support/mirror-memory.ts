/**
 * Test support for the mirror modes' unit tests: a small signed TUF repository written into an
 * in-memory BlobStore in the origin's layout and publication order, with every key at hand so
 * a test can sign what an attacker could not (an older timestamp, a rotated root) or forge what
 * one could (a timestamp under a key of their own). Tests that use it say "in-memory" in their
 * names; the origin-built repository (repository.ts) is what the integration tests use.
 *
 * Also: an upstream made of the edge app itself, called in-process through a fake `fetch`
 * that counts requests (no sockets), and a BlobStore wrapper that records or fails calls.
 */
import { createHash } from 'node:crypto';
import type {
  BlobStore,
  CopyOptions,
  GetOptions,
  GetResult,
  ListOptions,
  ListPage,
  ObjectInfo,
  PutBody,
  PutOptions,
} from '@cairn/storage/blob-store';
import { isStorageError } from '@cairn/storage/errors';
import { MemoryBlobStore } from '@cairn/storage/memory-store';
import { VerifyError } from '@cairn/verify/errors';
import { webHashPort } from '@cairn/verify/hash';
import { Metadata, Root, type MetaFile, type Timestamp } from '@cairn/verify/metadata';
import {
  buildRoot,
  buildSnapshot,
  buildTargets,
  buildTimestamp,
  describeMetadata,
  describeTarget,
} from '@cairn/verify/repository';
import { Ed25519Signer, signMetadata, type Signer } from '@cairn/verify/signer';
import type { MetadataStore } from '@cairn/verify/ports';
import { Updater } from '@cairn/verify/updater';
import { createEdgeApp } from '../../src/app.js';
import { parseEdgeConfig } from '../../src/config.js';
import { isEdgeError, type EdgeError } from '../../src/errors.js';
import { classifyPath, type RepoPath } from '../../src/paths.js';
import { StorageSource, type ObjectSource } from '../../src/source.js';
import { TestLog, createLogKey, type TestLogKey } from './log.js';

export const DAY = 86_400_000;
/** The repository's clock: every test passes `now: () => T0` (or later) to the edge. */
export const T0 = new Date('2030-01-01T00:00:00Z');

type TopRole = 'root' | 'timestamp' | 'snapshot' | 'targets';

export const sha256Hex = (bytes: Uint8Array): string =>
  createHash('sha256').update(bytes).digest('hex');

export const utf8 = (text: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(text);
export const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

export function targetKey(path: string, sha256: string): string {
  const slash = path.lastIndexOf('/');
  return `targets/${path.slice(0, slash + 1)}${sha256}.${path.slice(slash + 1)}`;
}

/** The storage key of target `path` whose content is `content`. */
export const contentKey = (path: string, content: string): string =>
  targetKey(path, sha256Hex(utf8(content)));

export async function readAll(store: BlobStore, key: string): Promise<Uint8Array> {
  const result = await store.get(key);
  if (result.notModified) throw new Error(`${key}: unexpected not-modified`);
  return new Uint8Array(await new Response(result.body).arrayBuffer());
}

export async function keysOf(store: BlobStore, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list({ prefix, cursor });
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.cursor;
  } while (cursor !== undefined);
  return keys.sort();
}

/** A consistent-snapshot repository in a MemoryBlobStore, one key per role. */
export class SignedRepository {
  readonly store = new MemoryBlobStore();
  readonly signers: Record<TopRole, Signer[]>;
  /** Every timestamp.json ever written, oldest first: a test can roll the bucket back. */
  readonly timestamps: Uint8Array[] = [];
  rootVersion = 0;
  targetsVersion = 0;
  snapshotVersion = 0;
  timestampVersion = 0;
  now = T0;
  /**
   * The repository's transparency log, when it has one: declared in every root, and every
   * root, targets and snapshot version appended before the timestamp that makes it visible.
   */
  log: TestLog | undefined;
  #rootSigners: Signer[] = [];
  #snapshotMeta: MetaFile | undefined;

  private constructor(signers: Record<TopRole, Signer[]>) {
    this.signers = signers;
  }

  /** Root v1 and a first release of `files`. */
  static async create(
    files: Record<string, string>,
    options: { log?: TestLogKey | undefined } = {},
  ): Promise<SignedRepository> {
    const g = () => Ed25519Signer.generate();
    const repo = new SignedRepository({
      root: [await g()],
      timestamp: [await g()],
      snapshot: [await g()],
      targets: [await g()],
    });
    if (options.log !== undefined) {
      repo.log = new TestLog(options.log, repo.store, () => repo.now);
    }
    await repo.publishRoot();
    await repo.release(files);
    return repo;
  }

  get trustedRoot(): Promise<Uint8Array> {
    return readAll(this.store, 'metadata/1.root.json');
  }

  /** A new root version (and root.json), signed by the old root keys and the new ones. */
  async publishRoot(options: { rotate?: readonly TopRole[] } = {}): Promise<Uint8Array> {
    for (const role of options.rotate ?? []) this.signers[role] = [await Ed25519Signer.generate()];
    this.rootVersion++;
    const spec = (role: TopRole) => ({
      keys: this.signers[role].map((s) => ({ keyid: s.keyid, publicKey: s.publicKey })),
      threshold: 1,
    });
    const built = buildRoot({
      version: this.rootVersion,
      expires: new Date(this.now.getTime() + 365 * DAY),
      roles: {
        root: spec('root'),
        timestamp: spec('timestamp'),
        snapshot: spec('snapshot'),
        targets: spec('targets'),
      },
    });
    const root =
      this.log === undefined
        ? built
        : new Root({
            specVersion: built.specVersion,
            version: built.version,
            expires: built.expires,
            consistentSnapshot: built.consistentSnapshot,
            keys: built.keys,
            roles: built.roles,
            extra: this.log.key.rootField,
          });
    const signers = [...new Set([...this.#rootSigners, ...this.signers.root])];
    const bytes = (await signMetadata(new Metadata<Root>(root), signers)).toBytes();
    this.#rootSigners = this.signers.root;
    await this.store.put(`metadata/${this.rootVersion}.root.json`, bytes);
    await this.log?.logMetadata('root', this.rootVersion, bytes);
    await this.store.put('metadata/root.json', bytes);
    return bytes;
  }

  /** Blobs, targets, snapshot, then timestamp: the origin's publication order. */
  async release(
    files: Record<string, string | Uint8Array>,
    options: { expires?: Date } = {},
  ): Promise<void> {
    const list = [];
    for (const [path, content] of Object.entries(files)) {
      const bytes = typeof content === 'string' ? utf8(content) : content;
      const info = await describeTarget(webHashPort, path, bytes);
      list.push(info);
      await this.store.put(targetKey(path, info.hashes.sha256 ?? ''), bytes);
    }
    this.targetsVersion++;
    const targets = (
      await signMetadata(
        new Metadata(
          buildTargets({
            version: this.targetsVersion,
            expires: new Date(this.now.getTime() + 30 * DAY),
            targets: list,
          }),
        ),
        this.signers.targets,
      )
    ).toBytes();
    await this.store.put(`metadata/${this.targetsVersion}.targets.json`, targets);
    this.snapshotVersion++;
    const snapshot = (
      await signMetadata(
        new Metadata(
          buildSnapshot({
            version: this.snapshotVersion,
            expires: new Date(this.now.getTime() + 7 * DAY),
            meta: {
              'targets.json': await describeMetadata(webHashPort, this.targetsVersion, targets, {
                length: true,
                hashes: true,
              }),
            },
          }),
        ),
        this.signers.snapshot,
      )
    ).toBytes();
    await this.store.put(`metadata/${this.snapshotVersion}.snapshot.json`, snapshot);
    await this.log?.logMetadata('targets', this.targetsVersion, targets);
    await this.log?.logMetadata('snapshot', this.snapshotVersion, snapshot);
    this.#snapshotMeta = await describeMetadata(webHashPort, this.snapshotVersion, snapshot, {
      length: true,
      hashes: true,
    });
    await this.publishTimestamp({ expires: options.expires });
  }

  /** Signs a timestamp (by default the next version, naming the current snapshot). */
  async signTimestamp(
    options: { version?: number; expires?: Date | undefined; signers?: Signer[] } = {},
  ): Promise<Uint8Array> {
    const meta = this.#snapshotMeta;
    if (meta === undefined) throw new Error('no snapshot yet');
    return (
      await signMetadata(
        new Metadata<Timestamp>(
          buildTimestamp({
            version: options.version ?? this.timestampVersion + 1,
            expires: options.expires ?? new Date(this.now.getTime() + DAY),
            snapshot: meta,
          }),
        ),
        options.signers ?? this.signers.timestamp,
      )
    ).toBytes();
  }

  /** A new timestamp version for the current snapshot (the origin's freeze-protection refresh). */
  async publishTimestamp(options: { expires?: Date | undefined } = {}): Promise<Uint8Array> {
    const bytes = await this.signTimestamp({ expires: options.expires });
    this.timestampVersion++;
    this.timestamps.push(bytes);
    await this.store.put('metadata/timestamp.json', bytes);
    return bytes;
  }

  read(key: string): Promise<Uint8Array> {
    return readAll(this.store, key);
  }

  /** Copies every object into `dest` (a bucket that starts as a copy of this one). */
  async copyTo(dest: BlobStore): Promise<void> {
    for (const key of await keysOf(this.store)) await dest.put(key, await this.read(key));
  }
}

export interface FakeUpstream {
  /** A `fetch` that answers from the edge app, in-process. */
  readonly fetch: typeof fetch;
  /** Every request: `METHOD path` plus ` (If-None-Match)` when conditional. */
  readonly requests: string[];
  /** Answers 503 to everything while true: an upstream that is down. */
  down: boolean;
}

/**
 * An upstream made of the edge app serving `store` directly (no sockets): the real HTTP
 * semantics (ETag, 304, 404), reached through a fake `fetch` that records every request.
 */
export function fakeUpstream(store: BlobStore): FakeUpstream {
  const app = createEdgeApp({
    config: parseEdgeConfig({ CAIRN_MIRROR_NAME: 'fake-upstream' }),
    source: new StorageSource(store, 5_000),
    log: () => undefined,
  });
  const upstream: FakeUpstream = {
    requests: [],
    down: false,
    fetch: async (input: string | URL | Request, init?: RequestInit) => {
      const request = new Request(input, init);
      const url = new URL(request.url);
      const conditional = request.headers.has('if-none-match') ? ' (If-None-Match)' : '';
      upstream.requests.push(`${request.method} ${url.pathname}${conditional}`);
      if (upstream.down) return new Response('down', { status: 503 });
      return app.fetch(request);
    },
  };
  return upstream;
}

/**
 * A fresh repository (a.txt and dir/b.txt; with a transparency log under `options.log`), its
 * fake upstream, and an empty recording mirror.
 */
export async function mirrorFixture(options: { log?: TestLogKey | undefined } = {}): Promise<{
  repo: SignedRepository;
  upstream: FakeUpstream;
  mirror: RecordingStore;
}> {
  const repo = await SignedRepository.create({ 'a.txt': 'alpha', 'dir/b.txt': 'beta' }, options);
  return { repo, upstream: fakeUpstream(repo.store), mirror: new RecordingStore() };
}

export function repoPath(p: string): RepoPath {
  const classified = classifyPath(p);
  if (classified === undefined) throw new Error(`${p}: not a repository path`);
  return classified;
}

/** The text a source serves at `p`. */
export async function bodyText(source: ObjectSource, p: string): Promise<string> {
  const object = await source.get(repoPath(p));
  return text(new Uint8Array(await new Response(object.body).arrayBuffer()));
}

/** The EdgeError `promise` rejects with; anything else (or no rejection) fails the test. */
async function edgeError(promise: Promise<unknown>): Promise<EdgeError> {
  try {
    await promise;
  } catch (error) {
    if (isEdgeError(error)) return error;
    throw error;
  }
  throw new Error('expected an EdgeError');
}

/** The code of the EdgeError `promise` rejects with. */
export async function refusal(promise: Promise<unknown>): Promise<string> {
  return (await edgeError(promise)).code;
}

/** `CODE: message` of the EdgeError `promise` rejects with. */
export async function failure(promise: Promise<unknown>): Promise<string> {
  const error = await edgeError(promise);
  return `${error.code}: ${error.message}`;
}

export type StoreCall = { readonly op: string; readonly key: string };

/**
 * A BlobStore that records every call and can be made to fail: `failAfterPuts` puts succeed,
 * then every write throws (a job killed halfway, as seen from storage).
 */
export class RecordingStore implements BlobStore {
  readonly calls: StoreCall[] = [];
  failAfterPuts = Infinity;
  #puts = 0;
  readonly inner: BlobStore;

  constructor(inner: BlobStore = new MemoryBlobStore()) {
    this.inner = inner;
  }

  /** Keys written (put or copied to), in order, staging keys left out. */
  writes(): string[] {
    return this.calls
      .filter((c) => (c.op === 'put' || c.op === 'copy') && !c.key.startsWith('_edge/'))
      .map((c) => c.key);
  }

  count(op: string, key?: string): number {
    return this.calls.filter((c) => c.op === op && (key === undefined || c.key === key)).length;
  }

  #write(): void {
    if (++this.#puts > this.failAfterPuts) throw new Error('storage went away (test)');
  }

  get(key: string, options?: GetOptions): Promise<GetResult> {
    this.calls.push({ op: 'get', key });
    return this.inner.get(key, options);
  }
  head(key: string): Promise<ObjectInfo | undefined> {
    this.calls.push({ op: 'head', key });
    return this.inner.head(key);
  }
  async put(key: string, body: PutBody, options?: PutOptions): Promise<ObjectInfo> {
    this.#write();
    const info = await this.inner.put(key, body, options);
    this.calls.push({ op: 'put', key });
    return info;
  }
  async copy(from: string, to: string, options?: CopyOptions): Promise<ObjectInfo> {
    this.#write();
    const info = await this.inner.copy(from, to, options);
    this.calls.push({ op: 'copy', key: to });
    return info;
  }
  delete(key: string): Promise<void> {
    this.calls.push({ op: 'delete', key });
    return this.inner.delete(key);
  }
  list(options: ListOptions): Promise<ListPage> {
    this.calls.push({ op: 'list', key: options.prefix });
    return this.inner.list(options);
  }
}

export interface ClientView {
  readonly timestampVersion: number;
  readonly targetsVersion: number;
  /** Every target (deltas included) downloaded and verified: TUF path → content. */
  readonly files: ReadonlyMap<string, Uint8Array>;
}

/**
 * A TUF client (the verify Updater, pinned to `trustedRoot`) reading straight from `store`, as
 * an edge would serve it, downloading and verifying every target listed: what a client of
 * this mirror would see. Throws if anything the timestamp references is missing or wrong.
 */
export async function tufClientView(
  store: BlobStore,
  trustedRoot: Uint8Array,
  now?: () => Date,
): Promise<ClientView> {
  const updater = new Updater({
    metadataBaseUrl: 'http://mirror.test/metadata/',
    targetBaseUrl: 'http://mirror.test/targets/',
    fetcher: {
      async fetch(url, maxLength) {
        const key = decodeURIComponent(new URL(url).pathname.slice(1));
        try {
          const bytes = await readAll(store, key);
          if (bytes.length > maxLength) throw new VerifyError('TOO_LARGE', `${key}: too large`);
          return bytes;
        } catch (error) {
          if (isStorageError(error, 'NOT_FOUND')) {
            throw new VerifyError('NOT_FOUND', `${key}: not found`);
          }
          throw error;
        }
      },
    },
    store: memoryMetadataStore(trustedRoot),
    hash: webHashPort,
    prefixTargetsWithHash: true,
    now,
  });
  return refreshAndDownload(updater);
}

/** A client's metadata store in memory, starting from `trustedRoot`. */
export function memoryMetadataStore(trustedRoot: Uint8Array): MetadataStore {
  const files = new Map<string, Uint8Array>([['root', trustedRoot]]);
  return {
    load: (role) => Promise.resolve(files.get(role)),
    persist: (role, bytes) => {
      files.set(role, bytes);
      return Promise.resolve();
    },
    remove: (role) => {
      files.delete(role);
      return Promise.resolve();
    },
  };
}

/** Refreshes `updater`, then downloads (and so verifies) every target listed. */
export async function refreshAndDownload(updater: Updater): Promise<ClientView> {
  await updater.refresh();
  const trusted = updater.trusted;
  const targets = trusted?.targets;
  const timestamp = trusted?.timestamp;
  if (targets === undefined || timestamp === undefined) throw new Error('no release');
  const files = new Map<string, Uint8Array>();
  for (const [path] of targets.signed.targets) {
    const info = await updater.getTargetInfo(path);
    if (info === undefined) throw new Error(`${path}: no target info`);
    files.set(path, await updater.downloadTarget(info));
  }
  return {
    timestampVersion: timestamp.signed.version,
    targetsVersion: targets.signed.version,
    files,
  };
}

/**
 * A signed repository (in-memory) whose root declares a log: two
 * releases logged as the origin logs them, then `filler` more entries, so the log has full
 * tiles, a level-1 tile and partial ones (the default: 305 entries).
 */
export async function loggedRepository(filler = 300): Promise<{
  repo: SignedRepository;
  log: TestLog;
  trustedRoot: Uint8Array;
}> {
  const repo = await SignedRepository.create({ 'a.txt': 'alpha' }, { log: await createLogKey() });
  await repo.release({ 'a.txt': 'alpha 2', 'b.txt': 'beta' });
  const log = repo.log;
  if (log === undefined) throw new Error('no log');
  if (filler > 0) await log.fill(filler, 'filler');
  return { repo, log, trustedRoot: await repo.trustedRoot };
}
