/**
 * A whole origin for tests: keys, an initialised repository in a store (memory unless given
 * one) with a transparency log, the service served over real HTTP on 127.0.0.1, and
 * publisher clients; and the log read back from the store.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { BlobStore } from '@cairn/storage/blob-store';
import { isStorageError } from '@cairn/storage/errors';
import { MemoryBlobStore } from '@cairn/storage/memory-store';
import { VerifyError } from '@cairn/verify/errors';
import { webHashPort } from '@cairn/verify/hash';
import type { Fetcher, MetadataStore } from '@cairn/verify/ports';
import { checkpointPolicy } from '@cairn/tlog/log-config';
import { parseEntry, type MetadataEntry } from '@cairn/tlog/entry';
import { LogReader } from '@cairn/tlog/log-reader';
import { Ed25519Signer } from '@cairn/verify/signer';
import { Updater } from '@cairn/verify/updater';
import type { Policy } from '../../src/context.js';
import { createLogger } from '../../src/log.js';
import { PublisherClient } from '../../src/publisher-client.js';
import { RootChain } from '../../src/repository.js';
import { serveOrigin, type RunningOrigin } from '../../src/server.js';
import { OriginService } from '../../src/service.js';
import {
  TEST_POLICY,
  generateRepositoryKeys,
  initTestRepository as initLoggedTestRepository,
  keyRef,
  type RepositoryKeys,
} from '../../src/testing/logged-repository.js';

export { TEST_POLICY };
import { LOG_PREFIX } from '../../src/layout.js';
import { declaredLog } from '../../src/transparency-log.js';

export const ref = keyRef;

/** The logged repository's keys, and carol: a third publisher the tests add and revoke. */
export type TestKeys = RepositoryKeys & { readonly carol: Ed25519Signer };

export async function generateKeys(): Promise<TestKeys> {
  return { ...(await generateRepositoryKeys()), carol: await Ed25519Signer.generate() };
}

/** Root version 1: publishers alice and bob (named), and the log (`log: false`: none). */
export function initTestRepository(
  store: BlobStore,
  keys: TestKeys,
  now = new Date(),
  options: { log?: boolean } = {},
) {
  return initLoggedTestRepository(store, keys, { now, log: options.log });
}

export interface TestOrigin {
  readonly store: BlobStore;
  readonly keys: TestKeys;
  readonly service: OriginService;
  readonly url: string;
  readonly logs: string[];
  client(signer: Ed25519Signer): PublisherClient;
  close(): Promise<void>;
}

export async function startTestOrigin(
  options: {
    store?: BlobStore;
    keys?: TestKeys;
    init?: boolean;
    now?: () => Date;
    policy?: Policy;
  } = {},
): Promise<TestOrigin> {
  const store = options.store ?? new MemoryBlobStore();
  const keys = options.keys ?? (await generateKeys());
  if (options.init !== false) await initTestRepository(store, keys, options.now?.());
  const logs: string[] = [];
  const service = new OriginService({
    store,
    online: { snapshot: [keys.snapshot], timestamp: [keys.timestamp] },
    policy: options.policy ?? TEST_POLICY,
    authWindowMs: 300_000,
    logger: createLogger({ write: (line) => logs.push(line) }),
    now: options.now,
    logKey: keys.log,
  });
  const running: RunningOrigin = await serveOrigin(service, { host: '127.0.0.1', port: 0 });
  return {
    store,
    keys,
    service,
    url: running.url,
    logs,
    client: (signer) => new PublisherClient(running.url, signer),
    close: () => running.close(),
  };
}

/** Writes `files` (name → content) under `dir`. */
export async function writeTree(dir: string, files: Readonly<Record<string, string | Uint8Array>>) {
  for (const [name, content] of Object.entries(files)) {
    const path = join(dir, name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, content);
  }
}

/** A TUF client (our verify core) reading straight from the store, as the edge would serve it. */
export function storeFetcher(store: BlobStore): Fetcher {
  return {
    async fetch(url: string, maxLength: number): Promise<Uint8Array> {
      const key = decodeURIComponent(new URL(url).pathname.slice(1));
      try {
        const result = await store.get(key);
        if (result.notModified) throw new Error('304');
        const bytes = new Uint8Array(await new Response(result.body).arrayBuffer());
        if (bytes.length > maxLength) throw new VerifyError('TOO_LARGE', `${key} too large`);
        return bytes;
      } catch (error) {
        if (isStorageError(error, 'NOT_FOUND'))
          throw new VerifyError('NOT_FOUND', `${key} not found`);
        throw error;
      }
    },
  };
}

export function memoryMetadataStore(initialRoot: Uint8Array): MetadataStore {
  const files = new Map<string, Uint8Array>([['root', initialRoot]]);
  return {
    load: (name) => Promise.resolve(files.get(name)),
    persist: (name, bytes) => {
      files.set(name, bytes);
      return Promise.resolve();
    },
    remove: (name) => {
      files.delete(name);
      return Promise.resolve();
    },
  };
}

/** Refreshes a fresh TUF client against the store and downloads every non-delta target. */
export async function clientView(
  store: BlobStore,
  now?: () => Date,
): Promise<{ version: number; files: Record<string, string> }> {
  const root = (await new RootChain(store).get(1))?.toBytes();
  if (root === undefined) throw new Error('no root 1');
  const updater = new Updater({
    metadataBaseUrl: 'http://store/metadata/',
    targetBaseUrl: 'http://store/targets/',
    fetcher: storeFetcher(store),
    store: memoryMetadataStore(root),
    hash: webHashPort,
    prefixTargetsWithHash: true,
    now,
  });
  await updater.refresh();
  const targets = updater.trusted?.targets;
  if (targets === undefined) throw new Error('no targets');
  const files: Record<string, string> = {};
  for (const [path] of targets.signed.targets) {
    if (path.startsWith('_delta/')) continue;
    const info = await updater.getTargetInfo(path);
    if (info === undefined) throw new Error(`no info for ${path}`);
    files[path] = new TextDecoder().decode(await updater.downloadTarget(info));
  }
  return { version: targets.signed.version, files };
}

/** The transparency log as a reader of any mirror sees it, straight from the store. */
export async function logReaderOn(store: BlobStore): Promise<LogReader> {
  const root = await new RootChain(store).newest();
  const config = declaredLog(root.signed);
  if (config === undefined) throw new Error('the root declares no log');
  return new LogReader(
    async (path) => {
      const result = await store.get(`${LOG_PREFIX}${path}`);
      if (result.notModified) throw new Error('304');
      return new Uint8Array(await new Response(result.body).arrayBuffer());
    },
    await checkpointPolicy(config),
  );
}

/** Every entry of the log, verified against its signed checkpoint; [] when there is none yet. */
export async function loggedEntries(store: BlobStore): Promise<MetadataEntry[]> {
  if ((await store.head(`${LOG_PREFIX}checkpoint`)) === undefined) return [];
  const reader = await logReaderOn(store);
  const { checkpoint } = await reader.latest();
  const entries = await reader.entries(checkpoint, 0, checkpoint.size);
  return entries.map((bytes) => parseEntry(bytes));
}
