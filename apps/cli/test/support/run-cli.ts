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

export interface ServedMirror {
  readonly url: string;
  /** SIGTERM, resolved once the process has exited. */
  stop(): Promise<void>;
}

/**
 * Starts the built `cairn mirror serve --dir DIR --listen 127.0.0.1:0 --name NAME` and resolves
 * once it prints its URL (30 s at most; a child that exits first rejects with its output).
 */
export function serveMirrorDir(
  bin: string,
  options: { dir: string; name: string; cwd: string; env: NodeJS.ProcessEnv },
): Promise<ServedMirror> {
  const child = spawn(
    process.execPath,
    [
      bin,
      'mirror',
      'serve',
      '--dir',
      options.dir,
      '--listen',
      '127.0.0.1:0',
      '--name',
      options.name,
    ],
    { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no URL line: ${stdout}${stderr}`));
    }, 30_000);
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
      const url = / serving (http:\/\/127\.0\.0\.1:\d+) /.exec(stdout)?.[1];
      if (url === undefined) return;
      clearTimeout(timer);
      resolve({
        url,
        stop: () => {
          child.kill('SIGTERM');
          return exited;
        },
      });
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`cairn mirror serve exited: ${stdout}${stderr}`));
    });
  });
}
