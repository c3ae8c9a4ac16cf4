/**
 * Reading the published repository back from the store: the head (timestamp → snapshot →
 * targets), the chain of roots, and the pending root a key change is waiting to publish.
 * Versioned metadata never changes once written, so roots are cached by version.
 */
import type { BlobStore } from '@cairn/storage/blob-store';
import { isStorageError } from '@cairn/storage/errors';
import { isVerifyError } from '@cairn/verify/errors';
import {
  Metadata,
  type Root,
  type Snapshot,
  type Targets,
  type Timestamp,
  type RoleType,
  type SignedOf,
} from '@cairn/verify/metadata';
import { OriginError } from './errors.js';
import {
  PENDING_ROOT_KEY,
  ROOT_COPY_KEY,
  TIMESTAMP_KEY,
  versionedKey,
  versionedRootKey,
} from './layout.js';
import { readBytes, readJson, storage } from './store-io.js';

export interface Head {
  /** The newest published root. */
  readonly root: Metadata<Root>;
  /** Undefined until the first release is published: `cairn init` writes only root. */
  readonly published: Published | undefined;
}

export interface Published {
  readonly timestamp: Metadata<Timestamp>;
  /** For the compare-and-swap that makes timestamp.json's history linear. */
  readonly timestampEtag: string;
  readonly snapshot: Metadata<Snapshot>;
  readonly snapshotBytes: Uint8Array;
  readonly targets: Metadata<Targets>;
  readonly targetsBytes: Uint8Array;
}

export function parseStored<R extends RoleType>(
  bytes: Uint8Array,
  role: R,
  key: string,
): Metadata<SignedOf<R>> {
  try {
    return Metadata.fromBytes(bytes, role, key);
  } catch (error) {
    if (isVerifyError(error)) {
      throw new OriginError('INTEGRITY', `${key}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

async function readRequired(store: BlobStore, key: string): Promise<Uint8Array> {
  const found = await readBytes(store, key);
  if (found === undefined) {
    throw new OriginError('INTEGRITY', `${key} is missing from the store`);
  }
  return found.bytes;
}

export class RootChain {
  readonly #store: BlobStore;
  readonly #cache = new Map<number, Metadata<Root>>();

  constructor(store: BlobStore) {
    this.#store = store;
  }

  /** Root `version`, or undefined when it has not been published. */
  async get(version: number): Promise<Metadata<Root> | undefined> {
    const cached = this.#cache.get(version);
    if (cached !== undefined) return cached;
    const key = versionedRootKey(version);
    const found = await readBytes(this.#store, key);
    if (found === undefined) return undefined;
    const root = parseStored(found.bytes, 'root', key);
    if (root.signed.version !== version) {
      throw new OriginError('INTEGRITY', `${key} holds root version ${root.signed.version}`);
    }
    this.#cache.set(version, root);
    return root;
  }

  /** The newest root: the convenience copy says where to start, and newer versions written
   * before a crash (the copy is updated after them) are found by probing upwards. */
  async newest(): Promise<Metadata<Root>> {
    const copy = await readBytes(this.#store, ROOT_COPY_KEY);
    if (copy === undefined) {
      throw new OriginError(
        'REPOSITORY_STATE',
        'no repository in this store (metadata/root.json is missing): run `cairn init` first',
      );
    }
    let version = parseStored(copy.bytes, 'root', ROOT_COPY_KEY).signed.version;
    let root = await this.get(version);
    if (root === undefined)
      throw new OriginError('INTEGRITY', `${versionedRootKey(version)} is missing`);
    for (;;) {
      const next = await this.get(version + 1);
      if (next === undefined) return root;
      root = next;
      version += 1;
    }
  }

  /** Every published root, oldest first. */
  async all(): Promise<Metadata<Root>[]> {
    const newest = await this.newest();
    const roots: Metadata<Root>[] = [];
    for (let v = 1; v < newest.signed.version; v++) {
      const root = await this.get(v);
      if (root !== undefined) roots.push(root);
    }
    roots.push(newest);
    return roots;
  }
}

export async function readHead(store: BlobStore, roots: RootChain): Promise<Head> {
  const root = await roots.newest();
  const ts = await readBytes(store, TIMESTAMP_KEY);
  if (ts === undefined) return { root, published: undefined };
  const timestamp = parseStored(ts.bytes, 'timestamp', TIMESTAMP_KEY);
  const snapshotKey = versionedKey('snapshot', timestamp.signed.snapshotMeta.version);
  const snapshotBytes = await readRequired(store, snapshotKey);
  const snapshot = parseStored(snapshotBytes, 'snapshot', snapshotKey);
  const targetsMeta = snapshot.signed.meta.get('targets.json');
  if (targetsMeta === undefined) {
    throw new OriginError('INTEGRITY', `${snapshotKey} does not list targets.json`);
  }
  const targetsKey = versionedKey('targets', targetsMeta.version);
  const targetsBytes = await readRequired(store, targetsKey);
  const targets = parseStored(targetsBytes, 'targets', targetsKey);
  return {
    root,
    published: {
      timestamp,
      timestampEtag: ts.info.etag,
      snapshot,
      snapshotBytes,
      targets,
      targetsBytes,
    },
  };
}

export const snapshotVersionOf = (head: Head): number =>
  head.published?.snapshot.signed.version ?? 0;
export const targetsVersionOf = (head: Head): number => head.published?.targets.signed.version ?? 0;

/** Targets metadata `version`, or undefined when it is not in the store. */
export async function readTargets(
  store: BlobStore,
  version: number,
): Promise<Metadata<Targets> | undefined> {
  const key = versionedKey('targets', version);
  const found = await readBytes(store, key);
  return found === undefined ? undefined : parseStored(found.bytes, 'targets', key);
}

/** A root signed by the operators, waiting to be published with the next publication that
 * satisfies it (see publication.ts). */
export interface PendingRoot {
  readonly root: Metadata<Root>;
  readonly bytes: Uint8Array;
  readonly etag: string;
  readonly reason: string;
  /** When it was proposed (records older than the transparency log have no time). */
  readonly proposed?: Date | undefined;
}

interface PendingRootRecord {
  readonly reason: string;
  readonly proposed?: string;
  readonly metadata: unknown;
}

export async function readPendingRoot(store: BlobStore): Promise<PendingRoot | undefined> {
  const found = await readJson<PendingRootRecord>(store, PENDING_ROOT_KEY);
  if (found === undefined) return undefined;
  const bytes = new TextEncoder().encode(JSON.stringify(found.value.metadata, null, 1));
  const proposed =
    typeof found.value.proposed === 'string' ? new Date(found.value.proposed) : undefined;
  return {
    root: parseStored(bytes, 'root', PENDING_ROOT_KEY),
    bytes,
    etag: found.etag,
    reason: found.value.reason,
    proposed: proposed === undefined || Number.isNaN(proposed.getTime()) ? undefined : proposed,
  };
}

export function pendingRootRecord(
  root: Metadata<Root>,
  reason: string,
  proposed: Date,
): PendingRootRecord {
  return { reason, proposed: proposed.toISOString(), metadata: root.toJSON() };
}

export async function objectExists(store: BlobStore, key: string): Promise<boolean> {
  return storage(`checking ${key}`, async () => {
    try {
      return (await store.head(key)) !== undefined;
    } catch (error) {
      if (isStorageError(error, 'NOT_FOUND')) return false;
      throw error;
    }
  });
}
