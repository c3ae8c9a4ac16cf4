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
 * Codes beyond those of the packages' own errors: USAGE for bad arguments, IO for the local
 * file system, INTERNAL for anything unexpected (a bug: report it).
 */
export type CliFailureCode = 'USAGE' | 'IO' | 'INTERNAL';

/**
 * The error classes whose `code` is printed as it is. Matched by name, not `instanceof`, so
 * the CLI need not load storage or delta code to report their errors, and a second copy of
 * a package in node_modules still reports its codes.
 */
const CODED_ERRORS: ReadonlySet<string> = new Set([
  'OriginError',
  'StorageError',
  'DeltaError',
  'ClientError',
  'EdgeError',
  'TlogError',
  'AuditError',
  'WebhookError',
]);

function hasOwnCode(error: unknown): error is Error & { code: string } {
  return (
    error instanceof Error &&
    CODED_ERRORS.has(error.name) &&
    typeof (error as { code?: unknown }).code === 'string'
  );
}

function isSystemError(error: unknown): error is NodeJS.ErrnoException {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return error instanceof Error && typeof code === 'string' && /^E[A-Z]+$/.test(code);
}

export function failureCode(error: unknown): string {
  if (isVerifyError(error)) return error.code;
  if (hasOwnCode(error)) return error.code;
  if (error instanceof UsageError) return 'USAGE';
  if (isSystemError(error)) return 'IO';
  return 'INTERNAL';
}

/** The single line printed for a failure; messages never span lines. */
export function failureLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return `✘ ${failureCode(error)}: ${message.replace(/\s*\n\s*/g, ' ')}`;
}

const hints = new WeakMap<object, string>();

/**
 * Attaches one line on how to fix `error`, printed under its failure line; a hint already
 * attached (by code closer to the failure) is kept. Returns `error`, to rethrow.
 */
export function withHint<T>(error: T, hint: string | undefined): T {
  if (hint !== undefined && typeof error === 'object' && error !== null && !hints.has(error)) {
    hints.set(error, hint);
  }
  return error;
}

/** The line printed under a failure line: `  hint: ...`, or undefined when there is none. */
export function failureHint(error: unknown): string | undefined {
  const hint = typeof error === 'object' && error !== null ? hints.get(error) : undefined;
  return hint === undefined ? undefined : `  hint: ${hint.replace(/\s*\n\s*/g, ' ')}`;
}
