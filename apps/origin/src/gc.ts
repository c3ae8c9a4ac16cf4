/**
 * Garbage collection: removes public blobs and deltas that no retained release references,
 * and the private leftovers of releases that were published, superseded or abandoned.
 *
 * Retained: the last `retention.releases` targets versions, the current draft, and anything a
 * pending publication plan names. Objects younger than `retention.graceSeconds` are never
 * removed, so a publication or upload in flight on another instance keeps what it just wrote.
 */
import type { OriginContext } from './context.js';
import { DRAFT_POINTER_KEY, PRIVATE_PREFIX, releaseDraftKey, targetBlobKey } from './layout.js';
import { plannedBlobKeys } from './publication.js';
import { readHead, readTargets, targetsVersionOf } from './repository.js';
import { deleteKey, listAll, readJson } from './store-io.js';

export interface GcReport {
  readonly retainedVersions: readonly number[];
  readonly deletedBlobs: readonly string[];
  readonly deletedReleases: readonly string[];
  readonly keptYoung: number;
}

export async function collectGarbage(ctx: OriginContext): Promise<GcReport> {
  const head = await readHead(ctx.store, ctx.roots);
  const newest = targetsVersionOf(head);
  const keep = new Set<string>(await plannedBlobKeys(ctx));
  const retainedVersions: number[] = [];
  for (let v = newest; v >= 1 && newest - v < ctx.policy.retention.releases; v--) {
    const targets = await readTargets(ctx.store, v);
    if (targets === undefined) continue;
    retainedVersions.push(v);
    for (const t of targets.signed.targets.values()) {
      const sha256 = t.hashes.sha256;
      if (sha256 !== undefined) keep.add(targetBlobKey(t.path, sha256));
    }
  }
  const pointer = await readJson<{ id: string }>(ctx.store, DRAFT_POINTER_KEY);
  const draftId = pointer?.value.id;
  if (draftId !== undefined) {
    const draft = await readJson<{ blobs: { from: string; to: string }[] }>(
      ctx.store,
      releaseDraftKey(draftId),
    );
    for (const blob of draft?.value.blobs ?? []) keep.add(blob.to).add(blob.from);
  }
  const youngerThan = ctx.now().getTime() - ctx.policy.retention.graceSeconds * 1000;
  let keptYoung = 0;
  const deletedBlobs: string[] = [];
  for (const object of await listAll(ctx.store, 'targets/')) {
    if (keep.has(object.key)) continue;
    if (object.lastModified.getTime() > youngerThan) {
      keptYoung++;
      continue;
    }
    await deleteKey(ctx.store, object.key);
    deletedBlobs.push(object.key);
  }
  // Releases: a prefix whose newest object is older than the grace period and that is not
  // the current draft is done with, whether published, superseded or abandoned mid-upload.
  // A published release keeps its small records (manifest, draft, signatures) for the audit
  // trail and `cairn release show`; its staged bytes go.
  const releases = new Map<string, { newest: number; keys: string[] }>();
  for (const object of await listAll(ctx.store, `${PRIVATE_PREFIX}releases/`)) {
    const id = object.key.slice(`${PRIVATE_PREFIX}releases/`.length).split('/')[0] ?? '';
    const entry = releases.get(id) ?? { newest: 0, keys: [] };
    entry.newest = Math.max(entry.newest, object.lastModified.getTime());
    entry.keys.push(object.key);
    releases.set(id, entry);
  }
  const deletedReleases: string[] = [];
  for (const [id, entry] of releases) {
    if (id === draftId || entry.keys.some((k) => keep.has(k))) continue;
    if (entry.newest > youngerThan) {
      keptYoung++;
      continue;
    }
    const published = entry.keys.some((k) => k.endsWith('/published.json'));
    const staged = (k: string) => /\/(files|deltas)\//.test(k);
    const doomed = published ? entry.keys.filter(staged) : entry.keys;
    if (doomed.length === 0) continue;
    for (const key of doomed) await deleteKey(ctx.store, key);
    deletedReleases.push(id);
  }
  return { retainedVersions, deletedBlobs, deletedReleases, keptYoung };
}
