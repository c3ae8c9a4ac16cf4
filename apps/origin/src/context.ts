/**
 * What every origin operation receives: the store, the online signers, the policy, the log,
 * the clock. Nothing is global, so tests run several origins over one store in one process.
 */
import type { BlobStore } from '@cairn/storage/blob-store';
import type { Signer } from '@cairn/verify/signer';
import type { RootChain } from './repository.js';
import type { TransparencyLog } from './transparency-log.js';

export interface Policy {
  readonly expiry: {
    readonly root: number;
    readonly targets: number;
    readonly snapshot: number;
    readonly timestamp: number;
  };
  /** Re-sign when less than this many milliseconds remain. */
  readonly refreshBefore: { readonly snapshot: number; readonly timestamp: number };
  /** Report targets metadata as nearing expiry when less than this remains. */
  readonly targetsWarning: number;
  readonly deltas: { readonly pastVersions: number; readonly maxFileBytes: number };
  readonly retention: { readonly releases: number; readonly graceSeconds: number };
  readonly limits: {
    readonly maxFiles: number;
    readonly maxFileBytes: number;
    readonly maxReleaseBytes: number;
    readonly maxNameBytes: number;
  };
}

/** The steps of a publication, in order; a test hook can stop the process at each. */
export const PUBLICATION_STEPS = [
  'planned',
  'blobs',
  'metadata',
  'log',
  'root',
  'timestamp',
  'cleaned',
] as const;
export type PublicationStep = (typeof PUBLICATION_STEPS)[number];

export interface OriginContext {
  readonly store: BlobStore;
  readonly roots: RootChain;
  /** The online keys this origin holds; each signs when the root lists it for its role. */
  readonly online: { readonly snapshot: readonly Signer[]; readonly timestamp: readonly Signer[] };
  readonly policy: Policy;
  /** The transparency log every publication is appended to (when the root declares one). */
  readonly log: TransparencyLog;
  now(): Date;
  /** Called after each publication step completes. */
  readonly onStep?: ((step: PublicationStep, snapshotVersion: number) => void) | undefined;
}
