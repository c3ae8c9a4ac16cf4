/**
 * The client's side of the transparency log: root and targets metadata are accepted only with
 * an inclusion proof against a checkpoint signed by the log the trusted root declares
 * (`x-cairn-log`), and every checkpoint is proven consistent with the one this client held
 * from its last update and with every other checkpoint it saw in this one. Two checkpoints the
 * log key signed that cannot both be true are a split view: someone is showing this client a
 * history the rest of the world does not see, and the update stops (SPLIT_VIEW).
 *
 * Mirrors serve the log next to `metadata/`: `log/checkpoint` and the C2SP tiles under
 * `log/tile/`. Nothing a mirror serves is trusted: tiles and entry bundles count only through
 * proofs that end at a signed checkpoint. For each file, the mirror that served it is asked
 * first, then the others in rank order; a mirror whose checkpoint is older than the held one is
 * stale (skipped), one whose log does not verify is demoted. No mirror proving the file →
 * NOT_IN_LOG, which the refresh blames on the mirror that served the file.
 *
 * The held checkpoint is `{stateDir}/log-checkpoint` (the signed note, as the log served it),
 * replaced only by `persist()`, which the updater calls once the whole metadata refresh has
 * succeeded: a refused or split update leaves it as it was.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseCheckpoint, type Checkpoint, type CheckpointPolicy } from '@cairn/tlog/checkpoint';
import { MAX_ENTRY_BYTES } from '@cairn/tlog/entry';
import { isTlogError } from '@cairn/tlog/errors';
import { HASH_SIZE, MAX_NOTE_BYTES, TILE_WIDTH } from '@cairn/tlog/limits';
import { checkpointPolicy, logConfigFromRoot, type LogConfig } from '@cairn/tlog/log-config';
import { LogReader } from '@cairn/tlog/log-reader';
import { parseNote } from '@cairn/tlog/note';
import { isVerifyError } from '@cairn/verify/errors';
import type { Metadata, Root } from '@cairn/verify/metadata';
import type { Fetcher } from '@cairn/verify/ports';
import type { AcceptedMetadata } from '@cairn/verify/updater';
import { writeFileAtomic } from './atomic-file.js';
import { ClientError } from './errors.js';
import type { Mirror, RankedMirrors } from './mirrors.js';
import { useNodeSha256 } from '@cairn/tlog/node-hash';

// The client runs on Node: the log hashes through node:crypto, not WebCrypto's costly per-call
// digest (see @cairn/tlog/node-hash).
useNodeSha256();

/** Where mirrors serve the log, beside `metadata/` and `targets/`. */
export const LOG_PATH = 'log/';
/** The checkpoint this client trusts, in the state directory: the signed note's text. */
export const LOG_CHECKPOINT_FILE = 'log-checkpoint';

/** A checkpoint is a signed note: the note parser's own cap. */
const MAX_CHECKPOINT_BYTES = MAX_NOTE_BYTES;
/** A full hash tile: TILE_WIDTH hashes. */
const MAX_TILE_BYTES = TILE_WIDTH * HASH_SIZE;
/** A full entry bundle: TILE_WIDTH entries, each behind a 2-byte length. */
const MAX_BUNDLE_BYTES = TILE_WIDTH * (2 + MAX_ENTRY_BYTES);

/** How to turn the requirement off, said wherever it is what stops an update. */
export const LOG_REQUIRED_HINT =
  'set requireLogInclusion: false (cairn update --no-require-log) to update from a repository without a transparency log';

/** The log's part of an update, for the event and the report. */
export interface LogSummary {
  /** The checkpoint origin line of the log the final root declares. */
  readonly origin: string;
  /** The tree size of the checkpoint now held; undefined when none is held nor was needed. */
  readonly size: number | undefined;
  /** The tree size held before this update; undefined on the first. */
  readonly previousSize: number | undefined;
  /** Inclusion proofs verified in this update (one per root version and targets accepted). */
  readonly proofs: number;
  /** The mirror that served the checkpoint now held, when one was fetched in this update. */
  readonly mirror: string | undefined;
}

export interface LogInclusionOptions {
  readonly stateDir: string;
  /** The run's mirrors: log files are asked of each in turn, and bad ones demoted. */
  readonly mirrors: RankedMirrors;
  /** A Fetcher that asks only `mirror`, for paths relative to the repository's base. */
  readonly fetcherFor: (mirror: Mirror) => Fetcher;
}

/** One mirror's view of a log in this update: its verified checkpoint and a reader of its tiles. */
interface MirrorLog {
  readonly mirror: string;
  readonly note: string;
  readonly checkpoint: Checkpoint;
  readonly reader: LogReader;
}

type MirrorOutcome =
  { readonly ok: true; readonly log: MirrorLog } | { readonly ok: false; readonly reason: string };

/** One log declared by a root this update went through. */
interface LogView {
  readonly config: LogConfig;
  readonly policy: CheckpointPolicy;
  /** The held checkpoint, when it is this log's. */
  readonly held: Checkpoint | undefined;
  /** The largest checkpoint verified in this update. */
  best: MirrorLog | undefined;
  readonly mirrors: Map<string, Promise<MirrorOutcome>>;
}

function describe(error: unknown): string {
  if (isTlogError(error) || isVerifyError(error) || error instanceof ClientError)
    return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

function splitView(error: unknown, where: string): ClientError {
  return new ClientError(
    'SPLIT_VIEW',
    `${where}: ${error instanceof Error ? error.message : String(error)}`,
    { cause: error },
  );
}

/** Logs are told apart by their key and witness policy, which a root rotation may change. */
function logId(config: LogConfig): string {
  return JSON.stringify([config.key, config.witnesses, config.witnessThreshold]);
}

function maxLengthOf(path: string): number {
  if (path === 'checkpoint') return MAX_CHECKPOINT_BYTES;
  return path.startsWith('tile/entries/') ? MAX_BUNDLE_BYTES : MAX_TILE_BYTES;
}

export class LogInclusion {
  readonly #options: LogInclusionOptions;
  /** The held note's text and checkpoint; undefined when none is held (or it is unreadable). */
  readonly #held: { readonly note: string; readonly checkpoint: Checkpoint } | undefined;
  readonly #views = new Map<string, LogView>();
  #proofs = 0;

  private constructor(
    options: LogInclusionOptions,
    held: { readonly note: string; readonly checkpoint: Checkpoint } | undefined,
  ) {
    this.#options = options;
    this.#held = held;
  }

  /**
   * Reads the held checkpoint. One that cannot be read is reported through `warn` and treated
   * as none: the next verified checkpoint replaces it.
   */
  static async open(
    options: LogInclusionOptions,
    warn: (message: string) => void,
  ): Promise<LogInclusion> {
    const path = join(options.stateDir, LOG_CHECKPOINT_FILE);
    let note: string;
    try {
      note = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT')
        return new LogInclusion(options, undefined);
      throw e;
    }
    try {
      // Our own state, verified when it was written: parsed, not verified again, so that it
      // still anchors consistency after the root rotates the log's key.
      return new LogInclusion(options, { note, checkpoint: parseCheckpoint(parseNote(note).text) });
    } catch (e) {
      warn(`the held log checkpoint ${path} is unreadable and was ignored (${describe(e)})`);
      return new LogInclusion(options, undefined);
    }
  }

  /**
   * The Updater's `beforeAccept`: proves `accepted` is in the log its trusted root declares.
   * `servedBy` (the mirror that served the file) is asked first. Throws ClientError
   * LOG_REQUIRED, NOT_IN_LOG or SPLIT_VIEW.
   */
  async prove(accepted: AcceptedMetadata, servedBy: string | undefined): Promise<void> {
    const what = `${accepted.role} v${accepted.version}`;
    const view = await this.#view(accepted.trustedRoot, what);
    const reasons: string[] = [];
    for (const candidate of await this.#candidates(servedBy)) {
      const mirror = candidate.url;
      const outcome = await this.#mirrorLog(view, candidate);
      if (!outcome.ok) {
        reasons.push(`${mirror}: ${outcome.reason}`);
        continue;
      }
      const { log } = outcome;
      let found;
      try {
        [found] = await log.reader.findMetadata(log.checkpoint, [
          { role: accepted.role, version: accepted.version, bytes: accepted.bytes },
        ]);
      } catch (e) {
        if (!isTlogError(e) && !isVerifyError(e)) throw e;
        this.#options.mirrors.demote(mirror, `its log does not verify: ${describe(e)}`);
        reasons.push(`${mirror}: its log does not verify (${describe(e)})`);
        continue;
      }
      if (found !== undefined) {
        this.#proofs++;
        return;
      }
      reasons.push(
        `${mirror}: not among the entries of its checkpoint of size ${log.checkpoint.size}`,
      );
    }
    throw new ClientError(
      'NOT_IN_LOG',
      `${what} is not in the transparency log ${view.config.origin}: ${reasons.join('; ') || 'no mirror to ask'}`,
    );
  }

  /** LOG_REQUIRED unless `root` declares a log: the final root, after a refresh. */
  async requireDeclared(root: Metadata<Root>): Promise<void> {
    await this.#view(root, `root v${root.signed.version}`);
  }

  /**
   * Checks a checkpoint of the final root's log against the held one even when nothing new
   * needed proving, so that a fork shows on every run, not only on runs with a new release.
   * Throws SPLIT_VIEW like `prove`; mirrors without a usable log are only passed over.
   */
  async check(root: Metadata<Root>): Promise<void> {
    const view = await this.#view(root, `root v${root.signed.version}`);
    if (view.best !== undefined) return;
    for (const candidate of await this.#candidates(undefined)) {
      if ((await this.#mirrorLog(view, candidate)).ok) return;
    }
  }

  /** The log part of the update, as the final root's log now stands. */
  summary(root: Metadata<Root>): LogSummary | undefined {
    const config = this.#configOf(root);
    if (config === undefined) return undefined;
    const view = this.#views.get(logId(config));
    const held = this.#held?.checkpoint.origin === config.origin ? this.#held : undefined;
    const best = view?.best;
    return {
      origin: config.origin,
      size: best?.checkpoint.size ?? held?.checkpoint.size,
      previousSize: held?.checkpoint.size,
      proofs: this.#proofs,
      mirror: best?.mirror,
    };
  }

  /**
   * Holds the newest checkpoint verified for the final root's log, atomically. Call only once
   * the whole metadata refresh succeeded. Nothing is written when no checkpoint was fetched.
   */
  async persist(root: Metadata<Root>): Promise<void> {
    const config = this.#configOf(root);
    const best = config === undefined ? undefined : this.#views.get(logId(config))?.best;
    if (best === undefined || best.note === this.#held?.note) return;
    await writeFileAtomic(
      join(this.#options.stateDir, LOG_CHECKPOINT_FILE),
      new TextEncoder().encode(best.note),
    );
  }

  #configOf(root: Metadata<Root>): LogConfig | undefined {
    try {
      return logConfigFromRoot(root.signed.extra);
    } catch (e) {
      throw new ClientError(
        'VERIFICATION_FAILED',
        `root v${root.signed.version} declares a transparency log that cannot be used: ${describe(e)}`,
        { cause: e },
      );
    }
  }

  async #view(root: Metadata<Root>, what: string): Promise<LogView> {
    const config = this.#configOf(root);
    if (config === undefined) {
      throw new ClientError(
        'LOG_REQUIRED',
        `${what}: the trusted root v${root.signed.version} declares no transparency log, and log inclusion is required; ${LOG_REQUIRED_HINT}`,
      );
    }
    let view = this.#views.get(logId(config));
    if (view === undefined) {
      let policy: CheckpointPolicy;
      try {
        policy = await checkpointPolicy(config);
      } catch (e) {
        throw new ClientError(
          'VERIFICATION_FAILED',
          `root v${root.signed.version} declares a transparency log that cannot be used: ${describe(e)}`,
          { cause: e },
        );
      }
      const held =
        this.#held?.checkpoint.origin === config.origin ? this.#held.checkpoint : undefined;
      view = { config, policy, held, best: undefined, mirrors: new Map() };
      this.#views.set(logId(config), view);
    }
    return view;
  }

  async #candidates(first: string | undefined): Promise<Mirror[]> {
    const ranked = await this.#options.mirrors.ranked();
    const served = ranked.filter((m) => m.url === first);
    return [...served, ...ranked.filter((m) => m.url !== first)];
  }

  /** A mirror's checkpoint of this log, verified and proven consistent; once per update. */
  #mirrorLog(view: LogView, candidate: Mirror): Promise<MirrorOutcome> {
    let pending = view.mirrors.get(candidate.url);
    if (pending === undefined) {
      pending = this.#openMirrorLog(view, candidate);
      view.mirrors.set(candidate.url, pending);
    }
    return pending;
  }

  async #openMirrorLog(view: LogView, candidate: Mirror): Promise<MirrorOutcome> {
    const mirror = candidate.url;
    const fetcher = this.#options.fetcherFor(candidate);
    const reader = new LogReader(
      (path) => fetcher.fetch(`${LOG_PATH}${path}`, maxLengthOf(path)),
      view.policy,
    );
    let note: string;
    let checkpoint: Checkpoint;
    try {
      const bytes = await fetcher.fetch(`${LOG_PATH}checkpoint`, MAX_CHECKPOINT_BYTES);
      note = new TextDecoder().decode(bytes);
      checkpoint = (await reader.open(bytes)).checkpoint;
    } catch (e) {
      if (isVerifyError(e)) return { ok: false, reason: `no checkpoint (${describe(e)})` };
      if (!isTlogError(e)) throw e;
      this.#options.mirrors.demote(mirror, `its log checkpoint does not verify: ${describe(e)}`);
      return { ok: false, reason: `its checkpoint does not verify (${describe(e)})` };
    }
    const log: MirrorLog = { mirror, note, checkpoint, reader };
    const held = view.held;
    if (held !== undefined && checkpoint.size < held.size) {
      return {
        ok: false,
        reason: `stale: its checkpoint of size ${checkpoint.size} is older than the held one of size ${held.size}`,
      };
    }
    try {
      if (held !== undefined) await reader.checkConsistent(held, checkpoint);
    } catch (e) {
      if (isTlogError(e, 'SPLIT_VIEW')) {
        throw splitView(
          e,
          `${mirror} serves a checkpoint inconsistent with the one this client holds`,
        );
      }
      return this.#unverifiable(mirror, e);
    }
    const best = view.best;
    if (best !== undefined) {
      // The larger of the two checkpoints' tiles prove the pair: the mirror that served it has them.
      const larger = best.checkpoint.size >= checkpoint.size ? best : log;
      try {
        await larger.reader.checkConsistent(best.checkpoint, checkpoint);
      } catch (e) {
        if (isTlogError(e, 'SPLIT_VIEW')) {
          throw splitView(
            e,
            `${best.mirror} and ${mirror} serve checkpoints of the log that are inconsistent`,
          );
        }
        return this.#unverifiable(larger.mirror, e);
      }
    }
    if (best === undefined || checkpoint.size > best.checkpoint.size) view.best = log;
    return { ok: true, log };
  }

  /** A consistency check that could not be made from what `mirror` served. */
  #unverifiable(mirror: string, error: unknown): MirrorOutcome {
    if (!isTlogError(error) && !isVerifyError(error)) throw error;
    if (isTlogError(error)) {
      this.#options.mirrors.demote(mirror, `its log does not verify: ${describe(error)}`);
    }
    return { ok: false, reason: `its log could not be checked (${describe(error)})` };
  }
}
