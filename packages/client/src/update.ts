/**
 * The updater an antivirus engine (or any program) embeds: `createUpdater(config).update()`
 * ranks the mirrors, refreshes metadata through them with @cairn/verify, plans each wanted
 * target (current, delta or full), downloads with failover and resume, applies deltas (any
 * failure falls back to the full file), and installs atomically under the state lock.
 * Progress arrives as events; the CLI (`cairn update`) draws them, embedders log them.
 *
 * One run, all under the lock on `stateDir` (LOCKED if another updater holds it):
 *
 *  1. Trusted root: `{stateDir}/metadata/root.json`, or `config.trustedRoot` on first use (it
 *     must be signed by its own threshold); neither is CONFIG_INVALID. Once the state holds a
 *     root, `config.trustedRoot` is ignored: the stored one may have rotated since.
 *  2. Mirrors: the configured ones, then those of the signed `mirrors.json` remembered from the
 *     last run; ranked by MirrorSelector (ranking remembered in `mirror-ranking.json`) →
 *     'mirrors'.
 *  3. Metadata through MirrorFetcher → 'metadata'. A VerifyError about bytes a mirror just
 *     served (a bad signature, an expired or rolled-back timestamp, a wrong hash) blames that
 *     mirror: demoted ('mirror-failed'), no longer asked for metadata in this run, and the
 *     refresh starts over on the others. Fetch failures (NOT_FOUND, FETCH_FAILED, TOO_LARGE)
 *     are not blamed on anyone: MirrorFetcher already tried every mirror for them. Each mirror
 *     is blamed at most once, so there are at most as many retries as mirrors. With
 *     `requireLogInclusion` (the default), each new root and targets version must also be proven
 *     in the transparency log the trusted root declares (log-inclusion.ts) before it is
 *     persisted: NOT_IN_LOG is blamed like a VerifyError, SPLIT_VIEW and LOG_REQUIRED end the
 *     run. Once the refresh succeeded, the newest verified checkpoint is held → 'log'.
 *  4. The signed mirror list: when top-level targets list `mirrors.json` (at most
 *     MAX_MIRROR_LIST_BYTES), its verified bytes are kept in the state directory for the next
 *     run, and mirrors it adds join this run's downloads (a second 'mirrors' event, after they
 *     are probed). A list that cannot be fetched or parsed is a warning, never a failure; a
 *     list no longer signed is forgotten.
 *  5. Plan over the verified top-level targets (delegated targets are not installed) → 'plan'.
 *     Selection: `config.targets` names or globs, default all; `_delta/` targets are never
 *     installed, and `mirrors.json` (the updater's own configuration, not the program's data)
 *     only when `config.targets` names it exactly — not through 'all' or a glob.
 *  6. Per file, in path order: current → nothing; delta or chain (unless `deltas: false`) →
 *     each delta downloaded and verified, applied into a temp file that is checked against the
 *     signed target, installed; any failure on that path → 'fallback' with the reason, then the
 *     full file; full → downloaded, moved into place, installed → 'installed'. The first file
 *     that cannot be had or installed ends the run with its error; files installed before it
 *     stay (each install is atomic) and the next run carries on.
 *
 * State directory (beside what Installation and the lock keep there):
 *
 *   metadata/            trusted metadata (FsMetadataStore)
 *   mirrors.json         the verified bytes of the last signed mirror list
 *   mirror-ranking.json  MirrorSelector's ranking
 *   log-checkpoint       the transparency log's checkpoint held since the last update
 *   partial/{sha256}     downloads in progress, named by content
 *
 * Partial downloads live in `partial/`, named by the sha256 of what they will be, so an
 * interrupted run leaves them where the next resumes them (Range), whatever it plans. Not in the
 * install directory: Installation removes every temp file there when it opens (a crash leaves
 * no litter beside the program's files), and a file there that is not a temp name could be read
 * by the program. A finished full download is renamed into `Installation.tempPathFor(path)`:
 * free when the state and install directories share a file system (the usual case,
 * /var/lib/cairn and /var/lib/clamav); across file systems it is copied and checked against the
 * signed length and hashes as it is written. Deltas are read from `partial/` and removed once
 * applied or abandoned. Partials that no plan of this run wants (an older release's) are
 * removed before downloading.
 *
 * Counting: a file's `bytesDownloaded` is what came over the network for it in this run — the
 * deltas (including ones that failed and were abandoned) and the full file, a resumed partial's
 * prefix excluded; `bytesSaved` is its length minus that, so negative when a fallback wasted
 * delta bytes. `bytesFull` sums the lengths of the files that were not current. The signed
 * mirror list and metadata are not counted.
 *
 * Errors: ClientError (CONFIG_INVALID, LOCKED, NO_MIRROR, VERIFICATION_FAILED for metadata
 * that failed verification for a reason no mirror can be blamed for, INSTALL_FAILED, the log's
 * NOT_IN_LOG, SPLIT_VIEW and LOG_REQUIRED, and the download codes via NO_MIRROR), or a Node
 * file-system error for the local directories.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isVerifyError, type VerifyError } from '@cairn/verify/errors';
import { ContentVerifier, verifyLengthAndHashes } from '@cairn/verify/hash';
import { Metadata, type TargetFile } from '@cairn/verify/metadata';
import type { Fetcher } from '@cairn/verify/ports';
import { Updater } from '@cairn/verify/updater';
import { writeFileAtomic } from './atomic-file.js';
import { applyDeltas, type DownloadedDelta } from './delta-apply.js';
import {
  DEFAULT_MAX_CHAIN,
  planUpdate,
  selectTargets,
  type DeltaStep,
  type FileDigest,
  type TargetPlan,
  type TargetSelection,
} from './delta-plan.js';
import { downloadFromMirrors, mirrorPathOfTarget, type DownloadProgress } from './download.js';
import { ClientError } from './errors.js';
import { FsMetadataStore } from './fs-metadata-store.js';
import { Installation } from './install.js';
import { LogInclusion, type LogSummary } from './log-inclusion.js';
import { METADATA_PATH, MirrorFetcher } from './mirror-fetcher.js';
import {
  MAX_MIRROR_LIST_BYTES,
  MirrorSelector,
  configuredMirrors,
  mergeMirrors,
  parseMirrorList,
  type Mirror,
  type RankedMirrors,
} from './mirrors.js';
import { nodeHashPort } from './node-hash.js';
import { withStateLock, type HeldStateLock } from './state-lock.js';
import { initTrustedRoot } from './tuf-client.js';

export interface UpdaterConfig {
  /** Where the program reads its files (e.g. /var/lib/clamav). */
  readonly installDir: string;
  /**
   * The updater's own state: trusted metadata, the installed manifest, previous versions, the
   * mirror ranking, the lock. One state directory per install directory.
   */
  readonly stateDir: string;
  /**
   * Mirrors from local configuration (a LAN mirror, say): base URLs of repositories, each
   * serving `metadata/` and `targets/`. The signed `mirrors.json` target adds more.
   */
  readonly mirrors: readonly (string | { readonly url: string; readonly name?: string })[];
  /** The root to trust when the state directory holds none yet (trust on first use of this file). */
  readonly trustedRoot?: Uint8Array | undefined;
  /** Names or glob patterns (`*.cvd`, `daily/**`) of targets to keep installed; default all. */
  readonly targets?: readonly string[] | undefined;
  /** Default true. False always downloads full files. */
  readonly deltas?: boolean | undefined;
  /** Until the answer's headers, per request. Default 30 s. */
  readonly requestTimeoutMs?: number | undefined;
  /** A download slower than this (after a grace period) fails over. Default 8 KiB/s. */
  readonly minBytesPerSecond?: number | undefined;
  /** The longest a download may wait for its next bytes before failing over. Default 30 s. */
  readonly idleTimeoutMs?: number | undefined;
  /** Per mirror probe. Default 5 s. */
  readonly probeTimeoutMs?: number | undefined;
  /** Re-probe the mirrors when the remembered ranking is older. Default 1 h. */
  readonly reprobeAfterMs?: number | undefined;
  /**
   * Default true: root and targets metadata are accepted only with an inclusion proof in the
   * transparency log the trusted root declares, against a checkpoint consistent with the one
   * held from the last update (see log-inclusion.ts). A trusted root that declares no log is
   * then LOG_REQUIRED; false updates from such repositories, on signatures alone.
   */
  readonly requireLogInclusion?: boolean | undefined;
  readonly now?: (() => Date) | undefined;
  readonly userAgent?: string | undefined;
}

export type UpdateEvent =
  | {
      readonly type: 'mirrors';
      readonly ranked: readonly {
        readonly url: string;
        readonly name?: string | undefined;
        readonly rttMs?: number | undefined;
        readonly timestampVersion?: number | undefined;
        readonly reachable: boolean;
        /** Local configuration, or the repository's signed `mirrors.json`. */
        readonly source?: 'configured' | 'repository' | undefined;
        /** Why the probe found it unreachable, or could not read its timestamp. */
        readonly error?: string | undefined;
      }[];
    }
  | {
      readonly type: 'metadata';
      readonly timestampVersion: number;
      readonly snapshotVersion: number;
      readonly targetsVersion: number;
      /** The mirror that served the timestamp. */
      readonly mirror: string | undefined;
    }
  | {
      readonly type: 'plan';
      readonly items: readonly {
        readonly path: string;
        readonly action: 'current' | 'delta' | 'full';
        /** What will be downloaded. */
        readonly downloadBytes: number;
        /** The full file's length. */
        readonly fullBytes: number;
      }[];
    }
  | {
      readonly type: 'progress';
      readonly path: string;
      readonly kind: 'delta' | 'full';
      readonly bytes: number;
      readonly total: number;
      readonly mirror: string | undefined;
    }
  | ({ readonly type: 'log' } & LogSummary)
  | { readonly type: 'fallback'; readonly path: string; readonly reason: string }
  | { readonly type: 'mirror-failed'; readonly mirror: string; readonly reason: string }
  | {
      readonly type: 'installed';
      readonly path: string;
      readonly kind: 'delta' | 'full';
      readonly bytesDownloaded: number;
      /** The full file's length minus what was downloaded for it. */
      readonly bytesSaved: number;
      readonly mirror: string | undefined;
    };

export interface UpdatedFile {
  readonly path: string;
  readonly action: 'current' | 'delta' | 'full';
  readonly sha256: string;
  readonly length: number;
  readonly bytesDownloaded: number;
  readonly bytesSaved: number;
  readonly mirror?: string | undefined;
  /** Why a planned delta was not used, when the full file was downloaded instead. */
  readonly fallbackReason?: string | undefined;
}

export interface UpdateReport {
  readonly timestampVersion: number;
  readonly targetsVersion: number;
  readonly files: readonly UpdatedFile[];
  /** Bytes of targets downloaded (metadata not counted). */
  readonly bytesDownloaded: number;
  /** What full downloads of the changed files would have cost. */
  readonly bytesFull: number;
  /** Names or patterns in `config.targets` that matched no target. */
  readonly unmatched: readonly string[];
  /** The transparency log's part, with requireLogInclusion (absent without). */
  readonly log?: LogSummary | undefined;
  /** Problems that did not stop the update: a signed mirror list that could not be fetched or
   * used, a mirror ranking that could not be remembered. */
  readonly warnings?: readonly string[] | undefined;
}

export interface RolledBackFile {
  readonly path: string;
  /** The sha256 now installed. */
  readonly restored: string;
}

export interface CairnUpdater {
  update(): Promise<UpdateReport>;
  /** Restores the previous version of `path`, or of every file the last update changed. */
  rollback(path?: string): Promise<readonly RolledBackFile[]>;
}

export type UpdateListener = (event: UpdateEvent) => void;

// ---------------------------------------------------------------------------------------------
// Implementation

/** The signed mirror list's target name (see parseMirrorList). */
export const MIRROR_LIST_TARGET = 'mirrors.json';
/** Trusted metadata: FsMetadataStore's flat files. */
export const METADATA_DIRECTORY = 'metadata';
/** Downloads in progress, one file per content: `{sha256}`. */
export const PARTIAL_DIRECTORY = 'partial';
/** The verified bytes of the last signed mirror list. */
export const MIRROR_LIST_FILE = 'mirrors.json';
/** MirrorSelector's remembered ranking. */
export const MIRROR_RANKING_FILE = 'mirror-ranking.json';
/** A progress event at least every this many bytes of a download, and at its end: a 2 GB file
 * makes about 2 000 events, enough for a smooth bar, few enough for a log. */
export const PROGRESS_STEP_BYTES = 2 ** 20;

/** Fetch failures at refresh level: MirrorFetcher already tried every mirror, and no data was
 * received to blame anyone for. (A mirror that sent too much was already left for the next;
 * TOO_LARGE here means every mirror did.) */
const FETCH_CODES: ReadonlySet<string> = new Set(['NOT_FOUND', 'FETCH_FAILED', 'TOO_LARGE']);
const HEX_NAME = /^[0-9a-f]{64}$/;

function invalid(message: string, cause?: unknown): ClientError {
  return new ClientError('CONFIG_INVALID', message, { cause });
}

function explain(error: unknown): string {
  if (error instanceof ClientError || isVerifyError(error))
    return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

function checkConfig(config: UpdaterConfig): void {
  for (const key of ['installDir', 'stateDir'] as const) {
    const value: unknown = config[key];
    if (typeof value !== 'string' || value.length === 0) {
      throw invalid(`${key}: expected a directory path, received ${JSON.stringify(value)}`);
    }
  }
  if (resolve(config.installDir) === resolve(config.stateDir)) {
    // The program would read our state, and our temp-file sweep would walk it.
    throw invalid(`stateDir: must differ from installDir (${config.installDir})`);
  }
  if (!Array.isArray(config.mirrors)) throw invalid('mirrors: expected an array');
  if (config.trustedRoot !== undefined && !(config.trustedRoot instanceof Uint8Array)) {
    throw invalid('trustedRoot: expected the bytes of a root.json');
  }
  const requireLog: unknown = config.requireLogInclusion;
  if (requireLog !== undefined && typeof requireLog !== 'boolean') {
    throw invalid(
      `requireLogInclusion: expected true or false, received ${JSON.stringify(requireLog)}`,
    );
  }
  if (config.targets !== undefined) {
    if (!Array.isArray(config.targets)) throw invalid('targets: expected an array');
    for (const [i, entry] of config.targets.entries()) {
      if (typeof entry !== 'string' || entry.length === 0) {
        throw invalid(
          `targets[${i}]: expected a name or pattern, received ${JSON.stringify(entry)}`,
        );
      }
    }
  }
  const positive = [
    'requestTimeoutMs',
    'idleTimeoutMs',
    'probeTimeoutMs',
    'reprobeAfterMs',
  ] as const;
  for (const key of [...positive, 'minBytesPerSecond'] as const) {
    const value = config[key];
    if (value === undefined) continue;
    const ok =
      typeof value === 'number' &&
      Number.isFinite(value) &&
      (key === 'minBytesPerSecond' ? value >= 0 : value > 0);
    if (!ok) {
      throw invalid(
        `${key}: expected a ${key === 'minBytesPerSecond' ? 'non-negative' : 'positive'} number, received ${String(value)}`,
      );
    }
  }
}

/**
 * The run's view of the mirrors: the selector of the moment (replaced when the signed list adds
 * mirrors), every demotion reported as a 'mirror-failed' event.
 */
class RunMirrors implements RankedMirrors {
  #selector: MirrorSelector;
  readonly #emit: (event: UpdateEvent) => void;

  constructor(selector: MirrorSelector, emit: (event: UpdateEvent) => void) {
    this.#selector = selector;
    this.#emit = emit;
  }

  get selector(): MirrorSelector {
    return this.#selector;
  }

  ranked(): Promise<readonly Mirror[]> {
    return this.#selector.ranked();
  }

  demote(url: string, reason: string): void {
    this.#selector.demote(url, reason);
    this.#emit({ type: 'mirror-failed', mirror: url, reason });
  }

  /** Continues with `next` (more candidates); this run's demotions carry over. */
  replace(next: MirrorSelector): void {
    for (const d of this.#selector.demotions) next.demote(d.url, d.reason);
    this.#selector = next;
  }
}

/** Metadata fetches skip mirrors that served metadata failing verification in this run: each
 * mirror is blamed at most once, so the refresh retries are bounded by the mirror count. */
class MetadataMirrors implements RankedMirrors {
  readonly #run: RunMirrors;
  readonly #excluded = new Set<string>();

  constructor(run: RunMirrors) {
    this.#run = run;
  }

  async ranked(): Promise<readonly Mirror[]> {
    return (await this.#run.ranked()).filter((m) => !this.#excluded.has(m.url));
  }

  demote(url: string, reason: string): void {
    this.#run.demote(url, reason);
  }

  exclude(url: string): void {
    this.#excluded.add(url);
  }
}

/** Remembers the last fetch of a refresh attempt, to know which bytes a VerifyError is about. */
class TrackingFetcher implements Fetcher {
  readonly #inner: Fetcher;
  #last: { readonly path: string; readonly ok: boolean } | undefined;

  constructor(inner: Fetcher) {
    this.#inner = inner;
  }

  /** The last fetch since `reset`: its path, and whether bytes came back. */
  get last(): { readonly path: string; readonly ok: boolean } | undefined {
    return this.#last;
  }

  reset(): void {
    this.#last = undefined;
  }

  async fetch(path: string, maxLength: number): Promise<Uint8Array> {
    this.#last = { path, ok: false };
    const bytes = await this.#inner.fetch(path, maxLength);
    this.#last = { path, ok: true };
    return bytes;
  }
}

async function mirrorsEvent(selector: MirrorSelector): Promise<UpdateEvent> {
  const ranked = await selector.ranked();
  const probes = new Map((selector.ranking?.probes ?? []).map((p) => [p.url, p]));
  return {
    type: 'mirrors',
    ranked: ranked.map((m) => {
      const p = probes.get(m.url);
      return {
        url: m.url,
        name: m.name,
        rttMs: p?.rttMs,
        timestampVersion: p?.timestampVersion,
        reachable: p?.reachable ?? false,
        source: m.source,
        error: p?.error,
      };
    }),
  };
}

/** The partial file of a target: named by its sha256, or (none listed) by a sha256 over the
 * hashes it does list, so a later run resumes only the same content. */
function partialName(target: TargetFile): string {
  const sha256 = target.hashes.sha256?.toLowerCase();
  if (sha256 !== undefined && HEX_NAME.test(sha256)) return sha256;
  const listed = Object.entries(target.hashes)
    .map(([alg, hex]) => `${alg}:${hex.toLowerCase()}`)
    .sort()
    .join(',');
  return createHash('sha256').update(listed).digest('hex');
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Uint8Array);
  return hash.digest('hex');
}

/**
 * Moves a complete, verified download from the state directory to `temp` in the install
 * directory: a rename when both are on one file system, else a copy checked against the signed
 * length and hashes as it is written (the copy is what gets installed).
 */
async function moveIntoPlace(partial: string, temp: string, target: TargetFile): Promise<void> {
  try {
    await rename(partial, temp);
    return;
  } catch (e) {
    if (errno(e) !== 'EXDEV') throw e;
  }
  const verifier = new ContentVerifier(nodeHashPort, target, `target ${target.path}`);
  const out = await open(temp, 'wx', 0o644);
  try {
    for await (const chunk of createReadStream(partial)) {
      const bytes = chunk as Uint8Array;
      verifier.update(bytes);
      let at = 0;
      while (at < bytes.length) at += (await out.write(bytes, at, bytes.length - at)).bytesWritten;
    }
    await verifier.finish();
    await out.sync();
  } catch (e) {
    await out.close();
    await rm(temp, { force: true });
    throw e;
  }
  await out.close();
  await rm(partial, { force: true });
}

interface Settings {
  readonly config: UpdaterConfig;
  readonly emit: (event: UpdateEvent) => void;
  readonly stateDir: string;
  readonly warnings: string[];
}

/** Candidates: configured mirrors, then the remembered signed list (unless it no longer
 * parses, which is a warning). */
async function initialCandidates(s: Settings): Promise<Mirror[]> {
  const configured = configuredMirrors(s.config.mirrors);
  let listed: Mirror[] = [];
  const path = join(s.stateDir, MIRROR_LIST_FILE);
  try {
    listed = parseMirrorList(new Uint8Array(await readFile(path)));
  } catch (e) {
    if (errno(e) !== 'ENOENT') s.warnings.push(`remembered ${path} ignored: ${explain(e)}`);
  }
  const candidates = mergeMirrors(configured, listed);
  if (candidates.length === 0) {
    throw invalid('mirrors: expected at least one mirror (none configured, none remembered)');
  }
  return candidates;
}

function newSelector(s: Settings, candidates: readonly Mirror[]): MirrorSelector {
  const { config } = s;
  const now = config.now;
  return new MirrorSelector({
    candidates,
    statePath: join(s.stateDir, MIRROR_RANKING_FILE),
    probeTimeoutMs: config.probeTimeoutMs,
    reprobeAfterMs: config.reprobeAfterMs,
    userAgent: config.userAgent,
    now: now === undefined ? undefined : () => now().getTime(),
  });
}

/** The trusted root: stateDir/metadata/root.json, or config.trustedRoot on first use. */
async function ensureTrustedRoot(s: Settings, store: FsMetadataStore): Promise<void> {
  if ((await store.load('root')) !== undefined) return;
  const root = s.config.trustedRoot;
  if (root === undefined) {
    throw invalid(
      `no trusted root in ${store.directory} and no trustedRoot configured: give the ` +
        `repository's root.json (from a channel you trust) on first use`,
    );
  }
  try {
    await initTrustedRoot(store.directory, root);
  } catch (e) {
    if (!isVerifyError(e)) throw e;
    throw invalid(`trustedRoot: not a root signed by its own threshold (${explain(e)})`, e);
  }
}

/**
 * The log check of this run. The stored root is checked first: when it declares no log, no
 * root or targets it vouches for could be proven, so the run stops before fetching anything.
 */
async function openLogInclusion(
  s: Settings,
  store: FsMetadataStore,
  mirrors: RunMirrors,
): Promise<LogInclusion> {
  const fetchers = new Map<string, MirrorFetcher>();
  const inclusion = await LogInclusion.open(
    {
      stateDir: s.stateDir,
      mirrors,
      fetcherFor: (mirror) => {
        let one = fetchers.get(mirror.url);
        if (one === undefined) {
          one = new MirrorFetcher(
            { ranked: () => Promise.resolve([mirror]), demote: (u, r) => mirrors.demote(u, r) },
            { timeoutMs: s.config.requestTimeoutMs, userAgent: s.config.userAgent },
          );
          fetchers.set(mirror.url, one);
        }
        return one;
      },
    },
    (warning) => s.warnings.push(warning),
  );
  const stored = await store.load('root');
  if (stored !== undefined) await inclusion.requireDeclared(Metadata.fromBytes(stored, 'root'));
  return inclusion;
}

/**
 * Refreshes the metadata through the mirrors. A VerifyError about bytes a mirror served (not a
 * fetch failure), or metadata no mirror's log proves (NOT_IN_LOG), blames that mirror: it is
 * demoted, never asked for metadata again in this run, and the refresh starts over on the
 * others. When every mirror was blamed for unlogged metadata, the run fails with NOT_IN_LOG.
 */
async function refreshMetadata(
  updater: Updater,
  tracking: TrackingFetcher,
  fetcher: MirrorFetcher,
  metadataMirrors: MetadataMirrors,
): Promise<void> {
  const bad: { mirror: string; error: VerifyError | ClientError }[] = [];
  for (;;) {
    tracking.reset();
    try {
      await updater.refresh();
      return;
    } catch (e) {
      const blamable = isVerifyError(e) || (e instanceof ClientError && e.code === 'NOT_IN_LOG');
      if (!blamable) throw e;
      if (isVerifyError(e) && FETCH_CODES.has(e.code)) {
        const blamed = bad.map((b) => `${b.mirror} (${explain(b.error)})`).join('; ');
        if (bad.length > 0 && bad.every((b) => b.error instanceof ClientError)) {
          throw new ClientError(
            'NOT_IN_LOG',
            `no mirror served metadata that is in the transparency log: ${blamed}`,
            { cause: bad.at(-1)?.error },
          );
        }
        throw new ClientError(
          'NO_MIRROR',
          bad.length === 0
            ? `no mirror could serve the metadata: ${explain(e)}`
            : `no mirror served metadata that verifies: ${blamed}; then ${explain(e)}`,
          { cause: bad.at(-1)?.error ?? e },
        );
      }
      const last = tracking.last;
      const mirror = last?.ok === true ? fetcher.reportBadData(last.path, explain(e)) : undefined;
      if (mirror === undefined) {
        if (e instanceof ClientError) throw e;
        // Not about bytes a mirror just served (the local root, a freeze after the root chain).
        throw new ClientError('VERIFICATION_FAILED', `metadata: ${explain(e)}`, { cause: e });
      }
      bad.push({ mirror, error: e });
      metadataMirrors.exclude(mirror);
    }
  }
}

class ProgressReporter {
  /** Bytes received over the network, estimated from progress callbacks: exact unless a
   * discarded attempt is followed by one whose first chunk is longer than what was discarded. */
  transferred = 0;
  #last = 0;
  #emitted = 0;
  readonly #emit: (event: UpdateEvent) => void;
  readonly #path: string;
  readonly #kind: 'delta' | 'full';

  constructor(emit: (event: UpdateEvent) => void, path: string, kind: 'delta' | 'full') {
    this.#emit = emit;
    this.#path = path;
    this.#kind = kind;
  }

  readonly onProgress = (p: DownloadProgress): void => {
    // Each callback follows a write, so the file holds exactly `received` bytes; less than
    // before means a new attempt started over from byte 0.
    this.transferred += p.received > this.#last ? p.received - this.#last : p.received;
    if (p.received <= this.#last) this.#emitted = 0;
    this.#last = p.received;
    if (p.received === p.total || p.received - this.#emitted >= PROGRESS_STEP_BYTES) {
      this.#emitted = p.received;
      this.#emit({
        type: 'progress',
        path: this.#path,
        kind: this.#kind,
        bytes: p.received,
        total: p.total,
        mirror: p.mirror,
      });
    }
  };
}

interface Run extends Settings {
  readonly installation: Installation;
  readonly mirrors: RunMirrors;
  readonly partialDir: string;
  readonly targetsVersion: number;
}

/**
 * Downloads `target` (verified) into the partial directory, adding the network bytes to
 * `tally` whether it succeeds or fails. `events` names the file in progress events; without it
 * there are none.
 */
async function download(
  run: Run,
  target: TargetFile,
  what: string,
  tally: { transferred: number },
  events?: { readonly path: string; readonly kind: 'delta' | 'full' },
): Promise<{ path: string; mirror: string | undefined }> {
  const progress = new ProgressReporter(
    events === undefined ? () => {} : run.emit,
    events?.path ?? target.path,
    events?.kind ?? 'full',
  );
  try {
    const result = await downloadFromMirrors(
      {
        path: mirrorPathOfTarget(target),
        length: target.length,
        hashes: target.hashes,
        destination: join(run.partialDir, partialName(target)),
        what,
      },
      {
        mirrors: run.mirrors,
        requestTimeoutMs: run.config.requestTimeoutMs,
        idleTimeoutMs: run.config.idleTimeoutMs,
        minBytesPerSecond: run.config.minBytesPerSecond,
        userAgent: run.config.userAgent,
        onProgress: progress.onProgress,
      },
    );
    tally.transferred += result.transferred;
    return { path: result.path, mirror: result.mirror };
  } catch (e) {
    tally.transferred += progress.transferred;
    throw e;
  }
}

/**
 * Uses the signed mirror list: its verified bytes from the state directory when they are still
 * the signed ones, else downloaded; remembered for the next run. Returns the mirrors it lists,
 * or undefined (with a warning) when it cannot be had or used. No list in the metadata: the
 * remembered one is forgotten.
 */
async function signedMirrorList(
  run: Run,
  targets: ReadonlyMap<string, TargetFile>,
): Promise<Mirror[] | undefined> {
  const path = join(run.stateDir, MIRROR_LIST_FILE);
  const target = targets.get(MIRROR_LIST_TARGET);
  if (target === undefined) {
    await rm(path, { force: true });
    return undefined;
  }
  if (target.length > MAX_MIRROR_LIST_BYTES) {
    run.warnings.push(
      `${MIRROR_LIST_TARGET}: ${target.length} bytes is more than the ${MAX_MIRROR_LIST_BYTES} allowed; not used`,
    );
    await rm(path, { force: true });
    return undefined;
  }
  let bytes: Uint8Array | undefined;
  try {
    const kept = new Uint8Array(await readFile(path));
    await verifyLengthAndHashes(nodeHashPort, kept, target, MIRROR_LIST_TARGET);
    bytes = kept;
  } catch {
    // Absent, or an older list: fetch the signed one.
  }
  if (bytes === undefined) {
    try {
      const got = await download(run, target, `target ${MIRROR_LIST_TARGET}`, {
        transferred: 0,
      });
      bytes = new Uint8Array(await readFile(got.path));
      await rm(got.path, { force: true });
    } catch (e) {
      if (!(e instanceof ClientError)) throw e;
      run.warnings.push(`${MIRROR_LIST_TARGET} could not be downloaded: ${explain(e)}`);
      return undefined;
    }
  }
  let listed: Mirror[];
  try {
    listed = parseMirrorList(bytes);
  } catch (e) {
    run.warnings.push(
      `${MIRROR_LIST_TARGET} is not usable, configured mirrors only: ${explain(e)}`,
    );
    await rm(path, { force: true });
    return undefined;
  }
  await writeFileAtomic(path, bytes);
  return listed;
}

/** The targets the selection is made from: all but deltas (selectTargets drops those) and the
 * mirror list, which is the updater's own configuration, installed only when named exactly. */
function installableTargets(
  all: ReadonlyMap<string, TargetFile>,
  selection: TargetSelection,
): ReadonlyMap<string, TargetFile> {
  if (selection !== 'all' && selection.includes(MIRROR_LIST_TARGET)) return all;
  const without = new Map(all);
  without.delete(MIRROR_LIST_TARGET);
  return without;
}

/** Removes partial downloads no plan of this run wants (older releases, abandoned files). */
async function removeStalePartials(run: Run, wanted: ReadonlySet<string>): Promise<void> {
  let names: string[];
  try {
    names = await readdir(run.partialDir);
  } catch (e) {
    if (errno(e) === 'ENOENT') return;
    throw e;
  }
  for (const name of names) {
    if (HEX_NAME.test(name) && !wanted.has(name)) {
      await rm(join(run.partialDir, name), { force: true });
    }
  }
}

interface Fetched {
  readonly temp: string;
  readonly mirror: string | undefined;
}

/** The delta path: download each step (verified), rebuild into a temp file (verified). */
async function viaDeltas(
  run: Run,
  target: TargetFile,
  steps: readonly DeltaStep[],
  tally: { transferred: number },
): Promise<Fetched> {
  const deltas: DownloadedDelta[] = [];
  const partials: string[] = [];
  let mirror: string | undefined;
  try {
    for (const step of steps) {
      partials.push(join(run.partialDir, partialName(step.file)));
      const got = await download(run, step.file, `delta ${step.file.path}`, tally, {
        path: target.path,
        kind: 'delta',
      });
      mirror = got.mirror ?? mirror;
      deltas.push({ step, bytes: new Uint8Array(await readFile(got.path)) });
    }
    const temp = await applyDeltas({
      basePath: run.installation.filePath(target.path),
      deltas,
      target,
      tempPathFor: () => run.installation.tempPathFor(target.path),
    });
    return { temp, mirror };
  } finally {
    // Applied or not, these deltas are done with: a retry next run downloads what it plans.
    for (const p of partials) await rm(p, { force: true });
  }
}

async function viaFull(
  run: Run,
  target: TargetFile,
  tally: { transferred: number },
): Promise<Fetched> {
  const got = await download(run, target, `target ${target.path}`, tally, {
    path: target.path,
    kind: 'full',
  });
  const temp = await run.installation.tempPathFor(target.path);
  await moveIntoPlace(got.path, temp, target);
  return { temp, mirror: got.mirror };
}

async function updateFile(run: Run, plan: TargetPlan): Promise<UpdatedFile> {
  const { target } = plan;
  const signedSha256 = target.hashes.sha256?.toLowerCase();
  if (plan.kind === 'current') {
    return {
      path: target.path,
      action: 'current',
      sha256: signedSha256 ?? '',
      length: target.length,
      bytesDownloaded: 0,
      bytesSaved: 0,
    };
  }
  const tally = { transferred: 0 };
  let fetched: Fetched | undefined;
  let fallbackReason: string | undefined;
  if (plan.kind === 'delta' || plan.kind === 'chain') {
    try {
      fetched = await viaDeltas(run, target, plan.steps, tally);
    } catch (e) {
      fallbackReason = explain(e);
      run.emit({ type: 'fallback', path: target.path, reason: fallbackReason });
    }
  }
  const kind = fetched === undefined ? 'full' : 'delta';
  fetched ??= await viaFull(run, target, tally);
  const sha256 = signedSha256 ?? (await sha256OfFile(fetched.temp));
  await run.installation.install(target.path, fetched.temp, {
    sha256,
    length: target.length,
    version: run.targetsVersion,
  });
  const bytesSaved = target.length - tally.transferred;
  run.emit({
    type: 'installed',
    path: target.path,
    kind,
    bytesDownloaded: tally.transferred,
    bytesSaved,
    mirror: fetched.mirror,
  });
  return {
    path: target.path,
    action: kind,
    sha256,
    length: target.length,
    bytesDownloaded: tally.transferred,
    bytesSaved,
    mirror: fetched.mirror,
    ...(fallbackReason === undefined ? {} : { fallbackReason }),
  };
}

async function runUpdate(
  config: UpdaterConfig,
  emit: (event: UpdateEvent) => void,
  lock: HeldStateLock,
): Promise<UpdateReport> {
  const stateDir = resolve(config.stateDir);
  const s: Settings = { config, emit, stateDir, warnings: [] };
  const store = new FsMetadataStore(join(stateDir, METADATA_DIRECTORY));
  await ensureTrustedRoot(s, store);
  const installation = await Installation.open({
    installDir: config.installDir,
    stateDir,
    lock,
  });

  let candidates = await initialCandidates(s);
  const mirrors = new RunMirrors(newSelector(s, candidates), emit);
  emit(await mirrorsEvent(mirrors.selector));

  const metadataMirrors = new MetadataMirrors(mirrors);
  const fetcher = new MirrorFetcher(metadataMirrors, {
    timeoutMs: config.requestTimeoutMs,
    userAgent: config.userAgent,
  });
  const tracking = new TrackingFetcher(fetcher);
  const inclusion =
    config.requireLogInclusion === false ? undefined : await openLogInclusion(s, store, mirrors);
  const updater = new Updater({
    metadataBaseUrl: METADATA_PATH,
    fetcher: tracking,
    store,
    hash: nodeHashPort,
    now: config.now,
    beforeAccept:
      inclusion === undefined
        ? undefined
        : (accepted) => {
            // The file the Updater just fetched: its mirror's log is asked first.
            const path = tracking.last?.path;
            return inclusion.prove(
              accepted,
              path === undefined ? undefined : fetcher.servedBy(path),
            );
          },
  });
  await refreshMetadata(updater, tracking, fetcher, metadataMirrors);
  const trusted = updater.trusted;
  const timestamp = trusted?.timestamp;
  const snapshot = trusted?.snapshot;
  const targetsMetadata = trusted?.targets;
  if (
    trusted === undefined ||
    timestamp === undefined ||
    snapshot === undefined ||
    targetsMetadata === undefined
  ) {
    throw new ClientError('VERIFICATION_FAILED', 'the metadata refresh did not complete');
  }
  let log: LogSummary | undefined;
  if (inclusion !== undefined) {
    // Nothing new may have been fetched (no proof made): the final root must still declare a
    // log, and the log is still checked for a fork against the held checkpoint.
    await inclusion.requireDeclared(trusted.root);
    await inclusion.check(trusted.root);
    await inclusion.persist(trusted.root);
    log = inclusion.summary(trusted.root);
  }
  emit({
    type: 'metadata',
    timestampVersion: timestamp.signed.version,
    snapshotVersion: snapshot.signed.version,
    targetsVersion: targetsMetadata.signed.version,
    mirror: fetcher.servedBy(`${METADATA_PATH}timestamp.json`),
  });
  if (log !== undefined) emit({ type: 'log', ...log });

  const partialDir = join(stateDir, PARTIAL_DIRECTORY);
  await mkdir(partialDir, { recursive: true });
  const run: Run = {
    ...s,
    installation,
    mirrors,
    partialDir,
    targetsVersion: targetsMetadata.signed.version,
  };
  const allTargets = targetsMetadata.signed.targets;

  const listed = await signedMirrorList(run, allTargets);
  if (listed !== undefined) {
    const more = mergeMirrors(candidates, listed);
    if (more.length > candidates.length) {
      candidates = more;
      mirrors.replace(newSelector(s, candidates));
      emit(await mirrorsEvent(mirrors.selector));
    }
  }

  const selection: TargetSelection = config.targets ?? 'all';
  const planTargets = installableTargets(allTargets, selection);
  const { targets: wanted } = selectTargets(planTargets, selection);
  const installed = new Map<string, FileDigest>();
  for (const t of wanted) {
    const found = await installation.installed(t.path);
    if (found !== undefined) installed.set(t.path, { sha256: found.sha256, length: found.length });
  }
  const plan = planUpdate(planTargets, installed, selection, {
    maxChain: config.deltas === false ? 0 : DEFAULT_MAX_CHAIN,
  });
  emit({
    type: 'plan',
    items: plan.plans.map((p) => ({
      path: p.target.path,
      action: p.kind === 'chain' ? 'delta' : p.kind,
      downloadBytes: p.kind === 'current' ? 0 : p.downloadBytes,
      fullBytes: p.target.length,
    })),
  });

  const keep = new Set<string>();
  for (const p of plan.plans) {
    if (p.kind === 'current') continue;
    keep.add(partialName(p.target));
    if (p.kind !== 'full') for (const step of p.steps) keep.add(partialName(step.file));
  }
  await removeStalePartials(run, keep);

  const files: UpdatedFile[] = [];
  for (const p of plan.plans) files.push(await updateFile(run, p));

  const stateError = mirrors.selector.stateError;
  if (stateError !== undefined) {
    s.warnings.push(`the mirror ranking could not be remembered: ${explain(stateError)}`);
  }
  return {
    timestampVersion: timestamp.signed.version,
    targetsVersion: targetsMetadata.signed.version,
    files,
    bytesDownloaded: files.reduce((sum, f) => sum + f.bytesDownloaded, 0),
    bytesFull: files.reduce((sum, f) => sum + (f.action === 'current' ? 0 : f.length), 0),
    unmatched: plan.unmatched,
    ...(log === undefined ? {} : { log }),
    warnings: s.warnings,
  };
}

/**
 * The updater for one install directory. Nothing happens until `update()` or `rollback()`;
 * configuration errors reject those with CONFIG_INVALID. Each call takes the state lock
 * (LOCKED when another updater holds it) and releases it when done.
 *
 * `listener` receives the events of `update()` in order; it must not throw (an exception from
 * it is caught and ignored, so a broken progress display cannot break an update).
 */
export function createUpdater(config: UpdaterConfig, listener?: UpdateListener): CairnUpdater {
  const emit = (event: UpdateEvent): void => {
    try {
      listener?.(event);
    } catch {
      // See above: the update does not depend on its observers.
    }
  };
  return {
    async update(): Promise<UpdateReport> {
      checkConfig(config);
      return withStateLock(config.stateDir, (lock) => runUpdate(config, emit, lock));
    },
    async rollback(path?: string): Promise<readonly RolledBackFile[]> {
      checkConfig(config);
      return withStateLock(config.stateDir, async (lock) => {
        const installation = await Installation.open({
          installDir: config.installDir,
          stateDir: config.stateDir,
          lock,
        });
        const outcomes = await installation.rollback(path);
        return outcomes.map((o) => ({ path: o.path, restored: o.restored.sha256 }));
      });
    },
  };
}

export type { Mirror };
