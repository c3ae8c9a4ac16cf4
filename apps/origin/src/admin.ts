/**
 * Repository set-up and key changes, done by operators with the offline root keys:
 * `cairn init` writes root version 1; `cairn keys` prepares the next root (publishers added
 * or revoked, online keys rotated, root keys rotated), signed by a threshold of the old
 * root's keys and of the new one's, as TUF's chained root update requires.
 *
 * A new root is not written straight away: it waits under the private prefix as the pending
 * root until the current targets metadata satisfies it, since clients check targets against
 * the newest root. Adding a publisher or rotating online keys satisfies it at once; revoking a
 * publisher whose signature the current release needs waits for the next release, which the
 * remaining publishers sign under the new root. The origin publishes it (see
 * `publishPendingRoot`), before the timestamp that goes with it.
 *
 * Root version 1 declares the transparency log (`x-cairn-log`) when init is given a log key,
 * and is its first entry; later roots keep the declaration (applyChange keeps unknown fields).
 * Publisher keys carry their holder's name (`x-cairn-name`), unique within a root.
 */
import type { BlobStore } from '@cairn/storage/blob-store';
import { isStorageError } from '@cairn/storage/errors';
import type { Key } from '@cairn/verify/keys';
import { Metadata, Role, Root, SPEC_VERSION, verifyDelegate } from '@cairn/verify/metadata';
import { signMetadata, type Signer } from '@cairn/verify/signer';
import { isVerifyError } from '@cairn/verify/errors';
import type { OriginContext } from './context.js';
import { OriginError } from './errors.js';
import { PENDING_ROOT_KEY, ROOT_COPY_KEY, versionedRootKey } from './layout.js';
import { publish } from './publication.js';
import { pendingRootRecord, readHead, readPendingRoot, type RootChain } from './repository.js';
import { createOrMatch, deleteKey, readBytes, storage, writeBytes, writeJson } from './store-io.js';
import {
  TransparencyLog,
  logConfigFor,
  logField,
  publisherName,
  withPublisherName,
  type LogKey,
} from './transparency-log.js';

export interface PublicKeyRef {
  readonly keyid: string;
  readonly key: Key;
}

/** A publisher's key and the name audit reports and monitors show for it. */
export interface PublisherRef extends PublicKeyRef {
  /** `x-cairn-name` in the root; see PUBLISHER_NAME. Absent: shown by keyid. */
  readonly name?: string | undefined;
}

/** Names are short and plain, so they read the same in a terminal, a report and a file name. */
export const PUBLISHER_NAME = /^[A-Za-z0-9._-]{1,64}$/;

export function checkPublisherName(name: string): void {
  if (!PUBLISHER_NAME.test(name)) {
    throw new OriginError(
      'INVALID_PUBLISHER_NAME',
      `publisher name ${JSON.stringify(name.length > 70 ? `${name.slice(0, 70)}…` : name)}: expected 1 to 64 letters, digits, dots, underscores or hyphens`,
    );
  }
}

/** `key` named `name` (checked), or `key` as it is when there is no name. */
function namedKey(ref: PublisherRef): Key {
  if (ref.name === undefined) return ref.key;
  checkPublisherName(ref.name);
  return withPublisherName(ref.key, ref.name);
}

/** Refuses two keys with one name: a report naming "alice" must mean one key. */
function checkUniqueNames(keys: ReadonlyMap<string, Key>): void {
  const seen = new Map<string, string>();
  for (const [keyid, key] of keys) {
    const name = publisherName(key);
    if (name === undefined) continue;
    const other = seen.get(name);
    if (other !== undefined) {
      throw new OriginError(
        'INVALID_PUBLISHER_NAME',
        `publisher name ${JSON.stringify(name)} is already the name of key ${other.slice(0, 12)}: choose another`,
      );
    }
    seen.set(name, keyid);
  }
}

function expiresAfter(now: Date, ms: number): Date {
  return new Date(Math.floor((now.getTime() + ms) / 1000) * 1000);
}

export interface InitOptions {
  readonly rootSigners: readonly Signer[];
  readonly rootThreshold: number;
  readonly publishers: readonly PublisherRef[];
  readonly targetsThreshold: number;
  readonly snapshotKey: PublicKeyRef;
  readonly timestampKey: PublicKeyRef;
  readonly rootExpiry: number;
  readonly now: Date;
  /**
   * The transparency log: declared in root version 1, which becomes its first entry. Absent:
   * a repository without a log (every publication is then unlogged).
   */
  readonly log?: LogKey | undefined;
}

/** Writes root version 1. Refuses a store that already holds a repository. */
export async function initRepository(
  store: BlobStore,
  options: InitOptions,
): Promise<Metadata<Root>> {
  if (options.rootSigners.length < options.rootThreshold) {
    throw new OriginError(
      'CONFIG_INVALID',
      `root threshold ${options.rootThreshold} needs at least as many root keys, received ${options.rootSigners.length}`,
    );
  }
  if ((await readBytes(store, ROOT_COPY_KEY)) !== undefined) {
    throw new OriginError('REPOSITORY_STATE', 'this store already holds a repository');
  }
  const keys = new Map<string, Key>();
  const add = (ref: PublisherRef): string => {
    keys.set(ref.keyid, namedKey(ref));
    return ref.keyid;
  };
  const log =
    options.log === undefined
      ? undefined
      : {
          ...(await logConfigFor(options.log.key, options.log.name)),
          witnesses: options.log.witnesses ?? [],
          witnessThreshold: options.log.witnessThreshold ?? 0,
        };
  const root = new Root({
    specVersion: SPEC_VERSION,
    version: 1,
    expires: expiresAfter(options.now, options.rootExpiry),
    extra: log === undefined ? {} : logField(log),
    consistentSnapshot: true,
    keys,
    roles: {
      root: new Role(
        options.rootSigners.map((s) => add({ keyid: s.keyid, key: s.publicKey })),
        options.rootThreshold,
      ),
      targets: new Role(options.publishers.map(add), options.targetsThreshold),
      snapshot: new Role([add(options.snapshotKey)], 1),
      timestamp: new Role([add(options.timestampKey)], 1),
    },
  });
  checkUniqueNames(keys);
  const signed = await signMetadata(new Metadata(root), options.rootSigners);
  const bytes = signed.toBytes();
  // In the log before it exists: the log's first entry is the root that declares it.
  await new TransparencyLog(store, options.log?.key).append(
    root,
    [{ role: 'root', version: 1, bytes }],
    options.now,
  );
  try {
    await writeBytes(store, versionedRootKey(1), bytes, {
      ifNoneMatch: '*',
      contentType: 'application/json',
    });
  } catch (error) {
    if (isStorageError(error, 'PRECONDITION_FAILED')) {
      throw new OriginError('REPOSITORY_STATE', 'this store already holds a repository');
    }
    throw error;
  }
  await writeBytes(store, ROOT_COPY_KEY, bytes, { contentType: 'application/json' });
  return signed;
}

export type RootChange =
  | { readonly kind: 'add-publisher'; readonly publisher: PublisherRef }
  | { readonly kind: 'revoke-publisher'; readonly keyid: string }
  | {
      readonly kind: 'rotate-online';
      readonly role: 'snapshot' | 'timestamp';
      readonly key: PublicKeyRef;
    }
  | {
      readonly kind: 'rotate-root';
      readonly keys: readonly PublicKeyRef[];
      readonly threshold: number;
    }
  | {
      readonly kind: 'thresholds';
      readonly root?: number | undefined;
      readonly targets?: number | undefined;
    };

function describeChange(change: RootChange): string {
  switch (change.kind) {
    case 'add-publisher':
      return `add publisher ${change.publisher.name === undefined ? '' : `${change.publisher.name} `}${change.publisher.keyid}`;
    case 'revoke-publisher':
      return `revoke publisher ${change.keyid}`;
    case 'rotate-online':
      return `rotate the ${change.role} key to ${change.key.keyid}`;
    case 'rotate-root':
      return `rotate the root keys to ${change.keys.map((k) => k.keyid.slice(0, 12)).join(', ')} (threshold ${change.threshold})`;
    case 'thresholds':
      return `set thresholds root ${change.root ?? '(unchanged)'}, targets ${change.targets ?? '(unchanged)'}`;
  }
}

/** The next root after `change`: roles updated, keys no role uses dropped. */
export function applyChange(base: Root, change: RootChange, version: number, expires: Date): Root {
  const keys = new Map(base.keys);
  const roles = { ...base.roles };
  const role = (name: keyof typeof roles, keyids: readonly string[], threshold?: number) => {
    roles[name] = new Role(keyids, threshold ?? roles[name].threshold);
  };
  switch (change.kind) {
    case 'add-publisher':
      if (roles.targets.keyids.includes(change.publisher.keyid)) {
        throw new OriginError('CONFLICT', `${change.publisher.keyid} is already a publisher`);
      }
      keys.set(change.publisher.keyid, namedKey(change.publisher));
      role('targets', [...roles.targets.keyids, change.publisher.keyid]);
      break;
    case 'revoke-publisher':
      if (!roles.targets.keyids.includes(change.keyid)) {
        throw new OriginError('NOT_FOUND', `${change.keyid} is not a publisher`);
      }
      role(
        'targets',
        roles.targets.keyids.filter((k) => k !== change.keyid),
      );
      break;
    case 'rotate-online':
      keys.set(change.key.keyid, change.key.key);
      role(change.role, [change.key.keyid]);
      break;
    case 'rotate-root':
      for (const k of change.keys) keys.set(k.keyid, k.key);
      role(
        'root',
        change.keys.map((k) => k.keyid),
        change.threshold,
      );
      break;
    case 'thresholds':
      if (change.root !== undefined) role('root', roles.root.keyids, change.root);
      if (change.targets !== undefined) role('targets', roles.targets.keyids, change.targets);
      break;
  }
  const used = new Set(Object.values(roles).flatMap((r) => r.keyids));
  for (const keyid of [...keys.keys()]) if (!used.has(keyid)) keys.delete(keyid);
  checkUniqueNames(keys);
  for (const [name, r] of Object.entries(roles)) {
    if (!Number.isSafeInteger(r.threshold) || r.threshold < 1) {
      throw new OriginError('CONFIG_INVALID', `${name} threshold must be at least 1`);
    }
    if (name !== 'targets' && r.keyids.length < r.threshold) {
      throw new OriginError(
        'CONFIG_INVALID',
        `${name}: threshold ${r.threshold} but only ${r.keyids.length} key(s)`,
      );
    }
  }
  return new Root({
    specVersion: base.specVersion,
    version,
    expires,
    extra: base.extra,
    consistentSnapshot: base.consistentSnapshot,
    keys,
    roles,
  });
}

/**
 * Prepares the next root with `change` applied to the effective one (the pending root if
 * there is one, else the newest published), signed by `rootSigners`, and stores it as the
 * pending root. Refuses unless a threshold of both the published root's keys and the new
 * root's keys signed it.
 */
export async function proposeRootChange(
  options: {
    readonly store: BlobStore;
    readonly roots: RootChain;
    readonly now: Date;
    readonly rootExpiry: number;
  },
  change: RootChange,
  rootSigners: readonly Signer[],
): Promise<Metadata<Root>> {
  const published = await options.roots.newest();
  const pending = await readPendingRoot(options.store);
  const base = pending?.root.signed ?? published.signed;
  const next = applyChange(
    base,
    change,
    published.signed.version + 1,
    expiresAfter(options.now, options.rootExpiry),
  );
  const listed = new Set([...published.signed.roles.root.keyids, ...next.roles.root.keyids]);
  const signed = await signMetadata(
    new Metadata(next),
    rootSigners.filter((s) => listed.has(s.keyid)),
  );
  for (const [which, root] of [
    ['current', published.signed],
    ['new', next],
  ] as const) {
    try {
      await verifyDelegate(root, 'root', signed);
    } catch (error) {
      if (!isVerifyError(error)) throw error;
      throw new OriginError(
        'CONFIG_INVALID',
        `the root keys given do not reach the ${which} root's threshold of ${root.roles.root.threshold}: ${error.message}`,
        { cause: error },
      );
    }
  }
  const reason = [pending?.reason, describeChange(change)].filter(Boolean).join('; ');
  try {
    await writeJson(
      options.store,
      PENDING_ROOT_KEY,
      pendingRootRecord(signed, reason, options.now),
      pending === undefined ? { ifNoneMatch: '*' } : { ifMatch: pending.etag },
    );
  } catch (error) {
    if (isStorageError(error, 'PRECONDITION_FAILED')) {
      throw new OriginError('CONFLICT', 'another key change was made at the same time; try again', {
        cause: error,
      });
    }
    throw error;
  }
  return signed;
}

/**
 * Publishes the pending root when the current release satisfies it (or when there is no
 * release yet). Returns the root version published, or undefined when it must wait for a
 * release signed under it.
 */
export async function publishPendingRoot(ctx: OriginContext): Promise<number | undefined> {
  const pending = await readPendingRoot(ctx.store);
  if (pending === undefined) return undefined;
  const head = await readHead(ctx.store, ctx.roots);
  if (pending.root.signed.version <= head.root.signed.version) {
    // Published already (by a release that carried it); only the record is left.
    await deleteKey(ctx.store, PENDING_ROOT_KEY);
    return undefined;
  }
  if (head.published === undefined) {
    // No release to carry it: logged on its own, before it is visible. The time is the
    // proposal's, so a retry after a crash logs the same bytes (and so nothing new).
    await ctx.log.append(
      pending.root.signed,
      [{ role: 'root', version: pending.root.signed.version, bytes: pending.root.toBytes() }],
      pending.proposed ?? ctx.now(),
    );
    await createOrMatch(
      ctx.store,
      versionedRootKey(pending.root.signed.version),
      pending.root.toBytes(),
    );
    await writeBytes(ctx.store, ROOT_COPY_KEY, pending.root.toBytes(), {
      contentType: 'application/json',
    });
  } else {
    try {
      await verifyDelegate(pending.root.signed, 'targets', head.published.targets);
    } catch (error) {
      if (isVerifyError(error)) return undefined;
      throw error;
    }
    await publish(ctx, (h) => {
      if (h.root.signed.version >= pending.root.signed.version) {
        throw new OriginError('CONFLICT', 'the pending root was published meanwhile');
      }
      return Promise.resolve({
        reason: 'root',
        blobs: [],
        roots: [pending.root],
        approvedBy: [],
      });
    });
  }
  await storage('clearing the pending root', () => ctx.store.delete(PENDING_ROOT_KEY));
  return pending.root.signed.version;
}
