import { createHash } from 'node:crypto';
import { TargetFile } from '@cairn/verify/metadata';
import { deltaTargetPath } from '../delta-plan.js';

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * The `_delta/...` target the origin lists for `delta`, a delta of `path` from `base` to `result`
 * (as apps/origin/src/deltas.ts deltaTargetFile makes it).
 */
export function deltaTargetFile(
  path: string,
  delta: Uint8Array,
  base: Uint8Array,
  result: Uint8Array,
): TargetFile {
  return new TargetFile({
    path: deltaTargetPath(path, sha256(base)),
    length: delta.length,
    hashes: { sha256: sha256(delta) },
    custom: {
      cairn_delta: {
        algorithm: 'copy-zstd',
        target: path,
        base: { sha256: sha256(base), length: base.length },
        result: { sha256: sha256(result), length: result.length },
      },
    },
  });
}
