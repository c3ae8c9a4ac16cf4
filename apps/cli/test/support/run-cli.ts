/** Runs a built bin of apps/cli as a child process on this Node, the way a user would. */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function builtBin(name: 'main' | 'tuf-conformance-client'): string {
  return fileURLToPath(new URL(`../../dist/${name}.js`, import.meta.url));
}

/** Whether libfaketime's `faketime` is installed (the tuf-conformance suite requires it). */
export function hasFaketime(): boolean {
  return spawnSync('faketime', ['-h'], { stdio: 'ignore' }).error === undefined;
}

export interface RunOptions {
  /** Run under libfaketime at this time. */
  readonly faketime?: string;
  /** The child's whole environment (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

export function runBuilt(
  bin: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<CliResult> {
  // As tuf-conformance's client_runner.py does: `faketime "<time>" <client> ...`.
  const [command, prefix] =
    options.faketime === undefined
      ? [process.execPath, []]
      : ['faketime', [options.faketime, process.execPath]];
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...prefix, bin, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env ?? process.env,
      cwd: options.cwd ?? process.cwd(),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
