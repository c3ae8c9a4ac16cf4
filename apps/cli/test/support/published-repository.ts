/**
 * A repository as the origin publishes it, in a directory: the origin runs in this process over
 * an FsBlobStore, a publisher pushes and signs over HTTP, so the directory holds exactly what
 * production storage would (root copies, hash-named targets, deltas, the private `_origin/`
 * prefix). One root key, one publisher, threshold 1: the signing rules are not under test here.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { initRepository } from '@cairn/origin/admin';
import { DEFAULT_POLICY, openStore } from '@cairn/origin/config';
import { createLogger } from '@cairn/origin/log';
import { PublisherClient } from '@cairn/origin/publisher-client';
import { serveOrigin, type RunningOrigin } from '@cairn/origin/server';
import { OriginService } from '@cairn/origin/service';
import { Ed25519Signer } from '@cairn/verify/signer';

export interface PublishedRepository {
  /** The store's directory: metadata/, targets/ and _origin/. */
  readonly dir: string;
  readonly store: ReturnType<typeof openStore>;
  /** Pushes `files` (name → content) as the next release and publishes it. */
  publish(files: Readonly<Record<string, string | Uint8Array>>): Promise<void>;
  close(): Promise<void>;
}

const ref = (s: Ed25519Signer) => ({ keyid: s.keyid, key: s.publicKey });

/** With `log`, root v1 declares a transparency log named `log` and the origin appends to it. */
export async function publishedRepository(
  dir: string,
  options: { readonly log?: string | undefined } = {},
): Promise<PublishedRepository> {
  const [root, publisher, snapshot, timestamp, logKey] = await Promise.all(
    [0, 1, 2, 3, 4].map(() => Ed25519Signer.generate()),
  );
  if (!root || !publisher || !snapshot || !timestamp || !logKey) throw new Error('no keys');
  const store = openStore({ type: 'fs', directory: dir });
  await initRepository(store, {
    rootSigners: [root],
    rootThreshold: 1,
    publishers: [ref(publisher)],
    targetsThreshold: 1,
    snapshotKey: ref(snapshot),
    timestampKey: ref(timestamp),
    rootExpiry: DEFAULT_POLICY.expiry.root,
    now: new Date(),
    log: options.log === undefined ? undefined : { name: options.log, key: logKey },
  });
  const service = new OriginService({
    store,
    online: { snapshot: [snapshot], timestamp: [timestamp] },
    policy: DEFAULT_POLICY,
    authWindowMs: 300_000,
    logger: createLogger({ write: () => undefined }),
    logKey: options.log === undefined ? undefined : logKey,
  });
  const origin: RunningOrigin = await serveOrigin(service, { host: '127.0.0.1', port: 0 });
  const client = new PublisherClient(origin.url, publisher);
  const work = await mkdtemp(join(tmpdir(), 'cairn-release-'));
  let release = 0;
  return {
    dir,
    store,
    async publish(files) {
      const tree = join(work, String(++release));
      for (const [name, content] of Object.entries(files)) {
        await mkdir(dirname(join(tree, name)), { recursive: true });
        await writeFile(join(tree, name), content);
      }
      const draft = await client.push(tree);
      const signed = await client.sign(draft.id, tree);
      if (signed.published === undefined) throw new Error(`release ${draft.id} not published`);
    },
    async close() {
      await origin.close();
      await rm(work, { recursive: true, force: true });
    },
  };
}
