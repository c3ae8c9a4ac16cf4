/// <reference types="node" />
/**
 * Node hosts (the origin, the CLI, monitors, benchmarks) install node:crypto's SHA-256 for the
 * log's hashing: the same bytes as WebCrypto, without its per-call cost. Idempotent.
 */
import { createHash } from 'node:crypto';
import { setSha256 } from './bytes.js';

export function useNodeSha256(): void {
  setSha256((data) => new Uint8Array(createHash('sha256').update(data).digest()));
}
