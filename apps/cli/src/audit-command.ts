/**
 * `cairn audit` writes the evidence an auditor asks for, from public data alone: through one
 * mirror, the transparency log (verified at its current checkpoint) and every metadata file it
 * names, checked against the root the auditor pins (log-history.ts); then, for a window of
 * time, every release with its files, signers, log index and inclusion proof, every key change,
 * and every anomaly the monitor would report, as JSON, Markdown and HTML (audit-report.ts).
 *
 * The same inputs give byte-identical files: nothing in them depends on when the command ran
 * (unless --generated-at says so), and expiry is judged at the window's end, or now if that is
 * earlier. What moves between runs is only the log itself: the checkpoint read is printed, the
 * proofs are against it, and its note is written beside the reports as checkpoint.txt. Given
 * back with --checkpoint, the next run reads the log at that checkpoint (proven consistent with
 * the mirror's current one), so the report stays byte for byte the same as the log grows.
 *
 * Exit status: 0 report written, no anomaly; 3 report written, and it lists anomalies; 1 the
 * report could not be made (nothing written; with --checkpoint: CHECKPOINT_INVALID, SPLIT_VIEW,
 * CHECKPOINT_AHEAD, CONSISTENCY_UNPROVEN); 2 bad usage (BAD_DATE for a date that is not ISO 8601
 * or a window that ends before it starts; BAD_CHECKPOINT for a --checkpoint file that cannot be
 * read or is not a signed checkpoint note).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseCheckpoint } from '@cairn/tlog/checkpoint';
import { isTlogError } from '@cairn/tlog/errors';
import { parseNote } from '@cairn/tlog/note';
import { isVerifyError } from '@cairn/verify/errors';
import { Metadata } from '@cairn/verify/metadata';
import { failureHint, failureLine, withHint, type CliIo } from './cli-io.js';
import {
  parseCommand,
  printUsage,
  processDeps,
  usageError,
  type CommandDeps,
  type Terminal,
  type Usage,
} from './command-support.js';
import {
  AUDIT_FORMAT,
  plural,
  renderHtml,
  renderJson,
  renderMarkdown,
  type AuditAnomaly,
  type AuditFile,
  type AuditKey,
  type AuditKeyChange,
  type AuditLogEntry,
  type AuditRelease,
  type AuditReport,
} from './audit-report.js';
import {
  PinnedCheckpointError,
  readHistory,
  type Anomaly,
  type PinnedCheckpointErrorCode,
  type History,
  type HistoryEntry,
  type Signer,
} from './log-history.js';
import { redrawLine, REDRAW_MS } from './progress.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
/** The report was written and lists anomalies: a cron job or CI step can alert on it. */
export const EXIT_ANOMALIES = 3;

export type AuditErrorCode =
  /** --from, --to or --generated-at is not an ISO 8601 day or time, or the window ends before it starts. */
  | 'BAD_DATE'
  /** The mirror did not answer, or answered with a server error. */
  | 'UNREACHABLE'
  /** The --checkpoint file cannot be read, or is not a signed checkpoint note. */
  | 'BAD_CHECKPOINT'
  /** Why the log could not be read at the --checkpoint given (log-history.ts). */
  | PinnedCheckpointErrorCode;

export class AuditError extends Error {
  override readonly name = 'AuditError';
  readonly code: AuditErrorCode;
  override readonly cause: unknown;

  constructor(code: AuditErrorCode, message: string, options?: { cause?: unknown }) {
    super(message);
    this.code = code;
    this.cause = options?.cause;
  }
}

// ---------------------------------------------------------------------------------------------
// Dates and the window

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIME =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})$/i;

function badDate(flag: string, text: string, problem: string): AuditError {
  return withHint(
    new AuditError('BAD_DATE', `${flag}: ${problem}, received ${JSON.stringify(text)}`),
    'give a day (2026-11-01) or a time with its zone (2026-11-01T09:30:00Z, 2026-11-01T10:30+01:00)',
  );
}

function validDay(year: number, month: number, day: number): boolean {
  const date = new Date(Date.UTC(year, month - 1, day));
  return (
    date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day
  );
}

/**
 * An ISO 8601 day or time. A day starts the window at its first millisecond (`--from`) or ends it
 * at its last (`--to`), in UTC, so `--from 2026-11-01 --to 2026-11-30` is all of November. A time
 * must carry its zone: a report whose window depends on the auditor's time zone would not be
 * reproducible.
 */
export function parseAuditDate(text: string, flag: string, edge: 'start' | 'end'): Date {
  const day = DAY.exec(text);
  if (day !== null) {
    const [y, m, d] = [Number(day[1]), Number(day[2]), Number(day[3])];
    if (!validDay(y, m, d)) throw badDate(flag, text, 'no such day');
    return new Date(Date.UTC(y, m - 1, d) + (edge === 'end' ? 86_400_000 - 1 : 0));
  }
  const time = TIME.exec(text);
  if (time === null) {
    throw badDate(
      flag,
      text,
      /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text)
        ? 'a time needs its zone (Z or ±hh:mm)'
        : 'expected an ISO 8601 day or time',
    );
  }
  const [y, m, d, hh, mm, ss] = [1, 2, 3, 4, 5, 6].map((i) => Number(time[i] ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (!validDay(y, m, d) || hh > 23 || mm > 59 || ss > 59) {
    throw badDate(flag, text, 'no such time');
  }
  const ms = Number((time[7] ?? '').padEnd(3, '0').slice(0, 3));
  const zone = (time[8] ?? 'Z').toUpperCase();
  let offsetMinutes = 0;
  if (zone !== 'Z') {
    const digits = zone.slice(1).replace(':', '');
    const zh = Number(digits.slice(0, 2));
    const zm = Number(digits.slice(2, 4));
    if (zh > 23 || zm > 59) throw badDate(flag, text, 'no such time zone offset');
    offsetMinutes = (zone.startsWith('-') ? -1 : 1) * (zh * 60 + zm);
  }
  return new Date(Date.UTC(y, m - 1, d, hh, mm, ss, ms) - offsetMinutes * 60_000);
}

export interface AuditWindow {
  readonly from: Date;
  readonly to: Date;
}

export function parseWindow(from: string, to: string): AuditWindow {
  const window = {
    from: parseAuditDate(from, '--from', 'start'),
    to: parseAuditDate(to, '--to', 'end'),
  };
  if (window.to.getTime() < window.from.getTime()) {
    throw withHint(
      new AuditError(
        'BAD_DATE',
        `the window ends before it starts: --from ${window.from.toISOString()}, --to ${window.to.toISOString()}`,
      ),
      'swap --from and --to',
    );
  }
  return window;
}

export function inWindow(window: AuditWindow, time: string): boolean {
  const t = Date.parse(time);
  return t >= window.from.getTime() && t <= window.to.getTime();
}

/** `./cairn-audit-2026-11-01-2026-11-30`: the window as given, safe as a directory name. */
export function defaultOutDir(from: string, to: string): string {
  const safe = (text: string) => text.replace(/[^0-9A-Za-z.+-]/g, '');
  return `cairn-audit-${safe(from)}-${safe(to)}`;
}

// ---------------------------------------------------------------------------------------------
// From the history to the report

export type AuditFormat = 'html' | 'md' | 'json';
export const AUDIT_FORMATS: readonly AuditFormat[] = ['html', 'md', 'json'];

/** The file each format is written to, in the output directory. */
export function reportFileName(format: AuditFormat): string {
  return `audit.${format}`;
}

/** The signed checkpoint note the report was made at, beside the reports: `--checkpoint` it. */
export const CHECKPOINT_FILE = 'checkpoint.txt';

/** Bytes read of a --checkpoint file: a checkpoint note with a few cosignatures is < 2 KiB. */
const MAX_CHECKPOINT_FILE_BYTES = 64 * 1024;

/**
 * The text of a --checkpoint file: a signed note whose body is a checkpoint. Only its form is
 * checked here; its signatures are checked against the log's key once the roots are read.
 */
export async function readCheckpointFile(file: string): Promise<string> {
  const bad = (problem: string, cause?: unknown) =>
    withHint(
      new AuditError('BAD_CHECKPOINT', `--checkpoint ${file}: ${problem}`, { cause }),
      `give a signed checkpoint note: an earlier report's ${CHECKPOINT_FILE}, or the checkpoint file of cairn monitor --state`,
    );
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw bad(describeCause(error), error);
  }
  if (bytes.length > MAX_CHECKPOINT_FILE_BYTES) {
    throw bad(`more than ${String(MAX_CHECKPOINT_FILE_BYTES)} bytes`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    parseCheckpoint(parseNote(text).text);
  } catch (error) {
    if (error instanceof TypeError || isTlogError(error)) {
      throw bad(`not a signed checkpoint note (${describeCause(error)})`, error);
    }
    throw error;
  }
  return text;
}

function describeCause(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function auditKeys(signers: readonly Signer[] | undefined): AuditKey[] {
  return (signers ?? [])
    .map((s) => ({ keyid: s.keyid, name: s.named ? s.name : null }))
    .sort((a, b) => compareText(a.name ?? '', b.name ?? '') || compareText(a.keyid, b.keyid));
}

function logEntryOf(entry: HistoryEntry): AuditLogEntry {
  return {
    index: entry.index,
    entry: entry.entryText,
    leafHash: entry.leafHash,
    inclusionProof: [...entry.inclusionProof],
  };
}

function releaseOf(entry: HistoryEntry): AuditRelease {
  const files: AuditFile[] = (entry.release?.files ?? [])
    .map((f) => ({ path: f.path, length: f.length, sha256: f.hashes['sha256'] ?? null }))
    .sort((a, b) => compareText(a.path, b.path));
  return {
    role: entry.role,
    version: entry.version,
    time: entry.time,
    length: entry.length,
    sha256: entry.sha256,
    status: entry.status,
    rootVersion: entry.rootVersion,
    threshold: entry.approvals?.threshold ?? null,
    signers: auditKeys(entry.approvals?.signers),
    log: logEntryOf(entry),
    files,
  };
}

function keyChangeOf(entry: HistoryEntry): AuditKeyChange {
  return {
    version: entry.version,
    time: entry.time,
    length: entry.length,
    sha256: entry.sha256,
    status: entry.status,
    signers: auditKeys(entry.approvals?.signers),
    log: logEntryOf(entry),
    roles: (entry.root?.changes.roles ?? []).map((change) => ({
      role: change.role,
      added: auditKeys(change.added),
      removed: auditKeys(change.removed),
      threshold: { before: change.thresholdBefore ?? null, after: change.thresholdAfter },
    })),
    logKeyChanged: entry.root?.changes.logKeyChanged ?? false,
  };
}

function anomalyOf(anomaly: Anomaly, entry: HistoryEntry | undefined): AuditAnomaly {
  return {
    code: anomaly.code,
    severity: anomaly.severity,
    message: anomaly.message,
    ...(anomaly.index === undefined ? {} : { logIndex: anomaly.index }),
    ...(entry === undefined ? {} : { time: entry.time }),
    ...(anomaly.role === undefined ? {} : { role: anomaly.role }),
    ...(anomaly.version === undefined ? {} : { version: anomaly.version }),
  };
}

export interface AuditReportOptions {
  readonly window: AuditWindow;
  /** The `--root` the history was verified from. */
  readonly pinnedRoot: { readonly version: number; readonly sha256: string };
  readonly generatedAt?: Date | undefined;
}

/**
 * The report for `window`: the releases (targets and delegated targets versions) and key
 * changes (root versions) whose log entry time is in the window, in log order. The anomalies
 * are those about an entry in the window, those about no single entry (the checkpoint, the log
 * itself, a root the mirror serves unlogged), and those about a root logged before the window,
 * since every release in the window is verified through that chain of roots.
 */
export function auditReport(history: History, options: AuditReportOptions): AuditReport {
  const { window } = options;
  const byIndex = new Map(history.entries.map((e) => [e.index, e]));
  const inside = new Set(
    history.entries.filter((e) => inWindow(window, e.time)).map((e) => e.index),
  );
  const relevant = (a: Anomaly): boolean => {
    if (a.index === undefined) return true;
    if (inside.has(a.index)) return true;
    const entry = byIndex.get(a.index);
    return entry?.role === 'root' && Date.parse(entry.time) < window.from.getTime();
  };
  return {
    format: AUDIT_FORMAT,
    window: { from: window.from.toISOString(), to: window.to.toISOString() },
    ...(options.generatedAt === undefined
      ? {}
      : { generatedAt: options.generatedAt.toISOString() }),
    mirror: history.mirror,
    pinnedRoot: { version: options.pinnedRoot.version, sha256: options.pinnedRoot.sha256 },
    log: {
      origin: history.log.origin,
      key: history.log.key,
      checkpoint:
        history.checkpoint === undefined
          ? null
          : {
              size: history.checkpoint.size,
              rootHash: history.checkpoint.rootHash,
              note: history.checkpoint.note,
            },
    },
    anomalies: history.anomalies
      .filter(relevant)
      .map((a) => anomalyOf(a, a.index === undefined ? undefined : byIndex.get(a.index))),
    releases: history.releases.filter((e) => inside.has(e.index)).map(releaseOf),
    keyChanges: history.keyChanges.filter((e) => inside.has(e.index)).map(keyChangeOf),
  };
}

export function renderReport(report: AuditReport, format: AuditFormat): string {
  switch (format) {
    case 'html':
      return renderHtml(report);
    case 'md':
      return renderMarkdown(report);
    case 'json':
      return renderJson(report);
  }
}

/**
 * Writes `text` to `path` whole or not at all: a temporary file beside it, then a rename, so a
 * reader (or a crash) never sees half a report, and an older report stays until the new one is
 * complete.
 */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const temp = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temp, text, { flag: 'wx' });
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Progress

/**
 * Counts the files read through the mirror. On a terminal, one line redrawn in place; elsewhere
 * nothing until the end, where `done` prints one line either way.
 */
export class ReadProgress {
  readonly #terminal: Terminal;
  readonly #now: () => number;
  readonly #started: number;
  #files = 0;
  #drawnAt = -Infinity;

  constructor(terminal: Terminal, now: () => number = () => performance.now()) {
    this.#terminal = terminal;
    this.#now = now;
    this.#started = now();
  }

  get files(): number {
    return this.#files;
  }

  /** `fetch`, counting each answer. */
  wrap(fetchFn: typeof fetch): typeof fetch {
    return async (input, init) => {
      const response = await fetchFn(input, init);
      this.#files++;
      const now = this.#now();
      if (this.#terminal.isTTY && now - this.#drawnAt >= REDRAW_MS) {
        redrawLine(this.#terminal, `reading   ${this.#files} files`);
        this.#drawnAt = now;
      }
      return response;
    };
  }

  /** `read 123 files in 4.5 s` */
  summary(): string {
    const seconds = (this.#now() - this.#started) / 1000;
    return `read ${this.#files} files in ${seconds.toFixed(1)} s`;
  }

  /** Erases the redrawn line, if one was drawn, so the next line starts clean. */
  finish(): void {
    if (this.#drawnAt === -Infinity) return;
    this.#terminal.write('\r\x1b[K');
    this.#drawnAt = -Infinity;
  }
}

// ---------------------------------------------------------------------------------------------
// The command

const AUDIT: Usage = {
  command: 'cairn audit',
  synopsis:
    'cairn audit --mirror URL --root FILE --from DATE --to DATE [--out DIR] [--format html,md,json] [--generated-at TIME] [--checkpoint FILE]',
  details: [
    'Writes the evidence of what the repository published between --from and --to, checked',
    'from public data alone: through the mirror, the transparency log at its current checkpoint',
    'and every metadata file it names, verified from the root FILE. For each release (targets',
    'version logged in the window): its files with length and sha256, who signed it, when, its',
    'log index and verified inclusion proof; every key change (root version) with the keys',
    'added and removed per role; every anomaly the monitor would report; and the checkpoint',
    'the proofs were verified against, so anyone can verify them again. The checkpoint note is',
    'also written to DIR/checkpoint.txt: given back with --checkpoint, a later run reads the log',
    'at that checkpoint, not the current one, and writes byte-identical reports.',
    '',
    "  --mirror URL         a mirror's base URL (or the origin's public URL)",
    "  --root FILE          the repository's root.json to trust (version 1, or one you hold)",
    '  --from DATE          start of the window: a day (2026-11-01, from its first moment, UTC)',
    '                       or a time with its zone (2026-11-01T09:30:00Z)',
    '  --to DATE            end of the window, inclusive (a day: to its last moment, UTC)',
    '  --out DIR            where to write audit.html, audit.md and audit.json',
    '                       (default ./cairn-audit-FROM-TO)',
    '  --format LIST        which of html, md, json to write (default all three)',
    '  --generated-at TIME  a time to print in the report; without it the report holds no time',
    '                       of its own, and the same inputs give byte-identical files',
    '  --checkpoint FILE    read the log at this signed checkpoint note (an earlier checkpoint.txt,',
    "                       or cairn monitor --state's checkpoint), after verifying it with the",
    "                       log key and proving it consistent with the mirror's current checkpoint",
    '',
    'Exit status: 0 written, no anomaly; 3 written, with anomalies; 1 failed (nothing written;',
    'with --checkpoint: CHECKPOINT_INVALID, SPLIT_VIEW, CHECKPOINT_AHEAD, CONSISTENCY_UNPROVEN);',
    '2 bad usage, a bad date (BAD_DATE) or a bad --checkpoint file (BAD_CHECKPOINT).',
  ],
};

const AUDIT_OPTIONS = {
  mirror: { type: 'string' },
  root: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  out: { type: 'string' },
  format: { type: 'string' },
  'generated-at': { type: 'string' },
  checkpoint: { type: 'string' },
} as const;

export function parseFormats(text: string | undefined): AuditFormat[] {
  if (text === undefined) return [...AUDIT_FORMATS];
  const names = text.split(',').map((s) => s.trim().toLowerCase());
  const formats: AuditFormat[] = [];
  for (const name of names) {
    const format = name === 'markdown' ? 'md' : name;
    if (!(AUDIT_FORMATS as readonly string[]).includes(format)) {
      throw usageError(
        AUDIT,
        `--format: expected html, md or json (comma-separated), received ${JSON.stringify(name)}`,
      );
    }
    if (!formats.includes(format as AuditFormat)) formats.push(format as AuditFormat);
  }
  return formats;
}

function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw usageError(AUDIT, `missing ${flag}`);
  return value;
}

function auditHint(error: unknown): string | undefined {
  if (error instanceof AuditError) {
    switch (error.code) {
      case 'UNREACHABLE':
        return 'check --mirror: it must serve metadata/ and log/ (cairn mirror serve, or the origin)';
      case 'CHECKPOINT_INVALID':
        return "--checkpoint must be a checkpoint of this repository's log, signed by the log key its root declares";
      case 'SPLIT_VIEW':
        return 'the log was forked: keep the --checkpoint file and this output as evidence, and report it to the repository';
      case 'CHECKPOINT_AHEAD':
        return '--mirror is behind the --checkpoint: use a mirror that has synced past it, or the origin';
      case 'CONSISTENCY_UNPROVEN':
        return '--mirror must serve a valid log/checkpoint and the tiles under log/tile/ (cairn mirror sync)';
      case 'BAD_DATE':
      case 'BAD_CHECKPOINT':
        // Their hints are set where they are thrown.
        return undefined;
    }
  }
  if (isVerifyError(error)) {
    return '--root must be a root.json of this repository, and that root must declare its log (x-cairn-log)';
  }
  return undefined;
}

/** `✘ CODE: message` and the hint; AuditError's codes are printed as they are. */
function printFailure(io: CliIo, error: unknown, exit: number): number {
  withHint(error, auditHint(error));
  io.stderr(
    error instanceof AuditError
      ? `✘ ${error.code}: ${error.message.replace(/\s*\n\s*/g, ' ')}`
      : failureLine(error),
  );
  const hint = failureHint(error);
  if (hint !== undefined) io.stderr(hint);
  return exit;
}

/** The `--root` file's bytes, version and sha256 (a root that does not parse is MALFORMED). */
async function readPinnedRoot(
  file: string,
): Promise<{ bytes: Uint8Array; version: number; sha256: string }> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (error) {
    throw withHint(error, `--root ${file}: give the repository's root.json`);
  }
  const version = Metadata.fromBytes(bytes, 'root', file).signed.version;
  return { bytes, version, sha256: createHash('sha256').update(bytes).digest('hex') };
}

export async function runAudit(
  args: readonly string[],
  io: CliIo,
  deps: CommandDeps = processDeps(),
): Promise<number> {
  const { values } = parseCommand(AUDIT, args, AUDIT_OPTIONS, 0);
  if (values.help === true) return printUsage(io, AUDIT);
  const mirror = required(values.mirror, '--mirror URL');
  const rootFile = required(values.root, '--root FILE');
  const fromText = required(values.from, '--from DATE');
  const toText = required(values.to, '--to DATE');
  const formats = parseFormats(values.format);
  if (!/^https?:$/.test(URL.parse(mirror)?.protocol ?? '')) {
    throw usageError(
      AUDIT,
      `--mirror: expected an http(s) URL, received ${JSON.stringify(mirror)}`,
    );
  }
  let window: AuditWindow;
  let generatedAt: Date | undefined;
  let pinnedCheckpoint: string | undefined;
  try {
    window = parseWindow(fromText, toText);
    const at = values['generated-at'];
    generatedAt = at === undefined ? undefined : parseAuditDate(at, '--generated-at', 'start');
    const checkpointFile = values.checkpoint;
    if (checkpointFile !== undefined) pinnedCheckpoint = await readCheckpointFile(checkpointFile);
  } catch (error) {
    return printFailure(io, error, EXIT_USAGE);
  }
  const outDir = resolve(values.out ?? defaultOutDir(fromText, toText));

  let history: History;
  let pinnedRoot: { version: number; sha256: string };
  const progress = new ReadProgress(deps.terminal);
  try {
    const root = await readPinnedRoot(rootFile);
    pinnedRoot = { version: root.version, sha256: root.sha256 };
    io.stderr(`reading the log and its metadata through ${mirror}`);
    // Expiry is judged at the window's end (or now, if that is earlier): a report on a closed
    // window does not change because time went on.
    const asOf = new Date(Math.min(window.to.getTime(), deps.now().getTime()));
    history = await readHistory({
      mirror,
      trustedRoot: root.bytes,
      fetch: progress.wrap(globalThis.fetch),
      now: () => asOf,
      checkpoint: pinnedCheckpoint,
    });
  } catch (error) {
    progress.finish();
    const unreachable = isVerifyError(error) && error.code === 'FETCH_FAILED';
    return printFailure(
      io,
      unreachable
        ? new AuditError('UNREACHABLE', `${mirror}: ${error.message}`, { cause: error })
        : error instanceof PinnedCheckpointError
          ? new AuditError(error.code, error.message, { cause: error })
          : error,
      EXIT_FAILED,
    );
  }
  progress.finish();
  io.stderr(progress.summary());

  const report = auditReport(history, { window, pinnedRoot, generatedAt });
  const written: string[] = [];
  try {
    await mkdir(outDir, { recursive: true });
    for (const format of formats) {
      const path = join(outDir, reportFileName(format));
      await writeFileAtomic(path, renderReport(report, format));
      written.push(path);
    }
    if (history.checkpoint !== undefined) {
      const path = join(outDir, CHECKPOINT_FILE);
      await writeFileAtomic(path, history.checkpoint.note);
      written.push(path);
    }
  } catch (error) {
    return printFailure(io, error, EXIT_FAILED);
  }

  const anomalies = report.anomalies.length;
  io.stdout(
    `${anomalies === 0 ? '✔' : '✘'} ${report.window.from} to ${report.window.to}: ${plural(report.releases.length, 'release')}, ${plural(report.keyChanges.length, 'key change')}, ${anomalies === 0 ? 'no anomalies' : plural(anomalies, 'anomaly', 'anomalies')}`,
  );
  const checkpoint = report.log.checkpoint;
  if (checkpoint === null) {
    io.stdout(`  checkpoint: ${report.log.origin}: did NOT verify (see the anomalies)`);
  } else {
    const current = history.current;
    io.stdout(
      `  checkpoint (${current === undefined ? '' : 'pinned by --checkpoint; '}every proof is against it): ${plural(checkpoint.size, 'entry', 'entries')}, root hash ${checkpoint.rootHash}`,
    );
    for (const line of checkpoint.note.replace(/\n$/, '').split('\n')) {
      io.stdout(`    ${line}`.trimEnd());
    }
    if (current !== undefined) {
      io.stdout(
        `  consistent with the mirror's current checkpoint: ${plural(current.size, 'entry', 'entries')}, root hash ${current.rootHash}`,
      );
    }
  }
  for (const path of written) io.stdout(`  wrote ${path}`);
  return anomalies === 0 ? EXIT_OK : EXIT_ANOMALIES;
}
