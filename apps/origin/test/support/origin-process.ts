/**
 * The origin as the operator runs it: `node dist/main.js --config FILE` in a child process,
 * over a real bucket. `prepareOriginHome` writes the config and the encrypted online and log key files
 * into a temporary directory; `spawnOrigin` starts the binary, waits for its "listening" line
 * and can SIGKILL it or stop it with SIGTERM. Run `npm run build` first: this runs dist/.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BlobStore } from '@cairn/storage/blob-store';
import { S3BlobStore, type S3BlobStoreOptions } from '@cairn/storage/s3-store';
import type { MinioConnection } from '@cairn/storage/testing/minio';
import { webHashPort } from '@cairn/verify/hash';
import { Updater } from '@cairn/verify/updater';
import type { PublicationStep } from '../../src/context.js';
import { MIN_SCRYPT_N, writeKeyFile } from '../../src/key-file.js';
import { RootChain } from '../../src/repository.js';
import { memoryMetadataStore, storeFetcher, type TestKeys } from './origin-fixture.js';

export const ORIGIN_MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

const PASSPHRASE = 'crash-safety tests only';

export interface OriginHome {
  readonly directory: string;
  readonly configPath: string;
  readonly bucket: string;
  remove(): Promise<void>;
}

export interface OriginHomeOptions {
  readonly connection: MinioConnection;
  readonly bucket: string;
  readonly keys: TestKeys;
  /** How often scheduled work runs; it always runs once at start. Default: an hour (start only). */
  readonly intervalSeconds?: number;
  /** `policy` as it is spelt in the config file. */
  readonly policy?: Record<string, unknown>;
}

/** A directory with `config.json` (S3 storage on `bucket`), the two online key files and the log's. */
export async function prepareOriginHome(options: OriginHomeOptions): Promise<OriginHome> {
  const directory = await mkdtemp(join(tmpdir(), 'cairn-origin-home-'));
  await mkdir(join(directory, 'keys'));
  // The smallest scrypt cost the format allows: each start decrypts both files.
  await writeKeyFile(join(directory, 'keys/snapshot.key'), options.keys.snapshot, PASSPHRASE, {
    scryptN: MIN_SCRYPT_N,
  });
  await writeKeyFile(join(directory, 'keys/timestamp.key'), options.keys.timestamp, PASSPHRASE, {
    scryptN: MIN_SCRYPT_N,
  });
  await writeKeyFile(join(directory, 'keys/log.key'), options.keys.log, PASSPHRASE, {
    scryptN: MIN_SCRYPT_N,
  });
  const { connection } = options;
  const config = {
    listen: { host: '127.0.0.1', port: 0 },
    storage: {
      type: 's3',
      bucket: options.bucket,
      endpoint: connection.endpoint,
      region: connection.region,
      forcePathStyle: true,
      accessKeyId: connection.accessKeyId,
      secretAccessKey: connection.secretAccessKey,
    },
    keys: { snapshot: 'keys/snapshot.key', timestamp: 'keys/timestamp.key', log: 'keys/log.key' },
    schedule: { intervalSeconds: options.intervalSeconds ?? 3600 },
    ...(options.policy === undefined ? {} : { policy: options.policy }),
  };
  const configPath = join(directory, 'config.json');
  await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);
  return {
    directory,
    configPath,
    bucket: options.bucket,
    remove: () => rm(directory, { recursive: true, force: true }),
  };
}

export interface LogLine {
  readonly msg?: string;
  readonly level?: string;
  readonly [field: string]: unknown;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface OriginProcess {
  readonly url: string;
  readonly pid: number;
  /** Every line the process wrote to stderr so far, parsed when it is JSON. */
  readonly logs: LogLine[];
  /** Raw stderr lines (for failure messages). */
  readonly output: string[];
  /** Resolves when the process has exited, however it ended. */
  readonly exited: Promise<Exit>;
  /** SIGKILL: the process dies wherever it is; resolves once it is gone. */
  kill(): Promise<Exit>;
  /** SIGTERM, and waits for the exit (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<Exit>;
}

export interface SpawnOptions {
  /** CAIRN_TEST_CRASH_AT: SIGKILL itself right after this publication step. */
  readonly crashAt?: { readonly step: PublicationStep; readonly snapshotVersion?: number };
  /** How long to wait for the "listening" line. Default 20 s. */
  readonly startTimeoutMs?: number;
}

/** The parent's environment without anything that would override the config file. */
function childEnvironment(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith('CAIRN_') || name.startsWith('AWS_')) continue;
    env[name] = value;
  }
  return { ...env, ...extra };
}

export async function spawnOrigin(
  home: OriginHome,
  options: SpawnOptions = {},
): Promise<OriginProcess> {
  if (!existsSync(ORIGIN_MAIN)) {
    throw new Error(`${ORIGIN_MAIN} is missing: run \`npm run build\` in apps/origin first`);
  }
  const extra: Record<string, string> = { CAIRN_ONLINE_PASSPHRASE: PASSPHRASE };
  if (options.crashAt !== undefined) {
    const { step, snapshotVersion } = options.crashAt;
    extra.CAIRN_TEST_CRASH_AT = snapshotVersion === undefined ? step : `${step}:${snapshotVersion}`;
  }
  const child = spawn(process.execPath, [ORIGIN_MAIN, '--config', home.configPath], {
    env: childEnvironment(extra),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${ORIGIN_MAIN}`);
  const logs: LogLine[] = [];
  const output: string[] = [];
  let listening: ((url: string) => void) | undefined;
  const url = new Promise<string>((resolve) => (listening = resolve));
  let partial = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line === '') continue;
      output.push(line);
      let parsed: LogLine;
      try {
        parsed = JSON.parse(line) as LogLine;
      } catch {
        parsed = { msg: line };
      }
      logs.push(parsed);
      if (parsed.msg === 'listening' && typeof parsed.url === 'string') listening?.(parsed.url);
    }
  });
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  let timer: NodeJS.Timeout | undefined;
  const started = await Promise.race([
    url.then((u) => ({ url: u })),
    exited.then((exit) => ({ exit })),
    new Promise<{ timeout: true }>((resolve) => {
      timer = setTimeout(() => resolve({ timeout: true }), startTimeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (!('url' in started)) {
    if ('timeout' in started) child.kill('SIGKILL');
    await exited;
    throw new Error(
      `cairn-origin did not start (${'exit' in started ? `exited ${JSON.stringify(started.exit)}` : `no "listening" within ${startTimeoutMs} ms`}):\n${output.join('\n')}`,
    );
  }
  const kill = async (): Promise<Exit> => {
    child.kill('SIGKILL');
    return exited;
  };
  return {
    url: started.url,
    pid,
    logs,
    output,
    exited,
    kill,
    async stop(graceMs = 10_000): Promise<Exit> {
      child.kill('SIGTERM');
      const timeout = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timeout);
      }
    },
  };
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 15_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: string | undefined;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
      last = undefined;
    } catch (error) {
      last = error instanceof Error ? error.message : JSON.stringify(error);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${what}: not within ${timeoutMs} ms${last === undefined ? '' : ` (last error: ${last})`}`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** An S3BlobStore on `bucket` of `connection`, as the origin's own config would open it. */
export function bucketStore(
  connection: MinioConnection,
  bucket: string,
  extra: Partial<S3BlobStoreOptions> = {},
): S3BlobStore {
  return new S3BlobStore({
    bucket,
    endpoint: connection.endpoint,
    region: connection.region,
    forcePathStyle: true,
    credentials: {
      accessKeyId: connection.accessKeyId,
      secretAccessKey: connection.secretAccessKey,
    },
    ...extra,
  });
}

/** Every key under `prefix`, in key order. */
export async function keysUnder(store: BlobStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list({ prefix, cursor });
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.cursor;
  } while (cursor !== undefined);
  return keys;
}

/** The versions a client would trust: timestamp, snapshot, targets. */
export interface SeenVersions {
  readonly timestamp: number;
  readonly snapshot: number;
  readonly targets: number;
}

/**
 * A TUF client (our verify core) that keeps its trusted metadata between refreshes, as an
 * installed client does: a rollback or a fork between two refreshes makes `refresh` throw.
 */
export class FollowingClient {
  readonly #updater: Updater;
  readonly seen: SeenVersions[] = [];

  private constructor(updater: Updater) {
    this.#updater = updater;
  }

  static async on(store: BlobStore): Promise<FollowingClient> {
    const root = (await new RootChain(store).get(1))?.toBytes();
    if (root === undefined) throw new Error('no metadata/1.root.json in the store');
    return new FollowingClient(
      new Updater({
        metadataBaseUrl: 'http://store/metadata/',
        targetBaseUrl: 'http://store/targets/',
        fetcher: storeFetcher(store),
        store: memoryMetadataStore(root),
        hash: webHashPort,
        prefixTargetsWithHash: true,
      }),
    );
  }

  async refresh(): Promise<SeenVersions> {
    await this.#updater.refresh();
    const trusted = this.#updater.trusted;
    const timestamp = trusted?.timestamp?.signed.version;
    const snapshot = trusted?.snapshot?.signed.version;
    const targets = trusted?.targets?.signed.version;
    if (timestamp === undefined || snapshot === undefined || targets === undefined) {
      throw new Error('refresh left the client without timestamp, snapshot or targets');
    }
    const seen = { timestamp, snapshot, targets };
    this.seen.push(seen);
    return seen;
  }
}
