// A Python virtualenv for interop tests: python-tuf and securesystemslib are the reference
// implementation our repositories, metadata and canonical JSON must agree with. The venv lives
// in <repo>/.cache/pyvenv (gitignored) and is rebuilt only when python-requirements.txt changes.
import { spawn } from 'node:child_process';
import { access, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export interface PythonResult {
  stdout: string;
  stderr: string;
  /** Exit code; 128 + signal number when the process was killed by a signal. */
  code: number;
}

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const requirementsPath = fileURLToPath(new URL('./python-requirements.txt', import.meta.url));
const venvDir = join(repoRoot, '.cache', 'pyvenv');
const venvPython =
  process.platform === 'win32'
    ? join(venvDir, 'Scripts', 'python.exe')
    : join(venvDir, 'bin', 'python');
// Written last, so a venv whose install was interrupted never counts as ready.
const markerPath = join(venvDir, 'cairn-installed-requirements.txt');
// mkdir is atomic: the lock keeps two test runs from building the same venv at once.
const lockDir = `${venvDir}.lock`;
const LOCK_WAIT_MS = 15 * 60_000; // a cold pip install of cryptography takes well under this

// pycparser 3.12 (pinned in python-requirements.txt) requires Python >= 3.11.
const MIN_PYTHON = { major: 3, minor: 11 } as const;
const basePython = process.env['CAIRN_PYTHON'] ?? 'python3';
const INSTALL_HINT =
  `Install Python ${MIN_PYTHON.major}.${MIN_PYTHON.minor} or newer with its venv module ` +
  '(Debian/Ubuntu: `apt-get install python3 python3-venv`; Fedora: `dnf install python3`; ' +
  'macOS: `brew install python3`), or set CAIRN_PYTHON to such a python executable.';

// Python's stdio defaults to the locale's encoding; tests compare exact strings, so force UTF-8.
const pythonEnv: NodeJS.ProcessEnv = {
  ...process.env,
  PYTHONUTF8: '1',
  PYTHONIOENCODING: 'utf-8',
  PYTHONDONTWRITEBYTECODE: '1',
  PIP_DISABLE_PIP_VERSION_CHECK: '1',
};

let ready: Promise<{ python: string }> | undefined;

/**
 * Creates <repo>/.cache/pyvenv with the pinned python-tuf stack, or does nothing when it already
 * holds exactly the current python-requirements.txt. Returns the venv's python executable.
 */
export async function ensurePythonVenv(): Promise<{ python: string }> {
  ready ??= prepareVenv().catch((error: unknown) => {
    ready = undefined; // let a later call retry, e.g. after the network comes back
    throw error;
  });
  return ready;
}

/** Runs a Python script file with the venv's python. A non-zero exit is returned, not thrown. */
export async function runPython(
  script: string,
  args: string[],
  opts: { cwd?: string; input?: string } = {},
): Promise<PythonResult> {
  const { python } = await ensurePythonVenv();
  return run(python, [script, ...args], { ...opts, env: pythonEnv });
}

async function prepareVenv(): Promise<{ python: string }> {
  const requirements = await readFile(requirementsPath, 'utf8');
  if (await isInstalled(requirements)) return { python: venvPython };
  return withLock(async () => {
    // Another process may have finished the install while this one waited for the lock.
    if (await isInstalled(requirements)) return { python: venvPython };
    const python = await findBasePython();
    // Start from nothing: pip would leave packages dropped from the requirements in place.
    await rm(venvDir, { recursive: true, force: true });
    await checked(python, ['-m', 'venv', venvDir], 'creating the virtualenv', INSTALL_HINT);
    await checked(
      venvPython,
      // Wheels only: building cryptography from source needs a Rust toolchain; fail fast instead.
      ['-m', 'pip', 'install', '--no-input', '--only-binary=:all:', '-r', requirementsPath],
      `installing ${requirementsPath}`,
      'PyPI (https://pypi.org) must be reachable, directly or through PIP_INDEX_URL.',
    );
    await writeFile(markerPath, requirements);
    return { python: venvPython };
  });
}

async function isInstalled(requirements: string): Promise<boolean> {
  try {
    await access(venvPython);
    return (await readFile(markerPath, 'utf8')) === requirements;
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return false;
    throw error;
  }
}

async function findBasePython(): Promise<string> {
  const probe = 'import sys; print("%d.%d" % sys.version_info[:2])';
  let result: PythonResult;
  try {
    result = await run(basePython, ['-c', probe], { env: pythonEnv });
  } catch (error) {
    if (isErrno(error, 'ENOENT')) {
      throw new Error(`${basePython} was not found on PATH. ${INSTALL_HINT}`, { cause: error });
    }
    throw error;
  }
  // pyenv's shim exists even when no Python is selected; it then exits non-zero.
  if (result.code !== 0) {
    throw new Error(
      `${basePython} -c <version probe> exited with ${result.code}: ${result.stderr.trim()}\n${INSTALL_HINT}`,
    );
  }
  const [major = 0, minor = 0] = result.stdout.trim().split('.').map(Number);
  if (major < MIN_PYTHON.major || (major === MIN_PYTHON.major && minor < MIN_PYTHON.minor)) {
    throw new Error(`${basePython} is Python ${result.stdout.trim()}, too old. ${INSTALL_HINT}`);
  }
  return basePython;
}

async function checked(command: string, args: string[], what: string, hint: string) {
  const result = await run(command, args, { env: pythonEnv });
  if (result.code !== 0) {
    throw new Error(
      `Python venv: ${what} failed: \`${command} ${args.join(' ')}\` exited with ${result.code}.\n` +
        `${hint}\n--- stdout ---\n${result.stdout}--- stderr ---\n${result.stderr}`,
    );
  }
}

async function withLock<T>(body: () => Promise<T>): Promise<T> {
  await mkdir(dirname(lockDir), { recursive: true });
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      await mkdir(lockDir);
      break;
    } catch (error) {
      if (!isErrno(error, 'EEXIST')) throw error;
      if (await isStaleLock()) {
        await rm(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `Timed out waiting for ${lockDir}; remove it if no other test run is installing the venv.`,
        );
      }
      await sleep(500);
    }
  }
  try {
    await writeFile(join(lockDir, 'pid'), String(process.pid));
    return await body();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

/** A lock is stale when its owner died: its pid is gone, or it never wrote one. */
async function isStaleLock(): Promise<boolean> {
  try {
    const pid = Number(await readFile(join(lockDir, 'pid'), 'utf8'));
    process.kill(pid, 0);
    return false;
  } catch (error) {
    if (isErrno(error, 'ESRCH')) return true;
    if (isErrno(error, 'ENOENT')) {
      // Owner may sit between mkdir and writeFile; only a lock older than that is dead.
      const since = await stat(lockDir).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      return since > 10_000;
    }
    if (isErrno(error, 'EPERM')) return false; // alive, owned by another user
    throw error;
  }
}

function run(
  command: string,
  args: string[],
  opts: { cwd?: string; input?: string; env: NodeJS.ProcessEnv },
): Promise<PythonResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: 'pipe' });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      resolve({
        // Decode once at the end so a UTF-8 sequence split across chunks stays intact.
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        code: code ?? 128 + (signal === null ? 0 : constants.signals[signal]),
      });
    });
    // A script that exits without reading stdin makes the write fail with EPIPE; the exit
    // code and stderr already tell that story.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input);
  });
}

function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}
