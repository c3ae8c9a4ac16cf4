import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { utf8 } from '@cairn/verify/encoding';
import { VerifyError } from '@cairn/verify/errors';
import { HttpFetcher } from './http-fetcher.js';
import { failureOf } from './testing/failure.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const routes = new Map<string, Handler>();
const seen: { url: string; userAgent: string | undefined }[] = [];
/** Set when the server sees a client hang up on an endless body. */
let endlessClosedAfter: number | undefined;
let server: Server;
let base: string;

const BODY = utf8('{"signed":"exactly 32 bytes!!"}');

beforeAll(async () => {
  routes.set('/ok', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
    res.end(BODY);
  });
  routes.set('/chunked', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.write(BODY.subarray(0, 10));
    setTimeout(() => res.end(BODY.subarray(10)), 10);
  });
  routes.set('/empty', (_req, res) => {
    res.writeHead(200, { 'content-length': 0 });
    res.end();
  });
  routes.set('/forbidden', (_req, res) => {
    res.writeHead(403);
    res.end('AccessDenied');
  });
  routes.set('/broken', (_req, res) => {
    res.writeHead(500);
    res.end('oops');
  });
  // Says how long it is, then never sends the body: reading it would hang until the timeout.
  routes.set('/declared-huge', (_req, res) => {
    res.writeHead(200, { 'content-length': 1_000_000 });
    res.flushHeaders();
  });
  // Chunked and endless: stops only when the client goes away.
  routes.set('/endless', (req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    let sent = 0;
    const chunk = new Uint8Array(1024).fill(0x41);
    const pump = (): void => {
      while (!res.destroyed && res.write(chunk)) sent += chunk.length;
      if (!res.destroyed) res.once('drain', pump);
    };
    req.socket.once('close', () => {
      endlessClosedAfter = sent;
    });
    pump();
  });
  routes.set('/silent', () => {
    // Never answers.
  });
  routes.set('/stalls-mid-body', (_req, res) => {
    res.writeHead(200, { 'content-length': BODY.length });
    res.write(BODY.subarray(0, 5));
  });
  server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', userAgent: req.headers['user-agent'] });
    const handler = routes.get(req.url ?? '');
    if (handler === undefined) {
      res.writeHead(404);
      res.end('no such file');
      return;
    }
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function failure(promise: Promise<unknown>): Promise<VerifyError> {
  return failureOf(VerifyError, promise, 'expected the fetch to fail');
}

describe('HttpFetcher', () => {
  const fetcher = new HttpFetcher();

  it('returns the exact body of a 200 response', async () => {
    const bytes = await fetcher.fetch(`${base}/ok`, 1000);
    expect(bytes).toEqual(BODY);
    expect(bytes.constructor).toBe(Uint8Array);
  });

  it('accepts a body of exactly maxLength bytes', async () => {
    expect(await fetcher.fetch(`${base}/ok`, BODY.length)).toEqual(BODY);
  });

  it('reassembles a chunked body', async () => {
    expect(await fetcher.fetch(`${base}/chunked`, BODY.length)).toEqual(BODY);
  });

  it('returns an empty body as zero bytes', async () => {
    expect(await fetcher.fetch(`${base}/empty`, 0)).toEqual(new Uint8Array(0));
  });

  it('rejects 404 with NOT_FOUND, naming the URL and the status', async () => {
    const e = await failure(fetcher.fetch(`${base}/missing.json`, 1000));
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toBe(`GET ${base}/missing.json: HTTP 404 Not Found`);
    expect((e.cause as Response).status).toBe(404);
  });

  it('rejects 403 with NOT_FOUND', async () => {
    const e = await failure(fetcher.fetch(`${base}/forbidden`, 1000));
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toBe(`GET ${base}/forbidden: HTTP 403 Forbidden`);
  });

  it('rejects 500 with FETCH_FAILED, naming the URL and the status', async () => {
    const e = await failure(fetcher.fetch(`${base}/broken`, 1000));
    expect(e.code).toBe('FETCH_FAILED');
    expect(e.message).toBe(`GET ${base}/broken: HTTP 500 Internal Server Error`);
    expect((e.cause as Response).status).toBe(500);
  });

  it('rejects a body one byte over maxLength (with Content-Length) with TOO_LARGE', async () => {
    const e = await failure(fetcher.fetch(`${base}/ok`, BODY.length - 1));
    expect(e.code).toBe('TOO_LARGE');
    expect(e.message).toBe(
      `GET ${base}/ok: Content-Length ${BODY.length} is more than the ${BODY.length - 1} bytes allowed`,
    );
  });

  it('rejects a chunked body one byte over maxLength with TOO_LARGE', async () => {
    const e = await failure(fetcher.fetch(`${base}/chunked`, BODY.length - 1));
    expect(e.code).toBe('TOO_LARGE');
    expect(e.message).toBe(
      `GET ${base}/chunked: the body is more than the ${BODY.length - 1} bytes allowed`,
    );
  });

  it('rejects on Content-Length alone, without waiting for the body', async () => {
    const slowFetcher = new HttpFetcher({ timeoutMs: 5_000 });
    const started = Date.now();
    const e = await failure(slowFetcher.fetch(`${base}/declared-huge`, 1000));
    expect(e.code).toBe('TOO_LARGE');
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('stops reading an endless body soon after maxLength', async () => {
    endlessClosedAfter = undefined;
    const e = await failure(fetcher.fetch(`${base}/endless`, 64 * 1024));
    expect(e.code).toBe('TOO_LARGE');
    await expect.poll(() => endlessClosedAfter, { timeout: 2_000 }).toBeDefined();
    // The server stopped long before anything like "endless": socket buffers only.
    expect(endlessClosedAfter).toBeLessThan(16 * 1024 * 1024);
  });

  it('gives up on a server that never answers with FETCH_FAILED after the timeout', async () => {
    const quick = new HttpFetcher({ timeoutMs: 200 });
    const started = Date.now();
    const e = await failure(quick.fetch(`${base}/silent`, 1000));
    expect(e.code).toBe('FETCH_FAILED');
    expect(e.message).toBe(`GET ${base}/silent: no complete response within 200 ms`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });

  it('gives up on a body that stalls halfway with FETCH_FAILED after the timeout', async () => {
    const quick = new HttpFetcher({ timeoutMs: 200 });
    const e = await failure(quick.fetch(`${base}/stalls-mid-body`, 1000));
    expect(e.code).toBe('FETCH_FAILED');
    expect(e.message).toBe(`GET ${base}/stalls-mid-body: no complete response within 200 ms`);
  });

  it('rejects a refused connection with FETCH_FAILED and the network error as cause', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const e = await failure(fetcher.fetch(`http://127.0.0.1:${port}/x`, 1000));
    expect(e.code).toBe('FETCH_FAILED');
    expect(e.message).toMatch(
      new RegExp(`^GET http://127\\.0\\.0\\.1:${port}/x: fetch failed: .*ECONNREFUSED`),
    );
    expect(e.cause).toBeInstanceOf(TypeError);
  });

  it('sends the configured User-Agent', async () => {
    const named = new HttpFetcher({ userAgent: 'cairn-test/1.0' });
    seen.length = 0;
    await named.fetch(`${base}/ok`, 1000);
    expect(seen).toEqual([{ url: '/ok', userAgent: 'cairn-test/1.0' }]);
  });

  it('refuses a maxLength that is not a non-negative integer', async () => {
    await expect(fetcher.fetch(`${base}/ok`, -1)).rejects.toThrow(
      new RangeError('maxLength: expected a non-negative integer, received -1'),
    );
  });

  it('refuses a timeout that is not positive', () => {
    expect(() => new HttpFetcher({ timeoutMs: 0 })).toThrow(
      new RangeError('timeoutMs: expected a positive number, received 0'),
    );
  });
});
