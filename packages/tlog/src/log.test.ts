import type { BlobStore } from '@cairn/storage/blob-store';
import { StorageError } from '@cairn/storage/errors';
import { MemoryBlobStore } from '@cairn/storage/memory-store';
import { describe, expect, test } from 'vitest';
import { fromUtf8, toHex, utf8 } from './bytes.js';
import { createCosigner, parseCheckpoint } from './checkpoint.js';
import { encodeEntry, metadataEntry, parseEntry } from './entry.js';
import { isTlogError } from './errors.js';
import {
  checkpointPolicy,
  logConfigField,
  logConfigFromRoot,
  LOG_FIELD,
  type LogConfig,
} from './log-config.js';
import { LogReader } from './log-reader.js';
import { LogWriter } from './log-writer.js';
import { leafHash, rootFromLeafHashes } from './merkle.js';
import {
  ALGORITHM_COSIGNATURE_V1,
  ALGORITHM_ED25519,
  createEd25519Signer,
  formatVerifierKey,
  parseNote,
  type NoteSigner,
} from './note.js';
import { getPublicKeyAsync } from '@noble/ed25519';

const ORIGIN = 'cairn.test/log';
const SEED = new Uint8Array(32).fill(7);
const OTHER_SEED = new Uint8Array(32).fill(9);

async function logKey(seed = SEED): Promise<{ signer: NoteSigner; config: LogConfig }> {
  const signer = await createEd25519Signer(ORIGIN, seed);
  const key = await formatVerifierKey(ORIGIN, ALGORITHM_ED25519, await getPublicKeyAsync(seed));
  const config = logConfigFromRoot({ [LOG_FIELD]: logConfigField({ key }) });
  if (config === undefined) throw new Error('no config');
  return { signer, config };
}

/** The store with its `put` replaced (a fake failure, named as such in each test). */
function withPut(inner: BlobStore, put: BlobStore['put']): BlobStore {
  return {
    get: (key, options) => inner.get(key, options),
    head: (key) => inner.head(key),
    put,
    copy: (from, to, options) => inner.copy(from, to, options),
    delete: (key) => inner.delete(key),
    list: (options) => inner.list(options),
  };
}

async function bytesOf(store: BlobStore, key: string): Promise<Uint8Array> {
  const result = await store.get(key);
  if (result.notModified) throw new Error('304');
  return new Uint8Array(await new Response(result.body).arrayBuffer());
}

function readerOver(
  store: BlobStore,
  policy: Awaited<ReturnType<typeof checkpointPolicy>>,
): LogReader {
  return new LogReader((path) => bytesOf(store, `log/${path}`), policy);
}

async function entry(
  role: string,
  version: number,
  time = '2026-11-23T07:00:00.000Z',
): Promise<Uint8Array> {
  return encodeEntry(
    await metadataEntry(role, version, utf8(`${role} ${String(version)}`), new Date(time)),
  );
}

async function entries(from: number, count: number): Promise<Uint8Array[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => entry('targets', from + i)));
}

describe('entries', () => {
  test('encode writes canonical JSON and parse accepts exactly it', async () => {
    const e = await metadataEntry('targets', 12, utf8('abc'), new Date('2026-11-23T07:00:00Z'));
    const bytes = encodeEntry(e);
    expect(fromUtf8(bytes)).toBe(
      '{"length":3,"role":"targets","sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad","time":"2026-11-23T07:00:00.000Z","type":"cairn-metadata/v1","version":12}',
    );
    expect(parseEntry(bytes)).toEqual(e);
  });

  test.each([
    [
      'spaces',
      '{"length": 3,"role":"targets","sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad","time":"2026-11-23T07:00:00.000Z","type":"cairn-metadata/v1","version":12}',
    ],
    [
      'extra field',
      '{"extra":1,"length":3,"role":"targets","sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad","time":"2026-11-23T07:00:00.000Z","type":"cairn-metadata/v1","version":12}',
    ],
    [
      'other type',
      '{"length":3,"role":"targets","sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad","time":"2026-11-23T07:00:00.000Z","type":"other","version":12}',
    ],
    [
      'uppercase hash',
      '{"length":3,"role":"targets","sha256":"BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD","time":"2026-11-23T07:00:00.000Z","type":"cairn-metadata/v1","version":12}',
    ],
    [
      'version 0',
      '{"length":3,"role":"targets","sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad","time":"2026-11-23T07:00:00.000Z","type":"cairn-metadata/v1","version":0}',
    ],
    [
      'bad time',
      '{"length":3,"role":"targets","sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad","time":"2026-11-23T07:00:00Z","type":"cairn-metadata/v1","version":12}',
    ],
    ['not JSON', 'targets 12'],
  ])('parse refuses %s with MALFORMED_ENTRY', (_name, text) => {
    expect(() => parseEntry(utf8(text))).toThrow(
      expect.objectContaining({ code: 'MALFORMED_ENTRY' }),
    );
  });
});

describe('log declared in the root', () => {
  test('round trip with witnesses, and the policy it stands for', async () => {
    const { config } = await logKey();
    const witnessKey = await formatVerifierKey(
      'witness.test',
      ALGORITHM_COSIGNATURE_V1,
      await getPublicKeyAsync(OTHER_SEED),
    );
    const field = logConfigField({ key: config.key, witnesses: [witnessKey], witnessThreshold: 1 });
    expect(field).toEqual({ key: config.key, witnesses: [witnessKey], witness_threshold: 1 });
    const parsed = logConfigFromRoot({ [LOG_FIELD]: field });
    expect(parsed).toEqual({
      origin: ORIGIN,
      key: config.key,
      witnesses: [witnessKey],
      witnessThreshold: 1,
    });
    const policy = await checkpointPolicy(parsed as LogConfig);
    expect(policy.origin).toBe(ORIGIN);
    expect(policy.witnesses?.map((w) => w.name)).toEqual(['witness.test']);
    expect(logConfigFromRoot({})).toBeUndefined();
  });

  test.each([
    ['not an object', 'key'],
    ['unknown field', { key: 'a+00000000+AA==', extra: 1 }],
    ['threshold above witnesses', { key: 'a+00000000+AA==', witness_threshold: 1 }],
    ['key not a string', { key: 5 }],
  ])('refuses %s with MALFORMED_KEY', (_name, value) => {
    expect(() => logConfigFromRoot({ [LOG_FIELD]: value })).toThrow(
      expect.objectContaining({ code: 'MALFORMED_KEY' }),
    );
  });
});

describe('writer and reader over object storage', () => {
  test('appends across tile boundaries; the checkpoint root is the RFC 6962 root of all entries', async () => {
    const store = new MemoryBlobStore();
    const { signer, config } = await logKey();
    const writer = new LogWriter({ store, signer });
    const all: Uint8Array[] = [];
    const sizes = [1, 2, 253, 1, 1, 256, 300];
    for (const count of sizes) {
      const batch = await entries(all.length + 1, count);
      const result = await writer.append(batch);
      expect(result.appended).toBe(true);
      expect(result.indices).toEqual(batch.map((_, i) => all.length + i));
      all.push(...batch);
      expect(result.size).toBe(all.length);
      const expected = await rootFromLeafHashes(await Promise.all(all.map((e) => leafHash(e))));
      expect(toHex(result.rootHash)).toBe(toHex(expected));
    }
    const reader = readerOver(store, await checkpointPolicy(config));
    const head = await reader.latest();
    expect(head.checkpoint.size).toBe(814);
    expect(await reader.entries(head.checkpoint, 0, 814)).toEqual(all);
    expect(await reader.entries(head.checkpoint, 250, 260)).toEqual(all.slice(250, 260));
    const proof = await reader.proveInclusion(head.checkpoint, 513, all[513] as Uint8Array);
    expect(proof).toHaveLength(10); // ⌈log2 814⌉
    // Every older checkpoint size is a prefix of the newest.
    let size = 0;
    for (const count of sizes) {
      size += count;
      const old = {
        origin: ORIGIN,
        size,
        rootHash: await rootFromLeafHashes(
          await Promise.all(all.slice(0, size).map((e) => leafHash(e))),
        ),
        extensions: [],
      };
      await reader.checkConsistent(old, head.checkpoint);
    }
    // Full tiles and the partial ones of the final size exist; the partial entry bundle is too.
    expect(await store.head('log/tile/0/002')).toBeDefined();
    expect(await store.head('log/tile/0/003.p/46')).toBeDefined();
    expect(await store.head('log/tile/1/000.p/3')).toBeDefined();
    expect(await store.head('log/tile/entries/003.p/46')).toBeDefined();
  });

  test('appending the same entries again is a no-op that returns their indices', async () => {
    const store = new MemoryBlobStore();
    const { signer } = await logKey();
    const writer = new LogWriter({ store, signer });
    const first = await entries(1, 3);
    await writer.append(first);
    await writer.append(await entries(4, 2));
    const again = await writer.append(first);
    expect(again).toMatchObject({ appended: false, indices: [0, 1, 2], size: 5 });
    expect(parseCheckpoint(parseNote((await writer.checkpointText()) ?? '').text).size).toBe(5);
  });

  test('findMetadata finds each wanted version by exact bytes, with verified proofs', async () => {
    const store = new MemoryBlobStore();
    const { signer, config } = await logKey();
    const writer = new LogWriter({ store, signer });
    for (let v = 1; v <= 300; v++) {
      await writer.append([await entry('targets', v), await entry('snapshot', v)]);
    }
    const reader = readerOver(store, await checkpointPolicy(config));
    const head = (await reader.latest()).checkpoint;
    const found = await reader.findMetadata(head, [
      { role: 'targets', version: 300, bytes: utf8('targets 300') },
      { role: 'snapshot', version: 150, bytes: utf8('snapshot 150') },
      { role: 'targets', version: 299, bytes: utf8('targets 299 altered') },
      { role: 'root', version: 2, bytes: utf8('root 2') },
    ]);
    expect(found.map((f) => f?.index)).toEqual([598, 299, undefined, undefined]);
    expect(found[0]?.entry).toMatchObject({ role: 'targets', version: 300 });
    // 598 of 600: siblings 599, [596,598), [592,596), [576,592), [512,576), [0,512).
    expect(found[0]?.proof).toHaveLength(6);
    // A bounded scan does not reach version 150.
    const bounded = await reader.findMetadata(
      head,
      [{ role: 'snapshot', version: 150, bytes: utf8('snapshot 150') }],
      { maxScan: 100 },
    );
    expect(bounded).toEqual([undefined]);
  });

  test('a stored entry or tile altered in storage is refused by reader and writer', async () => {
    const store = new MemoryBlobStore();
    const { signer, config } = await logKey();
    const writer = new LogWriter({ store, signer });
    const batch = await entries(1, 5);
    await writer.append(batch);
    const policy = await checkpointPolicy(config);
    // Entry 2 replaced in the bundle (its tile unchanged).
    const tampered = [...batch];
    tampered[2] = await entry('targets', 99);
    const { encodeEntryBundle } = await import('./tiles.js');
    await store.put('log/tile/entries/000.p/5', encodeEntryBundle(tampered));
    const reader = readerOver(store, policy);
    const head = (await reader.latest()).checkpoint;
    await expect(reader.entries(head, 0, 5)).rejects.toMatchObject({ code: 'INVALID_PROOF' });
    await expect(writer.append(await entries(6, 1))).rejects.toMatchObject({
      code: 'INVALID_PROOF',
    });
    // Bundle and tile both rewritten consistently: the signed root no longer matches.
    const hashes = await Promise.all(tampered.map((e) => leafHash(e)));
    const tile = new Uint8Array(5 * 32);
    hashes.forEach((h, i) => tile.set(h, i * 32));
    await store.put('log/tile/0/000.p/5', tile);
    await expect(readerOver(store, policy).entries(head, 0, 5)).rejects.toMatchObject({
      code: 'INVALID_PROOF',
    });
    await expect(writer.append(await entries(6, 1))).rejects.toMatchObject({
      code: 'INVALID_PROOF',
    });
  });

  test('a forked checkpoint signed by the log key is a split view', async () => {
    const { signer, config } = await logKey();
    const honest = new MemoryBlobStore();
    const forked = new MemoryBlobStore();
    const shared = await entries(1, 10);
    await new LogWriter({ store: honest, signer }).append([...shared, await entry('targets', 11)]);
    await new LogWriter({ store: forked, signer }).append([...shared, await entry('targets', 66)]);
    await new LogWriter({ store: forked, signer }).append(await entries(12, 5));
    const policy = await checkpointPolicy(config);
    const held = (await readerOver(honest, policy).latest()).checkpoint;
    const reader = readerOver(forked, policy);
    const other = (await reader.latest()).checkpoint;
    await expect(reader.checkConsistent(held, other)).rejects.toMatchObject({ code: 'SPLIT_VIEW' });
    // Same size, different root.
    const sameSize = new MemoryBlobStore();
    await new LogWriter({ store: sameSize, signer }).append([
      ...shared,
      await entry('targets', 77),
    ]);
    const twin = (await readerOver(sameSize, policy).latest()).checkpoint;
    await expect(reader.checkConsistent(held, twin)).rejects.toMatchObject({ code: 'SPLIT_VIEW' });
    // An honest larger checkpoint is consistent.
    await new LogWriter({ store: honest, signer }).append(await entries(20, 300));
    const honestReader = readerOver(honest, policy);
    const newer = (await honestReader.latest()).checkpoint;
    expect((await honestReader.checkConsistent(held, newer)).length).toBeGreaterThan(0);
  });

  test('a checkpoint signed by another key or for another origin is refused', async () => {
    const store = new MemoryBlobStore();
    const { config } = await logKey();
    const thief = await createEd25519Signer(ORIGIN, OTHER_SEED);
    await new LogWriter({ store, signer: thief }).append(await entries(1, 2));
    const reader = readerOver(store, await checkpointPolicy(config));
    await expect(reader.latest()).rejects.toSatisfy((e) => isTlogError(e, 'UNKNOWN_KEY'));
  });

  test('witness cosignatures from the cosign hook are on the checkpoint and meet the quorum', async () => {
    const store = new MemoryBlobStore();
    const { signer, config } = await logKey();
    const witness = await createCosigner('witness.test', OTHER_SEED, () => 1_800_000_000);
    const writer = new LogWriter({
      store,
      signer,
      cosign: async ({ body }) => [
        { name: witness.name, keyHash: witness.keyHash, signature: await witness.sign(body) },
      ],
    });
    await writer.append(await entries(1, 3));
    const witnessKey = await formatVerifierKey(
      'witness.test',
      ALGORITHM_COSIGNATURE_V1,
      await getPublicKeyAsync(OTHER_SEED),
    );
    const policy = await checkpointPolicy({
      ...config,
      witnesses: [witnessKey],
      witnessThreshold: 1,
    });
    const opened = await readerOver(store, policy).latest();
    expect(opened.cosignatures).toEqual([{ name: 'witness.test', timestamp: 1_800_000_000 }]);
  });
});

describe('several writers and crashes', () => {
  test('concurrent writers over one store serialize: every entry once, one consistent log', async () => {
    const store = new MemoryBlobStore();
    const { signer, config } = await logKey();
    const writers = Array.from({ length: 4 }, () => new LogWriter({ store, signer }));
    const batches = await Promise.all(Array.from({ length: 12 }, (_, i) => entries(i * 10 + 1, 3)));
    const results = await Promise.all(
      batches.map((batch, i) => (writers[i % 4] as LogWriter).append(batch)),
    );
    const reader = readerOver(store, await checkpointPolicy(config));
    const head = (await reader.latest()).checkpoint;
    expect(head.size).toBe(36);
    const logged = await reader.entries(head, 0, 36);
    batches.forEach((batch, i) => {
      const at = (results[i]?.indices ?? [])[0] ?? -1;
      expect(logged.slice(at, at + 3)).toEqual(batch);
    });
    expect(new Set(results.map((r) => r.indices[0])).size).toBe(12);
  });

  test('a crash (fake: a failing put) after the tiles, before the checkpoint, leaves the old log valid; the next append repairs', async () => {
    const inner = new MemoryBlobStore();
    const { signer, config } = await logKey();
    await new LogWriter({ store: inner, signer }).append(await entries(1, 3));
    const crashing = withPut(inner, (key, body, options) =>
      key === 'log/checkpoint'
        ? Promise.reject(new Error('crash before the checkpoint'))
        : inner.put(key, body, options),
    );
    await expect(
      new LogWriter({ store: crashing, signer }).append([await entry('targets', 50)]),
    ).rejects.toThrow('crash before the checkpoint');
    const policy = await checkpointPolicy(config);
    const head = (await readerOver(inner, policy).latest()).checkpoint;
    expect(head.size).toBe(3);
    expect(await readerOver(inner, policy).entries(head, 0, 3)).toEqual(await entries(1, 3));
    // Another writer appends something else at the same position: the junk tiles are rewritten.
    const next = await new LogWriter({ store: inner, signer }).append([await entry('targets', 4)]);
    expect(next.repairedTiles).toEqual(['tile/0/000.p/4', 'tile/entries/000.p/4']);
    const after = readerOver(inner, policy);
    const newHead = (await after.latest()).checkpoint;
    expect(await after.entries(newHead, 0, 4)).toEqual(await entries(1, 4));
  });

  test('a lease held by a live writer makes others wait, then LOCKED; an expired one is taken over', async () => {
    const store = new MemoryBlobStore();
    const { signer } = await logKey();
    let now = Date.parse('2026-11-23T07:00:00Z');
    const clock = {
      now: () => new Date(now),
      sleep: (ms: number) => {
        now += ms;
        return Promise.resolve();
      },
    };
    await store.put(
      '_origin/log/lock.json',
      utf8(JSON.stringify({ holder: 'other', expires: new Date(now + 120_000).toISOString() })),
    );
    await expect(
      new LogWriter({ store, signer, lockWaitMs: 5_000, ...clock }).append(await entries(1, 1)),
    ).rejects.toMatchObject({ code: 'LOCKED' });
    now += 120_000;
    const result = await new LogWriter({ store, signer, ...clock }).append(await entries(1, 1));
    expect(result.size).toBe(1);
    const lease = JSON.parse(
      fromUtf8(await bytesOf(store, '_origin/log/lock.json')) ?? '',
    ) as unknown;
    expect(lease).toMatchObject({ released: true });
  });

  test('storage errors (fake: a failing put) other than a lost race propagate with the store error', async () => {
    const inner = new MemoryBlobStore();
    const { signer } = await logKey();
    const failing = withPut(inner, (key, body, options) =>
      key.startsWith('log/tile/')
        ? Promise.reject(new StorageError('UNAVAILABLE', 'down'))
        : inner.put(key, body, options),
    );
    await expect(
      new LogWriter({ store: failing, signer }).append(await entries(1, 1)),
    ).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
    expect(await inner.head('log/checkpoint')).toBeUndefined();
  });
});
