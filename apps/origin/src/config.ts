/**
 * The origin's configuration: one JSON file, then environment variables over it (a container
 * or a CI job changes a value without rewriting the file). Everything has a default, so no
 * file at all is a working single-machine setup.
 *
 * Anything the origin does not know is refused, naming its dotted path: a misspelt
 * `policy.expiry.timestmp` silently falling back to a default would sign metadata that
 * expires when nobody expects it to.
 *
 * Paths in the file are relative to the file's directory, so a config file and its keys can
 * move together; paths in the environment are relative to the working directory, as a shell
 * user expects. The resolved config holds absolute paths only.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { BlobStore } from '@cairn/storage/blob-store';
import { FsBlobStore } from '@cairn/storage/fs-store';
import { S3BlobStore } from '@cairn/storage/s3-store';
import { OriginError } from './errors.js';

export interface ListenConfig {
  readonly host: string;
  /** 0 asks the system for a free port. */
  readonly port: number;
}

export interface FsStorageConfig {
  readonly type: 'fs';
  /** Absolute. */
  readonly directory: string;
}

export interface S3Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface S3StorageConfig {
  readonly type: 's3';
  readonly bucket: string;
  /** Absent for AWS S3. */
  readonly endpoint?: string;
  readonly region: string;
  readonly forcePathStyle: boolean;
  /** Absent: the AWS SDK's own chain (profile, instance role, ...). */
  readonly credentials?: S3Credentials;
}

export type StorageConfig = FsStorageConfig | S3StorageConfig;

/** The origin's online signing keys (absolute paths). */
export interface KeyFiles {
  readonly snapshot: string;
  readonly timestamp: string;
  /** The transparency log's key: it signs the log's checkpoints. */
  readonly log: string;
}

export interface LogSettings {
  /**
   * The log's name: the checkpoint's origin line and the note key's name. `cairn init` puts it
   * in root version 1; from then on the root says what it is. Undefined: `cairn init` derives
   * one from the log key (see defaultLogName).
   */
  readonly name?: string | undefined;
  /**
   * Witnesses asked to cosign each new checkpoint (C2SP tlog-witness): each a submission URL
   * and its cosignature/v1 verifier key. Absent: none.
   */
  readonly witnesses?: readonly { readonly url: string; readonly key: string }[] | undefined;
  /**
   * How many of them must cosign before a checkpoint is published (default 0: each is asked,
   * failures are warnings). The root's own witness_threshold is required on top.
   */
  readonly witnessThreshold?: number | undefined;
}

/** Durations are in milliseconds. */
export interface RepositoryPolicy {
  /** Signatures required on root and on targets. */
  readonly thresholds: { readonly root: number; readonly targets: number };
  /** How long each role's metadata is valid once signed. */
  readonly expiry: {
    readonly root: number;
    readonly targets: number;
    readonly snapshot: number;
    readonly timestamp: number;
  };
  /** Re-sign snapshot and timestamp when less than this is left; always below the expiry. */
  readonly refreshBefore: { readonly snapshot: number; readonly timestamp: number };
  /** Report targets metadata as nearing expiry when less than this is left. */
  readonly targetsWarning: number;
  readonly deltas: {
    /** Deltas from this many earlier versions of each file (0: no deltas). */
    readonly pastVersions: number;
    /** Files larger than this get no deltas. */
    readonly maxFileBytes: number;
  };
  readonly retention: {
    /** Published releases whose files are kept. */
    readonly releases: number;
    /** How long unreferenced blobs survive before garbage collection removes them. */
    readonly graceSeconds: number;
  };
  readonly limits: {
    readonly maxFiles: number;
    readonly maxFileBytes: number;
    readonly maxReleaseBytes: number;
    /** UTF-8 bytes in one target name. */
    readonly maxNameBytes: number;
  };
}

export interface OriginConfig {
  readonly listen: ListenConfig;
  readonly storage: StorageConfig;
  readonly keys: KeyFiles;
  readonly log: LogSettings;
  readonly policy: RepositoryPolicy;
  /** How far a request's time may be from the origin's clock. */
  readonly auth: { readonly windowSeconds: number };
  /** How often scheduled work (timestamp refresh, expiry checks, gc) runs. */
  readonly schedule: { readonly intervalSeconds: number };
}

export type Environment = Readonly<Record<string, string | undefined>>;

export interface ResolveOptions {
  /** What relative paths in the file are relative to: the file's directory. */
  readonly baseDirectory: string;
  readonly env: Environment;
  /** What relative paths in the environment are relative to. Default: the working directory. */
  readonly cwd?: string | undefined;
}

/** The longest duration accepted; far past any sensible expiry and safe to add to a Date. */
const MAX_DURATION_DAYS = 36_500;

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * `90d` → 7 776 000 000. Whole numbers of seconds, minutes, hours or days only: fractions and
 * compound forms (`1d12h`) are easy to misread in a file that decides when signatures expire.
 */
export function parseDuration(text: unknown, where: string): number {
  const match = typeof text === 'string' ? /^([1-9][0-9]{0,9})([smhd])$/.exec(text) : null;
  if (!match) {
    fail(
      where,
      `expected a duration like "90d" or "12h" (a whole number of s, m, h or d), received ${received(text)}`,
    );
  }
  const [, amount = '', unit = 's'] = match;
  const ms = Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  if (ms > MAX_DURATION_DAYS * UNIT_MS.d) {
    fail(where, `${String(text)} is longer than ${MAX_DURATION_DAYS}d`);
  }
  return ms;
}

/** The shortest exact spelling: 86 400 000 → `1d`, 90 000 → `90s`. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return `${ms}ms`;
}

/** One object of the file: its fields, checked for unknown names as soon as it is opened. */
class Section {
  readonly #values: Readonly<Record<string, unknown>>;
  readonly #path: string;

  constructor(value: unknown, path: string, fields: readonly string[]) {
    this.#path = path;
    if (value === undefined) {
      this.#values = {};
      return;
    }
    if (!isPlainObject(value)) {
      fail(path === '' ? '(top level)' : path, `expected an object, received ${received(value)}`);
    }
    for (const name of Object.keys(value)) {
      if (!fields.includes(name)) fail(this.at(name), 'unknown field');
    }
    this.#values = value;
  }

  at(name: string): string {
    return this.#path === '' ? name : `${this.#path}.${name}`;
  }

  section(name: string, fields: readonly string[]): Section {
    return new Section(this.#values[name], this.at(name), fields);
  }

  /** A field of a child section, before that section is opened (to choose its fields). */
  peek(child: string, name: string): unknown {
    const value = this.#values[child];
    return isPlainObject(value) ? value[name] : undefined;
  }

  /** A non-empty string; `fallback` undefined makes the field required. */
  text(name: string, fallback: string | undefined): string {
    const value = this.optionalText(name) ?? fallback;
    if (value === undefined) fail(this.at(name), 'is required');
    return value;
  }

  optionalText(name: string, options: { secret?: boolean } = {}): string | undefined {
    const value = this.#values[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || value === '') {
      fail(
        this.at(name),
        `expected a non-empty string, received ${value === '' ? 'an empty string' : received(value, options.secret)}`,
      );
    }
    return value;
  }

  url(name: string): string | undefined {
    const value = this.optionalText(name);
    return value === undefined ? undefined : checkUrl(value, this.at(name));
  }

  integer(name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const value = this.#values[name];
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
      const range =
        max !== Number.MAX_SAFE_INTEGER
          ? `an integer from ${min} to ${max}`
          : min === 1
            ? 'a positive integer'
            : `an integer of at least ${min}`;
      fail(this.at(name), `expected ${range}, received ${received(value)}`);
    }
    return value;
  }

  boolean(name: string, fallback: boolean): boolean {
    const value = this.#values[name];
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') {
      fail(this.at(name), `expected true or false, received ${received(value)}`);
    }
    return value;
  }

  duration(name: string, fallback: string): number {
    const value = this.#values[name];
    return parseDuration(value === undefined ? fallback : value, this.at(name));
  }

  /** The sections of an array of objects, each checked for unknown fields; [] when absent. */
  sections(name: string, fields: readonly string[]): Section[] {
    const value = this.#values[name];
    if (value === undefined) return [];
    if (!Array.isArray(value))
      fail(this.at(name), `expected an array, received ${received(value)}`);
    return value.map((item, i) => new Section(item, `${this.at(name)}[${String(i)}]`, fields));
  }

  has(name: string): boolean {
    return this.#values[name] !== undefined;
  }
}

/** The file form of the defaults: what an empty file means. */
const DEFAULTS = {
  host: '127.0.0.1',
  port: 8700,
  storageDirectory: './repository',
  region: 'us-east-1',
  snapshotKey: 'keys/snapshot.key',
  timestampKey: 'keys/timestamp.key',
  logKey: 'keys/log.key',
  windowSeconds: 300,
  intervalSeconds: 60,
} as const;

function readPolicy(policy: Section): RepositoryPolicy {
  const thresholds = policy.section('thresholds', ['root', 'targets']);
  const expiry = policy.section('expiry', ['root', 'targets', 'snapshot', 'timestamp']);
  const refreshBefore = policy.section('refreshBefore', ['snapshot', 'timestamp']);
  const deltas = policy.section('deltas', ['pastVersions', 'maxFileBytes']);
  const retention = policy.section('retention', ['releases', 'graceSeconds']);
  const limits = policy.section('limits', [
    'maxFiles',
    'maxFileBytes',
    'maxReleaseBytes',
    'maxNameBytes',
  ]);
  const read: RepositoryPolicy = {
    thresholds: {
      root: thresholds.integer('root', 2, 1),
      targets: thresholds.integer('targets', 2, 1),
    },
    expiry: {
      root: expiry.duration('root', '365d'),
      targets: expiry.duration('targets', '90d'),
      snapshot: expiry.duration('snapshot', '7d'),
      timestamp: expiry.duration('timestamp', '1d'),
    },
    refreshBefore: {
      snapshot: refreshBefore.duration('snapshot', '3d'),
      timestamp: refreshBefore.duration('timestamp', '12h'),
    },
    targetsWarning: policy.duration('targetsWarning', '14d'),
    deltas: {
      pastVersions: deltas.integer('pastVersions', 3, 0, 10),
      maxFileBytes: deltas.integer('maxFileBytes', 1024 ** 3, 1),
    },
    retention: {
      releases: retention.integer('releases', 10, 1),
      graceSeconds: retention.integer('graceSeconds', 3600, 0),
    },
    limits: {
      maxFiles: limits.integer('maxFiles', 1000, 1),
      maxFileBytes: limits.integer('maxFileBytes', 4 * 1024 ** 3, 1),
      maxReleaseBytes: limits.integer('maxReleaseBytes', 16 * 1024 ** 3, 1),
      maxNameBytes: limits.integer('maxNameBytes', 255, 1),
    },
  };
  // Refreshing no earlier than expiry would let the metadata lapse before it is re-signed.
  for (const role of ['snapshot', 'timestamp'] as const) {
    if (read.refreshBefore[role] >= read.expiry[role]) {
      fail(
        refreshBefore.at(role),
        `${formatDuration(read.refreshBefore[role])}${refreshBefore.has(role) ? '' : ' (the default)'} must be shorter than ${expiry.at(role)} (${formatDuration(read.expiry[role])})`,
      );
    }
  }
  return read;
}

export const DEFAULT_POLICY: RepositoryPolicy = deepFreeze(
  readPolicy(new Section(undefined, 'policy', [])),
);

export function resolveConfig(fileJson: unknown, options: ResolveOptions): OriginConfig {
  const base = resolve(options.baseDirectory);
  const cwd = resolve(options.cwd ?? process.cwd());
  const env = (name: string): string | undefined => {
    const value = options.env[name];
    // `NAME= command` is how a shell user unsets a variable for one command.
    return value === undefined || value === '' ? undefined : value;
  };

  const root = new Section(fileJson, '', [
    'listen',
    'storage',
    'keys',
    'log',
    'policy',
    'auth',
    'schedule',
  ]);
  // The whole file is checked even where the environment overrides it: a wrong file is
  // wrong whatever today's environment happens to hide.
  const listenSection = root.section('listen', ['host', 'port']);
  const fileListen = {
    host: listenSection.text('host', DEFAULTS.host),
    port: listenSection.integer('port', DEFAULTS.port, 0, 65535),
  };
  const listen: ListenConfig = {
    host: env('CAIRN_LISTEN_HOST') ?? fileListen.host,
    port: envPort(env('CAIRN_LISTEN_PORT')) ?? fileListen.port,
  };

  const storage = applyStorageEnv(readFileStorage(root, base), cwd, env);

  const keysSection = root.section('keys', ['snapshot', 'timestamp', 'log']);
  const keyPath = (name: keyof KeyFiles, envName: string, fallback: string): string => {
    const fromFile = resolve(base, keysSection.text(name, fallback));
    const fromEnv = env(envName);
    return fromEnv === undefined ? fromFile : resolve(cwd, fromEnv);
  };
  const keys: KeyFiles = {
    snapshot: keyPath('snapshot', 'CAIRN_SNAPSHOT_KEY', DEFAULTS.snapshotKey),
    timestamp: keyPath('timestamp', 'CAIRN_TIMESTAMP_KEY', DEFAULTS.timestampKey),
    log: keyPath('log', 'CAIRN_LOG_KEY', DEFAULTS.logKey),
  };
  const logSection = root.section('log', ['name', 'witnesses', 'witnessThreshold']);
  const fileLogName = logSection.optionalText('name');
  const witnesses = logSection.sections('witnesses', ['url', 'key']).map((w) => {
    const url = w.url('url');
    if (url === undefined) fail(w.at('url'), 'is required');
    const key = w.text('key', undefined);
    if (!WITNESS_KEY.test(key)) {
      fail(
        w.at('key'),
        `expected a witness verifier key like "witness.example/w1+1a2b3c4d+BF…" (what cairn witness keygen printed), received ${received(key)}`,
      );
    }
    return { url, key };
  });
  if (new Set(witnesses.map((w) => w.key)).size !== witnesses.length) {
    fail(logSection.at('witnesses'), 'names one witness key twice');
  }
  const witnessThreshold = logSection.integer('witnessThreshold', 0, 0, witnesses.length);
  if (fileLogName !== undefined) checkLogName(fileLogName, logSection.at('name'));
  const envLogName = env('CAIRN_LOG_NAME');
  if (envLogName !== undefined) checkLogName(envLogName, 'CAIRN_LOG_NAME');
  const logName = envLogName ?? fileLogName;

  const policy = readPolicy(
    root.section('policy', [
      'thresholds',
      'expiry',
      'refreshBefore',
      'targetsWarning',
      'deltas',
      'retention',
      'limits',
    ]),
  );
  const auth = root.section('auth', ['windowSeconds']);
  const schedule = root.section('schedule', ['intervalSeconds']);

  return deepFreeze({
    listen,
    storage,
    keys,
    log: {
      ...(logName === undefined ? {} : { name: logName }),
      ...(witnesses.length === 0 ? {} : { witnesses }),
      ...(witnessThreshold === 0 ? {} : { witnessThreshold }),
    },
    policy,
    auth: { windowSeconds: auth.integer('windowSeconds', DEFAULTS.windowSeconds, 1) },
    schedule: {
      intervalSeconds: schedule.integer('intervalSeconds', DEFAULTS.intervalSeconds, 1),
    },
  });
}

/**
 * A log name is a C2SP signed-note key name and checkpoint origin line: printable, no spaces,
 * no `+`. Kept to URL-like characters so it reads as the schema-less URL C2SP recommends.
 */
const LOG_NAME = /^[A-Za-z0-9][A-Za-z0-9._~:/-]{0,254}$/;

function checkLogName(name: string, where: string): void {
  if (!LOG_NAME.test(name)) {
    fail(
      where,
      `expected a log name like "cairn.example.com/log" (letters, digits and . _ ~ : / -, at most 255), received ${received(name)}`,
    );
  }
}

/** A C2SP verifier key: name+8 hex+base64; the key itself is checked when the origin starts. */
const WITNESS_KEY = /^[^+\s]+\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*$/;

/** The log name `cairn init` uses when the configuration gives none: unique to the log key. */
export function defaultLogName(logKeyId: string): string {
  return `cairn/${logKeyId.slice(0, 16)}/log`;
}

function envPort(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const port = /^[0-9]{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(port <= 65535)) {
    fail('CAIRN_LISTEN_PORT', `expected an integer from 0 to 65535, received "${value}"`);
  }
  return port;
}

/** The file's storage, before the environment: an S3 bucket may still come from CAIRN_S3_BUCKET. */
type FileStorage =
  FsStorageConfig | (Omit<S3StorageConfig, 'bucket'> & { readonly bucket?: string });

function readFileStorage(root: Section, base: string): FileStorage {
  const type = root.peek('storage', 'type');
  if (type === undefined || type === 'fs') {
    const section = root.section('storage', ['type', 'directory']);
    return {
      type: 'fs',
      directory: resolve(base, section.text('directory', DEFAULTS.storageDirectory)),
    };
  }
  if (type !== 's3') fail('storage.type', `expected "fs" or "s3", received ${received(type)}`);
  const section = root.section('storage', [
    'type',
    'bucket',
    'endpoint',
    'region',
    'forcePathStyle',
    'accessKeyId',
    'secretAccessKey',
  ]);
  const bucket = section.optionalText('bucket');
  const endpoint = section.url('endpoint');
  const accessKeyId = section.optionalText('accessKeyId');
  const secretAccessKey = section.optionalText('secretAccessKey', { secret: true });
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    fail(
      section.at(accessKeyId === undefined ? 'accessKeyId' : 'secretAccessKey'),
      'is required with the other: give both accessKeyId and secretAccessKey, or neither',
    );
  }
  return {
    type: 's3',
    ...(bucket === undefined ? {} : { bucket }),
    ...(endpoint === undefined ? {} : { endpoint }),
    region: section.text('region', DEFAULTS.region),
    forcePathStyle: section.boolean('forcePathStyle', true),
    ...(accessKeyId === undefined || secretAccessKey === undefined
      ? {}
      : { credentials: { accessKeyId, secretAccessKey } }),
  };
}

function applyStorageEnv(
  file: FileStorage,
  cwd: string,
  env: (name: string) => string | undefined,
): StorageConfig {
  const directory = env('CAIRN_STORAGE_DIR');
  const bucket = env('CAIRN_S3_BUCKET');
  if (directory !== undefined && bucket !== undefined) {
    fail('CAIRN_STORAGE_DIR', 'and CAIRN_S3_BUCKET are both set: choose one storage');
  }
  if (directory !== undefined) return { type: 'fs', directory: resolve(cwd, directory) };

  let storage: FileStorage = file;
  if (bucket !== undefined) {
    storage =
      file.type === 's3'
        ? { ...file, bucket }
        : { type: 's3', bucket, region: DEFAULTS.region, forcePathStyle: true };
  }
  if (storage.type === 'fs') {
    // An S3 setting with filesystem storage is a half-done switch to S3, not something to ignore.
    for (const name of ['CAIRN_S3_ENDPOINT', 'CAIRN_S3_REGION']) {
      if (env(name) !== undefined) {
        fail(
          name,
          'is set, but storage is the filesystem: set CAIRN_S3_BUCKET, or storage.type "s3"',
        );
      }
    }
    return storage;
  }
  if (storage.bucket === undefined) fail('storage.bucket', 'is required (or set CAIRN_S3_BUCKET)');

  const endpoint = env('CAIRN_S3_ENDPOINT');
  const region = env('CAIRN_S3_REGION');
  // AWS_* may be set for other tools, so they count only as a pair; the SDK would use them too.
  const accessKeyId = env('AWS_ACCESS_KEY_ID');
  const secretAccessKey = env('AWS_SECRET_ACCESS_KEY');
  const sessionToken = env('AWS_SESSION_TOKEN');
  return {
    ...storage,
    bucket: storage.bucket,
    ...(endpoint === undefined ? {} : { endpoint: checkUrl(endpoint, 'CAIRN_S3_ENDPOINT') }),
    ...(region === undefined ? {} : { region }),
    ...(accessKeyId === undefined || secretAccessKey === undefined
      ? {}
      : {
          credentials: {
            accessKeyId,
            secretAccessKey,
            ...(sessionToken === undefined ? {} : { sessionToken }),
          },
        }),
  };
}

/**
 * Reads the file (absent: defaults, relative to the working directory) and applies the
 * environment. Rejects with CONFIG_INVALID naming the file, the field or the variable.
 */
export async function loadConfig(
  path: string | undefined,
  env: Environment = process.env,
): Promise<OriginConfig> {
  if (path === undefined) return resolveConfig(undefined, { baseDirectory: process.cwd(), env });
  const absolute = resolve(path);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException | undefined)?.code;
    fail(path, code === 'ENOENT' ? 'no such file' : `cannot be read (${code ?? String(e)})`, e);
  }
  // Editors on some systems start UTF-8 files with a byte-order mark, which JSON.parse refuses.
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(path, `not JSON: ${describeSyntaxError(text)}`, e);
  }
  return resolveConfig(json, { baseDirectory: dirname(absolute), env });
}

export function openStore(storage: StorageConfig): BlobStore {
  switch (storage.type) {
    case 'fs':
      return new FsBlobStore(storage.directory);
    case 's3':
      return new S3BlobStore({
        bucket: storage.bucket,
        endpoint: storage.endpoint,
        region: storage.region,
        forcePathStyle: storage.forcePathStyle,
        credentials: storage.credentials,
      });
  }
}

/** The config as a JSON-ready object for logs: secrets masked, durations spelled as in the file. */
export function describeConfig(config: OriginConfig): Record<string, unknown> {
  const { storage, policy } = config;
  const described =
    storage.type === 's3' && storage.credentials
      ? {
          ...storage,
          credentials: {
            accessKeyId: storage.credentials.accessKeyId,
            secretAccessKey: '***',
            ...(storage.credentials.sessionToken === undefined ? {} : { sessionToken: '***' }),
          },
        }
      : storage;
  const durations = <K extends string>(values: Readonly<Record<K, number>>): Record<K, string> =>
    Object.fromEntries(
      Object.entries<number>(values).map(([role, ms]) => [role, formatDuration(ms)]),
    ) as Record<K, string>;
  return {
    listen: config.listen,
    storage: described,
    keys: config.keys,
    log: config.log,
    policy: {
      ...policy,
      expiry: durations(policy.expiry),
      refreshBefore: durations(policy.refreshBefore),
      targetsWarning: formatDuration(policy.targetsWarning),
    },
    auth: config.auth,
    schedule: config.schedule,
  };
}

function fail(path: string, problem: string, cause?: unknown): never {
  throw new OriginError(
    'CONFIG_INVALID',
    `${path}: ${problem}`,
    cause === undefined ? undefined : { cause },
  );
}

/** What a wrong value was, short enough for one line; a secret's value is never shown. */
function received(value: unknown, secret = false): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (secret) return `a ${typeof value}`;
  if (typeof value === 'string') {
    return `string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  }
  if (typeof value === 'number' || typeof value === 'boolean') {
    return `${typeof value} ${String(value)}`;
  }
  return typeof value;
}

function checkUrl(value: string, where: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== 'http:' && url?.protocol !== 'https:') {
    fail(where, `expected an http or https URL, received ${received(value)}`);
  }
  return value;
}

function isPlainObject(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * Where and why JSON.parse gave up, found again by a strict scan: V8's messages do not always
 * give a position, and some quote the input around the error, which may be a secret.
 */
function describeSyntaxError(text: string): string {
  const found = findSyntaxError(text);
  if (found === undefined) return 'the file is not valid JSON';
  const before = text.slice(0, found.offset);
  const line = before.split('\n').length;
  const column = found.offset - before.lastIndexOf('\n');
  return `${found.reason} at line ${line}, column ${column}`;
}

class JsonSyntaxError extends Error {
  override readonly name = 'JsonSyntaxError';

  constructor(
    readonly offset: number,
    readonly reason: string,
  ) {
    super(reason);
  }
}

function findSyntaxError(text: string): JsonSyntaxError | undefined {
  let i = 0;
  const fail = (expected: string): never => {
    const c = text[i];
    throw new JsonSyntaxError(
      i,
      c === undefined
        ? `unexpected end of file, expected ${expected}`
        : `expected ${expected}, found ${JSON.stringify(c)}`,
    );
  };
  const space = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i] ?? '')) i++;
  };
  const string = (): void => {
    i++; // the opening quote
    for (;;) {
      const c = text[i];
      if (c === undefined) fail('the end of the string');
      if (c === '"') {
        i++;
        return;
      }
      if (c === '\\') {
        const escape = text[i + 1] ?? '';
        if (escape === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6;
        else if ('"\\/bfnrt'.includes(escape) && escape !== '') i += 2;
        else {
          i++;
          fail('an escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)');
        }
      } else if (c !== undefined && c < ' ') {
        fail('no control characters in a string');
      } else {
        i++;
      }
    }
  };
  const value = (): void => {
    space();
    const c = text[i];
    if (c === '{') {
      i++;
      space();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        space();
        if (text[i] !== '"') fail('a property name in double quotes');
        string();
        space();
        if (text[i] !== ':') fail("':'");
        i++;
        value();
        space();
        if (text[i] === '}') {
          i++;
          return;
        }
        if (text[i] !== ',') fail("',' or '}'");
        i++;
      }
    }
    if (c === '[') {
      i++;
      space();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        space();
        if (text[i] === ']') {
          i++;
          return;
        }
        if (text[i] !== ',') fail("',' or ']'");
        i++;
      }
    }
    if (c === '"') return string();
    const number = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    number.lastIndex = i;
    if (number.test(text)) {
      i = number.lastIndex;
      return;
    }
    for (const literal of ['true', 'false', 'null']) {
      if (text.startsWith(literal, i)) {
        i += literal.length;
        return;
      }
    }
    fail('a value');
  };
  try {
    value();
    space();
    if (i < text.length) fail('the end of the file after the value');
    return undefined;
  } catch (e) {
    if (e instanceof JsonSyntaxError) return e;
    throw e;
  }
}
