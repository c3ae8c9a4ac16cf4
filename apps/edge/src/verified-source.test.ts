import { MemoryBlobStore } from '@cairn/storage/memory-store';
import { webHashPort } from '@cairn/verify/hash';
import { Metadata } from '@cairn/verify/metadata';
import { Ed25519Signer } from '@cairn/verify/signer';
import { beforeEach, describe, expect, test } from 'vitest';
import {
  DAY,
  RecordingStore,
  SignedRepository,
  T0,
  bodyText,
  contentKey,
  keysOf,
  readAll,
  refusal,
  repoPath,
  text,
  utf8,
} from '../test/support/mirror-memory.js';
import { TestLog, createLogKey, forkOf, type TestLogKey } from '../test/support/log.js';
import { VerifiedSource, type VerifiedSourceOptions } from './verified-source.js';

let repo: SignedRepository;
let bucket: RecordingStore;
let clock: Date;
let logs: Record<string, unknown>[];

async function source(extra: Partial<VerifiedSourceOptions> = {}): Promise<VerifiedSource> {
  return new VerifiedSource({
    store: bucket,
    trustedRoot: await repo.trustedRoot,
    hash: webHashPort,
    timeoutMs: 2_000,
    recheckMs: 0,
    now: () => clock,
    log: (entry) => logs.push(entry),
    ...extra,
  });
}

beforeEach(async () => {
  repo = await SignedRepository.create({ 'a.txt': 'alpha', 'dir/b.txt': 'beta' });
  bucket = new RecordingStore(repo.store);
  clock = new Date(T0.getTime() + 1000);
  logs = [];
});

describe('VerifiedSource over an in-memory repository', () => {
  test('serves exactly the stored metadata bytes, with the stored etag, once they verify', async () => {
    const edge = await source();
    for (const key of [
      'metadata/timestamp.json',
      'metadata/1.snapshot.json',
      'metadata/1.targets.json',
      'metadata/1.root.json',
      'metadata/root.json',
    ]) {
      const object = await edge.get(repoPath(`/${key}`));
      const stored = await repo.store.head(key);
      expect(object.info.etag).toBe(stored?.etag);
      expect(new Uint8Array(await new Response(object.body).arrayBuffer())).toEqual(
        await repo.read(key),
      );
      expect((await edge.head(repoPath(`/${key}`)))?.etag).toBe(stored?.etag);
    }
    expect(logs).toEqual([
      { level: 'info', event: 'verified', timestamp: 1, snapshot: 1, targets: 1, root: 1 },
    ]);
  });

  test('serves a range of verified bytes as storage would', async () => {
    const edge = await source();
    const object = await edge.get(repoPath('/metadata/timestamp.json'), { offset: 2, length: 5 });
    expect(object.range).toEqual({ offset: 2, length: 5 });
    expect(text(new Uint8Array(await new Response(object.body).arrayBuffer()))).toBe(
      text((await repo.read('metadata/timestamp.json')).subarray(2, 7)),
    );
  });

  test('a timestamp signed by a key the root does not name is VERIFICATION_FAILED, logged at error', async () => {
    const forger = await Ed25519Signer.generate();
    await repo.store.put(
      'metadata/timestamp.json',
      await repo.signTimestamp({ version: 99, signers: [forger] }),
    );
    const edge = await source();
    expect(await refusal(edge.get(repoPath('/metadata/timestamp.json')))).toBe(
      'VERIFICATION_FAILED',
    );
    expect(await refusal(edge.get(repoPath('/metadata/1.snapshot.json')))).toBe(
      'VERIFICATION_FAILED',
    );
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatchObject({ level: 'error', event: 'verification-failed' });
    expect(String(logs[0]?.message)).toContain('THRESHOLD');
  });

  test('a modified snapshot is VERIFICATION_FAILED (its length and hash are in the timestamp)', async () => {
    const snapshot = text(await repo.read('metadata/1.snapshot.json'));
    // Same length, one signature character changed: only the hash tells.
    const changed = snapshot.replace(
      /"sig": "(.)/,
      (_, c: string) => `"sig": "${c === 'a' ? 'b' : 'a'}`,
    );
    expect(changed).not.toBe(snapshot);
    await repo.store.put('metadata/1.snapshot.json', utf8(changed));
    const edge = await source();
    expect(await refusal(edge.get(repoPath('/metadata/timestamp.json')))).toBe(
      'VERIFICATION_FAILED',
    );
    expect(await refusal(edge.get(repoPath('/metadata/1.snapshot.json')))).toBe(
      'VERIFICATION_FAILED',
    );
    expect(String(logs[0]?.message)).toContain('BAD_HASH');
    await repo.store.put('metadata/1.snapshot.json', utf8(`${snapshot} `));
    const longer = await source();
    expect(await refusal(longer.get(repoPath('/metadata/timestamp.json')))).toBe(
      'VERIFICATION_FAILED',
    );
    expect(String(logs.at(-1)?.message)).toContain('more than the');
  });

  test('a bucket rolled back to an older, validly signed timestamp is refused, and served again once restored', async () => {
    await repo.release({ 'a.txt': 'alpha 2' });
    const edge = await source();
    expect(JSON.parse(await bodyText(edge, '/metadata/timestamp.json'))).toMatchObject({
      signed: { version: 2 },
    });
    const [older, newer] = repo.timestamps;
    if (older === undefined || newer === undefined) throw new Error('two timestamps expected');
    await repo.store.put('metadata/timestamp.json', older);
    expect(await refusal(edge.get(repoPath('/metadata/timestamp.json')))).toBe(
      'VERIFICATION_FAILED',
    );
    expect(await refusal(edge.head(repoPath('/metadata/2.snapshot.json')))).toBe(
      'VERIFICATION_FAILED',
    );
    expect(String(logs.at(-1)?.message)).toContain('ROLLBACK');
    await repo.store.put('metadata/timestamp.json', newer);
    expect(await bodyText(edge, '/metadata/timestamp.json')).toBe(text(newer));
  });

  test('an expired timestamp is refused (freeze), and a fresh one is served', async () => {
    const edge = await source();
    await bodyText(edge, '/metadata/timestamp.json');
    clock = new Date(T0.getTime() + 2 * DAY);
    expect(await refusal(edge.get(repoPath('/metadata/timestamp.json')))).toBe(
      'VERIFICATION_FAILED',
    );
    expect(String(logs.at(-1)?.message)).toContain('EXPIRED');
    repo.now = clock;
    const fresh = await repo.publishTimestamp();
    expect(await bodyText(edge, '/metadata/timestamp.json')).toBe(text(fresh));
  });

  test('looks at the stored etag at most once per recheck interval, and re-verifies only when it changed', async () => {
    const edge = await source({ recheckMs: 1000 });
    await bodyText(edge, '/metadata/timestamp.json');
    const reads = () => bucket.count('get', 'metadata/timestamp.json');
    const heads = () => bucket.count('head', 'metadata/timestamp.json');
    expect([heads(), reads()]).toEqual([1, 1]);
    await bodyText(edge, '/metadata/timestamp.json');
    await bodyText(edge, '/metadata/1.snapshot.json');
    expect([heads(), reads()]).toEqual([1, 1]);
    clock = new Date(clock.getTime() + 1000);
    await bodyText(edge, '/metadata/timestamp.json');
    expect([heads(), reads()]).toEqual([2, 1]);
    await repo.release({ 'a.txt': 'alpha 2' });
    clock = new Date(clock.getTime() + 1000);
    expect(JSON.parse(await bodyText(edge, '/metadata/timestamp.json'))).toMatchObject({
      signed: { version: 2 },
    });
    expect([heads(), reads()]).toEqual([3, 2]);
    expect(bucket.count('get', 'metadata/2.snapshot.json')).toBe(1);
    await bodyText(edge, '/metadata/2.snapshot.json');
    expect(bucket.count('get', 'metadata/2.snapshot.json')).toBe(1);
  });

  test('a failure is remembered for the same stored timestamp until the next recheck', async () => {
    await repo.store.put(
      'metadata/timestamp.json',
      await repo.signTimestamp({ signers: [await Ed25519Signer.generate()] }),
    );
    const edge = await source({ recheckMs: 1000 });
    expect(await refusal(edge.get(repoPath('/metadata/timestamp.json')))).toBe(
      'VERIFICATION_FAILED',
    );
    expect(await refusal(edge.get(repoPath('/metadata/timestamp.json')))).toBe(
      'VERIFICATION_FAILED',
    );
    expect(bucket.count('get', 'metadata/timestamp.json')).toBe(1);
    expect(logs).toHaveLength(1);
  });

  test('a rotated root is served from the verified chain; a tampered next root fails the whole release', async () => {
    const root2 = await repo.publishRoot({ rotate: ['timestamp'] });
    await repo.publishTimestamp();
    const edge = await source();
    expect(await bodyText(edge, '/metadata/2.root.json')).toBe(text(root2));
    expect(await bodyText(edge, '/metadata/root.json')).toBe(text(root2));
    expect(await bodyText(edge, '/metadata/1.root.json')).toBe(text(await repo.trustedRoot));
    expect(await refusal(edge.get(repoPath('/metadata/3.root.json')))).toBe('NOT_FOUND');

    const fresh = await source();
    // Whitespace would not count (signatures cover the canonical form): change what is signed.
    const tampered = text(root2).replace(/"expires": "20\d\d/, '"expires": "2099');
    expect(tampered).not.toBe(text(root2));
    await repo.store.put('metadata/2.root.json', utf8(tampered));
    expect(await refusal(fresh.get(repoPath('/metadata/timestamp.json')))).toBe(
      'VERIFICATION_FAILED',
    );
  });

  test('root.json must be a root of the verified chain', async () => {
    const forged = Metadata.fromBytes(await repo.trustedRoot, 'root');
    const edge = await source();
    await repo.store.put(
      'metadata/root.json',
      utf8(JSON.stringify({ ...forged.toJSON(), signatures: [] })),
    );
    expect(await refusal(edge.get(repoPath('/metadata/root.json')))).toBe('VERIFICATION_FAILED');
  });

  test('an older snapshot is served when the snapshot key signed it; a forged one is refused', async () => {
    await repo.release({ 'a.txt': 'alpha 2' });
    const edge = await source();
    expect(await bodyText(edge, '/metadata/1.snapshot.json')).toBe(
      text(await repo.read('metadata/1.snapshot.json')),
    );
    const old = JSON.parse(text(await repo.read('metadata/1.targets.json'))) as {
      signed: { expires: string };
    };
    old.signed.expires = '2099-01-01T00:00:00Z';
    await repo.store.put('metadata/1.targets.json', utf8(JSON.stringify(old)));
    expect(await refusal(edge.get(repoPath('/metadata/1.targets.json')))).toBe(
      'VERIFICATION_FAILED',
    );
    expect(await refusal(edge.get(repoPath('/metadata/7.snapshot.json')))).toBe('NOT_FOUND');
  });

  test('target blobs are served from storage as they are, not re-hashed (clients verify them)', async () => {
    const key = contentKey('a.txt', 'alpha');
    await repo.store.put(key, utf8('tampered'));
    const edge = await source();
    expect(await bodyText(edge, `/${key}`)).toBe('tampered');
    expect(bucket.count('get', 'metadata/timestamp.json')).toBe(0);
  });

  test('a missing timestamp is NOT_FOUND; a failing store is STORAGE_UNAVAILABLE, not a verification failure', async () => {
    await repo.store.delete('metadata/timestamp.json');
    const edge = await source();
    expect(await refusal(edge.get(repoPath('/metadata/timestamp.json')))).toBe('NOT_FOUND');
    expect(await edge.head(repoPath('/metadata/timestamp.json'))).toBeUndefined();
    bucket.head = () => Promise.reject(new Error('connection reset (test)'));
    expect(await refusal(edge.get(repoPath('/metadata/timestamp.json')))).toBe(
      'STORAGE_UNAVAILABLE',
    );
    expect(logs).toEqual([]);
  });

  test('a timestamp larger than the cap is refused without reading it all', async () => {
    await repo.store.put('metadata/timestamp.json', new Uint8Array(20_000).fill(32));
    const edge = await source();
    expect(await refusal(edge.get(repoPath('/metadata/timestamp.json')))).toBe(
      'VERIFICATION_FAILED',
    );
    expect(String(logs[0]?.message)).toContain('20000 bytes');
  });

  test('a pinned root that is not root metadata is CONFIG_INVALID', () => {
    expect(
      () =>
        new VerifiedSource({
          store: bucket,
          trustedRoot: utf8('{"signed":{"_type":"timestamp"},"signatures":[]}'),
          hash: webHashPort,
          timeoutMs: 1000,
        }),
    ).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});

describe('VerifiedSource and the transparency log the root declares (in-memory)', () => {
  let key: TestLogKey;
  let log: TestLog;

  beforeEach(async () => {
    key = await createLogKey();
    repo = await SignedRepository.create({ 'a.txt': 'alpha' }, { log: key });
    bucket = new RecordingStore(repo.store);
    if (repo.log === undefined) throw new Error('no log');
    log = repo.log;
  });

  const checkpointPath = () => repoPath('/log/checkpoint');
  const bytesOf = async (edge: VerifiedSource, path: string) =>
    new Uint8Array(await new Response((await edge.get(repoPath(path))).body).arrayBuffer());

  test('serves the checkpoint once it verifies, exactly the stored bytes; tiles as stored', async () => {
    const edge = await source();
    expect(log.entries).toHaveLength(3);
    const object = await edge.get(checkpointPath());
    expect(object.info.etag).toBe((await repo.store.head('log/checkpoint'))?.etag);
    expect(new Uint8Array(await new Response(object.body).arrayBuffer())).toEqual(
      log.checkpoints.at(-1),
    );
    expect((await edge.head(checkpointPath()))?.etag).toBe(object.info.etag);
    expect(await bytesOf(edge, '/log/tile/0/000.p/3')).toEqual(
      await repo.read('log/tile/0/000.p/3'),
    );
    expect(edge.logSize).toBe(3);
    expect(logs).toContainEqual({
      level: 'info',
      event: 'checkpoint-verified',
      origin: 'cairn.test/log',
      size: 3,
    });
  });

  test('a checkpoint signed by another key, or for another origin, is VERIFICATION_FAILED', async () => {
    const other = await createLogKey();
    const forged = new TestLog(other, new MemoryBlobStore());
    await forged.append(log.entries);
    await repo.store.put('log/checkpoint', forged.checkpoints.at(-1) ?? new Uint8Array());
    const edge = await source();
    expect(await refusal(edge.get(checkpointPath()))).toBe('VERIFICATION_FAILED');
    expect(await refusal(edge.head(checkpointPath()))).toBe('VERIFICATION_FAILED');
    expect(logs.at(-1)).toMatchObject({ level: 'error', event: 'verification-failed' });
    expect(String(logs.at(-1)?.message)).toContain('UNKNOWN_KEY');

    const elsewhere = await createLogKey('elsewhere.test/log');
    const renamed = new TestLog(elsewhere, new MemoryBlobStore());
    await renamed.append(log.entries);
    await repo.store.put('log/checkpoint', renamed.checkpoints.at(-1) ?? new Uint8Array());
    expect(await refusal(edge.get(checkpointPath()))).toBe('VERIFICATION_FAILED');
    // Metadata is unaffected: the log is checked on its own.
    expect(JSON.parse(await bodyText(edge, '/metadata/timestamp.json'))).toMatchObject({
      signed: { version: 1 },
    });
  });

  test('a new release extends the log: served after a consistency proof from the stored tiles', async () => {
    const edge = await source();
    await edge.get(checkpointPath());
    await repo.release({ 'a.txt': 'alpha 2' });
    await log.fill(300, 'more');
    expect(await bytesOf(edge, '/log/checkpoint')).toEqual(log.checkpoints.at(-1));
    expect(edge.logSize).toBe(305);
    // The proof read tiles of the new tree from storage.
    expect(bucket.count('get', 'log/tile/0/000')).toBeGreaterThan(0);
  });

  test('a bucket rolled back to an older, validly signed checkpoint is refused, and served again once restored', async () => {
    await repo.release({ 'a.txt': 'alpha 2' });
    const edge = await source();
    const newest = log.checkpoints.at(-1);
    expect(await bytesOf(edge, '/log/checkpoint')).toEqual(newest);
    await repo.store.put('log/checkpoint', log.checkpoints[0] ?? new Uint8Array());
    expect(await refusal(edge.get(checkpointPath()))).toBe('VERIFICATION_FAILED');
    expect(String(logs.at(-1)?.message)).toContain('SPLIT_VIEW');
    expect(String(logs.at(-1)?.message)).toContain('went back from 5 to 1');
    await repo.store.put('log/checkpoint', newest ?? new Uint8Array());
    expect(await bytesOf(edge, '/log/checkpoint')).toEqual(newest);
  });

  test('a forked checkpoint (the log key stolen, another tree written into the bucket) is refused', async () => {
    const edge = await source();
    expect(await bytesOf(edge, '/log/checkpoint')).toEqual(log.checkpoints.at(-1));
    // The same first two entries, then others: every tile and the checkpoint replaced.
    const fork = await forkOf(log, 2, 4);
    for (const tileKey of await keysOf(fork.store, 'log/')) {
      await repo.store.put(tileKey, await readAll(fork.store, tileKey));
    }
    expect(await refusal(edge.get(checkpointPath()))).toBe('VERIFICATION_FAILED');
    expect(String(logs.at(-1)?.message)).toContain('SPLIT_VIEW');
    // A fresh edge has nothing to compare with: only a witness or a client that saw the
    // real log can tell (the client side's job).
    const fresh = await source();
    expect(await bytesOf(fresh, '/log/checkpoint')).toEqual(fork.checkpoints.at(-1));
  });

  test('a checkpoint whose tiles are missing cannot be proven to extend the served one', async () => {
    const edge = await source();
    await edge.get(checkpointPath());
    await repo.release({ 'a.txt': 'alpha 2' });
    await repo.store.delete('log/tile/0/000.p/5');
    expect(await refusal(edge.get(checkpointPath()))).toBe('VERIFICATION_FAILED');
    expect(String(logs.at(-1)?.message)).toContain('log/tile/0/000.p/5');
  });

  test('without a log in the root, log/checkpoint is served as stored', async () => {
    const plain = await SignedRepository.create({ 'a.txt': 'alpha' });
    await plain.store.put('log/checkpoint', utf8('anything\n'));
    repo = plain;
    bucket = new RecordingStore(plain.store);
    const edge = await source();
    expect(text(await bytesOf(edge, '/log/checkpoint'))).toBe('anything\n');
    expect(edge.logSize).toBeUndefined();
  });
});

test('readAll helper reads a whole object (in-memory)', async () => {
  const store = new RecordingStore();
  await store.put('x', utf8('y'));
  expect(text(await readAll(store, 'x'))).toBe('y');
});
