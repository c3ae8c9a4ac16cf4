/**
 * A repository with a transparency log, run in process: for the tests of what reads the log
 * (client, monitor, audit) that need a real published history without HTTP or key files.
 * Two publishers, `alice` and `bob`, both sign every release; the origin's service publishes,
 * so every root, targets and snapshot version goes to the log exactly as in production.
 *
 *   const repo = await LoggedRepository.create();
 *   await repo.publish({ 'main.cvd': 'v1' });
 *   await repo.changeRoot({ kind: 'add-publisher', publisher: { ...ref(carol), name: 'carol' } });
 *   repo.store   // metadata/, targets/, log/ as a mirror serves them
 */
import type { BlobStore } from '@cairn/storage/blob-store';
import { MemoryBlobStore } from '@cairn/storage/memory-store';
import type { LogConfig } from '@cairn/tlog/log-config';
import type { Metadata, Root } from '@cairn/verify/metadata';
import { Ed25519Signer } from '@cairn/verify/signer';
import {
  initRepository,
  proposeRootChange,
  publishPendingRoot,
  type RootChange,
} from '../admin.js';
import type { Policy } from '../context.js';
import { createLogger } from '../log.js';
import { sha256Hex } from '../store-io.js';
import { OriginService } from '../service.js';
import { logConfigFor } from '../transparency-log.js';

const DAY = 86_400_000;

export const TEST_LOG_NAME = 'cairn.test/log';

export const TEST_POLICY: Policy = {
  expiry: { root: 365 * DAY, targets: 90 * DAY, snapshot: 7 * DAY, timestamp: DAY },
  refreshBefore: { snapshot: 3 * DAY, timestamp: DAY / 2 },
  targetsWarning: 14 * DAY,
  deltas: { pastVersions: 3, maxFileBytes: 64 * 2 ** 20 },
  retention: { releases: 10, graceSeconds: 3600 },
  limits: { maxFiles: 100, maxFileBytes: 2 ** 30, maxReleaseBytes: 2 ** 32, maxNameBytes: 255 },
};

export interface RepositoryKeys {
  /** Two root keys; both sign every root (threshold 2). */
  readonly root: readonly Ed25519Signer[];
  readonly alice: Ed25519Signer;
  readonly bob: Ed25519Signer;
  readonly snapshot: Ed25519Signer;
  readonly timestamp: Ed25519Signer;
  /** The log's key: its seed signs checkpoints (see logSignerFor). */
  readonly log: Ed25519Signer;
}

export async function generateRepositoryKeys(): Promise<RepositoryKeys> {
  const g = () => Ed25519Signer.generate();
  return {
    root: [await g(), await g()],
    alice: await g(),
    bob: await g(),
    snapshot: await g(),
    timestamp: await g(),
    log: await g(),
  };
}

export const keyRef = (s: Ed25519Signer) => ({ keyid: s.keyid, key: s.publicKey });

/**
 * Root version 1 of a test repository: root threshold 2, publishers alice and bob (named,
 * threshold 2), and the log (its first entry) unless `log: false`.
 */
export function initTestRepository(
  store: BlobStore,
  keys: RepositoryKeys,
  options: {
    now?: Date | undefined;
    rootExpiry?: number | undefined;
    logName?: string | undefined;
    log?: boolean | undefined;
  } = {},
): ReturnType<typeof initRepository> {
  return initRepository(store, {
    rootSigners: keys.root,
    rootThreshold: 2,
    publishers: [
      { ...keyRef(keys.alice), name: 'alice' },
      { ...keyRef(keys.bob), name: 'bob' },
    ],
    targetsThreshold: 2,
    snapshotKey: keyRef(keys.snapshot),
    timestampKey: keyRef(keys.timestamp),
    rootExpiry: options.rootExpiry ?? TEST_POLICY.expiry.root,
    now: options.now ?? new Date(),
    log:
      options.log === false ? undefined : { name: options.logName ?? TEST_LOG_NAME, key: keys.log },
  });
}

export interface LoggedRepositoryOptions {
  readonly store?: BlobStore | undefined;
  readonly keys?: RepositoryKeys | undefined;
  /** The origin's clock (entries' times, expiries). Default: the real one. */
  readonly now?: (() => Date) | undefined;
  readonly policy?: Policy | undefined;
  readonly logName?: string | undefined;
}

export interface PublishedVersions {
  readonly id: string;
  readonly targetsVersion: number;
  readonly snapshotVersion: number;
}

/**
 * Through `service`, in process: `files` pushed by the first of `signers` as the next release,
 * then signed by each of them in turn. Throws unless it was published.
 */
export async function publishFiles(
  service: OriginService,
  files: Readonly<Record<string, string | Uint8Array>>,
  signers: readonly Ed25519Signer[],
): Promise<PublishedVersions> {
  const [first] = signers;
  if (first === undefined) throw new Error('publish: no signers');
  const encoded = Object.entries(files).map(([path, content]) => {
    const bytes = typeof content === 'string' ? new TextEncoder().encode(content) : content;
    return { path, bytes, sha256: sha256Hex(bytes) };
  });
  const release = await service.push(first.keyid, {
    files: encoded.map((f) => ({ path: f.path, length: f.bytes.length, sha256: f.sha256 })),
  });
  for (const file of release.files) {
    const bytes = encoded.find((f) => f.path === file.path)?.bytes;
    if (bytes === undefined) throw new Error(`publish: no bytes for ${file.path}`);
    await service.upload(first.keyid, release.id, file.index, new Blob([bytes]).stream());
  }
  const draft = await service.complete(first.keyid, release.id);
  const shown = await service.show(release.id);
  if (shown.signed === undefined) throw new Error(`publish: release ${release.id} has no draft`);
  const signed = new TextEncoder().encode(shown.signed);
  let published: { targetsVersion: number; snapshotVersion: number } | undefined;
  for (const signer of signers) {
    const result = await service.sign(signer.keyid, release.id, {
      keyid: signer.keyid,
      sig: await signer.sign(signed),
      draftSha256: draft.draftSha256,
    });
    published ??= result.published;
  }
  if (published === undefined) {
    throw new Error(`publish: release ${release.id} is not published: too few signatures`);
  }
  return { id: release.id, ...published };
}

export class LoggedRepository {
  readonly store: BlobStore;
  readonly keys: RepositoryKeys;
  readonly service: OriginService;
  /** What root version 1 declares under `x-cairn-log`. */
  readonly log: LogConfig;
  readonly #now: () => Date;

  private constructor(
    store: BlobStore,
    keys: RepositoryKeys,
    service: OriginService,
    log: LogConfig,
    now: () => Date,
  ) {
    this.store = store;
    this.keys = keys;
    this.service = service;
    this.log = log;
    this.#now = now;
  }

  /** Root version 1 (publishers alice and bob, threshold 2; the log's first entry). */
  static async create(options: LoggedRepositoryOptions = {}): Promise<LoggedRepository> {
    const store = options.store ?? new MemoryBlobStore();
    const keys = options.keys ?? (await generateRepositoryKeys());
    const now = options.now ?? (() => new Date());
    const policy = options.policy ?? TEST_POLICY;
    const logName = options.logName ?? TEST_LOG_NAME;
    await initTestRepository(store, keys, { now: now(), rootExpiry: policy.expiry.root, logName });
    const service = new OriginService({
      store,
      online: { snapshot: [keys.snapshot], timestamp: [keys.timestamp] },
      policy,
      authWindowMs: 300_000,
      logger: createLogger({ write: () => undefined }),
      now,
      logKey: keys.log,
    });
    return new LoggedRepository(store, keys, service, await logConfigFor(keys.log, logName), now);
  }

  /** Root version `version` as stored. */
  async root(version: number): Promise<Metadata<Root>> {
    const root = await this.service.ctx.roots.get(version);
    if (root === undefined) throw new Error(`no root version ${version}`);
    return root;
  }

  /**
   * Pushes `files` as the next release and has `signers` (default alice and bob) sign it:
   * published once a threshold signed. Returns the versions it was published as.
   */
  publish(
    files: Readonly<Record<string, string | Uint8Array>>,
    signers: readonly Ed25519Signer[] = [this.keys.alice, this.keys.bob],
  ): Promise<PublishedVersions> {
    return publishFiles(this.service, files, signers);
  }

  /**
   * Signs the next root with `change` applied (both root keys, plus `newRootKeys` for a root
   * rotation) and publishes it when the current release allows. Returns the version published,
   * or undefined when it waits for the next release (a revocation the release needs).
   */
  async changeRoot(
    change: RootChange,
    newRootKeys: readonly Ed25519Signer[] = [],
  ): Promise<number | undefined> {
    await proposeRootChange(
      {
        store: this.store,
        roots: this.service.ctx.roots,
        now: this.#now(),
        rootExpiry: this.service.ctx.policy.expiry.root,
      },
      change,
      [...this.keys.root, ...newRootKeys],
    );
    return publishPendingRoot(this.service.ctx);
  }
}
