/**
 * The release log as the origin sees it: one entry per publication, appended after the
 * versioned metadata is in place and before anything becomes visible to clients. Issue 7
 * puts a transparency log (Merkle tree, signed checkpoints) behind this interface; until then
 * `StoreReleaseLog` keeps the entries as objects under the private prefix.
 */
import type { BlobStore } from '@cairn/storage/blob-store';
import { logEntryKey, LOG_PREFIX } from './layout.js';
import { createOrMatch, jsonBytes, listAll, readJson } from './store-io.js';

export interface ReleaseLogEntry {
  readonly snapshotVersion: number;
  readonly targetsVersion: number;
  /** The newest root version once this publication is visible. */
  readonly rootVersion: number;
  /** sha256 of every versioned metadata file this publication writes, by store key. */
  readonly metadata: Readonly<Record<string, string>>;
  readonly release?: string | undefined;
  /** Key ids whose signatures approved the targets metadata. */
  readonly approvedBy: readonly string[];
  readonly time: string;
}

export interface ReleaseLog {
  /** Appends `entry`; appending the same entry again (a recovered publication) is a no-op. */
  append(entry: ReleaseLogEntry): Promise<void>;
}

export class StoreReleaseLog implements ReleaseLog {
  readonly #store: BlobStore;

  constructor(store: BlobStore) {
    this.#store = store;
  }

  async append(entry: ReleaseLogEntry): Promise<void> {
    await createOrMatch(this.#store, logEntryKey(entry.snapshotVersion), jsonBytes(entry));
  }

  async entries(): Promise<ReleaseLogEntry[]> {
    const objects = await listAll(this.#store, LOG_PREFIX);
    const entries: ReleaseLogEntry[] = [];
    for (const object of objects) {
      const found = await readJson<ReleaseLogEntry>(this.#store, object.key);
      if (found !== undefined) entries.push(found.value);
    }
    return entries;
  }
}
