/**
 * The ObjectSource for a configuration: the one place that turns `mode` and `trustedRoot` into
 * how objects are found. Shared by the Worker and Node entry points.
 */
import type { BlobStore } from '@cairn/storage/blob-store';
import type { HashPort } from '@cairn/verify/hash';
import type { EdgeLog } from './app.js';
import type { EdgeConfig } from './config.js';
import type { EdgeMetrics } from './metrics.js';
import { StorageSource, type ObjectSource } from './source.js';

export interface SourceOptions {
  readonly config: EdgeConfig;
  /** This edge's own storage. */
  readonly store: BlobStore;
  /** node:crypto on Node, DigestStream on Workers. */
  readonly hash: HashPort;
  /** How upstream is reached; default the global fetch. */
  readonly fetch?: typeof fetch | undefined;
  readonly now?: (() => Date) | undefined;
  readonly log?: EdgeLog | undefined;
  readonly metrics?: EdgeMetrics | undefined;
}

export function createSource(options: SourceOptions): ObjectSource {
  // TODO(mirror modes): verified and pull-through sources.
  return new StorageSource(options.store, options.config.storageTimeoutMs);
}
