// Unit tests of the section-5 workflow with an in-memory fetcher and store (the network is
// faked here; test/attacks*.test.ts runs the same workflow over real HTTP and disk).
import { beforeEach, describe, expect, test } from 'vitest';
import { webHashPort } from './hash.js';
import { Metadata } from './metadata.js';
import { buildTimestamp } from './repository.js';
import { Ed25519Signer, signMetadata } from './signer.js';
import {
  BASE,
  DAY,
  MemoryRepository,
  MemoryStore,
  T0,
  TARGETS_BASE,
} from './testing/memory-repository.js';
import { Updater, type AcceptedMetadata, type UpdaterOptions } from './updater.js';

let repo: MemoryRepository;
let store: MemoryStore;

function updater(extra: Partial<UpdaterOptions> = {}): Updater {
  return new Updater({
    metadataBaseUrl: BASE,
    targetBaseUrl: TARGETS_BASE,
    fetcher: repo.fetcher,
    store,
    hash: webHashPort,
    now: () => new Date(T0.getTime() + 1000),
    ...extra,
  });
}

function requested(): string[] {
  return repo.fetcher.requests.map((u) => u.replace(BASE, '').replace(TARGETS_BASE, 'targets/'));
}

beforeEach(async () => {
  repo = await MemoryRepository.create();
  store = new MemoryStore();
  await store.persist('root', repo.rootBytes(1));
});

describe('refresh (in-memory fetcher)', () => {
  test('a first refresh fetches root v2, timestamp, snapshot v1 and targets v1, and persists them', async () => {
    await updater().refresh();
    expect(requested()).toEqual([
      '2.root.json',
      'timestamp.json',
      '1.snapshot.json',
      '1.targets.json',
    ]);
    expect([...store.files.keys()].sort()).toEqual(['root', 'snapshot', 'targets', 'timestamp']);
    expect(store.files.get('timestamp')).toEqual(repo.fetcher.files.get(`${BASE}timestamp.json`));
  });

  test('a second refresh with nothing new loads snapshot and targets from the store', async () => {
    await updater().refresh();
    repo.fetcher.requests.length = 0;
    await updater().refresh();
    expect(requested()).toEqual(['2.root.json', 'timestamp.json']);
  });

  test('a timestamp with the same version keeps the trusted copy, byte for byte', async () => {
    await updater().refresh();
    const before = store.files.get('timestamp');
    // Same version and content, new signature bytes: must not replace the trusted copy.
    const ts = repo.latest.get('timestamp') as Metadata;
    const other = await signMetadata(new Metadata(ts.signed), [await Ed25519Signer.generate()]);
    const both = other.withSignatures([...ts.signatures, ...other.signatures]);
    repo.fetcher.files.set(`${BASE}timestamp.json`, both.toBytes());
    await updater().refresh();
    expect(store.files.get('timestamp')).toEqual(before);
  });

  test('the reference time is read once per refresh (5.1)', async () => {
    let calls = 0;
    await updater({ now: () => (calls++, new Date(T0.getTime() + 1000)) }).refresh();
    expect(calls).toBe(1);
  });

  test('root rotates through each version and the store ends with the last', async () => {
    repo.signers.set('root', [await Ed25519Signer.generate()]);
    await repo.publishRoot();
    repo.signers.set('root', [await Ed25519Signer.generate()]);
    const v3 = await repo.publishRoot();
    const u = updater();
    await u.refresh();
    expect(u.trusted?.root.signed.version).toBe(3);
    expect(store.files.get('root')).toEqual(v3);
  });

  test('maxRootRotations caps how many root versions one refresh fetches', async () => {
    await repo.publishRoot();
    await repo.publishRoot();
    const u = updater({ limits: { maxRootRotations: 1 } });
    await u.refresh();
    expect(u.trusted?.root.signed.version).toBe(2);
    expect(requested().filter((r) => r.endsWith('root.json'))).toEqual(['2.root.json']);
  });

  test('a timestamp over its size cap is TOO_LARGE and nothing is persisted', async () => {
    await expect(updater({ limits: { timestampMaxLength: 100 } }).refresh()).rejects.toMatchObject({
      code: 'TOO_LARGE',
    });
    expect([...store.files.keys()]).toEqual(['root']);
  });

  test('an expired timestamp is EXPIRED, not persisted, and a later refresh succeeds', async () => {
    const ts = repo.latest.get('timestamp') as Metadata;
    const expired = await signMetadata(
      new Metadata(
        buildTimestamp({
          version: repo.timestampVersion + 1,
          expires: T0,
          snapshot: (ts.signed as ReturnType<typeof buildTimestamp>).snapshotMeta,
        }),
      ),
      repo.signersOf('timestamp'),
    );
    const good = repo.fetcher.files.get(`${BASE}timestamp.json`);
    repo.fetcher.files.set(`${BASE}timestamp.json`, expired.toBytes());
    await expect(updater().refresh()).rejects.toMatchObject({ code: 'EXPIRED' });
    expect(store.files.has('timestamp')).toBe(false);
    repo.fetcher.files.set(`${BASE}timestamp.json`, good ?? new Uint8Array());
    await expect(updater().refresh()).resolves.toBeUndefined();
  });

  test('without a trusted root the updater refuses to start', async () => {
    store.files.clear();
    await expect(updater().refresh()).rejects.toMatchObject({ code: 'INVALID_STATE' });
  });
});

describe('beforeAccept: a further check before anything fetched is persisted', () => {
  /** Records each call as `role vN (trusted root vM)`; checks the bytes are not persisted yet. */
  function recorder(calls: string[], fail?: (a: AcceptedMetadata) => boolean) {
    return (a: AcceptedMetadata): Promise<void> => {
      calls.push(`${a.role} v${a.version} (trusted root v${a.trustedRoot.signed.version})`);
      expect(store.files.get(a.role)).not.toEqual(a.bytes);
      expect(a.metadata.signed.version).toBe(a.version);
      expect(a.bytes).toEqual(repo.fetcher.files.get(`${BASE}${a.version}.${a.role}.json`));
      return fail?.(a) === true
        ? Promise.reject(new Error(`${a.role} refused`))
        : Promise.resolve();
    };
  }

  test('sees each root step, then targets, then delegated roles as fetched; never timestamp or snapshot', async () => {
    await repo.publishRoot();
    repo.signers.set('root', [await Ed25519Signer.generate()]);
    await repo.publishRoot();
    await repo.delegate('targets', 'a');
    repo.addTarget('file.txt', 'from a', 'a');
    await repo.publish();
    const calls: string[] = [];
    const u = updater({ beforeAccept: recorder(calls) });
    expect((await u.getTargetInfo('file.txt'))?.length).toBe(6);
    expect(calls).toEqual([
      'root v2 (trusted root v1)',
      'root v3 (trusted root v2)',
      'targets v2 (trusted root v3)',
      'a v1 (trusted root v3)',
    ]);
  });

  test('local copies already trusted are not passed again', async () => {
    await updater().refresh();
    const calls: string[] = [];
    await updater({ beforeAccept: recorder(calls) }).refresh();
    expect(calls).toEqual([]);
  });

  test('a refused root version is not persisted, and nothing after it is fetched', async () => {
    await repo.publishRoot();
    await repo.publishRoot();
    const calls: string[] = [];
    const u = updater({ beforeAccept: recorder(calls, (a) => a.role === 'root') });
    await expect(u.refresh()).rejects.toThrow('root refused');
    expect(calls).toEqual(['root v2 (trusted root v1)']);
    expect([...store.files.keys()]).toEqual(['root']);
    expect(store.files.get('root')).toEqual(repo.rootBytes(1));
    expect(requested()).toEqual(['2.root.json']);
  });

  test('refused targets are not persisted, nor the timestamp and snapshot that led to them', async () => {
    const calls: string[] = [];
    const u = updater({ beforeAccept: recorder(calls, (a) => a.role === 'targets') });
    await expect(u.refresh()).rejects.toThrow('targets refused');
    expect(u.trusted).toBeUndefined();
    expect(calls).toEqual(['targets v1 (trusted root v1)']);
    // A refused release leaves no trace: a mirror serving one cannot pin the client to its
    // timestamp and snapshot versions.
    expect([...store.files.keys()].sort()).toEqual(['root']);
    // The next refresh fetches the targets again and passes them to the check again.
    calls.length = 0;
    await updater({ beforeAccept: recorder(calls) }).refresh();
    expect(calls).toEqual(['targets v1 (trusted root v1)']);
    expect(store.files.has('targets')).toBe(true);
  });

  test('a refused delegated role is not persisted, and the search fails with its error', async () => {
    await repo.delegate('targets', 'a');
    repo.addTarget('file.txt', 'from a', 'a');
    await repo.publish();
    let refuse = true;
    const calls: string[] = [];
    const u = updater({ beforeAccept: recorder(calls, (a) => refuse && a.role === 'a') });
    await expect(u.getTargetInfo('file.txt')).rejects.toThrow('a refused');
    expect(store.files.has('a')).toBe(false);
    expect(store.files.has('targets')).toBe(true);
    // What was refused is not trusted from memory either: the next search starts again.
    expect(u.trusted).toBeUndefined();
    refuse = false;
    expect((await u.getTargetInfo('file.txt'))?.length).toBe(6);
    expect(calls).toEqual([
      'targets v2 (trusted root v1)',
      'a v1 (trusted root v1)',
      'a v1 (trusted root v1)',
    ]);
  });
});

describe('target search: pre-order depth-first (5.6.7)', () => {
  test('visits delegations in order, depth first, and finds a target deep in the graph', async () => {
    await repo.delegate('targets', 'a');
    await repo.delegate('a', 'c');
    await repo.delegate('targets', 'b');
    repo.addTarget('file.txt', 'from b', 'b');
    await repo.publish();
    const u = updater();
    const info = await u.getTargetInfo('file.txt');
    expect(info?.length).toBe(6);
    expect(requested().filter((r) => !r.includes('root') && !r.includes('timestamp'))).toEqual([
      '2.snapshot.json',
      '2.targets.json',
      '1.a.json',
      '1.c.json',
      '1.b.json',
    ]);
    expect(new TextDecoder().decode(await u.downloadTarget(info!))).toBe('from b');
  });

  test('a terminating delegation ends the search: later siblings are never fetched', async () => {
    await repo.delegate('targets', 'a', { terminating: true });
    await repo.delegate('targets', 'b');
    repo.addTarget('file.txt', 'from b', 'b');
    await repo.publish();
    expect(await updater().getTargetInfo('file.txt')).toBeUndefined();
    expect(requested()).not.toContain('1.b.json');
  });

  test('delegations apply only to matching paths', async () => {
    await repo.delegate('targets', 'a', { paths: ['*.db'] });
    await repo.delegate('targets', 'b', { paths: ['*.txt'] });
    repo.addTarget('x.txt', 'x', 'b');
    await repo.publish();
    expect((await updater().getTargetInfo('x.txt'))?.path).toBe('x.txt');
    expect(requested()).not.toContain('1.a.json');
  });

  test('a cycle in the delegation graph is visited once', async () => {
    await repo.delegate('targets', 'a');
    await repo.delegate('a', 'b');
    const a = repo.delegated.find((d) => d.role.name === 'a');
    if (a === undefined) throw new Error('no a');
    repo.delegated.push({ delegator: 'b', role: a.role });
    await repo.publish();
    expect(await updater().getTargetInfo('none.txt')).toBeUndefined();
    expect(requested().filter((r) => r === '1.a.json')).toHaveLength(1);
  });

  test('at most maxDelegations roles are visited (default 32)', async () => {
    let parent = 'targets';
    for (let i = 0; i < 35; i++) {
      await repo.delegate(parent, `r${i}`);
      parent = `r${i}`;
    }
    repo.addTarget('deep.txt', 'deep', 'r34');
    repo.addTarget('shallow.txt', 'shallow', 'r30');
    await repo.publish();
    expect(await updater().getTargetInfo('deep.txt')).toBeUndefined();
    expect(requested().filter((r) => /^1\.r\d+\.json$/.test(r))).toHaveLength(31);
    expect((await updater().getTargetInfo('shallow.txt'))?.path).toBe('shallow.txt');
  });

  test('a target path that climbs out of its directory is BAD_NAME before any fetch', async () => {
    await expect(updater().getTargetInfo('../../etc/passwd')).rejects.toMatchObject({
      code: 'BAD_NAME',
    });
    expect(repo.fetcher.requests).toEqual([]);
  });

  test('target URLs carry the hash prefix in the last segment under consistent snapshots', async () => {
    repo.addTarget('dir/sub/file.txt', 'content');
    await repo.publish();
    const u = updater();
    const info = await u.getTargetInfo('dir/sub/file.txt');
    expect(u.targetUrl(info!)).toBe(`${TARGETS_BASE}dir/sub/${info!.hashes.sha256}.file.txt`);
    expect(u.targetUrl(info!, 'https://mirror.test/t')).toBe(
      `https://mirror.test/t/dir/sub/${info!.hashes.sha256}.file.txt`,
    );
  });

  test('a downloaded target that does not match its hashes is BAD_HASH', async () => {
    repo.addTarget('a.txt', 'good!');
    await repo.publish();
    const u = updater();
    const info = await u.getTargetInfo('a.txt');
    repo.fetcher.files.set(u.targetUrl(info!), new TextEncoder().encode('evil!'));
    await expect(u.downloadTarget(info!)).rejects.toMatchObject({ code: 'BAD_HASH' });
    expect(await u.isTargetContent(info!, new TextEncoder().encode('good!'))).toBe(true);
    expect(await u.isTargetContent(info!, new TextEncoder().encode('evil!'))).toBe(false);
  });
});

test('expiry is judged against the fixed start time, not the wall clock', async () => {
  repo.now = new Date(T0.getTime() - 2 * DAY);
  await repo.publish();
  // Timestamp expires at T0 - 1 day: expired for a client whose clock says T0.
  await expect(updater().refresh()).rejects.toMatchObject({ code: 'EXPIRED' });
  await expect(
    updater({ now: () => new Date(T0.getTime() - 1.5 * DAY) }).refresh(),
  ).resolves.toBeUndefined();
});
