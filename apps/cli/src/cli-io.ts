/**
 * How commands talk to the terminal, and how every failure becomes the one line
 * `✘ CODE: what happened`. Commands get a CliIo instead of touching process.stdout, so tests
 * run them in-process and read exactly what they printed.
 */
import { isVerifyError } from '@cairn/verify/errors';

export interface CliIo {
  /** Writes one line (a newline is added) to standard output. */
  stdout(line: string): void;
  /** Writes one line (a newline is added) to standard error. */
  stderr(line: string): void;
}

export const processIo: CliIo = {
  stdout: (line) => void process.stdout.write(`${line}\n`),
  stderr: (line) => void process.stderr.write(`${line}\n`),
};

/** Bad arguments: the command line, not the world, is wrong. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * Codes beyond VerifyError's: USAGE for bad arguments, IO for the local file system,
 * INTERNAL for anything unexpected (a bug: report it).
 */
export type CliFailureCode = 'USAGE' | 'IO' | 'INTERNAL';

function isSystemError(error: unknown): error is NodeJS.ErrnoException {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return error instanceof Error && typeof code === 'string' && /^E[A-Z]+$/.test(code);
}

export function failureCode(error: unknown): string {
  if (isVerifyError(error)) return error.code;
  if (error instanceof UsageError) return 'USAGE';
  if (isSystemError(error)) return 'IO';
  return 'INTERNAL';
}

/** The single line printed for a failure; messages never span lines. */
export function failureLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return `✘ ${failureCode(error)}: ${message.replace(/\s*\n\s*/g, ' ')}`;
}
