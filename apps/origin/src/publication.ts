/**
 * Atomic publication. Every change clients can see — a release, a re-signed snapshot, a new
 * root — is a publication: a plan written to the private prefix first, then carried out in a
 * fixed order: blobs and deltas, versioned metadata, the transparency log's entries (one per
 * new root, targets and snapshot version), new roots, and `timestamp.json` last. The
 * timestamp is the one switch clients follow, so until it moves they see the previous
 * publication, complete.
 *
 * The plan object is also the lock: it is created with If-None-Match under the snapshot
 * version it will publish, so of two origin instances only one can own a version, and a
 * restarted origin finds the plan and finishes it. Files are written create-only and accepted
 * when already present with the same bytes, so finishing a plan twice is harmless. The
 * timestamp is replaced with If-Match on the etag read just before, so its history is a line:
 * never two timestamps with one version.
 */
import { isStorageError } from '@cairn/storage/errors';
import { fromBase64, toBase64 } from '@cairn/verify/encoding';
import {
  MetaFile,
  Metadata,
  Snapshot,
  Timestamp,
  type Root,
  type Targets,
} from '@cairn/verify/metadata';
import { signMetadata, type Signer } from '@cairn/verify/signer';
import type { OriginContext, PublicationStep } from './context.js';
import { OriginError, isOriginError } from './errors.js';
import {
  PUBLICATIONS_PREFIX,
  ROOT_COPY_KEY,
  TIMESTAMP_KEY,
  publicationKey,
  parseVersionedKey,
  publishedMarkerKey,
  versionedKey,
  versionedRootKey,
} from './layout.js';
import { parseStored, readHead, snapshotVersionOf, type Head } from './repository.js';
import {
  createOrMatch,
  deleteKey,
  listAll,
  readBytes,
  readJson,
  sha256Hex,
  storage,
  writeBytes,
  writeJson,
} from './store-io.js';

export interface PlannedBlob {
  /** Where the bytes are staged (private prefix). */
  readonly from: string;
  /** The public, hash-named key. */
  readonly to: string;
  readonly length: number;
}

export interface PublicationPlan {
  readonly format: 1;
  readonly snapshotVersion: number;
  readonly reason: 'release' | 'snapshot-refresh' | 'root';
  readonly release?: string | undefined;
  /** Also the time of the plan's log entries, so that finishing it again logs the same bytes. */
  readonly created: string;
  readonly blobs: readonly PlannedBlob[];
  /** Versioned targets and snapshot metadata: key and base64 bytes. */
  readonly metadata: readonly { readonly key: string; readonly bytes: string }[];
  /** New root versions, in order; visible the moment they are written, so after the log. */
  readonly roots: readonly { readonly key: string; readonly bytes: string }[];
  /** The targets version the snapshot names (new or kept). */
  readonly targetsVersion: number;
  /** Key ids whose signatures approved the targets metadata (empty when it is kept). */
  readonly approvedBy: readonly string[];
  /** What the timestamp will say of the new snapshot. */
  readonly snapshotMeta: {
    readonly version: number;
    readonly length: number;
    readonly sha256: string;
  };
}

/** What a caller contributes to a publication; versions and the snapshot are filled in here. */
export interface PublicationContent {
  readonly reason: PublicationPlan['reason'];
  readonly release?: string | undefined;
  readonly blobs: readonly PlannedBlob[];
  /** New targets metadata, fully signed, or undefined to keep the current one. */
  readonly targets?: Metadata<Targets> | undefined;
  /** New roots to publish, oldest first. */
  readonly roots?: readonly Metadata<Root>[] | undefined;
  readonly approvedBy: readonly string[];
}

const MAX_ATTEMPTS = 8;

function addTime(now: Date, ms: number): Date {
  // TUF expiry strings have whole seconds.
  return new Date(Math.floor((now.getTime() + ms) / 1000) * 1000);
}

/**
 * The configured online signers for `role` that `roots` list. Clients check with the newest
 * root (the last of `roots`), so a threshold of its keys must be among them: an origin still
 * holding only the key a rotation replaces refuses to publish rather than sign metadata
 * clients would reject. Keys of the older root sign too, for clients that have not yet
 * fetched the newest root.
 */
function signersFor(
  signers: readonly Signer[],
  roots: readonly Root[],
  role: 'snapshot' | 'timestamp',
): Signer[] {
  const listed = new Set(roots.flatMap((r) => r.roles[role].keyids));
  const chosen = signers.filter((s) => listed.has(s.keyid));
  const newest = roots.at(-1)?.roles[role];
  const fromNewest = chosen.filter((s) => newest?.keyids.includes(s.keyid) === true).length;
  if (newest === undefined || fromNewest < newest.threshold) {
    throw new OriginError(
      'CONFIG_INVALID',
      `the origin holds ${fromNewest} of the ${newest?.threshold ?? 1} ${role} key(s) the newest root requires ` +
        `(it lists ${newest?.keyids.map((k) => k.slice(0, 12)).join(', ') ?? 'none'}; configured: ` +
        `${signers.map((s) => s.keyid.slice(0, 12)).join(', ') || 'none'}): configure the new key and restart`,
    );
  }
  return chosen;
}

async function buildPlan(
  ctx: OriginContext,
  head: Head,
  content: PublicationContent,
): Promise<PublicationPlan> {
  const now = ctx.now();
  const snapshotVersion = snapshotVersionOf(head) + 1;
  const targets = content.targets ?? head.published?.targets;
  if (targets === undefined) {
    throw new OriginError('REPOSITORY_STATE', 'nothing to publish: no release yet');
  }
  const targetsBytes =
    content.targets !== undefined ? content.targets.toBytes() : head.published?.targetsBytes;
  if (targetsBytes === undefined) throw new OriginError('INTERNAL', 'targets bytes missing');
  const roots = content.roots ?? [];
  const newestRoot = roots.at(-1)?.signed ?? head.root.signed;
  // Checked before anything is written: a plan that could not end with a timestamp the
  // newest root accepts would leave clients with a root that rejects the live timestamp, and
  // one whose log key is missing would stop at the log, its snapshot version taken.
  signersFor(ctx.online.timestamp, [head.root.signed, newestRoot], 'timestamp');
  await ctx.log.writerFor(newestRoot);
  const snapshot = await signMetadata(
    new Metadata(
      new Snapshot({
        specVersion: head.root.signed.specVersion,
        version: snapshotVersion,
        expires: addTime(now, ctx.policy.expiry.snapshot),
        extra: {},
        meta: new Map([
          [
            'targets.json',
            new MetaFile({
              version: targets.signed.version,
              length: targetsBytes.length,
              hashes: { sha256: sha256Hex(targetsBytes) },
            }),
          ],
        ]),
      }),
    ),
    signersFor(ctx.online.snapshot, [head.root.signed, newestRoot], 'snapshot'),
  );
  const snapshotBytes = snapshot.toBytes();
  const metadata: { key: string; bytes: Uint8Array }[] = [];
  if (content.targets !== undefined) {
    metadata.push({ key: versionedKey('targets', targets.signed.version), bytes: targetsBytes });
  }
  metadata.push({ key: versionedKey('snapshot', snapshotVersion), bytes: snapshotBytes });
  const rootFiles = roots.map((r) => ({
    key: versionedRootKey(r.signed.version),
    bytes: r.toBytes(),
  }));
  return {
    format: 1,
    snapshotVersion,
    reason: content.reason,
    release: content.release,
    created: now.toISOString(),
    blobs: content.blobs,
    metadata: metadata.map((m) => ({ key: m.key, bytes: toBase64(m.bytes) })),
    roots: rootFiles.map((m) => ({ key: m.key, bytes: toBase64(m.bytes) })),
    targetsVersion: targets.signed.version,
    approvedBy: content.approvedBy,
    snapshotMeta: {
      version: snapshotVersion,
      length: snapshotBytes.length,
      sha256: sha256Hex(snapshotBytes),
    },
  };
}

function decode(text: string, where: string): Uint8Array {
  const bytes = fromBase64(text);
  if (bytes === undefined) throw new OriginError('INTEGRITY', `${where}: not base64`);
  return bytes;
}

function step(ctx: OriginContext, name: PublicationStep, version: number): void {
  ctx.onStep?.(name, version);
}

async function placeBlob(ctx: OriginContext, blob: PlannedBlob): Promise<void> {
  const existing = await storage(`checking ${blob.to}`, () => ctx.store.head(blob.to));
  if (existing !== undefined) {
    if (existing.size !== blob.length) {
      throw new OriginError(
        'INTEGRITY',
        `${blob.to} holds ${existing.size} bytes, expected ${blob.length}`,
      );
    }
    return;
  }
  try {
    await storage(`copying ${blob.from} to ${blob.to}`, () =>
      ctx.store.copy(blob.from, blob.to, { ifNoneMatch: '*' }),
    );
  } catch (error) {
    // Another instance finishing the same plan placed it first: the same bytes, by name.
    if (!isStorageError(error, 'PRECONDITION_FAILED')) throw error;
  }
}

/**
 * Moves `timestamp.json` to the plan's snapshot, unless it already points there or past it.
 * Returns the timestamp version written, or undefined when there was nothing to do.
 */
async function commitTimestamp(
  ctx: OriginContext,
  snapshotMeta: PublicationPlan['snapshotMeta'] | undefined,
): Promise<number | undefined> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const current = await readBytes(ctx.store, TIMESTAMP_KEY);
    const previous =
      current === undefined ? undefined : parseStored(current.bytes, 'timestamp', TIMESTAMP_KEY);
    const prevMeta = previous?.signed.snapshotMeta;
    if (
      snapshotMeta !== undefined &&
      prevMeta !== undefined &&
      prevMeta.version >= snapshotMeta.version
    ) {
      return undefined;
    }
    const meta =
      snapshotMeta === undefined
        ? prevMeta
        : new MetaFile({
            version: snapshotMeta.version,
            length: snapshotMeta.length,
            hashes: { sha256: snapshotMeta.sha256 },
          });
    if (meta === undefined) return undefined;
    const roots = ctx.roots;
    const newest = await roots.newest();
    const before = await roots.get(newest.signed.version - 1);
    const version = (previous?.signed.version ?? 0) + 1;
    const timestamp = await signMetadata(
      new Metadata(
        new Timestamp({
          specVersion: newest.signed.specVersion,
          version,
          expires: addTime(ctx.now(), ctx.policy.expiry.timestamp),
          extra: {},
          snapshotMeta: meta,
        }),
      ),
      signersFor(
        ctx.online.timestamp,
        before === undefined ? [newest.signed] : [before.signed, newest.signed],
        'timestamp',
      ),
    );
    try {
      await writeBytes(
        ctx.store,
        TIMESTAMP_KEY,
        timestamp.toBytes(),
        current === undefined
          ? { ifNoneMatch: '*', contentType: 'application/json' }
          : { ifMatch: current.info.etag, contentType: 'application/json' },
      );
      return version;
    } catch (error) {
      if (!isStorageError(error, 'PRECONDITION_FAILED')) throw error;
      // Another instance moved the timestamp: read it again and decide anew.
    }
  }
  throw new OriginError('CONFLICT', 'timestamp.json kept changing under this origin; try again');
}

async function markReleasePublished(ctx: OriginContext, plan: PublicationPlan): Promise<void> {
  if (plan.release === undefined) return;
  await writeJson(ctx.store, publishedMarkerKey(plan.release), {
    targetsVersion: plan.targetsVersion,
    snapshotVersion: plan.snapshotVersion,
    time: ctx.now().toISOString(),
  });
}

/** Whether the snapshot published under the plan's version is the plan's own. */
async function isPlanSnapshot(ctx: OriginContext, plan: PublicationPlan): Promise<boolean> {
  const found = await readBytes(ctx.store, versionedKey('snapshot', plan.snapshotVersion));
  return found !== undefined && sha256Hex(found.bytes) === plan.snapshotMeta.sha256;
}

/**
 * Appends the plan's files to the transparency log the newest root it publishes under
 * declares: new roots in order, then targets and snapshot, stamped with the plan's time.
 */
async function appendToLog(ctx: OriginContext, plan: PublicationPlan): Promise<void> {
  const files = [...plan.roots, ...plan.metadata].map((file) => {
    const named = parseVersionedKey(file.key);
    if (named === undefined)
      throw new OriginError('INTEGRITY', `plan: ${file.key} is not versioned`);
    return { ...named, bytes: decode(file.bytes, file.key) };
  });
  const newest = plan.roots.at(-1);
  const root =
    newest === undefined
      ? (await ctx.roots.newest()).signed
      : parseStored(decode(newest.bytes, newest.key), 'root', newest.key).signed;
  await ctx.log.append(root, files, new Date(plan.created));
}

/** Carries out `plan` from wherever it stopped. */
async function executePlan(ctx: OriginContext, plan: PublicationPlan): Promise<void> {
  const v = plan.snapshotVersion;
  for (const blob of plan.blobs) await placeBlob(ctx, blob);
  step(ctx, 'blobs', v);
  for (const file of plan.metadata) {
    await createOrMatch(ctx.store, file.key, decode(file.bytes, file.key));
  }
  step(ctx, 'metadata', v);
  await appendToLog(ctx, plan);
  step(ctx, 'log', v);
  for (const file of plan.roots) {
    await createOrMatch(ctx.store, file.key, decode(file.bytes, file.key));
  }
  const newestRoot = plan.roots.at(-1);
  if (newestRoot !== undefined) {
    // The copy only helps first-time clients and our own lookups, which probe past it.
    await writeBytes(ctx.store, ROOT_COPY_KEY, decode(newestRoot.bytes, newestRoot.key), {
      contentType: 'application/json',
    });
  }
  step(ctx, 'root', v);
  await commitTimestamp(ctx, plan.snapshotMeta);
  step(ctx, 'timestamp', v);
  await markReleasePublished(ctx, plan);
  await deleteKey(ctx.store, publicationKey(v));
  step(ctx, 'cleaned', v);
}

/**
 * A plan as this version reads it. Plans written before the transparency log kept their
 * targets version and approvals in a `log` record; one may be left half-done across an upgrade.
 */
function upgradePlan(stored: PublicationPlan): PublicationPlan {
  const plan = stored as Partial<PublicationPlan> & {
    log?: { targetsVersion?: number; approvedBy?: readonly string[] };
  };
  if (typeof plan.targetsVersion === 'number') return stored;
  return {
    ...stored,
    targetsVersion: plan.log?.targetsVersion ?? 0,
    approvedBy: plan.log?.approvedBy ?? [],
  };
}

/** Plans in the store, oldest first. */
async function pendingPlans(ctx: OriginContext): Promise<PublicationPlan[]> {
  const objects = await listAll(ctx.store, PUBLICATIONS_PREFIX);
  const plans: PublicationPlan[] = [];
  for (const object of objects) {
    const found = await readJson<PublicationPlan>(ctx.store, object.key);
    if (found !== undefined) plans.push(upgradePlan(found.value));
  }
  return plans.sort((a, b) => a.snapshotVersion - b.snapshotVersion);
}

/**
 * Finishes every publication a crashed or stopped origin left half-done, and removes plans
 * that are done or were superseded. Safe to run at any time, by any number of instances.
 * Returns the snapshot versions it finished.
 */
export async function recoverPublications(ctx: OriginContext): Promise<number[]> {
  const finished: number[] = [];
  for (const plan of await pendingPlans(ctx)) {
    const head = await readHead(ctx.store, ctx.roots);
    if (plan.snapshotVersion <= snapshotVersionOf(head)) {
      // Visible already. When it is this plan that went out (a crash right after its
      // timestamp), its release still needs the marker that says so; a plan whose version
      // another plan took is void.
      if (await isPlanSnapshot(ctx, plan)) await markReleasePublished(ctx, plan);
      await deleteKey(ctx.store, publicationKey(plan.snapshotVersion));
      continue;
    }
    try {
      await executePlan(ctx, plan);
      finished.push(plan.snapshotVersion);
    } catch (error) {
      if (!isOriginError(error, 'CONFLICT')) throw error;
      // A plan whose snapshot is in place only lost the timestamp race (to refreshes): it
      // stays for the next round. Dropping it would leave its snapshot version taken for good.
      if (await isPlanSnapshot(ctx, plan)) throw error;
      // Its files were written by another plan of the same version that won: void.
      await deleteKey(ctx.store, publicationKey(plan.snapshotVersion));
    }
  }
  return finished;
}

/**
 * Publishes what `build` makes of the current head. `build` runs again if another instance
 * publishes first, so it must decide from the head it is given (and throw, e.g. STALE_DRAFT,
 * when its content no longer fits).
 */
export async function publish(
  ctx: OriginContext,
  build: (head: Head) => Promise<PublicationContent>,
): Promise<PublicationPlan> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    await recoverPublications(ctx);
    const head = await readHead(ctx.store, ctx.roots);
    const plan = await buildPlan(ctx, head, await build(head));
    const key = publicationKey(plan.snapshotVersion);
    try {
      await writeJson(ctx.store, key, plan, { ifNoneMatch: '*' });
    } catch (error) {
      if (isStorageError(error, 'PRECONDITION_FAILED')) continue;
      throw error;
    }
    // A plan of this version may have been finished and removed between our read and our
    // claim: then the head has moved on and ours is void.
    const recheck = await readHead(ctx.store, ctx.roots);
    if (snapshotVersionOf(recheck) >= plan.snapshotVersion) {
      await deleteKey(ctx.store, key);
      continue;
    }
    step(ctx, 'planned', plan.snapshotVersion);
    await executePlan(ctx, plan);
    return plan;
  }
  throw new OriginError('CONFLICT', 'other origin instances kept publishing first; try again');
}

/** Re-signs timestamp.json for the current snapshot (freeze protection). */
export async function refreshTimestamp(ctx: OriginContext): Promise<number | undefined> {
  return commitTimestamp(ctx, undefined);
}

/** The staged blob keys a pending plan still needs: garbage collection must leave them. */
export async function plannedBlobKeys(ctx: OriginContext): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const plan of await pendingPlans(ctx)) {
    for (const blob of plan.blobs) keys.add(blob.from).add(blob.to);
  }
  return keys;
}
