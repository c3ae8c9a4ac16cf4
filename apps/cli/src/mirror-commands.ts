/**
 * `cairn mirror serve` runs the edge on Node over a directory or an S3 bucket (a self-hosted
 * or LAN mirror); `cairn mirror sync` fills such storage from an upstream repository, verified.
 *
 * Flags are the edge's CAIRN_* variables under other names (apps/edge/src/config.ts): the
 * environment is read first and a flag replaces its variable, so the one parser in the edge
 * checks every value, and its messages are rewritten to name the flag the user typed.
 */
import { readFile, stat } from 'node:fs/promises';
import { nodeHashPort } from '@cairn/client/node-hash';
import type { EdgeLog } from '@cairn/edge/app';
import { parseEdgeConfig, VARIABLES, type EdgeConfig } from '@cairn/edge/config';
import { EdgeError, isEdgeError } from '@cairn/edge/errors';
import { startEdge, type RunningEdge } from '@cairn/edge/node';
import {
  describeStoreOptions,
  storeFromOptions,
  type NodeStoreOptions,
} from '@cairn/edge/node-store';
import { syncMirror, type SyncProgress, type SyncReport } from '@cairn/edge/sync';
import { failureHint, failureLine, withHint, type CliIo } from './cli-io.js';
import {
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
  untilSignal,
} from './command-support.js';
import { progressBar, redrawLine, REDRAW_MS } from './progress.js';

const EXIT_USAGE = 2;
const EXIT_FAILED = 1;

// ---------------------------------------------------------------------------------------------
// Storage: the origin's variables, with the same meanings (apps/origin/src/config.ts)

const STORAGE_ENV = {
  dir: 'CAIRN_STORAGE_DIR',
  bucket: 'CAIRN_S3_BUCKET',
  endpoint: 'CAIRN_S3_ENDPOINT',
  region: 'CAIRN_S3_REGION',
} as const;

const STORAGE_OPTIONS = {
  dir: { type: 'string' },
  's3-bucket': { type: 'string' },
  's3-endpoint': { type: 'string' },
  's3-region': { type: 'string' },
} as const;

const STORAGE_HELP = [
  'Storage, one of:',
  `  --dir DIR                    a directory holding metadata/ and targets/ ($${STORAGE_ENV.dir})`,
  `  --s3-bucket BUCKET           an S3 bucket ($${STORAGE_ENV.bucket}); credentials from`,
  '                               $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY (and',
  "                               $AWS_SESSION_TOKEN), else the AWS SDK's own chain",
  `  --s3-endpoint URL            the S3 service's URL; omit for AWS S3 ($${STORAGE_ENV.endpoint})`,
  `  --s3-region REGION           default us-east-1; R2 takes auto ($${STORAGE_ENV.region})`,
];

interface StorageValues {
  readonly dir?: string | undefined;
  readonly 's3-bucket'?: string | undefined;
  readonly 's3-endpoint'?: string | undefined;
  readonly 's3-region'?: string | undefined;
}

function storageFrom(usage: Usage, values: StorageValues, env: Environment): NodeStoreOptions {
  const given = (value: string | undefined) => (value === '' ? undefined : value);
  const flagDir = given(values.dir);
  const flagBucket = given(values['s3-bucket']);
  if (flagDir !== undefined && flagBucket !== undefined) {
    throw usageError(usage, '--dir and --s3-bucket are both given: choose one storage');
  }
  let dir = flagDir;
  let bucket = flagBucket;
  if (dir === undefined && bucket === undefined) {
    dir = flagOrEnv(undefined, env, STORAGE_ENV.dir);
    bucket = flagOrEnv(undefined, env, STORAGE_ENV.bucket);
    if (dir !== undefined && bucket !== undefined) {
      throw usageError(
        usage,
        `${STORAGE_ENV.dir} and ${STORAGE_ENV.bucket} are both set: choose one storage`,
      );
    }
  }
  if (dir !== undefined) {
    // An S3 setting beside a directory is a half-done switch to S3, not something to ignore.
    for (const [flag, variable] of [
      ['s3-endpoint', STORAGE_ENV.endpoint],
      ['s3-region', STORAGE_ENV.region],
    ] as const) {
      if (given(values[flag]) !== undefined) {
        throw usageError(usage, `--${flag} is given, but storage is the directory ${dir}`);
      }
      if (flagDir === undefined && flagOrEnv(undefined, env, variable) !== undefined) {
        throw usageError(usage, `${variable} is set, but storage is the directory ${dir}`);
      }
    }
    return { dir };
  }
  if (bucket === undefined) {
    throw usageError(
      usage,
      `missing storage: --dir DIR or --s3-bucket BUCKET (or set ${STORAGE_ENV.dir} or ${STORAGE_ENV.bucket})`,
    );
  }
  const endpoint = flagOrEnv(values['s3-endpoint'], env, STORAGE_ENV.endpoint);
  if (endpoint !== undefined && !/^https?:\/\/[^/]/.test(endpoint)) {
    throw usageError(usage, `--s3-endpoint: expected an http(s) URL, received "${endpoint}"`);
  }
  const region = flagOrEnv(values['s3-region'], env, STORAGE_ENV.region);
  // AWS_* may be set for other tools, so they count only as a pair, as the origin reads them.
  const accessKeyId = flagOrEnv(undefined, env, 'AWS_ACCESS_KEY_ID');
  const secretAccessKey = flagOrEnv(undefined, env, 'AWS_SECRET_ACCESS_KEY');
  const sessionToken = flagOrEnv(undefined, env, 'AWS_SESSION_TOKEN');
  return {
    s3: {
      bucket,
      endpoint,
      region,
      credentials:
        accessKeyId === undefined || secretAccessKey === undefined
          ? undefined
          : { accessKeyId, secretAccessKey, sessionToken },
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Flags onto the edge's variables

/** The flags that stand for one of the edge's variables. */
const FLAG_VARIABLES = [
  ['name', VARIABLES.mirrorName],
  ['mode', VARIABLES.mode],
  ['upstream', VARIABLES.upstreamUrl],
  ['trusted-root', VARIABLES.trustedRoot],
  ['timestamp-max-age', VARIABLES.timestampMaxAge],
  ['rate-limit', VARIABLES.rateLimitPerMinute],
  ['rate-limit-burst', VARIABLES.rateLimitBurst],
] as const;

type EdgeFlag = (typeof FLAG_VARIABLES)[number][0];
type EdgeFlagValues = Partial<Record<EdgeFlag, string | undefined>>;

function configHint(usage: Usage): string {
  return `fix the flag or variable named at the start; ${usage.command} --help lists them`;
}

/** The trusted root file's text; a file that cannot be read is a configuration error. */
async function readTrustedRoot(usage: Usage, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw withHint(
      new EdgeError(
        'CONFIG_INVALID',
        `--trusted-root ${path}: ${code === 'ENOENT' ? 'no such file' : `cannot be read (${code ?? String(error)})`}`,
        { cause: error },
      ),
      configHint(usage),
    );
  }
}

/**
 * The edge's configuration from the environment with the flags over it. A CONFIG_INVALID names
 * the flag when one was given, the variable when the value came from the environment, and both
 * when neither was set.
 */
async function edgeConfigFrom(
  usage: Usage,
  values: EdgeFlagValues,
  env: Environment,
  fixed: Readonly<Record<string, string>> = {},
): Promise<EdgeConfig> {
  const vars: Record<string, string | undefined> = { ...env };
  const rootFile = values['trusted-root'];
  for (const [flag, variable] of FLAG_VARIABLES) {
    const value = values[flag];
    if (value === undefined) continue;
    vars[variable] = flag === 'trusted-root' ? await readTrustedRoot(usage, value) : value;
  }
  Object.assign(vars, fixed);
  try {
    return parseEdgeConfig(vars);
  } catch (error) {
    if (!isEdgeError(error, 'CONFIG_INVALID')) throw error;
    let message = error.message;
    for (const [flag, variable] of FLAG_VARIABLES) {
      const name =
        values[flag] !== undefined
          ? flag === 'trusted-root'
            ? `--trusted-root ${rootFile ?? ''}`
            : `--${flag}`
          : flagOrEnv(undefined, env, variable) !== undefined
            ? variable
            : `--${flag} (or ${variable})`;
      message = message.replace(new RegExp(`\\b${variable}\\b`, 'g'), name);
    }
    throw withHint(new EdgeError('CONFIG_INVALID', message, { cause: error }), configHint(usage));
  }
}

// ---------------------------------------------------------------------------------------------
// What the sync job's failures mean to the person running it

function syncHint(code: string): string | undefined {
  switch (code) {
    case 'UPSTREAM_UNAVAILABLE':
      return 'check --upstream and that it serves metadata/timestamp.json; the mirror still serves what it had';
    case 'UPSTREAM_INVALID':
      return 'the upstream served bytes its signed metadata does not list; the mirror still serves what it had';
    case 'VERIFICATION_FAILED':
      return "the upstream's metadata does not verify from the trusted root: check that --trusted-root is this repository's root";
    case 'STORAGE_UNAVAILABLE':
      return "the mirror's storage failed: check --dir or the S3 settings, then run the sync again";
    default:
      return undefined;
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}

/** The failure line and hint of an EdgeError, which cli-io's table of coded errors does not know. */
function printEdgeFailure(io: CliIo, error: EdgeError): void {
  io.stderr(`✘ ${error.code}: ${oneLine(error.message)}`);
  const hint = failureHint(withHint(error, syncHint(error.code)));
  if (hint !== undefined) io.stderr(hint);
}

function jsonLog(io: CliIo, now: () => Date): EdgeLog {
  return (entry) => io.stderr(JSON.stringify({ time: now().toISOString(), ...entry }));
}

// ---------------------------------------------------------------------------------------------
// cairn mirror

const MIRROR: Usage = {
  command: 'cairn mirror',
  synopsis: 'cairn mirror serve|sync [options]',
  details: [
    'A mirror of a repository on this machine: the edge on Node.',
    '',
    '  serve   serve a repository from a directory or an S3 bucket until SIGTERM or SIGINT',
    '  sync    copy new releases from an upstream repository into a directory or bucket, verified',
    '',
    '`cairn mirror serve --help` and `cairn mirror sync --help` give their options.',
  ],
};

export async function runMirror(
  args: readonly string[],
  io: CliIo,
  deps: CommandDeps = processDeps(),
): Promise<number> {
  const [subcommand, ...rest] = args;
  try {
    switch (subcommand) {
      case 'serve':
        return await runMirrorServe(rest, io, deps);
      case 'sync':
        return await runMirrorSync(rest, io, deps);
      case '--help':
      case '-h':
        return printUsage(io, MIRROR);
      case undefined:
        throw usageError(MIRROR, 'missing subcommand: serve or sync');
      default:
        throw usageError(MIRROR, `unknown subcommand ${JSON.stringify(subcommand)}: serve or sync`);
    }
  } catch (error) {
    if (!isEdgeError(error)) throw error;
    printEdgeFailure(io, error);
    return error.code === 'CONFIG_INVALID' ? EXIT_USAGE : EXIT_FAILED;
  }
}

// ---------------------------------------------------------------------------------------------
// cairn mirror serve

const SERVE: Usage = {
  command: 'cairn mirror serve',
  synopsis:
    'cairn mirror serve (--dir DIR | --s3-bucket BUCKET [--s3-endpoint URL] [--s3-region REGION]) [--listen HOST:PORT] [--name NAME] [--mode direct|pull-through|sync] [--upstream URL] [--trusted-root FILE] [--interval SECONDS] [--timestamp-max-age SECONDS] [--rate-limit PER_MINUTE] [--rate-limit-burst N]',
  details: [
    'Serves the repository in a directory or an S3 bucket over HTTP, as the edge Worker does,',
    'until SIGTERM or SIGINT, then stops cleanly (exit 0). Prints one line with the URL and',
    'what it serves from; logs are JSON lines on standard error.',
    '',
    ...STORAGE_HELP,
    '',
    'Options (a flag wins over the variable named):',
    '  --listen HOST:PORT           default 127.0.0.1:8787; port 0 takes any free port',
    `  --name NAME                  sent in X-Cairn-Mirror and /health ($${VARIABLES.mirrorName}, default cairn-edge)`,
    `  --mode MODE                  direct (default), pull-through or sync ($${VARIABLES.mode})`,
    `  --upstream URL               what pull-through and sync copy from ($${VARIABLES.upstreamUrl})`,
    '  --trusted-root FILE          the root.json metadata is verified from; required by pull-through',
    `                               and sync ($${VARIABLES.trustedRoot} holds the JSON itself)`,
    '  --interval SECONDS           sync mode: run the sync job now, then SECONDS after each run',
    `  --timestamp-max-age SECONDS  max-age of timestamp.json ($${VARIABLES.timestampMaxAge}, default 60)`,
    `  --rate-limit PER_MINUTE      full-file downloads per minute per address; 0, the default, is`,
    `                               no limit ($${VARIABLES.rateLimitPerMinute})`,
    `  --rate-limit-burst N         downloads at once before the limit applies ($${VARIABLES.rateLimitBurst}, default 10)`,
    '',
    `The edge's other variables (${VARIABLES.notFoundMaxAge}, ${VARIABLES.storageTimeoutMs},`,
    `${VARIABLES.retryAfterSeconds}, ${VARIABLES.corsOrigin}, ${VARIABLES.maxTargetBytes}) come from the`,
    'environment; apps/edge/README.md describes them all.',
  ],
};

const SERVE_OPTIONS = {
  ...STORAGE_OPTIONS,
  listen: { type: 'string' },
  name: { type: 'string' },
  mode: { type: 'string' },
  upstream: { type: 'string' },
  'trusted-root': { type: 'string' },
  interval: { type: 'string' },
  'timestamp-max-age': { type: 'string' },
  'rate-limit': { type: 'string' },
  'rate-limit-burst': { type: 'string' },
} as const;

const DEFAULT_LISTEN = { host: '127.0.0.1', port: 8787 };

function parseListen(usage: Usage, text: string | undefined): { host: string; port: number } {
  if (text === undefined) return DEFAULT_LISTEN;
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  const host = match?.[1] ?? match?.[2];
  if (host === undefined || !(port <= 65535)) {
    throw usageError(
      usage,
      `--listen: expected HOST:PORT (127.0.0.1:8787, [::1]:8787), received "${text}"`,
    );
  }
  return { host, port };
}

function describeMode(config: EdgeConfig, interval: number | undefined): string {
  switch (config.mode) {
    case 'direct':
      return config.trustedRoot === undefined
        ? 'direct'
        : 'direct, metadata verified from the trusted root';
    case 'pull-through':
      return `pull-through from ${config.upstreamUrl ?? ''}`;
    case 'sync':
      return `sync from ${config.upstreamUrl ?? ''}${interval === undefined ? '' : ` every ${interval}s`}`;
  }
}

async function requireDirectory(dir: string): Promise<void> {
  const found = await stat(dir).catch(() => undefined);
  if (found?.isDirectory() !== true) {
    throw withHint(
      new EdgeError('CONFIG_INVALID', `--dir ${dir}: no such directory`),
      'a direct mirror serves an existing repository: give the directory holding metadata/ and targets/',
    );
  }
}

async function listening(
  start: () => Promise<RunningEdge>,
  listen: { host: string; port: number },
): Promise<RunningEdge> {
  try {
    return await start();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const where = `${listen.host}:${listen.port}`;
    throw withHint(
      error,
      code === 'EADDRINUSE'
        ? `something else listens on ${where}: choose another --listen`
        : code === 'EACCES'
          ? `this user may not listen on ${where}: choose a port above 1023`
          : undefined,
    );
  }
}

export async function runMirrorServe(
  args: readonly string[],
  io: CliIo,
  deps: CommandDeps = processDeps(),
): Promise<number> {
  const { values } = parseCommand(SERVE, args, SERVE_OPTIONS, 0);
  if (values.help === true) return printUsage(io, SERVE);
  const storage = storageFrom(SERVE, values, deps.env);
  const listen = parseListen(SERVE, values.listen);
  const interval = integerFlag(SERVE, values.interval, '--interval', 1);
  const config = await edgeConfigFrom(SERVE, values, deps.env);
  if (interval !== undefined && config.mode !== 'sync') {
    throw usageError(SERVE, `--interval runs the sync job, but the mode is ${config.mode}`);
  }
  if ('dir' in storage && config.mode === 'direct') await requireDirectory(storage.dir);

  const store = await storeFromOptions(storage);
  const log = jsonLog(io, deps.now);
  const running = await listening(
    () => startEdge({ config, store, host: listen.host, port: listen.port, log }),
    listen,
  );
  io.stdout(
    `✔ mirror ${config.mirrorName} serving ${running.url} from ${describeStoreOptions(storage)} (${describeMode(config, interval)})`,
  );

  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let round: Promise<void> | undefined;
  const { upstreamUrl, trustedRoot } = config;
  if (interval !== undefined && upstreamUrl !== undefined && trustedRoot !== undefined) {
    const runRound = async (): Promise<void> => {
      try {
        const report = await syncMirror({ store, upstreamUrl, trustedRoot, hash: nodeHashPort });
        log({ level: 'info', event: 'sync', ...report });
      } catch (error) {
        // The mirror goes on serving what it has; the next round tries again.
        log({
          level: 'warn',
          event: 'sync-failed',
          code: isEdgeError(error) ? error.code : 'INTERNAL',
          message: error instanceof Error ? error.message : String(error),
        });
      }
      if (stopping) return;
      timer = setTimeout(() => {
        round = runRound();
      }, interval * 1000);
    };
    round = runRound();
  }

  await untilSignal();
  stopping = true;
  clearTimeout(timer);
  await running.close();
  // A round stopped halfway would be safe (timestamp.json is written last), but its open
  // requests would keep the process alive anyway: let it finish.
  await round;
  return 0;
}

// ---------------------------------------------------------------------------------------------
// cairn mirror sync

const SYNC: Usage = {
  command: 'cairn mirror sync',
  synopsis:
    'cairn mirror sync --upstream URL --trusted-root FILE (--dir DIR | --s3-bucket BUCKET [--s3-endpoint URL] [--s3-region REGION]) [--watch --interval SECONDS] [--json]',
  details: [
    "Copies the upstream repository's newest release into this mirror's storage, verifying",
    'every file from the trusted root, in publication order: timestamp.json last, so the mirror',
    'serves the old release or the new one, never a mixture. On a terminal, progress on standard',
    'error; then one line: the timestamp version before and after, and what was copied.',
    '',
    `  --upstream URL               the repository to copy from ($${VARIABLES.upstreamUrl})`,
    `  --trusted-root FILE          the root.json to verify from ($${VARIABLES.trustedRoot} holds the JSON itself)`,
    ...STORAGE_HELP.slice(1),
    '  --watch                      run again SECONDS after each run, until SIGTERM or SIGINT (exit 0);',
    '                               a failed run is reported and the next one tries again',
    '  --interval SECONDS           with --watch',
    '  --json                       print the report as one JSON document (with --watch, one line a run)',
  ],
};

const SYNC_OPTIONS = {
  ...STORAGE_OPTIONS,
  upstream: { type: 'string' },
  'trusted-root': { type: 'string' },
  watch: { type: 'boolean' },
  interval: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** `copying  [######------------------]  12/48 objects  13.7 MiB`, redrawn in place. */
export function renderSyncProgress(done: number, total: number, bytes: number): string {
  const fraction = total === 0 ? 1 : Math.min(1, done / total);
  return `copying  ${progressBar(fraction)}  ${done}/${total} objects  ${formatBytes(bytes)}`;
}

/** Progress on a terminal only: in a pipe or a log file a redrawn line is noise. */
export class SyncProgressLine {
  readonly #terminal: Terminal;
  readonly #now: () => number;
  #bytes = 0;
  #drawnAt = -Infinity;
  #drawn = false;

  constructor(terminal: Terminal, now: () => number = () => performance.now()) {
    this.#terminal = terminal;
    this.#now = now;
  }

  /** The callback syncMirror reports to. */
  readonly update = (event: SyncProgress): void => {
    if (!this.#terminal.isTTY || event.kind !== 'copied') return;
    this.#bytes += event.bytes;
    const now = this.#now();
    if (event.done < event.total && now - this.#drawnAt < REDRAW_MS) return;
    redrawLine(this.#terminal, renderSyncProgress(event.done, event.total, this.#bytes));
    this.#drawnAt = now;
    this.#drawn = true;
  };

  /** Ends the line, if one was drawn, so the summary starts on its own. */
  finish(): void {
    if (this.#drawn) this.#terminal.write('\n');
    this.#bytes = 0;
    this.#drawn = false;
    this.#drawnAt = -Infinity;
  }
}

export function syncSummary(report: SyncReport): string {
  if (report.upToDate) return `✔ up to date: timestamp version ${report.timestampVersion}`;
  const objects = `${report.objectsCopied} object${report.objectsCopied === 1 ? '' : 's'}`;
  return `✔ timestamp version ${report.previousVersion ?? 'none'} → ${report.timestampVersion}: copied ${objects}, ${formatBytes(report.bytesCopied)}`;
}

export async function runMirrorSync(
  args: readonly string[],
  io: CliIo,
  deps: CommandDeps = processDeps(),
): Promise<number> {
  const { values } = parseCommand(SYNC, args, SYNC_OPTIONS, 0);
  if (values.help === true) return printUsage(io, SYNC);
  if (flagOrEnv(values.upstream, deps.env, VARIABLES.upstreamUrl) === undefined) {
    throw usageError(SYNC, `missing --upstream URL (or set ${VARIABLES.upstreamUrl})`);
  }
  if (
    values['trusted-root'] === undefined &&
    flagOrEnv(undefined, deps.env, VARIABLES.trustedRoot) === undefined
  ) {
    throw usageError(
      SYNC,
      `missing --trusted-root FILE (or set ${VARIABLES.trustedRoot} to the root's JSON)`,
    );
  }
  const storage = storageFrom(SYNC, values, deps.env);
  const interval = integerFlag(SYNC, values.interval, '--interval', 1);
  const watch = values.watch === true;
  if (watch && interval === undefined) throw usageError(SYNC, '--watch needs --interval SECONDS');
  if (!watch && interval !== undefined) throw usageError(SYNC, '--interval needs --watch');
  // Only the variables sync uses: a wrong CAIRN_RATE_LIMIT_BURST is no reason to refuse a sync.
  const config = await edgeConfigFrom(
    SYNC,
    { upstream: values.upstream, 'trusted-root': values['trusted-root'] },
    {
      [VARIABLES.upstreamUrl]: deps.env[VARIABLES.upstreamUrl],
      [VARIABLES.trustedRoot]: deps.env[VARIABLES.trustedRoot],
    },
    { [VARIABLES.mode]: 'sync' },
  );
  const { upstreamUrl, trustedRoot } = config;
  if (upstreamUrl === undefined || trustedRoot === undefined) {
    throw new Error('a sync configuration without upstream or trusted root');
  }
  const store = await storeFromOptions(storage);
  const progress = new SyncProgressLine(deps.terminal);
  const once = async (): Promise<SyncReport> => {
    try {
      return await syncMirror({
        store,
        upstreamUrl,
        trustedRoot,
        hash: nodeHashPort,
        onProgress: progress.update,
      });
    } finally {
      progress.finish();
    }
  };

  if (!watch) {
    const report = await once();
    if (values.json === true) printJson(io, report);
    else io.stdout(syncSummary(report));
    return 0;
  }

  let signalled = false;
  let wake: (() => void) | undefined;
  void untilSignal().then(() => {
    signalled = true;
    wake?.();
  });
  while (!signalled) {
    try {
      const report = await once();
      io.stdout(
        values.json === true
          ? JSON.stringify(report)
          : `${deps.now().toISOString()} ${syncSummary(report)}`,
      );
    } catch (error) {
      // A watch outlives an upstream outage: report the run, and try again at the next one.
      if (isEdgeError(error)) printEdgeFailure(io, error);
      else {
        io.stderr(failureLine(error));
        const hint = failureHint(error);
        if (hint !== undefined) io.stderr(hint);
      }
    }
    if (signalled) break;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, (interval ?? 1) * 1000);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
  return 0;
}
