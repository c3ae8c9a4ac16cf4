/**
 * What the origin commands (publisher-commands.ts, operator-commands.ts) share: strict flag
 * parsing that turns every mistake into a usage error with the command's synopsis, settings
 * from flags or the environment, passphrases from the environment only, `--json` output,
 * and the number and time formats of the human output.
 *
 * Nothing here loads origin code, so `cairn --help` stays fast.
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { UsageError, withHint, type CliIo } from './cli-io.js';

export type Environment = Readonly<Record<string, string | undefined>>;

/** Where a progress bar goes: standard error, drawn only when it is a terminal. */
export interface Terminal {
  readonly isTTY: boolean;
  /** Characters per line, when known. */
  readonly columns?: number | undefined;
  write(text: string): void;
}

export interface CommandDeps {
  readonly env: Environment;
  readonly terminal: Terminal;
  readonly now: () => Date;
}

export function processDeps(): CommandDeps {
  return {
    env: process.env,
    terminal: {
      isTTY: process.stderr.isTTY,
      columns: process.stderr.columns,
      write: (text) => void process.stderr.write(text),
    },
    now: () => new Date(),
  };
}

/** Environment variables the commands read (besides the origin configuration's own). */
export const ENV = {
  origin: 'CAIRN_ORIGIN',
  key: 'CAIRN_KEY',
  passphrase: 'CAIRN_PASSPHRASE',
  rootPassphrase: 'CAIRN_ROOT_PASSPHRASE',
  onlinePassphrase: 'CAIRN_ONLINE_PASSPHRASE',
} as const;

export interface Usage {
  /** `cairn push`: names the command in messages. */
  readonly command: string;
  /** The synopsis: `cairn push DIR [--note TEXT] ...`. */
  readonly synopsis: string;
  /** What `--help` prints under the synopsis. */
  readonly details: readonly string[];
}

export function usageText(usage: Usage): string {
  return [`Usage: ${usage.synopsis}`, '', ...usage.details].join('\n');
}

/** `--help`: the command's usage on standard output; exit 0. */
export function printUsage(io: CliIo, usage: Usage): number {
  io.stdout(usageText(usage));
  return 0;
}

export function usageError(usage: Usage, problem: string): UsageError {
  return withHint(new UsageError(`${usage.command}: ${problem}`), `usage: ${usage.synopsis}`);
}

interface ParseArgsFailure {
  readonly code?: unknown;
  readonly message?: unknown;
}

/** node:util's messages are long and advise on `--`; this keeps the part a user needs. */
function describeParseFailure(error: unknown): string {
  const { code, message } = (error ?? {}) as ParseArgsFailure;
  const text = typeof message === 'string' ? message : String(error);
  const quoted = /'([^']+)'/.exec(text)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && quoted !== undefined) {
    return `unknown option ${quoted}`;
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && quoted !== undefined) {
    return /argument missing/.test(text)
      ? `${quoted.split(' ')[0] ?? quoted} needs a value`
      : `${quoted} takes no value`;
  }
  return text.split('. ')[0] ?? text;
}

/** The `--help` flag every command accepts. */
const HELP = { help: { type: 'boolean', short: 'h' } } as const;

/**
 * Parses `args` strictly: unknown options, missing values and more positionals than
 * `maxPositionals` are usage errors naming the command.
 */
export function parseCommand<const O extends ParseArgsOptionsConfig>(
  usage: Usage,
  args: readonly string[],
  options: O,
  maxPositionals: number,
) {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: { ...options, ...HELP },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw usageError(usage, describeParseFailure(error));
  }
  const help = (parsed.values as { readonly help?: boolean }).help === true;
  if (!help && parsed.positionals.length > maxPositionals) {
    const extra = parsed.positionals.slice(maxPositionals).map((p) => JSON.stringify(p));
    throw usageError(usage, `unexpected argument ${extra.join(' ')}`);
  }
  return parsed;
}

/** A positional argument the command cannot run without. */
export function requirePositional(
  usage: Usage,
  positionals: readonly string[],
  index: number,
  name: string,
): string {
  const value = positionals[index];
  if (value === undefined || value === '') throw usageError(usage, `missing ${name}`);
  return value;
}

/** A whole number of at least `min`, from a flag. */
export function integerFlag(
  usage: Usage,
  value: string | undefined,
  flag: string,
  min: number,
): number | undefined {
  if (value === undefined) return undefined;
  const n = /^[0-9]{1,15}$/.test(value) ? Number(value) : NaN;
  if (!(n >= min)) {
    throw usageError(
      usage,
      `${flag}: expected a whole number of at least ${min}, received ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/** A flag's value, else the environment variable's; empty counts as unset, as a shell user expects. */
export function flagOrEnv(
  value: string | undefined,
  env: Environment,
  variable: string,
): string | undefined {
  if (value !== undefined && value !== '') return value;
  const fromEnv = env[variable];
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
}

export function requireFlagOrEnv(
  usage: Usage,
  value: string | undefined,
  env: Environment,
  flag: string,
  variable: string,
): string {
  const found = flagOrEnv(value, env, variable);
  if (found === undefined) throw usageError(usage, `missing ${flag} (or set ${variable})`);
  return found;
}

/** Prints the one JSON document a `--json` run writes to standard output. */
export function printJson(io: CliIo, value: unknown): void {
  io.stdout(JSON.stringify(value, null, 2));
}

/** Runs `work`, attaching `hint(code)` to a coded failure that has no hint yet. */
export async function hinted<T>(
  work: () => Promise<T>,
  hint: (code: string) => string | undefined,
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    throw withHint(error, typeof code === 'string' ? hint(code) : undefined);
  }
}

/** Hints for failures any origin command can meet. */
export function commonHint(code: string): string | undefined {
  switch (code) {
    case 'UNREACHABLE':
      return `check --origin (or ${ENV.origin}) and that the origin is running (cairn serve)`;
    case 'UNKNOWN_KEY':
      return 'this key is not a publisher here: give its .pub file to an operator for `cairn keys add-publisher`';
    case 'REVOKED_KEY':
      return 'this key was revoked: ask an operator to add your new key (cairn keys add-publisher)';
    case 'EXPIRED_REQUEST':
      return "check this machine's clock: requests are refused outside the origin's time window";
    case 'STORAGE_UNAVAILABLE':
      return 'object storage did not answer; nothing was half-written: try again';
    case 'CONFLICT':
      return 'someone else changed the repository at the same moment: try again';
    case 'STALE_DRAFT':
      return '`cairn status` names the current draft';
    case 'INTEGRITY':
      return 'the stored repository fails verification: stop publishing and check the store';
    case 'WITNESS_UNAVAILABLE':
      return "too few of the log's witnesses cosigned; nothing was published: check log.witnesses and that they are running (cairn witness serve), the origin retries";
    default:
      return undefined;
  }
}

/** Resolves with the first SIGTERM or SIGINT, then stops listening: a server's clean stop. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (received: NodeJS.Signals) => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve(received);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB'] as const;

/** 0 B, 999 B, 1.0 KiB, 13.7 MiB: binary units, one decimal. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** `in 89d`, `in 5h`, `expired 3m ago`: the largest unit with at least two of it. */
export function formatTimeLeft(seconds: number): string {
  const s = Math.abs(seconds);
  const amount =
    s >= 2 * 86_400
      ? `${Math.floor(s / 86_400)}d`
      : s >= 2 * 3_600
        ? `${Math.floor(s / 3_600)}h`
        : s >= 120
          ? `${Math.floor(s / 60)}m`
          : `${Math.floor(s)}s`;
  return seconds < 0 ? `expired ${amount} ago` : `in ${amount}`;
}

/** Key ids are 64 hex digits; 12 identify a key among a repository's few. */
export function shortKeyid(keyid: string): string {
  return keyid.slice(0, 12);
}

/** Rows of cells as columns two spaces apart; `right` lists the right-aligned columns. */
export function columns(
  rows: readonly (readonly string[])[],
  right: readonly number[] = [],
): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  }
  return rows.map((row) =>
    row
      .map((cell, i) => {
        const width = widths[i] ?? 0;
        if (right.includes(i)) return cell.padStart(width);
        return i === row.length - 1 ? cell : cell.padEnd(width);
      })
      .join('  ')
      .trimEnd(),
  );
}
