/**
 * Defense in depth: with a trusted root pinned in the configuration, the edge runs the TUF
 * client workflow (specification section 5, through `@cairn/verify`, unchanged) over its own
 * storage before it serves metadata, and serves exactly the bytes that verified. Someone who
 * can write into the bucket but holds no keys cannot reach clients through this edge: what they
 * wrote fails verification, the edge answers 503 VERIFICATION_FAILED and logs at level error.
 *
 * What is checked, and where:
 *
 *   timestamp.json            5.4: signed by the root's timestamp keys, not older than the
 *                             newest this process has verified (the in-memory trusted state is
 *                             the rollback reference, so restoring an older, validly signed
 *                             timestamp into the bucket is refused), not expired. Served from
 *                             memory.
 *   {V}.snapshot.json (V current)  5.5: length and hashes from the timestamp, signed, version
 *                             named by the timestamp, no targets version went down, not expired.
 *                             Served from memory.
 *   {V}.targets.json (V current)   5.6: length and hashes from the snapshot, signed by the
 *                             root's targets keys, version named by the snapshot, not expired.
 *                             Served from memory.
 *   {N}.root.json, N > pinned 5.3: the chain from the pinned root, each signed by its
 *                             predecessor's and its own threshold. Served from memory.
 *   {N}.root.json, N = pinned the same signed content as the pinned root, and its threshold of
 *                             valid signatures (the pin may be a re-serialised copy).
 *   {N}.root.json, N < pinned as far as trust reaches backwards: self-signed by its threshold,
 *                             and root N+1 carries a threshold of signatures from root N's root
 *                             keys (5.3.4 read backwards). This cannot prove it is the real root
 *                             N; clients holding an older root check the chain forward anyway.
 *   root.json                 the bytes of a root version that verified as above.
 *   older or newer snapshots and targets (not the current version): signed by the current
 *                             root's keys for the role, and the version in the name; expiry is
 *                             not checked (old ones expire, and clients only accept the current
 *                             one, which is checked in full).
 *   delegated targets roles   signed by the top-level targets' keys for the role when it
 *                             delegates them directly; deeper delegations pass unchecked (the
 *                             origin writes none; clients verify them, 5.6.3).
 *   log/checkpoint            when the verified root declares a log (`x-cairn-log`): signed by
 *                             the log key, with its origin line and witness quorum, and
 *                             extending the newest checkpoint this process has served — never
 *                             smaller, and a consistency proof from the tiles in storage — so a
 *                             bucket rolled back or forked is refused. Served from memory.
 *                             Without a declared log it is served as stored.
 *   log/tile/…                served as stored: clients prove entries against the checkpoint.
 *   targets/… (blobs, deltas) NOT re-hashed on every request: they are hash-named (consistent
 *                             snapshots), clients check length and hashes against verified
 *                             targets metadata (5.7.3), and hashing gigabytes per request would
 *                             make the edge the bottleneck. The mirror modes check them once,
 *                             when they are copied in.
 *
 * Cost: the stored timestamp's etag is looked at (a HEAD) at most once per `recheckMs`; only
 * when it changed, or the verified release expired, is the update re-run. A failure is
 * remembered for the same stored timestamp until the next recheck, so a broken bucket costs
 * one verification per interval, not one per request.
 */
import type { BlobStore, ByteRange, ObjectInfo } from '@cairn/storage/blob-store';
import { openCheckpoint, type Checkpoint, type CheckpointPolicy } from '@cairn/tlog/checkpoint';
import { isTlogError, type TlogError } from '@cairn/tlog/errors';
import { MAX_NOTE_BYTES } from '@cairn/tlog/limits';
import { LogReader, type LogFetch } from '@cairn/tlog/log-reader';
import { bytesEqual } from '@cairn/verify/encoding';
import { VerifyError, isVerifyError } from '@cairn/verify/errors';
import type { HashPort } from '@cairn/verify/hash';
import { DEFAULT_LIMITS } from '@cairn/verify/limits';
import {
  Metadata,
  verifyDelegate,
  type Root,
  type Signed,
  type Snapshot,
  type Targets,
  type Timestamp,
} from '@cairn/verify/metadata';
import type { Fetcher, MetadataStore } from '@cairn/verify/ports';
import { Updater } from '@cairn/verify/updater';
import type { EdgeLog } from './app.js';
import { EdgeError, isEdgeError } from './errors.js';
import { checkExtends, logPolicyOf, tileCap } from './log.js';
import { CHECKPOINT_KEY, LOG_PREFIX, classifyPath, type RepoPath } from './paths.js';
import {
  StorageSource,
  bytesObject,
  storageCall,
  type ObjectSource,
  type SourceObject,
} from './source.js';

/** An object read whole: its bytes, and the info of the object they were read from. */
export interface StoredBytes {
  readonly bytes: Uint8Array;
  readonly info: ObjectInfo;
}

/**
 * Reads one metadata object whole, at most `maxLength` bytes; undefined when it is missing.
 * Rejects with an EdgeError (storage or upstream failure, or an object past the cap).
 */
export type MetadataReader = (key: string, maxLength: number) => Promise<StoredBytes | undefined>;

export const TIMESTAMP_KEY = 'metadata/timestamp.json';
export const ROOT_COPY_KEY = 'metadata/root.json';
export const rootKey = (version: number): string => `metadata/${version}.root.json`;

/** Never fetched: the Updater speaks URLs, the readers speak storage keys. */
const BASE_URL = 'https://repository.invalid/';

export const defaultLog: EdgeLog = (entry) => {
  console.log(JSON.stringify({ time: new Date().toISOString(), ...entry }));
};

/** The edge's own storage as a MetadataReader, each read under the storage deadline. */
export function storeReader(store: BlobStore, timeoutMs: number): MetadataReader {
  return async (key, maxLength) => {
    try {
      return await storageCall(key, timeoutMs, async () => {
        const result = await store.get(key);
        if (result.notModified) {
          throw new EdgeError('STORAGE_UNAVAILABLE', `${key}: unexpected not-modified answer`);
        }
        if (result.info.size > maxLength) {
          await result.body.cancel().catch(() => undefined);
          throw new EdgeError(
            'VERIFICATION_FAILED',
            `${key}: ${result.info.size} bytes, more than the ${maxLength} allowed`,
          );
        }
        const bytes = new Uint8Array(await new Response(result.body).arrayBuffer());
        if (bytes.length > maxLength) {
          throw new EdgeError('VERIFICATION_FAILED', `${key}: more than ${maxLength} bytes`);
        }
        return { bytes, info: result.info };
      });
    } catch (error) {
      if (isEdgeError(error, 'NOT_FOUND')) return undefined;
      throw error;
    }
  };
}

export interface VerifiedFile<T extends Signed> extends StoredBytes {
  readonly metadata: Metadata<T>;
}

/** One release as the TUF client workflow accepted it. */
export interface VerifiedRelease {
  readonly timestamp: VerifiedFile<Timestamp>;
  readonly snapshot: VerifiedFile<Snapshot>;
  /** The top-level targets role. */
  readonly targets: VerifiedFile<Targets>;
  /** The newest root on the chain from the pinned one. */
  readonly root: Metadata<Root>;
  /** The earliest expiry of the four: past it, the release no longer verifies (freeze). */
  readonly expires: Date;
}

export interface TrustedRepositoryOptions {
  readonly trustedRoot: Uint8Array;
  readonly hash: HashPort;
  readonly reader: MetadataReader;
  readonly now?: (() => Date) | undefined;
}

function earliest(...dates: Date[]): Date {
  return new Date(Math.min(...dates.map((d) => d.getTime())));
}

/**
 * A TUF client (the verify Updater) whose trusted metadata lives in memory and whose bytes come
 * from a MetadataReader: the edge's own store, or an upstream. It remembers where each
 * accepted file was read from, so the caller can serve or copy exactly those bytes, and it
 * keeps the newest accepted timestamp and snapshot as the rollback reference for as long as it
 * lives (5.4.3, 5.5.5).
 */
export class TrustedRepository {
  readonly #pinned: Metadata<Root>;
  readonly #reader: MetadataReader;
  readonly #files = new Map<string, Uint8Array>();
  readonly #origins = new WeakMap<Uint8Array, ObjectInfo>();
  /** Root versions above the pinned one, as the chain walk accepted them (5.3). */
  readonly #chain = new Map<number, StoredBytes>();
  /** The pinned version and older ones, checked on demand (`rootFile`). */
  readonly #checkedRoots = new Map<number, StoredBytes>();
  readonly #updater: Updater;
  #lastTimestamp: ObjectInfo | undefined;
  #newestRoot: Metadata<Root>;

  constructor(options: TrustedRepositoryOptions) {
    try {
      this.#pinned = Metadata.fromBytes(options.trustedRoot, 'root', 'the pinned trusted root');
    } catch (error) {
      throw new EdgeError(
        'CONFIG_INVALID',
        `the trusted root is not root metadata: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    this.#newestRoot = this.#pinned;
    this.#reader = options.reader;
    this.#files.set('root', options.trustedRoot);
    const store: MetadataStore = {
      load: (role) => Promise.resolve(this.#files.get(role)),
      persist: (role, bytes) => {
        this.#files.set(role, bytes);
        if (role === 'root') this.#acceptRoot(bytes);
        return Promise.resolve();
      },
      remove: (role) => {
        this.#files.delete(role);
        return Promise.resolve();
      },
    };
    const fetcher: Fetcher = {
      fetch: async (url, maxLength) => {
        const key = url.slice(BASE_URL.length);
        const found = await this.#reader(key, maxLength);
        if (found === undefined) throw new VerifyError('NOT_FOUND', `${key}: not found`);
        this.#origins.set(found.bytes, found.info);
        if (key === TIMESTAMP_KEY) this.#lastTimestamp = found.info;
        return found.bytes;
      },
    };
    this.#updater = new Updater({
      metadataBaseUrl: `${BASE_URL}metadata/`,
      fetcher,
      store,
      hash: options.hash,
      now: options.now,
    });
  }

  get pinnedVersion(): number {
    return this.#pinned.signed.version;
  }

  /** The newest root version verified so far. */
  get newestRootVersion(): number {
    return this.#newestRoot.signed.version;
  }

  /** The info of the timestamp.json last read, whether or not it was accepted. */
  get lastTimestamp(): ObjectInfo | undefined {
    return this.#lastTimestamp;
  }

  /**
   * Gives the Updater a timestamp held elsewhere (a mirror's own) as its local copy: it is
   * verified under the final root before it serves as the rollback reference, and ignored if
   * it fails (5.3.11, as python-tuf does).
   */
  seedTimestamp(file: StoredBytes): void {
    this.#origins.set(file.bytes, file.info);
    this.#files.set('timestamp', file.bytes);
  }

  #acceptRoot(bytes: Uint8Array): void {
    const root = Metadata.fromBytes(bytes, 'root');
    const info = this.#origins.get(bytes);
    if (info === undefined) throw new VerifyError('INVALID_STATE', 'a root of unknown origin');
    this.#chain.set(root.signed.version, { bytes, info });
    if (root.signed.version > this.#newestRoot.signed.version) this.#newestRoot = root;
  }

  #file<T extends Signed>(role: 'timestamp' | 'snapshot' | 'targets', metadata: Metadata<T>) {
    const bytes = this.#files.get(role);
    const info = bytes === undefined ? undefined : this.#origins.get(bytes);
    if (bytes === undefined || info === undefined) {
      throw new VerifyError('INVALID_STATE', `${role}: accepted, but its bytes are not held`);
    }
    return { bytes, info, metadata };
  }

  /**
   * Runs the update (5.1 to 5.6: root chain, timestamp, snapshot, top-level targets). Rejects
   * with a VerifyError when something does not verify, an EdgeError when reading failed.
   */
  async refresh(): Promise<VerifiedRelease> {
    await this.#updater.refresh();
    const trusted = this.#updater.trusted;
    const timestamp = trusted?.timestamp;
    const snapshot = trusted?.snapshot;
    const targets = trusted?.targets;
    if (trusted === undefined || timestamp === undefined || snapshot === undefined) {
      throw new VerifyError('INVALID_STATE', 'the update did not complete');
    }
    if (targets === undefined) throw new VerifyError('INVALID_STATE', 'no targets loaded');
    return {
      timestamp: this.#file('timestamp', timestamp),
      snapshot: this.#file('snapshot', snapshot),
      targets: this.#file('targets', targets),
      root: trusted.root,
      expires: earliest(
        trusted.root.signed.expires,
        timestamp.signed.expires,
        snapshot.signed.expires,
        targets.signed.expires,
      ),
    };
  }

  /**
   * Root `version` as far as it can be verified (see the table at the top of this file), or
   * undefined when it is missing or newer than the verified chain. Rejects with a VerifyError
   * when the stored file does not check out.
   */
  async rootFile(version: number): Promise<StoredBytes | undefined> {
    if (version > this.#newestRoot.signed.version) return undefined;
    if (version > this.pinnedVersion) return this.#chain.get(version);
    const cached = this.#checkedRoots.get(version);
    if (cached !== undefined) return cached;
    const file = await this.#reader(rootKey(version), DEFAULT_LIMITS.rootMaxLength);
    if (file === undefined) return undefined;
    const candidate = Metadata.fromBytes(file.bytes, 'root', `root v${version}`);
    if (candidate.signed.version !== version) {
      throw new VerifyError(
        'VERSION_MISMATCH',
        `${rootKey(version)} says version ${candidate.signed.version}`,
      );
    }
    await verifyDelegate(candidate.signed, 'root', candidate);
    if (version === this.pinnedVersion) {
      if (!bytesEqual(candidate.signedBytes(), this.#pinned.signedBytes())) {
        throw new VerifyError(
          'SIGNED_DIFFERS',
          `${rootKey(version)} is not the pinned trusted root of that version`,
        );
      }
    } else {
      const newer = await this.rootFile(version + 1);
      if (newer === undefined) {
        throw new VerifyError(
          'NOT_FOUND',
          `${rootKey(version)} cannot be checked: root v${version + 1} is missing`,
        );
      }
      // 5.3.4, read backwards: the next root carries a threshold of this one's root keys.
      await verifyDelegate(candidate.signed, 'root', Metadata.fromBytes(newer.bytes, 'root'));
    }
    this.#checkedRoots.set(version, file);
    return file;
  }
}

const ROLE_CAP: Record<string, number> = {
  snapshot: DEFAULT_LIMITS.snapshotMaxLength,
  targets: DEFAULT_LIMITS.targetsMaxLength,
};

/** The read cap of versioned metadata of `role`. */
export function metadataCap(role: string): number {
  return ROLE_CAP[role] ?? DEFAULT_LIMITS.targetsMaxLength;
}

/**
 * The check for versioned snapshot and targets metadata that is not the current release's
 * (see the table at the top): the version in its name, and signatures from the current root's
 * keys for the role (or the top-level targets' keys, for a role it delegates directly).
 * Rejects with a VerifyError.
 */
export async function checkOtherMetadata(
  release: VerifiedRelease,
  role: string,
  version: number,
  bytes: Uint8Array,
): Promise<void> {
  const where = `${version}.${role}.json`;
  const metadata = Metadata.fromBytes(bytes, role === 'snapshot' ? 'snapshot' : 'targets', where);
  if (metadata.signed.version !== version) {
    throw new VerifyError('VERSION_MISMATCH', `${where} says version ${metadata.signed.version}`);
  }
  if (role === 'snapshot' || role === 'targets') {
    await verifyDelegate(release.root.signed, role, metadata);
    return;
  }
  const delegator = release.targets.metadata.signed;
  if (delegator.delegationFor(role) !== undefined) {
    await verifyDelegate(delegator, role, metadata);
  }
}

export interface VerifiedSourceOptions {
  /** The edge's own storage. */
  readonly store: BlobStore;
  /** The pinned root (JSON bytes). */
  readonly trustedRoot: Uint8Array;
  readonly hash: HashPort;
  /** The storage deadline. */
  readonly timeoutMs: number;
  /** How often, at most, the stored timestamp's etag is looked at. Default 1000 ms. */
  readonly recheckMs?: number | undefined;
  readonly now?: (() => Date) | undefined;
  readonly log?: EdgeLog | undefined;
  /**
   * How log tiles are read for consistency proofs, by path under `log/`. Default: this store
   * (a pull-through mirror passes its own, which fills missing tiles from upstream).
   */
  readonly logFetch?: LogFetch | undefined;
}

interface Verified {
  readonly release: VerifiedRelease;
  /** The etag of timestamp.json when it was last looked at. */
  observedEtag: string | undefined;
  checkedAt: number;
}

interface Failure {
  readonly error: EdgeError;
  readonly observedEtag: string | undefined;
  readonly at: number;
}

/** The stored checkpoint as last verified. */
interface VerifiedCheckpoint {
  readonly file: StoredBytes;
  readonly checkpoint: Checkpoint;
  checkedAt: number;
}

function checkpointRefused(error: TlogError): EdgeError {
  return new EdgeError(
    'VERIFICATION_FAILED',
    `${CHECKPOINT_KEY}: ${error.code}: ${error.message}`,
    {
      cause: error,
    },
  );
}

/** A storage reader of log tiles, by path under `log/`, each no longer than its kind allows. */
export function storeLogFetch(store: BlobStore, timeoutMs: number): LogFetch {
  const reader = storeReader(store, timeoutMs);
  return async (path) => {
    const tile = classifyPath(`/${LOG_PREFIX}${path}`)?.tile;
    if (tile === undefined) throw new EdgeError('NOT_FOUND', `${LOG_PREFIX}${path}: not a tile`);
    const file = await reader(`${LOG_PREFIX}${path}`, tileCap(tile));
    if (file === undefined) throw new EdgeError('NOT_FOUND', `${LOG_PREFIX}${path}: not found`);
    return file.bytes;
  };
}

function verificationFailed(error: VerifyError): EdgeError {
  return new EdgeError('VERIFICATION_FAILED', `${error.code}: ${error.message}`, {
    cause: error,
  });
}

/** Runs `work`, turning a VerifyError into VERIFICATION_FAILED. */
async function verifying<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isVerifyError(error)) throw verificationFailed(error);
    throw error;
  }
}

/** Serves metadata only once it verified under the pinned root; blobs straight from storage. */
export class VerifiedSource implements ObjectSource {
  readonly #storage: StorageSource;
  readonly #reader: MetadataReader;
  readonly #repository: TrustedRepository;
  readonly #store: BlobStore;
  readonly #timeoutMs: number;
  readonly #recheckMs: number;
  readonly #now: () => Date;
  readonly #log: EdgeLog;
  #verified: Verified | undefined;
  #failure: Failure | undefined;
  #pending: Promise<VerifiedRelease> | undefined;
  #stale = false;
  readonly #logFetch: LogFetch;
  #checkpoint: VerifiedCheckpoint | undefined;
  /** The newest checkpoint served: the next one must extend it (never smaller, no fork). */
  #servedCheckpoint: Checkpoint | undefined;
  #checkpointFailure: Failure | undefined;
  #checkpointStale = false;
  #checkpointPending: Promise<StoredBytes | undefined> | undefined;

  constructor(options: VerifiedSourceOptions) {
    this.#store = options.store;
    this.#timeoutMs = options.timeoutMs;
    this.#storage = new StorageSource(options.store, options.timeoutMs);
    this.#reader = storeReader(options.store, options.timeoutMs);
    this.#now = options.now ?? (() => new Date());
    this.#repository = new TrustedRepository({
      trustedRoot: options.trustedRoot,
      hash: options.hash,
      reader: this.#reader,
      now: this.#now,
    });
    this.#recheckMs = options.recheckMs ?? 1000;
    this.#log = options.log ?? defaultLog;
    this.#logFetch = options.logFetch ?? storeLogFetch(options.store, options.timeoutMs);
  }

  /** The size of the newest checkpoint verified and served, if any: for /health. */
  get logSize(): number | undefined {
    return this.#servedCheckpoint?.size;
  }

  /** Makes the next request look at the stored timestamp (after this process changed it). */
  invalidate(): void {
    this.#stale = true;
    this.#checkpointStale = true;
  }

  /**
   * The release storage holds now, verified. Rejects NOT_FOUND for a store without a
   * timestamp, VERIFICATION_FAILED, STORAGE_UNAVAILABLE.
   */
  current(): Promise<VerifiedRelease> {
    const at = this.#now().getTime();
    const verified = this.#verified;
    if (
      !this.#stale &&
      verified !== undefined &&
      at - verified.checkedAt < this.#recheckMs &&
      at < verified.release.expires.getTime()
    ) {
      return Promise.resolve(verified.release);
    }
    this.#pending ??= this.#check().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  async #check(): Promise<VerifiedRelease> {
    this.#stale = false;
    const at = this.#now().getTime();
    const info = await storageCall(TIMESTAMP_KEY, this.#timeoutMs, () =>
      this.#store.head(TIMESTAMP_KEY),
    );
    if (info === undefined) {
      this.#verified = undefined;
      throw new EdgeError('NOT_FOUND', `${TIMESTAMP_KEY}: not found`);
    }
    const verified = this.#verified;
    if (
      verified !== undefined &&
      verified.observedEtag === info.etag &&
      at < verified.release.expires.getTime()
    ) {
      verified.checkedAt = at;
      return verified.release;
    }
    const failure = this.#failure;
    if (
      failure !== undefined &&
      failure.observedEtag === info.etag &&
      at - failure.at < this.#recheckMs
    ) {
      throw failure.error;
    }
    try {
      const release = await this.#repository.refresh();
      const previous = this.#verified?.release.timestamp.metadata.signed.version;
      this.#verified = {
        release,
        observedEtag: this.#repository.lastTimestamp?.etag,
        checkedAt: at,
      };
      this.#failure = undefined;
      const version = release.timestamp.metadata.signed.version;
      if (version !== previous) {
        this.#log({
          level: 'info',
          event: 'verified',
          timestamp: version,
          snapshot: release.snapshot.metadata.signed.version,
          targets: release.targets.metadata.signed.version,
          root: release.root.signed.version,
        });
      }
      return release;
    } catch (error) {
      if (!isVerifyError(error) && !isEdgeError(error, 'VERIFICATION_FAILED')) throw error;
      const refused = isVerifyError(error) ? verificationFailed(error) : error;
      // Nothing is served from a store that does not verify; the trusted state (the rollback
      // reference) stays in the repository.
      this.#verified = undefined;
      if (this.#failure?.error.message !== refused.message) {
        this.#log({
          level: 'error',
          event: 'verification-failed',
          code: refused.code,
          message: `storage holds metadata that does not verify under the pinned root: ${refused.message}`,
        });
      }
      this.#failure = { error: refused, observedEtag: info.etag, at };
      throw refused;
    }
  }

  async #resolve(path: RepoPath): Promise<StoredBytes> {
    const release = await this.current();
    return verifying(async () => {
      switch (path.kind) {
        case 'timestamp':
          return release.timestamp;
        case 'root-copy':
          return this.#rootCopy();
        case 'root': {
          const file = await this.#repository.rootFile(path.version ?? 0);
          if (file === undefined) throw new EdgeError('NOT_FOUND', `${path.key}: not found`);
          return file;
        }
        case 'metadata':
          return this.#versioned(release, path);
        case 'target':
        case 'delta':
        case 'tile':
        case 'checkpoint':
          throw new EdgeError('NOT_FOUND', `${path.key}: not metadata`);
      }
    });
  }

  /**
   * log/checkpoint verified (see the table at the top), or undefined when the verified root
   * declares no log (it is then served as stored). Rejects NOT_FOUND, VERIFICATION_FAILED,
   * STORAGE_UNAVAILABLE.
   */
  async #verifiedCheckpoint(): Promise<StoredBytes | undefined> {
    const release = await this.current();
    let policy;
    try {
      policy = await logPolicyOf(release.root.signed);
    } catch (error) {
      if (isTlogError(error)) throw checkpointRefused(error);
      throw error;
    }
    if (policy === undefined) return undefined;
    const at = this.#now().getTime();
    const held = this.#checkpoint;
    if (!this.#checkpointStale && held !== undefined && at - held.checkedAt < this.#recheckMs) {
      return held.file;
    }
    this.#checkpointStale = false;
    this.#checkpointPending ??= this.#checkCheckpoint(policy, at).finally(() => {
      this.#checkpointPending = undefined;
    });
    return this.#checkpointPending;
  }

  async #checkCheckpoint(policy: CheckpointPolicy, at: number): Promise<StoredBytes> {
    const info = await storageCall(CHECKPOINT_KEY, this.#timeoutMs, () =>
      this.#store.head(CHECKPOINT_KEY),
    );
    if (info === undefined) {
      this.#checkpoint = undefined;
      throw new EdgeError('NOT_FOUND', `${CHECKPOINT_KEY}: not found`);
    }
    const held = this.#checkpoint;
    if (held !== undefined && held.file.info.etag === info.etag) {
      held.checkedAt = at;
      return held.file;
    }
    const failure = this.#checkpointFailure;
    if (
      failure !== undefined &&
      failure.observedEtag === info.etag &&
      at - failure.at < this.#recheckMs
    ) {
      throw failure.error;
    }
    const file = await this.#reader(CHECKPOINT_KEY, MAX_NOTE_BYTES);
    if (file === undefined) throw new EdgeError('NOT_FOUND', `${CHECKPOINT_KEY}: not found`);
    try {
      const { checkpoint } = await openCheckpoint(file.bytes, policy);
      const served = this.#servedCheckpoint;
      await checkExtends(new LogReader(this.#logFetch, policy), served, checkpoint);
      this.#checkpoint = { file, checkpoint, checkedAt: at };
      this.#checkpointFailure = undefined;
      if (
        served === undefined ||
        served.origin !== checkpoint.origin ||
        checkpoint.size > served.size
      ) {
        this.#servedCheckpoint = checkpoint;
        this.#log({
          level: 'info',
          event: 'checkpoint-verified',
          origin: checkpoint.origin,
          size: checkpoint.size,
        });
      }
      return file;
    } catch (error) {
      let refused: EdgeError;
      if (isTlogError(error)) refused = checkpointRefused(error);
      else if (isEdgeError(error, 'VERIFICATION_FAILED')) refused = error;
      else if (isEdgeError(error, 'NOT_FOUND')) {
        // A tile the consistency proof needs is missing: the checkpoint cannot be proven.
        refused = new EdgeError(
          'VERIFICATION_FAILED',
          `${CHECKPOINT_KEY} cannot be proven to extend the one served: ${error.message}`,
          { cause: error },
        );
      } else throw error;
      this.#checkpoint = undefined;
      if (this.#checkpointFailure?.error.message !== refused.message) {
        this.#log({
          level: 'error',
          event: 'verification-failed',
          code: refused.code,
          message: `storage holds a log checkpoint that does not verify: ${refused.message}`,
        });
      }
      this.#checkpointFailure = { error: refused, observedEtag: file.info.etag, at };
      throw refused;
    }
  }

  async #rootCopy(): Promise<StoredBytes> {
    const stored = await this.#reader(ROOT_COPY_KEY, DEFAULT_LIMITS.rootMaxLength);
    if (stored === undefined) throw new EdgeError('NOT_FOUND', `${ROOT_COPY_KEY}: not found`);
    const version = Metadata.fromBytes(stored.bytes, 'root', ROOT_COPY_KEY).signed.version;
    const verified = await this.#repository.rootFile(version);
    if (verified === undefined || !bytesEqual(verified.bytes, stored.bytes)) {
      throw new VerifyError(
        'SIGNED_DIFFERS',
        `${ROOT_COPY_KEY} is not root v${version} of the verified chain`,
      );
    }
    return stored;
  }

  async #versioned(release: VerifiedRelease, path: RepoPath): Promise<StoredBytes> {
    if (path.key === release.snapshot.info.key) return release.snapshot;
    if (path.key === release.targets.info.key) return release.targets;
    const role = path.role ?? '';
    const stored = await this.#reader(path.key, metadataCap(role));
    if (stored === undefined) throw new EdgeError('NOT_FOUND', `${path.key}: not found`);
    await checkOtherMetadata(release, role, path.version ?? 0, stored.bytes);
    return stored;
  }

  async head(path: RepoPath): Promise<ObjectInfo | undefined> {
    if (servedAsStored(path)) return this.#storage.head(path);
    if (path.kind === 'checkpoint') {
      try {
        const file = await this.#verifiedCheckpoint();
        return file === undefined ? await this.#storage.head(path) : file.info;
      } catch (error) {
        if (isEdgeError(error, 'NOT_FOUND')) return undefined;
        throw error;
      }
    }
    try {
      return (await this.#resolve(path)).info;
    } catch (error) {
      if (isEdgeError(error, 'NOT_FOUND')) return undefined;
      throw error;
    }
  }

  async get(path: RepoPath, range?: ByteRange): Promise<SourceObject> {
    if (servedAsStored(path)) return this.#storage.get(path, range);
    if (path.kind === 'checkpoint') {
      const file = await this.#verifiedCheckpoint();
      if (file === undefined) return this.#storage.get(path, range);
      return bytesObject(file.bytes, file.info, range);
    }
    const file = await this.#resolve(path);
    return bytesObject(file.bytes, file.info, range);
  }
}

/** Blobs and tiles: clients verify them, so they are served as stored. */
function servedAsStored(path: RepoPath): boolean {
  return path.kind === 'target' || path.kind === 'delta' || path.kind === 'tile';
}
