import { readFile, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { utf8 } from '@cairn/verify/encoding';
import { ClientError } from './errors.js';
import {
  MAX_MIRRORS,
  MirrorSelector,
  checkMirrorPath,
  configuredMirrors,
  mergeMirrors,
  mirrorUrl,
  normaliseMirrorUrl,
  parseMirrorList,
  rankProbes,
  type Mirror,
  type MirrorProbe,
} from './mirrors.js';
import { TestServers, deadServerUrl } from './testing/test-servers.js';
import { makeTempDir, removeTempDir } from './testing/temp-dir.js';

function caught(fn: () => unknown): ClientError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ClientError) return e;
    throw e;
  }
  throw new Error('expected a ClientError');
}

describe('normaliseMirrorUrl', () => {
  it('keeps an http(s) base URL and adds the trailing slash', () => {
    expect(normaliseMirrorUrl('https://eu-1.example.com', 'm')).toBe('https://eu-1.example.com/');
    expect(normaliseMirrorUrl('http://10.0.0.5:8787/cairn', 'm')).toBe(
      'http://10.0.0.5:8787/cairn/',
    );
    expect(normaliseMirrorUrl('HTTPS://Example.COM:443/a/', 'm')).toBe('https://example.com/a/');
  });

  it('refuses other schemes, credentials, queries, fragments and non-URLs with CONFIG_INVALID', () => {
    const cases: [string, string][] = [
      ['ftp://example.com/', 'm: expected an http or https URL, received "ftp://example.com/"'],
      ['file:///srv/repo/', 'm: expected an http or https URL, received "file:///srv/repo/"'],
      [
        'https://user:pw@example.com/',
        'm: a mirror URL has no credentials, query or fragment, received "https://user:pw@example.com/"',
      ],
      [
        'https://example.com/?a=1',
        'm: a mirror URL has no credentials, query or fragment, received "https://example.com/?a=1"',
      ],
      [
        'https://example.com/#x',
        'm: a mirror URL has no credentials, query or fragment, received "https://example.com/#x"',
      ],
      ['example.com', 'm: "example.com" is not a URL'],
      ['', 'm: expected a URL of 1 to 2048 characters, received 0'],
      [
        `https://example.com/${'a'.repeat(2030)}`,
        'm: expected a URL of 1 to 2048 characters, received 2050',
      ],
    ];
    for (const [input, message] of cases) {
      const e = caught(() => normaliseMirrorUrl(input, 'm'));
      expect([e.code, e.message]).toEqual(['CONFIG_INVALID', message]);
    }
  });
});

describe('configuredMirrors and mergeMirrors', () => {
  it('reads base URLs and { url, name } entries as configured mirrors', () => {
    expect(
      configuredMirrors(['http://lan:8787', { url: 'https://b.example/', name: 'b' }]),
    ).toEqual([
      { url: 'http://lan:8787/', name: undefined, source: 'configured' },
      { url: 'https://b.example/', name: 'b', source: 'configured' },
    ]);
  });

  it('names the bad entry', () => {
    expect(caught(() => configuredMirrors(['https://a/', 'gopher://b/'])).message).toBe(
      'mirrors[1]: expected an http or https URL, received "gopher://b/"',
    );
    expect(
      caught(() => configuredMirrors([{ url: 'https://a/', name: 'has space' }])).message,
    ).toBe('mirrors[0].name: expected 1 to 64 printable ASCII characters without spaces');
  });

  it('merges lists, the first occurrence of a URL winning', () => {
    const configured = configuredMirrors([{ url: 'https://a.example/', name: 'lan' }]);
    const listed = parseMirrorList(
      utf8('{"mirrors":[{"url":"https://b.example/"},{"url":"https://a.example","name":"a"}]}'),
    );
    expect(mergeMirrors(configured, listed)).toEqual([
      { url: 'https://a.example/', name: 'lan', source: 'configured' },
      { url: 'https://b.example/', name: undefined, source: 'repository' },
    ]);
  });
});

describe('parseMirrorList', () => {
  it('reads the signed list', () => {
    const bytes = utf8(
      JSON.stringify({
        mirrors: [
          { url: 'https://eu-1.example.com/', name: 'eu-1' },
          { url: 'http://us.example.com/x' },
        ],
      }),
    );
    expect(parseMirrorList(bytes)).toEqual([
      { url: 'https://eu-1.example.com/', name: 'eu-1', source: 'repository' },
      { url: 'http://us.example.com/x/', name: undefined, source: 'repository' },
    ]);
    expect(parseMirrorList(utf8('{"mirrors":[]}'))).toEqual([]);
  });

  it('refuses anything it does not fully understand with CONFIG_INVALID, naming the place', () => {
    const cases: [string, string][] = [
      ['not json', 'mirrors.json: not valid JSON'],
      ['[]', 'mirrors.json: expected an object, received an array'],
      ['{}', 'mirrors.json.mirrors: expected an array, received undefined'],
      ['{"mirrors":[],"version":1}', 'mirrors.json: unknown field "version"'],
      [
        '{"mirrors":[{"url":"https://a/","weight":1}]}',
        'mirrors.json.mirrors[0]: unknown field "weight"',
      ],
      [
        '{"mirrors":["https://a/"]}',
        'mirrors.json.mirrors[0]: expected an object, received the string "https://a/"',
      ],
      [
        '{"mirrors":[{"name":"x"}]}',
        'mirrors.json.mirrors[0].url: expected a string, received undefined',
      ],
      [
        '{"mirrors":[{"url":"ftp://a/"}]}',
        'mirrors.json.mirrors[0].url: expected an http or https URL, received "ftp://a/"',
      ],
      [
        '{"mirrors":[{"url":"https://a/"},{"url":"https://a"}]}',
        'mirrors.json.mirrors[1].url: https://a/ is listed twice',
      ],
      [
        '{"mirrors":[{"url":"https://a/","name":""}]}',
        'mirrors.json.mirrors[0].name: expected 1 to 64 printable ASCII characters without spaces',
      ],
    ];
    for (const [text, message] of cases) {
      const e = caught(() => parseMirrorList(utf8(text)));
      expect([e.code, e.message]).toEqual(['CONFIG_INVALID', message]);
    }
  });

  it(`refuses more than ${MAX_MIRRORS} mirrors and more than 160 000 bytes`, () => {
    const many = Array.from({ length: MAX_MIRRORS + 1 }, (_, i) => ({
      url: `https://m${i}.example/`,
    }));
    expect(caught(() => parseMirrorList(utf8(JSON.stringify({ mirrors: many })))).message).toBe(
      'mirrors.json.mirrors: 65 entries is more than the 64 allowed',
    );
    expect(
      parseMirrorList(utf8(JSON.stringify({ mirrors: many.slice(0, MAX_MIRRORS) }))),
    ).toHaveLength(MAX_MIRRORS);
    expect(caught(() => parseMirrorList(new Uint8Array(160_001))).message).toBe(
      'mirrors.json: 160001 bytes is more than the 160000 allowed',
    );
  });
});

describe('mirrorUrl', () => {
  it('appends a relative path to the base URL', () => {
    const m: Mirror = { url: 'https://a.example/cairn/', source: 'configured' };
    expect(mirrorUrl(m, 'metadata/3.root.json')).toBe(
      'https://a.example/cairn/metadata/3.root.json',
    );
    expect(mirrorUrl('http://b/', 'targets/ab.x%20y')).toBe('http://b/targets/ab.x%20y');
  });

  it('refuses a path that could leave the base', () => {
    for (const path of [
      '',
      '/metadata/x',
      'https://evil/x',
      'a/../b',
      './a',
      'a//b',
      'a/',
      'a?b',
      'a#b',
      'a\\b',
    ]) {
      expect(() => checkMirrorPath(path)).toThrow(
        new RangeError(
          `path: expected a relative path within the mirror, received ${JSON.stringify(path)}`,
        ),
      );
    }
  });
});

describe('rankProbes', () => {
  it('puts newest reachable first by RTT, then stale by version and RTT, then unreachable in order', () => {
    const probes: MirrorProbe[] = [
      { url: 'dead-1', reachable: false, error: 'x' },
      { url: 'stale-5-fast', reachable: true, rttMs: 1, timestampVersion: 5 },
      { url: 'new-slow', reachable: true, rttMs: 90, timestampVersion: 7 },
      { url: 'unreadable', reachable: true, rttMs: 2 },
      { url: 'stale-6-slow', reachable: true, rttMs: 80, timestampVersion: 6 },
      { url: 'dead-2', reachable: false, error: 'y' },
      { url: 'new-fast', reachable: true, rttMs: 10, timestampVersion: 7 },
      { url: 'new-fast-too', reachable: true, rttMs: 10, timestampVersion: 7 },
    ];
    expect(rankProbes(probes).map((p) => p.url)).toEqual([
      'new-fast',
      'new-fast-too',
      'new-slow',
      'stale-6-slow',
      'stale-5-fast',
      'unreadable',
      'dead-1',
      'dead-2',
    ]);
  });

  it('ranks by RTT alone when no timestamp could be read anywhere', () => {
    expect(
      rankProbes([
        { url: 'b', reachable: true, rttMs: 9 },
        { url: 'a', reachable: true, rttMs: 3 },
      ]).map((p) => p.url),
    ).toEqual(['a', 'b']);
  });
});

type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

interface FakeMirror {
  readonly url: string;
  requests: number;
  handle: Handler;
}

const servers = new TestServers();
let dir: string;

beforeEach(async () => {
  dir = await makeTempDir('cairn-mirrors-');
});

afterEach(async () => {
  await servers.closeAll();
  await removeTempDir(dir);
});

/** A node:http server standing in for a mirror's /metadata/timestamp.json. */
async function fakeMirror(handle: Handler): Promise<FakeMirror> {
  const { url } = await servers.start((req, res) => {
    fake.requests++;
    if (req.url !== '/metadata/timestamp.json') {
      res.writeHead(404);
      res.end();
      return;
    }
    void fake.handle(req, res);
  });
  const fake: FakeMirror = {
    url,
    requests: 0,
    handle,
  };
  return fake;
}

function timestamp(version: number): Handler {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ signed: { _type: 'timestamp', version }, signatures: [] }));
  };
}

function asMirrors(urls: readonly string[]): Mirror[] {
  return urls.map((url) => ({ url, source: 'configured' }));
}

/**
 * A monotonic clock the fake mirrors drive, so round-trip times are exact: a mirror answers
 * only once the client has read the clock `n` times (every probe's start, and the ends of the
 * answers before it), after setting the time its own answer completes at.
 */
function scriptedClock() {
  let t = 0;
  let reads = 0;
  const waiting: { n: number; resolve: () => void }[] = [];
  return {
    now: (): number => {
      reads++;
      for (const w of waiting.filter((x) => x.n <= reads)) w.resolve();
      return t;
    },
    answerAt(n: number, time: number, handler: Handler): Handler {
      return async (req, res) => {
        if (reads < n) await new Promise<void>((resolve) => waiting.push({ n, resolve }));
        t = time;
        await handler(req, res);
      };
    },
  };
}

describe('MirrorSelector', () => {
  it('probes fake mirrors at once and ranks: fresh by RTT, then stale, then unreachable', async () => {
    const clock = scriptedClock();
    // Six candidates read the clock at their start (reads 1-6); answers come in this order.
    const stale = await fakeMirror(clock.answerAt(6, 5, timestamp(6)));
    const fast = await fakeMirror(clock.answerAt(7, 10, timestamp(7)));
    const unreadable = await fakeMirror(
      clock.answerAt(8, 20, (_req, res) => {
        res.writeHead(200);
        res.end('not json');
      }),
    );
    const slow = await fakeMirror(clock.answerAt(9, 40, timestamp(7)));
    const busy = await fakeMirror((_req, res) => {
      res.writeHead(503, { 'retry-after': '5' });
      res.end();
    });
    const dead = await deadServerUrl();
    const selector = new MirrorSelector({
      candidates: asMirrors([dead, stale.url, slow.url, unreadable.url, fast.url, busy.url]),
      monotonic: clock.now,
      now: () => Date.parse('2030-01-01T00:00:00Z'),
    });
    const ranking = await selector.probe();
    expect(ranking.probes).toEqual([
      { url: fast.url, reachable: true, rttMs: 10, timestampVersion: 7 },
      { url: slow.url, reachable: true, rttMs: 40, timestampVersion: 7 },
      { url: stale.url, reachable: true, rttMs: 5, timestampVersion: 6 },
      { url: unreadable.url, reachable: true, rttMs: 20, error: 'timestamp.json: not valid JSON' },
      {
        url: dead,
        reachable: false,
        error: `GET ${dead}metadata/timestamp.json: fetch failed: connect ECONNREFUSED ${new URL(dead).host}`,
      },
      {
        url: busy.url,
        reachable: false,
        error: `GET ${busy.url}metadata/timestamp.json: HTTP 503 Service Unavailable`,
      },
    ]);
    expect(ranking.probedAt).toBe(Date.parse('2030-01-01T00:00:00Z'));
    expect((await selector.ranked()).map((m) => m.url)).toEqual([
      fast.url,
      slow.url,
      stale.url,
      unreadable.url,
      dead,
      busy.url,
    ]);
  });

  it('counts a fake mirror that does not answer within probeTimeoutMs as unreachable', async () => {
    const silent = await fakeMirror(() => undefined);
    const ok = await fakeMirror(timestamp(1));
    const selector = new MirrorSelector({
      candidates: asMirrors([silent.url, ok.url]),
      probeTimeoutMs: 100,
    });
    const { probes } = await selector.probe();
    expect(probes.map((p) => p.url)).toEqual([ok.url, silent.url]);
    expect(probes[1]).toEqual({
      url: silent.url,
      reachable: false,
      error: `GET ${silent.url}metadata/timestamp.json: no complete response within 100 ms`,
    });
  });

  it('caps the probe at the timestamp length limit', async () => {
    const huge = await fakeMirror((_req, res) => {
      res.writeHead(200, { 'content-length': 16_385 });
      res.end(new Uint8Array(16_385));
    });
    const selector = new MirrorSelector({ candidates: asMirrors([huge.url]) });
    expect((await selector.probe()).probes[0]?.error).toBe(
      `GET ${huge.url}metadata/timestamp.json: Content-Length 16385 is more than the 16384 bytes allowed`,
    );
  });

  it('moves demoted mirrors to the end, the most recent last', async () => {
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => fakeMirror(timestamp(3))));
    const urls = [a, b, c].map((m) => m?.url ?? '');
    const selector = new MirrorSelector({ candidates: asMirrors(urls), monotonic: () => 0 });
    const order = async () => (await selector.ranked()).map((m) => urls.indexOf(m.url));
    expect(await order()).toEqual([0, 1, 2]);
    selector.demote(urls[0] ?? '', 'TOO_SLOW');
    expect(await order()).toEqual([1, 2, 0]);
    selector.demote(urls[2] ?? '', 'bad data');
    expect(await order()).toEqual([1, 0, 2]);
    selector.demote(urls[0] ?? '', 'again');
    expect(await order()).toEqual([1, 2, 0]);
    selector.demote('https://not-a-candidate.example/', 'ignored');
    expect(await order()).toEqual([1, 2, 0]);
    expect(selector.demotions.map((d) => d.reason)).toEqual([
      'TOO_SLOW',
      'bad data',
      'again',
      'ignored',
    ]);
    // Ranking needed one probe each, however often it was asked for.
    expect([a, b, c].map((m) => m?.requests)).toEqual([1, 1, 1]);
  });

  it('shares one round of probes between concurrent callers', async () => {
    const a = await fakeMirror(timestamp(1));
    const selector = new MirrorSelector({ candidates: asMirrors([a.url]) });
    await Promise.all([selector.ranked(), selector.ranked(), selector.probe()]);
    expect(a.requests).toBe(1);
  });

  describe('remembered ranking', () => {
    const T = Date.parse('2030-01-01T00:00:00Z');
    const HOUR = 3_600_000;

    async function setup() {
      const older = await fakeMirror(timestamp(4));
      const newer = await fakeMirror(timestamp(5));
      const statePath = join(dir, 'state', 'mirrors.json');
      const make = (now: number, candidates = [older.url, newer.url]) =>
        new MirrorSelector({
          candidates: asMirrors(candidates),
          statePath,
          monotonic: () => 0,
          now: () => now,
          reprobeAfterMs: HOUR,
        });
      return { older, newer, statePath, make };
    }

    it('is written to the state file with the probe time', async () => {
      const { older, newer, statePath, make } = await setup();
      await make(T).ranked();
      expect(JSON.parse(await readFile(statePath, 'utf8'))).toEqual({
        format: 1,
        probedAt: '2030-01-01T00:00:00.000Z',
        candidates: [older.url, newer.url].sort(),
        probes: [
          { url: newer.url, reachable: true, rttMs: 0, timestampVersion: 5 },
          { url: older.url, reachable: true, rttMs: 0, timestampVersion: 4 },
        ],
      });
    });

    it('is reused without probing within reprobeAfterMs', async () => {
      const { older, newer, make } = await setup();
      await make(T).ranked();
      const later = make(T + HOUR - 1);
      expect((await later.ranked()).map((m) => m.url)).toEqual([newer.url, older.url]);
      expect([older.requests, newer.requests]).toEqual([1, 1]);
      expect(later.ranking?.probedAt).toBe(T);
    });

    it('is probed again once reprobeAfterMs has passed, and rewritten', async () => {
      const { older, newer, statePath, make } = await setup();
      await make(T).ranked();
      newer.handle = timestamp(5);
      older.handle = timestamp(6); // the older mirror caught up and overtook
      const later = make(T + HOUR);
      expect((await later.ranked()).map((m) => m.url)).toEqual([older.url, newer.url]);
      expect([older.requests, newer.requests]).toEqual([2, 2]);
      expect(JSON.parse(await readFile(statePath, 'utf8'))).toMatchObject({
        probedAt: new Date(T + HOUR).toISOString(),
      });
    });

    it('is probed again when the candidates changed', async () => {
      const { older, newer, make } = await setup();
      await make(T).ranked();
      const third = await fakeMirror(timestamp(5));
      await make(T + 1, [older.url, newer.url, third.url]).ranked();
      expect([older.requests, newer.requests, third.requests]).toEqual([2, 2, 1]);
    });

    it('is probed again when the clock went backwards', async () => {
      const { older, make } = await setup();
      await make(T).ranked();
      await make(T - 1).ranked();
      expect(older.requests).toBe(2);
    });

    it('is ignored when the state file is corrupt or from another format', async () => {
      const { older, statePath, make } = await setup();
      await make(T).ranked();
      for (const text of ['{', '{"format":2}', '[]']) {
        await writeFile(statePath, text);
        await make(T + 1).ranked();
      }
      expect(older.requests).toBe(4);
    });

    it('does not fail the ranking when the state file cannot be written', async () => {
      const { newer } = await setup();
      await writeFile(join(dir, 'file'), 'x');
      const selector = new MirrorSelector({
        candidates: asMirrors([newer.url]),
        statePath: join(dir, 'file', 'mirrors.json'),
      });
      expect((await selector.ranked()).map((m) => m.url)).toEqual([newer.url]);
      expect(selector.stateError).toMatchObject({ code: 'EEXIST' });
    });
  });

  it('refuses an empty candidate list with CONFIG_INVALID', () => {
    const e = caught(() => new MirrorSelector({ candidates: [] }));
    expect([e.code, e.message]).toEqual([
      'CONFIG_INVALID',
      'candidates: expected at least one mirror',
    ]);
  });
});
