/**
 * A real origin (in this process, on a memory store, over 127.0.0.1) with two root keys and two
 * publishers, published to release by release. repository.ts publishes its two releases through
 * it up front; a sync test publishes one at a time: the mirror syncs release 1, then the origin
 * publishes release 2 (with deltas) and the mirror's next sync is the one that gets killed.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { initRepository } from '@cairn/origin/admin';
import type { Policy } from '@cairn/origin/context';
import { createLogger } from '@cairn/origin/log';
import { PublisherClient } from '@cairn/origin/publisher-client';
import { serveOrigin } from '@cairn/origin/server';
import { OriginService } from '@cairn/origin/service';
import { MemoryBlobStore } from '@cairn/storage/memory-store';
import { Ed25519Signer } from '@cairn/verify/signer';
import { readAll } from './mirror-memory.js';

const DAY = 86_400_000;

const POLICY: Policy = {
  expiry: { root: 365 * DAY, targets: 90 * DAY, snapshot: 7 * DAY, timestamp: DAY },
  refreshBefore: { snapshot: 3 * DAY, timestamp: DAY / 2 },
  targetsWarning: 14 * DAY,
  deltas: { pastVersions: 3, maxFileBytes: 64 * 2 ** 20 },
  retention: { releases: 10, graceSeconds: 3600 },
  limits: { maxFiles: 100, maxFileBytes: 2 ** 30, maxReleaseBytes: 2 ** 32, maxNameBytes: 255 },
};

export interface MirrorOrigin {
  /** Everything the origin wrote (its private `_origin/` state too, which edges never serve). */
  readonly store: MemoryBlobStore;
  /** metadata/1.root.json */
  readonly trustedRoot: Uint8Array;
  /** Pushes `files` (TUF path → content), signs with both publishers: published. */
  publish(files: ReadonlyMap<string, Uint8Array>): Promise<void>;
  close(): Promise<void>;
}

/** The checkpoint origin line of the log an origin started with `{ log: true }` keeps. */
export const ORIGIN_LOG_NAME = 'cairn.test/origin-log';

/**
 * `log`: root version 1 declares a transparency log, which the origin appends every root,
 * targets and snapshot version to, before the timestamp that publishes it.
 */
export async function startMirrorOrigin(options: { log?: boolean } = {}): Promise<MirrorOrigin> {
  const store = new MemoryBlobStore();
  const g = () => Ed25519Signer.generate();
  const logKey = options.log === true ? await g() : undefined;
  const [root1, root2, alice, bob, snapshot, timestamp] = await Promise.all([
    g(),
    g(),
    g(),
    g(),
    g(),
    g(),
  ]);
  const ref = (s: Ed25519Signer) => ({ keyid: s.keyid, key: s.publicKey });
  await initRepository(store, {
    rootSigners: [root1, root2],
    rootThreshold: 2,
    publishers: [ref(alice), ref(bob)],
    targetsThreshold: 2,
    snapshotKey: ref(snapshot),
    timestampKey: ref(timestamp),
    rootExpiry: POLICY.expiry.root,
    now: new Date(),
    log: logKey === undefined ? undefined : { name: ORIGIN_LOG_NAME, key: logKey },
  });
  const service = new OriginService({
    store,
    online: { snapshot: [snapshot], timestamp: [timestamp] },
    policy: POLICY,
    authWindowMs: 300_000,
    logger: createLogger({ write: () => undefined }),
    logKey,
  });
  const origin = await serveOrigin(service, { host: '127.0.0.1', port: 0 });
  const dir = await mkdtemp(join(tmpdir(), 'cairn-mirror-origin-'));
  return {
    store,
    trustedRoot: await readAll(store, 'metadata/1.root.json'),
    async publish(files) {
      await rm(dir, { recursive: true, force: true });
      for (const [path, bytes] of files) {
        await mkdir(dirname(join(dir, path)), { recursive: true });
        await writeFile(join(dir, path), bytes);
      }
      const draft = await new PublisherClient(origin.url, alice).push(dir);
      await new PublisherClient(origin.url, alice).sign(draft.id, dir);
      const result = await new PublisherClient(origin.url, bob).sign(draft.id, dir);
      if (result.published === undefined) throw new Error('the release was not published');
    },
    async close() {
      await origin.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
