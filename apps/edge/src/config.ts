/**
 * The edge's configuration, read from one flat set of string variables: wrangler `vars` and
 * secrets on Workers, the environment (and `cairn mirror` flags) on Node. Every value is
 * checked here, once, and a wrong one is CONFIG_INVALID naming the variable.
 */
import { EdgeError } from './errors.js';

/**
 * `direct`: serve the repository from this edge's storage (the origin's bucket, or a synced copy).
 * `pull-through`: serve from this edge's storage, fetching what is missing from `upstreamUrl`
 * and checking it against verified metadata first. `sync`: serve from this edge's storage, which
 * a scheduled job (`cairn mirror sync`, or the Worker's Cron Trigger) fills from `upstreamUrl`.
 */
export type EdgeMode = 'direct' | 'pull-through' | 'sync';

export interface RateLimit {
  /** Full-file downloads per minute per client address, on average. */
  readonly perMinute: number;
  /** How many may come at once before the average applies. */
  readonly burst: number;
}

export interface EdgeConfig {
  /** Sent in `X-Cairn-Mirror` on every answer, and reported by /health. */
  readonly mirrorName: string;
  readonly mode: EdgeMode;
  /** `Cache-Control` max-age of `timestamp.json` and the unversioned `root.json`, seconds. */
  readonly timestampMaxAge: number;
  /** max-age of a 404, seconds: short, since a missing object may appear with the next release. */
  readonly notFoundMaxAge: number;
  /** How long a storage (or upstream) operation may take before the answer is 503. */
  readonly storageTimeoutMs: number;
  /** The Retry-After of a 503, seconds. */
  readonly retryAfterSeconds: number;
  /** A trusted root (its JSON bytes): when set, metadata is verified before it is served. */
  readonly trustedRoot: Uint8Array | undefined;
  /** The repository this mirror copies from (pull-through and sync), ending in `/`. */
  readonly upstreamUrl: string | undefined;
  readonly rateLimit: RateLimit | undefined;
  /** `Access-Control-Allow-Origin`. */
  readonly corsOrigin: string;
  /** Immutable objects up to this size go into the Workers Cache API. */
  readonly cacheMaxBytes: number;
  /** The longest target a pull-through mirror fetches when verified metadata does not list it. */
  readonly maxTargetBytes: number;
}

export const DEFAULTS = {
  mirrorName: 'cairn-edge',
  timestampMaxAge: 60,
  notFoundMaxAge: 10,
  storageTimeoutMs: 10_000,
  retryAfterSeconds: 5,
  corsOrigin: '*',
  // Cloudflare's Cache API takes objects up to 512 MB on every plan.
  cacheMaxBytes: 512 * 2 ** 20,
  maxTargetBytes: 4 * 2 ** 30,
  rateLimitBurst: 10,
} as const;

/** The variable names, as wrangler vars and environment variables. */
export const VARIABLES = {
  mirrorName: 'CAIRN_MIRROR_NAME',
  mode: 'CAIRN_MODE',
  timestampMaxAge: 'CAIRN_TIMESTAMP_MAX_AGE',
  notFoundMaxAge: 'CAIRN_NOT_FOUND_MAX_AGE',
  storageTimeoutMs: 'CAIRN_STORAGE_TIMEOUT_MS',
  retryAfterSeconds: 'CAIRN_RETRY_AFTER',
  trustedRoot: 'CAIRN_TRUSTED_ROOT',
  upstreamUrl: 'CAIRN_UPSTREAM_URL',
  rateLimitPerMinute: 'CAIRN_RATE_LIMIT_PER_MINUTE',
  rateLimitBurst: 'CAIRN_RATE_LIMIT_BURST',
  corsOrigin: 'CAIRN_CORS_ORIGIN',
  cacheMaxBytes: 'CAIRN_CACHE_MAX_BYTES',
  maxTargetBytes: 'CAIRN_MAX_TARGET_BYTES',
} as const;

export type EdgeVariables = Readonly<Record<string, string | undefined>>;

function fail(name: string, problem: string): never {
  throw new EdgeError('CONFIG_INVALID', `${name} ${problem}`);
}

function present(vars: EdgeVariables, name: string): string | undefined {
  const value = vars[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function integer(
  vars: EdgeVariables,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const text = present(vars, name);
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) fail(name, `must be a whole number, received '${text}'`);
  const value = Number(text);
  if (value < min || value > max) {
    fail(name, `must be from ${min} to ${max}, received ${value}`);
  }
  return value;
}

function upstream(vars: EdgeVariables): string | undefined {
  const text = present(vars, VARIABLES.upstreamUrl);
  if (text === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    fail(VARIABLES.upstreamUrl, `must be an http(s) URL, received '${text}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    fail(VARIABLES.upstreamUrl, `must be an http(s) URL, received '${text}'`);
  }
  if (url.search !== '' || url.hash !== '') {
    fail(VARIABLES.upstreamUrl, `must not have a query or fragment, received '${text}'`);
  }
  const href = url.href;
  return href.endsWith('/') ? href : `${href}/`;
}

function trustedRoot(vars: EdgeVariables): Uint8Array | undefined {
  const text = present(vars, VARIABLES.trustedRoot);
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== 'object' || parsed === null || !('signed' in parsed)) {
      fail(VARIABLES.trustedRoot, 'must be the JSON of a signed root metadata file');
    }
  } catch (error) {
    if (error instanceof EdgeError) throw error;
    fail(VARIABLES.trustedRoot, 'must be the JSON of a signed root metadata file (it is not JSON)');
  }
  return new TextEncoder().encode(text);
}

export function parseEdgeConfig(vars: EdgeVariables): EdgeConfig {
  const modeText = present(vars, VARIABLES.mode) ?? 'direct';
  if (modeText !== 'direct' && modeText !== 'pull-through' && modeText !== 'sync') {
    fail(VARIABLES.mode, `must be direct, pull-through or sync, received '${modeText}'`);
  }
  const mode: EdgeMode = modeText;
  const upstreamUrl = upstream(vars);
  const root = trustedRoot(vars);
  if (mode !== 'direct' && upstreamUrl === undefined) {
    fail(VARIABLES.upstreamUrl, `is required in ${mode} mode`);
  }
  if (mode !== 'direct' && root === undefined) {
    // A mirror that copies without verifying would pass on whatever its upstream serves.
    fail(VARIABLES.trustedRoot, `is required in ${mode} mode: a mirror verifies what it copies`);
  }
  if (mode === 'direct' && upstreamUrl !== undefined) {
    fail(
      VARIABLES.upstreamUrl,
      `is set, but ${VARIABLES.mode} is direct: set pull-through or sync`,
    );
  }
  const mirrorName = present(vars, VARIABLES.mirrorName) ?? DEFAULTS.mirrorName;
  if (!/^[\x21-\x7e]{1,64}$/.test(mirrorName)) {
    fail(VARIABLES.mirrorName, 'must be 1 to 64 printable ASCII characters without spaces');
  }
  const perMinute = integer(vars, VARIABLES.rateLimitPerMinute, 0, 0, 1_000_000);
  const burst = integer(vars, VARIABLES.rateLimitBurst, DEFAULTS.rateLimitBurst, 1, 1_000_000);
  const corsOrigin = present(vars, VARIABLES.corsOrigin) ?? DEFAULTS.corsOrigin;
  return {
    mirrorName,
    mode,
    timestampMaxAge: integer(vars, VARIABLES.timestampMaxAge, DEFAULTS.timestampMaxAge, 0, 86_400),
    notFoundMaxAge: integer(vars, VARIABLES.notFoundMaxAge, DEFAULTS.notFoundMaxAge, 0, 86_400),
    storageTimeoutMs: integer(
      vars,
      VARIABLES.storageTimeoutMs,
      DEFAULTS.storageTimeoutMs,
      100,
      300_000,
    ),
    retryAfterSeconds: integer(
      vars,
      VARIABLES.retryAfterSeconds,
      DEFAULTS.retryAfterSeconds,
      1,
      3600,
    ),
    trustedRoot: root,
    upstreamUrl,
    rateLimit: perMinute === 0 ? undefined : { perMinute, burst },
    corsOrigin,
    cacheMaxBytes: integer(vars, VARIABLES.cacheMaxBytes, DEFAULTS.cacheMaxBytes, 0, 2 ** 40),
    maxTargetBytes: integer(vars, VARIABLES.maxTargetBytes, DEFAULTS.maxTargetBytes, 1, 2 ** 42),
  };
}
