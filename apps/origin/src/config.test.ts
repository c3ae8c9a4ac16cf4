import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsBlobStore } from '@cairn/storage/fs-store';
import { S3BlobStore } from '@cairn/storage/s3-store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_POLICY,
  defaultLogName,
  describeConfig,
  formatDuration,
  loadConfig,
  openStore,
  parseDuration,
  resolveConfig,
  type Environment,
  type OriginConfig,
} from './config.js';
import { OriginError } from './errors.js';

const BASE = '/etc/cairn';
const CWD = '/srv/work';
const DAY = 86_400_000;
const HOUR = 3_600_000;

function resolveWith(file: unknown, env: Environment = {}): OriginConfig {
  return resolveConfig(file, { baseDirectory: BASE, env, cwd: CWD });
}

/** The CONFIG_INVALID message `act` fails with. */
function configError(act: () => unknown): string {
  try {
    act();
  } catch (e) {
    if (e instanceof OriginError && e.code === 'CONFIG_INVALID') return e.message;
    throw e;
  }
  throw new Error('expected CONFIG_INVALID');
}

async function configRejection(promise: Promise<unknown>): Promise<OriginError> {
  try {
    await promise;
  } catch (e) {
    if (e instanceof OriginError && e.code === 'CONFIG_INVALID') return e;
    throw e;
  }
  throw new Error('expected CONFIG_INVALID');
}

const EXPECTED_DEFAULT_POLICY = {
  thresholds: { root: 2, targets: 2 },
  expiry: { root: 365 * DAY, targets: 90 * DAY, snapshot: 7 * DAY, timestamp: DAY },
  refreshBefore: { snapshot: 3 * DAY, timestamp: 12 * HOUR },
  targetsWarning: 14 * DAY,
  deltas: { pastVersions: 3, maxFileBytes: 1073741824 },
  retention: { releases: 10, graceSeconds: 3600 },
  limits: {
    maxFiles: 1000,
    maxFileBytes: 4294967296,
    maxReleaseBytes: 17179869184,
    maxNameBytes: 255,
  },
};

describe('resolveConfig', () => {
  it('gives every default for no file and an empty environment', () => {
    const config = resolveWith(undefined);
    expect(config).toEqual({
      listen: { host: '127.0.0.1', port: 8700 },
      storage: { type: 'fs', directory: '/etc/cairn/repository' },
      keys: {
        snapshot: '/etc/cairn/keys/snapshot.key',
        timestamp: '/etc/cairn/keys/timestamp.key',
        log: '/etc/cairn/keys/log.key',
      },
      log: {},
      policy: EXPECTED_DEFAULT_POLICY,
      auth: { windowSeconds: 300 },
      schedule: { intervalSeconds: 60 },
    });
    expect(resolveWith({})).toEqual(config);
    expect(DEFAULT_POLICY).toEqual(EXPECTED_DEFAULT_POLICY);
  });

  it('reads every field of a full file', () => {
    const config = resolveWith({
      listen: { host: '0.0.0.0', port: 0 },
      storage: {
        type: 's3',
        bucket: 'releases',
        endpoint: 'http://127.0.0.1:9000',
        region: 'auto',
        forcePathStyle: false,
        accessKeyId: 'AKIA1',
        secretAccessKey: 'file-secret',
      },
      keys: { snapshot: '/keys/s.key', timestamp: '../t.key', log: 'l.key' },
      log: { name: 'cairn.example.com/releases/log' },
      policy: {
        thresholds: { root: 3, targets: 1 },
        expiry: { root: '730d', targets: '30d', snapshot: '2d', timestamp: '6h' },
        refreshBefore: { snapshot: '1d', timestamp: '90m' },
        targetsWarning: '7d',
        deltas: { pastVersions: 0, maxFileBytes: 1000 },
        retention: { releases: 1, graceSeconds: 0 },
        limits: { maxFiles: 5, maxFileBytes: 10, maxReleaseBytes: 20, maxNameBytes: 64 },
      },
      auth: { windowSeconds: 30 },
      schedule: { intervalSeconds: 5 },
    });
    expect(config).toEqual({
      listen: { host: '0.0.0.0', port: 0 },
      storage: {
        type: 's3',
        bucket: 'releases',
        endpoint: 'http://127.0.0.1:9000',
        region: 'auto',
        forcePathStyle: false,
        credentials: { accessKeyId: 'AKIA1', secretAccessKey: 'file-secret' },
      },
      keys: { snapshot: '/keys/s.key', timestamp: '/etc/t.key', log: '/etc/cairn/l.key' },
      log: { name: 'cairn.example.com/releases/log' },
      policy: {
        thresholds: { root: 3, targets: 1 },
        expiry: { root: 730 * DAY, targets: 30 * DAY, snapshot: 2 * DAY, timestamp: 6 * HOUR },
        refreshBefore: { snapshot: DAY, timestamp: 90 * 60_000 },
        targetsWarning: 7 * DAY,
        deltas: { pastVersions: 0, maxFileBytes: 1000 },
        retention: { releases: 1, graceSeconds: 0 },
        limits: { maxFiles: 5, maxFileBytes: 10, maxReleaseBytes: 20, maxNameBytes: 64 },
      },
      auth: { windowSeconds: 30 },
      schedule: { intervalSeconds: 5 },
    });
  });

  it('gives S3 defaults for what the file leaves out', () => {
    expect(resolveWith({ storage: { type: 's3', bucket: 'b' } }).storage).toEqual({
      type: 's3',
      bucket: 'b',
      region: 'us-east-1',
      forcePathStyle: true,
    });
  });

  it('resolves file paths against the config directory', () => {
    const config = resolveWith({
      storage: { directory: 'data/repo' },
      keys: { snapshot: 'k/s.key', timestamp: '/abs/t.key', log: 'k/l.key' },
    });
    expect(config.storage).toEqual({ type: 'fs', directory: '/etc/cairn/data/repo' });
    expect(config.keys).toEqual({
      snapshot: '/etc/cairn/k/s.key',
      timestamp: '/abs/t.key',
      log: '/etc/cairn/k/l.key',
    });
  });

  it('freezes the resolved config', () => {
    const config = resolveWith(undefined);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.policy.expiry)).toBe(true);
    expect(Object.isFrozen(DEFAULT_POLICY.limits)).toBe(true);
  });

  describe('environment', () => {
    it('overrides listen and key paths, relative to the working directory', () => {
      const config = resolveWith(
        { listen: { host: 'file-host', port: 1 }, keys: { snapshot: 'a', timestamp: 'b' } },
        {
          CAIRN_LISTEN_HOST: '::',
          CAIRN_LISTEN_PORT: '9000',
          CAIRN_SNAPSHOT_KEY: 'env/s.key',
          CAIRN_TIMESTAMP_KEY: '/run/secrets/t.key',
          CAIRN_LOG_KEY: 'env/l.key',
        },
      );
      expect(config.listen).toEqual({ host: '::', port: 9000 });
      expect(config.keys).toEqual({
        snapshot: '/srv/work/env/s.key',
        timestamp: '/run/secrets/t.key',
        log: '/srv/work/env/l.key',
      });
    });

    it('derives the default log name from the log keyid', () => {
      expect(defaultLogName('0123456789abcdef'.repeat(4))).toBe('cairn/0123456789abcdef/log');
    });

    it('takes the log name from CAIRN_LOG_NAME over the file, and checks both', () => {
      expect(
        resolveWith({ log: { name: 'file.example/log' } }, { CAIRN_LOG_NAME: 'env.example/log' })
          .log,
      ).toEqual({ name: 'env.example/log' });
      expect(resolveWith({ log: { name: 'file.example/log' } }).log).toEqual({
        name: 'file.example/log',
      });
      for (const [file, env, message] of [
        [{ name: 'has space' }, undefined, 'log.name: expected a log name like'],
        [{ name: 'a+b' }, undefined, 'log.name: expected a log name like'],
        [{ name: 'ok/log' }, '/leading-slash', 'CAIRN_LOG_NAME: expected a log name like'],
        [{ nme: 'x' }, undefined, 'log.nme: unknown field'],
      ] as const) {
        expect(
          configError(() =>
            resolveWith({ log: file }, env === undefined ? {} : { CAIRN_LOG_NAME: env }),
          ),
        ).toContain(message);
      }
    });

    it('reads log.witnesses and log.witnessThreshold, and checks them', () => {
      const key = 'witness.example/w1+01234567+BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
      const other = 'witness.example/w2+89abcdef+BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
      expect(
        resolveWith({
          log: {
            witnesses: [
              { url: 'https://w1.example/', key },
              { url: 'http://127.0.0.1:9000', key: other },
            ],
            witnessThreshold: 1,
          },
        }).log,
      ).toEqual({
        witnesses: [
          { url: 'https://w1.example/', key },
          { url: 'http://127.0.0.1:9000', key: other },
        ],
        witnessThreshold: 1,
      });
      for (const [log, message] of [
        [{ witnesses: {} }, 'log.witnesses: expected an array, received an object'],
        [{ witnesses: [{ key }] }, 'log.witnesses[0].url: is required'],
        [{ witnesses: [{ url: 'ftp://x', key }] }, 'log.witnesses[0].url:'],
        [
          { witnesses: [{ url: 'https://w', key: 'nope' }] },
          'log.witnesses[0].key: expected a witness verifier key',
        ],
        [
          { witnesses: [{ url: 'https://w', key, extra: 1 }] },
          'log.witnesses[0].extra: unknown field',
        ],
        [
          {
            witnesses: [
              { url: 'https://a', key },
              { url: 'https://b', key },
            ],
          },
          'log.witnesses: names one witness key twice',
        ],
        [
          { witnesses: [{ url: 'https://a', key }], witnessThreshold: 2 },
          'log.witnessThreshold: expected an integer from 0 to 1, received number 2',
        ],
      ] as const) {
        expect(configError(() => resolveWith({ log }))).toContain(message);
      }
    });

    it('takes port 0 and refuses ports that are not one', () => {
      expect(resolveWith(undefined, { CAIRN_LISTEN_PORT: '0' }).listen.port).toBe(0);
      for (const port of ['65536', '-1', '80a', '1e3', ' 80']) {
        expect(configError(() => resolveWith(undefined, { CAIRN_LISTEN_PORT: port }))).toBe(
          `CAIRN_LISTEN_PORT: expected an integer from 0 to 65535, received "${port}"`,
        );
      }
    });

    it('ignores variables set to the empty string', () => {
      expect(
        resolveWith(undefined, {
          CAIRN_LISTEN_HOST: '',
          CAIRN_LISTEN_PORT: '',
          CAIRN_STORAGE_DIR: '',
          CAIRN_S3_BUCKET: '',
        }),
      ).toEqual(resolveWith(undefined));
    });

    it('CAIRN_STORAGE_DIR chooses the filesystem, over an S3 file', () => {
      expect(
        resolveWith(
          { storage: { type: 's3', bucket: 'b' } },
          { CAIRN_STORAGE_DIR: 'repo', CAIRN_S3_ENDPOINT: 'http://x' },
        ).storage,
      ).toEqual({ type: 'fs', directory: '/srv/work/repo' });
    });

    it('CAIRN_S3_BUCKET chooses S3, over a filesystem file, with its own endpoint and region', () => {
      expect(
        resolveWith(
          { storage: { type: 'fs', directory: 'x' } },
          {
            CAIRN_S3_BUCKET: 'env-bucket',
            CAIRN_S3_ENDPOINT: 'https://acct.r2.cloudflarestorage.com',
            CAIRN_S3_REGION: 'auto',
          },
        ).storage,
      ).toEqual({
        type: 's3',
        bucket: 'env-bucket',
        endpoint: 'https://acct.r2.cloudflarestorage.com',
        region: 'auto',
        forcePathStyle: true,
      });
    });

    it('CAIRN_S3_* override the fields of an S3 file and keep the rest', () => {
      const file = {
        storage: {
          type: 's3',
          endpoint: 'http://file:9000',
          region: 'eu-west-1',
          forcePathStyle: false,
          accessKeyId: 'file-id',
          secretAccessKey: 'file-secret',
        },
      };
      expect(resolveWith(file, { CAIRN_S3_BUCKET: 'b' }).storage).toEqual({
        type: 's3',
        bucket: 'b',
        endpoint: 'http://file:9000',
        region: 'eu-west-1',
        forcePathStyle: false,
        credentials: { accessKeyId: 'file-id', secretAccessKey: 'file-secret' },
      });
      expect(
        resolveWith(file, {
          CAIRN_S3_BUCKET: 'b',
          CAIRN_S3_ENDPOINT: 'http://env:9000',
          CAIRN_S3_REGION: 'us-west-2',
        }).storage,
      ).toEqual({
        type: 's3',
        bucket: 'b',
        endpoint: 'http://env:9000',
        region: 'us-west-2',
        forcePathStyle: false,
        credentials: { accessKeyId: 'file-id', secretAccessKey: 'file-secret' },
      });
    });

    it('takes AWS credentials only as a pair, with a session token when there is one', () => {
      const file = { storage: { type: 's3', bucket: 'b' } };
      const storageWith = (env: Environment) => resolveWith(file, env).storage;
      expect(
        storageWith({ AWS_ACCESS_KEY_ID: 'env-id', AWS_SECRET_ACCESS_KEY: 'env-secret' }),
      ).toEqual({
        type: 's3',
        bucket: 'b',
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'env-id', secretAccessKey: 'env-secret' },
      });
      expect(
        storageWith({
          AWS_ACCESS_KEY_ID: 'env-id',
          AWS_SECRET_ACCESS_KEY: 'env-secret',
          AWS_SESSION_TOKEN: 'token',
        }),
      ).toMatchObject({
        credentials: {
          accessKeyId: 'env-id',
          secretAccessKey: 'env-secret',
          sessionToken: 'token',
        },
      });
      expect(storageWith({ AWS_ACCESS_KEY_ID: 'env-id' })).not.toHaveProperty('credentials');
      expect(storageWith({ AWS_SECRET_ACCESS_KEY: 'env-secret' })).not.toHaveProperty(
        'credentials',
      );
      // The pair replaces the file's pair whole.
      expect(
        resolveWith(
          { storage: { ...file.storage, accessKeyId: 'file-id', secretAccessKey: 'file-secret' } },
          { AWS_ACCESS_KEY_ID: 'env-id', AWS_SECRET_ACCESS_KEY: 'env-secret' },
        ).storage,
      ).toMatchObject({ credentials: { accessKeyId: 'env-id', secretAccessKey: 'env-secret' } });
      // Set for other tools, AWS_* do not turn filesystem storage into S3.
      expect(
        resolveWith(undefined, { AWS_ACCESS_KEY_ID: 'id', AWS_SECRET_ACCESS_KEY: 's' }).storage,
      ).toEqual({ type: 'fs', directory: '/etc/cairn/repository' });
    });

    it('refuses two storages at once, and S3 settings for filesystem storage', () => {
      expect(
        configError(() => resolveWith(undefined, { CAIRN_STORAGE_DIR: 'a', CAIRN_S3_BUCKET: 'b' })),
      ).toBe('CAIRN_STORAGE_DIR: and CAIRN_S3_BUCKET are both set: choose one storage');
      expect(configError(() => resolveWith(undefined, { CAIRN_S3_ENDPOINT: 'http://x' }))).toBe(
        'CAIRN_S3_ENDPOINT: is set, but storage is the filesystem: set CAIRN_S3_BUCKET, or storage.type "s3"',
      );
      expect(configError(() => resolveWith(undefined, { CAIRN_S3_REGION: 'auto' }))).toBe(
        'CAIRN_S3_REGION: is set, but storage is the filesystem: set CAIRN_S3_BUCKET, or storage.type "s3"',
      );
      expect(
        configError(() =>
          resolveWith(undefined, { CAIRN_S3_BUCKET: 'b', CAIRN_S3_ENDPOINT: '127.0.0.1:9000' }),
        ),
      ).toBe('CAIRN_S3_ENDPOINT: expected an http or https URL, received string "127.0.0.1:9000"');
    });

    it('supplies the bucket an S3 file leaves out, which is otherwise required', () => {
      const file = { storage: { type: 's3', endpoint: 'http://127.0.0.1:9000' } };
      expect(resolveWith(file, { CAIRN_S3_BUCKET: 'b' }).storage).toMatchObject({ bucket: 'b' });
      expect(configError(() => resolveWith(file))).toBe(
        'storage.bucket: is required (or set CAIRN_S3_BUCKET)',
      );
    });

    it('still checks the file where the environment overrides it', () => {
      expect(
        configError(() => resolveWith({ listen: { port: 'x' } }, { CAIRN_LISTEN_PORT: '1' })),
      ).toBe('listen.port: expected an integer from 0 to 65535, received string "x"');
    });
  });

  describe('refusals', () => {
    const cases: Array<[string, unknown, string]> = [
      ['an unknown top-level field', { listn: {} }, 'listn: unknown field'],
      [
        'an unknown field at depth',
        { policy: { expiry: { timestmp: '1d' } } },
        'policy.expiry.timestmp: unknown field',
      ],
      [
        'an S3 field on filesystem storage',
        { storage: { directory: 'x', bucket: 'b' } },
        'storage.bucket: unknown field',
      ],
      [
        'a filesystem field on S3 storage',
        { storage: { type: 's3', bucket: 'b', directory: 'x' } },
        'storage.directory: unknown field',
      ],
      ['a file that is not an object', [], '(top level): expected an object, received an array'],
      [
        'a section that is not an object',
        { policy: 7 },
        'policy: expected an object, received number 7',
      ],
      [
        'a port as a string',
        { listen: { port: '8700' } },
        'listen.port: expected an integer from 0 to 65535, received string "8700"',
      ],
      [
        'a port out of range',
        { listen: { port: 70000 } },
        'listen.port: expected an integer from 0 to 65535, received number 70000',
      ],
      [
        'an empty host',
        { listen: { host: '' } },
        'listen.host: expected a non-empty string, received an empty string',
      ],
      [
        'an unknown storage type',
        { storage: { type: 'gcs' } },
        'storage.type: expected "fs" or "s3", received string "gcs"',
      ],
      [
        'a flag that is not a boolean',
        { storage: { type: 's3', bucket: 'b', forcePathStyle: 'yes' } },
        'storage.forcePathStyle: expected true or false, received string "yes"',
      ],
      [
        'an endpoint that is not a URL',
        { storage: { type: 's3', bucket: 'b', endpoint: 'minio:9000' } },
        'storage.endpoint: expected an http or https URL, received string "minio:9000"',
      ],
      [
        'half a credential pair',
        { storage: { type: 's3', bucket: 'b', accessKeyId: 'id' } },
        'storage.secretAccessKey: is required with the other: give both accessKeyId and secretAccessKey, or neither',
      ],
      [
        'a secret of the wrong type, without showing it',
        { storage: { type: 's3', bucket: 'b', accessKeyId: 'id', secretAccessKey: 12345 } },
        'storage.secretAccessKey: expected a non-empty string, received a number',
      ],
      [
        'a threshold of 0',
        { policy: { thresholds: { root: 0 } } },
        'policy.thresholds.root: expected a positive integer, received number 0',
      ],
      [
        'a fractional threshold',
        { policy: { thresholds: { targets: 1.5 } } },
        'policy.thresholds.targets: expected a positive integer, received number 1.5',
      ],
      [
        'too many past versions',
        { policy: { deltas: { pastVersions: 11 } } },
        'policy.deltas.pastVersions: expected an integer from 0 to 10, received number 11',
      ],
      [
        'a zero size',
        { policy: { limits: { maxReleaseBytes: 0 } } },
        'policy.limits.maxReleaseBytes: expected a positive integer, received number 0',
      ],
      [
        'a negative grace',
        { policy: { retention: { graceSeconds: -1 } } },
        'policy.retention.graceSeconds: expected an integer of at least 0, received number -1',
      ],
      [
        'a zero window',
        { auth: { windowSeconds: 0 } },
        'auth.windowSeconds: expected a positive integer, received number 0',
      ],
      [
        'an interval as null',
        { schedule: { intervalSeconds: null } },
        'schedule.intervalSeconds: expected a positive integer, received null',
      ],
      [
        'a bad duration',
        { policy: { expiry: { targets: '90 days' } } },
        'policy.expiry.targets: expected a duration like "90d" or "12h" (a whole number of s, m, h or d), received string "90 days"',
      ],
      [
        'a duration as a number',
        { policy: { targetsWarning: 14 } },
        'policy.targetsWarning: expected a duration like "90d" or "12h" (a whole number of s, m, h or d), received number 14',
      ],
      [
        'a refresh no shorter than the expiry',
        { policy: { expiry: { timestamp: '12h' } } },
        'policy.refreshBefore.timestamp: 12h (the default) must be shorter than policy.expiry.timestamp (12h)',
      ],
      [
        'a duration as null',
        { policy: { expiry: { root: null } } },
        'policy.expiry.root: expected a duration like "90d" or "12h" (a whole number of s, m, h or d), received null',
      ],
      [
        'a storage type as null',
        { storage: { type: null } },
        'storage.type: expected "fs" or "s3", received null',
      ],
      [
        'a refresh longer than the expiry',
        { policy: { refreshBefore: { snapshot: '8d' } } },
        'policy.refreshBefore.snapshot: 8d must be shorter than policy.expiry.snapshot (7d)',
      ],
      [
        'a host that is not a string',
        { listen: { host: 7 } },
        'listen.host: expected a non-empty string, received number 7',
      ],
      [
        'a long string, shortened',
        { listen: { port: 'x'.repeat(50) } },
        `listen.port: expected an integer from 0 to 65535, received string "${'x'.repeat(40)}…"`,
      ],
    ];
    for (const [what, file, message] of cases) {
      it(`refuses ${what}`, () => {
        expect(configError(() => resolveWith(file))).toBe(message);
      });
    }
  });
});

describe('parseDuration', () => {
  it('reads whole numbers of seconds, minutes, hours and days', () => {
    expect(
      ['1s', '90s', '5m', '12h', '1d', '365d', '36500d'].map((d) => parseDuration(d, 'x')),
    ).toEqual([1_000, 90_000, 300_000, 12 * HOUR, DAY, 365 * DAY, 36_500 * DAY]);
  });

  it('refuses anything else, naming where it was', () => {
    for (const text of ['0d', '1.5d', '1d12h', '1w', 'd', '01d', ' 1d', '1D', '', '-1d']) {
      expect(configError(() => parseDuration(text, 'policy.expiry.root'))).toBe(
        `policy.expiry.root: expected a duration like "90d" or "12h" (a whole number of s, m, h or d), received string ${JSON.stringify(text)}`,
      );
    }
    expect(configError(() => parseDuration('36501d', 'here'))).toBe(
      'here: 36501d is longer than 36500d',
    );
    expect(configError(() => parseDuration(undefined, 'here'))).toBe(
      'here: expected a duration like "90d" or "12h" (a whole number of s, m, h or d), received undefined',
    );
  });

  it('formats back to the shortest exact form', () => {
    expect([DAY, 36 * HOUR, 90_000, 1_500, 7 * DAY].map(formatDuration)).toEqual([
      '1d',
      '36h',
      '90s',
      '1500ms',
      '7d',
    ]);
  });
});

describe('loadConfig', () => {
  let directory: string;

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'cairn-config-'));
    await mkdir(join(directory, 'etc'));
  });

  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  async function fileWith(name: string, text: string): Promise<string> {
    const path = join(directory, 'etc', name);
    await writeFile(path, text);
    return path;
  }

  it('reads the file and resolves its paths against the file’s directory', async () => {
    const path = await fileWith(
      'origin.json',
      JSON.stringify({ storage: { directory: '../repo' }, keys: { snapshot: 'keys/s.key' } }),
    );
    const config = await loadConfig(path, { CAIRN_LISTEN_PORT: '8801' });
    expect(config.storage).toEqual({ type: 'fs', directory: join(directory, 'repo') });
    expect(config.keys).toEqual({
      snapshot: join(directory, 'etc', 'keys', 's.key'),
      timestamp: join(directory, 'etc', 'keys', 'timestamp.key'),
      log: join(directory, 'etc', 'keys', 'log.key'),
    });
    expect(config.listen.port).toBe(8801);
  });

  it('reads a file that starts with a byte-order mark', async () => {
    const path = await fileWith('bom.json', '\uFEFF{"listen":{"port":1}}');
    expect((await loadConfig(path, {})).listen.port).toBe(1);
  });

  it('uses the defaults, relative to the working directory, without a file', async () => {
    const config = await loadConfig(undefined, {});
    expect(config.storage).toEqual({ type: 'fs', directory: join(process.cwd(), 'repository') });
  });

  it('refuses a missing file, naming it', async () => {
    const path = join(directory, 'nope.json');
    const error = await configRejection(loadConfig(path, {}));
    expect(error.message).toBe(`${path}: no such file`);
  });

  it('refuses a directory', async () => {
    const error = await configRejection(loadConfig(directory, {}));
    expect(error.message).toBe(`${directory}: cannot be read (EISDIR)`);
  });

  it('refuses a file that is not JSON, saying where', async () => {
    const cases: Array<[string, string]> = [
      [
        '{"listen": {"port": 1,}}',
        'expected a property name in double quotes, found "}" at line 1, column 23',
      ],
      [
        '{\n  "storage": {\n    "secretAccessKey": \'hunter2\'\n  }\n}',
        'expected a value, found "\'" at line 3, column 24',
      ],
      ['{"a": tru}', 'expected a value, found "t" at line 1, column 7'],
      ['{"a": 1', "unexpected end of file, expected ',' or '}' at line 1, column 8"],
      ['', 'unexpected end of file, expected a value at line 1, column 1'],
      ['{} {}', 'expected the end of the file after the value, found "{" at line 1, column 4'],
      [
        '{"a": "b\nc"}',
        'expected no control characters in a string, found "\\n" at line 1, column 9',
      ],
      [
        '{"a": "\\x"}',
        'expected an escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX), found "x" at line 1, column 9',
      ],
      ['[1 2]', "expected ',' or ']', found \"2\" at line 1, column 4"],
      ['{"a" 1}', 'expected \':\', found "1" at line 1, column 6'],
    ];
    for (const [index, [text, where]] of cases.entries()) {
      const path = await fileWith(`bad-${index}.json`, text);
      const error = await configRejection(loadConfig(path, {}));
      expect(error.message).toBe(`${path}: not JSON: ${where}`);
      expect(error.message).not.toContain('hunter2');
    }
  });

  it('reports what is wrong in a valid JSON file', async () => {
    const path = await fileWith('typo.json', '{"policy": {"expiry": {"timestmp": "1d"}}}');
    const error = await configRejection(loadConfig(path, {}));
    expect(error.message).toBe('policy.expiry.timestmp: unknown field');
  });
});

describe('describeConfig', () => {
  it('renders the config for logs with secrets masked and durations as written', () => {
    const config = resolveWith(
      { storage: { type: 's3', bucket: 'b', endpoint: 'http://127.0.0.1:9000' } },
      {
        AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
        AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI',
        AWS_SESSION_TOKEN: 'FwoGZXIvYXdzEXAMPLE',
      },
    );
    const described = describeConfig(config);
    expect(described).toEqual({
      listen: { host: '127.0.0.1', port: 8700 },
      storage: {
        type: 's3',
        bucket: 'b',
        endpoint: 'http://127.0.0.1:9000',
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: '***', sessionToken: '***' },
      },
      keys: {
        snapshot: '/etc/cairn/keys/snapshot.key',
        timestamp: '/etc/cairn/keys/timestamp.key',
        log: '/etc/cairn/keys/log.key',
      },
      log: {},
      policy: {
        ...EXPECTED_DEFAULT_POLICY,
        expiry: { root: '365d', targets: '90d', snapshot: '7d', timestamp: '1d' },
        refreshBefore: { snapshot: '3d', timestamp: '12h' },
        targetsWarning: '14d',
      },
      auth: { windowSeconds: 300 },
      schedule: { intervalSeconds: 60 },
    });
    const text = JSON.stringify(described);
    expect(text).not.toContain('wJalrXUtnFEMI');
    expect(text).not.toContain('FwoGZXIvYXdzEXAMPLE');
    // The config itself is untouched.
    expect(config.storage).toMatchObject({ credentials: { secretAccessKey: 'wJalrXUtnFEMI' } });
  });

  it('renders filesystem storage as it is', () => {
    expect(describeConfig(resolveWith(undefined))['storage']).toEqual({
      type: 'fs',
      directory: '/etc/cairn/repository',
    });
  });
});

describe('openStore', () => {
  it('opens the filesystem store at the directory', () => {
    const store = openStore({ type: 'fs', directory: '/srv/repo' });
    expect(store).toBeInstanceOf(FsBlobStore);
    expect((store as FsBlobStore).directory).toBe('/srv/repo');
  });

  it('opens the S3 store with the bucket, endpoint, region, addressing and credentials', async () => {
    const store = openStore({
      type: 's3',
      bucket: 'releases',
      endpoint: 'http://127.0.0.1:9000',
      region: 'auto',
      forcePathStyle: false,
      credentials: { accessKeyId: 'id', secretAccessKey: 'secret' },
    });
    expect(store).toBeInstanceOf(S3BlobStore);
    const s3 = store as S3BlobStore;
    expect(s3.bucket).toBe('releases');
    expect(await s3.client.config.region()).toBe('auto');
    expect(s3.client.config.forcePathStyle).toBe(false);
    const endpoint = await s3.client.config.endpoint?.();
    expect([endpoint?.protocol, endpoint?.hostname, endpoint?.port]).toEqual([
      'http:',
      '127.0.0.1',
      9000,
    ]);
    expect(await s3.client.config.credentials()).toMatchObject({
      accessKeyId: 'id',
      secretAccessKey: 'secret',
    });
  });
});
