/**
 * Where everything lives in the store, in one place. The public prefix is what the edge
 * serves; the private prefix (`_origin/`) is the origin's own state and is never served.
 *
 *   metadata/{N}.root.json, metadata/root.json (a convenience copy of the newest)
 *   metadata/{V}.targets.json, metadata/{V}.snapshot.json, metadata/timestamp.json
 *   targets/{dir/}{sha256}.{basename}                 (TUF consistent-snapshot target names)
 *   log/checkpoint                                    the transparency log's signed checkpoint
 *   log/tile/{L}/{N}[.p/{W}], log/tile/entries/...    its tiles and entry bundles (C2SP tlog-tiles)
 *   _origin/releases/{id}/release.json                the manifest and state of a release
 *   _origin/releases/{id}/files/{index}               staged uploads
 *   _origin/releases/{id}/files/{index}.json          written once the upload's hash checked out
 *   _origin/releases/{id}/deltas/{index}-{base}       staged deltas, and {index}.json listing them
 *   _origin/releases/{id}/draft.json                  the draft targets metadata, unsigned
 *   _origin/releases/{id}/published.json              written when the release is published
 *   _origin/releases/{id}/signatures/{keyid}.json     one publisher's signature over the draft
 *   _origin/draft.json                                which release is the current draft
 *   _origin/publications/{snapshot version}.json      a publication's plan, written before it starts
 *   _origin/pending-root.json                         a signed root waiting for its release
 *   _origin/nonces/{window}/{keyid}.{nonce}           request nonces seen, for replay refusal
 *   _origin/audit/{yyyy}/{mm}/{dd}/{time}-{rand}.json audit events
 *   _origin/log/lock.json                             the log's append lease, shared by all instances
 */
export const PRIVATE_PREFIX = '_origin/';

/** Target names under this directory are the origin's deltas; publishers may not use it. */
export const DELTA_DIRECTORY = '_delta';

export const metadataKey = (file: string): string => `metadata/${file}`;
export const versionedRootKey = (version: number): string => `metadata/${version}.root.json`;
export const versionedKey = (role: 'targets' | 'snapshot', version: number): string =>
  `metadata/${version}.${role}.json`;
export const TIMESTAMP_KEY = 'metadata/timestamp.json';

/** The role and version a versioned metadata key names (`metadata/3.targets.json`). */
export function parseVersionedKey(key: string): { role: string; version: number } | undefined {
  const match = /^metadata\/([1-9][0-9]*)\.(.+)\.json$/.exec(key);
  const [, version, role] = match ?? [];
  return version === undefined || role === undefined
    ? undefined
    : { role, version: Number(version) };
}
export const ROOT_COPY_KEY = 'metadata/root.json';

/** The consistent-snapshot name of a target: the hash prefixes the file's base name. */
export function targetBlobKey(path: string, sha256: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0
    ? `targets/${sha256}.${path}`
    : `targets/${path.slice(0, slash)}/${sha256}.${path.slice(slash + 1)}`;
}

export const releasePrefix = (id: string): string => `${PRIVATE_PREFIX}releases/${id}/`;
export const releaseKey = (id: string): string => `${releasePrefix(id)}release.json`;
export const stagedFileKey = (id: string, index: number): string =>
  `${releasePrefix(id)}files/${index}`;
export const stagedDeltaKey = (id: string, index: number, baseSha256: string): string =>
  `${releasePrefix(id)}deltas/${index}-${baseSha256}`;
export const stagedDeltaMarkerKey = (id: string, index: number): string =>
  `${releasePrefix(id)}deltas/${index}.json`;
export const releaseDraftKey = (id: string): string => `${releasePrefix(id)}draft.json`;
export const publishedMarkerKey = (id: string): string => `${releasePrefix(id)}published.json`;
export const uploadMarkerKey = (id: string, index: number): string =>
  `${releasePrefix(id)}files/${index}.json`;
export const signaturePrefix = (id: string): string => `${releasePrefix(id)}signatures/`;
export const signatureKey = (id: string, keyid: string): string =>
  `${signaturePrefix(id)}${keyid}.json`;
export const DRAFT_POINTER_KEY = `${PRIVATE_PREFIX}draft.json`;
export const PUBLICATIONS_PREFIX = `${PRIVATE_PREFIX}publications/`;
export const publicationKey = (snapshotVersion: number): string =>
  `${PUBLICATIONS_PREFIX}${String(snapshotVersion).padStart(12, '0')}.json`;
export const PENDING_ROOT_KEY = `${PRIVATE_PREFIX}pending-root.json`;
export const NONCES_PREFIX = `${PRIVATE_PREFIX}nonces/`;
export const AUDIT_PREFIX = `${PRIVATE_PREFIX}audit/`;
/** The transparency log, public: every mirror serves it. */
export const LOG_PREFIX = 'log/';
export const LOG_CHECKPOINT_KEY = `${LOG_PREFIX}checkpoint`;
export const LOG_LOCK_KEY = `${PRIVATE_PREFIX}log/lock.json`;
