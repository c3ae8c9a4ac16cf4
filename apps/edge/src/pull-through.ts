/**
 * The pull-through mirror: serves from its own storage, and fills that storage from an
 * upstream repository on demand, checking everything before it is stored or served.
 *
 * - Metadata: a TrustedRepository (the verify Updater, from the pinned root) over upstream.
 *   What verifies is written into the mirror's store in publication order (root versions,
 *   versioned targets and snapshot, root.json, timestamp.json last: `writeReleaseMetadata`),
 *   and then served through a VerifiedSource over that store, which verifies it once more
 *   from the pinned root. So a restarted mirror, or one whose upstream went away, serves what
 *   it holds — as long as that still verifies (freeze: an expired timestamp is refused).
 * - timestamp.json and root.json are revalidated against upstream when the last check is
 *   older than `timestampMaxAge` (If-None-Match on timestamp.json, and the root chain probe).
 *   Upstream unavailable: the mirror serves what it holds and tries again after max-age.
 *   Upstream serving metadata that does not verify: 502 UPSTREAM_INVALID, logged at error,
 *   remembered for Retry-After (capped at max-age) before it is asked again.
 * - Targets and deltas are hash-named and immutable: a miss streams from upstream through a
 *   ContentVerifier — the sha256 in the name, and the length and every hash of the verified
 *   targets metadata when it lists the file (otherwise at most `maxTargetBytes`) — into a
 *   staging key, then is copied create-only to its key (`copyVerified`). Concurrent misses of
 *   the same object in one isolate share one copy; across instances the create-only copy
 *   decides. Once stored, an object is served from the store and never fetched again.
 * - Versioned metadata the current release does not name (an older snapshot, say) is fetched
 *   on a miss and stored once it passes the same checks VerifiedSource applies to it.
 *
 * - log/checkpoint (when the verified root declares a log) is revalidated with timestamp.json
 *   and written before it: signed by the log key, and extending the checkpoint the mirror
 *   holds (never smaller, a consistency proof from upstream's tiles, each proven against the
 *   new checkpoint first). A fork is 502 SPLIT_VIEW and nothing is written.
 * - Log tiles are fetched once on a miss, proven part of the tree of the mirror's checkpoint
 *   (log.ts, TreeTiles), and stored create-only; a tile that tree does not have is a 404
 *   without an upstream request, so a tile past the log can never be stored.
 *
 * Nothing unverified is ever stored under a public key or served.
 */
import type { BlobStore, ByteRange, ObjectInfo } from '@cairn/storage/blob-store';
import { isStorageError } from '@cairn/storage/errors';
import { openCheckpoint, type Checkpoint } from '@cairn/tlog/checkpoint';
import { MAX_NOTE_BYTES } from '@cairn/tlog/limits';
import { LogReader } from '@cairn/tlog/log-reader';
import { bytesEqual } from '@cairn/verify/encoding';
import { isVerifyError } from '@cairn/verify/errors';
import type { HashPort } from '@cairn/verify/hash';
import type { EdgeLog } from './app.js';
import type { EdgeConfig } from './config.js';
import { EdgeError, isEdgeError } from './errors.js';
import {
  NOTHING_HELD,
  TreeTiles,
  checkExtends,
  fetchOnce,
  logPolicyOf,
  logRefusal,
  tileCap,
  type TileSources,
} from './log.js';
import { CHECKPOINT_KEY, LOG_PREFIX, classifyPath, type LogTile, type RepoPath } from './paths.js';
import { StorageSource, storageCall, type ObjectSource, type SourceObject } from './source.js';
import { commitCheckpoint, placeMetadata, readOwn, writeReleaseMetadata } from './sync.js';
import { Upstream, copyVerified, upstreamReader, type Expected } from './upstream.js';
import {
  TIMESTAMP_KEY,
  TrustedRepository,
  VerifiedSource,
  checkOtherMetadata,
  defaultLog,
  metadataCap,
  type VerifiedRelease,
} from './verified-source.js';
import { DEFAULT_LIMITS } from '@cairn/verify/limits';

export interface PullThroughOptions {
  /** The mirror's own storage. */
  readonly store: BlobStore;
  /** Needs `upstreamUrl` and `trustedRoot`. */
  readonly config: EdgeConfig;
  readonly hash: HashPort;
  /** How upstream is reached; default the global fetch. */
  readonly fetch?: typeof fetch | undefined;
  readonly now?: (() => Date) | undefined;
  readonly log?: EdgeLog | undefined;
}

/** A miss of versioned metadata asks upstream for a newer release at most this often. */
const MISS_RECHECK_MS = 1000;

function refusal(error: unknown): EdgeError | undefined {
  if (isVerifyError(error)) {
    return new EdgeError(
      'UPSTREAM_INVALID',
      `upstream metadata does not verify under the pinned root: ${error.code}: ${error.message}`,
      { cause: error },
    );
  }
  if (isEdgeError(error, 'VERIFICATION_FAILED')) {
    return new EdgeError('UPSTREAM_INVALID', error.message, { cause: error });
  }
  const log = logRefusal(error);
  if (log !== undefined) return log;
  return isEdgeError(error, 'UPSTREAM_INVALID') || isEdgeError(error, 'SPLIT_VIEW')
    ? error
    : undefined;
}

export class PullThroughSource implements ObjectSource {
  readonly #store: BlobStore;
  readonly #config: EdgeConfig;
  readonly #hash: HashPort;
  readonly #now: () => Date;
  readonly #log: EdgeLog;
  readonly #upstream: Upstream;
  readonly #repository: TrustedRepository;
  readonly #local: VerifiedSource;
  readonly #storage: StorageSource;
  readonly #fills = new Map<string, Promise<void>>();
  #seeded = false;
  #checkedAt: number | undefined;
  #unavailable: EdgeError | undefined;
  #failure: { readonly error: EdgeError; readonly at: number } | undefined;
  #pending: Promise<void> | undefined;
  #release: VerifiedRelease | undefined;
  #published: number | undefined;
  /** The tree of the checkpoint the mirror holds, verified: which tiles it may fetch. */
  #tree: TreeTiles | undefined;
  /** Upstream's etag of the checkpoint last pulled, for If-None-Match. */
  #checkpointEtag: string | undefined;

  constructor(options: PullThroughOptions) {
    const { config } = options;
    if (config.upstreamUrl === undefined || config.trustedRoot === undefined) {
      throw new EdgeError('CONFIG_INVALID', 'a pull-through mirror needs an upstream and a root');
    }
    this.#store = options.store;
    this.#config = config;
    this.#hash = options.hash;
    this.#now = options.now ?? (() => new Date());
    this.#log = options.log ?? defaultLog;
    this.#upstream = new Upstream({
      baseUrl: config.upstreamUrl,
      fetch: options.fetch,
      timeoutMs: config.storageTimeoutMs,
    });
    this.#repository = new TrustedRepository({
      trustedRoot: config.trustedRoot,
      hash: options.hash,
      reader: upstreamReader(this.#upstream, this.#now),
      now: this.#now,
    });
    this.#local = new VerifiedSource({
      store: options.store,
      trustedRoot: config.trustedRoot,
      hash: options.hash,
      timeoutMs: config.storageTimeoutMs,
      recheckMs: Math.min(1000, config.timestampMaxAge * 1000),
      now: this.#now,
      log: this.#log,
      logFetch: (path) => this.#logFile(path),
    });
    this.#storage = new StorageSource(options.store, config.storageTimeoutMs);
  }

  /** The size of the log this mirror serves, when known: for /health. */
  get logSize(): number | undefined {
    return this.#local.logSize ?? this.#tree?.size;
  }

  get #maxAgeMs(): number {
    return this.#config.timestampMaxAge * 1000;
  }

  /** Asks upstream for a new release unless it was asked within `minAgeMs`. */
  #revalidate(minAgeMs: number): Promise<void> {
    const at = this.#now().getTime();
    if (this.#checkedAt !== undefined && at - this.#checkedAt < minAgeMs) {
      return Promise.resolve();
    }
    const failure = this.#failure;
    const retryMs = Math.min(this.#config.retryAfterSeconds * 1000, this.#maxAgeMs);
    if (failure !== undefined && at - failure.at < retryMs) return Promise.reject(failure.error);
    this.#pending ??= this.#check().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  async #check(): Promise<void> {
    const at = this.#now().getTime();
    if (!this.#seeded) {
      // The mirror's own timestamp, once it verifies, is the rollback reference for upstream's.
      const mine = await readOwn(
        this.#store,
        this.#config.storageTimeoutMs,
        TIMESTAMP_KEY,
        DEFAULT_LIMITS.timestampMaxLength,
      );
      if (mine !== undefined) this.#repository.seedTimestamp(mine);
      this.#seeded = true;
    }
    let release: VerifiedRelease;
    try {
      release = await this.#repository.refresh();
    } catch (error) {
      this.#refreshFailed(error, at);
      return;
    }
    this.#failure = undefined;
    this.#release = release;
    try {
      // Before timestamp.json: a client that sees the new release here finds its log entries.
      await this.#pullCheckpoint(release);
    } catch (error) {
      // Upstream unavailable here is as if it had not answered at all: the new release waits
      // for its log.
      this.#refreshFailed(error, at);
      return;
    }
    this.#unavailable = undefined;
    const version = release.timestamp.metadata.signed.version;
    if (version !== this.#published) {
      try {
        await writeReleaseMetadata(
          this.#store,
          this.#config.storageTimeoutMs,
          this.#repository,
          release,
        );
      } catch (error) {
        const refused = refusal(error);
        if (refused === undefined) throw error;
        this.#failure = { error: refused, at };
        throw refused;
      }
      this.#published = version;
      this.#local.invalidate();
      this.#log({
        level: 'info',
        event: 'pulled',
        timestamp: version,
        snapshot: release.snapshot.metadata.signed.version,
      });
    }
    this.#checkedAt = at;
  }

  /** Upstream's log tiles, by path under `log/`. */
  #upstreamTile: TileSources['fetch'] = async (path, cap) => {
    const answer = await this.#upstream.bytes(`${LOG_PREFIX}${path}`, cap);
    return answer === undefined || answer === 'not-modified' ? undefined : answer.bytes;
  };

  /** The mirror's own log tiles (trusted: placed only once proven), then upstream's. */
  #treeFor(checkpoint: Checkpoint, fetch: TileSources['fetch'] = this.#upstreamTile): TreeTiles {
    const current = this.#tree;
    if (
      current?.checkpoint.size === checkpoint.size &&
      bytesEqual(current.checkpoint.rootHash, checkpoint.rootHash)
    ) {
      return current;
    }
    const timeoutMs = this.#config.storageTimeoutMs;
    return new TreeTiles(checkpoint, {
      held: async (path) => {
        const key = `${LOG_PREFIX}${path}`;
        const tile = classifyPath(`/${key}`)?.tile;
        if (tile === undefined) return undefined;
        return (await readOwn(this.#store, timeoutMs, key, tileCap(tile)))?.bytes;
      },
      fetch,
    });
  }

  /**
   * Brings log/checkpoint up to upstream's when the verified root declares a log: upstream's
   * is signed by the log key and extends the mirror's (never smaller; a consistency proof from
   * tiles proven against upstream's checkpoint), then it is written compare-and-swap. Rejects
   * with a TlogError (SPLIT_VIEW for a fork) or an EdgeError; writes nothing then.
   */
  /**
   * Upstream unavailable: remembered, and the mirror goes on serving what it holds (returns).
   * Anything upstream served that does not verify: logged, remembered and thrown, coded.
   */
  #refreshFailed(error: unknown, at: number): void {
    if (isEdgeError(error, 'UPSTREAM_UNAVAILABLE')) {
      if (this.#unavailable === undefined) {
        this.#log({
          level: 'warn',
          event: 'upstream-unavailable',
          message: `serving what this mirror holds: ${error.message}`,
        });
      }
      this.#unavailable = error;
      this.#checkedAt = at;
      return;
    }
    const refused = refusal(error);
    if (refused === undefined) throw error;
    this.#log({ level: 'error', event: 'upstream-refused', message: refused.message });
    this.#failure = { error: refused, at };
    throw refused;
  }

  async #pullCheckpoint(release: VerifiedRelease): Promise<void> {
    const policy = await logPolicyOf(release.root.signed);
    if (policy === undefined) {
      this.#tree = undefined;
      return;
    }
    const timeoutMs = this.#config.storageTimeoutMs;
    const mine = await readOwn(this.#store, timeoutMs, CHECKPOINT_KEY, MAX_NOTE_BYTES);
    const held =
      mine === undefined
        ? undefined
        : (await openCheckpoint(mine.bytes, policy).catch(() => undefined))?.checkpoint;
    const answer = await this.#upstream.bytes(CHECKPOINT_KEY, MAX_NOTE_BYTES, {
      ifNoneMatch: held === undefined ? undefined : this.#checkpointEtag,
    });
    if (answer === undefined || answer === 'not-modified') {
      if (held !== undefined) this.#tree = this.#treeFor(held);
      return;
    }
    const { checkpoint } = await openCheckpoint(answer.bytes, policy);
    const fetch = fetchOnce(this.#upstreamTile);
    const tree = this.#treeFor(checkpoint, fetch);
    if (mine !== undefined && bytesEqual(mine.bytes, answer.bytes)) {
      this.#tree = tree;
      this.#checkpointEtag = answer.etag;
      return;
    }
    // Proven from upstream's tiles alone: a fork is upstream's disagreeing with the mirror's.
    const check = new TreeTiles(checkpoint, { held: NOTHING_HELD, fetch });
    await checkExtends(new LogReader(check.fetch, policy), held, checkpoint);
    await check.checkRoot();
    await commitCheckpoint(this.#store, timeoutMs, mine?.info, answer.bytes, async (bytes) => {
      const other = await openCheckpoint(bytes, policy).catch(() => undefined);
      return other !== undefined && other.checkpoint.size >= checkpoint.size;
    });
    this.#tree = tree;
    this.#checkpointEtag = answer.etag;
    this.#local.invalidate();
    this.#log({ level: 'info', event: 'pulled-checkpoint', size: checkpoint.size });
  }

  /** The tree tiles may come from: the mirror's checkpoint's, revalidated after a miss past it. */
  async #treeWith(path: RepoPath, tile: LogTile): Promise<TreeTiles> {
    if (this.#tree === undefined) await this.#revalidate(this.#maxAgeMs);
    if (this.#tree === undefined || !this.#tree.has(tile)) await this.#revalidate(MISS_RECHECK_MS);
    const tree = this.#tree;
    if (tree === undefined) {
      throw this.#unavailable ?? new EdgeError('NOT_FOUND', `${path.key}: no verified log`);
    }
    if (!tree.has(tile)) {
      // Past the log: never asked of upstream, never stored.
      throw new EdgeError(
        'NOT_FOUND',
        `${path.key} is not a tile of the log at its verified size ${tree.size}`,
      );
    }
    return tree;
  }

  /** Makes sure a log tile is in the mirror's store, proven part of the verified tree first. */
  async #fillTile(path: RepoPath): Promise<void> {
    const tile = path.tile;
    if (tile === undefined) throw new EdgeError('NOT_FOUND', `${path.key}: not a tile`);
    if ((await this.#storage.head(path)) !== undefined) return;
    let fill = this.#fills.get(path.key);
    if (fill === undefined) {
      fill = (async () => {
        const tree = await this.#treeWith(path, tile);
        let bytes: Uint8Array;
        try {
          bytes = await tree.tile(tile);
        } catch (error) {
          throw refusal(error) ?? error;
        }
        await storageCall(path.key, this.#config.storageTimeoutMs, async () => {
          try {
            await this.#store.put(path.key, bytes, {
              contentType: 'application/octet-stream',
              contentLength: bytes.length,
              ifNoneMatch: '*',
            });
          } catch (error) {
            // Another request or instance placed it first: tiles never change.
            if (!isStorageError(error, 'PRECONDITION_FAILED')) throw error;
          }
        });
        this.#log({ level: 'info', event: 'pulled-object', key: path.key, bytes: bytes.length });
      })().finally(() => {
        this.#fills.delete(path.key);
      });
      this.#fills.set(path.key, fill);
    }
    await fill;
  }

  /** A log tile for the local VerifiedSource's consistency proofs: filled, then read. */
  async #logFile(path: string): Promise<Uint8Array> {
    const repoPath = classifyPath(`/${LOG_PREFIX}${path}`);
    if (repoPath?.tile === undefined) {
      throw new EdgeError('NOT_FOUND', `${LOG_PREFIX}${path}: not a tile`);
    }
    await this.#fillTile(repoPath);
    const object = await this.#storage.get(repoPath);
    return new Uint8Array(await new Response(object.body).arrayBuffer());
  }

  /** timestamp.json and root.json: revalidated, then served from the mirror's store. */
  async #mutable<T>(read: () => Promise<T>): Promise<T> {
    await this.#revalidate(this.#maxAgeMs);
    try {
      return await read();
    } catch (error) {
      // Nothing held, and upstream cannot be asked: that is an outage, not a missing file.
      if (isEdgeError(error, 'NOT_FOUND') && this.#unavailable !== undefined) {
        throw this.#unavailable;
      }
      throw error;
    }
  }

  /** Versioned metadata: from the store, else after a revalidation, else fetched and checked. */
  async #versioned<T>(path: RepoPath, read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      if (!isEdgeError(error, 'NOT_FOUND')) throw error;
    }
    await this.#revalidate(MISS_RECHECK_MS);
    try {
      return await read();
    } catch (error) {
      if (!isEdgeError(error, 'NOT_FOUND')) throw error;
      if (this.#unavailable !== undefined) throw this.#unavailable;
    }
    await this.#fetchMetadata(path);
    return read();
  }

  async #fetchMetadata(path: RepoPath): Promise<void> {
    const release = this.#release;
    const version = path.version ?? 0;
    let bytes: Uint8Array | undefined;
    try {
      if (path.kind === 'root') {
        bytes = (await this.#repository.rootFile(version))?.bytes;
      } else if (release !== undefined) {
        const role = path.role ?? '';
        const answer = await this.#upstream.bytes(path.key, metadataCap(role));
        if (answer !== undefined && answer !== 'not-modified') {
          await checkOtherMetadata(release, role, version, answer.bytes);
          bytes = answer.bytes;
        }
      }
    } catch (error) {
      throw refusal(error) ?? error;
    }
    if (bytes === undefined) throw new EdgeError('NOT_FOUND', `${path.key}: not found`);
    await placeMetadata(this.#store, this.#config.storageTimeoutMs, path.key, bytes);
  }

  /** What a target or delta must be: from verified targets metadata when it lists it. */
  async #expected(path: RepoPath): Promise<Expected> {
    const sha256 = path.sha256 ?? '';
    let release = this.#release;
    if (release === undefined) {
      release = await this.#revalidate(this.#maxAgeMs)
        .then(() => this.#release ?? this.#local.current())
        .catch(() => undefined);
    }
    const listed = release?.targets.metadata.signed.targets.get(path.targetPath ?? '');
    if (listed !== undefined && listed.hashes.sha256?.toLowerCase() === sha256) {
      return { length: listed.length, hashes: listed.hashes, cap: listed.length };
    }
    // Not in the current release (an older one's file): its name's hash is all there is.
    return { hashes: { sha256 }, cap: this.#config.maxTargetBytes };
  }

  /** Makes sure a target or delta is in the mirror's store, copying it in verified. */
  async #fill(path: RepoPath): Promise<void> {
    if ((await this.#storage.head(path)) !== undefined) return;
    let fill = this.#fills.get(path.key);
    if (fill === undefined) {
      fill = (async () => {
        const expected = await this.#expected(path);
        const bytes = await copyVerified(
          this.#store,
          this.#upstream,
          this.#hash,
          path.key,
          expected,
        );
        this.#log({ level: 'info', event: 'pulled-object', key: path.key, bytes });
      })().finally(() => {
        this.#fills.delete(path.key);
      });
      this.#fills.set(path.key, fill);
    }
    await fill;
  }

  async head(path: RepoPath): Promise<ObjectInfo | undefined> {
    switch (path.kind) {
      case 'timestamp':
      case 'root-copy':
      case 'checkpoint':
        return this.#mutable(() => this.#local.head(path).then((info) => found(path, info))).catch(
          missing,
        );
      case 'root':
      case 'metadata':
        return this.#versioned(path, () =>
          this.#local.head(path).then((info) => found(path, info)),
        ).catch(missing);
      case 'target':
      case 'delta':
        try {
          await this.#fill(path);
        } catch (error) {
          if (isEdgeError(error, 'NOT_FOUND')) return undefined;
          throw error;
        }
        return this.#storage.head(path);
      case 'tile':
        try {
          await this.#fillTile(path);
        } catch (error) {
          if (isEdgeError(error, 'NOT_FOUND')) return undefined;
          throw error;
        }
        return this.#storage.head(path);
    }
  }

  async get(path: RepoPath, range?: ByteRange): Promise<SourceObject> {
    switch (path.kind) {
      case 'timestamp':
      case 'root-copy':
      case 'checkpoint':
        return this.#mutable(() => this.#local.get(path, range));
      case 'root':
      case 'metadata':
        return this.#versioned(path, () => this.#local.get(path, range));
      case 'target':
      case 'delta':
        await this.#fill(path);
        return this.#storage.get(path, range);
      case 'tile':
        await this.#fillTile(path);
        return this.#storage.get(path, range);
    }
  }
}

function missing(error: unknown): undefined {
  if (isEdgeError(error, 'NOT_FOUND')) return undefined;
  throw error;
}

/** `head` answers undefined for a miss; the fill logic wants NOT_FOUND. */
function found(path: RepoPath, info: ObjectInfo | undefined): ObjectInfo {
  if (info === undefined) throw new EdgeError('NOT_FOUND', `${path.key}: not found`);
  return info;
}
