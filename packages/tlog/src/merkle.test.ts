import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from './bytes.js';
import { isTlogError, type TlogErrorCode } from './errors.js';
import {
  consistencyProof,
  inclusionProof,
  leafHash,
  nodeHash,
  rootFromLeafHashes,
  splitPoint,
  subtreeReaderFromLeafHashes,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';
import { CONSISTENCY, INCLUSION, LEAVES_HEX, ROOTS_HEX } from './vectors/rfc6962.js';

async function rejects(promise: Promise<unknown>, code: TlogErrorCode): Promise<void> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isTlogError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
}

const leaves = await Promise.all(LEAVES_HEX.map((h) => leafHash(fromHex(h))));
const reader = subtreeReaderFromLeafHashes(leaves);

/** MTH by the definition, recursion and all: the independent reference. */
async function naiveRoot(hashes: readonly Uint8Array[]): Promise<Uint8Array> {
  if (hashes.length === 1) return hashes[0] as Uint8Array;
  const k = splitPoint(hashes.length);
  return nodeHash(await naiveRoot(hashes.slice(0, k)), await naiveRoot(hashes.slice(k)));
}

describe('RFC 6962 reference vectors', () => {
  it('gives the published tree head for every size 0..8', async () => {
    for (let n = 0; n <= 8; n++) {
      expect(toHex(await rootFromLeafHashes(leaves.slice(0, n)))).toBe(ROOTS_HEX[n]);
    }
  });

  it('generates and verifies the published inclusion proofs', async () => {
    for (const v of INCLUSION) {
      const proof = await inclusionProof(reader, v.index, v.size);
      expect(proof.map(toHex)).toEqual(v.proof);
      await verifyInclusion(
        leaves[v.index] as Uint8Array,
        v.index,
        v.size,
        proof,
        fromHex(ROOTS_HEX[v.size] ?? ''),
      );
    }
  });

  it('generates and verifies the published consistency proofs', async () => {
    for (const v of CONSISTENCY) {
      const proof = await consistencyProof(reader, v.first, v.second);
      expect(proof.map(toHex)).toEqual(v.proof);
      await verifyConsistency(
        v.first,
        v.second,
        fromHex(ROOTS_HEX[v.first] ?? ''),
        fromHex(ROOTS_HEX[v.second] ?? ''),
        proof,
      );
    }
  });
});

describe('every tree up to 64 leaves', () => {
  const N = 64;
  const all = Promise.all(
    Array.from({ length: N }, (_, i) => leafHash(new Uint8Array([i, i * 7]))),
  );

  it('agrees with the naive recursion and proves every inclusion', async () => {
    const hashes = await all;
    const read = subtreeReaderFromLeafHashes(hashes);
    for (let n = 1; n <= N; n++) {
      const tree = hashes.slice(0, n);
      const root = await rootFromLeafHashes(tree);
      expect(toHex(root)).toBe(toHex(await naiveRoot(tree)));
      for (let i = 0; i < n; i++) {
        const proof = await inclusionProof(read, i, n);
        const leaf = tree[i] as Uint8Array;
        await verifyInclusion(leaf, i, n, proof, root);
        // A wrong leaf, index or root, or any flipped bit in the proof: rejected.
        await rejects(
          verifyInclusion(hashes[(i + 1) % N] as Uint8Array, i, n, proof, root),
          'INVALID_PROOF',
        );
        if (n > 1) {
          const other = (i + 1) % n;
          await expect(verifyInclusion(leaf, other, n, proof, root)).rejects.toThrow();
        }
        for (let j = 0; j < proof.length; j++) {
          const bad = proof.map((p) => p.slice());
          (bad[j] as Uint8Array)[0] = ((bad[j] as Uint8Array)[0] ?? 0) ^ 1;
          await rejects(verifyInclusion(leaf, i, n, bad, root), 'INVALID_PROOF');
        }
        await rejects(verifyInclusion(leaf, i, n, [...proof, root], root), 'MALFORMED_PROOF');
        if (proof.length > 0) {
          await rejects(verifyInclusion(leaf, i, n, proof.slice(1), root), 'MALFORMED_PROOF');
        }
      }
    }
  });

  it('proves consistency for every (m, n) and rejects tampering', async () => {
    const hashes = await all;
    const read = subtreeReaderFromLeafHashes(hashes);
    const roots = [await rootFromLeafHashes([])];
    for (let n = 1; n <= N; n++) roots.push(await naiveRoot(hashes.slice(0, n)));
    for (let n = 1; n <= N; n++) {
      const newRoot = roots[n] as Uint8Array;
      for (let m = 1; m < n; m++) {
        const oldRoot = roots[m] as Uint8Array;
        const proof = await consistencyProof(read, m, n);
        await verifyConsistency(m, n, oldRoot, newRoot, proof);
        await rejects(
          verifyConsistency(m, n, roots[m - 1] as Uint8Array, newRoot, proof),
          'INVALID_PROOF',
        );
        await rejects(
          verifyConsistency(m, n, oldRoot, roots[n - 1] as Uint8Array, proof),
          'INVALID_PROOF',
        );
        for (let j = 0; j < proof.length; j++) {
          const bad = proof.map((p) => p.slice());
          (bad[j] as Uint8Array)[31] = ((bad[j] as Uint8Array)[31] ?? 0) ^ 0x80;
          await rejects(verifyConsistency(m, n, oldRoot, newRoot, bad), 'INVALID_PROOF');
        }
        await rejects(
          verifyConsistency(m, n, oldRoot, newRoot, [...proof, newRoot]),
          'MALFORMED_PROOF',
        );
        await expect(
          verifyConsistency(m, n, oldRoot, newRoot, proof.slice(0, -1)),
        ).rejects.toThrow();
      }
    }
  });
});

describe('edge cases', () => {
  const root = fromHex(ROOTS_HEX[8] ?? '');

  it('treats equal sizes and the empty tree by the rules', async () => {
    await verifyConsistency(8, 8, root, root, []);
    await verifyConsistency(0, 8, fromHex(ROOTS_HEX[0] ?? ''), root, []);
    await rejects(verifyConsistency(8, 8, root, fromHex(ROOTS_HEX[7] ?? ''), []), 'INCONSISTENT');
    await rejects(verifyConsistency(8, 8, root, root, [root]), 'MALFORMED_PROOF');
    await rejects(verifyConsistency(8, 7, root, root, [root]), 'INCONSISTENT');
    await rejects(verifyConsistency(0, 8, root, root, []), 'INVALID_PROOF');
    await rejects(verifyConsistency(2, 8, root, root, []), 'MALFORMED_PROOF');
    expect(await consistencyProof(reader, 0, 8)).toEqual([]);
    expect(await consistencyProof(reader, 8, 8)).toEqual([]);
  });

  it('rejects bad arguments and malformed hashes', async () => {
    await rejects(verifyInclusion(leaves[0] as Uint8Array, 8, 8, [], root), 'INVALID_ARGUMENT');
    await rejects(verifyInclusion(leaves[0] as Uint8Array, -1, 8, [], root), 'INVALID_ARGUMENT');
    await rejects(
      verifyInclusion(leaves[0] as Uint8Array, 0, 2 ** 53, [], root),
      'INVALID_ARGUMENT',
    );
    await rejects(verifyInclusion(new Uint8Array(31), 0, 8, [], root), 'MALFORMED_PROOF');
    await rejects(
      verifyInclusion(leaves[0] as Uint8Array, 0, 8, Array(54).fill(root) as Uint8Array[], root),
      'MALFORMED_PROOF',
    );
    await rejects(inclusionProof(reader, 8, 8), 'INVALID_ARGUMENT');
    await rejects(consistencyProof(reader, 5, 4), 'INVALID_ARGUMENT');
  });

  it('splits at the largest power of two below n, not the midpoint', () => {
    expect([2, 3, 5, 6, 8, 9, 1000, 2 ** 40 + 1].map(splitPoint)).toEqual([
      1,
      2,
      4,
      4,
      4,
      8,
      512,
      2 ** 40,
    ]);
  });

  it('verifies a proof in a tree above 2^32 leaves (no 32-bit arithmetic)', async () => {
    // Tree of 2^33 + 1 leaves, leaf 2^33: its only sibling is the left 2^33 subtree.
    const left = fromHex(ROOTS_HEX[8] ?? '');
    const leaf = leaves[1] as Uint8Array;
    const head = await nodeHash(left, leaf);
    await verifyInclusion(leaf, 2 ** 33, 2 ** 33 + 1, [left], head);
    await rejects(verifyInclusion(leaf, 2 ** 33 - 1, 2 ** 33 + 1, [left], head), 'MALFORMED_PROOF');
  });
});
