/**
 * Builders for every role, for the repository side (the origin, tests, demos). They make
 * plain model objects; signing is `signMetadata`, merging co-signatures `mergeSignatures`.
 */
import { toHex } from './encoding.js';
import { digest, type HashAlgorithm, type HashPort } from './hash.js';
import type { Key } from './keys.js';
import {
  Delegations,
  MetaFile,
  Metadata,
  Role,
  Root,
  SPEC_VERSION,
  Snapshot,
  TargetFile,
  Targets,
  Timestamp,
  type TopLevelRole,
  type DelegatedRole,
  type SuccinctRoles,
} from './metadata.js';
import { signMetadata, type Signer } from './signer.js';

export interface RoleSpec {
  /** The keys (by keyid) that may sign for the role. */
  readonly keys: readonly { readonly keyid: string; readonly publicKey: Key }[];
  readonly threshold: number;
}

interface Common {
  readonly version?: number;
  readonly expires: Date;
}

function common(c: Common) {
  return { specVersion: SPEC_VERSION, version: c.version ?? 1, expires: c.expires };
}

export function buildRoot(
  spec: Common & {
    readonly consistentSnapshot?: boolean;
    readonly roles: Readonly<Record<TopLevelRole, RoleSpec>>;
  },
): Root {
  const keys = new Map<string, Key>();
  const roles = {} as Record<TopLevelRole, Role>;
  for (const name of ['root', 'timestamp', 'snapshot', 'targets'] as const) {
    const role = spec.roles[name];
    for (const k of role.keys) keys.set(k.keyid, k.publicKey);
    roles[name] = new Role(
      role.keys.map((k) => k.keyid),
      role.threshold,
    );
  }
  return new Root({
    ...common(spec),
    consistentSnapshot: spec.consistentSnapshot ?? true,
    keys,
    roles,
  });
}

export function buildTimestamp(spec: Common & { readonly snapshot: MetaFile }): Timestamp {
  return new Timestamp({ ...common(spec), snapshotMeta: spec.snapshot });
}

export function buildSnapshot(
  spec: Common & { readonly meta: Readonly<Record<string, MetaFile>> },
): Snapshot {
  return new Snapshot({ ...common(spec), meta: new Map(Object.entries(spec.meta)) });
}

export function buildTargets(
  spec: Common & {
    readonly targets?: readonly TargetFile[];
    readonly delegations?:
      | {
          readonly keys: readonly { readonly keyid: string; readonly publicKey: Key }[];
          readonly roles?: readonly DelegatedRole[] | undefined;
          readonly succinctRoles?: SuccinctRoles | undefined;
        }
      | undefined;
  },
): Targets {
  const d = spec.delegations;
  return new Targets({
    ...common(spec),
    targets: new Map((spec.targets ?? []).map((t) => [t.path, t])),
    delegations:
      d === undefined
        ? undefined
        : new Delegations({
            keys: new Map(d.keys.map((k) => [k.keyid, k.publicKey])),
            roles: d.roles,
            succinctRoles: d.succinctRoles,
          }),
  });
}

/** Describes a file's bytes as a target: its length and hashes. */
export async function describeTarget(
  hash: HashPort,
  path: string,
  bytes: Uint8Array,
  options: { algorithms?: readonly HashAlgorithm[]; custom?: unknown } = {},
): Promise<TargetFile> {
  const hashes: Record<string, string> = {};
  for (const alg of options.algorithms ?? ['sha256'])
    hashes[alg] = toHex(await digest(hash, alg, bytes));
  return new TargetFile({ path, length: bytes.length, hashes, custom: options.custom });
}

/** Describes serialized metadata for timestamp or snapshot: version, and optionally length and hashes. */
export async function describeMetadata(
  hash: HashPort,
  version: number,
  bytes: Uint8Array,
  options: { length?: boolean; hashes?: boolean } = {},
): Promise<MetaFile> {
  return new MetaFile({
    version,
    length: options.length === true ? bytes.length : undefined,
    hashes:
      options.hashes === true ? { sha256: toHex(await digest(hash, 'sha256', bytes)) } : undefined,
  });
}

/** Wraps a signed part into metadata signed by `signers`. */
export async function signNew<T extends Root | Timestamp | Snapshot | Targets>(
  signed: T,
  signers: readonly Signer[],
): Promise<Metadata<T>> {
  return signMetadata(new Metadata(signed), signers);
}
