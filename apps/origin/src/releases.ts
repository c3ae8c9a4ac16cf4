/**
 * Releases, from push to publication: a manifest, streamed uploads checked against it,
 * deltas, a draft targets metadata, publishers' signatures over that draft, and — once a
 * threshold of them verifies — publication.
 *
 * Everything lives in the store under the release's private prefix, so any origin instance
 * can take any step, and nothing of a release is visible to clients until it is published.
 */
import { createHash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { isStorageError } from '@cairn/storage/errors';
import { canonicalize } from '@cairn/verify/canonical-json';
import { checkTargetPath } from '@cairn/verify/names';
import { Metadata, TargetFile, Targets, verifyDelegate, type Root } from '@cairn/verify/metadata';
import type { OriginContext } from './context.js';
import {
  deltaBases,
  deltaTargetFile,
  deltaTargetPath,
  isDeltaPath,
  makeDeltas,
  type DeltaRecord,
} from './deltas.js';
import { OriginError, isOriginError } from './errors.js';
import {
  DELTA_DIRECTORY,
  DRAFT_POINTER_KEY,
  PENDING_ROOT_KEY,
  publishedMarkerKey,
  releaseDraftKey,
  releaseKey,
  signatureKey,
  signaturePrefix,
  stagedDeltaKey,
  stagedDeltaMarkerKey,
  stagedFileKey,
  targetBlobKey,
  uploadMarkerKey,
} from './layout.js';
import {
  publish,
  recoverPublications,
  type PlannedBlob,
  type PublicationPlan,
} from './publication.js';
import {
  readHead,
  readPendingRoot,
  readTargets,
  targetsVersionOf,
  type Head,
} from './repository.js';
import { deleteKey, listAll, readJson, sha256Hex, storage, writeJson } from './store-io.js';

export interface ReleaseFile {
  readonly path: string;
  readonly length: number;
  readonly sha256: string;
}

export interface ReleaseRecord {
  readonly format: 1;
  readonly id: string;
  readonly created: string;
  readonly pushedBy: string;
  /** `withdraw`: re-publishes the content of `fromVersion`; nothing is uploaded. */
  readonly kind: 'upload' | 'withdraw';
  readonly fromVersion?: number | undefined;
  readonly note?: string | undefined;
  readonly files: readonly (ReleaseFile & { readonly index: number })[];
}

interface UploadMarker {
  readonly sha256: string;
  readonly length: number;
  readonly etag: string;
}

export interface DraftRecord {
  readonly id: string;
  readonly targetsVersion: number;
  /** sha256 of the canonical signed bytes: what publishers sign. */
  readonly draftSha256: string;
  /** The unsigned targets metadata, as JSON. */
  readonly metadata: unknown;
  readonly blobs: readonly PlannedBlob[];
  readonly deltas: readonly DeltaRecord[];
  readonly created: string;
}

interface DraftPointer {
  readonly id: string;
  readonly targetsVersion: number;
  readonly draftSha256: string;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

function newReleaseId(now: Date): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const random = createHash('sha256')
    .update(crypto.getRandomValues(new Uint8Array(16)))
    .digest('hex')
    .slice(0, 8);
  return `${stamp}-${random}`;
}

const RELEASE_ID = /^\d{8}T\d{6}Z-[0-9a-f]{8}$/;

export function checkReleaseId(id: string): void {
  if (!RELEASE_ID.test(id)) {
    throw new OriginError('NOT_FOUND', `no release ${JSON.stringify(id)}: not a release id`);
  }
}

function checkFields(
  obj: Record<string, unknown>,
  allowed: readonly string[],
  where: string,
): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw new OriginError('UNKNOWN_FIELD', `${where}.${key}: unknown field`);
    }
  }
}

function asRecord(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new OriginError('MALFORMED', `${where}: expected an object`);
  }
  return value as Record<string, unknown>;
}

/** Checks a publisher's file list: names, sizes, hashes, limits. */
export function checkManifest(ctx: OriginContext, value: unknown): ReleaseFile[] {
  const { limits } = ctx.policy;
  if (!Array.isArray(value)) throw new OriginError('MALFORMED', 'files: expected an array');
  if (value.length === 0) {
    throw new OriginError('EMPTY_RELEASE', 'files: a release needs at least one file');
  }
  if (value.length > limits.maxFiles) {
    throw new OriginError(
      'TOO_LARGE',
      `files: ${value.length} files, the limit is ${limits.maxFiles}`,
    );
  }
  const files: ReleaseFile[] = [];
  const names = new Set<string>();
  let total = 0;
  value.forEach((item, i) => {
    const where = `files[${i}]`;
    const obj = asRecord(item, where);
    checkFields(obj, ['path', 'length', 'sha256'], where);
    const { path, length, sha256 } = obj;
    if (typeof path !== 'string')
      throw new OriginError('MALFORMED', `${where}.path: expected a string`);
    checkName(path, `${where}.path`, limits.maxNameBytes);
    if (names.has(path)) {
      throw new OriginError(
        'DUPLICATE_NAME',
        `${where}.path: ${JSON.stringify(path)} appears twice`,
      );
    }
    names.add(path);
    if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) {
      throw new OriginError('MALFORMED', `${where}.length: expected a whole number of bytes`);
    }
    if (length > limits.maxFileBytes) {
      throw new OriginError(
        'TOO_LARGE',
        `${where}: ${path} is ${length} bytes, the limit is ${limits.maxFileBytes}`,
      );
    }
    total += length;
    if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) {
      throw new OriginError('MALFORMED', `${where}.sha256: expected 64 lowercase hex digits`);
    }
    files.push({ path, length, sha256 });
  });
  if (total > limits.maxReleaseBytes) {
    throw new OriginError(
      'TOO_LARGE',
      `the release is ${total} bytes, the limit is ${limits.maxReleaseBytes}`,
    );
  }
  // A name that is another's directory cannot be installed: one would overwrite the other.
  for (const name of names) {
    const parts = name.split('/');
    for (let k = 1; k < parts.length; k++) {
      const dir = parts.slice(0, k).join('/');
      if (names.has(dir)) {
        throw new OriginError(
          'INVALID_NAME',
          `${JSON.stringify(dir)} is both a file and the directory of ${JSON.stringify(name)}`,
        );
      }
    }
  }
  return files;
}

function checkName(path: string, where: string, maxBytes: number): void {
  try {
    checkTargetPath(path, where);
  } catch (error) {
    throw new OriginError(
      'INVALID_NAME',
      `${where}: ${JSON.stringify(path)} must be a relative path without empty, "." or ".." segments, backslashes or control characters`,
      { cause: error },
    );
  }
  if (path === DELTA_DIRECTORY || path.startsWith(`${DELTA_DIRECTORY}/`)) {
    throw new OriginError('INVALID_NAME', `${where}: ${DELTA_DIRECTORY}/ is reserved for deltas`);
  }
  if (new TextEncoder().encode(path).length > maxBytes) {
    throw new OriginError('INVALID_NAME', `${where}: longer than ${maxBytes} bytes`);
  }
}

export async function readRelease(ctx: OriginContext, id: string): Promise<ReleaseRecord> {
  checkReleaseId(id);
  const found = await readJson<ReleaseRecord>(ctx.store, releaseKey(id));
  if (found === undefined) throw new OriginError('NOT_FOUND', `no release ${id}`);
  return found.value;
}

async function readDraft(ctx: OriginContext, id: string): Promise<DraftRecord | undefined> {
  return (await readJson<DraftRecord>(ctx.store, releaseDraftKey(id)))?.value;
}

async function readPointer(ctx: OriginContext): Promise<DraftPointer | undefined> {
  return (await readJson<DraftPointer>(ctx.store, DRAFT_POINTER_KEY))?.value;
}

/** POST /v1/releases: a new release from a manifest, or a withdrawal to an earlier version. */
export async function createRelease(
  ctx: OriginContext,
  actor: string,
  body: unknown,
): Promise<ReleaseRecord> {
  const obj = asRecord(body, 'request');
  checkFields(obj, ['files', 'note', 'withdrawTo'], 'request');
  const note = obj.note;
  if (note !== undefined && (typeof note !== 'string' || note.length > 1000)) {
    throw new OriginError(
      'MALFORMED',
      'request.note: expected a string of at most 1000 characters',
    );
  }
  const now = ctx.now();
  const id = newReleaseId(now);
  let record: ReleaseRecord;
  if (obj.withdrawTo !== undefined) {
    if (obj.files !== undefined) {
      throw new OriginError('MALFORMED', 'request: give files or withdrawTo, not both');
    }
    const version = obj.withdrawTo;
    if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
      throw new OriginError('MALFORMED', 'request.withdrawTo: expected a targets version');
    }
    const targets = await readTargets(ctx.store, version);
    if (targets === undefined) {
      throw new OriginError('NOT_FOUND', `no published targets version ${version}`);
    }
    const files = [...targets.signed.targets.values()]
      .filter((t) => !isDeltaPath(t.path))
      .map((t, index) => ({
        path: t.path,
        length: t.length,
        sha256: t.hashes.sha256 ?? '',
        index,
      }));
    for (const file of files) {
      const info = await storage(`checking ${file.path}`, () =>
        ctx.store.head(targetBlobKey(file.path, file.sha256)),
      );
      if (info === undefined) {
        throw new OriginError(
          'NOT_FOUND',
          `${file.path} of targets version ${version} has been garbage-collected; push its files instead`,
        );
      }
    }
    record = {
      format: 1,
      id,
      created: now.toISOString(),
      pushedBy: actor,
      kind: 'withdraw',
      fromVersion: version,
      note: typeof note === 'string' ? note : undefined,
      files,
    };
  } else {
    const files = checkManifest(ctx, obj.files);
    record = {
      format: 1,
      id,
      created: now.toISOString(),
      pushedBy: actor,
      kind: 'upload',
      note: typeof note === 'string' ? note : undefined,
      files: files.map((f, index) => ({ ...f, index })),
    };
  }
  await writeJson(ctx.store, releaseKey(id), record, { ifNoneMatch: '*' });
  return record;
}

/** Hashes and counts bytes on their way to storage; refuses more than `limit`. */
class Tally extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  readonly #limit: number;
  tooLong = false;

  constructor(limit: number) {
    super();
    this.#limit = limit;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.#limit) {
      this.tooLong = true;
      callback(new OriginError('LENGTH_MISMATCH', `more than the declared ${this.#limit} bytes`));
      return;
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }
}

/** In-flight delta work of this process, so `complete` can wait for it. */
const deltaWork = new Map<string, Promise<DeltaRecord[]>>();

/** PUT /v1/releases/:id/files/:index: streams one file into staging, checking it. */
export async function uploadFile(
  ctx: OriginContext,
  id: string,
  index: number,
  body: ReadableStream<Uint8Array>,
): Promise<{ path: string; sha256: string; length: number }> {
  const release = await readRelease(ctx, id);
  const file = release.files.find((f) => f.index === index);
  if (release.kind !== 'upload' || file === undefined) {
    throw new OriginError('NOT_FOUND', `release ${id} has no file number ${index}`);
  }
  if ((await readDraft(ctx, id)) !== undefined) {
    throw new OriginError('RELEASE_STATE', `release ${id} is complete: its files are fixed`);
  }
  const key = stagedFileKey(id, index);
  const tally = new Tally(file.length);
  const source = Readable.fromWeb(body);
  const piped = source.pipe(tally);
  source.on('error', (e) => tally.destroy(e));
  let info;
  try {
    info = await storage(`staging ${file.path}`, () =>
      ctx.store.put(key, Readable.toWeb(piped) as ReadableStream<Uint8Array>, {
        contentLength: file.length,
        contentType: 'application/octet-stream',
      }),
    );
  } catch (error) {
    await deleteKey(ctx.store, key).catch(() => undefined);
    if (tally.tooLong) {
      throw new OriginError(
        'LENGTH_MISMATCH',
        `${file.path}: more than the declared ${file.length} bytes were sent`,
        { cause: error },
      );
    }
    if (tally.bytes < file.length && !isOriginError(error, 'STORAGE_UNAVAILABLE')) {
      throw new OriginError(
        'LENGTH_MISMATCH',
        `${file.path}: the upload ended after ${tally.bytes} of ${file.length} bytes`,
        { cause: error },
      );
    }
    throw error;
  }
  const sha256 = tally.hash.digest('hex');
  if (tally.bytes !== file.length || sha256 !== file.sha256 || info.size !== file.length) {
    await deleteKey(ctx.store, key);
    throw new OriginError(
      tally.bytes !== file.length ? 'LENGTH_MISMATCH' : 'HASH_MISMATCH',
      tally.bytes !== file.length
        ? `${file.path}: received ${tally.bytes} bytes, the manifest says ${file.length}`
        : `${file.path}: received bytes with sha256 ${sha256}, the manifest says ${file.sha256}`,
    );
  }
  const marker: UploadMarker = { sha256, length: file.length, etag: info.etag };
  await writeJson(ctx.store, uploadMarkerKey(id, index), marker);
  // Overlap delta work with the remaining uploads; complete() waits for it.
  const work = stageDeltas(ctx, release, file);
  work.catch(() => undefined);
  deltaWork.set(`${id}/${index}`, work);
  return { path: file.path, sha256, length: file.length };
}

async function stageDeltas(
  ctx: OriginContext,
  release: ReleaseRecord,
  file: ReleaseRecord['files'][number],
): Promise<DeltaRecord[]> {
  const marker = stagedDeltaMarkerKey(release.id, file.index);
  const done = await readJson<DeltaRecord[]>(ctx.store, marker);
  if (done !== undefined) return done.value;
  const head = await readHead(ctx.store, ctx.roots);
  const bases = await deltaBases(ctx, head.published?.targets, file.path, file.sha256);
  const source =
    release.kind === 'upload'
      ? stagedFileKey(release.id, file.index)
      : targetBlobKey(file.path, file.sha256);
  const records = await makeDeltas(ctx, file, source, bases, (base) =>
    stagedDeltaKey(release.id, file.index, base),
  );
  await writeJson(ctx.store, marker, records);
  return records;
}

/** POST /v1/releases/:id/complete: all files are in; make the draft and make it current. */
export async function completeRelease(ctx: OriginContext, id: string): Promise<DraftRecord> {
  const release = await readRelease(ctx, id);
  const existing = await readDraft(ctx, id);
  if (existing !== undefined) return existing;
  if (release.kind === 'upload') {
    const missing: string[] = [];
    for (const file of release.files) {
      const marker = await readJson<UploadMarker>(ctx.store, uploadMarkerKey(id, file.index));
      if (marker === undefined) missing.push(file.path);
    }
    if (missing.length > 0) {
      throw new OriginError(
        'RELEASE_STATE',
        `release ${id} is missing ${missing.length} file(s): ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}`,
      );
    }
  }
  const deltas: DeltaRecord[] = [];
  for (const file of release.files) {
    const inFlight = deltaWork.get(`${id}/${file.index}`);
    deltaWork.delete(`${id}/${file.index}`);
    deltas.push(
      ...((await inFlight?.catch(() => undefined)) ?? (await stageDeltas(ctx, release, file))),
    );
  }
  const head = await readHead(ctx.store, ctx.roots);
  const now = ctx.now();
  const targetFiles = [
    ...release.files.map(
      (f) => new TargetFile({ path: f.path, length: f.length, hashes: { sha256: f.sha256 } }),
    ),
    ...deltas.map(deltaTargetFile),
  ];
  const targetsVersion = targetsVersionOf(head) + 1;
  const targets = new Targets({
    specVersion: head.root.signed.specVersion,
    version: targetsVersion,
    expires: new Date(Math.floor((now.getTime() + ctx.policy.expiry.targets) / 1000) * 1000),
    extra: {},
    targets: new Map(targetFiles.map((t) => [t.path, t])),
  });
  const metadata = new Metadata(targets);
  const blobs: PlannedBlob[] = [
    ...(release.kind === 'upload'
      ? release.files.map((f) => ({
          from: stagedFileKey(id, f.index),
          to: targetBlobKey(f.path, f.sha256),
          length: f.length,
        }))
      : []),
    ...deltas.map((d) => ({
      from: d.key,
      to: targetBlobKey(deltaTargetPath(d.path, d.base.sha256), d.sha256),
      length: d.length,
    })),
  ];
  const draft: DraftRecord = {
    id,
    targetsVersion,
    draftSha256: sha256Hex(metadata.signedBytes()),
    metadata: metadata.toJSON(),
    blobs,
    deltas,
    created: now.toISOString(),
  };
  await writeJson(ctx.store, releaseDraftKey(id), draft);
  // The newest complete release is the one to sign; an older unsigned draft is superseded.
  await writeJson(ctx.store, DRAFT_POINTER_KEY, {
    id,
    targetsVersion,
    draftSha256: draft.draftSha256,
  } satisfies DraftPointer);
  return draft;
}

export function draftMetadata(draft: DraftRecord): Metadata<Targets> {
  const bytes = new TextEncoder().encode(JSON.stringify(draft.metadata));
  return Metadata.fromBytes(bytes, 'targets', 'draft');
}

/** The root that approvals are checked against: a pending root (a key change waiting for its
 * release) wins over the published one. */
export async function effectiveRoot(ctx: OriginContext): Promise<Metadata<Root>> {
  return (await readPendingRoot(ctx.store))?.root ?? (await ctx.roots.newest());
}

interface StoredSignature {
  readonly keyid: string;
  readonly sig: string;
  readonly draftSha256: string;
  readonly time: string;
}

async function collectedSignatures(ctx: OriginContext, id: string): Promise<StoredSignature[]> {
  const objects = await listAll(ctx.store, signaturePrefix(id));
  const signatures: StoredSignature[] = [];
  for (const object of objects) {
    const found = await readJson<StoredSignature>(ctx.store, object.key);
    if (found !== undefined) signatures.push(found.value);
  }
  return signatures;
}

/** The draft with every collected signature that verifies under `root`, and how many count. */
async function approvedDraft(
  ctx: OriginContext,
  draft: DraftRecord,
  root: Root,
): Promise<{ metadata: Metadata<Targets>; valid: string[] }> {
  const unsigned = draftMetadata(draft);
  const role = root.roles.targets;
  const valid: string[] = [];
  const signatures = [];
  for (const s of await collectedSignatures(ctx, draft.id)) {
    if (s.draftSha256 !== draft.draftSha256 || !role.keyids.includes(s.keyid)) continue;
    const key = root.keys.get(s.keyid);
    if (key !== undefined && (await key.verify(s.sig, unsigned.signedBytes()))) {
      valid.push(s.keyid);
      signatures.push({ keyid: s.keyid, sig: s.sig });
    }
  }
  return { metadata: unsigned.withSignatures(signatures), valid };
}

export interface SignatureResult {
  /** False when this publisher's signature was already counted. */
  readonly counted: boolean;
  readonly signatures: number;
  readonly threshold: number;
  readonly published?:
    { readonly targetsVersion: number; readonly snapshotVersion: number } | undefined;
}

/** POST /v1/releases/:id/signatures: one publisher's approval of the current draft. */
export async function addSignature(
  ctx: OriginContext,
  actor: string,
  id: string,
  body: unknown,
): Promise<SignatureResult> {
  const obj = asRecord(body, 'request');
  checkFields(obj, ['keyid', 'sig', 'draftSha256'], 'request');
  const { keyid, sig, draftSha256 } = obj;
  if (typeof keyid !== 'string' || typeof sig !== 'string' || typeof draftSha256 !== 'string') {
    throw new OriginError('MALFORMED', 'request: keyid, sig and draftSha256 must be strings');
  }
  if (keyid !== actor) {
    throw new OriginError(
      'MALFORMED',
      'request.keyid: publishers sign with the key they authenticate with',
    );
  }
  const draft = await readDraft(ctx, id);
  if (draft === undefined) {
    await readRelease(ctx, id);
    throw new OriginError('RELEASE_STATE', `release ${id} is not complete yet: nothing to sign`);
  }
  const published = await readJson<{ targetsVersion: number; snapshotVersion: number }>(
    ctx.store,
    publishedMarkerKey(id),
  );
  const pointer = await readPointer(ctx);
  if (published === undefined && (pointer?.id !== id || draft.draftSha256 !== draftSha256)) {
    throw new OriginError(
      'STALE_DRAFT',
      pointer?.id !== id
        ? `release ${id} is not the current draft${pointer === undefined ? '' : ` (${pointer.id} is)`}`
        : `the signature is over draft ${draftSha256.slice(0, 16)}, the current draft is ${draft.draftSha256.slice(0, 16)}`,
    );
  }
  const root = (await effectiveRoot(ctx)).signed;
  const key = root.keys.get(keyid);
  const unsigned = draftMetadata(draft);
  if (
    draftSha256 !== draft.draftSha256 ||
    key === undefined ||
    !(await key.verify(sig, unsigned.signedBytes()))
  ) {
    throw new OriginError('INVALID_SIGNATURE', `the signature does not verify over draft ${id}`);
  }
  let counted = true;
  try {
    await writeJson(
      ctx.store,
      signatureKey(id, keyid),
      { keyid, sig, draftSha256, time: ctx.now().toISOString() } satisfies StoredSignature,
      { ifNoneMatch: '*' },
    );
  } catch (error) {
    if (!isStorageError(error, 'PRECONDITION_FAILED')) throw error;
    counted = false;
  }
  const threshold = root.roles.targets.threshold;
  if (published !== undefined) {
    return { counted: false, signatures: threshold, threshold, published: published.value };
  }
  const { valid } = await approvedDraft(ctx, draft, root);
  if (valid.length < threshold) return { counted, signatures: valid.length, threshold };
  let versions: { targetsVersion: number; snapshotVersion: number };
  try {
    const plan = await publishRelease(ctx, id);
    versions = { targetsVersion: plan.targetsVersion, snapshotVersion: plan.snapshotVersion };
  } catch (error) {
    const meanwhile = isOriginError(error, 'STALE_DRAFT')
      ? await publishedMeanwhile(ctx, id)
      : undefined;
    if (meanwhile === undefined) throw error;
    versions = meanwhile;
  }
  return { counted, signatures: valid.length, threshold, published: versions };
}

/**
 * After publishRelease refused release `id` as STALE_DRAFT: whether it was published meanwhile
 * (by another signature's request, on any instance, or by the recovery `publish` runs first),
 * and as which versions.
 */
export async function publishedMeanwhile(
  ctx: OriginContext,
  id: string,
): Promise<{ targetsVersion: number; snapshotVersion: number } | undefined> {
  // Its plan may be visible to clients but not marked yet: recovery marks it.
  await recoverPublications(ctx);
  const marker = await readJson<{ targetsVersion: number; snapshotVersion: number }>(
    ctx.store,
    publishedMarkerKey(id),
  );
  return marker === undefined
    ? undefined
    : {
        targetsVersion: marker.value.targetsVersion,
        snapshotVersion: marker.value.snapshotVersion,
      };
}

/**
 * Publishes release `id` if its draft has a threshold of signatures. Idempotent: a release
 * already published returns its versions.
 */
export async function publishRelease(ctx: OriginContext, id: string): Promise<PublicationPlan> {
  const draft = await readDraft(ctx, id);
  if (draft === undefined) throw new OriginError('RELEASE_STATE', `release ${id} has no draft`);
  const pending = await readPendingRoot(ctx.store);
  const plan = await publish(ctx, async (head: Head) => {
    if (targetsVersionOf(head) + 1 !== draft.targetsVersion) {
      throw new OriginError(
        'STALE_DRAFT',
        `release ${id} was drafted as targets version ${draft.targetsVersion}, but version ${targetsVersionOf(head)} is published; push again`,
      );
    }
    const root = pending?.root ?? head.root;
    const { metadata, valid } = await approvedDraft(ctx, draft, root.signed);
    // Checked the way clients will check it.
    await verifyDelegate(root.signed, 'targets', metadata);
    return {
      reason: 'release',
      release: id,
      blobs: draft.blobs,
      targets: metadata,
      roots:
        pending !== undefined && pending.root.signed.version > head.root.signed.version
          ? [pending.root]
          : [],
      approvedBy: valid,
    };
  });
  if (pending !== undefined) {
    await storage('clearing the pending root', () => ctx.store.delete(PENDING_ROOT_KEY));
  }
  await cleanUpStaging(ctx, id).catch(() => undefined);
  return plan;
}

/** Staged copies are no longer needed once published; garbage collection catches leftovers. */
async function cleanUpStaging(ctx: OriginContext, id: string): Promise<void> {
  const release = await readRelease(ctx, id);
  for (const file of release.files) await deleteKey(ctx.store, stagedFileKey(id, file.index));
  const draft = await readDraft(ctx, id);
  for (const delta of draft?.deltas ?? []) await deleteKey(ctx.store, delta.key);
  const pointer = await readJson<DraftPointer>(ctx.store, DRAFT_POINTER_KEY);
  if (pointer?.value.id === id) {
    await storage('clearing the draft pointer', () => ctx.store.delete(DRAFT_POINTER_KEY));
  }
}

/** The current draft, if any, and whether it has a threshold of signatures. */
export async function currentDraft(
  ctx: OriginContext,
): Promise<{ id: string; signatures: number; threshold: number } | undefined> {
  const pointer = await readPointer(ctx);
  if (pointer === undefined) return undefined;
  // Published, but the pointer outlived it (a crash before staging was cleaned up): no draft.
  if ((await readJson(ctx.store, publishedMarkerKey(pointer.id))) !== undefined) return undefined;
  const draft = await readDraft(ctx, pointer.id);
  if (draft === undefined) return undefined;
  const root = (await effectiveRoot(ctx)).signed;
  const { valid } = await approvedDraft(ctx, draft, root);
  return { id: pointer.id, signatures: valid.length, threshold: root.roles.targets.threshold };
}

export type ReleaseState = 'uploading' | 'draft' | 'published' | 'superseded';

export interface FileChange {
  readonly path: string;
  readonly change: 'added' | 'removed' | 'changed' | 'unchanged';
  readonly length?: number | undefined;
  readonly sha256?: string | undefined;
  readonly previousLength?: number | undefined;
  readonly previousSha256?: string | undefined;
  readonly deltas: readonly { readonly baseVersion: number; readonly length: number }[];
}

export interface ReleaseSummary {
  readonly id: string;
  readonly state: ReleaseState;
  readonly kind: ReleaseRecord['kind'];
  readonly fromVersion?: number | undefined;
  readonly note?: string | undefined;
  readonly pushedBy: string;
  readonly created: string;
  readonly targetsVersion?: number | undefined;
  /** Against the targets version before this release's. */
  readonly comparedTo: number;
  readonly files: readonly FileChange[];
  readonly totalBytes: number;
  readonly deltaBytes: number;
  readonly draftSha256?: string | undefined;
  /** The draft's signed part, exactly as publishers sign it (canonical JSON, as text). */
  readonly signed?: string | undefined;
  readonly signatures: readonly string[];
  readonly threshold: number;
  readonly published?:
    { readonly targetsVersion: number; readonly snapshotVersion: number } | undefined;
}

/** GET /v1/releases/:id: what the release changes, and where it stands. */
export async function showRelease(ctx: OriginContext, id: string): Promise<ReleaseSummary> {
  const release = await readRelease(ctx, id);
  const draft = await readDraft(ctx, id);
  const published = (
    await readJson<{ targetsVersion: number; snapshotVersion: number }>(
      ctx.store,
      publishedMarkerKey(id),
    )
  )?.value;
  const pointer = await readPointer(ctx);
  const head = await readHead(ctx.store, ctx.roots);
  const comparedTo = (draft?.targetsVersion ?? targetsVersionOf(head) + 1) - 1;
  const previous = comparedTo >= 1 ? await readTargets(ctx.store, comparedTo) : undefined;
  const before = new Map(
    [...(previous?.signed.targets.values() ?? [])]
      .filter((t) => !isDeltaPath(t.path))
      .map((t) => [t.path, t]),
  );
  const files: FileChange[] = [];
  for (const f of release.files) {
    const old = before.get(f.path);
    const oldSha = old?.hashes.sha256;
    files.push({
      path: f.path,
      change: old === undefined ? 'added' : oldSha === f.sha256 ? 'unchanged' : 'changed',
      length: f.length,
      sha256: f.sha256,
      previousLength: old?.length,
      previousSha256: oldSha,
      deltas: (draft?.deltas ?? [])
        .filter((d) => d.path === f.path)
        .map((d) => ({ baseVersion: d.base.version, length: d.length })),
    });
    before.delete(f.path);
  }
  for (const old of before.values()) {
    files.push({
      path: old.path,
      change: 'removed',
      previousLength: old.length,
      previousSha256: old.hashes.sha256,
      deltas: [],
    });
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const root = (await effectiveRoot(ctx)).signed;
  const valid = draft === undefined ? [] : (await approvedDraft(ctx, draft, root)).valid;
  const state: ReleaseState =
    published !== undefined
      ? 'published'
      : draft === undefined
        ? 'uploading'
        : pointer?.id === id
          ? 'draft'
          : 'superseded';
  return {
    id,
    state,
    kind: release.kind,
    fromVersion: release.fromVersion,
    note: release.note,
    pushedBy: release.pushedBy,
    created: release.created,
    targetsVersion: draft?.targetsVersion,
    comparedTo,
    files,
    totalBytes: release.files.reduce((n, f) => n + f.length, 0),
    deltaBytes: (draft?.deltas ?? []).reduce((n, d) => n + d.length, 0),
    draftSha256: draft?.draftSha256,
    signed:
      draft === undefined
        ? undefined
        : new TextDecoder().decode(canonicalize((draft.metadata as { signed: unknown }).signed)),
    signatures: valid,
    threshold: root.roles.targets.threshold,
    published,
  };
}
