/**
 * The edge as one Hono app, the same on Workers and Node: it serves the repository layout from
 * an ObjectSource with the HTTP semantics caches and clients rely on (strong ETags,
 * preconditions, single ranges, HEAD, immutable caching of versioned and hash-named objects),
 * answers /health and /metrics, and maps every failure to a status in one `onError`.
 */
import type { ObjectInfo } from '@cairn/storage/blob-store';
import { parseCheckpoint } from '@cairn/tlog/checkpoint';
import { isTlogError } from '@cairn/tlog/errors';
import { MAX_NOTE_BYTES } from '@cairn/tlog/limits';
import { parseNote } from '@cairn/tlog/note';
import { Metadata } from '@cairn/verify/metadata';
import { Hono, type Context } from 'hono';
import { cors } from 'hono/cors';
import type { EdgeConfig } from './config.js';
import { EdgeError, HTTP_STATUS, isEdgeError } from './errors.js';
import {
  entityTag,
  evaluatePreconditions,
  ifRangeHolds,
  parseRange,
  type Preconditions,
} from './http.js';
import { EdgeMetrics, type EdgeEvent, type RequestClass } from './metrics.js';
import { CHECKPOINT_KEY, classifyPath, type RepoPath } from './paths.js';
import { FullFileRateLimiter } from './rate-limit.js';
import type { ObjectSource, SourceObject } from './source.js';

/** The Workers Cache API (`caches.default`) for immutable objects; absent on Node. */
export interface ImmutableCache {
  match(url: string): Promise<Response | undefined>;
  put(url: string, response: Response): Promise<void>;
}

/** One JSON object per line: what happened, for operators' log pipelines. */
export type EdgeLog = (entry: Readonly<Record<string, unknown>>) => void;

export interface EdgeDependencies {
  readonly config: EdgeConfig;
  readonly source: ObjectSource;
  readonly cache?: ImmutableCache | undefined;
  /** The client's address for the rate limit. Default: `CF-Connecting-IP`. */
  readonly clientAddress?: ((c: Context) => string | undefined) | undefined;
  readonly now?: (() => Date) | undefined;
  readonly log?: EdgeLog | undefined;
  readonly metrics?: EdgeMetrics | undefined;
}

export const IMMUTABLE_CACHE_CONTROL = 'public, max-age=31536000, immutable';
export const MIRROR_HEADER = 'X-Cairn-Mirror';
const TIMESTAMP_PATH: RepoPath = {
  key: 'metadata/timestamp.json',
  kind: 'timestamp',
  immutable: false,
  role: 'timestamp',
};
const CHECKPOINT_PATH: RepoPath = { key: CHECKPOINT_KEY, kind: 'checkpoint', immutable: false };
/** More than any timestamp.json the origin writes; /health reads no further. */
const MAX_TIMESTAMP_BYTES = 64 * 1024;

type Env = { Variables: { kind: RequestClass } };

const defaultLog: EdgeLog = (entry) => {
  console.log(JSON.stringify({ time: new Date().toISOString(), ...entry }));
};

function defaultClientAddress(c: Context): string | undefined {
  return c.req.header('cf-connecting-ip');
}

function cacheControl(config: EdgeConfig, path: RepoPath): string {
  return path.immutable ? IMMUTABLE_CACHE_CONTROL : `public, max-age=${config.timestampMaxAge}`;
}

function contentType(path: RepoPath): string {
  switch (path.kind) {
    case 'target':
    case 'delta':
    case 'tile':
      return 'application/octet-stream';
    case 'checkpoint':
      // A C2SP signed note: UTF-8 text.
      return 'text/plain; charset=utf-8';
    case 'timestamp':
    case 'root-copy':
    case 'root':
    case 'metadata':
      return 'application/json';
  }
}

/** The headers every representation of an object carries, whatever the status. */
function objectHeaders(config: EdgeConfig, path: RepoPath, info: ObjectInfo): Headers {
  return new Headers({
    ETag: entityTag(info.etag),
    'Last-Modified': info.lastModified.toUTCString(),
    'Cache-Control': cacheControl(config, path),
    'Content-Type': contentType(path),
    'Accept-Ranges': 'bytes',
    'X-Content-Type-Options': 'nosniff',
  });
}

function preconditionsOf(c: Context): Preconditions & { ifRange?: string | undefined } {
  return {
    ifMatch: c.req.header('if-match'),
    ifNoneMatch: c.req.header('if-none-match'),
    ifModifiedSince: c.req.header('if-modified-since'),
    ifUnmodifiedSince: c.req.header('if-unmodified-since'),
    ifRange: c.req.header('if-range'),
  };
}

function errorResponse(
  config: EdgeConfig,
  error: EdgeError,
  extra: Record<string, string> = {},
): Response {
  const status = HTTP_STATUS[error.code];
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    'Cache-Control': status === 404 ? `public, max-age=${config.notFoundMaxAge}` : 'no-store',
    ...extra,
  };
  if (status === 503) headers['Retry-After'] = String(config.retryAfterSeconds);
  if (error.code === 'RANGE_NOT_SATISFIABLE' && error.size !== undefined) {
    headers['Content-Range'] = `bytes */${error.size}`;
  }
  return new Response(JSON.stringify({ error: error.code, message: error.message }), {
    status,
    headers,
  });
}

const EVENT_OF: Partial<Record<EdgeError['code'], EdgeEvent>> = {
  STORAGE_UNAVAILABLE: 'storage_error',
  VERIFICATION_FAILED: 'verification_failure',
  UPSTREAM_UNAVAILABLE: 'upstream_error',
  UPSTREAM_INVALID: 'upstream_invalid',
  SPLIT_VIEW: 'split_view',
  RATE_LIMITED: 'rate_limited',
};

/**
 * The log's size for /health, from log/checkpoint as the source serves it (verified, with a
 * trusted root that declares a log): undefined without a checkpoint, an error code when it
 * cannot be served.
 */
async function logHealth(
  source: ObjectSource,
): Promise<{ size: number } | { error: string; message: string } | undefined> {
  try {
    const object = await source.get(CHECKPOINT_PATH);
    const bytes = await readCapped(object.body, MAX_NOTE_BYTES, CHECKPOINT_KEY);
    return { size: parseCheckpoint(parseNote(bytes).text).size };
  } catch (error) {
    if (isEdgeError(error, 'NOT_FOUND')) return undefined;
    if (isEdgeError(error) || isTlogError(error)) {
      return { error: error.code, message: error.message };
    }
    throw error;
  }
}

async function readCapped(
  body: ReadableStream<Uint8Array>,
  cap: number,
  what: string,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > cap) {
      await reader.cancel();
      throw new EdgeError('VERIFICATION_FAILED', `${what} is larger than ${cap} bytes`);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

export function createEdgeApp(deps: EdgeDependencies): Hono<Env> {
  const { config, source } = deps;
  const now = deps.now ?? (() => new Date());
  const log = deps.log ?? defaultLog;
  const metrics = deps.metrics ?? new EdgeMetrics();
  const clientAddress = deps.clientAddress ?? defaultClientAddress;
  const limiter =
    config.rateLimit === undefined ? undefined : new FullFileRateLimiter(config.rateLimit);
  const app = new Hono<Env>();

  app.use('*', async (c, next) => {
    c.set('kind', 'other');
    await next();
    c.res.headers.set(MIRROR_HEADER, config.mirrorName);
    const length = Number(c.res.headers.get('content-length') ?? '0');
    metrics.request(c.get('kind'), c.res.status, c.req.method === 'HEAD' ? 0 : length);
  });
  app.use(
    '*',
    cors({
      origin: config.corsOrigin,
      allowMethods: ['GET', 'HEAD', 'OPTIONS'],
      allowHeaders: [
        'Range',
        'If-Match',
        'If-None-Match',
        'If-Modified-Since',
        'If-Unmodified-Since',
        'If-Range',
      ],
      exposeHeaders: [
        'ETag',
        'Last-Modified',
        'Content-Length',
        'Content-Range',
        'Accept-Ranges',
        'Retry-After',
        MIRROR_HEADER,
      ],
      maxAge: 86_400,
    }),
  );

  app.onError((error, c) => {
    if (isEdgeError(error)) {
      const event = EVENT_OF[error.code];
      if (event !== undefined) metrics.event(event);
      if (
        error.code === 'VERIFICATION_FAILED' ||
        error.code === 'UPSTREAM_INVALID' ||
        error.code === 'SPLIT_VIEW'
      ) {
        // Loud on purpose: someone wrote into the bucket without the keys, or upstream lies.
        log({
          level: 'error',
          event: 'refused',
          code: error.code,
          path: c.req.path,
          message: error.message,
        });
      } else if (HTTP_STATUS[error.code] >= 500) {
        log({
          level: 'warn',
          event: 'failure',
          code: error.code,
          path: c.req.path,
          message: error.message,
        });
      }
      return errorResponse(config, error);
    }
    log({ level: 'error', event: 'internal', path: c.req.path, message: String(error) });
    return c.json({ error: 'INTERNAL', message: 'internal error' }, 500, {
      'Cache-Control': 'no-store',
    });
  });

  app.get('/health', async (c) => {
    c.set('kind', 'health');
    const headers = { 'Cache-Control': 'no-store' };
    const base = {
      mirror: config.mirrorName,
      mode: config.mode,
      verified: config.trustedRoot !== undefined,
    };
    try {
      const object = await source.get(TIMESTAMP_PATH);
      const bytes = await readCapped(object.body, MAX_TIMESTAMP_BYTES, 'timestamp.json');
      const timestamp = Metadata.fromBytes(bytes, 'timestamp', 'timestamp.json');
      const ageSeconds = Math.max(
        0,
        Math.floor((now().getTime() - object.info.lastModified.getTime()) / 1000),
      );
      metrics.timestamp(timestamp.signed.version, ageSeconds);
      const log = await logHealth(source);
      if (log !== undefined && 'size' in log) metrics.logSize(log.size);
      return c.json(
        {
          status: 'ok',
          ...base,
          timestamp: {
            version: timestamp.signed.version,
            expires: timestamp.signed.expires.toISOString(),
            ageSeconds,
          },
          ...(log === undefined ? {} : { log }),
        },
        200,
        headers,
      );
    } catch (error) {
      const code = isEdgeError(error) ? error.code : 'VERIFICATION_FAILED';
      const message = error instanceof Error ? error.message : String(error);
      return c.json({ status: 'unavailable', ...base, error: code, message }, 503, {
        ...headers,
        'Retry-After': String(config.retryAfterSeconds),
      });
    }
  });

  app.get('/metrics', (c) => {
    c.set('kind', 'metrics');
    return c.text(metrics.render(), 200, {
      'Content-Type': 'text/plain; version=0.0.4',
      'Cache-Control': 'no-store',
    });
  });

  app.all('*', async (c) => {
    const method = c.req.method;
    if (method !== 'GET' && method !== 'HEAD') {
      return errorResponse(
        config,
        new EdgeError(
          'METHOD_NOT_ALLOWED',
          `${method} is not allowed: the edge serves GET and HEAD`,
        ),
        { Allow: 'GET, HEAD, OPTIONS' },
      );
    }
    const path = classifyPath(new URL(c.req.url).pathname);
    if (path === undefined) {
      throw new EdgeError('NOT_FOUND', 'not a path of the repository layout');
    }
    c.set('kind', path.kind);

    if (limiter !== undefined && path.kind === 'target' && method === 'GET') {
      const address = clientAddress(c) ?? 'unknown';
      const wait = limiter.take(address, now().getTime());
      if (wait > 0) {
        metrics.event('rate_limited');
        return errorResponse(
          config,
          new EdgeError(
            'RATE_LIMITED',
            `too many full-file downloads from ${address}; deltas are not limited`,
          ),
          { 'Retry-After': String(wait) },
        );
      }
    }

    const conditions = preconditionsOf(c);
    let range = method === 'GET' ? parseRange(c.req.header('range')) : undefined;
    // RFC 9110 14.1.1: a suffix of zero bytes selects nothing, a 416 like a range past the end.
    // Stores do not agree on it (some refuse the request), so it never reaches them.
    const emptySuffix = range !== undefined && 'suffix' in range && range.suffix === 0;
    const conditional =
      conditions.ifMatch !== undefined ||
      conditions.ifNoneMatch !== undefined ||
      conditions.ifModifiedSince !== undefined ||
      conditions.ifUnmodifiedSince !== undefined ||
      (range !== undefined && conditions.ifRange !== undefined);

    let info: ObjectInfo | undefined;
    if (conditional || emptySuffix || method === 'HEAD') {
      info = await source.head(path);
      if (info === undefined) {
        if (conditions.ifMatch !== undefined) {
          throw new EdgeError(
            'PRECONDITION_FAILED',
            `${path.key}: If-Match, but there is no object`,
          );
        }
        throw new EdgeError('NOT_FOUND', `${path.key}: not found`);
      }
      const outcome = evaluatePreconditions(conditions, info.etag, info.lastModified);
      if (outcome === 'failed') {
        return errorResponse(
          config,
          new EdgeError('PRECONDITION_FAILED', `${path.key}: precondition failed`),
          {
            ETag: entityTag(info.etag),
          },
        );
      }
      if (outcome === 'not-modified') {
        const headers = objectHeaders(config, path, info);
        headers.delete('Content-Type');
        return new Response(null, { status: 304, headers });
      }
      if (range !== undefined && conditions.ifRange !== undefined) {
        if (!ifRangeHolds(conditions.ifRange, info.etag, info.lastModified)) range = undefined;
      }
      if (method === 'HEAD') {
        const headers = objectHeaders(config, path, info);
        headers.set('Content-Length', String(info.size));
        return new Response(null, { status: 200, headers });
      }
      if (emptySuffix && range !== undefined) {
        throw new EdgeError('RANGE_NOT_SATISFIABLE', `${path.key}: an empty suffix range`, {
          size: info.size,
        });
      }
    }

    const cacheable = deps.cache !== undefined && path.immutable && range === undefined;
    const cacheUrl = new URL(c.req.url);
    cacheUrl.search = '';
    if (cacheable && deps.cache !== undefined) {
      const hit = await deps.cache.match(cacheUrl.href).catch((error: unknown) => {
        log({ level: 'warn', event: 'cache-failure', path: path.key, message: String(error) });
        return undefined;
      });
      if (hit !== undefined) {
        metrics.event('cache_hit');
        return new Response(hit.body, { status: 200, headers: new Headers(hit.headers) });
      }
      metrics.event('cache_miss');
    }

    const object: SourceObject = await source.get(path, range);
    const headers = objectHeaders(config, path, object.info);
    if (object.range !== undefined) {
      const { offset, length } = object.range;
      headers.set('Content-Range', `bytes ${offset}-${offset + length - 1}/${object.info.size}`);
      headers.set('Content-Length', String(length));
      return new Response(knownLength(object.body, length), { status: 206, headers });
    }
    headers.set('Content-Length', String(object.info.size));
    const body = knownLength(object.body, object.info.size);
    if (cacheable && deps.cache !== undefined && object.info.size <= config.cacheMaxBytes) {
      const [toClient, toCache] = body.tee();
      const put = deps.cache
        .put(cacheUrl.href, new Response(toCache, { status: 200, headers: new Headers(headers) }))
        .catch((error: unknown) => {
          log({ level: 'warn', event: 'cache-failure', path: path.key, message: String(error) });
        });
      waitUntil(c, put);
      return new Response(toClient, { status: 200, headers });
    }
    return new Response(body, { status: 200, headers });
  });

  return app;
}

/** workerd's TransformStream whose readable side has a length the runtime knows. */
type FixedLengthStreamConstructor = new (length: number) => TransformStream<Uint8Array, Uint8Array>;

/**
 * workerd drops a Content-Length header and answers chunked when the body is a stream of unknown
 * length, as an S3 response stream passed through a stall guard is; a FixedLengthStream gives
 * it the length. Node sends the header as set, so the body passes through unchanged there.
 */
function knownLength(body: ReadableStream<Uint8Array>, length: number): ReadableStream<Uint8Array> {
  const FixedLengthStream = (globalThis as { FixedLengthStream?: FixedLengthStreamConstructor })
    .FixedLengthStream;
  if (FixedLengthStream === undefined) return body;
  const fixed = new FixedLengthStream(length);
  // A source that breaks off errors the readable side, which cuts the answer short: the
  // client sees a truncated body, never a complete-looking wrong one.
  body.pipeTo(fixed.writable).catch(() => undefined);
  return fixed.readable;
}

/** Keeps the Worker alive for the cache write after the answer is sent; on Node it just runs. */
function waitUntil(c: Context, work: Promise<unknown>): void {
  let context: { waitUntil(promise: Promise<unknown>): void } | undefined;
  try {
    context = c.executionCtx;
  } catch {
    context = undefined;
  }
  if (context !== undefined) context.waitUntil(work);
  else void work;
}
