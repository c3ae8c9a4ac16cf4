/**
 * The history of a repository as its transparency log tells it, rebuilt from public data alone:
 * a mirror's `log/` and `metadata/` and the root the reader pins. `cairn monitor` follows it,
 * `cairn audit` reports it.
 *
 * The log is read at a verified checkpoint; each entry names one metadata file by role,
 * version, length and sha256. The file is fetched from the mirror, checked against the entry,
 * and verified under the root of its time: the newest root logged before it, the chain of
 * roots itself verified N → N+1 from the pinned root with the TUF client's rules
 * (TrustedMetadataSet.updateRoot). What does not hold is an anomaly in the result, not an
 * exception: a history with its anomalies is the evidence an auditor needs. Only a mirror that
 * cannot be reached at all, or a pinned root that is unusable, throws.
 */
import type { Checkpoint, CheckpointPolicy, OpenedCheckpoint } from '@cairn/tlog/checkpoint';
import { isTlogError } from '@cairn/tlog/errors';
import { parseEntry, type MetadataEntry } from '@cairn/tlog/entry';
import {
  checkpointPolicy,
  KEY_NAME_FIELD,
  logConfigFromRoot,
  type LogConfig,
} from '@cairn/tlog/log-config';
import { LogReader } from '@cairn/tlog/log-reader';
import { leafHash } from '@cairn/tlog/merkle';
import { toHex } from '@cairn/verify/encoding';
import { isVerifyError, VerifyError } from '@cairn/verify/errors';
import { sha256Hex, webHashPort } from '@cairn/verify/hash';
import type { Key } from '@cairn/verify/keys';
import { DEFAULT_LIMITS } from '@cairn/verify/limits';
import {
  Metadata,
  TOP_LEVEL_ROLES,
  verifyDelegate,
  type Root,
  type Signed,
  type Targets,
  type TopLevelRole,
} from '@cairn/verify/metadata';
import { TrustedMetadataSet } from '@cairn/verify/trusted-metadata-set';

/** How long one request may take before the mirror counts as unreachable. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Bytes read of a checkpoint or a tile: a checkpoint is a few hundred bytes, a full tile 8 KiB,
 * an entry bundle at most 256 KiB (256 entries of at most 1 KiB). */
const MAX_LOG_OBJECT_BYTES = 300_000;

export interface ReadHistoryOptions {
  /** Base URL of a mirror (or the origin): `{mirror}/metadata/...` and `{mirror}/log/...`. */
  readonly mirror: string;
  /** The pinned root: bytes of a root.json the reader trusts, usually version 1. */
  readonly trustedRoot: Uint8Array;
  readonly fetch?: typeof fetch | undefined;
  /** Reference time; default the clock. */
  readonly now?: (() => Date) | undefined;
  /** First log index reported in `entries` (default 0). Root entries before it are still
   * verified: the chain of roots starts at the pinned root. */
  readonly from?: number | undefined;
  /** End (exclusive) of the indices reported; default the checkpoint's size. */
  readonly to?: number | undefined;
  /** Approvals a release needs beyond its role's threshold (default: the threshold). */
  readonly minApprovals?: number | undefined;
  /** Per-request timeout, default DEFAULT_TIMEOUT_MS. */
  readonly timeoutMs?: number | undefined;
  /**
   * A signed checkpoint note to read the log at instead of the mirror's current checkpoint
   * (`cairn audit --checkpoint`): verified with the log key, proven consistent with the
   * mirror's current checkpoint, and then every entry and proof is of its tree, so that a later
   * read of a grown log gives the same history. Fails with PinnedCheckpointError.
   */
  readonly checkpoint?: string | undefined;
}

export type PinnedCheckpointErrorCode =
  /** The note does not verify under the log's key, origin and witness policy (a foreign or
   * altered checkpoint). */
  | 'CHECKPOINT_INVALID'
  /** The pinned checkpoint is larger than the mirror's current one: the mirror is behind it. */
  | 'CHECKPOINT_AHEAD'
  /** The pinned checkpoint and the mirror's current one cannot both be true: a fork. */
  | 'SPLIT_VIEW'
  /** The mirror's current checkpoint, or the tiles that prove consistency, did not verify. */
  | 'CONSISTENCY_UNPROVEN';

/** Why the log could not be read at the checkpoint given in `ReadHistoryOptions.checkpoint`. */
export class PinnedCheckpointError extends Error {
  override readonly name = 'PinnedCheckpointError';
  readonly code: PinnedCheckpointErrorCode;
  override readonly cause: unknown;

  constructor(code: PinnedCheckpointErrorCode, message: string, options?: { cause?: unknown }) {
    super(message);
    this.code = code;
    this.cause = options?.cause;
  }
}

export type EntryStatus = 'verified' | 'missing' | 'mismatch' | 'malformed' | 'unsigned';

export interface Signer {
  readonly keyid: string;
  /** The key's `x-cairn-name`, else the first 12 hex digits of its keyid. */
  readonly name: string;
  readonly named: boolean;
}

export interface Approvals {
  /** The role whose keys count; for a root, the previous root's `root` role. */
  readonly role: string;
  readonly threshold: number;
  /** Valid signatures by keys of the role, each key once. */
  readonly signers: Signer[];
  /** Keyids of signatures that are not valid, or not by a key of the role. */
  readonly invalid: string[];
  readonly meetsThreshold: boolean;
  /** At least max(threshold, minApprovals) signers. */
  readonly meetsPolicy: boolean;
}

export interface ReleaseFile {
  readonly path: string;
  readonly length: number;
  readonly hashes: Record<string, string>;
}

export interface Release {
  readonly targetsVersion: number;
  readonly files: ReleaseFile[];
}

export type RoleKeys = Record<
  TopLevelRole,
  { readonly keyids: string[]; readonly threshold: number }
>;

export interface RoleChange {
  readonly role: string;
  readonly added: Signer[];
  readonly removed: Signer[];
  readonly thresholdBefore: number | undefined;
  readonly thresholdAfter: number;
}

export interface RootChanges {
  /** undefined for the first root seen. */
  readonly previousVersion: number | undefined;
  /** The roles whose keys or threshold changed. */
  readonly roles: RoleChange[];
  readonly logKeyChanged: boolean;
}

export interface RootDetails {
  readonly keys: { keyid: string; name: string; keytype: string; scheme: string }[];
  readonly roles: RoleKeys;
  readonly logKey: string | undefined;
  readonly changes: RootChanges;
}

export interface HistoryEntry {
  readonly index: number;
  readonly role: string;
  readonly version: number;
  readonly length: number;
  readonly sha256: string;
  /** The origin's clock when it published. */
  readonly time: string;
  /** The entry as logged, and its RFC 6962 leaf hash. */
  readonly entryText: string;
  readonly leafHash: string;
  /** Verified against `History.checkpoint.rootHash`. */
  readonly inclusionProof: string[];
  /** Where the metadata file is on a mirror. */
  readonly file: string;
  readonly status: EntryStatus;
  /** The root version it was verified under. */
  readonly rootVersion: number;
  readonly expires?: string;
  readonly approvals?: Approvals;
  readonly release?: Release;
  readonly root?: RootDetails;
  readonly snapshot?: { readonly meta: { readonly role: string; readonly version: number }[] };
}

export type AnomalyCode =
  | 'CHECKPOINT_INVALID'
  | 'LOG_INCOMPLETE'
  | 'LOG_INVALID'
  | 'ENTRY_MISSING'
  | 'ENTRY_MISMATCH'
  | 'BAD_METADATA'
  | 'THRESHOLD'
  | 'BELOW_POLICY'
  | 'ROOT_CHAIN_BROKEN'
  | 'ROOT_MISMATCH'
  | 'UNLOGGED_ROOT'
  | 'UNLOGGED_TARGETS'
  | 'VERSION_REPEATED'
  | 'VERSION_REGRESSION'
  | 'EXPIRED_WHEN_LOGGED'
  | 'TIME_REGRESSION';

export type Severity = 'critical' | 'warning';

/** Worth a look, but no evidence that anyone forged or hid anything. */
const WARNINGS: ReadonlySet<AnomalyCode> = new Set([
  'BELOW_POLICY',
  'TIME_REGRESSION',
  'EXPIRED_WHEN_LOGGED',
]);

export function severityOf(code: AnomalyCode): Severity {
  return WARNINGS.has(code) ? 'warning' : 'critical';
}

export interface Anomaly {
  readonly code: AnomalyCode;
  readonly severity: Severity;
  /** One line. */
  readonly message: string;
  readonly index?: number;
  readonly role?: string;
  readonly version?: number;
}

export interface History {
  readonly mirror: string;
  readonly readAt: string;
  /** The verified checkpoint read at; undefined when it did not verify (see anomalies). */
  readonly checkpoint:
    | {
        readonly origin: string;
        readonly size: number;
        readonly rootHash: string;
        /** The signed note as served: anyone can verify it again with the log key. */
        readonly note: string;
      }
    | undefined;
  /** With `ReadHistoryOptions.checkpoint`: the mirror's current checkpoint, proven to extend
   * the pinned one (the history itself is read at the pinned one). */
  readonly current?: { readonly size: number; readonly rootHash: string } | undefined;
  /** The log the newest trusted root declares. */
  readonly log: {
    readonly origin: string;
    readonly key: string;
    readonly witnesses: string[];
    readonly witnessThreshold: number;
  };
  /** The newest logged version of each top-level role (root: the newest trusted). */
  readonly latest: { readonly root: number; readonly targets?: number; readonly snapshot?: number };
  readonly entries: HistoryEntry[];
  readonly releases: HistoryEntry[];
  readonly keyChanges: HistoryEntry[];
  readonly anomalies: Anomaly[];
}

/** readHistory's result plus what the monitor goes on with. */
export interface LogTrace {
  readonly history: History;
  /** The newest root verified N → N+1 from the pinned root along the log. */
  readonly root: Metadata<Root>;
  readonly policy: CheckpointPolicy;
  readonly checkpoint: OpenedCheckpoint | undefined;
  readonly reader: LogReader;
  /** The checkpoint verified and every entry up to it was read: `logged` is the whole log. */
  readonly complete: boolean;
  /** Every logged (role, version) (see loggedKey), over the whole log read: the first entry. */
  readonly logged: ReadonlyMap<string, LoggedEntry>;
}

export interface LoggedEntry {
  readonly index: number;
  readonly sha256: string;
  readonly time: string;
}

export const loggedKey = (role: string, version: number): string => `${role}@${String(version)}`;

/** Reads and verifies the whole log through one mirror. */
export async function readHistory(options: ReadHistoryOptions): Promise<History> {
  return (await traceLog(options)).history;
}

// ---------------------------------------------------------------------------------------------
// Fetching from a mirror

/** A 403 or 404: the mirror does not have the file. */
export class MissingFile extends Error {
  override readonly name = 'MissingFile';
}

function isMissing(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 8; depth++) {
    if (e instanceof MissingFile || isTlogError(e, 'NOT_FOUND')) return true;
    e = e.cause;
  }
  return false;
}

/** `base` with exactly one trailing slash, so that relative paths resolve beneath it. */
export function mirrorBase(mirror: string): string {
  return mirror.endsWith('/') ? mirror : `${mirror}/`;
}

export interface MirrorFetch {
  /** The bytes at `path` under the mirror, at most `maxLength + 1` of them (so that a longer
   * file shows as longer); MissingFile on 403/404; VerifyError FETCH_FAILED otherwise. */
  (path: string, maxLength: number): Promise<Uint8Array>;
}

export function mirrorFetch(
  mirror: string,
  fetchFn: typeof fetch = fetch,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): MirrorFetch {
  const base = mirrorBase(mirror);
  return async (path, maxLength) => {
    const url = new URL(path, base).href;
    let response: Response;
    try {
      response = await fetchFn(url, {
        signal: AbortSignal.timeout(timeoutMs),
        headers: { 'cache-control': 'no-cache' },
      });
    } catch (error) {
      throw new VerifyError('FETCH_FAILED', `${url}: ${describeError(error)}`, { cause: error });
    }
    if (response.status === 404 || response.status === 403) {
      await response.body?.cancel();
      throw new MissingFile(`${url}: HTTP ${String(response.status)}`);
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new VerifyError('FETCH_FAILED', `${url}: HTTP ${String(response.status)}`);
    }
    try {
      return await readCapped(response, maxLength + 1);
    } catch (error) {
      throw new VerifyError('FETCH_FAILED', `${url}: ${describeError(error)}`, { cause: error });
    }
  };
}

async function readCapped(response: Response, cap: number): Promise<Uint8Array> {
  // Node's web streams are async iterable; leaving the loop early cancels the body.
  const body = response.body as AsyncIterable<Uint8Array> | null;
  if (body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const value of body) {
    chunks.push(value);
    total += value.length;
    if (total >= cap) break;
  }
  const out = new Uint8Array(Math.min(total, cap));
  let at = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, out.length - at);
    out.set(part, at);
    at += part.length;
    if (at >= out.length) break;
  }
  return out;
}

export function describeError(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === 'TimeoutError') return 'timed out';
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return `${error.message}${cause}`;
  }
  return String(error);
}

/** The log's objects under `{mirror}/log/`, for LogReader. */
export function logFetch(get: MirrorFetch): (path: string) => Promise<Uint8Array> {
  return async (path) => {
    const bytes = await get(`log/${path}`, MAX_LOG_OBJECT_BYTES);
    if (bytes.length > MAX_LOG_OBJECT_BYTES) {
      throw new VerifyError(
        'TOO_LARGE',
        `log/${path}: more than ${String(MAX_LOG_OBJECT_BYTES)} bytes`,
      );
    }
    return bytes;
  };
}

/** Where a logged role's version lives on a mirror (TUF consistent snapshots). */
export function metadataPath(role: string, version: number): string {
  return `metadata/${String(version)}.${role}.json`;
}

// ---------------------------------------------------------------------------------------------
// Keys and signatures

/** The name a key's holder goes by: its `x-cairn-name`, else its keyid's first 12 digits. */
export function signerOf(keyid: string, key: Key | undefined): Signer {
  const name = key?.toJSON()[KEY_NAME_FIELD];
  return typeof name === 'string' && name !== ''
    ? { keyid, name, named: true }
    : { keyid, name: keyid.slice(0, 12), named: false };
}

/**
 * Who approved `metadata` among the keys `delegator` names for `roleName`: each valid
 * signature by a key of the role, each key once (as verifyDelegate counts them), and the
 * signatures that count for nothing.
 */
export async function approvalsOf(
  delegator: Root | Targets,
  roleName: string,
  metadata: Metadata,
  minApprovals = 0,
): Promise<Approvals> {
  const delegation = delegator.delegationFor(roleName);
  const data = metadata.signedBytes();
  const signers: Signer[] = [];
  const invalid: string[] = [];
  const identities = new Set<string>();
  for (const signature of metadata.signatures) {
    const key = delegation?.keys.get(signature.keyid);
    const inRole = delegation?.role.keyids.includes(signature.keyid) === true;
    if (key === undefined || !inRole || !(await key.verify(signature.sig, data))) {
      invalid.push(signature.keyid);
      continue;
    }
    const identity = await key.identity();
    if (identities.has(identity)) continue;
    identities.add(identity);
    signers.push(signerOf(signature.keyid, key));
  }
  const threshold = delegation?.role.threshold ?? 1;
  // verifyDelegate is the verdict that counts; the list above is what the report shows.
  let meetsThreshold = delegation !== undefined;
  if (meetsThreshold) {
    try {
      await verifyDelegate(delegator, roleName, metadata);
    } catch (error) {
      if (!isVerifyError(error, 'THRESHOLD')) throw error;
      meetsThreshold = false;
    }
  }
  return {
    role: roleName,
    threshold,
    signers,
    invalid,
    meetsThreshold,
    meetsPolicy: meetsThreshold && signers.length >= Math.max(threshold, minApprovals),
  };
}

function roleKeys(root: Root): RoleKeys {
  return Object.fromEntries(
    TOP_LEVEL_ROLES.map((role) => [
      role,
      { keyids: [...root.roles[role].keyids], threshold: root.roles[role].threshold },
    ]),
  ) as RoleKeys;
}

function logKeyOf(root: Root): string | undefined {
  try {
    return logConfigFromRoot(root.extra)?.key;
  } catch {
    return undefined;
  }
}

/** What changed from `before` to `after`: keys added and removed per role, thresholds, the log key. */
export function rootChanges(before: Root | undefined, after: Root): RootChanges {
  const roles: RoleChange[] = [];
  for (const role of TOP_LEVEL_ROLES) {
    const was = before?.roles[role];
    const now = after.roles[role];
    const added = now.keyids
      .filter((k) => was?.keyids.includes(k) !== true)
      .map((k) => signerOf(k, after.keys.get(k)));
    const removed = (was?.keyids ?? [])
      .filter((k) => !now.keyids.includes(k))
      .map((k) => signerOf(k, before?.keys.get(k)));
    if (added.length > 0 || removed.length > 0 || was?.threshold !== now.threshold) {
      roles.push({
        role,
        added,
        removed,
        thresholdBefore: was?.threshold,
        thresholdAfter: now.threshold,
      });
    }
  }
  return {
    previousVersion: before?.version,
    roles,
    logKeyChanged: before !== undefined && logKeyOf(before) !== logKeyOf(after),
  };
}

function rootDetails(before: Root | undefined, root: Root): RootDetails {
  return {
    keys: [...root.keys].map(([keyid, key]) => ({
      keyid,
      name: signerOf(keyid, key).name,
      keytype: key.keytype,
      scheme: key.scheme,
    })),
    roles: roleKeys(root),
    logKey: logKeyOf(root),
    changes: rootChanges(before, root),
  };
}

// ---------------------------------------------------------------------------------------------
// Following the log

interface Found {
  readonly index: number;
  readonly bytes: Uint8Array;
  readonly entry: MetadataEntry;
}

/** Reads and verifies the log through one mirror, and keeps what the monitor needs next. */
export async function traceLog(options: ReadHistoryOptions): Promise<LogTrace> {
  const now = options.now ?? (() => new Date());
  const readAt = now();
  const get = mirrorFetch(options.mirror, options.fetch, options.timeoutMs);
  const anomalies: Anomaly[] = [];
  const note: Note = (a) => anomalies.push({ ...a, severity: severityOf(a.code) });

  // The log key comes from the newest root the mirror chains to, as a client updates root
  // (5.3): a rotation may have moved the log to a new key.
  const mirrorRoots = await newestMirrorRoot(get, options.trustedRoot, readAt, note);
  const walk = await Walk.start(get, options, note, readAt);
  const config = logConfig(mirrorRoots.set.root.signed) ?? logConfig(walk.chain.root.signed);
  if (config === undefined) {
    throw new VerifyError(
      'MALFORMED',
      `root v${String(mirrorRoots.set.root.signed.version)} declares no transparency log (x-cairn-log)`,
    );
  }
  const policy = await checkpointPolicy(config);
  const reader = new LogReader(logFetch(get), policy);

  let opened: OpenedCheckpoint | undefined;
  let signedNote = '';
  let current: OpenedCheckpoint | undefined;
  if (options.checkpoint === undefined) {
    try {
      // Fetched here, not by reader.latest(): the signed note is kept, for whoever checks later.
      const raw = await logFetch(get)('checkpoint');
      signedNote = new TextDecoder().decode(raw);
      opened = await reader.open(raw);
    } catch (error) {
      if (!isTlogError(error) && !isMissing(error)) throw error;
      note({ code: 'CHECKPOINT_INVALID', message: `log/checkpoint: ${describeError(error)}` });
    }
  } else {
    signedNote = options.checkpoint;
    [opened, current] = await openPinned(reader, signedNote);
  }
  const complete = opened !== undefined && (await walk.follow(reader, opened.checkpoint));
  // A root the mirror serves beyond the newest logged one was never logged.
  if (opened !== undefined) {
    const beyond = mirrorRoots.versions.filter((version) => version > walk.newestLoggedRoot);
    const later =
      current === undefined
        ? new Set<number>()
        : await loggedAfter(
            reader,
            opened.checkpoint,
            current.checkpoint,
            beyond,
            mirrorRoots.bytes,
          );
    for (const version of beyond) {
      if (later.has(version)) continue;
      note({
        code: 'UNLOGGED_ROOT',
        role: 'root',
        version,
        message: `the mirror serves root v${String(version)}, which the log does not hold`,
      });
    }
  }

  const entries = walk.entries;
  const history: History = {
    mirror: options.mirror,
    readAt: readAt.toISOString(),
    checkpoint:
      opened === undefined
        ? undefined
        : {
            origin: opened.checkpoint.origin,
            size: opened.checkpoint.size,
            rootHash: toHex(opened.checkpoint.rootHash),
            note: signedNote,
          },
    ...(current === undefined
      ? {}
      : {
          current: {
            size: current.checkpoint.size,
            rootHash: toHex(current.checkpoint.rootHash),
          },
        }),
    log: {
      origin: config.origin,
      key: config.key,
      witnesses: [...config.witnesses],
      witnessThreshold: config.witnessThreshold,
    },
    latest: {
      root: walk.chain.root.signed.version,
      ...(walk.latest.targets === undefined ? {} : { targets: walk.latest.targets }),
      ...(walk.latest.snapshot === undefined ? {} : { snapshot: walk.latest.snapshot }),
    },
    entries,
    releases: entries.filter((e) => e.role !== 'root' && e.role !== 'snapshot'),
    keyChanges: entries.filter((e) => e.role === 'root'),
    anomalies,
  };
  return {
    history,
    root: walk.chain.root,
    policy,
    checkpoint: opened,
    reader,
    complete,
    logged: walk.logged,
  };
}

/**
 * The pinned checkpoint note opened under the log's policy, and the mirror's current checkpoint
 * it is proven consistent with: [pinned, current].
 */
async function openPinned(
  reader: LogReader,
  pinnedNote: string,
): Promise<[OpenedCheckpoint, OpenedCheckpoint]> {
  let pinned: OpenedCheckpoint;
  try {
    pinned = await reader.open(pinnedNote);
  } catch (error) {
    if (!isTlogError(error)) throw error;
    throw new PinnedCheckpointError(
      'CHECKPOINT_INVALID',
      `the checkpoint given does not verify under this log's key: ${describeError(error)}`,
      { cause: error },
    );
  }
  let current: OpenedCheckpoint;
  try {
    current = await reader.latest();
  } catch (error) {
    if (!isTlogError(error) && !isMissing(error)) throw error;
    throw new PinnedCheckpointError(
      'CONSISTENCY_UNPROVEN',
      `the mirror's log/checkpoint: ${describeError(error)}`,
      { cause: error },
    );
  }
  const [p, c] = [pinned.checkpoint, current.checkpoint];
  if (p.size > c.size) {
    throw new PinnedCheckpointError(
      'CHECKPOINT_AHEAD',
      `the checkpoint given has ${String(p.size)} entries, the mirror's current one only ${String(c.size)}`,
    );
  }
  try {
    await reader.checkConsistent(p, c);
  } catch (error) {
    if (isTlogError(error, 'SPLIT_VIEW')) {
      throw new PinnedCheckpointError('SPLIT_VIEW', error.message, { cause: error });
    }
    if (!isTlogError(error) && !isMissing(error)) throw error;
    throw new PinnedCheckpointError(
      'CONSISTENCY_UNPROVEN',
      `the checkpoint given (size ${String(p.size)}) could not be proven consistent with the mirror's (size ${String(c.size)}): ${describeError(error)}`,
      { cause: error },
    );
  }
  return [pinned, current];
}

/**
 * The root versions among `versions` that the current tree logs after the pinned one: a root
 * published after the pinned checkpoint is logged, only later, and not an anomaly of the
 * pinned tree. A tree that cannot be read counts as not logging them.
 */
async function loggedAfter(
  reader: LogReader,
  pinned: Checkpoint,
  current: Checkpoint,
  versions: readonly number[],
  bytes: ReadonlyMap<number, Uint8Array>,
): Promise<Set<number>> {
  const wanted = versions.flatMap((version) => {
    const b = bytes.get(version);
    return b === undefined ? [] : [{ role: 'root', version, bytes: b }];
  });
  if (wanted.length === 0 || current.size <= pinned.size) return new Set();
  try {
    const found = await reader.findMetadata(current, wanted, {
      stopBelow: pinned.size,
      maxScan: current.size - pinned.size,
    });
    return new Set(wanted.filter((_, i) => found[i] !== undefined).map((w) => w.version));
  } catch (error) {
    if (!isTlogError(error) && !isMissing(error)) throw error;
    return new Set();
  }
}

function logConfig(root: Root): LogConfig | undefined {
  try {
    return logConfigFromRoot(root.extra);
  } catch {
    return undefined;
  }
}

/** 5.3 the root update loop against the mirror: versions N+1, N+2, ... until one is missing. */
async function newestMirrorRoot(
  get: MirrorFetch,
  trustedRoot: Uint8Array,
  readAt: Date,
  note: Note,
): Promise<{ set: TrustedMetadataSet; versions: number[]; bytes: Map<number, Uint8Array> }> {
  const set = await TrustedMetadataSet.create(trustedRoot, readAt, webHashPort);
  const versions: number[] = [];
  const rootBytes = new Map<number, Uint8Array>();
  for (let i = 0; i < DEFAULT_LIMITS.maxRootRotations; i++) {
    const version = set.root.signed.version + 1;
    let bytes: Uint8Array;
    try {
      bytes = await get(metadataPath('root', version), DEFAULT_LIMITS.rootMaxLength);
    } catch (error) {
      if (isMissing(error)) break;
      throw error;
    }
    try {
      await set.updateRoot(bytes);
      versions.push(version);
      rootBytes.set(version, bytes);
    } catch (error) {
      if (!isVerifyError(error)) throw error;
      note({
        code: 'ROOT_CHAIN_BROKEN',
        role: 'root',
        version,
        message: `the mirror's root v${String(version)} does not follow v${String(version - 1)}: ${error.message}`,
      });
      break;
    }
  }
  return { set, versions, bytes: rootBytes };
}

type Note = (anomaly: Omit<Anomaly, 'severity'>) => void;

/** Entries read per request batch: a few entry bundles. */
const BATCH = 1024;

const TYPE_OF_ROLE = (role: string): Signed['type'] =>
  role === 'root' || role === 'snapshot' ? role : 'targets';

/** One pass over the log's entries in order, keeping the root of each entry's time. */
class Walk {
  readonly entries: HistoryEntry[] = [];
  /** (role, version) → the first entry naming it. */
  readonly logged = new Map<string, LoggedEntry>();
  readonly latest: { targets?: number; snapshot?: number } = {};
  readonly chain: TrustedMetadataSet;
  readonly pinnedVersion: number;
  readonly #pinnedSha256: string;
  readonly #get: MirrorFetch;
  readonly #options: ReadHistoryOptions;
  readonly #note: Note;
  readonly #lastVersion = new Map<string, number>();
  #lastTime = '';
  #newestLoggedRoot = 0;
  /** The root before the last root entry, for what changed. */
  #previousRoot: Root | undefined;
  /** The newest verified top-level targets: the delegator of delegated roles. */
  #targets: Metadata<Targets> | undefined;

  private constructor(
    chain: TrustedMetadataSet,
    pinnedSha256: string,
    get: MirrorFetch,
    options: ReadHistoryOptions,
    note: Note,
  ) {
    this.chain = chain;
    this.pinnedVersion = chain.root.signed.version;
    this.#pinnedSha256 = pinnedSha256;
    this.#get = get;
    this.#options = options;
    this.#note = note;
  }

  static async start(
    get: MirrorFetch,
    options: ReadHistoryOptions,
    note: Note,
    readAt: Date,
  ): Promise<Walk> {
    const chain = await TrustedMetadataSet.create(options.trustedRoot, readAt, webHashPort);
    const sha = await sha256Hex(webHashPort, options.trustedRoot);
    return new Walk(chain, sha, get, options, note);
  }

  get newestLoggedRoot(): number {
    return this.#newestLoggedRoot;
  }

  /** Reads entries up to `to`; false when the log could not be read to its end. */
  async follow(reader: LogReader, checkpoint: Checkpoint): Promise<boolean> {
    const size = checkpoint.size;
    const from = Math.min(Math.max(this.#options.from ?? 0, 0), size);
    const to = Math.min(Math.max(this.#options.to ?? size, from), size);
    for (let start = 0; start < to; start += BATCH) {
      const end = Math.min(to, start + BATCH);
      let batch: Uint8Array[];
      try {
        batch = await reader.entries(checkpoint, start, end);
      } catch (error) {
        if (!isTlogError(error) && !isMissing(error)) throw error;
        this.#note({
          code: isMissing(error) ? 'LOG_INCOMPLETE' : 'LOG_INVALID',
          index: start,
          message: `entries ${String(start)}–${String(end - 1)}: ${describeError(error)}`,
        });
        return false;
      }
      for (const [i, bytes] of batch.entries()) {
        const index = start + i;
        let entry: MetadataEntry;
        try {
          entry = parseEntry(bytes);
        } catch (error) {
          this.#note({
            code: 'LOG_INVALID',
            index,
            message: `entry ${String(index)}: ${describeError(error)}`,
          });
          continue;
        }
        const found = { index, bytes, entry };
        const report = index >= from;
        if (report) this.#checkOrder(found);
        this.#remember(found);
        // Before the window only roots are fetched: they carry the chain to its start.
        if (report || entry.role === 'root') await this.#visit(reader, checkpoint, found, report);
      }
    }
    return to === size;
  }

  #checkOrder({ index, entry }: Found): void {
    const { role, version } = entry;
    const key = loggedKey(role, version);
    const earlier = this.logged.get(key)?.sha256;
    if (earlier !== undefined && earlier !== entry.sha256) {
      this.#note({
        code: 'VERSION_REPEATED',
        index,
        role,
        version,
        message: `${role} v${String(version)} is logged again with different bytes (sha256 ${entry.sha256.slice(0, 12)}…, before ${earlier.slice(0, 12)}…)`,
      });
    } else if (earlier === undefined && (this.#lastVersion.get(role) ?? 0) > version) {
      this.#note({
        code: 'VERSION_REGRESSION',
        index,
        role,
        version,
        message: `${role} v${String(version)} is logged after v${String(this.#lastVersion.get(role))}`,
      });
    }
    if (entry.time < this.#lastTime) {
      this.#note({
        code: 'TIME_REGRESSION',
        index,
        role,
        version,
        message: `entry ${String(index)} says ${entry.time}, earlier than the entry before it (${this.#lastTime})`,
      });
    }
  }

  #remember({ index, entry }: Found): void {
    const key = loggedKey(entry.role, entry.version);
    if (!this.logged.has(key))
      this.logged.set(key, { index, sha256: entry.sha256, time: entry.time });
    this.#lastVersion.set(
      entry.role,
      Math.max(this.#lastVersion.get(entry.role) ?? 0, entry.version),
    );
    if (entry.time > this.#lastTime) this.#lastTime = entry.time;
    if (entry.role === 'root')
      this.#newestLoggedRoot = Math.max(this.#newestLoggedRoot, entry.version);
    if (entry.role === 'targets' || entry.role === 'snapshot') {
      this.latest[entry.role] = Math.max(this.latest[entry.role] ?? 0, entry.version);
    }
  }

  async #visit(
    reader: LogReader,
    checkpoint: Checkpoint,
    found: Found,
    report: boolean,
  ): Promise<void> {
    const { index, bytes, entry } = found;
    const { role, version } = entry;
    const file = metadataPath(role, version);
    const rootVersion = this.chain.root.signed.version;
    const base = {
      index,
      role,
      version,
      length: entry.length,
      sha256: entry.sha256,
      time: entry.time,
      entryText: new TextDecoder().decode(bytes),
      leafHash: toHex(await leafHash(bytes)),
      inclusionProof: report ? await this.#proof(reader, checkpoint, found) : [],
      file,
    };
    const at = { index, role, version };
    const record = (fields: Partial<HistoryEntry> & { status: EntryStatus }) => {
      if (report) this.entries.push({ ...base, rootVersion, ...fields });
    };

    let fileBytes: Uint8Array;
    try {
      fileBytes = await this.#get(file, entry.length);
    } catch (error) {
      if (!isMissing(error)) throw error;
      this.#note({
        ...at,
        code: 'ENTRY_MISSING',
        message: `${file} (log index ${String(index)}) is not on the mirror`,
      });
      record({ status: 'missing' });
      return;
    }
    const sha = await sha256Hex(webHashPort, fileBytes);
    if (fileBytes.length !== entry.length || sha !== entry.sha256) {
      this.#note({
        ...at,
        code: 'ENTRY_MISMATCH',
        message: `${file} differs from log index ${String(index)}: ${fileBytes.length > entry.length ? `more than ${String(entry.length)}` : String(fileBytes.length)} bytes, sha256 ${sha.slice(0, 12)}…; logged ${String(entry.length)} bytes, sha256 ${entry.sha256.slice(0, 12)}…`,
      });
      record({ status: 'mismatch' });
      return;
    }
    let metadata: Metadata;
    try {
      metadata = Metadata.fromBytes(fileBytes, TYPE_OF_ROLE(role), file);
      if (metadata.signed.version !== version) {
        throw new VerifyError(
          'VERSION_MISMATCH',
          `${file}: says version ${String(metadata.signed.version)}`,
        );
      }
    } catch (error) {
      if (!isVerifyError(error)) throw error;
      this.#note({ ...at, code: 'BAD_METADATA', message: error.message });
      record({ status: 'malformed' });
      return;
    }
    const expires = metadata.signed.expires.toISOString();
    if (metadata.signed.expires.getTime() <= Date.parse(entry.time)) {
      this.#note({
        ...at,
        code: 'EXPIRED_WHEN_LOGGED',
        message: `${file} expired at ${expires}, before it was logged at ${entry.time}`,
      });
    }

    if (metadata.signed.type === 'root') {
      const fields = await this.#visitRoot(found, fileBytes, metadata as Metadata<Root>);
      record({ expires, ...fields });
      return;
    }
    const delegator =
      role === 'targets' || role === 'snapshot'
        ? this.chain.root.signed
        : (await this.#delegator())?.signed;
    const minApprovals = role === 'snapshot' ? 0 : (this.#options.minApprovals ?? 0);
    const approvals =
      delegator === undefined
        ? {
            role,
            threshold: 1,
            signers: [],
            invalid: metadata.signatures.map((s) => s.keyid),
            meetsThreshold: false,
            meetsPolicy: false,
          }
        : await approvalsOf(delegator, role, metadata, minApprovals);
    this.#checkApprovals(found, approvals);
    const status: EntryStatus = approvals.meetsThreshold ? 'verified' : 'unsigned';
    if (metadata.signed.type === 'snapshot') {
      const meta = [...metadata.signed.meta].map(([name, file]) => ({
        role: name.replace(/\.json$/, ''),
        version: file.version,
        hashes: file.hashes,
      }));
      for (const m of meta) {
        const logged = this.logged.get(loggedKey(m.role, m.version))?.sha256;
        const named = m.hashes?.sha256;
        if (logged === undefined || (named !== undefined && named !== logged)) {
          this.#note({
            ...at,
            code: 'UNLOGGED_TARGETS',
            message: `snapshot v${String(version)} names ${m.role} v${String(m.version)}${logged === undefined ? ', which is not logged before it' : ' with other bytes than the log holds'}`,
          });
        }
      }
      record({
        status,
        expires,
        approvals,
        snapshot: { meta: meta.map(({ role: r, version: v }) => ({ role: r, version: v })) },
      });
      return;
    }
    const targets = metadata as Metadata<Targets>;
    if (role === 'targets' && approvals.meetsThreshold) this.#targets = targets;
    const files = [...targets.signed.targets.values()].map((t) => ({
      path: t.path,
      length: t.length,
      hashes: { ...t.hashes },
    }));
    record({ status, expires, approvals, release: { targetsVersion: version, files } });
  }

  async #proof(
    reader: LogReader,
    checkpoint: Checkpoint,
    { index, bytes }: Found,
  ): Promise<string[]> {
    try {
      return (await reader.proveInclusion(checkpoint, index, bytes)).map(toHex);
    } catch (error) {
      if (!isTlogError(error) && !isMissing(error)) throw error;
      this.#note({
        code: 'LOG_INVALID',
        index,
        message: `inclusion proof for entry ${String(index)}: ${describeError(error)}`,
      });
      return [];
    }
  }

  #checkApprovals({ index, entry }: Found, approvals: Approvals): void {
    const at = { index, role: entry.role, version: entry.version };
    const who = approvals.signers.map((s) => s.name).join(', ') || 'nobody';
    if (!approvals.meetsThreshold) {
      this.#note({
        ...at,
        code: 'THRESHOLD',
        message: `${entry.role} v${String(entry.version)} (log index ${String(index)}) has ${String(approvals.signers.length)} valid signature(s) (${who}); the threshold is ${String(approvals.threshold)}`,
      });
    } else if (!approvals.meetsPolicy) {
      this.#note({
        ...at,
        code: 'BELOW_POLICY',
        message: `${entry.role} v${String(entry.version)} (log index ${String(index)}) was approved by ${String(approvals.signers.length)} (${who}); policy asks for ${String(Math.max(approvals.threshold, this.#options.minApprovals ?? 0))}`,
      });
    }
  }

  /** A root entry: the chain N → N+1 from the pinned root, bridging unlogged gaps. */
  async #visitRoot(
    found: Found,
    bytes: Uint8Array,
    metadata: Metadata<Root>,
  ): Promise<Partial<HistoryEntry> & { status: EntryStatus }> {
    const { index, entry } = found;
    const version = entry.version;
    const at = { index, role: 'root', version };
    const current = this.chain.root;
    let approvals: Approvals;
    let status: EntryStatus;
    let before: Root | undefined;
    if (version <= current.signed.version) {
      // The pinned root or one before it, or a root logged again: it must be the one we hold.
      before = this.#previousRoot;
      approvals = await approvalsOf(metadata.signed, 'root', metadata);
      status = approvals.meetsThreshold ? 'verified' : 'unsigned';
      if (version === this.pinnedVersion && entry.sha256 !== this.#pinnedSha256) {
        this.#note({
          ...at,
          code: 'ROOT_MISMATCH',
          message: `log index ${String(index)} holds a root v${String(version)} that is not the pinned one`,
        });
        status = 'unsigned';
      }
    } else {
      if (version > current.signed.version + 1 && !(await this.#bridge(found, version))) {
        return {
          status: 'unsigned',
          approvals: await approvalsOf(this.chain.root.signed, 'root', metadata),
          root: rootDetails(this.chain.root.signed, metadata.signed),
        };
      }
      before = this.chain.root.signed;
      approvals = await approvalsOf(before, 'root', metadata);
      try {
        await this.chain.updateRoot(bytes);
        status = 'verified';
      } catch (error) {
        if (!isVerifyError(error)) throw error;
        status = 'unsigned';
        this.#note({
          ...at,
          code: error.code === 'THRESHOLD' ? 'THRESHOLD' : 'ROOT_CHAIN_BROKEN',
          message: `root v${String(version)} (log index ${String(index)}) does not follow v${String(before.version)}: ${error.message}`,
        });
      }
    }
    if (status === 'verified') this.#previousRoot = metadata.signed;
    return { status, approvals, root: rootDetails(before, metadata.signed) };
  }

  /** Roots the log skipped: taken from the mirror to go on, each reported unlogged. */
  async #bridge({ index }: Found, upTo: number): Promise<boolean> {
    for (let v = this.chain.root.signed.version + 1; v < upTo; v++) {
      try {
        const bytes = await this.#get(metadataPath('root', v), DEFAULT_LIMITS.rootMaxLength);
        await this.chain.updateRoot(bytes);
        this.#note({
          index,
          role: 'root',
          version: v,
          code: 'UNLOGGED_ROOT',
          message: `root v${String(v)} is not logged before root v${String(upTo)} (log index ${String(index)})`,
        });
      } catch (error) {
        if (!isVerifyError(error) && !isMissing(error)) throw error;
        this.#note({
          index,
          role: 'root',
          version: v,
          code: 'ROOT_CHAIN_BROKEN',
          message: `root v${String(v)} is neither logged nor a valid step on the mirror: ${describeError(error)}`,
        });
        return false;
      }
    }
    return true;
  }

  /** The targets metadata that delegates to a delegated role: the newest logged and verified. */
  async #delegator(): Promise<Metadata<Targets> | undefined> {
    const version = this.latest.targets;
    if (version === undefined) return undefined;
    if (this.#targets?.signed.version === version) return this.#targets;
    try {
      const bytes = await this.#get(
        metadataPath('targets', version),
        DEFAULT_LIMITS.targetsMaxLength,
      );
      if (
        (await sha256Hex(webHashPort, bytes)) !==
        this.logged.get(loggedKey('targets', version))?.sha256
      )
        return undefined;
      const targets = Metadata.fromBytes(bytes, 'targets');
      await verifyDelegate(this.chain.root.signed, 'targets', targets);
      this.#targets = targets;
      return targets;
    } catch (error) {
      if (!isVerifyError(error) && !isMissing(error)) throw error;
      return undefined;
    }
  }
}
