/**
 * The edge's HTTP rules, exactly, on every way it is deployed: the Worker bundle in workerd on
 * an R2 binding and on S3 (MinIO), and the Node server on a filesystem store. One real signed
 * repository (two releases, deltas) is seeded into each; every answer is checked status by
 * status and header by header, and a real TUF client refreshes and downloads through each.
 */
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { Metadata } from '@cairn/verify/metadata';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  DEPLOYMENT_KINDS,
  startDeployment,
  type Deployment,
  type DeploymentKind,
} from './support/deployments.js';
import { loggedRepository } from './support/mirror-memory.js';
import { buildRepository, verifyThrough, type BuiltRepository } from './support/repository.js';

const MiB = 1024 * 1024;
const LARGE_BYTES = 10 * MiB;
const IMMUTABLE = 'public, max-age=31536000, immutable';
const EXPOSED =
  'ETag,Last-Modified,Content-Length,Content-Range,Accept-Ranges,Retry-After,X-Cairn-Mirror';

let repo: BuiltRepository;
/** A repository whose root declares a transparency log of 305 entries (in-memory, signed). */
let logged: Awaited<ReturnType<typeof loggedRepository>>;
const onAll: Deployment[] = [];

beforeAll(async () => {
  repo = await buildRepository({ largeFileBytes: LARGE_BYTES });
  logged = await loggedRepository();
});
afterAll(async () => {
  await Promise.all(onAll.map((d) => d.close()));
});

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** A deployment torn down after the file, seeded with `keys` (default: the whole repository). */
async function deploy(
  kind: DeploymentKind,
  vars: Record<string, string>,
  keys?: readonly string[],
): Promise<Deployment> {
  const deployment = await startDeployment(kind, { vars });
  onAll.push(deployment);
  if (keys === undefined) await repo.copyPublic(deployment.store);
  else {
    for (const key of keys) await deployment.store.put(key, await repo.read(key));
  }
  return deployment;
}

/**
 * GET (or another method) with `Accept-Encoding: identity`: workerd compresses JSON for clients
 * that accept gzip, and the exact Content-Length checks here are of the identity encoding.
 */
async function call(
  d: Deployment,
  path: string,
  init: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ response: Response; body: Uint8Array }> {
  const response = await fetch(`${d.url}${path}`, {
    method: init.method ?? 'GET',
    headers: { 'accept-encoding': 'identity', ...init.headers },
  });
  const body = new Uint8Array(await response.arrayBuffer());
  return { response, body };
}

function json(body: Uint8Array): unknown {
  return JSON.parse(new TextDecoder().decode(body)) as unknown;
}

/** A request with the path sent exactly as written: fetch would resolve `..` first. */
function rawGet(
  url: string,
  path: string,
  options: { headers?: Record<string, string>; localAddress?: string } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: hostname,
        port,
        path,
        method: 'GET',
        headers: options.headers,
        localAddress: options.localAddress,
        agent: false,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function headersOf(response: Response, names: readonly string[]): Record<string, string | null> {
  return Object.fromEntries(names.map((name) => [name, response.headers.get(name)]));
}

const OBJECT_HEADERS = [
  'etag',
  'last-modified',
  'cache-control',
  'content-type',
  'content-length',
  'accept-ranges',
  'x-content-type-options',
  'x-cairn-mirror',
] as const;

describe.each(DEPLOYMENT_KINDS)('the edge on %s', (kind) => {
  const mirror = `mirror-${kind}`;
  const workerd = kind.startsWith('workerd');
  let d: Deployment;

  beforeAll(async () => {
    d = await deploy(kind, { CAIRN_MIRROR_NAME: mirror });
  });

  const release2 = () => repo.releases[1];
  const main2 = () => {
    const file = release2().files.get('main.cvd');
    if (file === undefined) throw new Error('no main.cvd');
    return file;
  };

  /** The headers an object's 200 carries, from what storage holds. */
  async function expectedHeaders(
    key: string,
    size: number,
    cacheControl: string,
    contentType: string,
  ): Promise<Record<string, string>> {
    const info = await d.store.head(key);
    if (info === undefined) throw new Error(`${key} is not in the store`);
    return {
      etag: `"${info.etag}"`,
      'last-modified': info.lastModified.toUTCString(),
      'cache-control': cacheControl,
      'content-type': contentType,
      'content-length': String(size),
      'accept-ranges': 'bytes',
      'x-content-type-options': 'nosniff',
      'x-cairn-mirror': mirror,
    };
  }

  test('serves versioned metadata, hash-named targets (in a directory too) and a delta whole, immutable', async () => {
    const delta = repo.deltas.find((each) => each.target === 'main.cvd');
    const daily = release2().files.get('daily/bytecode.cvd');
    if (delta === undefined || daily === undefined) throw new Error('fixture incomplete');
    const cases = [
      ['metadata/1.root.json', 'application/json'],
      ['metadata/2.targets.json', 'application/json'],
      ['metadata/2.snapshot.json', 'application/json'],
      [main2().key, 'application/octet-stream'],
      [daily.key, 'application/octet-stream'],
      [delta.key, 'application/octet-stream'],
    ] as const;
    for (const [key, type] of cases) {
      const bytes = await repo.read(key);
      const { response, body } = await call(d, `/${key}`);
      expect(response.status, key).toBe(200);
      expect(body, key).toEqual(bytes);
      expect(headersOf(response, OBJECT_HEADERS), key).toEqual(
        await expectedHeaders(key, bytes.length, IMMUTABLE, type),
      );
      expect(response.headers.get('etag'), key).toMatch(/^"[^"]+"$/);
    }
    expect(delta.key.startsWith('targets/_delta/main.cvd/')).toBe(true);
  });

  test('serves timestamp.json and the unversioned root.json with a short max-age', async () => {
    for (const key of ['metadata/timestamp.json', 'metadata/root.json']) {
      const bytes = await repo.read(key);
      const { response, body } = await call(d, `/${key}`);
      expect(response.status, key).toBe(200);
      expect(body, key).toEqual(bytes);
      expect(headersOf(response, OBJECT_HEADERS), key).toEqual(
        await expectedHeaders(key, bytes.length, 'public, max-age=60', 'application/json'),
      );
    }
  });

  test('honours CAIRN_TIMESTAMP_MAX_AGE and CAIRN_NOT_FOUND_MAX_AGE', async () => {
    const custom = await deploy(
      kind,
      { CAIRN_TIMESTAMP_MAX_AGE: '7', CAIRN_NOT_FOUND_MAX_AGE: '3' },
      ['metadata/timestamp.json', 'metadata/root.json', 'metadata/1.root.json'],
    );
    const cacheControl = async (path: string) => [
      (await call(custom, path)).response.status,
      (await call(custom, path)).response.headers.get('cache-control'),
    ];
    expect(await cacheControl('/metadata/timestamp.json')).toEqual([200, 'public, max-age=7']);
    expect(await cacheControl('/metadata/root.json')).toEqual([200, 'public, max-age=7']);
    expect(await cacheControl('/metadata/1.root.json')).toEqual([200, IMMUTABLE]);
    expect(await cacheControl('/metadata/2.root.json')).toEqual([404, 'public, max-age=3']);
  });

  test('answers HEAD with the headers of GET, the object length and no body', async () => {
    for (const [key, cacheControl, type] of [
      [main2().key, IMMUTABLE, 'application/octet-stream'],
      ['metadata/timestamp.json', 'public, max-age=60', 'application/json'],
    ] as const) {
      const bytes = await repo.read(key);
      const { response, body } = await call(d, `/${key}`, { method: 'HEAD' });
      expect(response.status, key).toBe(200);
      expect(body.length, key).toBe(0);
      expect(headersOf(response, OBJECT_HEADERS), key).toEqual(
        await expectedHeaders(key, bytes.length, cacheControl, type),
      );
    }
  });

  describe('preconditions', () => {
    const key = () => main2().key;
    const etag = async () => `"${(await d.store.head(key()))?.etag}"`;
    const lastModified = async () => {
      const info = await d.store.head(key());
      if (info === undefined) throw new Error('missing');
      return info.lastModified;
    };

    test('If-None-Match that matches (exactly, `*`, in a list, or weakly) is 304 with the ETag and no body', async () => {
      const tag = await etag();
      for (const header of [tag, '*', `"other", ${tag}`, `W/${tag}`]) {
        const { response, body } = await call(d, `/${key()}`, {
          headers: { 'if-none-match': header },
        });
        expect(response.status, header).toBe(304);
        expect(body.length, header).toBe(0);
        expect(response.headers.get('etag'), header).toBe(tag);
        expect(response.headers.get('cache-control'), header).toBe(IMMUTABLE);
        expect(response.headers.get('x-cairn-mirror'), header).toBe(mirror);
      }
      const other = await call(d, `/${key()}`, { headers: { 'if-none-match': '"other"' } });
      expect(other.response.status).toBe(200);
      expect(sha256(other.body)).toBe(main2().sha256);
    });

    test('If-Match that does not match strongly is 412; one that matches is 200', async () => {
      const tag = await etag();
      for (const header of ['"other"', `W/${tag}`]) {
        const { response, body } = await call(d, `/${key()}`, { headers: { 'if-match': header } });
        expect(response.status, header).toBe(412);
        expect(response.headers.get('etag'), header).toBe(tag);
        expect(response.headers.get('x-cairn-mirror'), header).toBe(mirror);
        expect(json(body), header).toMatchObject({ error: 'PRECONDITION_FAILED' });
      }
      for (const header of [tag, '*', `"other", ${tag}`]) {
        const { response, body } = await call(d, `/${key()}`, { headers: { 'if-match': header } });
        expect(response.status, header).toBe(200);
        expect(sha256(body), header).toBe(main2().sha256);
      }
      const missing = await call(d, `/targets/${'0'.repeat(64)}.main.cvd`, {
        headers: { 'if-match': '*' },
      });
      expect(missing.response.status).toBe(412);
    });

    test('If-Modified-Since at or after Last-Modified is 304, before it 200; If-None-Match wins over it', async () => {
      const modified = await lastModified();
      const at = modified.toUTCString();
      const later = new Date(modified.getTime() + 3_600_000).toUTCString();
      const earlier = new Date(modified.getTime() - 3_600_000).toUTCString();
      for (const since of [at, later]) {
        const { response, body } = await call(d, `/${key()}`, {
          headers: { 'if-modified-since': since },
        });
        expect(response.status, since).toBe(304);
        expect(body.length).toBe(0);
      }
      expect(
        (await call(d, `/${key()}`, { headers: { 'if-modified-since': earlier } })).response.status,
      ).toBe(200);
      // RFC 9110 13.2.2: If-Modified-Since is ignored when If-None-Match is present.
      const both = await call(d, `/${key()}`, {
        headers: { 'if-none-match': '"other"', 'if-modified-since': later },
      });
      expect(both.response.status).toBe(200);
      // ... and If-Match is evaluated before If-None-Match.
      const tag = await etag();
      const order = await call(d, `/${key()}`, {
        headers: { 'if-match': '"other"', 'if-none-match': tag },
      });
      expect(order.response.status).toBe(412);
      const unmodified = await call(d, `/${key()}`, {
        headers: { 'if-unmodified-since': earlier },
      });
      expect(unmodified.response.status).toBe(412);
    });
  });

  describe('ranges', () => {
    const key = () => main2().key;
    const bytes = () => main2().bytes;

    async function expectRange(header: string, first: number, last: number): Promise<void> {
      const size = bytes().length;
      const { response, body } = await call(d, `/${key()}`, { headers: { range: header } });
      expect(response.status, header).toBe(206);
      expect(response.headers.get('content-range'), header).toBe(`bytes ${first}-${last}/${size}`);
      expect(response.headers.get('content-length'), header).toBe(String(last - first + 1));
      expect(response.headers.get('etag'), header).toBe(`"${(await d.store.head(key()))?.etag}"`);
      expect(response.headers.get('cache-control'), header).toBe(IMMUTABLE);
      expect(body, header).toEqual(bytes().slice(first, last + 1));
    }

    test('a single range is 206 with the exact Content-Range and bytes', async () => {
      const size = bytes().length;
      expect(size).toBe(204_731);
      await expectRange('bytes=0-99', 0, 99);
      await expectRange('bytes=0-0', 0, 0);
      await expectRange('bytes=1000-1999', 1000, 1999);
      await expectRange('bytes=-500', size - 500, size - 1);
      await expectRange('bytes=200000-', 200_000, size - 1);
      // A last position past the end is the end; a suffix longer than the object is all of it.
      await expectRange(`bytes=204700-${size + 1000}`, 204_700, size - 1);
      await expectRange(`bytes=-${size + 5}`, 0, size - 1);
      await expectRange(`bytes=${size - 1}-`, size - 1, size - 1);
    });

    test('a range that starts past the end (or an empty suffix) is 416 with bytes */size', async () => {
      const size = bytes().length;
      for (const header of [`bytes=${size}-`, `bytes=${size + 10}-${size + 20}`, 'bytes=-0']) {
        const { response, body } = await call(d, `/${key()}`, { headers: { range: header } });
        expect(response.status, header).toBe(416);
        expect(response.headers.get('content-range'), header).toBe(`bytes */${size}`);
        expect(response.headers.get('x-cairn-mirror'), header).toBe(mirror);
        expect(json(body), header).toMatchObject({ error: 'RANGE_NOT_SATISFIABLE' });
      }
    });

    test('several ranges, a malformed or non-byte range is the whole object with 200', async () => {
      for (const header of ['bytes=0-1,5-6', 'bytes=5-2', 'items=0-1', 'bytes=x-y', 'bytes=-']) {
        const { response, body } = await call(d, `/${key()}`, { headers: { range: header } });
        expect(response.status, header).toBe(200);
        expect(response.headers.get('content-range'), header).toBeNull();
        expect(response.headers.get('content-length'), header).toBe(String(bytes().length));
        expect(sha256(body), header).toBe(main2().sha256);
      }
    });

    test('If-Range: the range only if the ETag (strongly) or the date matches', async () => {
      const info = await d.store.head(key());
      if (info === undefined) throw new Error('missing');
      const tag = `"${info.etag}"`;
      for (const ifRange of [tag, info.lastModified.toUTCString()]) {
        const { response, body } = await call(d, `/${key()}`, {
          headers: { range: 'bytes=10-19', 'if-range': ifRange },
        });
        expect(response.status, ifRange).toBe(206);
        expect(body, ifRange).toEqual(bytes().slice(10, 20));
      }
      const earlier = new Date(info.lastModified.getTime() - 60_000).toUTCString();
      for (const ifRange of ['"other"', `W/${tag}`, earlier]) {
        const { response, body } = await call(d, `/${key()}`, {
          headers: { range: 'bytes=10-19', 'if-range': ifRange },
        });
        expect(response.status, ifRange).toBe(200);
        expect(response.headers.get('content-range'), ifRange).toBeNull();
        expect(sha256(body), ifRange).toBe(main2().sha256);
      }
    });
  });

  describe('the transparency log', () => {
    const TILES = [
      'log/tile/1/000.p/1',
      'log/tile/0/000',
      'log/tile/entries/000',
      'log/tile/0/001.p/49',
      'log/tile/entries/001.p/49',
    ];
    let withLog: Deployment;

    beforeAll(async () => {
      withLog = await startDeployment(kind, { vars: { CAIRN_MIRROR_NAME: mirror } });
      onAll.push(withLog);
      // Its private writer lease (_origin/log/lock.json) too: the edge must not serve it.
      await logged.repo.copyTo(withLog.store);
    });

    /** The headers an object's 200 carries, from what the log deployment's storage holds. */
    async function logHeaders(key: string, cacheControl: string, contentType: string) {
      const info = await withLog.store.head(key);
      if (info === undefined) throw new Error(`${key} is not in the store`);
      return {
        etag: `"${info.etag}"`,
        'last-modified': info.lastModified.toUTCString(),
        'cache-control': cacheControl,
        'content-type': contentType,
        'content-length': String(info.size),
        'accept-ranges': 'bytes',
        'x-content-type-options': 'nosniff',
        'x-cairn-mirror': mirror,
      };
    }

    test('log/checkpoint is served with the max-age of timestamp.json, as UTF-8 text', async () => {
      const { response, body } = await call(withLog, '/log/checkpoint');
      expect(response.status).toBe(200);
      expect(body).toEqual(logged.log.checkpoints.at(-1));
      expect(headersOf(response, OBJECT_HEADERS)).toEqual(
        await logHeaders('log/checkpoint', 'public, max-age=60', 'text/plain; charset=utf-8'),
      );
      expect(new TextDecoder().decode(body).split('\n').slice(0, 2)).toEqual([
        'cairn.test/log',
        '305',
      ]);
    });

    test('every tile and entry bundle is served exactly, immutable, with HEAD and 304', async () => {
      for (const key of TILES) {
        const { response, body } = await call(withLog, `/${key}`);
        expect(response.status, key).toBe(200);
        expect(body, key).toEqual(await logged.repo.read(key));
        expect(headersOf(response, OBJECT_HEADERS), key).toEqual(
          await logHeaders(key, IMMUTABLE, 'application/octet-stream'),
        );
        const head = await call(withLog, `/${key}`, { method: 'HEAD' });
        expect([head.response.status, head.body.length], key).toEqual([200, 0]);
        expect(head.response.headers.get('content-length'), key).toBe(String(body.length));
        const tag = response.headers.get('etag') ?? '';
        const again = await call(withLog, `/${key}`, { headers: { 'if-none-match': tag } });
        expect(again.response.status, key).toBe(304);
        expect(again.response.headers.get('cache-control'), key).toBe(IMMUTABLE);
      }
      const range = await call(withLog, '/log/tile/0/000', { headers: { range: 'bytes=32-63' } });
      expect(range.response.status).toBe(206);
      expect(range.body).toEqual((await logged.repo.read('log/tile/0/000')).slice(32, 64));
    });

    test('nothing else under log/ is served: not the lease, not a listing, not a non-C2SP tile path', async () => {
      expect(await withLog.store.head('_origin/log/lock.json')).toBeDefined();
      for (const path of [
        '/_origin/log/lock.json',
        '/log/lock.json',
        '/log',
        '/log/',
        '/log/tile/',
        '/log/tile/0/',
        '/log/tile/entries/',
        '/log/checkpoint.bak',
        '/log/checkpoint/',
        '/log/tile/0/000.p/0',
        '/log/tile/0/000.p/256',
        '/log/tile/0/001.p/049',
        '/log/tile/0/x000/001',
        '/log/tile/64/000',
        '/log/tile/0/000.json',
        '/log/tile/0%2F000',
        // Well-formed, but past the log: storage has no such tile.
        '/log/tile/0/002',
        '/log/tile/0/001.p/50',
      ]) {
        const { response, body } = await call(withLog, path);
        expect(response.status, path).toBe(404);
        expect(response.headers.get('cache-control'), path).toBe('public, max-age=10');
        expect(json(body), path).toMatchObject({ error: 'NOT_FOUND' });
      }
    });

    test('/health reports the log size', async () => {
      const { response, body } = await call(withLog, '/health');
      expect(response.status).toBe(200);
      expect(json(body)).toMatchObject({ status: 'ok', verified: false, log: { size: 305 } });
      const metrics = new TextDecoder().decode((await call(withLog, '/metrics')).body);
      expect(metrics).toContain('\ncairn_edge_log_size 305\n');
    });

    if (workerd) {
      test('tiles are answered from the Cache API once fetched; the checkpoint is not', async () => {
        const cached = await startDeployment(kind, {});
        onAll.push(cached);
        for (const key of ['log/checkpoint', 'log/tile/0/000']) {
          await cached.store.put(key, await logged.repo.read(key));
          expect((await call(cached, `/${key}`)).response.status, key).toBe(200);
          await cached.store.delete(key);
        }
        const tile = await call(cached, '/log/tile/0/000');
        expect(tile.response.status).toBe(200);
        expect(tile.body).toEqual(await logged.repo.read('log/tile/0/000'));
        expect((await call(cached, '/log/checkpoint')).response.status).toBe(404);
      });
    }
  });

  test('POST, PUT, DELETE and PATCH are 405 with Allow, and change nothing', async () => {
    const key = main2().key;
    const before = await d.store.head(key);
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      for (const path of [`/${key}`, '/metadata/timestamp.json', '/nowhere']) {
        const { response, body } = await call(d, path, { method });
        expect(response.status, `${method} ${path}`).toBe(405);
        expect(response.headers.get('allow'), `${method} ${path}`).toBe('GET, HEAD, OPTIONS');
        expect(response.headers.get('x-cairn-mirror')).toBe(mirror);
        expect(json(body)).toMatchObject({ error: 'METHOD_NOT_ALLOWED' });
      }
    }
    expect(await d.store.head(key)).toEqual(before);
  });

  test('a missing object is 404 (never 403), briefly cacheable, with a JSON error', async () => {
    for (const path of [
      '/metadata/99.snapshot.json',
      '/metadata/3.targets.json',
      `/targets/${'0'.repeat(64)}.main.cvd`,
      `/targets/_delta/main.cvd/${'1'.repeat(64)}.${'2'.repeat(64)}`,
    ]) {
      const { response, body } = await call(d, path);
      expect(response.status, path).toBe(404);
      expect(
        headersOf(response, ['cache-control', 'content-type', 'x-cairn-mirror']),
        path,
      ).toEqual({
        'cache-control': 'public, max-age=10',
        'content-type': 'application/json',
        'x-cairn-mirror': mirror,
      });
      const error = json(body) as { error: string; message: string };
      expect(Object.keys(error).sort(), path).toEqual(['error', 'message']);
      expect(error.error, path).toBe('NOT_FOUND');
      const head = await call(d, path, { method: 'HEAD' });
      expect(head.response.status, `HEAD ${path}`).toBe(404);
    }
  });

  test('never serves the private prefix, a listing, or a path that escapes its segment', async () => {
    const [privateKey] = repo.privateKeys().filter((k) => k.endsWith('release.json'));
    if (privateKey === undefined) throw new Error('the origin wrote no release.json');
    // The object is there, in the very store the edge reads: refusing it is the edge's doing.
    await d.store.put(privateKey, await repo.read(privateKey));
    expect(await d.store.head(privateKey)).toBeDefined();
    const daily = release2().files.get('daily/bytecode.cvd');
    if (daily === undefined) throw new Error('fixture incomplete');
    const dailyName = daily.key.slice('targets/daily/'.length);
    const refused = [
      `/${privateKey}`,
      '/_origin/',
      '/_origin/draft.json',
      '/',
      '/metadata',
      '/metadata/',
      '/targets',
      '/targets/',
      '/targets/daily/',
      '/targets/_delta/',
      '/metadata/1.root.json/',
      '/metadata/01.root.json',
      '/metadata/1.timestamp.json',
      '/metadata/timestamp.json.bak',
      `/targets/${'0'.repeat(63)}.main.cvd`,
      `/targets/${main2().sha256.toUpperCase()}.main.cvd`,
      // Encoded separators would make one request segment two storage segments.
      `/targets/daily%2F${dailyName}`,
      `/targets/daily%5C${dailyName}`,
      `/targets/%2e%2e%2F${privateKey}`,
      `/metadata/..%2F${privateKey}`,
      `/targets/daily/%00${dailyName}`,
      `/targets/%E0%A4%A/${dailyName}`,
    ];
    for (const path of refused) {
      const { response, body } = await call(d, path);
      expect(response.status, path).toBe(404);
      expect(response.headers.get('cache-control'), path).toBe('public, max-age=10');
      expect(json(body), path).toMatchObject({ error: 'NOT_FOUND' });
    }
    // Sent as written (fetch would resolve the dots first): the edge sees them, or the runtime
    // resolves them to a path that is refused anyway; either way nothing private comes back.
    for (const path of [
      `/targets/../${privateKey}`,
      `/targets/%2e%2e/${privateKey}`,
      `/metadata/%2E%2E/${privateKey}`,
      `/targets/daily/../../${privateKey}`,
      `/metadata/./../${privateKey}`,
    ]) {
      const { status, headers } = await rawGet(d.url, path);
      expect(status, path).toBe(404);
      expect(headers['x-cairn-mirror'], path).toBe(mirror);
    }
    // The encoded-slash form is refused even though its target exists under the plain name.
    expect((await call(d, `/${daily.key}`)).response.status).toBe(200);
  });

  test('CORS: every origin may read, preflight is 204, and the headers clients need are exposed', async () => {
    const { response } = await call(d, `/${main2().key}`, {
      headers: { origin: 'https://app.example' },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(response.headers.get('access-control-expose-headers')).toBe(EXPOSED);

    const preflight = await call(d, `/${main2().key}`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'range, if-none-match',
      },
    });
    expect(preflight.response.status).toBe(204);
    expect(preflight.body.length).toBe(0);
    expect(
      headersOf(preflight.response, [
        'access-control-allow-origin',
        'access-control-allow-methods',
        'access-control-allow-headers',
        'access-control-max-age',
        'x-cairn-mirror',
      ]),
    ).toEqual({
      'access-control-allow-origin': '*',
      'access-control-allow-methods': 'GET,HEAD,OPTIONS',
      'access-control-allow-headers':
        'Range,If-Match,If-None-Match,If-Modified-Since,If-Unmodified-Since,If-Range',
      'access-control-max-age': '86400',
      'x-cairn-mirror': mirror,
    });
  });

  test('X-Cairn-Mirror is on every answer, errors included', async () => {
    const key = main2().key;
    const tag = `"${(await d.store.head(key))?.etag}"`;
    const answers: [string, number][] = [];
    const record = async (path: string, init: Parameters<typeof call>[2] = {}) => {
      const { response } = await call(d, path, init);
      expect(response.headers.get('x-cairn-mirror'), `${response.status} ${path}`).toBe(mirror);
      answers.push([path, response.status]);
    };
    await record(`/${key}`);
    await record(`/${key}`, { headers: { range: 'bytes=0-9' } });
    await record(`/${key}`, { headers: { 'if-none-match': tag } });
    await record(`/${key}`, { headers: { 'if-match': '"x"' } });
    await record(`/${key}`, { headers: { range: 'bytes=999999999-' } });
    await record(`/${key}`, { method: 'HEAD' });
    await record(`/${key}`, { method: 'OPTIONS', headers: { origin: 'https://a.example' } });
    await record(`/${key}`, { method: 'POST' });
    await record('/nothing-here');
    await record('/health');
    await record('/metrics');
    expect(answers.map(([, status]) => status)).toEqual([
      200, 206, 304, 412, 416, 200, 204, 405, 404, 200, 200,
    ]);
  });

  test('/health reports the timestamp in storage', async () => {
    const timestamp = Metadata.fromBytes(
      await repo.read('metadata/timestamp.json'),
      'timestamp',
      'timestamp.json',
    );
    const info = await d.store.head('metadata/timestamp.json');
    if (info === undefined) throw new Error('no timestamp');
    const before = Date.now();
    const { response, body } = await call(d, '/health');
    const after = Date.now();
    expect(response.status).toBe(200);
    expect(headersOf(response, ['cache-control', 'content-type', 'x-cairn-mirror'])).toEqual({
      'cache-control': 'no-store',
      'content-type': 'application/json',
      'x-cairn-mirror': mirror,
    });
    const health = json(body) as { timestamp: { ageSeconds: number } };
    expect(health).toEqual({
      status: 'ok',
      mirror,
      mode: 'direct',
      verified: false,
      timestamp: {
        version: repo.timestampVersion,
        expires: timestamp.signed.expires.toISOString(),
        ageSeconds: health.timestamp.ageSeconds,
      },
    });
    expect(repo.timestampVersion).toBe(2);
    const age = (now: number) => Math.floor((now - info.lastModified.getTime()) / 1000);
    expect(health.timestamp.ageSeconds).toBeGreaterThanOrEqual(Math.max(0, age(before) - 1));
    expect(health.timestamp.ageSeconds).toBeLessThanOrEqual(age(after) + 1);
  });

  test('/metrics counts the requests answered, in the Prometheus text format', async () => {
    const fresh = await deploy(kind, {}, ['metadata/timestamp.json', main2().key]);
    const size = main2().bytes.length;
    expect((await call(fresh, `/${main2().key}`)).response.status).toBe(200);
    expect((await call(fresh, `/${main2().key}`)).response.status).toBe(200);
    expect((await call(fresh, '/metadata/5.snapshot.json')).response.status).toBe(404);
    expect(
      (await call(fresh, '/metadata/timestamp.json', { method: 'HEAD' })).response.status,
    ).toBe(200);
    expect((await call(fresh, '/_origin/draft.json')).response.status).toBe(404);
    expect((await call(fresh, '/health')).response.status).toBe(200);
    const { response, body } = await call(fresh, '/metrics');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4');
    expect(response.headers.get('cache-control')).toBe('no-store');
    const text = new TextDecoder().decode(body);
    const age = /cairn_edge_timestamp_age_seconds (\d+)\n/.exec(text)?.[1] ?? 'missing';
    // Workers answer the repeat GET from the Cache API; the first GET and the missing snapshot
    // (an immutable path, so looked up there first) are misses.
    const [hits, misses] = workerd ? [1, 2] : [0, 0];
    expect(text).toBe(
      [
        '# HELP cairn_edge_requests_total Requests answered, by kind of path and status.',
        '# TYPE cairn_edge_requests_total counter',
        'cairn_edge_requests_total{class="health",status="200"} 1',
        'cairn_edge_requests_total{class="metadata",status="404"} 1',
        'cairn_edge_requests_total{class="other",status="404"} 1',
        'cairn_edge_requests_total{class="target",status="200"} 2',
        'cairn_edge_requests_total{class="timestamp",status="200"} 1',
        '# HELP cairn_edge_response_bytes_total Body bytes sent, by kind of path.',
        '# TYPE cairn_edge_response_bytes_total counter',
        // Only answers that declare their length are counted: objects, not JSON errors.
        `cairn_edge_response_bytes_total{class="target"} ${2 * size}`,
        '# HELP cairn_edge_events_total Cache hits and misses, failures and refusals.',
        '# TYPE cairn_edge_events_total counter',
        `cairn_edge_events_total{event="cache_hit"} ${hits}`,
        `cairn_edge_events_total{event="cache_miss"} ${misses}`,
        'cairn_edge_events_total{event="storage_error"} 0',
        'cairn_edge_events_total{event="verification_failure"} 0',
        'cairn_edge_events_total{event="rate_limited"} 0',
        'cairn_edge_events_total{event="upstream_error"} 0',
        'cairn_edge_events_total{event="upstream_invalid"} 0',
        'cairn_edge_events_total{event="split_view"} 0',
        '# HELP cairn_edge_timestamp_version The timestamp version last served or checked.',
        '# TYPE cairn_edge_timestamp_version gauge',
        'cairn_edge_timestamp_version 2',
        '# HELP cairn_edge_timestamp_age_seconds How old that timestamp was in storage.',
        '# TYPE cairn_edge_timestamp_age_seconds gauge',
        `cairn_edge_timestamp_age_seconds ${age}`,
        '',
      ].join('\n'),
    );
    expect(Number(age)).toBeLessThan(600);
  });

  test('rate limit: the third full-file GET from one address is 429; metadata and deltas never are', async () => {
    const delta = repo.deltas.find((each) => each.target === 'main.cvd');
    const notes = release2().files.get('notes.txt');
    const daily = release2().files.get('daily/bytecode.cvd');
    if (delta === undefined || notes === undefined || daily === undefined) {
      throw new Error('fixture incomplete');
    }
    const limited = await deploy(
      kind,
      { CAIRN_RATE_LIMIT_PER_MINUTE: '1', CAIRN_RATE_LIMIT_BURST: '2' },
      ['metadata/timestamp.json', 'metadata/2.snapshot.json', notes.key, daily.key, delta.key],
    );
    // Under workerd the address is CF-Connecting-IP, which Cloudflare sets; on Node the socket's.
    const from = (address: string): Record<string, string> =>
      workerd ? { 'cf-connecting-ip': address } : {};
    const started = Date.now();
    expect(
      (await call(limited, `/${notes.key}`, { headers: from('198.51.100.7') })).response.status,
    ).toBe(200);
    expect(
      (await call(limited, `/${daily.key}`, { headers: from('198.51.100.7') })).response.status,
    ).toBe(200);
    const third = await call(limited, `/${notes.key}`, { headers: from('198.51.100.7') });
    const elapsedSeconds = (Date.now() - started) / 1000;
    expect(third.response.status).toBe(429);
    expect(json(third.body)).toMatchObject({ error: 'RATE_LIMITED' });
    expect(third.response.headers.get('x-cairn-mirror')).toBe('cairn-edge');
    // One token a minute: the wait is a minute less what has refilled since the first GET.
    const retryAfter = Number(third.response.headers.get('retry-after'));
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(retryAfter).toBeGreaterThanOrEqual(Math.ceil(60 - elapsedSeconds));

    for (const path of [
      '/metadata/timestamp.json',
      '/metadata/2.snapshot.json',
      `/${delta.key}`,
      `/${delta.key}`,
      `/${delta.key}`,
    ]) {
      const { response } = await call(limited, path, { headers: from('198.51.100.7') });
      expect(response.status, path).toBe(200);
    }
    expect(
      (await call(limited, `/${notes.key}`, { method: 'HEAD', headers: from('198.51.100.7') }))
        .response.status,
    ).toBe(200);

    if (workerd) {
      const other = await call(limited, `/${notes.key}`, { headers: from('198.51.100.8') });
      expect(other.response.status).toBe(200);
    } else {
      // On Node the header is not trusted: the same socket address stays limited ...
      const spoofed = await call(limited, `/${notes.key}`, {
        headers: { 'cf-connecting-ip': '198.51.100.8' },
      });
      expect(spoofed.response.status).toBe(429);
      // ... and another address (127.0.0.2 is loopback too on Linux) is not.
      const other = await rawGet(limited.url, `/${notes.key}`, { localAddress: '127.0.0.2' });
      expect(other.status).toBe(200);
    }
  });

  test(`streams a ${LARGE_BYTES / MiB} MB target whole`, async () => {
    const large = release2().files.get('large.bin');
    if (large === undefined) throw new Error('fixture incomplete');
    const { response, body } = await call(d, `/${large.key}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-length')).toBe(String(LARGE_BYTES));
    expect(body.length).toBe(LARGE_BYTES);
    expect(sha256(body)).toBe(large.sha256);
  });

  test('a TUF client refreshes and downloads every target through it', async () => {
    const view = await verifyThrough(d.url, repo.trustedRoot);
    expect(view.targetsVersion).toBe(2);
    expect(view.timestampVersion).toBe(repo.timestampVersion);
    const expected = new Map<string, string>();
    for (const [path, file] of release2().files) expected.set(path, file.sha256);
    for (const delta of repo.deltas) expected.set(delta.path, delta.sha256);
    expect(new Map([...view.files].map(([path, bytes]) => [path, sha256(bytes)]))).toEqual(
      expected,
    );
  });

  if (workerd) {
    test('immutable objects are answered from the Cache API once fetched; timestamp.json is not', async () => {
      const notes = release2().files.get('notes.txt');
      if (notes === undefined) throw new Error('fixture incomplete');
      const cached = await deploy(kind, {}, ['metadata/timestamp.json', notes.key]);
      const first = await call(cached, `/${notes.key}`);
      expect(first.response.status).toBe(200);
      expect(await call(cached, '/metadata/timestamp.json').then((r) => r.response.status)).toBe(
        200,
      );
      await cached.store.delete(notes.key);
      await cached.store.delete('metadata/timestamp.json');
      expect(await cached.store.head(notes.key)).toBeUndefined();

      const again = await call(cached, `/${notes.key}`);
      expect(again.response.status).toBe(200);
      expect(again.body).toEqual(notes.bytes);
      expect(headersOf(again.response, ['etag', 'cache-control', 'content-length'])).toEqual(
        headersOf(first.response, ['etag', 'cache-control', 'content-length']),
      );
      expect((await call(cached, '/metadata/timestamp.json')).response.status).toBe(404);
    });
  } else {
    test('without a Cache API, a deleted object is gone at once', async () => {
      const notes = release2().files.get('notes.txt');
      if (notes === undefined) throw new Error('fixture incomplete');
      const direct = await deploy(kind, {}, [notes.key]);
      expect((await call(direct, `/${notes.key}`)).response.status).toBe(200);
      await direct.store.delete(notes.key);
      expect((await call(direct, `/${notes.key}`)).response.status).toBe(404);
    });
  }
});
