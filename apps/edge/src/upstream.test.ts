import { MemoryBlobStore } from '@cairn/storage/memory-store';
import { webHashPort } from '@cairn/verify/hash';
import { describe, expect, test } from 'vitest';
import { failure, keysOf, readAll, sha256Hex, text, utf8 } from '../test/support/mirror-memory.js';
import { Upstream, copyVerified } from './upstream.js';

type Handler = (request: Request) => Response | Promise<Response>;

/** A fake `fetch` (no sockets) answering with `handler` and keeping every request. */
function fake(handler: Handler): { fetch: typeof fetch; requests: Request[] } {
  const requests: Request[] = [];
  const fetchFn = (async (input: string | URL | Request, init?: RequestInit) => {
    const request = new Request(input, init);
    requests.push(request);
    return handler(request);
  }) as typeof fetch;
  return { fetch: fetchFn, requests };
}

function upstream(handler: Handler, timeoutMs = 2_000) {
  const f = fake(handler);
  return {
    upstream: new Upstream({ baseUrl: 'http://upstream.test/repo', fetch: f.fetch, timeoutMs }),
    requests: f.requests,
  };
}

/** A body that sends `chunks` and then never ends (a stalled or endless upstream). */
function stalling(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
    },
  });
}

describe('Upstream over a fake fetch', () => {
  test('reads a whole object, with its etag, from a percent-encoded URL', async () => {
    const { upstream: u, requests } = upstream(
      () =>
        new Response('hello', {
          headers: { etag: '"abc"', 'last-modified': 'Wed, 01 Jan 2030 00:00:00 GMT' },
        }),
    );
    const answer = await u.bytes('targets/dir/a b?.txt', 100);
    expect(requests.map((r) => r.url)).toEqual([
      'http://upstream.test/repo/targets/dir/a%20b%3F.txt',
    ]);
    expect(answer).toEqual({
      bytes: utf8('hello'),
      etag: 'abc',
      lastModified: new Date('2030-01-01T00:00:00Z'),
    });
    expect(u.requests).toBe(1);
  });

  test('sends If-None-Match and reports not-modified on 304', async () => {
    const { upstream: u, requests } = upstream(() => new Response(null, { status: 304 }));
    expect(await u.bytes('metadata/timestamp.json', 100, { ifNoneMatch: 'v1' })).toBe(
      'not-modified',
    );
    expect(requests[0]?.headers.get('if-none-match')).toBe('"v1"');
  });

  test('404 and 403 are a missing object; 500 is UPSTREAM_UNAVAILABLE', async () => {
    expect(await upstream(() => new Response('', { status: 404 })).upstream.bytes('k', 10)).toBe(
      undefined,
    );
    expect(await upstream(() => new Response('', { status: 403 })).upstream.open('k', 10)).toBe(
      undefined,
    );
    expect(
      await failure(upstream(() => new Response('', { status: 500 })).upstream.bytes('k', 10)),
    ).toBe('UPSTREAM_UNAVAILABLE: GET http://upstream.test/repo/k: HTTP 500');
  });

  test('a network failure is UPSTREAM_UNAVAILABLE', async () => {
    const u = upstream(() => {
      throw new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED') });
    }).upstream;
    expect(await failure(u.bytes('k', 10))).toBe(
      'UPSTREAM_UNAVAILABLE: GET http://upstream.test/repo/k: fetch failed: connect ECONNREFUSED',
    );
  });

  test('a declared or streamed body past the cap is UPSTREAM_INVALID', async () => {
    const declared = upstream(
      () => new Response('0123456789', { headers: { 'content-length': '10' } }),
    ).upstream;
    expect(await failure(declared.bytes('k', 9))).toBe(
      'UPSTREAM_INVALID: GET http://upstream.test/repo/k: more than the 9 bytes allowed',
    );
    const endless = upstream(
      () => new Response(stalling([new Uint8Array(6), new Uint8Array(6)])),
    ).upstream;
    expect(await failure(endless.bytes('k', 9))).toBe(
      'UPSTREAM_INVALID: GET http://upstream.test/repo/k: more than the 9 bytes allowed',
    );
    const opened = await upstream(
      () => new Response(stalling([new Uint8Array(6), new Uint8Array(6)])),
    ).upstream.open('k', 9);
    expect(await failure(new Response(opened?.body).arrayBuffer())).toBe(
      'UPSTREAM_INVALID: GET http://upstream.test/repo/k: more than the 9 bytes allowed',
    );
  });

  test('no answer, or a body that stalls, is UPSTREAM_UNAVAILABLE after the timeout', async () => {
    const silent = upstream(
      (request) =>
        new Promise<Response>((_, reject) => {
          request.signal.addEventListener('abort', () => {
            reject(request.signal.reason as Error);
          });
        }),
      100,
    ).upstream;
    const started = Date.now();
    expect(await failure(silent.bytes('k', 10))).toBe(
      'UPSTREAM_UNAVAILABLE: GET http://upstream.test/repo/k: no answer within 100 ms',
    );
    expect(Date.now() - started).toBeLessThan(2_000);
    const stalled = upstream(() => new Response(stalling([utf8('ab')])), 100).upstream;
    expect(await failure(stalled.bytes('k', 10))).toMatch(/^UPSTREAM_UNAVAILABLE: /);
  });
});

describe('copyVerified over a fake fetch', () => {
  const content = utf8('the verified content');
  const sha256 = sha256Hex(content);
  const key = `targets/${sha256}.file`;

  test('stores the object under its key once length and hashes match, leaving no staging object', async () => {
    const store = new MemoryBlobStore();
    const u = upstream(() => new Response(content)).upstream;
    expect(
      await copyVerified(store, u, webHashPort, key, {
        length: content.length,
        hashes: { sha256 },
        cap: content.length,
      }),
    ).toBe(content.length);
    expect(await keysOf(store)).toEqual([key]);
    expect(text(await readAll(store, key))).toBe('the verified content');
  });

  test('wrong bytes are UPSTREAM_INVALID and nothing is stored, staging included', async () => {
    for (const wrong of [
      utf8('the verified c0ntent'),
      utf8('short'),
      utf8('the verified content!'),
    ]) {
      const store = new MemoryBlobStore();
      const u = upstream(() => new Response(wrong)).upstream;
      expect(
        await failure(
          copyVerified(store, u, webHashPort, key, {
            length: content.length,
            hashes: { sha256 },
            cap: content.length,
          }),
        ),
      ).toMatch(/^UPSTREAM_INVALID: /);
      expect(await keysOf(store)).toEqual([]);
    }
  });

  test('without a listed length, the name hash and the cap decide', async () => {
    const store = new MemoryBlobStore();
    const u = upstream(() => new Response(content)).upstream;
    expect(
      await failure(copyVerified(store, u, webHashPort, key, { hashes: { sha256 }, cap: 5 })),
    ).toMatch(/^UPSTREAM_INVALID: .*more than the 5 bytes allowed/);
    await copyVerified(store, u, webHashPort, key, { hashes: { sha256 }, cap: 1000 });
    expect(await keysOf(store)).toEqual([key]);
  });

  test('an object someone else placed first is success; a missing one is NOT_FOUND', async () => {
    const store = new MemoryBlobStore();
    await store.put(key, content);
    const u = upstream(() => new Response(content)).upstream;
    await copyVerified(store, u, webHashPort, key, {
      length: content.length,
      hashes: { sha256 },
      cap: content.length,
    });
    expect(await keysOf(store)).toEqual([key]);
    const gone = upstream(() => new Response('', { status: 404 })).upstream;
    expect(
      await failure(
        copyVerified(store, gone, webHashPort, 'targets/x', { hashes: { sha256 }, cap: 9 }),
      ),
    ).toBe('NOT_FOUND: targets/x: upstream has no such object');
  });
});
