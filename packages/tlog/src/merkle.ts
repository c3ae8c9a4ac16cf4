/**
 * RFC 6962 §2.1 / RFC 9162 §2.1 Merkle tree hashing with SHA-256: tree heads, inclusion and
 * consistency proofs. Proofs are generated over a `SubtreeReader` (any complete, aligned subtree's
 * hash), so the same code proves from leaf hashes in memory or from tiles fetched from a mirror.
 *
 * Sizes are numbers below 2^53; no 32-bit bit operators are used on them.
 */
import { bytesEqual, concatBytes, sha256 } from './bytes.js';
import { TlogError } from './errors.js';
import {
  HASH_SIZE,
  MAX_CONSISTENCY_PROOF_HASHES,
  MAX_INCLUSION_PROOF_HASHES,
  MAX_TREE_SIZE,
} from './limits.js';

const LEAF_PREFIX = new Uint8Array([0x00]);
const NODE_PREFIX = new Uint8Array([0x01]);

/** MTH({}) = SHA-256() (RFC 6962 §2.1). */
export const EMPTY_ROOT = Uint8Array.from([
  0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
  0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

/** MTH({d}) = SHA-256(0x00 || d). */
export function leafHash(entry: Uint8Array): Promise<Uint8Array> {
  return sha256(concatBytes(LEAF_PREFIX, entry));
}

/** The hash of an interior node: SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Promise<Uint8Array> {
  return sha256(concatBytes(NODE_PREFIX, left, right));
}

/**
 * The hash of the complete subtree of 2^height leaves starting at leaf index * 2^height. Callers
 * only ask for subtrees wholly inside the tree they are proving about.
 */
export type SubtreeReader = (height: number, index: number) => Promise<Uint8Array>;

/** A reader over leaf hashes held in memory: hashes each subtree once, on first use. */
export function subtreeReaderFromLeafHashes(leafHashes: readonly Uint8Array[]): SubtreeReader {
  return extendSubtreeReader(0, () => Promise.reject(new Error('unreachable')), leafHashes);
}

/**
 * The tree of `size` leaves that `old` reads, extended by `leaves` held in memory: complete
 * subtrees of the old tree come from `old`, the rest is hashed from the new leaves, each subtree
 * once, on first use. What an append writes its new tiles from.
 */
export function extendSubtreeReader(
  size: number,
  old: SubtreeReader,
  leaves: readonly Uint8Array[],
): SubtreeReader {
  const memo = new Map<string, Promise<Uint8Array>>();
  const read: SubtreeReader = (height, index) => {
    const span = 2 ** height;
    const start = index * span;
    if (start + span <= size) return old(height, index);
    if (height === 0) {
      const leaf = leaves[start - size];
      if (leaf === undefined) {
        return Promise.reject(
          new TlogError('INVALID_ARGUMENT', `no leaf hash at index ${String(start)}`),
        );
      }
      return Promise.resolve(leaf);
    }
    const key = `${String(height)}/${String(index)}`;
    let hash = memo.get(key);
    if (hash === undefined) {
      hash = (async () =>
        nodeHash(await read(height - 1, 2 * index), await read(height - 1, 2 * index + 1)))();
      memo.set(key, hash);
    }
    return hash;
  };
  return read;
}

/** The root of the perfect subtree over 2^k consecutive hashes (k ≥ 0), hashing pairs upward. */
export async function perfectSubtreeRoot(hashes: readonly Uint8Array[]): Promise<Uint8Array> {
  const count = hashes.length;
  if (count === 0 || (count & (count - 1)) !== 0) {
    throw new TlogError(
      'INVALID_ARGUMENT',
      `expected a power of two of hashes, got ${String(count)}`,
    );
  }
  let layer = hashes;
  while (layer.length > 1) {
    const next: Uint8Array[] = [];
    for (let k = 0; k < layer.length; k += 2) {
      next.push(await nodeHash(layer[k] as Uint8Array, layer[k + 1] as Uint8Array));
    }
    layer = next;
  }
  return layer[0] as Uint8Array;
}

/** The largest power of two strictly below n (n ≥ 2): RFC 6962's split point k. */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function log2IfPowerOfTwo(n: number): number | undefined {
  let height = 0;
  let k = 1;
  while (k < n) {
    k *= 2;
    height++;
  }
  return k === n ? height : undefined;
}

/** MTH(D[start:end]) for 0 ≤ start < end, split exactly as RFC 6962 §2.1 splits. */
export async function rangeHash(
  read: SubtreeReader,
  start: number,
  end: number,
): Promise<Uint8Array> {
  const n = end - start;
  const height = log2IfPowerOfTwo(n);
  if (height !== undefined && start % n === 0) return read(height, start / n);
  const k = splitPoint(n);
  return nodeHash(await rangeHash(read, start, start + k), await rangeHash(read, start + k, end));
}

/** The tree head MTH(D[0:size]). */
export async function treeRoot(read: SubtreeReader, size: number): Promise<Uint8Array> {
  checkSize(size, 'size');
  return size === 0 ? EMPTY_ROOT.slice() : rangeHash(read, 0, size);
}

/** The tree head of leaf hashes held in memory. */
export function rootFromLeafHashes(leafHashes: readonly Uint8Array[]): Promise<Uint8Array> {
  return treeRoot(subtreeReaderFromLeafHashes(leafHashes), leafHashes.length);
}

/** PATH(index, D[0:size]) — RFC 6962 §2.1.1, leaf side first. */
export async function inclusionProof(
  read: SubtreeReader,
  index: number,
  size: number,
): Promise<Uint8Array[]> {
  checkSize(size, 'size');
  checkIndex(index, size);
  const proof: Uint8Array[] = [];
  // Iterative form of the recursion: walk down, collecting siblings root side first.
  let start = 0;
  let end = size;
  while (end - start > 1) {
    const k = splitPoint(end - start);
    if (index < start + k) {
      proof.push(await rangeHash(read, start + k, end));
      end = start + k;
    } else {
      proof.push(await rangeHash(read, start, start + k));
      start += k;
    }
  }
  return proof.reverse();
}

/** PROOF(oldSize, D[0:newSize]) — RFC 6962 §2.1.2, for 0 < oldSize < newSize; empty when
 * oldSize is 0 or equals newSize. */
export async function consistencyProof(
  read: SubtreeReader,
  oldSize: number,
  newSize: number,
): Promise<Uint8Array[]> {
  checkSize(oldSize, 'oldSize');
  checkSize(newSize, 'newSize');
  if (oldSize > newSize) {
    throw new TlogError(
      'INVALID_ARGUMENT',
      `oldSize ${String(oldSize)} is larger than newSize ${String(newSize)}`,
    );
  }
  if (oldSize === 0 || oldSize === newSize) return [];
  const proof: Uint8Array[] = [];
  // SUBPROOF(m, D[start:end], b), walked iteratively, root side first.
  let start = 0;
  let end = newSize;
  let m = oldSize;
  let complete = true;
  while (m !== end - start) {
    const k = splitPoint(end - start);
    if (m <= k) {
      proof.push(await rangeHash(read, start + k, end));
      end = start + k;
    } else {
      proof.push(await rangeHash(read, start, start + k));
      start += k;
      m -= k;
      complete = false;
    }
  }
  if (!complete) proof.push(await rangeHash(read, start, end));
  return proof.reverse();
}

/**
 * RFC 9162 §2.1.3.2: checks that `leaf` is at `index` in the tree of `size` leaves whose head is
 * `root`. Throws MALFORMED_PROOF for a proof of the wrong shape, INVALID_PROOF for a wrong one.
 */
export async function verifyInclusion(
  leaf: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): Promise<void> {
  checkSize(size, 'size');
  checkIndex(index, size);
  checkHashes([leaf, root, ...proof], MAX_INCLUSION_PROOF_HASHES + 2);
  let fn = index; // 2
  let sn = size - 1;
  let r = leaf; // 3
  for (const p of proof) {
    // 4
    if (sn === 0) throw new TlogError('MALFORMED_PROOF', 'inclusion proof is too long');
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  // 5
  if (sn !== 0) throw new TlogError('MALFORMED_PROOF', 'inclusion proof is too short');
  if (!bytesEqual(r, root)) {
    throw new TlogError('INVALID_PROOF', 'inclusion proof does not lead to the tree head');
  }
}

/**
 * RFC 9162 §2.1.4.2: checks that the tree of `oldSize` leaves with head `oldRoot` is a prefix of
 * the tree of `newSize` leaves with head `newRoot`.
 */
export async function verifyConsistency(
  oldSize: number,
  newSize: number,
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
  proof: readonly Uint8Array[],
): Promise<void> {
  checkSize(oldSize, 'oldSize');
  checkSize(newSize, 'newSize');
  checkHashes([oldRoot, newRoot, ...proof], MAX_CONSISTENCY_PROOF_HASHES + 2);
  if (oldSize > newSize) {
    throw new TlogError(
      'INCONSISTENT',
      `the tree shrank from ${String(oldSize)} to ${String(newSize)} leaves`,
    );
  }
  if (oldSize === newSize || oldSize === 0) {
    if (proof.length !== 0) throw new TlogError('MALFORMED_PROOF', 'expected an empty proof');
    if (oldSize === newSize && !bytesEqual(oldRoot, newRoot)) {
      throw new TlogError('INCONSISTENT', 'two different heads for the same tree size');
    }
    if (oldSize === 0 && !bytesEqual(oldRoot, EMPTY_ROOT)) {
      throw new TlogError('INVALID_PROOF', 'the head of the empty tree is not SHA-256()');
    }
    return;
  }
  // 1
  if (proof.length === 0) throw new TlogError('MALFORMED_PROOF', 'consistency proof is empty');
  // 2
  const path = log2IfPowerOfTwo(oldSize) !== undefined ? [oldRoot, ...proof] : [...proof];
  // 3
  let fn = oldSize - 1;
  let sn = newSize - 1;
  // 4
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  // 5
  let fr = path[0] as Uint8Array;
  let sr = fr;
  // 6
  for (const c of path.slice(1)) {
    if (sn === 0) throw new TlogError('MALFORMED_PROOF', 'consistency proof is too long');
    if (fn % 2 === 1 || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  // 7
  if (sn !== 0) throw new TlogError('MALFORMED_PROOF', 'consistency proof is too short');
  if (!bytesEqual(fr, oldRoot) || !bytesEqual(sr, newRoot)) {
    throw new TlogError('INVALID_PROOF', 'consistency proof does not lead to both tree heads');
  }
}

function checkSize(size: number, name: string): void {
  if (!Number.isSafeInteger(size) || size < 0 || size > MAX_TREE_SIZE) {
    throw new TlogError(
      'INVALID_ARGUMENT',
      `${name} must be a safe non-negative integer, got ${String(size)}`,
    );
  }
}

function checkIndex(index: number, size: number): void {
  if (!Number.isSafeInteger(index) || index < 0 || index >= size) {
    throw new TlogError(
      'INVALID_ARGUMENT',
      `index must be an integer in [0, ${String(size)}), got ${String(index)}`,
    );
  }
}

function checkHashes(hashes: readonly Uint8Array[], max: number): void {
  if (hashes.length > max) {
    throw new TlogError(
      'MALFORMED_PROOF',
      `proof has ${String(hashes.length - 2)} hashes, more than any tree needs`,
    );
  }
  for (const h of hashes) {
    if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) {
      throw new TlogError('MALFORMED_PROOF', `hashes must be ${String(HASH_SIZE)} bytes`);
    }
  }
}
