/**
 * The `cairn` command: a table of subcommands and a dispatcher. Adding a command is one
 * entry in COMMANDS. Exit status: 0 success, 1 the command failed, 2 bad usage.
 */
import { readFileSync } from 'node:fs';
import { failureLine, UsageError, type CliIo } from './cli-io.js';
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

export const COMMANDS: Readonly<Record<string, CairnCommand>> = {
  demo: {
    summary: 'create, sign, serve and verify a repository on this machine, step by step',
    run: runDemo,
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
    return e instanceof UsageError ? EXIT_USAGE : EXIT_FAILED;
  }
}
