import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { utf8 } from '@cairn/verify/encoding';
import { VerifyError } from '@cairn/verify/errors';
import {
  buildRoot,
  buildSnapshot,
  buildTargets,
  buildTimestamp,
  describeMetadata,
  describeTarget,
  signNew,
} from '@cairn/verify/repository';
import { Ed25519Signer } from '@cairn/verify/signer';
import { Updater } from '@cairn/verify/updater';
import { Backoff } from './backoff.js';
import { FsMetadataStore } from './fs-metadata-store.js';
import { METADATA_PATH, MirrorFetcher, type MirrorFetcherOptions } from './mirror-fetcher.js';
import type { Mirror, RankedMirrors } from './mirrors.js';
import { nodeHashPort } from './node-hash.js';
import { fakeTime } from './testing/fake-time.js';
import { failureOf } from './testing/failure.js';
import { TestServers, deadServerUrl } from './testing/test-servers.js';
import { makeTempDir, removeTempDir } from './testing/temp-dir.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A node:http server standing in for a mirror: files by path, or a handler for every path. */
interface FakeMirror {
  readonly url: string;
  readonly files: Map<string, Uint8Array>;
  /** Overrides the files when set. */
  handle: Handler | undefined;
  readonly requests: string[];
}

const servers = new TestServers();
let dir: string;

beforeEach(async () => {
  dir = await makeTempDir('cairn-mirror-fetcher-');
});

afterEach(async () => {
  await servers.closeAll();
  await removeTempDir(dir);
});

async function fakeMirror(
  files: Record<string, Uint8Array> = {},
  handle?: Handler,
): Promise<FakeMirror> {
  const { url } = await servers.start((req, res) => {
    const path = (req.url ?? '').slice(1);
    fake.requests.push(path);
    if (fake.handle !== undefined) return fake.handle(req, res);
    const bytes = fake.files.get(path);
    if (bytes === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"NOT_FOUND"}');
      return;
    }
    res.writeHead(200, { 'content-length': bytes.length });
    res.end(bytes);
  });
  const fake: FakeMirror = {
    url,
    files: new Map(Object.entries(files)),
    handle,
    requests: [],
  };
  return fake;
}

function status(code: number, headers: Record<string, string> = {}): Handler {
  return (_req, res) => {
    res.writeHead(code, headers);
    res.end();
  };
}

/** Mirrors in order; a demoted one moves to the end, as MirrorSelector does. */
class MovingRanking implements RankedMirrors {
  readonly demotions: string[] = [];
  #mirrors: Mirror[];

  constructor(urls: readonly string[]) {
    this.#mirrors = urls.map((url) => ({ url, source: 'configured' }));
  }

  ranked(): Promise<readonly Mirror[]> {
    return Promise.resolve([...this.#mirrors]);
  }

  demote(url: string, reason: string): void {
    this.demotions.push(`${url} ${reason}`);
    const mirror = this.#mirrors.find((m) => m.url === url);
    if (mirror === undefined) return;
    this.#mirrors = [...this.#mirrors.filter((m) => m !== mirror), mirror];
  }
}

function fetcherFor(ranking: RankedMirrors, extra: MirrorFetcherOptions = {}) {
  const { time, now, sleep } = fakeTime();
  const fetcher = new MirrorFetcher(ranking, {
    backoff: new Backoff({ random: () => 0.5 }),
    now,
    sleep,
    ...extra,
  });
  return { time, fetcher };
}

function failure(promise: Promise<unknown>): Promise<VerifyError> {
  return failureOf(VerifyError, promise, 'expected the fetch to fail');
}

const TS = 'metadata/timestamp.json';
const BYTES = utf8('{"signed":{"version":3}}');

describe('MirrorFetcher', () => {
  it('fetches a path from the first fake mirror and remembers who served it', async () => {
    const a = await fakeMirror({ [TS]: BYTES });
    const b = await fakeMirror({ [TS]: utf8('other') });
    const { fetcher } = fetcherFor(new MovingRanking([a.url, b.url]));
    expect(await fetcher.fetch(TS, 1000)).toEqual(BYTES);
    expect(a.requests).toEqual([TS]);
    expect(b.requests).toEqual([]);
    expect(fetcher.servedBy(TS)).toBe(a.url);
    expect(fetcher.lastServed).toEqual({ path: TS, mirror: a.url });
    expect(fetcher.servedBy('metadata/1.root.json')).toBeUndefined();
  });

  it('fails over from a fake mirror answering 500, demoting it', async () => {
    const a = await fakeMirror({}, status(500));
    const b = await fakeMirror({ [TS]: BYTES });
    const ranking = new MovingRanking([a.url, b.url]);
    const { time, fetcher } = fetcherFor(ranking);
    expect(await fetcher.fetch(TS, 1000)).toEqual(BYTES);
    expect(fetcher.servedBy(TS)).toBe(b.url);
    expect(ranking.demotions).toEqual([
      `${a.url} GET ${a.url}${TS}: HTTP 500 Internal Server Error`,
    ]);
    expect(time.sleeps).toEqual([]);
  });

  it('asks the next fake mirror when a stale one answers 404, without demoting it', async () => {
    const stale = await fakeMirror({});
    const fresh = await fakeMirror({ 'metadata/2.root.json': BYTES });
    const ranking = new MovingRanking([stale.url, fresh.url]);
    const { fetcher } = fetcherFor(ranking);
    expect(await fetcher.fetch('metadata/2.root.json', 1000)).toEqual(BYTES);
    expect(stale.requests).toEqual(['metadata/2.root.json']);
    expect(ranking.demotions).toEqual([]);
  });

  it('rejects with NOT_FOUND when every fake mirror answers 404', async () => {
    const a = await fakeMirror({});
    const b = await fakeMirror({});
    const { fetcher } = fetcherFor(new MovingRanking([a.url, b.url]));
    const e = await failure(fetcher.fetch('metadata/3.root.json', 1000));
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toBe(
      `metadata/3.root.json: no mirror has it: ${a.url} (GET ${a.url}metadata/3.root.json: HTTP 404 Not Found); ${b.url} (GET ${b.url}metadata/3.root.json: HTTP 404 Not Found)`,
    );
    // 404 is final: asked once each.
    expect([a.requests.length, b.requests.length]).toEqual([1, 1]);
  });

  it('rejects with NOT_FOUND when the only mirror that answered said 404', async () => {
    const dead = await deadServerUrl();
    const a = await fakeMirror({});
    const busy = await fakeMirror({}, status(503, { 'retry-after': '1' }));
    const { fetcher } = fetcherFor(new MovingRanking([dead, a.url, busy.url]));
    expect((await failure(fetcher.fetch('metadata/2.root.json', 1000))).code).toBe('NOT_FOUND');
  });

  it('retries fake mirrors answering 503 after their Retry-After, then rejects with FETCH_FAILED', async () => {
    const a = await fakeMirror({}, status(503, { 'retry-after': '3' }));
    const b = await fakeMirror({}, status(429, { 'retry-after': '5' }));
    const ranking = new MovingRanking([a.url, b.url]);
    const { time, fetcher } = fetcherFor(ranking);
    const e = await failure(fetcher.fetch(TS, 1000));
    expect(e.code).toBe('FETCH_FAILED');
    expect(e.message).toBe(
      `${TS}: no mirror could serve it: ${a.url} (GET ${a.url}${TS}: HTTP 503 Service Unavailable); ${b.url} (GET ${b.url}${TS}: HTTP 429 Too Many Requests)`,
    );
    expect([a.requests.length, b.requests.length]).toEqual([2, 2]);
    // a is ready at 3.5 s, b at 5.5 s: sleep until a, then until b.
    expect(time.sleeps).toEqual([3500, 2000]);
  });

  it('comes back to a fake mirror after its Retry-After when the others fail', async () => {
    let calls = 0;
    const a = await fakeMirror({}, (req, res) => {
      if (++calls === 1) return status(429, { 'retry-after': '2' })(req, res);
      res.writeHead(200);
      res.end(BYTES);
    });
    const dead = await deadServerUrl();
    const { time, fetcher } = fetcherFor(new MovingRanking([a.url, dead]), {
      maxAttemptsPerMirror: 2,
    });
    expect(await fetcher.fetch(TS, 1000)).toEqual(BYTES);
    // a after 2.5 s; the dead mirror's own retry would come at 0.5 s, so it is tried first.
    expect(time.sleeps).toEqual([500, 2000]);
    expect(fetcher.servedBy(TS)).toBe(a.url);
  });

  it('does not retry an HTTP 400', async () => {
    const a = await fakeMirror({}, status(400));
    const { fetcher } = fetcherFor(new MovingRanking([a.url]), { maxAttemptsPerMirror: 5 });
    expect((await failure(fetcher.fetch(TS, 1000))).code).toBe('FETCH_FAILED');
    expect(a.requests).toHaveLength(1);
  });

  it('rejects with TOO_LARGE when every fake mirror sends more than maxLength', async () => {
    const a = await fakeMirror({ [TS]: BYTES });
    const b = await fakeMirror({ [TS]: BYTES });
    const ranking = new MovingRanking([a.url, b.url]);
    const { fetcher } = fetcherFor(ranking);
    const e = await failure(fetcher.fetch(TS, BYTES.length - 1));
    expect(e.code).toBe('TOO_LARGE');
    expect([a.requests.length, b.requests.length]).toEqual([1, 1]);
    expect(ranking.demotions).toHaveLength(2);
    b.handle = status(502);
    expect((await failure(fetcher.fetch(TS, BYTES.length - 1))).code).toBe('FETCH_FAILED');
  });

  it('demotes the mirror reported for bad data and never asks it for that path again', async () => {
    const bad = await fakeMirror({ [TS]: utf8('forged'), 'metadata/1.snapshot.json': BYTES });
    const good = await fakeMirror({ [TS]: BYTES, 'metadata/1.snapshot.json': BYTES });
    const ranking = new MovingRanking([bad.url, good.url]);
    const { fetcher } = fetcherFor(ranking);
    expect(await fetcher.fetch(TS, 1000)).toEqual(utf8('forged'));
    expect(fetcher.reportBadData(TS, 'THRESHOLD: timestamp signed by 0 of 1 keys')).toBe(bad.url);
    expect(ranking.demotions).toEqual([`${bad.url} THRESHOLD: timestamp signed by 0 of 1 keys`]);
    expect(fetcher.lastServed).toBeUndefined();
    expect(await fetcher.fetch(TS, 1000)).toEqual(BYTES);
    expect(fetcher.servedBy(TS)).toBe(good.url);
    // Another path: the demoted mirror comes last, but is still asked when it is needed.
    good.files.delete('metadata/1.snapshot.json');
    expect(await fetcher.fetch('metadata/1.snapshot.json', 1000)).toEqual(BYTES);
    expect(fetcher.servedBy('metadata/1.snapshot.json')).toBe(bad.url);
    // For the reported path it is never asked again, even when no one else can serve it.
    good.handle = status(500);
    expect(fetcher.reportBadData(TS, 'again')).toBe(good.url);
    const e = await failure(fetcher.fetch(TS, 1000));
    expect([e.code, e.message]).toEqual([
      'FETCH_FAILED',
      `${TS}: no mirror left to ask (2 served data that failed verification)`,
    ]);
    expect(bad.requests.filter((p) => p === TS)).toHaveLength(1);
    expect(fetcher.reportBadData('metadata/never-fetched.json', 'x')).toBeUndefined();
  });

  it('refuses a path that could leave the mirror base', async () => {
    const { fetcher } = fetcherFor(new MovingRanking(['http://127.0.0.1:9/']));
    await expect(fetcher.fetch('https://evil.example/metadata/timestamp.json', 10)).rejects.toThrow(
      RangeError,
    );
    await expect(fetcher.fetch('metadata/../secret', 10)).rejects.toThrow(RangeError);
  });

  it('runs the verify Updater over fake mirrors with metadataBaseUrl METADATA_PATH', async () => {
    const key = await Ed25519Signer.generate();
    const spec = { keys: [{ keyid: key.keyid, publicKey: key.publicKey }], threshold: 1 };
    const roles = { root: spec, timestamp: spec, snapshot: spec, targets: spec };
    const expires = new Date(Date.now() + 365 * 86_400_000);
    const root1 = (await signNew(buildRoot({ expires, roles }), [key])).toBytes();
    const root2 = (await signNew(buildRoot({ version: 2, expires, roles }), [key])).toBytes();
    const target = await describeTarget(nodeHashPort, 'daily.cvd', utf8('signatures'));
    const targets = (await signNew(buildTargets({ expires, targets: [target] }), [key])).toBytes();
    const snapshot = (
      await signNew(
        buildSnapshot({
          expires,
          meta: { 'targets.json': await describeMetadata(nodeHashPort, 1, targets) },
        }),
        [key],
      )
    ).toBytes();
    const timestamp = (
      await signNew(
        buildTimestamp({ expires, snapshot: await describeMetadata(nodeHashPort, 1, snapshot) }),
        [key],
      )
    ).toBytes();
    const release = {
      'metadata/1.root.json': root1,
      [TS]: timestamp,
      'metadata/1.snapshot.json': snapshot,
      'metadata/1.targets.json': targets,
    };
    // The stale mirror has not copied root version 2 yet; the fresh one has.
    const stale = await fakeMirror(release);
    const fresh = await fakeMirror({ ...release, 'metadata/2.root.json': root2 });
    const store = new FsMetadataStore(join(dir, 'metadata'));
    await store.persist('root', root1);
    const { fetcher } = fetcherFor(new MovingRanking([stale.url, fresh.url]));
    const updater = new Updater({
      metadataBaseUrl: METADATA_PATH,
      fetcher,
      store,
      hash: nodeHashPort,
    });
    await updater.refresh();
    expect(updater.trusted?.root.signed.version).toBe(2);
    expect(await updater.getTargetInfo('daily.cvd')).toEqual(target);
    expect(stale.requests).toEqual([
      'metadata/2.root.json',
      'metadata/3.root.json',
      TS,
      'metadata/1.snapshot.json',
      'metadata/1.targets.json',
    ]);
    expect(fresh.requests).toEqual(['metadata/2.root.json', 'metadata/3.root.json']);
    expect(fetcher.servedBy('metadata/2.root.json')).toBe(fresh.url);
    expect(fetcher.servedBy(TS)).toBe(stale.url);
  });
});
