/**
 * `cairn update` keeps a directory's files at the newest release the publishers signed, through
 * mirrors (`createUpdater` in @cairn/client); `cairn rollback` puts back the versions the last
 * update replaced, from the copies it kept.
 *
 * Output follows the updater's events as they come: the mirrors ranked, the verified metadata
 * versions, one line per file (delta, full or up to date), a progress bar while downloading (on a
 * terminal), warnings for fallbacks and failed mirrors, then a summary. `--json` prints the report
 * instead, `--quiet` only failures. Exit 0 updated or already current, 1 failed (SPLIT_VIEW and
 * NOT_IN_LOG among them: the transparency log refused the release), 2 bad usage or configuration
 * (LOG_REQUIRED: the repository declares no log and --no-require-log was not given), 3 another
 * updater holds the lock.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { ClientError } from '@cairn/client/errors';
import type { LogSummary } from '@cairn/client/log-inclusion';
import {
  createUpdater,
  type RolledBackFile,
  type UpdateEvent,
  type UpdateReport,
  type UpdatedFile,
  type UpdaterConfig,
} from '@cairn/client/update';
import { failureCode, failureHint, failureLine, withHint, type CliIo } from './cli-io.js';
import {
  columns,
  flagOrEnv,
  formatBytes,
  integerFlag,
  parseCommand,
  printJson,
  printUsage,
  processDeps,
  usageError,
  type CommandDeps,
  type Environment,
  type Terminal,
  type Usage,
} from './command-support.js';
import { progressBar, redrawLine, REDRAW_MS } from './progress.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
/** Another updater holds the state directory's lock: nothing was attempted. Distinct from 1 so a
 * cron job can treat "already running" as no failure. */
export const EXIT_LOCKED = 3;

/** Comma-separated mirrors, when no --mirror is given. */
export const MIRRORS_VARIABLE = 'CAIRN_MIRRORS';

// ---------------------------------------------------------------------------------------------
// Settings: flags over the environment over the --config file

/** A mirror as configured: a base URL, or `NAME=URL` to give it a name for messages. */
export type MirrorSetting = string | { readonly url: string; readonly name: string };

export interface UpdateSettings {
  readonly installDir: string;
  readonly stateDir: string;
  readonly mirrors: readonly MirrorSetting[];
  readonly rootFile: string | undefined;
  readonly targets: readonly string[] | undefined;
  readonly deltas: boolean;
  readonly timeoutSeconds: number | undefined;
  readonly minBytesPerSecond: number | undefined;
  /** Accept root and targets only with an inclusion proof in the transparency log. */
  readonly requireLog: boolean;
}

/** What a `--config` file may hold: the flags' values under the same names (camelCase). */
export interface UpdateConfigFile {
  readonly dir?: string | undefined;
  readonly state?: string | undefined;
  readonly mirrors?: readonly MirrorSetting[] | undefined;
  readonly root?: string | undefined;
  readonly targets?: readonly string[] | undefined;
  readonly deltas?: boolean | undefined;
  readonly timeout?: number | undefined;
  readonly minSpeed?: number | undefined;
  readonly requireLog?: boolean | undefined;
}

const CONFIG_FIELDS = [
  'dir',
  'state',
  'mirrors',
  'root',
  'targets',
  'deltas',
  'timeout',
  'minSpeed',
  'requireLog',
] as const;

/** A mirror name: the edge's CAIRN_MIRROR_NAME rule, without `=`, `:` or `/` so that
 * `NAME=URL` cannot be mistaken for a URL. */
const MIRROR_NAME = /^[\x21-\x7e]{1,64}$/;

/**
 * `https://m.example/` or `lan=http://10.0.0.5:8787/`. Checks that the URL is http(s), so a typo
 * is a usage error naming where it came from rather than a failed probe.
 */
export function parseMirrorSetting(text: string, where: string): MirrorSetting {
  const named = /^([^=:/\s]+)=(.*)$/.exec(text);
  const url = named?.[2] ?? text;
  const name = named?.[1];
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw new RangeError(`${where}: expected an http(s) URL or NAME=URL, received "${text}"`);
  }
  if (name === undefined) return url;
  if (!MIRROR_NAME.test(name)) {
    throw new RangeError(
      `${where}: a mirror name is 1 to 64 printable characters, received "${name}"`,
    );
  }
  return { url, name };
}

/**
 * The state directory when none is configured: outside the install directory, so the program
 * reading it never sees the updater's files (and no target can land on them), one per install
 * directory: `$XDG_STATE_HOME/cairn/NAME-HASH` (default `~/.local/state`), NAME the install
 * directory's own name for people, HASH the first 12 hex digits of the sha256 of its absolute path.
 */
export function defaultStateDir(installDir: string, env: Environment, home: string): string {
  const absolute = resolve(installDir);
  const xdg = env.XDG_STATE_HOME;
  // The XDG spec: a relative value is invalid and ignored.
  const base =
    xdg !== undefined && xdg !== '' && isAbsolute(xdg) ? xdg : join(home, '.local', 'state');
  const hash = createHash('sha256').update(absolute).digest('hex').slice(0, 12);
  const name = basename(absolute).replace(/[^A-Za-z0-9._-]/g, '_') || 'root';
  return join(base, 'cairn', `${name}-${hash}`);
}

function configInvalid(file: string, problem: string, cause?: unknown): ClientError {
  return withHint(
    new ClientError('CONFIG_INVALID', `${file}: ${problem}`, { cause }),
    'fix the field named; `cairn update --help` lists the fields, which are the flags’ names',
  );
}

/**
 * Reads and checks a `--config` file. Relative paths in it are relative to the file's directory,
 * as in the origin's configuration.
 */
export async function readUpdateConfigFile(file: string): Promise<UpdateConfigFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw configInvalid(
      file,
      code === 'ENOENT' ? 'no such file' : `cannot be read (${code ?? String(error)})`,
      error,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw configInvalid(file, `not JSON (${(error as Error).message})`, error);
  }
  return parseUpdateConfig(json, file);
}

/** Checks a parsed `--config` document; `file` names it in messages and anchors relative paths. */
export function parseUpdateConfig(json: unknown, file: string): UpdateConfigFile {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw configInvalid(file, 'expected a JSON object');
  }
  const doc = json as Record<string, unknown>;
  for (const key of Object.keys(doc)) {
    if (!(CONFIG_FIELDS as readonly string[]).includes(key)) {
      throw configInvalid(file, `unknown field "${key}" (fields: ${CONFIG_FIELDS.join(', ')})`);
    }
  }
  const base = dirname(resolve(file));
  const path = (key: 'dir' | 'state' | 'root'): string | undefined => {
    const value = doc[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || value === '') {
      throw configInvalid(file, `${key}: expected a path, received ${JSON.stringify(value)}`);
    }
    return resolve(base, value);
  };
  const count = (key: 'timeout' | 'minSpeed', min: number): number | undefined => {
    const value = doc[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
      throw configInvalid(
        file,
        `${key}: expected a whole number of at least ${min}, received ${JSON.stringify(value)}`,
      );
    }
    return value;
  };
  let mirrors: MirrorSetting[] | undefined;
  if (doc.mirrors !== undefined) {
    if (!Array.isArray(doc.mirrors)) {
      throw configInvalid(
        file,
        `mirrors: expected a list, received ${JSON.stringify(doc.mirrors)}`,
      );
    }
    mirrors = (doc.mirrors as unknown[]).map((entry, i) => {
      const where = `mirrors[${i}]`;
      try {
        if (typeof entry === 'string') return parseMirrorSetting(entry, where);
        if (typeof entry === 'object' && entry !== null && !Array.isArray(entry)) {
          const { url, name, ...rest } = entry as Record<string, unknown>;
          const extra = Object.keys(rest)[0];
          if (extra !== undefined) throw new RangeError(`${where}: unknown field "${extra}"`);
          if (typeof url !== 'string') throw new RangeError(`${where}.url: expected a URL`);
          if (name === undefined) return parseMirrorSetting(url, `${where}.url`);
          if (typeof name !== 'string') throw new RangeError(`${where}.name: expected a string`);
          return parseMirrorSetting(`${name}=${url}`, where);
        }
        throw new RangeError(`${where}: expected a URL or {"url", "name"}`);
      } catch (error) {
        throw configInvalid(file, (error as Error).message, error);
      }
    });
  }
  let targets: string[] | undefined;
  if (doc.targets !== undefined) {
    if (
      !Array.isArray(doc.targets) ||
      !(doc.targets as unknown[]).every((t) => typeof t === 'string' && t !== '')
    ) {
      throw configInvalid(
        file,
        `targets: expected a list of names or patterns, received ${JSON.stringify(doc.targets)}`,
      );
    }
    targets = doc.targets as string[];
  }
  if (doc.deltas !== undefined && typeof doc.deltas !== 'boolean') {
    throw configInvalid(
      file,
      `deltas: expected true or false, received ${JSON.stringify(doc.deltas)}`,
    );
  }
  if (doc.requireLog !== undefined && typeof doc.requireLog !== 'boolean') {
    throw configInvalid(
      file,
      `requireLog: expected true or false, received ${JSON.stringify(doc.requireLog)}`,
    );
  }
  return {
    dir: path('dir'),
    state: path('state'),
    mirrors,
    root: path('root'),
    targets,
    deltas: doc.deltas,
    timeout: count('timeout', 1),
    minSpeed: count('minSpeed', 0),
    requireLog: doc.requireLog,
  };
}

interface UpdateFlagValues {
  readonly dir?: string | undefined;
  readonly state?: string | undefined;
  readonly mirror?: readonly string[] | undefined;
  readonly root?: string | undefined;
  readonly target?: readonly string[] | undefined;
  readonly 'no-deltas'?: boolean | undefined;
  readonly 'no-require-log'?: boolean | undefined;
  readonly timeout?: string | undefined;
  readonly 'min-speed'?: string | undefined;
}

/**
 * The settings of one run: each flag wins over the environment, which wins over the file.
 * `needMirrors` is false for rollback, which downloads nothing.
 */
export function resolveUpdateSettings(
  usage: Usage,
  values: UpdateFlagValues,
  env: Environment,
  file: UpdateConfigFile,
  home: string,
  needMirrors = true,
): UpdateSettings {
  const given = (value: string | undefined) => (value === '' ? undefined : value);
  const dir = given(values.dir) ?? file.dir;
  if (dir === undefined) throw usageError(usage, 'missing --dir INSTALL_DIR');
  const installDir = resolve(dir);
  const state = given(values.state) ?? file.state;
  const stateDir = state === undefined ? defaultStateDir(installDir, env, home) : resolve(state);
  if (stateDir === installDir) {
    throw usageError(usage, '--state: the state directory must not be the install directory');
  }

  let mirrors: readonly MirrorSetting[] = [];
  const fromFlags = values.mirror ?? [];
  const fromEnv = flagOrEnv(undefined, env, MIRRORS_VARIABLE);
  try {
    if (fromFlags.length > 0) {
      mirrors = fromFlags.map((text) => parseMirrorSetting(text, '--mirror'));
    } else if (fromEnv !== undefined) {
      mirrors = fromEnv
        .split(',')
        .map((text) => text.trim())
        .filter((text) => text !== '')
        .map((text) => parseMirrorSetting(text, MIRRORS_VARIABLE));
    } else {
      mirrors = file.mirrors ?? [];
    }
  } catch (error) {
    throw usageError(usage, (error as Error).message);
  }
  if (needMirrors && mirrors.length === 0) {
    throw usageError(usage, `missing --mirror URL (or set ${MIRRORS_VARIABLE})`);
  }

  const targets =
    values.target !== undefined && values.target.length > 0 ? values.target : file.targets;
  if (targets?.some((t) => t === '') === true) throw usageError(usage, '--target: empty name');
  return {
    installDir,
    stateDir,
    mirrors,
    rootFile: given(values.root) ?? file.root,
    targets,
    deltas: values['no-deltas'] === true ? false : (file.deltas ?? true),
    timeoutSeconds: integerFlag(usage, values.timeout, '--timeout', 1) ?? file.timeout,
    minBytesPerSecond: integerFlag(usage, values['min-speed'], '--min-speed', 0) ?? file.minSpeed,
    requireLog: values['no-require-log'] === true ? false : (file.requireLog ?? true),
  };
}

/** The trusted root's bytes; a file that cannot be read is a configuration error (exit 2). */
async function readRoot(file: string | undefined): Promise<Uint8Array | undefined> {
  if (file === undefined) return undefined;
  try {
    return new Uint8Array(await readFile(file));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw withHint(
      new ClientError(
        'CONFIG_INVALID',
        `--root ${file}: ${code === 'ENOENT' ? 'no such file' : `cannot be read (${code ?? String(error)})`}`,
        { cause: error },
      ),
      "give the repository's root.json (its publisher hands it out; metadata/1.root.json on a mirror is it only if you trust that mirror)",
    );
  }
}

export function updaterConfig(
  settings: UpdateSettings,
  trustedRoot: Uint8Array | undefined,
): UpdaterConfig {
  return {
    installDir: settings.installDir,
    stateDir: settings.stateDir,
    mirrors: settings.mirrors,
    trustedRoot,
    targets: settings.targets,
    deltas: settings.deltas,
    requestTimeoutMs:
      settings.timeoutSeconds === undefined ? undefined : settings.timeoutSeconds * 1000,
    minBytesPerSecond: settings.minBytesPerSecond,
    requireLogInclusion: settings.requireLog,
  };
}

// ---------------------------------------------------------------------------------------------
// Failures: exit codes and hints

/** What the exit status of a failure is: 2 for bad configuration, 3 for a held lock, else 1. */
export function exitCodeOf(error: unknown): number {
  switch (failureCode(error)) {
    case 'USAGE':
    case 'CONFIG_INVALID':
    case 'LOG_REQUIRED':
      return EXIT_USAGE;
    case 'LOCKED':
      return EXIT_LOCKED;
    default:
      return EXIT_FAILED;
  }
}

/** Said of every failed update: installs are atomic per file. */
const INTACT =
  'every installed file is still its previous version or a fully verified new one, never a partial one';

/** One line on what to do about a failed update, by code. */
export function updateHint(code: string): string | undefined {
  switch (code) {
    case 'NO_MIRROR':
      return `check --mirror (or ${MIRRORS_VARIABLE}) and that a mirror serves metadata/timestamp.json; ${INTACT}`;
    case 'DOWNLOAD_FAILED':
    case 'TOO_SLOW':
    case 'RETRY_LATER':
      return `the mirrors could not deliver a file in time: try again later, or lower --min-speed on a slow link; ${INTACT}`;
    case 'TOO_LARGE':
    case 'VERIFICATION_FAILED':
    case 'BAD_HASH':
    case 'BAD_LENGTH':
      return `a mirror served bytes the signed metadata does not list, and no mirror served the right ones; ${INTACT}`;
    case 'INSTALL_FAILED':
      return `check that the install directory is writable and its disk has room; ${INTACT}`;
    case 'LOCKED':
      return 'wait for it to finish, then run again (a lock left by a crashed updater is taken over once its process is gone)';
    case 'EXPIRED':
      return `the repository's signed metadata has expired, or this machine's clock is wrong: check the clock; ${INTACT}`;
    case 'ROLLBACK':
      return `a mirror served older metadata than this machine already trusts (a stale mirror, or a replay); ${INTACT}`;
    case 'THRESHOLD':
      return `the metadata is not signed by the keys this machine trusts: is --root this repository's root?; ${INTACT}`;
    case 'SPLIT_VIEW':
      return 'the transparency log was shown to this machine with a history that contradicts what it saw before (or another mirror showed): a forked log, which someone may be using to hide a release from everyone else; nothing was installed and the checkpoint held is kept: report it to the repository’s operators';
    case 'NOT_IN_LOG':
      return `the metadata is signed but no mirror proves it is in the repository’s public transparency log (a release shipped around the log, or every mirror’s log is stale or damaged); ${INTACT}`;
    case 'LOG_REQUIRED':
      return 'the repository’s root declares no transparency log: ask its operators to set one up, or give --no-require-log ("requireLog": false in --config) to accept releases on signatures alone';
    case 'CONFIG_INVALID':
      return "fix the flag or field named (a first run needs the repository's root.json: --root FILE); `cairn update --help` lists them";
    default:
      return code === 'USAGE' || code === 'IO' || code === 'INTERNAL' ? undefined : INTACT;
  }
}

export function rollbackHint(code: string, stateDir: string): string | undefined {
  switch (code) {
    case 'NO_PREVIOUS_VERSION':
      return `a previous version is kept (in ${join(stateDir, 'previous')}) only for files an update replaced; give the same --dir and --state as the update`;
    case 'LOCKED':
      return updateHint(code);
    case 'INSTALL_FAILED':
      return 'check that the install directory is writable and its disk has room; the file is unchanged';
    default:
      return undefined;
  }
}

function printFailure(io: CliIo, error: unknown, hint: string | undefined): number {
  withHint(error, hint);
  io.stderr(failureLine(error));
  const line = failureHint(error);
  if (line !== undefined) io.stderr(line);
  return exitCodeOf(error);
}

// ---------------------------------------------------------------------------------------------
// What the user sees

/** How much of `full` a delta saved: one decimal, rounded down, so it never claims 100% early. */
export function savedPercent(saved: number, full: number): string {
  if (full <= 0) return '0.0%';
  const tenths = Math.floor((Math.max(0, saved) * 1000) / full);
  return `${(tenths / 10).toFixed(1)}%`;
}

/** Names mirrors in messages: their configured or announced name, else their URL. */
export class MirrorLabels {
  readonly #names = new Map<string, string>();

  learn(url: string, name: string | undefined): void {
    if (name !== undefined && name !== '') this.#names.set(url, name);
  }

  label(mirror: string | undefined): string {
    if (mirror === undefined) return 'a mirror';
    return this.#names.get(mirror) ?? mirror;
  }
}

type RankedMirror = Extract<UpdateEvent, { type: 'mirrors' }>['ranked'][number];

/** The mirrors table: `  lan-1  http://10.0.0.5:8787/  3 ms  timestamp v42`. */
export function mirrorTable(ranked: readonly RankedMirror[]): string[] {
  const rows = ranked.map((m) => [
    m.name ?? '',
    m.url,
    m.reachable && m.rttMs !== undefined ? `${Math.round(m.rttMs)} ms` : '',
    !m.reachable
      ? `unreachable${m.error === undefined ? '' : ` (${m.error})`}`
      : m.timestampVersion === undefined
        ? ''
        : `timestamp v${m.timestampVersion}`,
  ]);
  // Columns no mirror has a value in (no names, no round trips) are left out.
  const kept = [0, 1, 2, 3].filter((i) => i === 1 || rows.some((row) => row[i] !== ''));
  return columns(
    rows.map((row) => kept.map((i) => row[i] ?? '')),
    [kept.indexOf(2)],
  ).map((line) => `  ${line}`);
}

export function metadataLine(
  event: Extract<UpdateEvent, { type: 'metadata' }>,
  from: string,
): string {
  return `✔ metadata verified: timestamp v${event.timestampVersion}, targets v${event.targetsVersion} (from ${from})`;
}

/** A count as people read it: `1 234 567`. */
export function formatCount(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
}

/** `✔ log: checkpoint 1 234 (consistent with 1 200), 2 inclusion proofs` */
export function logLine(log: LogSummary): string {
  const proofs = plural(log.proofs, 'inclusion proof');
  if (log.size === undefined) return `✔ log: no checkpoint held yet, ${proofs}`;
  const size = formatCount(log.size);
  const before =
    log.previousSize === undefined
      ? 'the first this machine holds'
      : log.previousSize === log.size
        ? 'unchanged'
        : `consistent with ${formatCount(log.previousSize)}`;
  return `✔ log: checkpoint ${size} (${before}), ${proofs}`;
}

/** One file's outcome: `main.cvd: delta 12.3 KiB instead of 4.1 MiB (saved 99.7%) from lan-1`. */
export function fileLine(
  file: Pick<UpdatedFile, 'path' | 'action' | 'bytesDownloaded' | 'bytesSaved'>,
  from: string | undefined,
): string {
  switch (file.action) {
    case 'current':
      return `${file.path}: up to date`;
    case 'delta': {
      const full = file.bytesDownloaded + file.bytesSaved;
      return `${file.path}: delta ${formatBytes(file.bytesDownloaded)} instead of ${formatBytes(full)} (saved ${savedPercent(file.bytesSaved, full)})${from === undefined ? '' : ` from ${from}`}`;
    }
    case 'full':
      return `${file.path}: full ${formatBytes(file.bytesDownloaded)}${from === undefined ? '' : ` from ${from}`}`;
  }
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The last line: what changed and what it cost against full downloads. */
export function updateSummary(report: UpdateReport): string {
  const changed = report.files.filter((f) => f.action !== 'current').length;
  if (changed === 0) {
    return `✔ up to date: ${plural(report.files.length, 'file')} at targets v${report.targetsVersion}`;
  }
  const saved = report.bytesFull - report.bytesDownloaded;
  const cost =
    saved > 0
      ? `downloaded ${formatBytes(report.bytesDownloaded)} instead of ${formatBytes(report.bytesFull)} (saved ${savedPercent(saved, report.bytesFull)})`
      : `downloaded ${formatBytes(report.bytesDownloaded)}`;
  return `✔ updated ${plural(changed, 'file')} to targets v${report.targetsVersion}: ${cost}`;
}

/** Why a planned delta was not used, as the warning says it. */
export function fallbackLine(path: string, reason: string): string {
  return `⚠ ${path}: the delta was not used (${reason}); downloading the full file instead`;
}

export function mirrorFailedLine(label: string, reason: string): string {
  return `⚠ mirror ${label} failed (${reason}); trying the next one`;
}

export interface DownloadProgress {
  readonly path: string;
  readonly kind: 'delta' | 'full';
  readonly bytes: number;
  readonly total: number;
  readonly elapsedMs: number;
}

/** `main.cvd (delta)  [######------------------]  25%  3.0 MiB / 12.0 MiB  1.5 MiB/s` */
export function renderDownloadProgress(line: DownloadProgress): string {
  const fraction = line.total <= 0 ? 1 : Math.min(1, line.bytes / line.total);
  const bar = progressBar(fraction);
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  const rate =
    line.elapsedMs > 0
      ? `  ${formatBytes(Math.round((line.bytes * 1000) / line.elapsedMs))}/s`
      : '';
  return `${line.path} (${line.kind})  ${bar} ${percent}  ${formatBytes(line.bytes)} / ${formatBytes(line.total)}${rate}`;
}

/** One line on standard error, redrawn in place, per file; drawn only on a terminal. */
export class DownloadProgressLine {
  readonly #terminal: Terminal;
  readonly #now: () => number;
  #key: string | undefined;
  #started = 0;
  #drawnAt = -Infinity;
  #drawn = false;

  constructor(terminal: Terminal, now: () => number = () => performance.now()) {
    this.#terminal = terminal;
    this.#now = now;
  }

  update(path: string, kind: 'delta' | 'full', bytes: number, total: number): void {
    if (!this.#terminal.isTTY) return;
    const now = this.#now();
    const key = `${kind} ${path}`;
    if (key !== this.#key) {
      this.#key = key;
      this.#started = now;
      this.#drawnAt = -Infinity;
    }
    if (bytes < total && now - this.#drawnAt < REDRAW_MS) return;
    redrawLine(
      this.#terminal,
      renderDownloadProgress({ path, kind, bytes, total, elapsedMs: now - this.#started }),
    );
    this.#drawnAt = now;
    this.#drawn = true;
  }

  /** Erases the bar, so the next line of output starts on a clean line. */
  clear(): void {
    if (this.#drawn) this.#terminal.write('\r\x1b[K');
    this.#drawn = false;
    this.#key = undefined;
  }
}

export type OutputMode = 'text' | 'json' | 'quiet';

/** What `--json` adds to the updater's report: where the state is, and what the run met. */
export interface UpdateJson extends UpdateReport {
  readonly stateDir: string;
  /** The mirrors ranked, best first, as the run saw them (absent when the updater sent none). */
  readonly mirrors?: readonly RankedMirror[];
  /** Mirrors that failed during the run (the run then went on with the next). */
  readonly mirrorFailures: readonly { readonly mirror: string; readonly reason: string }[];
}

/**
 * Turns the updater's events into lines: the listener given to createUpdater, then `finish` with
 * the report. Text goes to standard output, warnings to standard error, the bar to the terminal.
 */
export class UpdatePrinter {
  readonly #io: CliIo;
  readonly #mode: OutputMode;
  readonly #bar: DownloadProgressLine;
  readonly #labels = new MirrorLabels();
  readonly #printed = new Set<string>();
  /** Mirrors already warned about, or shown unreachable: one warning a mirror is enough. */
  readonly #warned = new Set<string>();
  #ranked: readonly RankedMirror[] | undefined;
  readonly #failures: { mirror: string; reason: string }[] = [];

  constructor(io: CliIo, terminal: Terminal, mode: OutputMode, now?: () => number) {
    this.#io = io;
    this.#mode = mode;
    this.#bar = new DownloadProgressLine(
      mode === 'quiet' ? { isTTY: false, write: () => undefined } : terminal,
      now,
    );
  }

  readonly listener = (event: UpdateEvent): void => {
    const text = this.#mode === 'text';
    switch (event.type) {
      case 'mirrors':
        this.#ranked = event.ranked;
        for (const m of event.ranked) {
          this.#labels.learn(m.url, m.name);
          if (!m.reachable) this.#warned.add(m.url);
        }
        if (text && event.ranked.length > 0) {
          this.#bar.clear();
          this.#io.stdout('mirrors, best first:');
          for (const line of mirrorTable(event.ranked)) this.#io.stdout(line);
        }
        return;
      case 'metadata':
        if (text) {
          this.#bar.clear();
          this.#io.stdout(metadataLine(event, this.#labels.label(event.mirror)));
        }
        return;
      case 'log':
        if (text) {
          this.#bar.clear();
          this.#io.stdout(logLine(event));
        }
        return;
      case 'plan':
        for (const item of event.items) {
          if (item.action !== 'current') continue;
          this.#printed.add(item.path);
          if (text)
            this.#io.stdout(fileLine({ ...item, bytesDownloaded: 0, bytesSaved: 0 }, undefined));
        }
        return;
      case 'progress':
        this.#bar.update(event.path, event.kind, event.bytes, event.total);
        return;
      case 'fallback':
        if (text) {
          this.#bar.clear();
          this.#io.stderr(fallbackLine(event.path, event.reason));
        }
        return;
      case 'mirror-failed':
        this.#failures.push({ mirror: event.mirror, reason: event.reason });
        if (text && !this.#warned.has(event.mirror)) {
          this.#warned.add(event.mirror);
          this.#bar.clear();
          this.#io.stderr(mirrorFailedLine(this.#labels.label(event.mirror), event.reason));
        }
        return;
      case 'installed':
        this.#printed.add(event.path);
        if (text) {
          this.#bar.clear();
          this.#io.stdout(
            fileLine({ ...event, action: event.kind }, this.#labels.label(event.mirror)),
          );
        }
        return;
    }
  };

  /** Erases a bar left drawn (by a failure halfway through a download). */
  abort(): void {
    this.#bar.clear();
  }

  finish(report: UpdateReport, stateDir: string): void {
    this.#bar.clear();
    switch (this.#mode) {
      case 'quiet':
        return;
      case 'json': {
        const json: UpdateJson = {
          ...report,
          stateDir,
          ...(this.#ranked === undefined ? {} : { mirrors: this.#ranked }),
          mirrorFailures: this.#failures,
        };
        printJson(this.#io, json);
        return;
      }
      case 'text':
        // Files the events did not announce (an updater that reports only at the end).
        for (const file of report.files) {
          if (this.#printed.has(file.path)) continue;
          this.#io.stdout(
            fileLine(file, file.action === 'current' ? undefined : this.#labels.label(file.mirror)),
          );
        }
        for (const warning of report.warnings ?? []) this.#io.stderr(`⚠ ${warning}`);
        for (const pattern of report.unmatched) {
          this.#io.stderr(
            `⚠ --target ${JSON.stringify(pattern)} matched no file in the repository`,
          );
        }
        this.#io.stdout(updateSummary(report));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// cairn update

const UPDATE: Usage = {
  command: 'cairn update',
  synopsis:
    'cairn update --dir INSTALL_DIR --mirror URL... [--root FILE] [--state STATE_DIR] [--target NAME|GLOB...] [--no-deltas] [--no-require-log] [--timeout SECONDS] [--min-speed BYTES_PER_SECOND] [--config FILE] [--json | --quiet]',
  details: [
    'Brings the files in INSTALL_DIR to the newest release the publishers signed, from the',
    'fastest mirror that serves it. Every file is checked against the signed metadata before it',
    'is installed, and installed atomically: a program reading INSTALL_DIR sees the old file or',
    'the new one, never a partial one. Where a delta from the installed file is published, only',
    'the delta is downloaded. The version each update replaces is kept, for `cairn rollback`.',
    'Root and targets metadata are accepted only with a proof that they are in the repository’s',
    'public transparency log, consistent with the log this machine saw last time.',
    '',
    '  --dir INSTALL_DIR            where the files go (the program reads them from here)',
    `  --mirror URL                 a mirror's base URL, or NAME=URL; repeat for several, tried`,
    `                               fastest first ($${MIRRORS_VARIABLE}: comma-separated)`,
    "  --root FILE                  the repository's root.json, trusted on the first run; later runs",
    '                               trust what the state directory holds (and its signed successors)',
    "  --state STATE_DIR            the updater's own files: trusted metadata, what is installed,",
    '                               previous versions, the lock. Default: one directory per',
    '                               INSTALL_DIR, $XDG_STATE_HOME/cairn/NAME-HASH',
    '                               ($XDG_STATE_HOME defaults to ~/.local/state)',
    '  --target NAME|GLOB           only these files (`*.cvd`, `daily/**`); repeatable; default all',
    '  --no-deltas                  always download full files',
    '  --no-require-log             accept metadata without a transparency-log inclusion proof, on',
    '                               signatures alone (for a repository whose root declares no log)',
    '  --timeout SECONDS            per request, until the answer starts (default 30)',
    '  --min-speed BYTES_PER_SECOND a download slower than this moves to the next mirror',
    '                               (default 8192; 0 turns the check off)',
    '  --config FILE                a JSON file with the same settings: {"dir", "state", "mirrors",',
    '                               "root", "targets", "deltas", "timeout", "minSpeed",',
    `                               "requireLog"}; flags and $${MIRRORS_VARIABLE} win over it; relative`,
    '                               paths are relative to it',
    '  --json                       print the report as one JSON document instead of text',
    '  -q, --quiet                  print nothing but failures',
    '',
    'Exit status: 0 updated or already up to date; 1 the update failed (each installed file is',
    'still its previous version or a verified new one; SPLIT_VIEW: the log was forked, NOT_IN_LOG:',
    'a release is not in the log); 2 bad usage or configuration (LOG_REQUIRED: the repository',
    'declares no log); 3 another updater is running on this state directory.',
  ],
};

const UPDATE_OPTIONS = {
  config: { type: 'string' },
  dir: { type: 'string' },
  state: { type: 'string' },
  mirror: { type: 'string', multiple: true },
  root: { type: 'string' },
  target: { type: 'string', multiple: true },
  'no-deltas': { type: 'boolean' },
  'no-require-log': { type: 'boolean' },
  timeout: { type: 'string' },
  'min-speed': { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
} as const;

function outputMode(
  usage: Usage,
  json: boolean | undefined,
  quiet: boolean | undefined,
): OutputMode {
  if (json === true && quiet === true) {
    throw usageError(usage, '--json and --quiet are both given: choose one');
  }
  return json === true ? 'json' : quiet === true ? 'quiet' : 'text';
}

/** Settings and output mode, or a usage/config failure printed and its exit status. */
async function settingsOf(
  usage: Usage,
  values: UpdateFlagValues & { readonly config?: string | undefined },
  deps: CommandDeps,
  needMirrors: boolean,
): Promise<UpdateSettings> {
  const file = values.config === undefined ? {} : await readUpdateConfigFile(values.config);
  return resolveUpdateSettings(usage, values, deps.env, file, homedir(), needMirrors);
}

export async function runUpdate(
  args: readonly string[],
  io: CliIo,
  deps: CommandDeps = processDeps(),
): Promise<number> {
  const { values } = parseCommand(UPDATE, args, UPDATE_OPTIONS, 0);
  if (values.help === true) return printUsage(io, UPDATE);
  const mode = outputMode(UPDATE, values.json, values.quiet);
  let settings: UpdateSettings;
  let root: Uint8Array | undefined;
  try {
    settings = await settingsOf(UPDATE, values, deps, true);
    root = await readRoot(settings.rootFile);
  } catch (error) {
    if (failureCode(error) === 'USAGE') throw error;
    return printFailure(io, error, updateHint(failureCode(error)));
  }
  const printer = new UpdatePrinter(io, deps.terminal, mode);
  try {
    const updater = createUpdater(updaterConfig(settings, root), printer.listener);
    const report = await updater.update();
    printer.finish(report, settings.stateDir);
    return EXIT_OK;
  } catch (error) {
    printer.abort();
    return printFailure(io, error, updateHint(failureCode(error)));
  }
}

// ---------------------------------------------------------------------------------------------
// cairn rollback

const ROLLBACK: Usage = {
  command: 'cairn rollback',
  synopsis:
    'cairn rollback --dir INSTALL_DIR [--state STATE_DIR] [--config FILE] [PATH] [--json | --quiet]',
  details: [
    'Puts back, in INSTALL_DIR, the previous version of PATH, or without PATH of every file the',
    'last `cairn update` changed, from the copies the update kept in the state directory. Each',
    'file is swapped atomically, and the version it replaces is kept in turn: a second rollback',
    'undoes the first. Nothing is downloaded; the next `cairn update` installs the newest release',
    'again.',
    '',
    '  --dir INSTALL_DIR            as given to cairn update',
    '  --state STATE_DIR            as given to cairn update (the same default)',
    '  --config FILE                the update configuration file; only "dir" and "state" are used',
    '  --json                       print {"stateDir", "files": [{"path", "restored"}]} instead of text',
    '  -q, --quiet                  print nothing but failures',
    '',
    'Exit status: 0 rolled back; 1 it failed (NO_PREVIOUS_VERSION: nothing kept to go back to);',
    '2 bad usage; 3 an updater is running on this state directory.',
  ],
};

const ROLLBACK_OPTIONS = {
  config: { type: 'string' },
  dir: { type: 'string' },
  state: { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
} as const;

/** `main.cvd: restored the previous version (sha256 1a2b3c4d5e6f…)` */
export function rollbackLine(file: RolledBackFile): string {
  return `${file.path}: restored the previous version (sha256 ${file.restored.slice(0, 12)}…)`;
}

export function rollbackSummary(files: readonly RolledBackFile[], installDir: string): string {
  return `✔ rolled back ${plural(files.length, 'file')} in ${installDir}`;
}

export async function runRollback(
  args: readonly string[],
  io: CliIo,
  deps: CommandDeps = processDeps(),
): Promise<number> {
  const { values, positionals } = parseCommand(ROLLBACK, args, ROLLBACK_OPTIONS, 1);
  if (values.help === true) return printUsage(io, ROLLBACK);
  const mode = outputMode(ROLLBACK, values.json, values.quiet);
  const path = positionals[0];
  if (path === '') throw usageError(ROLLBACK, 'PATH is empty');
  let settings: UpdateSettings;
  try {
    settings = await settingsOf(ROLLBACK, values, deps, false);
  } catch (error) {
    if (failureCode(error) === 'USAGE') throw error;
    return printFailure(io, error, updateHint(failureCode(error)));
  }
  try {
    const updater = createUpdater(updaterConfig(settings, undefined));
    const files = await updater.rollback(path);
    if (mode === 'json') printJson(io, { stateDir: settings.stateDir, files });
    if (mode === 'text') {
      for (const file of files) io.stdout(rollbackLine(file));
      io.stdout(rollbackSummary(files, settings.installDir));
    }
    return EXIT_OK;
  } catch (error) {
    return printFailure(io, error, rollbackHint(failureCode(error), settings.stateDir));
  }
}
