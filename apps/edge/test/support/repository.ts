/**
 * A real signed repository for the edge's tests: a real origin (in this process, on a memory
 * store, served over 127.0.0.1) initialised with two root keys and two publishers, two
 * releases pushed and signed by both, the second with deltas. The tests copy its public objects
 * into each deployment's storage and check what the edge serves against the bytes here.
 */
import { HttpFetcher } from '@cairn/client/http-fetcher';
import { nodeHashPort } from '@cairn/client/node-hash';
import type { BlobStore } from '@cairn/storage/blob-store';
import type { MemoryBlobStore } from '@cairn/storage/memory-store';
import { Metadata, type Timestamp } from '@cairn/verify/metadata';
import { Updater } from '@cairn/verify/updater';
import {
  keysOf,
  memoryMetadataStore,
  readAll,
  refreshAndDownload,
  sha256Hex,
  targetKey,
  type ClientView,
} from './mirror-memory.js';
import { startMirrorOrigin } from './mirror-origin.js';

export interface RepositoryFile {
  /** The TUF target path, e.g. `daily/bytecode.cvd`. */
  readonly path: string;
  readonly bytes: Uint8Array;
  readonly sha256: string;
  /** The storage key the origin wrote it under, e.g. `targets/daily/{sha256}.bytecode.cvd`. */
  readonly key: string;
}

export interface Release {
  readonly targetsVersion: number;
  /** TUF target path → file, deltas excluded. */
  readonly files: ReadonlyMap<string, RepositoryFile>;
}

export interface RepositoryDelta {
  /** `_delta/{path}/{base sha256}` */
  readonly path: string;
  readonly key: string;
  readonly bytes: Uint8Array;
  readonly sha256: string;
  /** The file the delta rebuilds, and the sha256 of the base it applies to. */
  readonly target: string;
  readonly baseSha256: string;
}

export interface BuiltRepository {
  /** Everything the origin wrote, its private `_origin/` state included. */
  readonly store: MemoryBlobStore;
  /** metadata/1.root.json: what a client pins. */
  readonly trustedRoot: Uint8Array;
  readonly releases: readonly [Release, Release];
  /** The deltas release 2 carries. */
  readonly deltas: readonly RepositoryDelta[];
  readonly timestampVersion: number;
  /** Public keys (metadata/, targets/ and log/), in key order. */
  publicKeys(): string[];
  /** Keys under `_origin/`, which the edge must never serve. */
  privateKeys(): string[];
  /** Copies every public object (and only those) into `dest`. */
  copyPublic(dest: BlobStore): Promise<void>;
  /** The bytes of a stored object. */
  read(key: string): Promise<Uint8Array>;
}

export interface BuildOptions {
  /** Adds `large.bin` of this many bytes to both releases (unchanged, so no delta): streaming. */
  readonly largeFileBytes?: number | undefined;
}

/** mulberry32: the same bytes on every run, so failures reproduce. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hexWord(next: () => number, length: number): string {
  let text = '';
  while (text.length < length)
    text += Math.floor(next() * 2 ** 32)
      .toString(16)
      .padStart(8, '0');
  return text.slice(0, length);
}

/** Signature-database-like records; `changed` replaces about that share of them. */
function records(seed: number, count: number, changed = 0, changeSeed = 0): Uint8Array {
  const next = random(seed);
  const change = random(changeSeed);
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const line = `Sig.${String(i).padStart(6, '0')}:0:*:${hexWord(next, 48)}`;
    lines.push(changed > 0 && change() < changed ? `Sig.${i}:1:*:${hexWord(change, 48)}` : line);
  }
  return new TextEncoder().encode(`${lines.join('\n')}\n`);
}

function pattern(seed: number, size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  const next = random(seed);
  for (let i = 0; i < size; i += 4) {
    const word = Math.floor(next() * 2 ** 32);
    bytes[i] = word & 0xff;
    bytes[i + 1] = (word >>> 8) & 0xff;
    bytes[i + 2] = (word >>> 16) & 0xff;
    bytes[i + 3] = (word >>> 24) & 0xff;
  }
  return bytes;
}

function release(targetsVersion: number, contents: ReadonlyMap<string, Uint8Array>): Release {
  const files = new Map<string, RepositoryFile>();
  for (const [path, bytes] of contents) {
    const sha256 = sha256Hex(bytes);
    files.set(path, { path, bytes, sha256, key: targetKey(path, sha256) });
  }
  return { targetsVersion, files };
}

/** Builds the repository; about a second. */
export async function buildRepository(options: BuildOptions = {}): Promise<BuiltRepository> {
  const origin = await startMirrorOrigin();
  try {
    const large =
      options.largeFileBytes === undefined
        ? []
        : [['large.bin', pattern(7, options.largeFileBytes)] as const];
    const first = new Map<string, Uint8Array>([
      ['main.cvd', records(1, 3200)],
      ['daily/bytecode.cvd', records(2, 400)],
      ['notes.txt', new TextEncoder().encode('release one\n')],
      ...large,
    ]);
    const second = new Map<string, Uint8Array>([
      ['main.cvd', records(1, 3200, 0.01, 3)],
      ['daily/bytecode.cvd', records(2, 400, 0.01, 4)],
      ['notes.txt', new TextEncoder().encode('release two\n')],
      ...large,
    ]);
    await origin.publish(first);
    await origin.publish(second);
  } finally {
    await origin.close();
  }

  const { store, trustedRoot } = origin;
  const timestampMetadata: Metadata<Timestamp> = Metadata.fromBytes(
    await readAll(store, 'metadata/timestamp.json'),
    'timestamp',
    'timestamp.json',
  );
  const releases: [Release, Release] = [
    release(1, await filesOf(store, 1)),
    release(2, await filesOf(store, 2)),
  ];
  const deltas: RepositoryDelta[] = [];
  for (const key of await keysOf(store, 'targets/_delta/')) {
    const bytes = await readAll(store, key);
    // targets/_delta/{path}/{sha256}.{base sha256}
    const rest = key.slice('targets/_delta/'.length);
    const slash = rest.lastIndexOf('/');
    const [sha256 = '', baseSha256 = ''] = rest.slice(slash + 1).split('.');
    deltas.push({
      path: `_delta/${rest.slice(0, slash)}/${baseSha256}`,
      key,
      bytes,
      sha256,
      target: rest.slice(0, slash),
      baseSha256,
    });
  }
  if (deltas.length === 0) throw new Error('the origin made no deltas for release 2');
  const publicKeys = [
    ...(await keysOf(store, 'metadata/')),
    ...(await keysOf(store, 'targets/')),
    // The transparency log, when the origin keeps one.
    ...(await keysOf(store, 'log/')),
  ].sort();
  const privateKeys = await keysOf(store, '_origin/');

  return {
    store,
    trustedRoot,
    releases,
    deltas,
    timestampVersion: timestampMetadata.signed.version,
    publicKeys: () => [...publicKeys],
    privateKeys: () => [...privateKeys],
    async copyPublic(dest) {
      for (const key of publicKeys) {
        const bytes = await readAll(store, key);
        await dest.put(key, bytes, {
          contentLength: bytes.length,
          contentType: key.startsWith('metadata/')
            ? 'application/json'
            : key === 'log/checkpoint'
              ? 'text/plain; charset=utf-8'
              : 'application/octet-stream',
        });
      }
    },
    read: (key) => readAll(store, key),
  };
}

/** The files a targets version lists (deltas excluded), read back from the store. */
async function filesOf(store: BlobStore, version: number): Promise<Map<string, Uint8Array>> {
  const targets = Metadata.fromBytes(
    await readAll(store, `metadata/${version}.targets.json`),
    'targets',
    `${version}.targets.json`,
  );
  const files = new Map<string, Uint8Array>();
  for (const [path, file] of targets.signed.targets) {
    if (path.startsWith('_delta/')) continue;
    const sha256 = file.hashes.sha256;
    if (sha256 === undefined) throw new Error(`${path}: no sha256`);
    files.set(path, await readAll(store, targetKey(path, sha256)));
  }
  return files;
}

/** What the client trusts after refreshing, and every target (deltas included) it verified. */
export type VerifiedView = ClientView;

/**
 * Our TUF client, pinned to `trustedRoot`, refreshing through the edge at `baseUrl` over HTTP
 * and downloading (and so verifying) every target listed.
 */
export async function verifyThrough(
  baseUrl: string,
  trustedRoot: Uint8Array,
): Promise<VerifiedView> {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const updater = new Updater({
    metadataBaseUrl: `${base}metadata/`,
    targetBaseUrl: `${base}targets/`,
    fetcher: new HttpFetcher({ timeoutMs: 30_000 }),
    store: memoryMetadataStore(trustedRoot),
    hash: nodeHashPort,
    prefixTargetsWithHash: true,
  });
  return refreshAndDownload(updater);
}
