/**
 * A real MinIO server for tests (Node only). `startMinio()` finds a `minio` binary (MINIO_BIN,
 * then PATH, then our cache), builds it with `go install` at a pinned version when there is
 * none, and starts it on free 127.0.0.1 ports with a temporary data directory and fresh
 * credentials. Everything is removed on `stop()`, and also when the process exits without
 * calling it; if the process is killed outright, a watchdog shell around MinIO sees its stdin
 * close and kills it.
 *
 * One server can serve many suites: a vitest globalSetup (minio-global-setup.ts) starts one and
 * `provide`s its `MinioConnection`; tests create a bucket of their own with `createBucket`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { accessSync, constants, mkdirSync, rmSync } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  AbortMultipartUploadCommand,
  S3Client,
} from '@aws-sdk/client-s3';

/** The MinIO module we build when no binary is at hand. It has no replace directives. */
export const MINIO_MODULE = 'github.com/minio/minio';
/** A pinned pseudo-version (commit 7aac2a2c5b7c, 2026-02-12), resolvable through the Go proxy. */
export const MINIO_VERSION = 'v0.0.0-20260212201848-7aac2a2c5b7c';

/** What a test needs to reach a MinIO: plain data, so vitest can `provide` it to any runtime. */
export interface MinioConnection {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
}

export interface MinioServer extends MinioConnection {
  readonly connection: MinioConnection;
  /** The temporary data directory, removed by `stop()`. */
  readonly dataDirectory: string;
  readonly pid: number | undefined;
  createBucket(name: string): Promise<void>;
  /** Empties a bucket (objects and unfinished multipart uploads) and deletes it. */
  removeBucket(name: string): Promise<void>;
  /** Kills the server but keeps its port, credentials and data: the service is down. */
  halt(): Promise<void>;
  /** Starts a halted server again on the same port with the same data. */
  restart(): Promise<void>;
  /** Stops the process (SIGSTOP): connections open, nothing answers. Undo with `thaw()`. */
  freeze(): void;
  thaw(): void;
  /** Kills the server and removes its data directory. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartMinioOptions {
  /** Lines of progress (binary lookup, a cold build). Default: to stderr. */
  readonly log?: ((line: string) => void) | undefined;
  /** How long to wait for /minio/health/ready. Default 60 s. */
  readonly readyTimeoutMs?: number | undefined;
}

export interface FindMinioOptions {
  readonly log?: ((line: string) => void) | undefined;
  /** The environment to read MINIO_BIN, PATH, XDG_CACHE_HOME and HOME from. Default process.env. */
  readonly env?: NodeJS.ProcessEnv | undefined;
  /** Where to look for `go` when it is not on PATH. Default: Go's standard install location. */
  readonly goFallbacks?: readonly string[] | undefined;
}

/** Go's tarball installs here; a shell that never sourced its profile may lack it on PATH. */
const GO_FALLBACKS = ['/usr/local/go/bin/go'];

const REGION = 'us-east-1';

function defaultLog(line: string): void {
  process.stderr.write(`[minio] ${line}\n`);
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** `${XDG_CACHE_HOME:-$HOME/.cache}/cairn/minio/<version>/`: where a built binary is kept. */
export function minioCacheDirectory(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(base, 'cairn', 'minio', MINIO_VERSION);
}

export class MinioSetupError extends Error {
  override readonly name = 'MinioSetupError';
}

/**
 * The path of a `minio` binary: MINIO_BIN, else `minio` on PATH, else our cache, else one built
 * now with `go install` into the cache (about 7 minutes cold; printed as it goes).
 */
export async function findMinio(options: FindMinioOptions = {}): Promise<string> {
  const env = options.env ?? process.env;
  const log = options.log ?? defaultLog;
  const fromEnv = env.MINIO_BIN;
  if (fromEnv) {
    if (!isExecutable(fromEnv)) {
      throw new MinioSetupError(
        `MINIO_BIN is ${fromEnv}, which is not an executable file. Point it at a minio binary, or unset it to let the tests build one with Go.`,
      );
    }
    return fromEnv;
  }
  const found = onPath('minio', env);
  if (found) return found;
  const cacheDirectory = minioCacheDirectory(env);
  const cached = join(cacheDirectory, 'minio');
  if (isExecutable(cached)) return cached;
  const go = onPath('go', env) ?? (options.goFallbacks ?? GO_FALLBACKS).find(isExecutable);
  if (!go) {
    throw new MinioSetupError(
      'The storage tests need MinIO, and there is no minio binary (MINIO_BIN, PATH) and no Go to build one. Install Go 1.24 or newer (https://go.dev/dl/, or `apt-get install golang`), or set MINIO_BIN to a minio server binary.',
    );
  }
  await buildMinio(go, cacheDirectory, env, log);
  return cached;
}

async function buildMinio(
  go: string,
  cacheDirectory: string,
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
): Promise<void> {
  // Each build goes to a directory of its own and is renamed into place, so two suites building
  // at once (turbo runs packages in parallel) each finish with a whole binary.
  mkdirSync(cacheDirectory, { recursive: true });
  const buildDirectory = await mkdtemp(join(cacheDirectory, '.build-'));
  const started = Date.now();
  const target = `${MINIO_MODULE}@${MINIO_VERSION}`;
  log(`no minio binary found; building ${target} with ${go} into ${cacheDirectory}`);
  log('this happens once per machine and takes about 7 minutes cold; set MINIO_BIN to skip it');
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(go, ['install', '-v', target], {
        env: { ...env, GOBIN: buildDirectory, CGO_ENABLED: '0', GOFLAGS: '-buildvcs=false' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let lastPackage = '';
      const tail: string[] = [];
      const onOutput = (chunk: Buffer): void => {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (line.trim() === '') continue;
          lastPackage = line.trim();
          tail.push(line);
          if (tail.length > 30) tail.shift();
        }
      };
      child.stdout.on('data', onOutput);
      child.stderr.on('data', onOutput);
      const ticker = setInterval(() => {
        const seconds = Math.round((Date.now() - started) / 1000);
        log(`still building MinIO (${seconds} s): ${lastPackage}`);
      }, 30_000);
      child.on('error', (e) => {
        clearInterval(ticker);
        reject(e);
      });
      child.on('close', (code, signal) => {
        clearInterval(ticker);
        if (code === 0) resolve();
        else
          reject(
            new MinioSetupError(
              `go install ${target} failed (${signal ?? `exit ${code}`}):\n${tail.join('\n')}`,
            ),
          );
      });
    });
    await rename(join(buildDirectory, 'minio'), join(cacheDirectory, 'minio'));
    log(`built MinIO in ${Math.round((Date.now() - started) / 1000)} s`);
  } finally {
    await rm(buildDirectory, { recursive: true, force: true });
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A port that was free a moment ago on 127.0.0.1, picked at random below the ephemeral ranges
 * (Linux 32768-60999, BSD and macOS 49152-65535): no `listen(0)` and no outgoing connection of
 * another test can take it while a halted MinIO is down, so `restart()` gets it back.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 10_000 + randomInt(22_000);
    if (await canListen(port)) return port;
  }
  throw new MinioSetupError('no free port found in 10000-31999 on 127.0.0.1');
}

function adminClient(connection: MinioConnection): S3Client {
  return new S3Client({
    endpoint: connection.endpoint,
    region: connection.region,
    credentials: {
      accessKeyId: connection.accessKeyId,
      secretAccessKey: connection.secretAccessKey,
    },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export async function createBucket(connection: MinioConnection, name: string): Promise<void> {
  const client = adminClient(connection);
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } finally {
    client.destroy();
  }
}

export async function removeBucket(connection: MinioConnection, name: string): Promise<void> {
  const client = adminClient(connection);
  try {
    for (;;) {
      const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: name }));
      for (const upload of uploads.Uploads ?? []) {
        await client.send(
          new AbortMultipartUploadCommand({
            Bucket: name,
            Key: upload.Key,
            UploadId: upload.UploadId,
          }),
        );
      }
      if (!uploads.IsTruncated) break;
    }
    for (;;) {
      const page = await client.send(new ListObjectsV2Command({ Bucket: name }));
      const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
      if (keys.length === 0) break;
      await client.send(
        new DeleteObjectsCommand({ Bucket: name, Delete: { Objects: keys, Quiet: true } }),
      );
    }
    await client.send(new DeleteBucketCommand({ Bucket: name }));
  } finally {
    client.destroy();
  }
}

/** A bucket name that no other test picked: S3 rules (lowercase, digits, dashes, 3-63 chars). */
export function uniqueBucketName(prefix = 'test'): string {
  return `${prefix}-${randomBytes(8).toString('hex')}`.toLowerCase().slice(0, 63);
}

// The watchdog: MinIO runs as a child of this shell, which waits on its stdin, a pipe from us.
// When our process ends in any way, the pipe closes, `read` returns, and MinIO is killed and its
// data removed. On an ordinary stop we kill the whole process group first.
export const WATCHDOG_SCRIPT = [
  '"$@" </dev/null &',
  'child=$!',
  'read -r _',
  'kill -KILL "$child" 2>/dev/null',
  'wait "$child" 2>/dev/null',
  'if [ -n "$CAIRN_MINIO_REMOVE_ON_EXIT" ]; then rm -rf "$CAIRN_MINIO_REMOVE_ON_EXIT"; fi',
].join('\n');

interface Running {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  readonly output: string[];
}

async function waitReady(
  endpoint: string,
  running: Running,
  timeoutMs: number,
  port: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void running.exited.then(() => {
    exited = true;
  });
  for (;;) {
    if (exited) {
      throw new MinioSetupError(
        `minio exited before it was ready on port ${port}:\n${running.output.join('')}`,
      );
    }
    try {
      const response = await fetch(`${endpoint}/minio/health/ready`, {
        signal: AbortSignal.timeout(2_000),
      });
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      throw new MinioSetupError(
        `minio did not become ready on ${endpoint} within ${timeoutMs} ms:\n${running.output.join('')}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

const liveServers = new Set<{ cleanupSync(): void }>();
let exitHooksInstalled = false;

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  // A normal exit (even after failing tests) runs this. A death by signal does not, and needs
  // nothing: the watchdog shell sees its stdin close and cleans up.
  process.on('exit', () => {
    for (const server of liveServers) server.cleanupSync();
  });
}

export async function startMinio(options: StartMinioOptions = {}): Promise<MinioServer> {
  const log = options.log ?? defaultLog;
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  const binary = await findMinio({ log });
  const root = await mkdtemp(join(tmpdir(), 'cairn-minio-'));
  const dataDirectory = join(root, 'data');
  const certsDirectory = join(root, 'certs');
  mkdirSync(dataDirectory);
  mkdirSync(certsDirectory);
  const accessKeyId = `cairn${randomBytes(8).toString('hex')}`;
  const secretAccessKey = randomBytes(24).toString('base64url');

  let port = 0;
  let consolePort = 0;
  let running: Running | undefined;
  let stopped = false;

  const launch = async (): Promise<void> => {
    const child = spawn(
      '/bin/sh',
      [
        '-c',
        WATCHDOG_SCRIPT,
        'cairn-minio-watchdog',
        binary,
        'server',
        dataDirectory,
        '--address',
        `127.0.0.1:${port}`,
        '--console-address',
        `127.0.0.1:${consolePort}`,
        '--certs-dir',
        certsDirectory,
        '--quiet',
      ],
      {
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
        env: {
          ...process.env,
          MINIO_ROOT_USER: accessKeyId,
          MINIO_ROOT_PASSWORD: secretAccessKey,
          MINIO_REGION: REGION,
          MINIO_BROWSER: 'off',
          MINIO_UPDATE: 'off',
          CAIRN_MINIO_REMOVE_ON_EXIT: root,
        },
      },
    );
    const output: string[] = [];
    const keep = (chunk: Buffer): void => {
      output.push(chunk.toString('utf8'));
      if (output.length > 50) output.shift();
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    // Our end of the pipe must not keep the event loop alive.
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    child.unref();
    (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
    (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    running = { child, exited, output };
    await waitReady(`http://127.0.0.1:${port}`, running, readyTimeoutMs, port);
  };

  const killGroup = async (): Promise<void> => {
    const current = running;
    running = undefined;
    if (!current?.child.pid) return;
    // Keep the event loop alive until the exit is seen, even when nothing else would.
    current.child.ref();
    try {
      process.kill(-current.child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
    await current.exited;
  };

  const entry = {
    cleanupSync(): void {
      if (running?.child.pid) {
        try {
          process.kill(-running.child.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
  installExitHooks();
  liveServers.add(entry);

  // A port found free can be taken before MinIO binds it; try a few pairs.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    consolePort = await freePort();
    try {
      await launch();
      break;
    } catch (e) {
      await killGroup();
      if (attempt >= 3 || !(e instanceof MinioSetupError)) {
        liveServers.delete(entry);
        await rm(root, { recursive: true, force: true });
        throw e;
      }
    }
  }

  const connection: MinioConnection = {
    endpoint: `http://127.0.0.1:${port}`,
    accessKeyId,
    secretAccessKey,
    region: REGION,
  };

  return {
    ...connection,
    connection,
    dataDirectory,
    get pid() {
      return running?.child.pid;
    },
    createBucket: (name) => createBucket(connection, name),
    removeBucket: (name) => removeBucket(connection, name),
    halt: killGroup,
    async restart() {
      if (stopped) throw new Error('minio: restart after stop');
      await killGroup();
      // The killed MinIO may hold its port a moment longer than its watchdog shell lives (and
      // MinIO listens with SO_REUSEPORT, so a new one could bind beside it): wait until it is free.
      const deadline = Date.now() + 10_000;
      while (!(await canListen(port)) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await launch();
    },
    freeze() {
      if (running?.child.pid) process.kill(-running.child.pid, 'SIGSTOP');
    },
    thaw() {
      if (running?.child.pid) process.kill(-running.child.pid, 'SIGCONT');
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (running?.child.pid) {
        try {
          process.kill(-running.child.pid, 'SIGCONT');
        } catch {
          // Already gone.
        }
      }
      await killGroup();
      liveServers.delete(entry);
      await rm(root, { recursive: true, force: true });
    },
  };
}

/**
 * A MinIO someone else started, from CAIRN_MINIO_ENDPOINT, CAIRN_MINIO_ACCESS_KEY_ID and
 * CAIRN_MINIO_SECRET_ACCESS_KEY (and optionally CAIRN_MINIO_REGION): lets one server serve the
 * suites of several packages. Undefined when they are not set.
 */
export function minioFromEnv(env: NodeJS.ProcessEnv = process.env): MinioConnection | undefined {
  const endpoint = env.CAIRN_MINIO_ENDPOINT;
  const accessKeyId = env.CAIRN_MINIO_ACCESS_KEY_ID;
  const secretAccessKey = env.CAIRN_MINIO_SECRET_ACCESS_KEY;
  if (!endpoint || !accessKeyId || !secretAccessKey) return undefined;
  return { endpoint, accessKeyId, secretAccessKey, region: env.CAIRN_MINIO_REGION || REGION };
}

/** The environment that makes `minioFromEnv` (and so every globalSetup) reuse `connection`. */
export function minioEnv(connection: MinioConnection): Record<string, string> {
  return {
    CAIRN_MINIO_ENDPOINT: connection.endpoint,
    CAIRN_MINIO_ACCESS_KEY_ID: connection.accessKeyId,
    CAIRN_MINIO_SECRET_ACCESS_KEY: connection.secretAccessKey,
    CAIRN_MINIO_REGION: connection.region,
  };
}
