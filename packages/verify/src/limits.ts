/**
 * Every hard limit of the verification core, with the reason beside each number.
 * Defaults follow python-tuf's UpdaterConfig where it has one, so our client is neither
 * stricter nor laxer than the reference client on the same repository.
 */
export interface UpdaterLimits {
  /** Root versions fetched in one update. Caps the work an attacker can force by serving
   * an endless chain of roots; a real repository rotates root a few times a year. */
  readonly maxRootRotations: number;
  /** Delegated roles visited in one target search (spec 5.6.7.1): bounds bandwidth and time
   * spent in a delegation graph crafted to be wide or deep. */
  readonly maxDelegations: number;
  /** Bytes fetched for any root version. Root lists keys for four roles; 512 kB is ~1000
   * keys, far beyond any real root. */
  readonly rootMaxLength: number;
  /** Bytes fetched for timestamp.json, whose size is not known in advance (spec 5.4.1).
   * A timestamp names one file: a few hundred bytes plus signatures. */
  readonly timestampMaxLength: number;
  /** Bytes fetched for snapshot when the timestamp does not give its length (spec 5.5.1).
   * Snapshot lists every targets role; 2 MB fits ~20 000 delegated roles. */
  readonly snapshotMaxLength: number;
  /** Bytes fetched for any targets role when snapshot does not give its length (spec 5.6.1).
   * 5 MB fits ~20 000 target entries with two hashes each. */
  readonly targetsMaxLength: number;
}

export const DEFAULT_LIMITS: UpdaterLimits = Object.freeze({
  maxRootRotations: 256,
  maxDelegations: 32,
  rootMaxLength: 512_000,
  timestampMaxLength: 16_384,
  snapshotMaxLength: 2_000_000,
  targetsMaxLength: 5_000_000,
});

/** Deepest nesting accepted in a metadata JSON document. Real metadata nests about 6 levels;
 * the cap stops a stack-exhausting document before it reaches the parser's recursion. */
export const MAX_JSON_DEPTH = 64;

/** Largest `bit_length` of succinct hash bin delegations: bins are numbered by the first
 * 32 bits of a sha256, as python-tuf and the TAP 15 text do. */
export const MAX_SUCCINCT_BIT_LENGTH = 32;
