/**
 * The ObjectSource for a configuration: the one place that turns `mode` and `trustedRoot` into
 * how objects are found. Shared by the Worker and Node entry points.
 *
 *   direct, no trusted root        StorageSource: the store as it is
 *   direct or sync, trusted root   VerifiedSource: metadata verified from the pinned root first
 *   pull-through                   PullThroughSource: the store, filled from upstream, verified
 *
 * A sync mirror serves its own store like a direct edge; its Cron Trigger (or `cairn mirror
 * sync`) fills it. parseEdgeConfig insists on a trusted root in both mirror modes.
 */
import type { BlobStore } from '@cairn/storage/blob-store';
import type { HashPort } from '@cairn/verify/hash';
import type { EdgeLog } from './app.js';
import type { EdgeConfig } from './config.js';
import type { EdgeMetrics } from './metrics.js';
import { PullThroughSource } from './pull-through.js';
import { StorageSource, type ObjectSource } from './source.js';
import { VerifiedSource } from './verified-source.js';

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
  const { config, store, hash, now, log } = options;
  if (config.mode === 'pull-through') {
    return new PullThroughSource({ store, config, hash, fetch: options.fetch, now, log });
  }
  if (config.trustedRoot === undefined) {
    return new StorageSource(store, config.storageTimeoutMs);
  }
  return new VerifiedSource({
    store,
    trustedRoot: config.trustedRoot,
    hash,
    timeoutMs: config.storageTimeoutMs,
    // Never staler than a cache may hold timestamp.json anyway, and at most a second.
    recheckMs: Math.min(1000, config.timestampMaxAge * 1000),
    now,
    log,
  });
}
