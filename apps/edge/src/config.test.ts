import { describe, expect, test } from 'vitest';
import { DEFAULTS, parseEdgeConfig, type EdgeConfig, type EdgeVariables } from './config.js';
import { isEdgeError } from './errors.js';

const ROOT = '{"signed":{"_type":"root"},"signatures":[]}';
const MIRROR = {
  CAIRN_UPSTREAM_URL: 'https://updates.example/repo',
  CAIRN_TRUSTED_ROOT: ROOT,
};

const DEFAULT_CONFIG: EdgeConfig = {
  mirrorName: 'cairn-edge',
  mode: 'direct',
  timestampMaxAge: 60,
  notFoundMaxAge: 10,
  storageTimeoutMs: 10_000,
  retryAfterSeconds: 5,
  trustedRoot: undefined,
  upstreamUrl: undefined,
  rateLimit: undefined,
  corsOrigin: '*',
  cacheMaxBytes: 512 * 2 ** 20,
  maxTargetBytes: 4 * 2 ** 30,
};

/** The message of the CONFIG_INVALID that parsing `vars` throws. */
function refusal(vars: EdgeVariables): string {
  try {
    parseEdgeConfig(vars);
  } catch (error) {
    if (isEdgeError(error, 'CONFIG_INVALID')) return error.message;
    throw error;
  }
  throw new Error(`accepted: ${JSON.stringify(vars)}`);
}

describe('parseEdgeConfig', () => {
  test('nothing set: the defaults, a direct edge without a rate limit', () => {
    expect(parseEdgeConfig({})).toEqual(DEFAULT_CONFIG);
    expect(DEFAULTS.rateLimitBurst).toBe(10);
  });

  test('empty values, as wrangler.jsonc ships them, are the defaults too', () => {
    expect(
      parseEdgeConfig({
        CAIRN_STORAGE: 'r2',
        CAIRN_MIRROR_NAME: 'cairn-edge',
        CAIRN_MODE: 'direct',
        CAIRN_TIMESTAMP_MAX_AGE: '60',
        CAIRN_NOT_FOUND_MAX_AGE: '10',
        CAIRN_STORAGE_TIMEOUT_MS: '10000',
        CAIRN_RETRY_AFTER: '5',
        CAIRN_CORS_ORIGIN: '*',
        CAIRN_RATE_LIMIT_PER_MINUTE: '0',
        CAIRN_RATE_LIMIT_BURST: '10',
        CAIRN_TRUSTED_ROOT: '',
        CAIRN_UPSTREAM_URL: '',
        CAIRN_S3_ENDPOINT: '',
        CAIRN_S3_BUCKET: '',
        CAIRN_S3_REGION: '',
      }),
    ).toEqual(DEFAULT_CONFIG);
    expect(parseEdgeConfig({ CAIRN_MODE: '  ', CAIRN_TIMESTAMP_MAX_AGE: '' })).toEqual(
      DEFAULT_CONFIG,
    );
  });

  test('every variable is read, trimmed', () => {
    expect(
      parseEdgeConfig({
        CAIRN_MIRROR_NAME: ' eu-west-1 ',
        CAIRN_MODE: 'pull-through',
        CAIRN_TIMESTAMP_MAX_AGE: ' 30 ',
        CAIRN_NOT_FOUND_MAX_AGE: '0',
        CAIRN_STORAGE_TIMEOUT_MS: '100',
        CAIRN_RETRY_AFTER: '3600',
        CAIRN_TRUSTED_ROOT: ` ${ROOT} `,
        CAIRN_UPSTREAM_URL: 'https://updates.example/repo',
        CAIRN_RATE_LIMIT_PER_MINUTE: '12',
        CAIRN_RATE_LIMIT_BURST: '3',
        CAIRN_CORS_ORIGIN: 'https://app.example',
        CAIRN_CACHE_MAX_BYTES: '0',
        CAIRN_MAX_TARGET_BYTES: '1',
      }),
    ).toEqual({
      mirrorName: 'eu-west-1',
      mode: 'pull-through',
      timestampMaxAge: 30,
      notFoundMaxAge: 0,
      storageTimeoutMs: 100,
      retryAfterSeconds: 3600,
      trustedRoot: new TextEncoder().encode(ROOT),
      upstreamUrl: 'https://updates.example/repo/',
      rateLimit: { perMinute: 12, burst: 3 },
      corsOrigin: 'https://app.example',
      cacheMaxBytes: 0,
      maxTargetBytes: 1,
    } satisfies EdgeConfig);
  });

  test('a rate limit takes the default burst; a trusted root alone makes a verifying direct edge', () => {
    expect(parseEdgeConfig({ CAIRN_RATE_LIMIT_PER_MINUTE: '5' }).rateLimit).toEqual({
      perMinute: 5,
      burst: 10,
    });
    const verified = parseEdgeConfig({ CAIRN_TRUSTED_ROOT: ROOT });
    expect(verified.mode).toBe('direct');
    expect(verified.trustedRoot).toEqual(new TextEncoder().encode(ROOT));
  });

  test('the upstream URL gets its trailing slash, and keeps one it has', () => {
    const sync = (url: string) =>
      parseEdgeConfig({ ...MIRROR, CAIRN_MODE: 'sync', CAIRN_UPSTREAM_URL: url }).upstreamUrl;
    expect(sync('https://updates.example')).toBe('https://updates.example/');
    expect(sync('http://10.0.0.5:8080/base/')).toBe('http://10.0.0.5:8080/base/');
  });

  test.each([
    ['CAIRN_MODE', { CAIRN_MODE: 'mirror' }],
    ['CAIRN_MODE', { CAIRN_MODE: 'Direct' }],
    ['CAIRN_MIRROR_NAME', { CAIRN_MIRROR_NAME: 'has space' }],
    ['CAIRN_MIRROR_NAME', { CAIRN_MIRROR_NAME: 'x'.repeat(65) }],
    ['CAIRN_MIRROR_NAME', { CAIRN_MIRROR_NAME: 'café' }],
    ['CAIRN_TIMESTAMP_MAX_AGE', { CAIRN_TIMESTAMP_MAX_AGE: 'sixty' }],
    ['CAIRN_TIMESTAMP_MAX_AGE', { CAIRN_TIMESTAMP_MAX_AGE: '-1' }],
    ['CAIRN_TIMESTAMP_MAX_AGE', { CAIRN_TIMESTAMP_MAX_AGE: '1.5' }],
    ['CAIRN_TIMESTAMP_MAX_AGE', { CAIRN_TIMESTAMP_MAX_AGE: '86401' }],
    ['CAIRN_NOT_FOUND_MAX_AGE', { CAIRN_NOT_FOUND_MAX_AGE: '86401' }],
    ['CAIRN_NOT_FOUND_MAX_AGE', { CAIRN_NOT_FOUND_MAX_AGE: '1e3' }],
    ['CAIRN_STORAGE_TIMEOUT_MS', { CAIRN_STORAGE_TIMEOUT_MS: '99' }],
    ['CAIRN_STORAGE_TIMEOUT_MS', { CAIRN_STORAGE_TIMEOUT_MS: '300001' }],
    ['CAIRN_RETRY_AFTER', { CAIRN_RETRY_AFTER: '0' }],
    ['CAIRN_RETRY_AFTER', { CAIRN_RETRY_AFTER: '3601' }],
    ['CAIRN_RATE_LIMIT_PER_MINUTE', { CAIRN_RATE_LIMIT_PER_MINUTE: 'lots' }],
    ['CAIRN_RATE_LIMIT_PER_MINUTE', { CAIRN_RATE_LIMIT_PER_MINUTE: '1000001' }],
    ['CAIRN_RATE_LIMIT_BURST', { CAIRN_RATE_LIMIT_BURST: '0' }],
    ['CAIRN_CACHE_MAX_BYTES', { CAIRN_CACHE_MAX_BYTES: '512MB' }],
    ['CAIRN_MAX_TARGET_BYTES', { CAIRN_MAX_TARGET_BYTES: '0' }],
    ['CAIRN_TRUSTED_ROOT', { CAIRN_TRUSTED_ROOT: 'not json' }],
    ['CAIRN_TRUSTED_ROOT', { CAIRN_TRUSTED_ROOT: '{"version":1}' }],
    ['CAIRN_TRUSTED_ROOT', { CAIRN_TRUSTED_ROOT: '["signed"]' }],
    ['CAIRN_TRUSTED_ROOT', { CAIRN_TRUSTED_ROOT: 'null' }],
    ['CAIRN_UPSTREAM_URL', { CAIRN_UPSTREAM_URL: 'https://updates.example/' }],
    ['CAIRN_UPSTREAM_URL', { ...MIRROR, CAIRN_MODE: 'sync', CAIRN_UPSTREAM_URL: 'not a url' }],
    ['CAIRN_UPSTREAM_URL', { ...MIRROR, CAIRN_MODE: 'sync', CAIRN_UPSTREAM_URL: 'ftp://a.b/' }],
    [
      'CAIRN_UPSTREAM_URL',
      { ...MIRROR, CAIRN_MODE: 'sync', CAIRN_UPSTREAM_URL: 'https://a.example/?x=1' },
    ],
    ['CAIRN_UPSTREAM_URL', { ...MIRROR, CAIRN_MODE: 'sync', CAIRN_UPSTREAM_URL: 'https://a.b/#x' }],
    ['CAIRN_UPSTREAM_URL', { CAIRN_MODE: 'pull-through', CAIRN_TRUSTED_ROOT: ROOT }],
    ['CAIRN_UPSTREAM_URL', { CAIRN_MODE: 'sync', CAIRN_TRUSTED_ROOT: ROOT }],
    [
      'CAIRN_TRUSTED_ROOT',
      { CAIRN_MODE: 'pull-through', CAIRN_UPSTREAM_URL: 'https://updates.example/' },
    ],
    ['CAIRN_TRUSTED_ROOT', { CAIRN_MODE: 'sync', CAIRN_UPSTREAM_URL: 'https://updates.example/' }],
  ] as const)('%s is CONFIG_INVALID, named: %j', (name, vars) => {
    const message = refusal(vars);
    expect(message.startsWith(`${name} `), message).toBe(true);
  });
});
