/**
 * The client-under-test protocol of the TUF conformance suite
 * (theupdateframework/tuf-conformance, CLIENT-CLI.md):
 *
 *   --metadata-dir DIR init TRUSTED_ROOT
 *   --metadata-dir DIR --metadata-url URL refresh
 *   --metadata-dir DIR --metadata-url URL --target-name PATH [--target-name PATH ...]
 *       --target-base-url URL --target-dir DIR download
 *
 * Flags may come in any order, before or after the command. Exit 0 on full success, 1 on
 * any failure, with one line `✘ CODE: message` on stderr.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { VerifyError } from '@cairn/verify/errors';
import type { Fetcher } from '@cairn/verify/ports';
import { createTufClient, downloadTargetTo, initTrustedRoot } from '@cairn/client/tuf-client';
import { failureLine, UsageError, type CliIo } from './cli-io.js';

export const CONFORMANCE_USAGE = `Usage: cairn-tuf-client --metadata-dir DIR init TRUSTED_ROOT
       cairn-tuf-client --metadata-dir DIR --metadata-url URL refresh
       cairn-tuf-client --metadata-dir DIR --metadata-url URL --target-name PATH [--target-name PATH ...]
                        --target-base-url URL --target-dir DIR download

A TUF client for the tuf-conformance suite. init stores TRUSTED_ROOT as the trusted root
(no network); refresh updates root, timestamp, snapshot and targets; download refreshes,
then downloads and verifies each named target into DIR (skipping files already current).
Exit status: 0 on success, 1 on any failure (one line "✘ CODE: message" on stderr).`;

export type ConformanceCommand =
  | { readonly kind: 'help' }
  | { readonly kind: 'init'; readonly metadataDir: string; readonly trustedRoot: string }
  | { readonly kind: 'refresh'; readonly metadataDir: string; readonly metadataUrl: string }
  | {
      readonly kind: 'download';
      readonly metadataDir: string;
      readonly metadataUrl: string;
      readonly targetNames: readonly string[];
      readonly targetDir: string;
      readonly targetBaseUrl: string;
    };

const OPTIONS = {
  'metadata-dir': { type: 'string', multiple: true },
  'metadata-url': { type: 'string', multiple: true },
  'target-name': { type: 'string', multiple: true },
  'target-dir': { type: 'string', multiple: true },
  'target-base-url': { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const;

type FlagName = Exclude<keyof typeof OPTIONS, 'help'>;

/** Parses argv (without node and the script). Throws UsageError. */
export function parseConformanceArgs(argv: readonly string[]): ConformanceCommand {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help === true) return { kind: 'help' };

  const flag = (name: FlagName): string => {
    const given = values[name] ?? [];
    if (given.length === 0) throw new UsageError(`missing --${name}`);
    if (given.length > 1) throw new UsageError(`--${name} was given ${given.length} times`);
    const value = given[0] ?? '';
    if (value === '') throw new UsageError(`--${name} is empty`);
    return value;
  };
  const [command, ...args] = positionals;
  const noArguments = (): void => {
    if (args.length > 0) {
      throw new UsageError(`${command} takes no arguments, received ${JSON.stringify(args)}`);
    }
  };

  switch (command) {
    case 'init': {
      if (args.length !== 1 || args[0] === '') {
        throw new UsageError(
          `init takes one argument, the trusted root file, received ${args.length}`,
        );
      }
      return { kind: 'init', metadataDir: flag('metadata-dir'), trustedRoot: args[0] ?? '' };
    }
    case 'refresh':
      noArguments();
      return {
        kind: 'refresh',
        metadataDir: flag('metadata-dir'),
        metadataUrl: flag('metadata-url'),
      };
    case 'download': {
      noArguments();
      const targetNames = values['target-name'] ?? [];
      if (targetNames.length === 0) throw new UsageError('missing --target-name');
      return {
        kind: 'download',
        metadataDir: flag('metadata-dir'),
        metadataUrl: flag('metadata-url'),
        targetNames,
        targetDir: flag('target-dir'),
        targetBaseUrl: flag('target-base-url'),
      };
    }
    case undefined:
      throw new UsageError('missing command: init, refresh or download');
    default:
      throw new UsageError(
        `unknown command ${JSON.stringify(command)}: expected init, refresh or download`,
      );
  }
}

/** Seams for tests; the CLI uses the defaults (HTTP, the system clock). */
export interface ConformanceClientDeps {
  readonly fetcher?: Fetcher;
  readonly now?: () => Date;
}

async function execute(
  command: Exclude<ConformanceCommand, { kind: 'help' }>,
  io: CliIo,
  deps: ConformanceClientDeps,
): Promise<void> {
  switch (command.kind) {
    case 'init': {
      const rootBytes = new Uint8Array(await readFile(command.trustedRoot));
      await initTrustedRoot(command.metadataDir, rootBytes);
      return;
    }
    case 'refresh': {
      const { metadataDir, metadataUrl } = command;
      await createTufClient({ metadataDir, metadataUrl, ...deps }).refresh();
      return;
    }
    case 'download': {
      // One updater for every target: one refresh, one trusted state.
      const { metadataDir, metadataUrl, targetBaseUrl } = command;
      const updater = createTufClient({ metadataDir, metadataUrl, targetBaseUrl, ...deps });
      await updater.refresh();
      for (const name of command.targetNames) {
        const target = await updater.getTargetInfo(name);
        if (target === undefined) {
          throw new VerifyError(
            'TARGET_NOT_FOUND',
            `no trusted targets role lists ${JSON.stringify(name)}`,
          );
        }
        const stored = await downloadTargetTo(
          updater,
          target,
          command.targetDir,
          command.targetBaseUrl,
        );
        io.stdout(`${stored.downloaded ? 'downloaded' : 'up to date'}: ${name} -> ${stored.path}`);
      }
      return;
    }
  }
}

/** Runs one invocation and returns its exit status: 0 on success, 1 on any failure. */
export async function runConformanceClient(
  argv: readonly string[],
  io: CliIo,
  deps: ConformanceClientDeps = {},
): Promise<number> {
  try {
    const command = parseConformanceArgs(argv);
    if (command.kind === 'help') {
      io.stdout(CONFORMANCE_USAGE);
      return 0;
    }
    await execute(command, io, deps);
    return 0;
  } catch (e) {
    const hint = e instanceof UsageError ? ' (see cairn-tuf-client --help)' : '';
    io.stderr(`${failureLine(e)}${hint}`);
    return 1;
  }
}
