/**
 * `cairn monitor`: follows the transparency log through the first mirror that answers and
 * checks, from public data alone, what the log and the mirrors say:
 *
 * - the log: its checkpoint verifies and is consistent with the last one this monitor trusted
 *   (kept in --state) and with every other mirror's (a fork is a split view); every entry's
 *   metadata is on the mirror with the logged bytes and verifies under the root of its time
 *   (log-history.ts);
 * - every mirror: its timestamp verifies under the newest logged root and has not expired; the
 *   snapshot it names, and the targets that snapshot names, are in the log with the bytes the
 *   mirror serves (else a release no one can see in the log is being served); it has not
 *   fallen behind the newest by more than --max-age;
 * - expiry: root and targets (signed by people, not refreshed by the origin) expiring within
 *   --expiry-warning days;
 * - approvals: releases signed by fewer publishers than --min-approvals.
 *
 * Alerts go out as the exit status, human lines or one JSON document, a Prometheus text file,
 * and a webhook POST of the alerts that are new since the previous check.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Checkpoint, OpenedCheckpoint } from '@cairn/tlog/checkpoint';
import { isTlogError } from '@cairn/tlog/errors';
import { LogReader } from '@cairn/tlog/log-reader';
import { isVerifyError, VerifyError } from '@cairn/verify/errors';
import { sha256Hex, verifyLengthAndHashes, webHashPort } from '@cairn/verify/hash';
import { DEFAULT_LIMITS } from '@cairn/verify/limits';
import {
  Metadata,
  verifyDelegate,
  type MetaFile,
  type Snapshot,
  type Timestamp,
} from '@cairn/verify/metadata';
import { withHint, type CliIo } from './cli-io.js';
import {
  formatTimeLeft,
  integerFlag,
  parseCommand,
  printJson,
  printUsage,
  usageError,
  type Usage,
} from './command-support.js';
import {
  describeError,
  DEFAULT_TIMEOUT_MS,
  logFetch,
  loggedKey,
  metadataPath,
  MissingFile,
  mirrorFetch,
  traceLog,
  type Anomaly,
  type LogTrace,
  type MirrorFetch,
  type Severity,
} from './log-history.js';

/** Nothing to report. */
export const EXIT_OK = 0;
/** At least one critical alert, or no mirror could be read. */
export const EXIT_CRITICAL = 1;
export const EXIT_USAGE = 2;
/** Warnings only. */
export const EXIT_WARNINGS = 4;

const DAY_MS = 86_400_000;
/** The webhook gets this long to answer: a monitor must not hang on its own alerting. */
const WEBHOOK_TIMEOUT_MS = 10_000;

export const USAGE: Usage = {
  command: 'cairn monitor',
  synopsis:
    'cairn monitor --mirror URL [--mirror URL ...] --root FILE [--state DIR] [--once | --interval SECONDS] [--webhook URL] [--metrics-file FILE] [--expiry-warning DAYS] [--max-age SECONDS] [--min-approvals N] [--timeout SECONDS] [--json]',
  details: [
    'Follows the transparency log through the first mirror that answers and checks the log and',
    'every mirror from public data alone. Alerts: a log fork (split view), a log entry whose',
    'metadata is missing or differs, metadata below its signature threshold, a release served',
    'by a mirror that is not in the log, a stale mirror, expiry ahead, approvals below policy.',
    '',
    'Options:',
    '  --mirror URL           a mirror (or the origin) to check; repeat for each (required)',
    '  --root FILE            the pinned root.json: trust starts there (required)',
    '  --state DIR            keep the last verified checkpoint here, to prove the next one',
    '                         extends it, and remember alerts already sent',
    '  --once                 check once and exit (the default)',
    '  --interval SECONDS     check again every SECONDS until SIGINT or SIGTERM',
    '  --webhook URL          POST new alerts as JSON to URL',
    '  --metrics-file FILE    write Prometheus text metrics to FILE (atomically)',
    '  --expiry-warning DAYS  warn when root or targets expire within DAYS (default 7)',
    '  --max-age SECONDS      a mirror behind the newest release for longer is stale (default 3600)',
    '  --min-approvals N      releases need N publisher signatures (default: the threshold)',
    '  --timeout SECONDS      per request (default 30)',
    '  --json                 print one JSON document per check',
    '',
    'Exit status: 0 no alert, 1 a critical alert (or no mirror could be read),',
    '             2 bad usage, 4 warnings only. With --interval: the last check’s status.',
  ],
};

export interface MonitorSettings {
  readonly mirrors: readonly string[];
  readonly rootFile: string;
  readonly stateDir: string | undefined;
  /** undefined: check once. */
  readonly intervalSeconds: number | undefined;
  readonly webhook: string | undefined;
  readonly metricsFile: string | undefined;
  readonly expiryWarningDays: number;
  readonly maxAgeSeconds: number;
  readonly minApprovals: number;
  readonly timeoutMs: number;
  readonly json: boolean;
}

function httpUrl(value: string, flag: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usageError(USAGE, `${flag}: expected an http(s) URL, received ${JSON.stringify(value)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw usageError(USAGE, `${flag}: expected an http(s) URL, received ${JSON.stringify(value)}`);
  }
  return value;
}

const OPTIONS = {
  mirror: { type: 'string', multiple: true },
  root: { type: 'string' },
  state: { type: 'string' },
  once: { type: 'boolean' },
  interval: { type: 'string' },
  webhook: { type: 'string' },
  'metrics-file': { type: 'string' },
  'expiry-warning': { type: 'string' },
  'max-age': { type: 'string' },
  'min-approvals': { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** The settings `args` ask for, or undefined for --help. */
export function parseMonitorArgs(args: readonly string[]): MonitorSettings | undefined {
  const { values } = parseCommand(USAGE, args, OPTIONS, 0);
  if (values.help === true) return undefined;
  const mirrors = (values.mirror ?? []).map((m) => httpUrl(m, '--mirror'));
  if (mirrors.length === 0) throw usageError(USAGE, 'missing --mirror');
  if (values.root === undefined || values.root === '') throw usageError(USAGE, 'missing --root');
  if (values.once === true && values.interval !== undefined) {
    throw usageError(USAGE, '--once and --interval exclude each other');
  }
  return {
    mirrors,
    rootFile: values.root,
    stateDir: values.state === undefined || values.state === '' ? undefined : values.state,
    intervalSeconds: integerFlag(USAGE, values.interval, '--interval', 1),
    webhook: values.webhook === undefined ? undefined : httpUrl(values.webhook, '--webhook'),
    metricsFile: values['metrics-file'] === '' ? undefined : values['metrics-file'],
    expiryWarningDays: integerFlag(USAGE, values['expiry-warning'], '--expiry-warning', 0) ?? 7,
    maxAgeSeconds: integerFlag(USAGE, values['max-age'], '--max-age', 1) ?? 3600,
    minApprovals: integerFlag(USAGE, values['min-approvals'], '--min-approvals', 0) ?? 0,
    timeoutMs:
      (integerFlag(USAGE, values.timeout, '--timeout', 1) ?? DEFAULT_TIMEOUT_MS / 1000) * 1000,
    json: values.json === true,
  };
}

// ---------------------------------------------------------------------------------------------
// Alerts

export type AlertCode =
  | Anomaly['code']
  | 'NO_MIRROR'
  | 'MIRROR_UNREACHABLE'
  | 'MIRROR_CHECKPOINT_INVALID'
  | 'SPLIT_VIEW'
  | 'CHECKPOINT_BEHIND'
  | 'STATE_RESET'
  | 'TIMESTAMP_INVALID'
  | 'TIMESTAMP_EXPIRED'
  | 'UNLOGGED_RELEASE'
  | 'MIRROR_INCOMPLETE'
  | 'STALE_MIRROR'
  | 'EXPIRED'
  | 'EXPIRY_AHEAD';

export interface Alert {
  readonly code: AlertCode;
  readonly severity: Severity;
  /** One line. */
  readonly message: string;
  /** The mirror it concerns, when it concerns one. */
  readonly mirror?: string;
  readonly index?: number;
  readonly role?: string;
  readonly version?: number;
}

/** What identifies an alert from one check to the next: the same problem is not news. */
export function alertKey(alert: Alert): string {
  return [
    alert.code,
    alert.mirror ?? '',
    alert.role ?? '',
    alert.version ?? '',
    alert.index ?? '',
  ].join('|');
}

export function exitCodeFor(alerts: readonly Alert[]): number {
  if (alerts.some((a) => a.severity === 'critical')) return EXIT_CRITICAL;
  return alerts.length > 0 ? EXIT_WARNINGS : EXIT_OK;
}

// ---------------------------------------------------------------------------------------------
// One check

export interface MirrorReport {
  readonly url: string;
  readonly reachable: boolean;
  readonly checkpointSize?: number;
  readonly timestampVersion?: number;
  readonly timestampExpires?: string;
  readonly snapshotVersion?: number;
  readonly targetsVersion?: number;
}

export interface MonitorReport {
  readonly checkedAt: string;
  /** The mirror the log was followed through. */
  readonly primary: string | undefined;
  readonly log:
    | {
        readonly origin: string;
        readonly size: number;
        readonly rootHash: string;
        /** Entries verified in this check (from the state's size on). */
        readonly newEntries: number;
        readonly latest: {
          readonly root: number;
          readonly targets?: number;
          readonly snapshot?: number;
        };
      }
    | undefined;
  readonly expiries: {
    readonly role: string;
    readonly version: number;
    readonly expires: string;
  }[];
  readonly mirrors: MirrorReport[];
  readonly alerts: Alert[];
  /** Alerts not raised by the previous check (what the webhook is sent). */
  readonly newAlerts: Alert[];
  readonly exitCode: number;
}

/** What the monitor keeps between checks (--state, or memory with --interval). */
export interface MonitorState {
  /** The last checkpoint verified consistent, as its signed note text. */
  readonly checkpoint?: string | undefined;
  /** Entries below this index were verified without a critical anomaly. */
  readonly verifiedSize?: number | undefined;
  /** alertKey of every alert the last check raised. */
  readonly alerts?: readonly string[] | undefined;
}

export interface MonitorDeps {
  readonly fetch?: typeof fetch | undefined;
  readonly now?: (() => Date) | undefined;
}

/** One check of the log and every mirror. Never throws for what it finds: that is an alert. */
export async function checkOnce(
  settings: MonitorSettings,
  trustedRoot: Uint8Array,
  state: MonitorState,
  deps: MonitorDeps = {},
): Promise<{ report: MonitorReport; state: MonitorState }> {
  const now = deps.now ?? (() => new Date());
  const checkedAt = now();
  const alerts: Alert[] = [];
  const alert = (a: Omit<Alert, 'severity'> & { severity?: Severity }) =>
    alerts.push({ ...a, severity: a.severity ?? 'critical' });

  // 1. The log, through the first mirror that serves all of it: one whose log is broken is
  // reported, and the next one read, so that its tampering does not hide the other mirrors'.
  const traces: { mirror: string; trace: LogTrace }[] = [];
  const unreachable = new Set<string>();
  for (const mirror of settings.mirrors) {
    try {
      const trace = await traceLog({
        mirror,
        trustedRoot,
        fetch: deps.fetch,
        now: () => checkedAt,
        from: state.verifiedSize,
        minApprovals: settings.minApprovals,
        timeoutMs: settings.timeoutMs,
      });
      traces.push({ mirror, trace });
      if (trace.complete) break;
    } catch (error) {
      if (!isVerifyError(error, 'FETCH_FAILED')) throw error;
      unreachable.add(mirror);
      alert({
        code: 'MIRROR_UNREACHABLE',
        severity: 'warning',
        mirror,
        message: error.message,
      });
    }
  }
  const chosen = traces.find((t) => t.trace.complete) ?? traces[0];
  if (chosen === undefined) {
    alert({ code: 'NO_MIRROR', message: 'no mirror could be read: the log was not checked' });
    return finish(checkedAt, state, undefined, undefined, [], [], alerts);
  }
  const { trace, mirror: primary } = chosen;
  for (const t of traces) {
    for (const a of t.trace.history.anomalies) alert({ ...a, mirror: t.mirror });
  }
  const opened = trace.checkpoint;

  // 2. The log extends what this monitor trusted before (a fork is a split view).
  const consistent =
    opened !== undefined && (await checkAgainstState(trace, opened, state, primary, alert));
  const nextCheckpoint = consistent ? trace.history.checkpoint?.note : state.checkpoint;

  // 3. Every mirror: its checkpoint agrees with the primary's, its timestamp is in the log.
  const mirrors: MirrorReport[] = [];
  for (const mirror of settings.mirrors) {
    if (unreachable.has(mirror)) {
      mirrors.push({ url: mirror, reachable: false });
      continue;
    }
    mirrors.push(
      await checkMirror(settings, deps, trace, mirror, mirror === primary, checkedAt, alert),
    );
  }
  const bad = new Set(
    alerts.flatMap((a) => (a.severity === 'critical' && a.mirror !== undefined ? [a.mirror] : [])),
  );
  checkStaleness(settings, trace, mirrors, bad, checkedAt, alert);

  // 4. Expiry ahead of root and targets, the metadata people sign.
  const expiries = await checkExpiry(settings, deps, trace, primary, checkedAt, alert);

  // Entries with a critical anomaly are checked again next time: the alert stays up until
  // someone fixes what it names.
  const historyCritical = trace.history.anomalies.some((a) => a.severity === 'critical');
  const next: MonitorState = {
    checkpoint: nextCheckpoint,
    verifiedSize:
      consistent && opened !== undefined && !historyCritical
        ? opened.checkpoint.size
        : state.verifiedSize,
  };
  return finish(checkedAt, { ...state, ...next }, primary, trace, expiries, mirrors, alerts);
}

function finish(
  checkedAt: Date,
  state: MonitorState,
  primary: string | undefined,
  trace: LogTrace | undefined,
  expiries: MonitorReport['expiries'],
  mirrors: MirrorReport[],
  alerts: Alert[],
): { report: MonitorReport; state: MonitorState } {
  const previous = new Set(state.alerts ?? []);
  const newAlerts = alerts.filter((a) => !previous.has(alertKey(a)));
  const cp = trace?.history.checkpoint;
  const report: MonitorReport = {
    checkedAt: checkedAt.toISOString(),
    primary,
    log:
      trace === undefined || cp === undefined
        ? undefined
        : {
            origin: cp.origin,
            size: cp.size,
            rootHash: cp.rootHash,
            newEntries: trace.history.entries.length,
            latest: trace.history.latest,
          },
    expiries,
    mirrors,
    alerts,
    newAlerts,
    exitCode: exitCodeFor(alerts),
  };
  return { report, state: { ...state, alerts: alerts.map(alertKey) } };
}

type Raise = (a: Omit<Alert, 'severity'> & { severity?: Severity }) => void;

/** Whether the primary's checkpoint extends the one kept in the state (true when none is kept). */
async function checkAgainstState(
  trace: LogTrace,
  opened: OpenedCheckpoint,
  state: MonitorState,
  primary: string,
  alert: Raise,
): Promise<boolean> {
  if (state.checkpoint === undefined) return true;
  let kept: Checkpoint;
  try {
    kept = (await trace.reader.open(state.checkpoint)).checkpoint;
  } catch (error) {
    if (!isTlogError(error)) throw error;
    // Not signed by the key the newest root names for the log: a rotation moved the log.
    alert({
      code: 'STATE_RESET',
      severity: 'warning',
      mirror: primary,
      message: `the checkpoint kept in the state does not verify under the log key of root v${String(trace.root.signed.version)} (${describeError(error)}): following the log from this check on`,
    });
    return true;
  }
  try {
    await trace.reader.checkConsistent(kept, opened.checkpoint);
  } catch (error) {
    if (!isTlogError(error) && !(error instanceof MissingFile)) throw error;
    alert({
      code: isTlogError(error, 'SPLIT_VIEW') ? 'SPLIT_VIEW' : 'LOG_INVALID',
      mirror: primary,
      message: `the log at ${primary} (size ${String(opened.checkpoint.size)}) does not extend the checkpoint this monitor verified before (size ${String(kept.size)}): ${describeError(error)}`,
    });
    return false;
  }
  if (opened.checkpoint.size < kept.size) {
    alert({
      code: 'CHECKPOINT_BEHIND',
      severity: 'warning',
      mirror: primary,
      message: `${primary} serves a checkpoint of size ${String(opened.checkpoint.size)}, behind the ${String(kept.size)} verified before`,
    });
    return false;
  }
  return true;
}

async function checkMirror(
  settings: MonitorSettings,
  deps: MonitorDeps,
  trace: LogTrace,
  mirror: string,
  isPrimary: boolean,
  now: Date,
  alert: Raise,
): Promise<MirrorReport> {
  const get = mirrorFetch(mirror, deps.fetch, settings.timeoutMs);
  let report: MirrorReport = { url: mirror, reachable: true };
  // The log as this mirror serves it: the same log as the primary's, a prefix or an extension.
  let reader = trace.reader;
  let checkpoint = trace.checkpoint?.checkpoint;
  if (!isPrimary && checkpoint !== undefined) {
    const own = new LogReader(logFetch(get), trace.policy);
    try {
      const theirs = (await own.latest()).checkpoint;
      report = { ...report, checkpointSize: theirs.size };
      const larger = theirs.size > checkpoint.size ? own : trace.reader;
      await larger.checkConsistent(checkpoint, theirs);
      if (theirs.size > checkpoint.size) {
        reader = own;
        checkpoint = theirs;
      }
    } catch (error) {
      if (isVerifyError(error, 'FETCH_FAILED')) {
        alert({
          code: 'MIRROR_UNREACHABLE',
          severity: 'warning',
          mirror,
          message: error.message,
        });
        return { url: mirror, reachable: false };
      }
      if (!isTlogError(error) && !(error instanceof MissingFile)) throw error;
      alert({
        code: isTlogError(error, 'SPLIT_VIEW') ? 'SPLIT_VIEW' : 'MIRROR_CHECKPOINT_INVALID',
        mirror,
        message: isTlogError(error, 'SPLIT_VIEW')
          ? `${mirror} serves a log that forks from the one at ${trace.history.mirror}: ${error.message}`
          : `${mirror}: its log checkpoint does not verify: ${describeError(error)}`,
      });
    }
  } else if (checkpoint !== undefined) {
    report = { ...report, checkpointSize: checkpoint.size };
  }

  // Its timestamp: signed by the newest logged root's timestamp keys, fresh, and naming a
  // snapshot (and through it a targets) that the log holds with the bytes this mirror serves.
  try {
    const bytes = await get('metadata/timestamp.json', DEFAULT_LIMITS.timestampMaxLength);
    let timestamp: Metadata<Timestamp>;
    try {
      timestamp = Metadata.fromBytes(bytes, 'timestamp', `${mirror} timestamp.json`);
      await verifyDelegate(trace.root.signed, 'timestamp', timestamp);
    } catch (error) {
      if (!isVerifyError(error)) throw error;
      alert({
        code: 'TIMESTAMP_INVALID',
        mirror,
        message: `${mirror}: timestamp.json does not verify under root v${String(trace.root.signed.version)}: ${error.message}`,
      });
      return report;
    }
    const ts = timestamp.signed;
    report = {
      ...report,
      timestampVersion: ts.version,
      timestampExpires: ts.expires.toISOString(),
      snapshotVersion: ts.snapshotMeta.version,
    };
    if (ts.isExpired(now)) {
      alert({
        code: 'TIMESTAMP_EXPIRED',
        mirror,
        role: 'timestamp',
        version: ts.version,
        message: `${mirror}: timestamp v${String(ts.version)} expired at ${ts.expires.toISOString()}`,
      });
    }
    // A log that could not be read to its end is already a critical alert; what it would
    // hold is unknown, so nothing here is called unlogged.
    if (!trace.complete) return report;
    const context: MirrorContext = { trace, reader, checkpoint, get, mirror, alert };
    const snapshotBytes = await inLog(
      context,
      'snapshot',
      ts.snapshotMeta,
      `its timestamp v${String(ts.version)} names`,
    );
    if (snapshotBytes === undefined) return report;
    let snapshot: Metadata<Snapshot>;
    try {
      snapshot = Metadata.fromBytes(snapshotBytes, 'snapshot');
    } catch (error) {
      if (!isVerifyError(error)) throw error;
      return report; // the log walk reports a logged file that does not parse
    }
    const targetsVersion = snapshot.signed.meta.get('targets.json')?.version;
    if (targetsVersion !== undefined) report = { ...report, targetsVersion };
    // Top-level targets and every delegated role the snapshot names.
    for (const [name, file] of snapshot.signed.meta) {
      await inLog(
        context,
        name.replace(/\.json$/, ''),
        file,
        `its snapshot v${String(snapshot.signed.version)} names`,
      );
    }
  } catch (error) {
    if (error instanceof MissingFile) {
      alert({ code: 'TIMESTAMP_INVALID', mirror, message: error.message });
      return report;
    }
    if (!isVerifyError(error, 'FETCH_FAILED')) throw error;
    alert({
      code: 'MIRROR_UNREACHABLE',
      severity: 'warning',
      mirror,
      message: error.message,
    });
    return { ...report, reachable: false };
  }
  return report;
}

/** What checking one mirror against the log needs. */
interface MirrorContext {
  readonly trace: LogTrace;
  /** The mirror's own log, and its checkpoint (consistent with the walk's). */
  readonly reader: LogReader;
  readonly checkpoint: Checkpoint | undefined;
  readonly get: MirrorFetch;
  readonly mirror: string;
  readonly alert: Raise;
}

/**
 * The bytes `mirror` serves for the file `meta` names, when they are what `meta` pins and what
 * the log holds; else an UNLOGGED_RELEASE (or MIRROR_INCOMPLETE) alert and undefined. Looks in
 * what the walk read, then in the mirror's newer, consistent log (a mirror ahead of the primary,
 * or a release published while this check ran).
 */
async function inLog(
  { trace, reader, checkpoint, get, mirror, alert }: MirrorContext,
  role: string,
  meta: MetaFile,
  why: string,
): Promise<Uint8Array | undefined> {
  const version = meta.version;
  const max =
    role === 'snapshot' ? DEFAULT_LIMITS.snapshotMaxLength : DEFAULT_LIMITS.targetsMaxLength;
  let bytes: Uint8Array;
  try {
    bytes = await get(metadataPath(role, version), max);
  } catch (error) {
    if (!(error instanceof MissingFile)) throw error;
    alert({
      code: 'MIRROR_INCOMPLETE',
      mirror,
      role,
      version,
      message: `${mirror}: ${why} ${role} v${String(version)}, which it does not serve`,
    });
    return undefined;
  }
  // The referring metadata pins these bytes (length, hashes): a client would take nothing else.
  try {
    await verifyLengthAndHashes(webHashPort, bytes, meta, `${role} v${String(version)}`);
  } catch (error) {
    if (!isVerifyError(error)) throw error;
    alert({
      code: 'UNLOGGED_RELEASE',
      mirror,
      role,
      version,
      message: `${mirror}: ${why} ${role} v${String(version)} by other bytes than it serves (${error.message})`,
    });
    return undefined;
  }
  const sha = await sha256Hex(webHashPort, bytes);
  const logged = trace.logged.get(loggedKey(role, version));
  if (logged?.sha256 === sha) return bytes;
  if (logged === undefined && checkpoint !== undefined) {
    if (await loggedSince(trace, reader, checkpoint, role, version, bytes)) return bytes;
  }
  alert({
    code: 'UNLOGGED_RELEASE',
    mirror,
    role,
    version,
    message:
      logged === undefined
        ? `${mirror}: ${why} ${role} v${String(version)}, which is not in the log`
        : `${mirror} serves ${role} v${String(version)} with sha256 ${sha.slice(0, 12)}…, the log holds ${logged.sha256.slice(0, 12)}…`,
  });
  return undefined;
}

/**
 * Whether an entry for exactly these bytes was appended after the checkpoint the walk read:
 * in `checkpoint` (a mirror ahead of the primary), or in the mirror's checkpoint now (a release
 * published while this check ran). The newer checkpoint must extend the walk's.
 */
async function loggedSince(
  trace: LogTrace,
  reader: LogReader,
  checkpoint: Checkpoint,
  role: string,
  version: number,
  bytes: Uint8Array,
): Promise<boolean> {
  const walked = trace.checkpoint?.checkpoint;
  if (walked === undefined) return false;
  let newest = checkpoint;
  try {
    const now = (await reader.latest()).checkpoint;
    if (now.size > newest.size) {
      await reader.checkConsistent(walked, now);
      newest = now;
    }
  } catch (error) {
    // The mirror's checkpoint was checked once this run; a failure now only means no newer one.
    if (!isTlogError(error) && !(error instanceof MissingFile) && !isVerifyError(error))
      throw error;
  }
  if (newest.size <= walked.size) return false;
  try {
    const [found] = await reader.findMetadata(newest, [{ role, version, bytes }], {
      stopBelow: walked.size,
    });
    return found !== undefined;
  } catch (error) {
    if (!isTlogError(error) && !(error instanceof MissingFile)) throw error;
    return false;
  }
}

/**
 * A mirror is stale when a newer snapshot has been in the log for longer than --max-age and the
 * mirror still names an older one, or its timestamp expires --max-age before the newest's.
 */
function checkStaleness(
  settings: MonitorSettings,
  trace: LogTrace,
  mirrors: readonly MirrorReport[],
  bad: ReadonlySet<string>,
  now: Date,
  alert: Raise,
): void {
  const maxAgeMs = settings.maxAgeSeconds * 1000;
  // Only mirrors that passed count as the newest: a forged far-future timestamp must not make
  // every honest mirror look stale.
  const newestExpiry = Math.max(
    0,
    ...mirrors
      .filter((m) => !bad.has(m.url) && m.timestampExpires !== undefined)
      .map((m) => Date.parse(m.timestampExpires ?? '')),
  );
  for (const m of mirrors) {
    if (m.snapshotVersion === undefined || m.timestampExpires === undefined) continue;
    if (bad.has(m.url)) continue;
    const next = trace.logged.get(loggedKey('snapshot', m.snapshotVersion + 1));
    const behindMs = next === undefined ? 0 : now.getTime() - Date.parse(next.time);
    const lagMs = newestExpiry - Date.parse(m.timestampExpires);
    if (behindMs > maxAgeMs) {
      alert({
        code: 'STALE_MIRROR',
        mirror: m.url,
        message: `${m.url} still serves snapshot v${String(m.snapshotVersion)}; v${String(m.snapshotVersion + 1)} was logged ${formatAge(behindMs)} ago (--max-age ${String(settings.maxAgeSeconds)}s)`,
      });
    } else if (lagMs > maxAgeMs) {
      alert({
        code: 'STALE_MIRROR',
        mirror: m.url,
        message: `${m.url} serves timestamp v${String(m.timestampVersion)}, ${formatAge(lagMs)} older than the newest mirror's (--max-age ${String(settings.maxAgeSeconds)}s)`,
      });
    }
  }
}

function formatAge(ms: number): string {
  return formatTimeLeft(ms / 1000).replace(/^in /, '');
}

/** Root and targets expiring within --expiry-warning days (expired: critical). */
async function checkExpiry(
  settings: MonitorSettings,
  deps: MonitorDeps,
  trace: LogTrace,
  primary: string,
  now: Date,
  alert: Raise,
): Promise<MonitorReport['expiries']> {
  const out: { role: string; version: number; expires: Date }[] = [
    { role: 'root', version: trace.root.signed.version, expires: trace.root.signed.expires },
  ];
  const targetsVersion = trace.history.latest.targets;
  const logged =
    targetsVersion === undefined
      ? undefined
      : trace.logged.get(loggedKey('targets', targetsVersion));
  if (targetsVersion !== undefined && logged !== undefined) {
    const inWindow = trace.history.entries.find(
      (e) => e.role === 'targets' && e.version === targetsVersion,
    );
    if (inWindow?.expires !== undefined) {
      out.push({ role: 'targets', version: targetsVersion, expires: new Date(inWindow.expires) });
    } else {
      try {
        const get = mirrorFetch(primary, deps.fetch, settings.timeoutMs);
        const bytes = await get(
          metadataPath('targets', targetsVersion),
          DEFAULT_LIMITS.targetsMaxLength,
        );
        if ((await sha256Hex(webHashPort, bytes)) === logged.sha256) {
          out.push({
            role: 'targets',
            version: targetsVersion,
            expires: Metadata.fromBytes(bytes, 'targets').signed.expires,
          });
        }
      } catch (error) {
        // A missing or broken file is the log walk's to report (when its entry is read).
        if (!(error instanceof MissingFile) && !(error instanceof VerifyError)) throw error;
      }
    }
  }
  const warnMs = settings.expiryWarningDays * DAY_MS;
  for (const { role, version, expires } of out) {
    const left = expires.getTime() - now.getTime();
    if (left <= 0) {
      alert({
        code: 'EXPIRED',
        role,
        version,
        message: `${role} v${String(version)} expired at ${expires.toISOString()}`,
      });
    } else if (left <= warnMs) {
      alert({
        code: 'EXPIRY_AHEAD',
        severity: 'warning',
        role,
        version,
        message: `${role} v${String(version)} expires ${formatTimeLeft(left / 1000)} (${expires.toISOString()}): ${role === 'root' ? 'sign a new root (cairn keys)' : 'publish a release'} before then`,
      });
    }
  }
  return out.map(({ role, version, expires }) => ({
    role,
    version,
    expires: expires.toISOString(),
  }));
}

// ---------------------------------------------------------------------------------------------
// State, metrics, webhook

const STATE_FILE = 'monitor.json';
const CHECKPOINT_FILE = 'checkpoint';

/** Writes through a temporary file and a rename: a reader never sees half a file. */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${String(process.pid)}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

export async function loadState(dir: string): Promise<MonitorState> {
  let checkpoint: string | undefined;
  try {
    checkpoint = await readFile(join(dir, CHECKPOINT_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  let saved: { verifiedSize?: unknown; alerts?: unknown } = {};
  try {
    saved = JSON.parse(await readFile(join(dir, STATE_FILE), 'utf8')) as typeof saved;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw withHint(
        new VerifyError('MALFORMED', `${join(dir, STATE_FILE)}: ${describeError(error)}`),
        `remove ${join(dir, STATE_FILE)} (the checkpoint beside it is what matters) and run again`,
      );
    }
  }
  return {
    checkpoint,
    verifiedSize:
      typeof saved.verifiedSize === 'number' && Number.isSafeInteger(saved.verifiedSize)
        ? saved.verifiedSize
        : undefined,
    alerts: Array.isArray(saved.alerts)
      ? saved.alerts.filter((a): a is string => typeof a === 'string')
      : undefined,
  };
}

export async function saveState(dir: string, state: MonitorState): Promise<void> {
  if (state.checkpoint !== undefined)
    await writeFileAtomic(join(dir, CHECKPOINT_FILE), state.checkpoint);
  await writeFileAtomic(
    join(dir, STATE_FILE),
    `${JSON.stringify({ verifiedSize: state.verifiedSize, alerts: state.alerts ?? [] }, null, 2)}\n`,
  );
}

function label(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** The Prometheus text exposition of a check. */
export function renderMetrics(report: MonitorReport): string {
  const lines: string[] = [];
  const metric = (name: string, help: string, samples: readonly [string, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const [labels, value] of samples) lines.push(`${name}${labels} ${String(value)}`);
  };
  metric('cairn_monitor_last_check_timestamp_seconds', 'When the last check ran.', [
    ['', Math.floor(Date.parse(report.checkedAt) / 1000)],
  ]);
  metric('cairn_monitor_log_verified', '1 when the log was read and its checkpoint verified.', [
    ['', report.log === undefined ? 0 : 1],
  ]);
  if (report.log !== undefined) {
    metric('cairn_monitor_log_size', 'Entries in the verified checkpoint.', [
      ['', report.log.size],
    ]);
    const latest = report.log.latest;
    metric(
      'cairn_monitor_latest_version',
      'Newest logged version of each role.',
      (['root', 'targets', 'snapshot'] as const).flatMap((role): [string, number][] => {
        const v = latest[role];
        return v === undefined ? [] : [[`{role="${role}"}`, v]];
      }),
    );
  }
  metric(
    'cairn_monitor_metadata_expiry_timestamp_seconds',
    'When the newest root and targets expire.',
    report.expiries.map((e) => [
      `{role="${label(e.role)}"}`,
      Math.floor(Date.parse(e.expires) / 1000),
    ]),
  );
  metric(
    'cairn_monitor_mirror_up',
    '1 when the mirror answered.',
    report.mirrors.map((m) => [`{mirror="${label(m.url)}"}`, m.reachable ? 1 : 0]),
  );
  metric(
    'cairn_monitor_mirror_snapshot_version',
    'The snapshot version each mirror’s timestamp names.',
    report.mirrors.flatMap((m): [string, number][] =>
      m.snapshotVersion === undefined ? [] : [[`{mirror="${label(m.url)}"}`, m.snapshotVersion]],
    ),
  );
  metric(
    'cairn_monitor_mirror_checkpoint_size',
    'The log size each mirror’s checkpoint commits to.',
    report.mirrors.flatMap((m): [string, number][] =>
      m.checkpointSize === undefined ? [] : [[`{mirror="${label(m.url)}"}`, m.checkpointSize]],
    ),
  );
  metric('cairn_monitor_alerts', 'Alerts raised by the last check, by severity.', [
    ['{severity="critical"}', report.alerts.filter((a) => a.severity === 'critical').length],
    ['{severity="warning"}', report.alerts.filter((a) => a.severity === 'warning').length],
  ]);
  const byCode = new Map<string, { severity: Severity; count: number }>();
  for (const a of report.alerts) {
    const seen = byCode.get(a.code);
    byCode.set(a.code, { severity: a.severity, count: (seen?.count ?? 0) + 1 });
  }
  metric(
    'cairn_monitor_alert',
    'Alerts raised by the last check, by code.',
    [...byCode]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([code, { severity, count }]) => [`{code="${code}",severity="${severity}"}`, count]),
  );
  return `${lines.join('\n')}\n`;
}

export class WebhookError extends Error {
  override readonly name = 'WebhookError';
  readonly code = 'WEBHOOK_FAILED';
}

/** POSTs `{ source, checkedAt, alerts }` to `url`; WebhookError when it fails or times out. */
export async function postAlerts(
  url: string,
  report: MonitorReport,
  alerts: readonly Alert[],
  fetchFn: typeof fetch = fetch,
): Promise<void> {
  let response: Response;
  try {
    response = await fetchFn(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        source: 'cairn-monitor',
        checkedAt: report.checkedAt,
        primary: report.primary,
        exitCode: report.exitCode,
        alerts,
      }),
      signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
    });
  } catch (error) {
    throw new WebhookError(`POST ${url}: ${describeError(error)}`, { cause: error });
  }
  await response.body?.cancel();
  if (!response.ok) throw new WebhookError(`POST ${url}: HTTP ${String(response.status)}`);
}

// ---------------------------------------------------------------------------------------------
// Output

const MARK: Record<Severity, string> = { critical: '✘', warning: '⚠' };

export function alertLine(alert: Alert): string {
  return `${MARK[alert.severity]} ${alert.code}: ${alert.message.replace(/\s*\n\s*/g, ' ')}`;
}

export function reportLines(report: MonitorReport): string[] {
  const lines: string[] = [];
  const log = report.log;
  if (log !== undefined && report.primary !== undefined) {
    const { root, targets, snapshot } = log.latest;
    lines.push(
      `✔ log ${log.origin}: ${String(log.size)} entries, checkpoint verified through ${report.primary}; ${String(log.newEntries)} checked now (root v${String(root)}, targets ${targets === undefined ? 'none' : `v${String(targets)}`}, snapshot ${snapshot === undefined ? 'none' : `v${String(snapshot)}`})`,
    );
  }
  for (const m of report.mirrors) {
    if (!m.reachable) continue;
    if (report.alerts.some((a) => a.mirror === m.url && a.severity === 'critical')) continue;
    lines.push(
      `✔ mirror ${m.url}: timestamp ${m.timestampVersion === undefined ? '?' : `v${String(m.timestampVersion)}`} → snapshot ${m.snapshotVersion === undefined ? '?' : `v${String(m.snapshotVersion)}`}, targets ${m.targetsVersion === undefined ? '?' : `v${String(m.targetsVersion)}`}, log size ${m.checkpointSize === undefined ? '?' : String(m.checkpointSize)}`,
    );
  }
  for (const a of report.alerts) lines.push(alertLine(a));
  const critical = report.alerts.filter((a) => a.severity === 'critical').length;
  const warnings = report.alerts.length - critical;
  lines.push(
    report.alerts.length === 0
      ? '✔ no alerts'
      : `${String(critical)} critical, ${String(warnings)} warning${warnings === 1 ? '' : 's'}`,
  );
  return lines;
}

// ---------------------------------------------------------------------------------------------
// The command

export interface RunMonitorDeps extends MonitorDeps {
  /** Stops an --interval run (default: SIGINT and SIGTERM). */
  readonly signal?: AbortSignal | undefined;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((done) => {
    if (signal.aborted) return done();
    const timer = setTimeout(finish, ms);
    function finish() {
      clearTimeout(timer);
      signal.removeEventListener('abort', finish);
      done();
    }
    signal.addEventListener('abort', finish, { once: true });
  });
}

export async function runMonitor(
  args: readonly string[],
  io: CliIo,
  deps: RunMonitorDeps = {},
): Promise<number> {
  const settings = parseMonitorArgs(args);
  if (settings === undefined) return printUsage(io, USAGE);
  let trustedRoot: Uint8Array;
  try {
    trustedRoot = await readFile(resolve(settings.rootFile));
  } catch (error) {
    throw withHint(error, '--root names the root.json this monitor pins: the first one you trust');
  }
  let state: MonitorState =
    settings.stateDir === undefined ? {} : await loadState(settings.stateDir);

  const own = new AbortController();
  const stop = () => own.abort();
  const listens = deps.signal === undefined && settings.intervalSeconds !== undefined;
  const signal = deps.signal ?? own.signal;
  if (listens) {
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  }
  let exitCode = EXIT_OK;
  try {
    for (;;) {
      const checked = await checkOnce(settings, trustedRoot, state, deps);
      const delivered = await deliver(settings, checked.report, io, deps);
      exitCode = delivered.exitCode;
      // Alerts the webhook did not take are news again next time.
      state = delivered.posted ? checked.state : { ...checked.state, alerts: state.alerts };
      if (settings.stateDir !== undefined) await saveState(settings.stateDir, state);
      if (settings.intervalSeconds === undefined) break;
      await sleep(settings.intervalSeconds * 1000, signal);
      if (signal.aborted) break;
    }
  } finally {
    if (listens) {
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
    }
  }
  return exitCode;
}

/** Prints a check, writes its metrics and posts its new alerts; returns its exit status. */
async function deliver(
  settings: MonitorSettings,
  report: MonitorReport,
  io: CliIo,
  deps: MonitorDeps,
): Promise<{ exitCode: number; posted: boolean }> {
  if (settings.json) printJson(io, report);
  else for (const line of reportLines(report)) io.stdout(line);
  if (settings.metricsFile !== undefined) {
    await writeFileAtomic(resolve(settings.metricsFile), renderMetrics(report));
  }
  if (settings.webhook !== undefined && report.newAlerts.length > 0) {
    try {
      await postAlerts(settings.webhook, report, report.newAlerts, deps.fetch);
    } catch (error) {
      if (!(error instanceof WebhookError)) throw error;
      io.stderr(`✘ ${error.code}: ${error.message}`);
      io.stderr(
        '  hint: check --webhook and that the receiver is up; the alerts are in the output above',
      );
      return { exitCode: EXIT_CRITICAL, posted: false };
    }
  }
  return { exitCode: report.exitCode, posted: true };
}
