/**
 * The origin's HTTP API (Hono). Routes parse, authenticate, call the service and shape the
 * answer; every error becomes `{ "error": CODE, "message": "..." }` with the status
 * HTTP_STATUS gives, in one onError.
 *
 *   GET  /health                          200 when the store answers, else 503
 *   GET  /metrics                         Prometheus text
 *   GET  /v1/status                       versions, expiries, draft, pending root
 *   POST /v1/releases                     { files: [{path, length, sha256}], note? } | { withdrawTo }
 *   PUT  /v1/releases/:id/files/:index    the file's bytes (cairn-content-sha256: its sha256)
 *   POST /v1/releases/:id/complete        all files are in: make the draft
 *   GET  /v1/releases/:id                 what changed, deltas, signatures, the bytes to sign
 *   POST /v1/releases/:id/signatures      { keyid, sig, draftSha256 }
 *
 * Every /v1 route but status needs a publisher's signed request (request-auth.ts).
 */
import { Hono, type Context } from 'hono';
import { isStorageError } from '@cairn/storage/errors';
import { HTTP_STATUS, OriginError, isOriginError } from './errors.js';
import { PROMETHEUS_CONTENT_TYPE } from './metrics.js';
import { TIMESTAMP_KEY } from './layout.js';
import { sha256Hex, storage } from './store-io.js';
import { readRelease } from './releases.js';
import type { OriginService } from './service.js';

/** JSON bodies are manifests and signatures: a release of the most files allowed fits. */
export const MAX_JSON_BODY_BYTES = 4 * 1024 * 1024;

const RETRY_AFTER_SECONDS = '5';

function requestPath(c: Context): string {
  const url = new URL(c.req.url);
  return `${url.pathname}${url.search}`;
}

async function readJsonBody(c: Context, expectedSha256: string): Promise<unknown> {
  const declared = Number(c.req.header('content-length') ?? '0');
  if (declared > MAX_JSON_BODY_BYTES) {
    throw new OriginError('TOO_LARGE', `the request body is over ${MAX_JSON_BODY_BYTES} bytes`);
  }
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  if (bytes.length > MAX_JSON_BODY_BYTES) {
    throw new OriginError('TOO_LARGE', `the request body is over ${MAX_JSON_BODY_BYTES} bytes`);
  }
  if (sha256Hex(bytes) !== expectedSha256) {
    throw new OriginError('HASH_MISMATCH', 'the body does not match cairn-content-sha256');
  }
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as unknown;
  } catch (error) {
    throw new OriginError('MALFORMED', `the body is not JSON: ${String(error)}`, { cause: error });
  }
}

function fileIndex(text: string): number {
  if (!/^\d{1,6}$/.test(text)) throw new OriginError('NOT_FOUND', `no file number ${text}`);
  return Number(text);
}

export function createOriginApp(service: OriginService): Hono {
  const app = new Hono();

  app.use(async (c, next) => {
    await next();
    service.countRequest(c.req.routePath, c.res.status);
  });

  app.onError((error, c) => {
    let origin: OriginError;
    if (isOriginError(error)) origin = error;
    else if (isStorageError(error, 'UNAVAILABLE')) {
      origin = new OriginError('STORAGE_UNAVAILABLE', 'object storage is unavailable', {
        cause: error,
      });
    } else {
      service.logger.error('unexpected error', { error, route: c.req.routePath });
      origin = new OriginError('INTERNAL', 'an internal error occurred; see the origin logs');
    }
    const status = HTTP_STATUS[origin.code];
    // Internal details (stacks, storage messages) stay in the logs.
    const message =
      status >= 500 && origin.code !== 'STORAGE_UNAVAILABLE'
        ? 'an internal error occurred; see the origin logs'
        : origin.message;
    if (status === 503) c.header('Retry-After', RETRY_AFTER_SECONDS);
    return c.json({ error: origin.code, message }, status as 400);
  });

  app.notFound((c) =>
    c.json({ error: 'NOT_FOUND', message: `no route ${c.req.method} ${c.req.path}` }, 404),
  );

  app.get('/health', async (c) => {
    await storage('health check', () => service.ctx.store.head(TIMESTAMP_KEY));
    return c.json({ status: 'ok' });
  });

  app.get('/metrics', async (c) => {
    return c.body(await service.metrics.render(), 200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE });
  });

  app.get('/v1/status', async (c) => c.json(await service.status()));

  const authenticate = (c: Context) =>
    service.authenticate(c.req.method, requestPath(c), (name) => c.req.header(name));

  app.post('/v1/releases', async (c) => {
    const auth = await authenticate(c);
    const body = await readJsonBody(c, auth.contentSha256);
    const release = await service.push(auth.keyid, body);
    if (release.kind === 'withdraw') {
      const draft = await service.complete(auth.keyid, release.id);
      return c.json(
        { id: release.id, kind: release.kind, targetsVersion: draft.targetsVersion },
        201,
      );
    }
    return c.json(
      {
        id: release.id,
        kind: release.kind,
        files: release.files.map((f) => ({
          path: f.path,
          index: f.index,
          upload: `/v1/releases/${release.id}/files/${f.index}`,
        })),
      },
      201,
    );
  });

  app.put('/v1/releases/:id/files/:index', async (c) => {
    const auth = await authenticate(c);
    const id = c.req.param('id');
    const index = fileIndex(c.req.param('index'));
    const release = await readRelease(service.ctx, id);
    const file = release.files.find((f) => f.index === index);
    if (file !== undefined && file.sha256 !== auth.contentSha256) {
      throw new OriginError(
        'HASH_MISMATCH',
        `cairn-content-sha256 is not the sha256 the manifest gives for ${file.path}`,
      );
    }
    const body = c.req.raw.body;
    if (body === null) throw new OriginError('LENGTH_MISMATCH', 'the request has no body');
    return c.json(await service.upload(auth.keyid, id, index, body));
  });

  app.post('/v1/releases/:id/complete', async (c) => {
    const auth = await authenticate(c);
    await readJsonBody(c, auth.contentSha256);
    const id = c.req.param('id');
    await service.complete(auth.keyid, id);
    return c.json(await service.show(id));
  });

  app.get('/v1/releases/:id', async (c) => {
    await authenticate(c);
    return c.json(await service.show(c.req.param('id')));
  });

  app.post('/v1/releases/:id/signatures', async (c) => {
    const auth = await authenticate(c);
    const body = await readJsonBody(c, auth.contentSha256);
    return c.json(await service.sign(auth.keyid, c.req.param('id'), body));
  });

  return app;
}
