import { expect } from 'vitest';
import { toHex } from '@cairn/verify/encoding';

/**
 * Exact equality of two byte arrays, fast for megabytes (toEqual walks them element by element
 * and takes seconds). On a difference it reports the first differing offset and the bytes
 * around it, which is what one needs to debug a codec.
 */
export function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  const n = Math.min(actual.length, expected.length);
  let i = 0;
  while (i < n && actual[i] === expected[i]) i++;
  if (i === n && actual.length === expected.length) return;
  const around = (bytes: Uint8Array) => toHex(bytes.subarray(Math.max(0, i - 8), i + 8));
  expect({ length: actual.length, firstDifference: i, around: around(actual) }).toEqual({
    length: expected.length,
    firstDifference: n === i ? Math.max(actual.length, expected.length) : -1,
    around: around(expected),
  });
}
