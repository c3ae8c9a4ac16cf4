/**
 * The transparency log as the origin writes it, in process over a memory store: which entries
 * each publication appends, that finishing a publication again appends nothing, that two
 * instances leave one log, that a crash between the tiles and the checkpoint leaves the old
 * checkpoint valid, and what root version 1 declares (the log, publishers' names).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BlobStore, PutBody, PutOptions } from '@cairn/storage/blob-store';
import { FsBlobStore } from '@cairn/storage/fs-store';
import { StorageError } from '@cairn/storage/errors';
import { MemoryBlobStore } from '@cairn/storage/memory-store';
import { checkpointPolicy, logConfigFromRoot } from '@cairn/tlog/log-config';
import { verifyInclusion, leafHash } from '@cairn/tlog/merkle';
import { openCheckpoint } from '@cairn/tlog/checkpoint';
import type { MetadataEntry } from '@cairn/tlog/entry';
import { Ed25519Signer } from '@cairn/verify/signer';
import { describe, expect, test } from 'vitest';
import { initRepository, proposeRootChange, publishPendingRoot } from '../src/admin.js';
import { resolveConfig } from '../src/config.js';
import { isOriginError } from '../src/errors.js';
import { MIN_SCRYPT_N, writeKeyFile } from '../src/key-file.js';
import { LOG_CHECKPOINT_KEY, LOG_PREFIX, PUBLICATIONS_PREFIX } from '../src/layout.js';
import { createLogger } from '../src/log.js';
import { publish } from '../src/publication.js';
import { readHead } from '../src/repository.js';
import { OriginService } from '../src/service.js';
import { startOrigin } from '../src/start.js';
import { sha256Hex } from '../src/store-io.js';
import {
  LoggedRepository,
  TEST_LOG_NAME,
  TEST_POLICY,
  generateRepositoryKeys,
  keyRef,
  publishFiles,
  type RepositoryKeys,
} from '../src/testing/logged-repository.js';
import { logConfigFor, logSignerFor } from '../src/transparency-log.js';
import { clientView, logReaderOn, loggedEntries } from './support/origin-fixture.js';
import { keysUnder } from './support/origin-process.js';

const T0 = new Date('2026-11-23T07:00:00.000Z');

/** A clock tests move by hand. */
function clock(start = T0) {
  let now = start.getTime();
  return {
    now: () => new Date(now),
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const described = (entries: readonly MetadataEntry[]) =>
  entries.map((e) => `${e.role} ${e.version}`);

async function stored(store: BlobStore, key: string): Promise<Uint8Array> {
  const got = await store.get(key);
  if (got.notModified) throw new Error('304');
  return new Uint8Array(await new Response(got.body).arrayBuffer());
}

/** Each entry names a file in the store by role and version, with its exact length and hash. */
async function expectEntriesMatchStore(store: BlobStore, entries: readonly MetadataEntry[]) {
  for (const entry of entries) {
    const bytes = await stored(store, `metadata/${entry.version}.${entry.role}.json`);
    expect(entry).toMatchObject({ length: bytes.length, sha256: sha256Hex(bytes) });
  }
}

function snapshotRefresh(service: OriginService) {
  return publish(service.ctx, () =>
    Promise.resolve({ reason: 'snapshot-refresh', blobs: [], approvedBy: [] }),
  );
}

function serviceOn(
  store: BlobStore,
  keys: RepositoryKeys,
  options: {
    now?: () => Date;
    logKey?: Ed25519Signer | undefined;
    onStep?: ConstructorParameters<typeof OriginService>[0]['onStep'];
  } = {},
): OriginService {
  return new OriginService({
    store,
    online: { snapshot: [keys.snapshot], timestamp: [keys.timestamp] },
    policy: TEST_POLICY,
    authWindowMs: 300_000,
    logger: createLogger({ write: () => undefined }),
    now: options.now,
    logKey: 'logKey' in options ? options.logKey : keys.log,
    onStep: options.onStep,
  });
}

describe('each publication appends its versions to the log', () => {
  test('root 1 at init, then a release, a snapshot refresh and a new root, each version once', async () => {
    const time = clock();
    const repo = await LoggedRepository.create({ now: time.now });
    expect(await loggedEntries(repo.store)).toEqual([
      {
        role: 'root',
        version: 1,
        length: (await stored(repo.store, 'metadata/1.root.json')).length,
        sha256: sha256Hex(await stored(repo.store, 'metadata/1.root.json')),
        time: T0.toISOString(),
      },
    ]);

    time.advance(60_000);
    expect(await repo.publish({ 'main.cvd': 'release 1' })).toMatchObject({
      targetsVersion: 1,
      snapshotVersion: 1,
    });
    time.advance(60_000);
    expect((await snapshotRefresh(repo.service)).snapshotVersion).toBe(2);
    time.advance(60_000);
    const carol = await Ed25519Signer.generate();
    expect(
      await repo.changeRoot({
        kind: 'add-publisher',
        publisher: { ...keyRef(carol), name: 'carol' },
      }),
    ).toBe(2);
    time.advance(60_000);
    await repo.publish({ 'main.cvd': 'release 2' }, [repo.keys.alice, carol]);

    const entries = await loggedEntries(repo.store);
    expect(described(entries)).toEqual([
      'root 1',
      'targets 1',
      'snapshot 1',
      'snapshot 2',
      // The new root goes out with the snapshot that is signed for it.
      'root 2',
      'snapshot 3',
      'targets 2',
      'snapshot 4',
    ]);
    expect(entries.map((e) => e.time)).toEqual(
      [0, 1, 1, 2, 3, 3, 4, 4].map((m) => new Date(T0.getTime() + m * 60_000).toISOString()),
    );
    await expectEntriesMatchStore(repo.store, entries);
    expect(await clientView(repo.store, time.now)).toEqual({
      version: 2,
      files: { 'main.cvd': 'release 2' },
    });
  });

  test('every entry has a verified inclusion proof in the checkpoint the log key signed', async () => {
    const repo = await LoggedRepository.create();
    await repo.publish({ 'a.txt': 'one' });
    await repo.publish({ 'a.txt': 'two' });
    const note = await stored(repo.store, LOG_CHECKPOINT_KEY);
    const { checkpoint } = await openCheckpoint(note, await checkpointPolicy(repo.log));
    expect({ origin: checkpoint.origin, size: checkpoint.size }).toEqual({
      origin: TEST_LOG_NAME,
      size: 5,
    });
    const reader = await logReaderOn(repo.store);
    const entries = await reader.entries(checkpoint, 0, checkpoint.size);
    for (const [index, entry] of entries.entries()) {
      const proof = await reader.proveInclusion(checkpoint, index, entry);
      await verifyInclusion(
        await leafHash(entry),
        index,
        checkpoint.size,
        proof,
        checkpoint.rootHash,
      );
    }
    // Status and metrics say how big it is.
    expect((await repo.service.status()).log).toEqual({ origin: TEST_LOG_NAME, size: 5 });
    expect(await repo.service.metrics.render()).toContain('\ncairn_origin_log_size 5\n');
  });

  test('a root published before any release is logged before it is visible, once', async () => {
    const time = clock();
    const repo = await LoggedRepository.create({ now: time.now });
    const carol = await Ed25519Signer.generate();
    time.advance(1000);
    // Writing root 2 fails once after the log append: the retry logs nothing new.
    let failed = false;
    const flaky = failingPuts(repo.store, (key) => {
      if (key !== 'metadata/2.root.json' || failed) return false;
      failed = true;
      return true;
    });
    const service = serviceOn(flaky, repo.keys, { now: time.now });
    const change = {
      kind: 'add-publisher' as const,
      publisher: { ...keyRef(carol), name: 'carol' },
    };
    await proposeRootChange(
      {
        store: repo.store,
        roots: service.ctx.roots,
        now: time.now(),
        rootExpiry: 365 * 86_400_000,
      },
      change,
      repo.keys.root,
    );
    time.advance(1000);
    expect(await publishPendingRoot(service.ctx).catch((e: unknown) => e)).toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
    });
    expect(described(await loggedEntries(repo.store))).toEqual(['root 1', 'root 2']);
    time.advance(1000);
    expect(await publishPendingRoot(service.ctx)).toBe(2);
    const entries = await loggedEntries(repo.store);
    expect(described(entries)).toEqual(['root 1', 'root 2']);
    // Stamped with the proposal's time, so the retry's entry was byte for byte the same.
    expect(entries[1]?.time).toBe(new Date(T0.getTime() + 1000).toISOString());
    await expectEntriesMatchStore(repo.store, entries);
  });
});

/** `inner`, except that puts for which `fail(key)` is true throw UNAVAILABLE. */
function failingPuts(inner: BlobStore, fail: (key: string) => boolean): BlobStore {
  return {
    get: (key, options) => inner.get(key, options),
    head: (key) => inner.head(key),
    put: (key: string, body: PutBody, options?: PutOptions) =>
      fail(key)
        ? Promise.reject(new StorageError('UNAVAILABLE', `injected failure writing ${key}`))
        : inner.put(key, body, options),
    copy: (from, to, options) => inner.copy(from, to, options),
    delete: (key) => inner.delete(key),
    list: (options) => inner.list(options),
  };
}

describe('a publication carried out again appends nothing', () => {
  test.each(['log', 'root', 'timestamp'] as const)(
    'stopped right after "%s", then finished by the next round of scheduled work',
    async (stopAt) => {
      const time = clock();
      const repo = await LoggedRepository.create({ now: time.now });
      await repo.publish({ 'a.txt': 'one' });
      const stopping = serviceOn(repo.store, repo.keys, {
        now: time.now,
        onStep: (step) => {
          if (step === stopAt) throw new Error(`stopped after ${step}`);
        },
      });
      time.advance(1000);
      await expect(snapshotRefresh(stopping)).rejects.toThrow(`stopped after ${stopAt}`);
      expect(await keysUnder(repo.store, PUBLICATIONS_PREFIX)).toHaveLength(1);
      time.advance(1000);
      // Finished twice over: by a tick, then by another instance's recovery finding nothing.
      // (After the timestamp it is visible already: only the plan is left to clean up.)
      expect((await repo.service.tick()).recovered).toEqual(stopAt === 'timestamp' ? [] : [2]);
      expect((await serviceOn(repo.store, repo.keys).tick()).errors).toEqual([]);
      const entries = await loggedEntries(repo.store);
      expect(described(entries)).toEqual(['root 1', 'targets 1', 'snapshot 1', 'snapshot 2']);
      // The plan's time, not the time it was finished.
      expect(entries[3]?.time).toBe(new Date(T0.getTime() + 1000).toISOString());
      await expectEntriesMatchStore(repo.store, entries);
    },
  );

  test('appending the same entries again returns their indices, appended false', async () => {
    const repo = await LoggedRepository.create();
    const root = (await repo.root(1)).signed;
    const bytes = await stored(repo.store, 'metadata/1.root.json');
    const again = await repo.service.ctx.log.append(
      root,
      [{ role: 'root', version: 1, bytes }],
      T0,
    );
    // Created with the real clock: another time is another entry, so this one is new.
    expect(again).toMatchObject({ appended: true, indices: [1] });
    const same = await repo.service.ctx.log.append(root, [{ role: 'root', version: 1, bytes }], T0);
    expect(same).toMatchObject({ appended: false, indices: [1], size: 2 });
  });
});

describe('two origin instances over one store', () => {
  test('publishing at once leave one log with every version once, in order', async () => {
    const repo = await LoggedRepository.create();
    await repo.publish({ 'a.txt': 'one' });
    const instances = [serviceOn(repo.store, repo.keys), serviceOn(repo.store, repo.keys)];
    const settled = await Promise.allSettled(
      instances.flatMap((s) => Array.from({ length: 5 }, () => snapshotRefresh(s))),
    );
    for (const r of settled) {
      if (r.status === 'rejected') expect(isOriginError(r.reason, 'CONFLICT')).toBe(true);
    }
    for (const s of instances) expect((await s.tick()).errors).toEqual([]);
    const head = await readHead(repo.store, repo.service.ctx.roots);
    const last = head.published?.snapshot.signed.version ?? 0;
    expect(last).toBeGreaterThan(2);
    const entries = await loggedEntries(repo.store);
    expect(described(entries)).toEqual([
      'root 1',
      'targets 1',
      ...Array.from({ length: last }, (_, i) => `snapshot ${i + 1}`),
    ]);
    await expectEntriesMatchStore(repo.store, entries);
  });
});

describe('a crash between the tiles and the checkpoint', () => {
  test('leaves the old checkpoint valid, and the next publication logs both', async () => {
    const time = clock();
    const repo = await LoggedRepository.create({ now: time.now });
    await repo.publish({ 'a.txt': 'one' });
    const before = await stored(repo.store, LOG_CHECKPOINT_KEY);
    const broken = serviceOn(
      failingPuts(repo.store, (key) => key === LOG_CHECKPOINT_KEY),
      repo.keys,
      { now: time.now },
    );
    time.advance(1000);
    expect(await snapshotRefresh(broken).catch((e: unknown) => e)).toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
    });
    // The new tiles are there; the checkpoint is the old one, and still verifies with them.
    expect(await stored(repo.store, LOG_CHECKPOINT_KEY)).toEqual(before);
    expect(described(await loggedEntries(repo.store))).toEqual([
      'root 1',
      'targets 1',
      'snapshot 1',
    ]);
    // Clients still see snapshot 1: nothing past the log step happened.
    expect(
      (await readHead(repo.store, repo.service.ctx.roots)).published?.snapshot.signed.version,
    ).toBe(1);

    time.advance(1000);
    expect((await snapshotRefresh(repo.service)).snapshotVersion).toBe(3);
    const entries = await loggedEntries(repo.store);
    expect(described(entries)).toEqual([
      'root 1',
      'targets 1',
      'snapshot 1',
      'snapshot 2',
      'snapshot 3',
    ]);
    await expectEntriesMatchStore(repo.store, entries);
  });
});

describe('what root version 1 declares', () => {
  test("the log key and publishers' names; key changes keep the log and name new keys", async () => {
    const repo = await LoggedRepository.create();
    const json = JSON.parse(
      new TextDecoder().decode(await stored(repo.store, 'metadata/1.root.json')),
    ) as { signed: { keys: Record<string, Record<string, unknown>>; 'x-cairn-log': unknown } };
    const config = await logConfigFor(repo.keys.log, TEST_LOG_NAME);
    expect(json.signed['x-cairn-log']).toEqual({ key: config.key });
    expect(config.key).toMatch(/^cairn\.test\/log\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$/);
    expect(json.signed.keys[repo.keys.alice.keyid]?.['x-cairn-name']).toBe('alice');
    expect(json.signed.keys[repo.keys.bob.keyid]?.['x-cairn-name']).toBe('bob');
    expect(json.signed.keys[repo.keys.snapshot.keyid]?.['x-cairn-name']).toBeUndefined();

    // The checkpoint verifies with the key the root declares, signed by the log key's seed.
    const signer = await logSignerFor(repo.keys.log, TEST_LOG_NAME);
    const policy = await checkpointPolicy(config);
    expect(signer.keyHash).toBe(policy.log.keyHash);

    const carol = await Ed25519Signer.generate();
    await repo.changeRoot({
      kind: 'add-publisher',
      publisher: { ...keyRef(carol), name: 'carol' },
    });
    const root2 = await repo.root(2);
    expect(logConfigFromRoot(root2.signed.extra)).toEqual(config);
    expect(root2.signed.keys.get(carol.keyid)?.toJSON()['x-cairn-name']).toBe('carol');
    expect(root2.signed.keys.get(repo.keys.alice.keyid)?.toJSON()['x-cairn-name']).toBe('alice');
  });

  test('a publisher name must be plain and unique', async () => {
    const repo = await LoggedRepository.create();
    const carol = await Ed25519Signer.generate();
    for (const name of ['', 'carol smith', 'ca/rol', 'x'.repeat(65), 'bob']) {
      const refused = await repo
        .changeRoot({ kind: 'add-publisher', publisher: { ...keyRef(carol), name } })
        .catch((e: unknown) => e);
      expect({ name, code: isOriginError(refused) ? refused.code : refused }).toEqual({
        name,
        code: 'INVALID_PUBLISHER_NAME',
      });
    }
    const keys = await generateRepositoryKeys();
    const twice = await initRepository(new MemoryBlobStore(), {
      rootSigners: keys.root,
      rootThreshold: 2,
      publishers: [
        { ...keyRef(keys.alice), name: 'same' },
        { ...keyRef(keys.bob), name: 'same' },
      ],
      targetsThreshold: 2,
      snapshotKey: keyRef(keys.snapshot),
      timestampKey: keyRef(keys.timestamp),
      rootExpiry: TEST_POLICY.expiry.root,
      now: T0,
    }).catch((e: unknown) => e);
    expect(isOriginError(twice, 'INVALID_PUBLISHER_NAME')).toBe(true);
  });
});

describe('without the log key, or without a log', () => {
  test('an origin without the key the root declares refuses to start and to publish', async () => {
    const repo = await LoggedRepository.create();
    await repo.publish({ 'a.txt': 'one' });
    for (const logKey of [undefined, await Ed25519Signer.generate()]) {
      const service = serviceOn(repo.store, repo.keys, { logKey });
      expect(await service.checkLogKey().catch((e: unknown) => e)).toMatchObject({
        code: 'CONFIG_INVALID',
      });
      expect(await snapshotRefresh(service).catch((e: unknown) => e)).toMatchObject({
        code: 'CONFIG_INVALID',
      });
    }
    // Refused before a plan was written: nothing is left half-done.
    expect(await keysUnder(repo.store, PUBLICATIONS_PREFIX)).toEqual([]);
    expect((await loggedEntries(repo.store)).length).toBe(3);
  });

  test('a repository whose root declares no log publishes as before, and logs nothing', async () => {
    const store = new MemoryBlobStore();
    const keys = await generateRepositoryKeys();
    await initRepository(store, {
      rootSigners: keys.root,
      rootThreshold: 2,
      publishers: [keyRef(keys.alice), keyRef(keys.bob)],
      targetsThreshold: 2,
      snapshotKey: keyRef(keys.snapshot),
      timestampKey: keyRef(keys.timestamp),
      rootExpiry: TEST_POLICY.expiry.root,
      now: new Date(),
    });
    const service = serviceOn(store, keys, { logKey: undefined });
    await service.checkLogKey();
    const root = await service.ctx.roots.newest();
    expect(logConfigFromRoot(root.signed.extra)).toBeUndefined();
    expect(await publishFiles(service, { 'a.txt': 'one' }, [keys.alice, keys.bob])).toMatchObject({
      targetsVersion: 1,
      snapshotVersion: 1,
    });
    expect((await snapshotRefresh(service)).snapshotVersion).toBe(2);
    expect(await clientView(store)).toEqual({ version: 1, files: { 'a.txt': 'one' } });
    expect(await keysUnder(store, LOG_PREFIX)).toEqual([]);
    expect((await service.status()).log).toBeUndefined();
    expect(await service.metrics.render()).not.toContain('\ncairn_origin_log_size ');
  });
});

describe('starting the origin from its configuration', () => {
  test('refuses to start while keys.log does not hold the log key the root declares', async () => {
    const home = await mkdtemp(join(tmpdir(), 'cairn-log-start-'));
    try {
      const keys = await generateRepositoryKeys();
      await LoggedRepository.create({
        store: new FsBlobStore(join(home, 'repository')),
        keys,
      });
      const passphrase = 'log start test';
      const write = (file: string, key: Ed25519Signer) =>
        writeKeyFile(join(home, file), key, passphrase, { scryptN: MIN_SCRYPT_N });
      await write('snapshot.key', keys.snapshot);
      await write('timestamp.key', keys.timestamp);
      const config = resolveConfig(
        {
          listen: { port: 0 },
          storage: { directory: 'repository' },
          keys: { snapshot: 'snapshot.key', timestamp: 'timestamp.key', log: 'log.key' },
        },
        { baseDirectory: home, env: {} },
      );
      const start = () =>
        startOrigin(config, {
          env: { CAIRN_ONLINE_PASSPHRASE: passphrase },
          logger: createLogger({ write: () => undefined }),
        });
      const missing = await start().catch((e: unknown) => e);
      expect(isOriginError(missing, 'CONFIG_INVALID') && missing.message).toBe(
        `the root declares the transparency log ${TEST_LOG_NAME}, but this origin holds no log key: configure keys.log (the key file cairn init made) and restart`,
      );
      await write('log.key', await Ed25519Signer.generate());
      expect(await start().catch((e: unknown) => e)).toMatchObject({ code: 'CONFIG_INVALID' });
      await rm(join(home, 'log.key'));
      await write('log.key', keys.log);
      const running = await start();
      try {
        expect((await running.service.status()).log).toEqual({ origin: TEST_LOG_NAME, size: 1 });
      } finally {
        await running.close();
      }
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});
