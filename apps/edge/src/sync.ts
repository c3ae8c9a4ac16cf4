/**
 * The sync mirror's job: copy new releases from an upstream repository into this mirror's own
 * storage, verifying everything, in publication order (blobs and deltas, versioned metadata,
 * the unversioned root copy, timestamp.json last), so the mirror is consistent at every moment
 * even if the job dies halfway. Runs from `cairn mirror sync` on Node and from the Worker's
 * Cron Trigger.
 *
 * How a run goes:
 *
 * 1. Upstream is verified from the pinned root by the verify Updater (5.3 to 5.6), with the
 *    mirror's own timestamp.json as the local copy: once it verifies under the final root it is
 *    the rollback reference, so an upstream whose timestamp, or the snapshot version it names,
 *    is older than the mirror's is refused (5.4.3) before anything is written; so is a snapshot
 *    in which a targets role went back from the mirror's (5.5.5, checked here against the
 *    mirror's snapshot). An upstream with the mirror's very timestamp means nothing to do.
 * 2. Every target and delta the new targets metadata lists, and the mirror lacks, streams from
 *    upstream through a ContentVerifier (length and hashes from the verified metadata) into a
 *    staging key and is then copied create-only to its hash-named key (`copyVerified`).
 *    Objects already there are trusted when their size matches: they are hash-named, only
 *    ever written create-only after this same check (by a sync or by the origin), and clients
 *    verify their hashes; one with the wrong size is replaced.
 * 3. Root versions (above the pinned one: exactly the bytes the chain walk accepted; the
 *    pinned one and older: as far as `TrustedRepository.rootFile` can check them), then the
 *    versioned targets and snapshot: the exact bytes that verified, create-only; an object
 *    holding other bytes under that name is replaced with the verified ones.
 * 4. metadata/root.json, the newest root's bytes.
 * 5. timestamp.json last, compare-and-swap on the etag the mirror's held (If-None-Match: * on
 *    an empty mirror), so two jobs never interleave and an older job never wins over a newer.
 *
 * When the verified root declares a transparency log (`x-cairn-log`), step 1 also checks
 * upstream's log/checkpoint: signed by the log key (origin, witness quorum), and extending the
 * mirror's own (never smaller; a consistency proof from upstream's tiles). A fork or a log
 * that went back is SPLIT_VIEW, before anything is written. After the blobs, the tiles the
 * mirror lacks for the new size are copied, each proven part of the signed tree first
 * (log.ts, TreeTiles), then log/checkpoint (compare-and-swap), all before step 3: a client
 * that sees the new timestamp on this mirror finds the release's log entries here.
 *
 * A run killed anywhere before 5 leaves the mirror serving the release it served before (the
 * new objects are unreferenced); a re-run skips what is there and finishes. Staging objects a
 * killed run left behind are removed by a later run once they are an hour old.
 *
 * Not mirrored yet: delegated targets roles (the origin writes none); a snapshot that lists any
 * is refused with UPSTREAM_INVALID rather than half-copied.
 */
import type { BlobStore, ObjectInfo } from '@cairn/storage/blob-store';
import { isStorageError } from '@cairn/storage/errors';
import { bytesEqual } from '@cairn/verify/encoding';
import { isVerifyError } from '@cairn/verify/errors';
import type { HashPort } from '@cairn/verify/hash';
import { DEFAULT_LIMITS } from '@cairn/verify/limits';
import { Metadata, verifyDelegate, type Root, type TargetFile } from '@cairn/verify/metadata';
import { openCheckpoint, type Checkpoint, type CheckpointPolicy } from '@cairn/tlog/checkpoint';
import { MAX_NOTE_BYTES } from '@cairn/tlog/limits';
import { LogReader } from '@cairn/tlog/log-reader';
import { newTiles, tilesForSize } from '@cairn/tlog/tiles';
import { EdgeError, isEdgeError } from './errors.js';
import {
  NOTHING_HELD,
  TreeTiles,
  checkExtends,
  fetchOnce,
  logPolicyOf,
  logRefusal,
  logTilePath,
  tileCap,
} from './log.js';
import { CHECKPOINT_KEY, LOG_PREFIX, classifyPath, type LogTile } from './paths.js';
import { storageCall } from './source.js';
import { STAGING_PREFIX, Upstream, copyVerified, upstreamReader } from './upstream.js';
import {
  ROOT_COPY_KEY,
  TIMESTAMP_KEY,
  TrustedRepository,
  rootKey,
  storeReader,
  type StoredBytes,
  type VerifiedRelease,
} from './verified-source.js';

export interface SyncOptions {
  /** The mirror's own storage. */
  readonly store: BlobStore;
  /** The repository to copy from, ending in `/` (an edge, or the origin bucket's public URL). */
  readonly upstreamUrl: string;
  /** The root this mirror trusts (JSON bytes); everything copied verifies from it. */
  readonly trustedRoot: Uint8Array;
  readonly hash: HashPort;
  /** Default the global fetch. */
  readonly fetch?: typeof fetch | undefined;
  /** Per upstream request and per storage operation. Default 30 s. */
  readonly timeoutMs?: number | undefined;
  readonly now?: (() => Date) | undefined;
  readonly onProgress?: ((event: SyncProgress) => void) | undefined;
}

export type SyncProgress =
  | {
      readonly kind: 'checked';
      readonly upstreamVersion: number;
      readonly mirrorVersion: number | undefined;
    }
  | {
      readonly kind: 'copied';
      readonly key: string;
      readonly bytes: number;
      readonly done: number;
      readonly total: number;
    }
  | { readonly kind: 'skipped'; readonly key: string };

export interface SyncReport {
  /** The timestamp version the mirror serves after the job. */
  readonly timestampVersion: number;
  /** The timestamp version it served before, undefined for an empty mirror. */
  readonly previousVersion: number | undefined;
  readonly objectsCopied: number;
  readonly bytesCopied: number;
  /** True when there was nothing to copy. */
  readonly upToDate: boolean;
  /** The size of the log the mirror holds after the job, when the root declares one. */
  readonly logSize?: number | undefined;
}

export const DEFAULT_SYNC_TIMEOUT_MS = 30_000;
/** Older than this, a staging object is a killed job's leftover, not a copy in progress. */
const STALE_STAGING_MS = 3_600_000;

/** The storage key of a target under consistent snapshots (5.7.3): the hash prefixes the name. */
export function targetKey(path: string, sha256: string): string {
  const slash = path.lastIndexOf('/');
  return `targets/${path.slice(0, slash + 1)}${sha256}.${path.slice(slash + 1)}`;
}

/** A verification failure of upstream's bytes as UPSTREAM_INVALID; anything else unchanged. */
function upstreamInvalid(error: unknown, what: string): unknown {
  if (isVerifyError(error)) {
    return new EdgeError('UPSTREAM_INVALID', `${what}: ${error.code}: ${error.message}`, {
      cause: error,
    });
  }
  if (isEdgeError(error, 'VERIFICATION_FAILED')) {
    return new EdgeError('UPSTREAM_INVALID', `${what}: ${error.message}`, { cause: error });
  }
  return error;
}

/** Reads a small object of the mirror whole, or undefined when missing or past `cap`. */
export async function readOwn(
  store: BlobStore,
  timeoutMs: number,
  key: string,
  cap: number,
): Promise<StoredBytes | undefined> {
  try {
    return await storeReader(store, timeoutMs)(key, cap);
  } catch (error) {
    // Past the cap: not a file this job wrote; it is replaced like any other wrong one.
    if (isEdgeError(error, 'VERIFICATION_FAILED')) return undefined;
    throw error;
  }
}

/**
 * Places verified metadata bytes under an immutable key: create-only; if the key holds other
 * bytes (a tampered or truncated object), they are replaced by the verified ones.
 */
export async function placeMetadata(
  store: BlobStore,
  timeoutMs: number,
  key: string,
  bytes: Uint8Array,
): Promise<boolean> {
  const held = await readOwn(store, timeoutMs, key, bytes.length);
  if (held !== undefined && bytesEqual(held.bytes, bytes)) return false;
  await storageCall(key, timeoutMs, async () => {
    try {
      await store.put(key, bytes, {
        contentType: 'application/json',
        contentLength: bytes.length,
        ...(held === undefined ? { ifNoneMatch: '*' as const } : {}),
      });
    } catch (error) {
      // Someone placed it between our read and write: what matters is that it is right now.
      if (!isStorageError(error, 'PRECONDITION_FAILED')) throw error;
      const now = await readOwn(store, timeoutMs, key, bytes.length);
      if (now === undefined || !bytesEqual(now.bytes, bytes)) {
        await store.put(key, bytes, { contentType: 'application/json' });
      }
    }
  });
  return true;
}

/**
 * Moves the mirror's timestamp.json to the verified one, compare-and-swap, unless the mirror
 * already holds it or a newer one that verifies under `root` (another job got there first).
 * Returns whether it wrote.
 */
export async function commitTimestamp(
  store: BlobStore,
  timeoutMs: number,
  root: Root,
  timestamp: Uint8Array,
): Promise<boolean> {
  const version = Metadata.fromBytes(timestamp, 'timestamp').signed.version;
  for (let attempt = 0; attempt < 5; attempt++) {
    const held = await readOwn(store, timeoutMs, TIMESTAMP_KEY, DEFAULT_LIMITS.timestampMaxLength);
    const heldInfo: ObjectInfo | undefined =
      held?.info ?? (await storageCall(TIMESTAMP_KEY, timeoutMs, () => store.head(TIMESTAMP_KEY)));
    if (held !== undefined) {
      if (bytesEqual(held.bytes, timestamp)) return false;
      try {
        const current = Metadata.fromBytes(held.bytes, 'timestamp');
        await verifyDelegate(root, 'timestamp', current);
        if (current.signed.version >= version) return false;
      } catch (error) {
        // Not a timestamp of this repository: replaced below.
        if (!isVerifyError(error)) throw error;
      }
    }
    try {
      await storageCall(TIMESTAMP_KEY, timeoutMs, () =>
        store.put(TIMESTAMP_KEY, timestamp, {
          contentType: 'application/json',
          contentLength: timestamp.length,
          ...(heldInfo === undefined ? { ifNoneMatch: '*' as const } : { ifMatch: heldInfo.etag }),
        }),
      );
      return true;
    } catch (error) {
      const cause = isEdgeError(error) ? error.cause : error;
      if (!isStorageError(cause, 'PRECONDITION_FAILED')) throw error;
      // Moved under us: read it again and decide anew.
    }
  }
  throw new EdgeError('STORAGE_UNAVAILABLE', `${TIMESTAMP_KEY} kept changing during the sync`);
}

/**
 * Moves the mirror's log/checkpoint to `bytes` (verified by the caller), compare-and-swap on
 * the one it held (`previous`; If-None-Match: * on a mirror without one), unless the mirror
 * meanwhile holds one at least as large (`atLeastAsNew`: another job got there first). Returns
 * whether it wrote.
 */
export async function commitCheckpoint(
  store: BlobStore,
  timeoutMs: number,
  previous: ObjectInfo | undefined,
  bytes: Uint8Array,
  atLeastAsNew: (held: Uint8Array) => Promise<boolean>,
): Promise<boolean> {
  let expected = previous;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await storageCall(CHECKPOINT_KEY, timeoutMs, () =>
        store.put(CHECKPOINT_KEY, bytes, {
          contentType: 'text/plain; charset=utf-8',
          contentLength: bytes.length,
          ...(expected === undefined ? { ifNoneMatch: '*' as const } : { ifMatch: expected.etag }),
        }),
      );
      return true;
    } catch (error) {
      const cause = isEdgeError(error) ? error.cause : error;
      if (!isStorageError(cause, 'PRECONDITION_FAILED')) throw error;
    }
    // Moved under us: keep a newer one, replace an older one.
    const held = await readOwn(store, timeoutMs, CHECKPOINT_KEY, MAX_NOTE_BYTES);
    if (held !== undefined && (bytesEqual(held.bytes, bytes) || (await atLeastAsNew(held.bytes)))) {
      return false;
    }
    expected =
      held?.info ??
      (await storageCall(CHECKPOINT_KEY, timeoutMs, () => store.head(CHECKPOINT_KEY)));
  }
  throw new EdgeError('STORAGE_UNAVAILABLE', `${CHECKPOINT_KEY} kept changing during the sync`);
}

/** One metadata file the mirror lacks, or holds with other bytes. */
export interface MetadataWrite {
  readonly key: string;
  readonly bytes: Uint8Array;
  /** The mirror holds other bytes under the key: replaced rather than created. */
  readonly replace: boolean;
}

export interface MetadataPlan {
  /** In publication order: root versions, targets, snapshot, root.json. */
  readonly writes: readonly MetadataWrite[];
  /** Keys the mirror already holds as they should be. */
  readonly held: readonly string[];
}

/**
 * Which of a verified release's metadata files the mirror must write: every root version (above
 * the pinned one, the bytes the chain walk accepted; the pinned one and older, read and checked
 * only when the mirror lacks them), the versioned targets and snapshot, and root.json (the
 * newest root's bytes). Rejects UPSTREAM_INVALID when an old root upstream does not check out.
 */
export async function planReleaseMetadata(
  store: BlobStore,
  timeoutMs: number,
  repository: TrustedRepository,
  release: VerifiedRelease,
): Promise<MetadataPlan> {
  const writes: MetadataWrite[] = [];
  const held: string[] = [];
  const want = async (key: string, bytes: Uint8Array) => {
    const mine = await readOwn(store, timeoutMs, key, bytes.length);
    if (mine !== undefined && bytesEqual(mine.bytes, bytes)) held.push(key);
    else writes.push({ key, bytes, replace: mine !== undefined });
  };
  const newest = release.root.signed.version;
  let newestRoot: StoredBytes | undefined;
  for (let version = 1; version <= newest; version++) {
    const key = rootKey(version);
    if (version <= repository.pinnedVersion && version < newest) {
      // Already there: checked when served (VerifiedSource); only missing ones are read.
      if ((await storageCall(key, timeoutMs, () => store.head(key))) !== undefined) {
        held.push(key);
        continue;
      }
    }
    let file: StoredBytes | undefined;
    try {
      file = await repository.rootFile(version);
    } catch (error) {
      throw upstreamInvalid(error, key);
    }
    // An old root upstream no longer has is no reason to hold back a release.
    if (file === undefined) continue;
    if (version === newest) newestRoot = file;
    await want(key, file.bytes);
  }
  await want(release.targets.info.key, release.targets.bytes);
  await want(release.snapshot.info.key, release.snapshot.bytes);
  if (newestRoot !== undefined) await want(ROOT_COPY_KEY, newestRoot.bytes);
  return { writes, held };
}

/** Carries out one planned write: create-only, or a replacement of wrong bytes. */
export async function applyMetadataWrite(
  store: BlobStore,
  timeoutMs: number,
  write: MetadataWrite,
): Promise<void> {
  const { key, bytes } = write;
  // root.json is the one mutable file here: always a plain put.
  if (write.replace || key === ROOT_COPY_KEY) {
    await storageCall(key, timeoutMs, () =>
      store.put(key, bytes, { contentType: 'application/json', contentLength: bytes.length }),
    );
    return;
  }
  await placeMetadata(store, timeoutMs, key, bytes);
}

/**
 * Writes a verified release's metadata into `store` in publication order: root versions, the
 * versioned targets and snapshot, root.json, timestamp.json last. The pull-through mirror's
 * way (it fetches blobs on demand rather than first); the sync job runs the same steps with
 * progress. Resolves with whether timestamp.json was written.
 */
export async function writeReleaseMetadata(
  store: BlobStore,
  timeoutMs: number,
  repository: TrustedRepository,
  release: VerifiedRelease,
): Promise<boolean> {
  const plan = await planReleaseMetadata(store, timeoutMs, repository, release);
  for (const write of plan.writes) await applyMetadataWrite(store, timeoutMs, write);
  return commitTimestamp(store, timeoutMs, release.root.signed, release.timestamp.bytes);
}

/** The mirror's own timestamp, if it verifies under `root`: its version, else undefined. */
async function verifiedVersion(
  root: Root,
  file: StoredBytes | undefined,
): Promise<number | undefined> {
  if (file === undefined) return undefined;
  try {
    const timestamp = Metadata.fromBytes(file.bytes, 'timestamp');
    await verifyDelegate(root, 'timestamp', timestamp);
    return timestamp.signed.version;
  } catch (error) {
    if (isVerifyError(error)) return undefined;
    throw error;
  }
}

/** 5.5.5 against the mirror's own snapshot: no targets role may go back or disappear. */
async function checkNoTargetsRollback(
  store: BlobStore,
  timeoutMs: number,
  release: VerifiedRelease,
  mine: StoredBytes,
): Promise<void> {
  let snapshotVersion: number;
  try {
    snapshotVersion = Metadata.fromBytes(mine.bytes, 'timestamp').signed.snapshotMeta.version;
  } catch {
    return;
  }
  const held = await readOwn(
    store,
    timeoutMs,
    `metadata/${snapshotVersion}.snapshot.json`,
    DEFAULT_LIMITS.snapshotMaxLength,
  );
  if (held === undefined) return;
  let previous;
  try {
    previous = Metadata.fromBytes(held.bytes, 'snapshot');
    await verifyDelegate(release.root.signed, 'snapshot', previous);
  } catch (error) {
    if (isVerifyError(error)) return;
    throw error;
  }
  const next = release.snapshot.metadata.signed.meta;
  for (const [name, file] of previous.signed.meta) {
    const now = next.get(name);
    if (now === undefined || now.version < file.version) {
      throw new EdgeError(
        'UPSTREAM_INVALID',
        `upstream's snapshot v${release.snapshot.metadata.signed.version} ${now === undefined ? 'drops' : `has an older`} ${name} than this mirror's (v${file.version}): refusing to go backwards; nothing was copied`,
      );
    }
  }
}

/** Removes staging objects a killed job left behind; recent ones may be another job's. */
async function removeStaleStaging(store: BlobStore, timeoutMs: number, now: Date): Promise<void> {
  let cursor: string | undefined;
  do {
    const page = await storageCall(STAGING_PREFIX, timeoutMs, () =>
      store.list({ prefix: STAGING_PREFIX, cursor }),
    );
    for (const object of page.objects) {
      if (now.getTime() - object.lastModified.getTime() > STALE_STAGING_MS) {
        await storageCall(object.key, timeoutMs, () => store.delete(object.key));
      }
    }
    cursor = page.cursor;
  } while (cursor !== undefined);
}

/** What the log needs: upstream's checkpoint, proven to extend the mirror's, and its tiles. */
interface LogPlan {
  readonly policy: CheckpointPolicy;
  readonly checkpoint: Checkpoint;
  readonly bytes: Uint8Array;
  /** The mirror's checkpoint object, for the compare-and-swap. */
  readonly previous: ObjectInfo | undefined;
  readonly tree: TreeTiles;
  /** Tiles and entry bundles the mirror lacks, each bundle after its level-0 tile. */
  readonly tiles: readonly LogTile[];
  /** Upstream's checkpoint is the mirror's: nothing to write. */
  readonly current: boolean;
}

/**
 * Checks upstream's log against the mirror's (see the top of this file) and lists the tiles to
 * copy, writing nothing. Undefined when the root declares no log, or neither side has one.
 */
async function planLog(
  store: BlobStore,
  timeoutMs: number,
  upstream: Upstream,
  release: VerifiedRelease,
): Promise<LogPlan | undefined> {
  try {
    const policy = await logPolicyOf(release.root.signed);
    if (policy === undefined) return undefined;
    const mine = await readOwn(store, timeoutMs, CHECKPOINT_KEY, MAX_NOTE_BYTES);
    // One that does not verify under this root is not this log's: it is replaced.
    const held =
      mine === undefined
        ? undefined
        : (await openCheckpoint(mine.bytes, policy).catch(() => undefined))?.checkpoint;
    const answer = await upstream.bytes(CHECKPOINT_KEY, MAX_NOTE_BYTES);
    if (answer === undefined || answer === 'not-modified') {
      if (held === undefined) return undefined;
      throw new EdgeError(
        'UPSTREAM_INVALID',
        `upstream has no ${CHECKPOINT_KEY}, this mirror's log has ${held.size} entries: refusing to go backwards; nothing was copied`,
      );
    }
    const { checkpoint } = await openCheckpoint(answer.bytes, policy);
    const fetch = fetchOnce(async (path, cap) => {
      const got = await upstream.bytes(`${LOG_PREFIX}${path}`, cap);
      return got === undefined || got === 'not-modified' ? undefined : got.bytes;
    });
    const tree = new TreeTiles(checkpoint, {
      held: async (path) => {
        const key = `${LOG_PREFIX}${path}`;
        const tile = classifyPath(`/${key}`)?.tile;
        return tile === undefined
          ? undefined
          : (await readOwn(store, timeoutMs, key, tileCap(tile)))?.bytes;
      },
      fetch,
    });
    const base = {
      policy,
      checkpoint,
      bytes: answer.bytes,
      previous: mine?.info,
      tree,
    };
    if (mine !== undefined && bytesEqual(mine.bytes, answer.bytes)) {
      return { ...base, tiles: [], current: true };
    }
    // Proven from upstream's tiles alone: a fork is upstream's disagreeing with the mirror's.
    const check = new TreeTiles(checkpoint, { held: NOTHING_HELD, fetch });
    await checkExtends(new LogReader(check.fetch, policy), held, checkpoint);
    await check.checkRoot();
    // Tiles of the mirror's own size were all copied before its checkpoint was written.
    const wanted =
      held === undefined || held.origin !== checkpoint.origin
        ? tilesForSize(checkpoint.size)
        : newTiles(held.size, checkpoint.size);
    const tiles: LogTile[] = [];
    for (const tile of wanted.sort((a, b) => b.level - a.level || a.index - b.index)) {
      const withBundle: LogTile[] =
        tile.level === 0
          ? [tile, { level: 'entries', index: tile.index, width: tile.width }]
          : [tile];
      for (const each of withBundle) {
        const key = `${LOG_PREFIX}${logTilePath(each)}`;
        const info = await storageCall(key, timeoutMs, () => store.head(key));
        if (info === undefined) tiles.push(each);
      }
    }
    return { ...base, tiles, current: false };
  } catch (error) {
    throw logRefusal(error) ?? error;
  }
}

interface PlannedTarget {
  readonly key: string;
  readonly file: TargetFile;
  /** The mirror holds something else under the key: deleted before the copy. */
  readonly replace: boolean;
}

export async function syncMirror(options: SyncOptions): Promise<SyncReport> {
  const { store, hash } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_SYNC_TIMEOUT_MS;
  const now = options.now ?? (() => new Date());
  const progress = options.onProgress ?? (() => undefined);
  const upstream = new Upstream({
    baseUrl: options.upstreamUrl,
    fetch: options.fetch,
    timeoutMs,
  });
  const repository = new TrustedRepository({
    trustedRoot: options.trustedRoot,
    hash,
    reader: upstreamReader(upstream, now),
    now,
  });

  const mine = await readOwn(store, timeoutMs, TIMESTAMP_KEY, DEFAULT_LIMITS.timestampMaxLength);
  if (mine !== undefined) repository.seedTimestamp(mine);
  let release: VerifiedRelease;
  try {
    release = await repository.refresh();
  } catch (error) {
    if (isVerifyError(error, 'ROLLBACK')) {
      throw new EdgeError(
        'UPSTREAM_INVALID',
        `upstream is behind this mirror (${error.message}): refusing to go backwards; nothing was copied`,
        { cause: error },
      );
    }
    throw upstreamInvalid(error, `upstream ${upstream.baseUrl} does not verify`);
  }
  const upstreamVersion = release.timestamp.metadata.signed.version;
  const previousVersion = await verifiedVersion(release.root.signed, mine);
  progress({ kind: 'checked', upstreamVersion, mirrorVersion: previousVersion });
  const sameTimestamp = mine !== undefined && release.timestamp.bytes === mine.bytes;
  if (mine !== undefined && previousVersion !== undefined && !sameTimestamp) {
    await checkNoTargetsRollback(store, timeoutMs, release, mine);
  }
  const log = await planLog(store, timeoutMs, upstream, release);
  // The Updater kept the mirror's own copy: upstream has the same version (and the same log).
  if (sameTimestamp && (log === undefined || log.current)) {
    return {
      timestampVersion: upstreamVersion,
      previousVersion,
      objectsCopied: 0,
      bytesCopied: 0,
      upToDate: true,
      logSize: log?.checkpoint.size,
    };
  }
  const roles = [...release.snapshot.metadata.signed.meta.keys()].filter(
    (name) => name !== 'targets.json',
  );
  if (roles.length > 0) {
    throw new EdgeError(
      'UPSTREAM_INVALID',
      `upstream delegates targets roles (${roles.join(', ')}), which this mirror cannot copy yet`,
    );
  }
  if (release.root.signed.consistentSnapshot !== true) {
    throw new EdgeError(
      'UPSTREAM_INVALID',
      'upstream does not use consistent snapshots: its files cannot be mirrored by hash',
    );
  }
  await removeStaleStaging(store, timeoutMs, now());

  // Plan: which blobs are missing, so that progress has a total.
  const planned: PlannedTarget[] = [];
  for (const file of release.targets.metadata.signed.targets.values()) {
    const sha256 = file.hashes.sha256;
    if (sha256 === undefined || !/^[0-9a-f]{64}$/.test(sha256)) {
      throw new EdgeError(
        'UPSTREAM_INVALID',
        `target ${file.path} has no sha256, so it has no name on a mirror`,
      );
    }
    const key = targetKey(file.path, sha256);
    const held = await storageCall(key, timeoutMs, () => store.head(key));
    if (held !== undefined && held.size === file.length) {
      progress({ kind: 'skipped', key });
      continue;
    }
    planned.push({ key, file, replace: held !== undefined });
  }
  const metadata = await planReleaseMetadata(store, timeoutMs, repository, release);
  for (const key of metadata.held) progress({ kind: 'skipped', key });
  const logWrites = log === undefined || log.current ? 0 : log.tiles.length + 1;
  // Blobs, log tiles and checkpoint, metadata, and timestamp.json.
  let total = planned.length + logWrites + metadata.writes.length + 1;
  let done = 0;
  let objectsCopied = 0;
  let bytesCopied = 0;
  const copied = (key: string, bytes: number) => {
    done++;
    objectsCopied++;
    bytesCopied += bytes;
    progress({ kind: 'copied', key, bytes, done, total });
  };

  for (const { key, file, replace } of planned) {
    if (replace) await storageCall(key, timeoutMs, () => store.delete(key));
    const bytes = await copyVerified(store, upstream, hash, key, {
      length: file.length,
      hashes: file.hashes,
      cap: file.length,
    });
    copied(key, bytes);
  }
  if (log !== undefined && !log.current) {
    for (const tile of log.tiles) {
      const key = `${LOG_PREFIX}${logTilePath(tile)}`;
      let bytes: Uint8Array;
      try {
        bytes = await log.tree.tile(tile);
      } catch (error) {
        throw logRefusal(error) ?? error;
      }
      await placeTile(store, timeoutMs, key, bytes);
      copied(key, bytes.length);
    }
    const { policy, checkpoint } = log;
    const wrote = await commitCheckpoint(
      store,
      timeoutMs,
      log.previous,
      log.bytes,
      async (held) => {
        const other = await openCheckpoint(held, policy).catch(() => undefined);
        return other !== undefined && other.checkpoint.size >= checkpoint.size;
      },
    );
    if (wrote) copied(CHECKPOINT_KEY, log.bytes.length);
    else {
      total--;
      progress({ kind: 'skipped', key: CHECKPOINT_KEY });
    }
  }
  for (const write of metadata.writes) {
    await applyMetadataWrite(store, timeoutMs, write);
    copied(write.key, write.bytes.length);
  }
  const timestamp = release.timestamp.bytes;
  if (await commitTimestamp(store, timeoutMs, release.root.signed, timestamp)) {
    copied(TIMESTAMP_KEY, timestamp.length);
  } else {
    // Another job got there first with this timestamp or a newer one.
    total--;
    progress({ kind: 'skipped', key: TIMESTAMP_KEY });
  }
  return {
    timestampVersion: upstreamVersion,
    previousVersion,
    objectsCopied,
    bytesCopied,
    upToDate: false,
    logSize: log?.checkpoint.size,
  };
}

/** Places a proven tile create-only; one already there is the same tile (tiles never change). */
async function placeTile(
  store: BlobStore,
  timeoutMs: number,
  key: string,
  bytes: Uint8Array,
): Promise<void> {
  await storageCall(key, timeoutMs, async () => {
    try {
      await store.put(key, bytes, {
        contentType: 'application/octet-stream',
        contentLength: bytes.length,
        ifNoneMatch: '*',
      });
    } catch (error) {
      if (!isStorageError(error, 'PRECONDITION_FAILED')) throw error;
    }
  });
}
