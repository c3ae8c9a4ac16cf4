/**
 * Runs src/testing/install-child.ts in a process of its own (Node strips its types) for the
 * crash and lock tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const INSTALL_CHILD = fileURLToPath(new URL('./install-child.ts', import.meta.url));

export interface ChildResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunningChild {
  readonly process: ChildProcess;
  readonly pid: number;
  /** Resolves with the first line the child prints, or '' if it exits without one. */
  readonly firstLine: Promise<string>;
  readonly exited: Promise<ChildResult>;
}

export function startChild(args: readonly string[]): RunningChild {
  const child = spawn(process.execPath, ['--no-warnings', INSTALL_CHILD, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let onLine: ((line: string) => void) | undefined;
  const firstLine = new Promise<string>((resolve) => (onLine = resolve));
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    const end = stdout.indexOf('\n');
    if (end !== -1) onLine?.(stdout.slice(0, end));
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<ChildResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      onLine?.(''); // a child that printed nothing: the caller's wait ends here
      resolve({ code, signal, stdout, stderr });
    });
  });
  if (child.pid === undefined) throw new Error('the child process did not start');
  return { process: child, pid: child.pid, firstLine, exited };
}

export function runChild(args: readonly string[]): Promise<ChildResult> {
  return startChild(args).exited;
}
