/**
 * Deciding, per wanted target, what to download: nothing (the installed file is the signed one),
 * a delta from the installed file (or a short chain of them), or the full file. Pure: it sees
 * verified targets metadata and the installed files' digests, and does no I/O.
 *
 * A delta is an ordinary target `_delta/{path}/{base sha256}` (apps/origin/src/deltas.ts) whose
 * `custom.cairn_delta` is
 *
 *   { algorithm: 'copy-zstd', target: path, base: { sha256, length }, result: { sha256, length } }
 *
 * Those values are signed (they are in targets metadata), but they are still checked strictly
 * here: a delta is used only when its description is well formed, names this target, starts from
 * the installed file (sha256 and length) and ends at the signed target (sha256 and length). A
 * malformed one is ignored and the full file used. Unknown extra keys in the description are
 * allowed, so a later origin can add fields without turning old clients to full downloads.
 *
 * Chains: the origin makes deltas only to the newest version of a file, so every listed delta's
 * result is the signed target, and a chain (installed → intermediate → signed) exists only when
 * metadata still lists a delta whose result is an older version. Each base has at most one delta
 * (its path names the base), so finding a chain is a walk, not a search: follow
 * `_delta/{path}/{sha}` from the installed sha256 until the signed sha256, at most `maxChain` steps.
 */
import type { TargetFile } from '@cairn/verify/metadata';
import { ClientError } from './errors.js';

/** The directory of delta targets (apps/origin/src/layout.ts DELTA_DIRECTORY). */
export const DELTA_DIRECTORY = '_delta';
export const DELTA_ALGORITHM = 'copy-zstd';
/** Longest chain of deltas tried: each step costs a pass over the file; past three, the full
 * download is usually as cheap. */
export const DEFAULT_MAX_CHAIN = 3;

export interface FileDigest {
  /** Lowercase hex. */
  readonly sha256: string;
  readonly length: number;
}

/** One delta to apply: the signed delta target, and the base it needs and result it gives. */
export interface DeltaStep {
  readonly file: TargetFile;
  readonly base: FileDigest;
  readonly result: FileDigest;
}

export type FullReason =
  /** Nothing is installed at the path. */
  | 'not-installed'
  /** No delta (or chain within maxChain) starts at the installed file. */
  | 'no-delta'
  /** A delta from the installed file is listed but its description is malformed or does not
   * fit the installed file or the signed target. */
  | 'malformed-delta'
  /** The deltas would cost at least as many bytes as the full file. */
  | 'delta-not-smaller'
  /** The signed target lists no sha256, which deltas are keyed by. */
  | 'no-sha256';

export type TargetPlan =
  /** The installed file is the signed target: nothing to do. */
  | { readonly kind: 'current'; readonly target: TargetFile }
  /** Apply `steps` (one for 'delta', two or more for 'chain') to the installed file. */
  | {
      readonly kind: 'delta' | 'chain';
      readonly target: TargetFile;
      readonly steps: readonly DeltaStep[];
      /** Sum of the deltas' lengths. */
      readonly downloadBytes: number;
      /** target.length − downloadBytes. */
      readonly bytesSaved: number;
    }
  | {
      readonly kind: 'full';
      readonly target: TargetFile;
      readonly reason: FullReason;
      readonly downloadBytes: number;
    };

export function deltaTargetPath(path: string, baseSha256: string): string {
  return `${DELTA_DIRECTORY}/${path}/${baseSha256}`;
}

export function isDeltaPath(path: string): boolean {
  return path.startsWith(`${DELTA_DIRECTORY}/`);
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

function digestOf(value: unknown): FileDigest | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { sha256, length } = value as Record<string, unknown>;
  if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) return undefined;
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) return undefined;
  return { sha256, length };
}

/**
 * The delta described by `file`'s `custom.cairn_delta`, or undefined when the description is
 * malformed: not an object, another algorithm, a target other than the one its path names, a
 * base sha256 other than the one its path names, a digest that is not 64 lowercase hex digits
 * with a non-negative integer length, or a delta file without a sha256 of its own.
 */
export function parseDeltaStep(file: TargetFile): DeltaStep | undefined {
  const custom = file.custom;
  if (typeof custom !== 'object' || custom === null || Array.isArray(custom)) return undefined;
  const description = (custom as Record<string, unknown>).cairn_delta;
  if (typeof description !== 'object' || description === null || Array.isArray(description)) {
    return undefined;
  }
  const d = description as Record<string, unknown>;
  if (d.algorithm !== DELTA_ALGORITHM || typeof d.target !== 'string') return undefined;
  const base = digestOf(d.base);
  const result = digestOf(d.result);
  if (base === undefined || result === undefined) return undefined;
  if (file.path !== deltaTargetPath(d.target, base.sha256)) return undefined;
  const own = file.hashes.sha256;
  if (typeof own !== 'string' || !SHA256_HEX.test(own.toLowerCase())) return undefined;
  return { file, base, result };
}

export interface PlanOptions {
  /** Longest chain of deltas to use; 1 uses single deltas only. Default DEFAULT_MAX_CHAIN. */
  readonly maxChain?: number;
}

/**
 * What to do for `target` given the installed file's digest (undefined: nothing installed) and
 * every target of the same verified metadata (to find deltas in).
 */
export function planTarget(
  target: TargetFile,
  installed: FileDigest | undefined,
  targets: ReadonlyMap<string, TargetFile>,
  options: PlanOptions = {},
): TargetPlan {
  const maxChain = options.maxChain ?? DEFAULT_MAX_CHAIN;
  if (!Number.isSafeInteger(maxChain) || maxChain < 0) {
    throw new ClientError(
      'CONFIG_INVALID',
      `maxChain: expected a non-negative integer, received ${maxChain}`,
    );
  }
  const full = (reason: FullReason): TargetPlan => ({
    kind: 'full',
    target,
    reason,
    downloadBytes: target.length,
  });
  const signed = target.hashes.sha256?.toLowerCase();
  if (installed === undefined) return full('not-installed');
  if (signed === undefined) return full('no-sha256');
  if (installed.sha256 === signed && installed.length === target.length) {
    return { kind: 'current', target };
  }
  const steps: DeltaStep[] = [];
  let at: FileDigest = installed;
  const seen = new Set<string>([installed.sha256]);
  while (steps.length < maxChain) {
    const file = targets.get(deltaTargetPath(target.path, at.sha256));
    if (file === undefined) return full('no-delta');
    const step = parseDeltaStep(file);
    // parseDeltaStep checked that the path is `_delta/{custom target}/{custom base}`, and it
    // was found under `_delta/{target.path}/{at}`: so the description names this target.
    if (step === undefined || step.base.sha256 !== at.sha256 || step.base.length !== at.length) {
      return full('malformed-delta');
    }
    steps.push(step);
    if (step.result.sha256 === signed) {
      if (step.result.length !== target.length) return full('malformed-delta');
      const downloadBytes = steps.reduce((sum, s) => sum + s.file.length, 0);
      if (downloadBytes >= target.length) return full('delta-not-smaller');
      return {
        kind: steps.length === 1 ? 'delta' : 'chain',
        target,
        steps,
        downloadBytes,
        bytesSaved: target.length - downloadBytes,
      };
    }
    // A delta to something else: an older version, a step of a possible chain. A cycle cannot
    // reach the signed file.
    if (seen.has(step.result.sha256)) return full('no-delta');
    seen.add(step.result.sha256);
    at = step.result;
  }
  return full('no-delta');
}

/** Which targets to keep installed: every non-delta target, or the listed names and patterns. */
export type TargetSelection = 'all' | readonly string[];

function matchSegment(pattern: string, text: string): boolean {
  // Iterative wildcard match ('*' = any run of characters within the segment), backtracking
  // only to the last '*': O(pattern × text), no regular expression built from user input.
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === text[t]) {
      p++;
      t++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = t;
    } else if (star !== -1) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/**
 * Whether `path` matches the glob `pattern`, both `/`-separated: `*` matches any characters
 * within one segment, a `**` segment matches zero or more whole segments, everything else
 * matches itself.
 */
export function matchesGlob(pattern: string, path: string): boolean {
  const ps = pattern.split('/');
  const ts = path.split('/');
  // memo[i][j]: ps[i..] matches ts[j..]; at most (P + 1) × (T + 1) cells, so `**` cannot blow up.
  const memo = new Map<number, boolean>();
  const match = (i: number, j: number): boolean => {
    const key = i * (ts.length + 1) + j;
    const known = memo.get(key);
    if (known !== undefined) return known;
    let result: boolean;
    if (i === ps.length) result = j === ts.length;
    else if (ps[i] === '**') result = match(i + 1, j) || (j < ts.length && match(i, j + 1));
    else {
      const segment = ts[j];
      result = segment !== undefined && matchSegment(ps[i] ?? '', segment) && match(i + 1, j + 1);
    }
    memo.set(key, result);
    return result;
  };
  return match(0, 0);
}

export interface Selection {
  /** The wanted targets, in path order. */
  readonly targets: readonly TargetFile[];
  /** Configured names and patterns that matched no target (a typo, or a file withdrawn). */
  readonly unmatched: readonly string[];
}

/**
 * The wanted targets: all non-delta targets, or those named or matched by `selection`. An entry
 * without `*` is an exact name. Delta targets are never selected. Throws CONFIG_INVALID for an
 * empty entry.
 */
export function selectTargets(
  targets: ReadonlyMap<string, TargetFile>,
  selection: TargetSelection,
): Selection {
  const candidates = [...targets.values()]
    .filter((t) => !isDeltaPath(t.path))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  if (selection === 'all') return { targets: candidates, unmatched: [] };
  if (selection.some((entry) => typeof entry !== 'string' || entry.length === 0)) {
    throw new ClientError('CONFIG_INVALID', 'targets: expected non-empty names or patterns');
  }
  const used = new Set<string>();
  const chosen = candidates.filter((t) => {
    let hit = false;
    // Every entry is tried, not just up to the first hit, so `unmatched` is exact.
    for (const entry of selection) {
      if (entry.includes('*') ? matchesGlob(entry, t.path) : entry === t.path) {
        used.add(entry);
        hit = true;
      }
    }
    return hit;
  });
  return { targets: chosen, unmatched: selection.filter((e) => !used.has(e)) };
}

export interface UpdatePlan {
  readonly plans: readonly TargetPlan[];
  readonly unmatched: readonly string[];
  /** Sum of bytesSaved over the delta and chain plans. */
  readonly bytesSaved: number;
  /** Sum of downloadBytes over the plans that download. */
  readonly downloadBytes: number;
}

/** selectTargets, then planTarget for each. `installed` maps target paths to installed digests. */
export function planUpdate(
  targets: ReadonlyMap<string, TargetFile>,
  installed: ReadonlyMap<string, FileDigest>,
  selection: TargetSelection,
  options: PlanOptions = {},
): UpdatePlan {
  const { targets: wanted, unmatched } = selectTargets(targets, selection);
  const plans = wanted.map((t) => planTarget(t, installed.get(t.path), targets, options));
  let bytesSaved = 0;
  let downloadBytes = 0;
  for (const plan of plans) {
    if (plan.kind === 'delta' || plan.kind === 'chain') bytesSaved += plan.bytesSaved;
    if (plan.kind !== 'current') downloadBytes += plan.downloadBytes;
  }
  return { plans, unmatched, bytesSaved, downloadBytes };
}
