import { createHash } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Backoff } from './backoff.js';
import {
  downloadFromMirrors,
  mirrorPathOfTarget,
  type DownloadOptions,
  type DownloadProgress,
  type DownloadRequest,
} from './download.js';
import { ClientError } from './errors.js';
import type { Mirror, RankedMirrors } from './mirrors.js';
import { fakeTime } from './testing/fake-time.js';
import { failure as clientFailure } from './testing/failure.js';
import { TestServers, deadServerUrl } from './testing/test-servers.js';
import { makeTempDir, removeTempDir } from './testing/temp-dir.js';

/** What a fake mirror saw of one request. */
interface Seen {
  readonly path: string;
  readonly range: string | undefined;
  readonly acceptEncoding: string | undefined;
}

type Handler = (req: IncomingMessage, res: ServerResponse, fake: FakeMirror) => void;

/** A node:http server standing in for a mirror: it counts requests and body bytes sent. */
interface FakeMirror {
  readonly url: string;
  readonly seen: Seen[];
  /** Body bytes written to clients. */
  sent: number;
  /** Resolves when a client connection to it has closed. */
  readonly clientClosed: Promise<void>;
  handle: Handler;
  readonly server: Server;
}

const servers = new TestServers();
let dir: string;

beforeEach(async () => {
  dir = await makeTempDir('cairn-download-');
});

afterEach(async () => {
  await servers.closeAll();
  await removeTempDir(dir);
});

async function fakeMirror(handle: Handler): Promise<FakeMirror> {
  let closed = (): void => undefined;
  const clientClosed = new Promise<void>((resolve) => {
    closed = resolve;
  });
  const { server, url } = await servers.start((req, res) => {
    fake.seen.push({
      path: req.url ?? '',
      range: req.headers.range,
      acceptEncoding: req.headers['accept-encoding'],
    });
    req.socket.once('close', closed);
    fake.handle(req, res, fake);
  });
  const fake: FakeMirror = {
    url,
    seen: [],
    sent: 0,
    clientClosed,
    handle,
    server,
  };
  return fake;
}

function write(res: ServerResponse, fake: FakeMirror, bytes: Uint8Array, done?: () => void): void {
  fake.sent += bytes.length;
  res.write(bytes, done);
}

/** Parses `bytes=N-`, the only form the client sends. */
function rangeStart(req: IncomingMessage): number | undefined {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  return m === null ? undefined : Number(m[1]);
}

/**
 * Serves `content` as the edge does: 200, or 206 for `Range: bytes=N-`. With `dieAfter`, the
 * connection is destroyed after that many body bytes, once `delivered` resolves: undici drops
 * bytes it received but the reader had not taken yet when the connection fails, so the test
 * waits (through onProgress) until the client has them, for an exact resume point.
 */
function serveFile(
  content: Uint8Array,
  options: { dieAfter?: number; delivered?: Promise<void> } = {},
): Handler {
  return (req, res, fake) => {
    const start = rangeStart(req) ?? 0;
    const body = content.subarray(start);
    res.writeHead(start > 0 ? 206 : 200, {
      'content-length': body.length,
      'content-type': 'application/octet-stream',
      ...(start > 0
        ? { 'content-range': `bytes ${start}-${content.length - 1}/${content.length}` }
        : {}),
    });
    if (options.dieAfter === undefined) {
      fake.sent += body.length;
      res.end(body);
      return;
    }
    write(res, fake, body.subarray(0, options.dieAfter));
    void (options.delivered ?? Promise.resolve()).then(() => res.socket?.destroy());
  };
}

/** A promise resolved by onProgress once `mirror` has delivered `bytes` bytes of the file. */
function deliveredBy(
  bytes: number,
): [Promise<void>, (mirror: string) => (p: DownloadProgress) => void] {
  let resolve = (): void => undefined;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return [
    promise,
    (mirror) => (p) => {
      if (p.mirror === mirror && p.received >= bytes) resolve();
    },
  ];
}

const CONTENT = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 131 + (i >> 7)) & 0xff);
const SHA256 = createHash('sha256').update(CONTENT).digest('hex');
const PATH = `targets/${SHA256}.daily.cvd`;

/** Mirrors in a fixed order, recording demotions: the ranking is MirrorSelector's concern. */
class FixedRanking implements RankedMirrors {
  readonly demotions: string[] = [];
  readonly #mirrors: Mirror[];

  constructor(urls: readonly string[]) {
    this.#mirrors = urls.map((url) => ({ url, source: 'configured' }));
  }

  ranked(): Promise<readonly Mirror[]> {
    return Promise.resolve(this.#mirrors);
  }

  demote(url: string, reason: string): void {
    this.demotions.push(`${url} ${reason}`);
  }
}

function request(overrides: Partial<DownloadRequest> = {}): DownloadRequest {
  return {
    path: PATH,
    length: CONTENT.length,
    hashes: { sha256: SHA256 },
    destination: join(dir, `${SHA256}.part`),
    what: 'target daily.cvd',
    ...overrides,
  };
}

function options(ranking: RankedMirrors, extra: Partial<DownloadOptions> = {}) {
  const { time, now, sleep } = fakeTime();
  const opts: DownloadOptions = {
    mirrors: ranking,
    now,
    sleep,
    backoff: new Backoff({ random: () => 0.5 }),
    ...extra,
  };
  return { time, opts };
}

function failure(promise: Promise<unknown>): Promise<ClientError> {
  return clientFailure(promise, 'expected the download to fail');
}

async function onDisk(): Promise<Uint8Array> {
  return new Uint8Array(await readFile(request().destination));
}

describe('mirrorPathOfTarget', () => {
  it('names a target by its sha256 in its directory, each segment percent-encoded', () => {
    expect(mirrorPathOfTarget({ path: 'daily.cvd', hashes: { sha256: 'ab12' } })).toBe(
      'targets/ab12.daily.cvd',
    );
    expect(
      mirrorPathOfTarget({ path: 'av/main db#1.cvd', hashes: { sha512: 'ff', sha256: 'ab' } }),
    ).toBe('targets/av/ab.main%20db%231.cvd');
    expect(mirrorPathOfTarget({ path: 'x', hashes: { sha512: 'ff' } })).toBe('targets/ff.x');
  });

  it('refuses a target without hashes with CONFIG_INVALID', () => {
    expect(() => mirrorPathOfTarget({ path: 'x', hashes: {} })).toThrow(
      new ClientError('CONFIG_INVALID', 'target x: no hash to name it by'),
    );
  });
});

describe('downloadFromMirrors', () => {
  it('downloads and verifies the whole file from the first fake mirror, unencoded', async () => {
    const a = await fakeMirror(serveFile(CONTENT));
    const b = await fakeMirror(serveFile(CONTENT));
    const ranking = new FixedRanking([a.url, b.url]);
    const progress: DownloadProgress[] = [];
    const { opts } = options(ranking, {
      onProgress: (p) => progress.push(p),
      userAgent: 'cairn-test',
    });
    const result = await downloadFromMirrors(request(), opts);
    expect(result).toEqual({ path: request().destination, mirror: a.url, transferred: 10_000 });
    expect(await onDisk()).toEqual(CONTENT);
    expect(a.seen).toEqual([{ path: `/${PATH}`, range: undefined, acceptEncoding: 'identity' }]);
    expect(b.seen).toEqual([]);
    expect(ranking.demotions).toEqual([]);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toEqual({ received: 10_000, total: 10_000, mirror: a.url });
    const received = progress.map((p) => p.received);
    expect(received).toEqual([...received].sort((x, y) => x - y));
  });

  it('resumes on the next fake mirror with a Range request after a connection dies mid-body', async () => {
    const [delivered, watch] = deliveredBy(3000);
    const a = await fakeMirror(serveFile(CONTENT, { dieAfter: 3000, delivered }));
    const b = await fakeMirror(serveFile(CONTENT));
    const ranking = new FixedRanking([a.url, b.url]);
    const { opts } = options(ranking, { onProgress: watch(a.url) });
    const result = await downloadFromMirrors(request(), opts);
    expect(result).toEqual({ path: request().destination, mirror: b.url, transferred: 10_000 });
    expect(await onDisk()).toEqual(CONTENT);
    expect(b.seen.map((s) => s.range)).toEqual(['bytes=3000-']);
    // Each byte crossed the network once: 3000 from a, 7000 from b, nothing twice.
    expect([a.sent, b.sent]).toEqual([3000, 7000]);
    expect(ranking.demotions).toEqual([
      `${a.url} GET ${a.url}${PATH}: terminated: other side closed after 3000 of 10000 bytes`,
    ]);
  });

  it('resumes a partial file left by an earlier run, hashing the prefix from disk', async () => {
    await writeFile(request().destination, CONTENT.subarray(0, 4000));
    const a = await fakeMirror(serveFile(CONTENT));
    const { opts } = options(new FixedRanking([a.url]));
    const result = await downloadFromMirrors(request(), opts);
    expect(result.transferred).toBe(6000);
    expect(a.seen.map((s) => s.range)).toEqual(['bytes=4000-']);
    expect(await onDisk()).toEqual(CONTENT);
  });

  it('starts over, without blaming the mirror, when a resumed file fails verification', async () => {
    const corrupt = CONTENT.slice(0, 4000);
    corrupt[17] = (corrupt[17] ?? 0) ^ 0xff;
    await writeFile(request().destination, corrupt);
    const a = await fakeMirror(serveFile(CONTENT));
    const ranking = new FixedRanking([a.url]);
    const { time, opts } = options(ranking);
    const result = await downloadFromMirrors(request(), opts);
    expect(result).toEqual({ path: request().destination, mirror: a.url, transferred: 16_000 });
    expect(a.seen.map((s) => s.range)).toEqual(['bytes=4000-', undefined]);
    expect(ranking.demotions).toEqual([]);
    expect(time.sleeps).toEqual([500]);
    expect(await onDisk()).toEqual(CONTENT);
  });

  it('starts over when a fake mirror ignores the range and sends the whole file', async () => {
    await writeFile(request().destination, CONTENT.subarray(0, 4000));
    const a = await fakeMirror((req, res, fake) => {
      res.writeHead(200, { 'content-length': CONTENT.length });
      fake.sent += CONTENT.length;
      res.end(CONTENT);
    });
    const { opts } = options(new FixedRanking([a.url]));
    const result = await downloadFromMirrors(request(), opts);
    expect(result.transferred).toBe(10_000);
    expect(a.seen.map((s) => s.range)).toEqual(['bytes=4000-']);
    expect(await onDisk()).toEqual(CONTENT);
  });

  it('refuses a 206 whose Content-Range does not continue the file, keeping the partial', async () => {
    await writeFile(request().destination, CONTENT.subarray(0, 4000));
    const a = await fakeMirror((_req, res) => {
      res.writeHead(206, {
        'content-length': 7000,
        'content-range': `bytes 3000-9999/10000`,
      });
      res.end(CONTENT.subarray(3000));
    });
    const b = await fakeMirror(serveFile(CONTENT));
    const ranking = new FixedRanking([a.url, b.url]);
    const { opts } = options(ranking);
    const result = await downloadFromMirrors(request(), opts);
    expect(result).toMatchObject({ mirror: b.url, transferred: 6000 });
    expect(b.seen.map((s) => s.range)).toEqual(['bytes=4000-']);
    expect(ranking.demotions).toEqual([
      `${a.url} GET ${a.url}${PATH}: HTTP 206 Partial Content with Content-Range "bytes 3000-9999/10000", expected bytes 4000-9999/10000`,
    ]);
    expect(await onDisk()).toEqual(CONTENT);
  });

  it('cuts off a fake mirror at the signed length + 1 byte with TOO_LARGE and deletes the file', async () => {
    // Exactly one byte too many, then the connection stays open: the client must not wait.
    const a = await fakeMirror((_req, res, fake) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      write(res, fake, CONTENT);
      write(res, fake, new Uint8Array([0x41]));
    });
    const ranking = new FixedRanking([a.url]);
    const { opts } = options(ranking, { idleTimeoutMs: 120_000 });
    const e = await failure(downloadFromMirrors(request(), opts));
    expect(e.code).toBe('NO_MIRROR');
    expect(e.message).toBe(
      `target daily.cvd: no mirror could provide it: ${a.url} (TOO_LARGE: GET ${a.url}${PATH}: more than the 10000 bytes signed for target daily.cvd)`,
    );
    expect(a.seen).toHaveLength(1);
    expect(await readdir(dir)).toEqual([]);
    expect(ranking.demotions).toHaveLength(1);
  });

  it('stops reading an endless body and fails over to the next fake mirror', async () => {
    const endless = await fakeMirror((req, res, fake) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = new Uint8Array(1024).fill(0x41);
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk)) fake.sent += chunk.length;
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    const good = await fakeMirror(serveFile(CONTENT));
    const ranking = new FixedRanking([endless.url, good.url]);
    const { opts } = options(ranking);
    const result = await downloadFromMirrors(request(), opts);
    expect(result.mirror).toBe(good.url);
    expect(good.seen.map((s) => s.range)).toEqual([undefined]);
    expect(await onDisk()).toEqual(CONTENT);
    // The client hung up rather than read on (else this waits until the test times out).
    await endless.clientClosed;
    expect(ranking.demotions[0]).toBe(
      `${endless.url} GET ${endless.url}${PATH}: more than the 10000 bytes signed for target daily.cvd`,
    );
  });

  it('refuses a Content-Length above the signed length before reading the body', async () => {
    const a = await fakeMirror((_req, res) => {
      res.writeHead(200, { 'content-length': 10_001 });
      res.flushHeaders();
    });
    const { opts } = options(new FixedRanking([a.url]));
    const e = await failure(downloadFromMirrors(request(), opts));
    expect(e.message).toBe(
      `target daily.cvd: no mirror could provide it: ${a.url} (TOO_LARGE: GET ${a.url}${PATH}: Content-Length 10001 is more than the 10000 bytes expected)`,
    );
  });

  it('leaves a fake mirror trickling below the throughput floor with TOO_SLOW; the next resumes', async () => {
    const { time, opts } = options(new FixedRanking([]), {
      minBytesPerSecond: 1000,
      throughputGraceMs: 2000,
      throughputWindowMs: 2000,
    });
    // 100 bytes per (fake) second: the server moves the clock before each chunk.
    const slow = await fakeMirror((_req, res, fake) => {
      res.writeHead(200, { 'content-length': CONTENT.length });
      let offset = 0;
      const tick = (): void => {
        if (res.destroyed || offset >= CONTENT.length) return;
        time.t += 1000;
        write(res, fake, CONTENT.subarray(offset, offset + 100));
        offset += 100;
        setTimeout(tick, 5);
      };
      tick();
    });
    const fast = await fakeMirror(serveFile(CONTENT));
    const ranking = new FixedRanking([slow.url, fast.url]);
    const result = await downloadFromMirrors(request(), { ...opts, mirrors: ranking });
    expect(result.mirror).toBe(fast.url);
    // Every byte once: what the slow mirror delivered is kept and not asked for again.
    expect(result.transferred).toBe(10_000);
    const range = /^bytes=(\d+)-$/.exec(fast.seen[0]?.range ?? '');
    const start = Number(range?.[1]);
    expect(start % 100).toBe(0);
    expect(start).toBeGreaterThanOrEqual(300);
    expect(fast.sent).toBe(10_000 - start);
    expect(ranking.demotions[0]).toMatch(
      new RegExp(`^${slow.url}.*: \\d+ bytes/s, below the minimum of 1000$`),
    );
    expect(await onDisk()).toEqual(CONTENT);
  });

  it('leaves a fake mirror that stalls mid-body after the idle timeout', async () => {
    const stall = await fakeMirror((_req, res, fake) => {
      res.writeHead(200, { 'content-length': CONTENT.length });
      write(res, fake, CONTENT.subarray(0, 2500));
    });
    const b = await fakeMirror(serveFile(CONTENT));
    const ranking = new FixedRanking([stall.url, b.url]);
    const { opts } = options(ranking, { idleTimeoutMs: 100 });
    const result = await downloadFromMirrors(request(), opts);
    expect(result).toMatchObject({ mirror: b.url, transferred: 10_000 });
    expect(b.seen.map((s) => s.range)).toEqual(['bytes=2500-']);
    expect(ranking.demotions).toEqual([`${stall.url} GET ${stall.url}${PATH}: no data for 100 ms`]);
  });

  it('leaves a fake mirror that sends no response headers within the request timeout', async () => {
    const silent = await fakeMirror(() => undefined);
    const b = await fakeMirror(serveFile(CONTENT));
    const ranking = new FixedRanking([silent.url, b.url]);
    const { opts } = options(ranking, { requestTimeoutMs: 100 });
    expect((await downloadFromMirrors(request(), opts)).mirror).toBe(b.url);
    expect(ranking.demotions).toEqual([
      `${silent.url} GET ${silent.url}${PATH}: no response within 100 ms`,
    ]);
  });

  it('honours 429 Retry-After: tries the next fake mirror now, and this one after the delay', async () => {
    const order: string[] = [];
    let first = true;
    const a = await fakeMirror((req, res, fake) => {
      order.push('a');
      if (first) {
        first = false;
        res.writeHead(429, { 'retry-after': '7' });
        res.end('{"error":"RATE_LIMITED"}');
        return;
      }
      serveFile(CONTENT)(req, res, fake);
    });
    const b = await fakeMirror((_req, res) => {
      order.push('b');
      res.writeHead(404);
      res.end();
    });
    const ranking = new FixedRanking([a.url, b.url]);
    const { time, opts } = options(ranking);
    const result = await downloadFromMirrors(request(), opts);
    expect(result.mirror).toBe(a.url);
    expect(order).toEqual(['a', 'b', 'a']);
    // 7 s asked for, plus jitter: half of the 1 s first-retry ceiling.
    expect(time.sleeps).toEqual([7500]);
    expect(ranking.demotions).toEqual([
      `${a.url} GET ${a.url}${PATH}: HTTP 429 Too Many Requests, retry after 7 s`,
      `${b.url} GET ${b.url}${PATH}: HTTP 404 Not Found`,
    ]);
  });

  it('backs off from a fake mirror answering 503 and succeeds when it recovers', async () => {
    let calls = 0;
    const a = await fakeMirror((req, res, fake) => {
      if (++calls <= 2) {
        res.writeHead(503);
        res.end();
        return;
      }
      serveFile(CONTENT)(req, res, fake);
    });
    const { time, opts } = options(new FixedRanking([a.url]));
    expect((await downloadFromMirrors(request(), opts)).mirror).toBe(a.url);
    expect(time.sleeps).toEqual([500, 1000]);
  });

  it('gives up on a fake mirror that keeps answering 503 after maxAttemptsPerMirror', async () => {
    const a = await fakeMirror((_req, res) => {
      res.writeHead(503, { 'retry-after': '2' });
      res.end();
    });
    const { time, opts } = options(new FixedRanking([a.url]), { maxAttemptsPerMirror: 2 });
    const e = await failure(downloadFromMirrors(request(), opts));
    expect(e.code).toBe('NO_MIRROR');
    expect(e.message).toBe(
      `target daily.cvd: no mirror could provide it: ${a.url} (RETRY_LATER: GET ${a.url}${PATH}: HTTP 503 Service Unavailable, retry after 2 s)`,
    );
    expect(a.seen).toHaveLength(2);
    expect(time.sleeps).toEqual([2500]);
  });

  it('deletes a complete file that fails verification, demotes its fake mirror, uses the next', async () => {
    const wrong = CONTENT.slice();
    wrong[9000] = (wrong[9000] ?? 0) ^ 0x01;
    const bad = await fakeMirror(serveFile(wrong));
    const good = await fakeMirror(serveFile(CONTENT));
    const ranking = new FixedRanking([bad.url, good.url]);
    const { opts } = options(ranking);
    const result = await downloadFromMirrors(request(), opts);
    expect(result).toEqual({ path: request().destination, mirror: good.url, transferred: 20_000 });
    expect(good.seen.map((s) => s.range)).toEqual([undefined]);
    expect(bad.seen).toHaveLength(1);
    expect(ranking.demotions).toHaveLength(1);
    expect(ranking.demotions[0]).toMatch(
      new RegExp(
        `^${bad.url} GET ${bad.url}${PATH}: target daily.cvd: sha256 is [0-9a-f]{64}, expected ${SHA256}$`,
      ),
    );
    expect(await onDisk()).toEqual(CONTENT);
  });

  it('fails with NO_MIRROR naming every fake mirror’s reason when all fail', async () => {
    const missing = await fakeMirror((_req, res) => {
      res.writeHead(404);
      res.end();
    });
    const dead = await deadServerUrl();
    const [delivered, watch] = deliveredBy(1234);
    const broken = await fakeMirror(serveFile(CONTENT, { dieAfter: 1234, delivered }));
    const ranking = new FixedRanking([missing.url, dead, broken.url]);
    const { opts } = options(ranking, { maxAttemptsPerMirror: 1, onProgress: watch(broken.url) });
    const e = await failure(downloadFromMirrors(request(), opts));
    expect(e.code).toBe('NO_MIRROR');
    expect(e.message).toBe(
      [
        `target daily.cvd: no mirror could provide it: ${missing.url} (DOWNLOAD_FAILED: GET ${missing.url}${PATH}: HTTP 404 Not Found)`,
        `${dead} (DOWNLOAD_FAILED: GET ${dead}${PATH}: fetch failed: connect ECONNREFUSED ${new URL(dead).host})`,
        `${broken.url} (DOWNLOAD_FAILED: GET ${broken.url}${PATH}: terminated: other side closed after 1234 of 10000 bytes)`,
      ].join('; '),
    );
    // The partial is kept for the next run.
    expect(await onDisk()).toEqual(CONTENT.subarray(0, 1234));
  });

  it('asks no mirror when the complete, verified file is already there', async () => {
    await writeFile(request().destination, CONTENT);
    const a = await fakeMirror(serveFile(CONTENT));
    const { opts } = options(new FixedRanking([a.url]));
    expect(await downloadFromMirrors(request(), opts)).toEqual({
      path: request().destination,
      mirror: undefined,
      transferred: 0,
    });
    expect(a.seen).toEqual([]);
  });

  it('replaces a file longer than the signed length', async () => {
    await writeFile(request().destination, new Uint8Array(10_001));
    const a = await fakeMirror(serveFile(CONTENT));
    const { opts } = options(new FixedRanking([a.url]));
    await downloadFromMirrors(request(), opts);
    expect(a.seen.map((s) => s.range)).toEqual([undefined]);
    expect(await onDisk()).toEqual(CONTENT);
  });

  it('downloads an empty file', async () => {
    const empty = new Uint8Array(0);
    const sha = createHash('sha256').update(empty).digest('hex');
    const a = await fakeMirror(serveFile(empty));
    const { opts } = options(new FixedRanking([a.url]));
    const req = request({ length: 0, hashes: { sha256: sha }, path: `targets/${sha}.empty` });
    expect(await downloadFromMirrors(req, opts)).toMatchObject({ mirror: a.url, transferred: 0 });
    expect(await readFile(req.destination)).toHaveLength(0);
  });

  it('throws a local file-system error as it is, without trying other mirrors', async () => {
    const a = await fakeMirror(serveFile(CONTENT));
    const b = await fakeMirror(serveFile(CONTENT));
    const ranking = new FixedRanking([a.url, b.url]);
    const { opts } = options(ranking);
    await expect(
      downloadFromMirrors(request({ destination: join(dir, 'no', 'such', 'dir', 'x.part') }), opts),
    ).rejects.toMatchObject({ code: 'ENOENT' });
    expect(b.seen).toEqual([]);
    expect(ranking.demotions).toEqual([]);
  });

  it('fails with NO_MIRROR when there are no mirrors', async () => {
    const { opts } = options(new FixedRanking([]));
    const e = await failure(downloadFromMirrors(request(), opts));
    expect([e.code, e.message]).toEqual([
      'NO_MIRROR',
      'target daily.cvd: no mirrors to download from',
    ]);
  });
});
