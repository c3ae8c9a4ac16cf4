/**
 * Deltas from earlier versions of a file to the new one. A delta is an ordinary target under
 * `_delta/{path}/{base sha256}` whose `custom.cairn_delta` names the algorithm, the base and
 * the result; a TUF client that knows nothing of it fetches full files, ours prefers a delta
 * whose base it holds.
 *
 * The codec works in memory, so files above `policy.deltas.maxFileBytes` get no delta (their
 * clients fetch the full file). Work runs one file at a time per origin to bound memory: the
 * codec needs about three times the file.
 */
import { encodeDelta } from '@cairn/delta/encode';
import { TargetFile, type Targets } from '@cairn/verify/metadata';
import type { Metadata } from '@cairn/verify/metadata';
import type { OriginContext } from './context.js';
import { DELTA_DIRECTORY, targetBlobKey } from './layout.js';
import { readTargets } from './repository.js';
import { readBytes, sha256Hex, writeBytes } from './store-io.js';

export const DELTA_ALGORITHM = 'copy-zstd';

export interface DeltaRecord {
  /** The file the delta rebuilds. */
  readonly path: string;
  readonly base: { readonly sha256: string; readonly length: number; readonly version: number };
  readonly result: { readonly sha256: string; readonly length: number };
  /** The delta itself. */
  readonly sha256: string;
  readonly length: number;
  /** Where the delta is staged. */
  readonly key: string;
}

export function deltaTargetPath(path: string, baseSha256: string): string {
  return `${DELTA_DIRECTORY}/${path}/${baseSha256}`;
}

export function isDeltaPath(path: string): boolean {
  return path.startsWith(`${DELTA_DIRECTORY}/`);
}

export function deltaTargetFile(delta: DeltaRecord): TargetFile {
  return new TargetFile({
    path: deltaTargetPath(delta.path, delta.base.sha256),
    length: delta.length,
    hashes: { sha256: delta.sha256 },
    custom: {
      cairn_delta: {
        algorithm: DELTA_ALGORITHM,
        target: delta.path,
        base: { sha256: delta.base.sha256, length: delta.base.length },
        result: { sha256: delta.result.sha256, length: delta.result.length },
      },
    },
  });
}

export interface DeltaBase {
  readonly sha256: string;
  readonly length: number;
  /** The newest targets version that lists it. */
  readonly version: number;
}

/**
 * The distinct earlier contents of `path` in the last `pastVersions` published targets
 * versions, newest first, leaving out `exclude` (the new content itself).
 */
export async function deltaBases(
  ctx: OriginContext,
  headTargets: Metadata<Targets> | undefined,
  path: string,
  exclude: string,
): Promise<DeltaBase[]> {
  const bases: DeltaBase[] = [];
  const seen = new Set([exclude]);
  const newest = headTargets?.signed.version ?? 0;
  for (let v = newest; v >= 1 && newest - v < ctx.policy.deltas.pastVersions; v--) {
    const targets = v === newest ? headTargets : await readTargets(ctx.store, v);
    const file = targets?.signed.targets.get(path);
    const sha256 = file?.hashes.sha256;
    if (file === undefined || sha256 === undefined || seen.has(sha256)) continue;
    seen.add(sha256);
    bases.push({ sha256, length: file.length, version: v });
  }
  return bases;
}

/** One at a time: the codec holds base, target and its index in memory. */
let queue: Promise<unknown> = Promise.resolve();

function serially<T>(work: () => Promise<T>): Promise<T> {
  const run = queue.then(work, work);
  queue = run.catch(() => undefined);
  return run;
}

/**
 * Makes and stages deltas from each base to the file at `sourceKey`. Bases whose blobs are
 * gone (collected), files too large for the codec, and deltas no smaller than the file are
 * skipped: the full file serves those clients.
 */
export async function makeDeltas(
  ctx: OriginContext,
  file: { readonly path: string; readonly sha256: string; readonly length: number },
  sourceKey: string,
  bases: readonly DeltaBase[],
  stageKey: (baseSha256: string) => string,
): Promise<DeltaRecord[]> {
  const limit = ctx.policy.deltas.maxFileBytes;
  if (bases.length === 0 || file.length > limit) return [];
  return serially(async () => {
    const target = await readBytes(ctx.store, sourceKey);
    if (target === undefined) return [];
    const records: DeltaRecord[] = [];
    for (const base of bases) {
      if (base.length > limit) continue;
      const baseBlob = await readBytes(ctx.store, targetBlobKey(file.path, base.sha256));
      if (baseBlob === undefined) continue;
      const delta = await encodeDelta(baseBlob.bytes, target.bytes);
      if (delta.length >= file.length) continue;
      const key = stageKey(base.sha256);
      await writeBytes(ctx.store, key, delta, { contentType: 'application/octet-stream' });
      records.push({
        path: file.path,
        base,
        result: { sha256: file.sha256, length: file.length },
        sha256: sha256Hex(delta),
        length: delta.length,
        key,
      });
    }
    return records;
  });
}
