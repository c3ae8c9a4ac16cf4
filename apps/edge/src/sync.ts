/**
 * The sync mirror's job: copy new releases from an upstream repository into this mirror's own
 * storage, verifying everything, in publication order (blobs and deltas, versioned metadata,
 * the unversioned root copy, timestamp.json last), so the mirror is consistent at every moment
 * even if the job dies halfway. Runs from `cairn mirror sync` on Node and from the Worker's
 * Cron Trigger.
 */
import type { BlobStore } from '@cairn/storage/blob-store';
import type { HashPort } from '@cairn/verify/hash';
import { EdgeError } from './errors.js';

export interface SyncOptions {
  /** The mirror's own storage. */
  readonly store: BlobStore;
  /** The repository to copy from, ending in `/` (an edge, or the origin bucket's public URL). */
  readonly upstreamUrl: string;
  /** The root this mirror trusts (JSON bytes); everything copied verifies from it. */
  readonly trustedRoot: Uint8Array;
  readonly hash: HashPort;
  /** Default the global fetch. */
  readonly fetch?: typeof fetch | undefined;
  /** Per upstream request and per storage operation. Default 30 s. */
  readonly timeoutMs?: number | undefined;
  readonly now?: (() => Date) | undefined;
  readonly onProgress?: ((event: SyncProgress) => void) | undefined;
}

export type SyncProgress =
  | {
      readonly kind: 'checked';
      readonly upstreamVersion: number;
      readonly mirrorVersion: number | undefined;
    }
  | {
      readonly kind: 'copied';
      readonly key: string;
      readonly bytes: number;
      readonly done: number;
      readonly total: number;
    }
  | { readonly kind: 'skipped'; readonly key: string };

export interface SyncReport {
  /** The timestamp version the mirror serves after the job. */
  readonly timestampVersion: number;
  /** The timestamp version it served before, undefined for an empty mirror. */
  readonly previousVersion: number | undefined;
  readonly objectsCopied: number;
  readonly bytesCopied: number;
  /** True when there was nothing to copy. */
  readonly upToDate: boolean;
}

export function syncMirror(_options: SyncOptions): Promise<SyncReport> {
  return Promise.reject(new EdgeError('CONFIG_INVALID', 'sync is not built yet'));
}
