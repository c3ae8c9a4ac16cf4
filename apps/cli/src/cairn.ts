/**
 * The `cairn` command: a table of subcommands and a dispatcher. Adding a command is one
 * entry in COMMANDS. Exit status: 0 success, 1 the command failed, 2 bad usage; `update` and
 * `rollback` also exit 3 when another updater holds the lock; `monitor` exits 1 on a critical
 * alert and 4 on warnings only.
 *
 * The origin and mirror commands load their modules when they run: the origin's and the edge's
 * code (and the S3 SDK behind their storage) would otherwise slow down every `cairn` invocation.
 */
import { readFileSync } from 'node:fs';
import { failureHint, failureLine, UsageError, type CliIo } from './cli-io.js';
import { runDemo } from './demo.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export interface CairnCommand {
  /** One line for `cairn --help`. */
  readonly summary: string;
  /** Runs with the arguments after the command name; returns the exit status. Throwing a
   * UsageError exits 2, any other error exits 1, each with one `✘ CODE: message` line. */
  run(args: readonly string[], io: CliIo): Promise<number>;
}

/** The package version, read from the package.json beside src/ and dist/. */
export function cairnVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const lines = Object.entries(COMMANDS).map(
    ([name, command]) => `  ${name.padEnd(width)}  ${command.summary}`,
  );
  return [
    'Usage: cairn <command> [options]',
    '',
    'Signed update delivery: TUF-compatible repositories through object storage and mirrors.',
    '',
    'Commands:',
    ...lines,
    '',
    'Options:',
    '  -h, --help     show this help',
    '  -v, --version  show the version',
  ].join('\n');
}

const publisher = () => import('./publisher-commands.js');
const keys = () => import('./key-commands.js');
const init = () => import('./init-command.js');
const service = () => import('./service-commands.js');
const mirror = () => import('./mirror-commands.js');
const update = () => import('./update-commands.js');

export const COMMANDS: Readonly<Record<string, CairnCommand>> = {
  demo: {
    summary:
      'the whole network on this machine: origin, mirrors, co-signed releases, updates, the log, its monitor and an audit',
    run: runDemo,
  },
  init: {
    summary: 'create the repository: root and online keys, root version 1',
    run: async (args, io) => (await init()).runInit(args, io),
  },
  keys: {
    summary: 'generate key files, list keys, add or revoke publishers, rotate keys',
    run: async (args, io) => (await keys()).runKeys(args, io),
  },
  push: {
    summary: 'push a directory to the origin as a new release',
    run: async (args, io) => (await publisher()).runPush(args, io),
  },
  release: {
    summary: 'show a release: files changed, sizes, deltas, state, signatures',
    run: async (args, io) => (await publisher()).runRelease(args, io),
  },
  sign: {
    summary: 'check a release against your copy and sign it',
    run: async (args, io) => (await publisher()).runSign(args, io),
  },
  withdraw: {
    summary: 'draft a release that goes back to the files of an earlier version',
    run: async (args, io) => (await publisher()).runWithdraw(args, io),
  },
  status: {
    summary: "show the origin's versions, expiries, draft and pending root",
    run: async (args, io) => (await publisher()).runStatus(args, io),
  },
  serve: {
    summary: 'run the origin until SIGTERM or SIGINT',
    run: async (args, io) => (await service()).runServe(args, io),
  },
  gc: {
    summary: 'remove files no retained release needs',
    run: async (args, io) => (await service()).runGc(args, io),
  },
  mirror: {
    summary: 'serve a repository from a directory or bucket, or sync one from upstream',
    run: async (args, io) => (await mirror()).runMirror(args, io),
  },
  update: {
    summary: 'install the newest signed release into a directory, from the fastest mirror',
    run: async (args, io) => (await update()).runUpdate(args, io),
  },
  rollback: {
    summary: 'put back the files the last update replaced',
    run: async (args, io) => (await update()).runRollback(args, io),
  },
  monitor: {
    summary: 'follow the transparency log and every mirror; alert on forks, unlogged releases',
    run: async (args, io) => (await import('./monitor-command.js')).runMonitor(args, io),
  },
  audit: {
    summary: 'write the evidence of a time window for auditors: HTML, Markdown and JSON',
    run: async (args, io) => (await import('./audit-command.js')).runAudit(args, io),
  },
  witness: {
    summary: 'run a transparency-log witness: cosign checkpoints that extend what it saw',
    run: async (args, io) => (await import('./witness-command.js')).runWitness(args, io),
  },
  help: {
    summary: 'show this help',
    run: (_args, io) => {
      io.stdout(usage());
      return Promise.resolve(EXIT_OK);
    },
  },
  version: {
    summary: 'show the version',
    run: (_args, io) => {
      io.stdout(cairnVersion());
      return Promise.resolve(EXIT_OK);
    },
  },
};

const ALIASES: Readonly<Record<string, string>> = {
  '-h': 'help',
  '--help': 'help',
  '-v': 'version',
  '--version': 'version',
};

export async function runCairn(
  argv: readonly string[],
  io: CliIo,
  commands: Readonly<Record<string, CairnCommand>> = COMMANDS,
): Promise<number> {
  const [first, ...args] = argv;
  if (first === undefined) {
    io.stderr(
      `✘ USAGE: no command given (commands: ${Object.keys(commands).join(', ')}; see cairn --help)`,
    );
    return EXIT_USAGE;
  }
  const name = ALIASES[first] ?? first;
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (command === undefined) {
    io.stderr(
      `✘ USAGE: unknown command ${JSON.stringify(name)} (commands: ${Object.keys(commands).join(', ')}; see cairn --help)`,
    );
    return EXIT_USAGE;
  }
  try {
    return await command.run(args, io);
  } catch (e) {
    io.stderr(failureLine(e));
    const hint = failureHint(e);
    if (hint !== undefined) io.stderr(hint);
    return e instanceof UsageError ? EXIT_USAGE : EXIT_FAILED;
  }
}
