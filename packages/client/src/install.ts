/**
 * The installed files and their history: an `Installation` is an install directory (where the
 * program reads its data, e.g. /var/lib/clamav) plus a state directory of ours:
 *
 *   {stateDir}/installed.json     the manifest: per target path, the current file's sha256,
 *                                 length, targets version, and the stat identity it was last
 *                                 seen with; the previous version; an install in progress
 *   {stateDir}/previous/{sha256}  previous versions, named by content (hard links when the two
 *                                 directories share a file system, copies otherwise)
 *   {stateDir}/lock               the updater lock (state-lock.ts)
 *
 * Temp files live in the install directory, beside their target: `.{name}.cairn-{12 hex}.tmp`.
 * That is the one place certain to be on the target's file system (a state directory may not be,
 * and a subdirectory may be a mount point), and rename(2) is atomic only within one. The names
 * are hidden and end in `.tmp`, which programs that load data by extension (ClamAV: .cvd, .cld,
 * .cud, ...) skip; any left by a crash are removed when an Installation is opened.
 *
 * ## Order of an install, and why a crash between any two steps is safe
 *
 *   0. The caller wrote and verified the new bytes in a temp file (tempPathFor); it is fsynced.
 *   1. preserved: the current file is hard-linked (or copied, fsynced) to previous/{its sha256}
 *      and previous/ is fsynced. Nothing the program reads has changed.
 *   2. intent-recorded: the manifest gains `pending` (the new file's sha256, length, version, and
 *      what becomes previous), written atomically (temp, fsync, rename, fsync).
 *   3. renamed: rename(temp, target), fsync of the target's directory. The program now reads
 *      the new file, whole: rename replaces the name atomically.
 *   4. committed: the manifest names the new file as current and the old one as previous.
 *   5. cleaned: previous versions no entry refers to are deleted.
 *
 * A crash before 3 leaves the old file in place; a crash after it, the new one; never a mixture.
 * What the manifest says is reconciled when the next Installation is opened (`recover`): for an
 * entry with `pending`, the file on disk is identified — by its stat identity (device, inode,
 * size, mtime) when that is still the one recorded for the current file (a rename always brings
 * another inode: the temp was created while the old file still existed), otherwise by hashing it
 * — and if it is the pending file, the install is committed (4); if it is the recorded current
 * file, the pending intent is dropped; if it is neither (someone changed it by hand), it is
 * recorded as found, version unknown. Previous versions are safe throughout: step 1 made the
 * new previous durable before step 2 named it, and step 5 deletes only what the committed
 * manifest no longer names. A crash in 1 or 5 leaves at most unreferenced files, removed at open.
 *
 * Disk full (or any write error) in 0–2 fails the install with INSTALL_FAILED and leaves the old
 * file and manifest as they were (the temp is removed). A failure to write the manifest in 4,
 * after the rename, is also INSTALL_FAILED, with a message saying the new file is in place; the
 * on-disk manifest still holds `pending`, and the next open commits it.
 *
 * Every method that writes expects the caller to hold the state lock; `open` takes the held lock
 * as proof. Files are installed with mode 0644 (before umask), owned by whoever runs the updater.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { ClientError } from './errors.js';
import type { HeldStateLock } from './state-lock.js';

// ---------------------------------------------------------------------------------------------
// The file-system port: the few operations an install needs, so a test can make one of them fail
// (a full disk) without a real full disk.

/** A file being written; nothing is durable before `sync`. */
export interface FileWriter {
  write(chunk: Uint8Array): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface FileStat {
  readonly isFile: boolean;
  readonly size: number;
  /** Device, inode and mtime as decimal strings: inode numbers may exceed 2^53. */
  readonly dev: string;
  readonly ino: string;
  readonly mtimeNs: string;
}

export interface DirectoryEntry {
  readonly name: string;
  readonly isDirectory: boolean;
  readonly isFile: boolean;
}

export interface InstallFileSystem {
  /** Creates `path`, failing if it exists (mode 0644). */
  createFile(path: string): Promise<FileWriter>;
  /** The bytes of `path` as a stream of chunks. */
  readChunks(path: string): AsyncIterable<Uint8Array>;
  /** The whole file, or undefined if it does not exist. */
  readFile(path: string): Promise<Uint8Array | undefined>;
  /** Follows symlinks; undefined when nothing is there. */
  stat(path: string): Promise<FileStat | undefined>;
  link(existing: string, newPath: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** Removes a file; nothing there is not an error. */
  remove(path: string): Promise<void>;
  /** mkdir -p; returns the first directory it created, if any. */
  makeDirectory(path: string): Promise<string | undefined>;
  /** Entries of a directory; a missing directory has none. */
  list(path: string): Promise<DirectoryEntry[]>;
  syncFile(path: string): Promise<void>;
  syncDirectory(path: string): Promise<void>;
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function syncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export const nodeInstallFileSystem: InstallFileSystem = {
  async createFile(path) {
    const handle = await open(path, 'wx', 0o644);
    return {
      async write(chunk) {
        let at = 0;
        while (at < chunk.length) {
          const { bytesWritten } = await handle.write(chunk, at, chunk.length - at);
          at += bytesWritten;
        }
      },
      sync: () => handle.sync(),
      close: () => handle.close(),
    };
  },
  readChunks: (path) => createReadStream(path) as AsyncIterable<Uint8Array>,
  async readFile(path) {
    try {
      return new Uint8Array(await readFile(path));
    } catch (e) {
      if (errno(e) === 'ENOENT') return undefined;
      throw e;
    }
  },
  async stat(path) {
    try {
      const s = await stat(path, { bigint: true });
      return {
        isFile: s.isFile(),
        size: Number(s.size),
        dev: s.dev.toString(),
        ino: s.ino.toString(),
        mtimeNs: s.mtimeNs.toString(),
      };
    } catch (e) {
      if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return undefined;
      throw e;
    }
  },
  link: (existing, newPath) => link(existing, newPath),
  rename: (from, to) => rename(from, to),
  remove: (path) => rm(path, { force: true }),
  makeDirectory: (path) => mkdir(path, { recursive: true }),
  async list(path) {
    try {
      const entries = await readdir(path, { withFileTypes: true });
      return entries.map((e) => ({
        name: e.name,
        isDirectory: e.isDirectory(),
        isFile: e.isFile(),
      }));
    } catch (e) {
      if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return [];
      throw e;
    }
  },
  syncFile: syncPath,
  // Windows cannot open a directory for fsync; NTFS journals the rename itself.
  syncDirectory: (path) => (process.platform === 'win32' ? Promise.resolve() : syncPath(path)),
};

// ---------------------------------------------------------------------------------------------
// Names

export const MANIFEST_NAME = 'installed.json';
export const PREVIOUS_DIRECTORY = 'previous';
const MANIFEST_FORMAT = 'cairn-installed/1';

const SHA256_HEX = /^[0-9a-f]{64}$/;
const TEMP_NAME = /^\..+\.cairn-[0-9a-f]{12}\.tmp$/;

function tempName(name: string): string {
  return `.${name}.cairn-${randomBytes(6).toString('hex')}.tmp`;
}

/** Whether `name` is one of our temp files (of any target). */
export function isInstallTempName(name: string): boolean {
  return TEMP_NAME.test(name);
}

/**
 * Checks a target path from signed metadata for use as a relative file path: `/`-separated
 * segments, none empty, `.` or `..`, no backslash or NUL, not absolute, not a temp-file name.
 * Throws INSTALL_FAILED naming the path otherwise.
 */
export function checkInstallPath(path: string): void {
  const refuse = (why: string): never => {
    throw new ClientError('INSTALL_FAILED', `target path ${JSON.stringify(path)}: ${why}`);
  };
  if (typeof path !== 'string' || path.length === 0) refuse('empty');
  if (path.includes('\0')) refuse('contains NUL');
  if (path.includes('\\')) refuse('contains a backslash');
  if (path.startsWith('/') || isAbsolute(path)) refuse('absolute');
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') {
      refuse('has an empty, "." or ".." segment, so it could leave the install directory');
    }
    if (isInstallTempName(segment)) refuse('is named like an install temp file');
  }
}

// ---------------------------------------------------------------------------------------------
// The manifest

export interface InstallMeta {
  /** Lowercase hex. */
  readonly sha256: string;
  readonly length: number;
  /** The targets metadata version the file was installed from; null when unknown (a file we
   * found on disk, or a previous version of one). */
  readonly version: number | null;
}

export interface InstalledFile extends InstallMeta {
  /** 'stat': device, inode, size and mtime were the ones recorded, so the recorded hash was
   * trusted without reading the file; 'hash': they differed (or nothing was recorded) and the
   * file was hashed. */
  readonly checkedBy: 'stat' | 'hash';
}

interface StatIdentity {
  readonly dev: string;
  readonly ino: string;
  readonly size: number;
  readonly mtimeNs: string;
}

interface VersionRecord extends InstallMeta {
  /** The update run that installed it; 0 for a file found on disk. */
  readonly run: number;
}

interface CurrentRecord extends VersionRecord {
  readonly stat: StatIdentity;
}

interface PendingRecord extends VersionRecord {
  /** What becomes `previous` when the install commits. */
  readonly previous: VersionRecord | null;
}

interface Entry {
  readonly current: CurrentRecord | null;
  readonly previous: VersionRecord | null;
  readonly pending: PendingRecord | null;
}

interface Manifest {
  /** The last run number used. */
  run: number;
  readonly files: Map<string, Entry>;
}

class ManifestError extends Error {}

function field(obj: Record<string, unknown>, key: string, where: string): unknown {
  if (!Object.hasOwn(obj, key)) throw new ManifestError(`${where}.${key} is missing`);
  return obj[key];
}

function asRecord(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ManifestError(`${where} is not an object`);
  }
  return value as Record<string, unknown>;
}

function asCount(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ManifestError(`${where} is not a non-negative integer`);
  }
  return value;
}

function asDecimal(value: unknown, where: string): string {
  if (typeof value !== 'string' || !/^[0-9]+$/.test(value)) {
    throw new ManifestError(`${where} is not a decimal string`);
  }
  return value;
}

function parseVersion(value: unknown, where: string): VersionRecord {
  const o = asRecord(value, where);
  const sha256 = field(o, 'sha256', where);
  if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) {
    throw new ManifestError(`${where}.sha256 is not 64 lowercase hex digits`);
  }
  const version = field(o, 'version', where);
  return {
    sha256,
    length: asCount(field(o, 'length', where), `${where}.length`),
    version: version === null ? null : asCount(version, `${where}.version`),
    run: asCount(field(o, 'run', where), `${where}.run`),
  };
}

function parseManifest(text: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ManifestError(`not JSON: ${String(e)}`);
  }
  const root = asRecord(json, 'manifest');
  if (field(root, 'format', 'manifest') !== MANIFEST_FORMAT) {
    throw new ManifestError(`manifest.format is not ${JSON.stringify(MANIFEST_FORMAT)}`);
  }
  const files = new Map<string, Entry>();
  const filesJson = asRecord(field(root, 'files', 'manifest'), 'manifest.files');
  for (const [path, value] of Object.entries(filesJson)) {
    const where = `manifest.files[${JSON.stringify(path)}]`;
    checkInstallPath(path);
    const e = asRecord(value, where);
    const current = field(e, 'current', where);
    const previous = field(e, 'previous', where);
    const pending = field(e, 'pending', where);
    let currentRecord: CurrentRecord | null = null;
    if (current !== null) {
      const s = asRecord(field(asRecord(current, `${where}.current`), 'stat', where), where);
      currentRecord = {
        ...parseVersion(current, `${where}.current`),
        stat: {
          dev: asDecimal(field(s, 'dev', where), `${where}.current.stat.dev`),
          ino: asDecimal(field(s, 'ino', where), `${where}.current.stat.ino`),
          size: asCount(field(s, 'size', where), `${where}.current.stat.size`),
          mtimeNs: asDecimal(field(s, 'mtimeNs', where), `${where}.current.stat.mtimeNs`),
        },
      };
    }
    let pendingRecord: PendingRecord | null = null;
    if (pending !== null) {
      const p = asRecord(pending, `${where}.pending`);
      const prev = field(p, 'previous', `${where}.pending`);
      pendingRecord = {
        ...parseVersion(pending, `${where}.pending`),
        previous: prev === null ? null : parseVersion(prev, `${where}.pending.previous`),
      };
    }
    files.set(path, {
      current: currentRecord,
      previous: previous === null ? null : parseVersion(previous, `${where}.previous`),
      pending: pendingRecord,
    });
  }
  return { run: asCount(field(root, 'run', 'manifest'), 'manifest.run'), files };
}

function versionJson(v: VersionRecord): Record<string, unknown> {
  return { sha256: v.sha256, length: v.length, version: v.version, run: v.run };
}

function serializeManifest(manifest: Manifest): Uint8Array {
  const files: Record<string, unknown> = {};
  for (const path of [...manifest.files.keys()].sort()) {
    const e = manifest.files.get(path);
    if (e === undefined) continue;
    Object.defineProperty(files, path, {
      enumerable: true,
      value: {
        current: e.current === null ? null : { ...versionJson(e.current), stat: e.current.stat },
        previous: e.previous === null ? null : versionJson(e.previous),
        pending:
          e.pending === null
            ? null
            : {
                ...versionJson(e.pending),
                previous: e.pending.previous === null ? null : versionJson(e.pending.previous),
              },
      },
    });
  }
  const text = JSON.stringify({ format: MANIFEST_FORMAT, run: manifest.run, files }, null, 2);
  return new TextEncoder().encode(`${text}\n`);
}

function sameStat(a: StatIdentity, b: FileStat): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs;
}

function identityOf(s: FileStat): StatIdentity {
  return { dev: s.dev, ino: s.ino, size: s.size, mtimeNs: s.mtimeNs };
}

function checkMeta(meta: InstallMeta): void {
  if (typeof meta.sha256 !== 'string' || !SHA256_HEX.test(meta.sha256)) {
    throw new ClientError(
      'INSTALL_FAILED',
      `meta.sha256: expected 64 lowercase hex digits, received ${JSON.stringify(meta.sha256)}`,
    );
  }
  if (!Number.isSafeInteger(meta.length) || meta.length < 0) {
    throw new ClientError(
      'INSTALL_FAILED',
      `meta.length: expected a non-negative integer, received ${meta.length}`,
    );
  }
  if (meta.version !== null && (!Number.isSafeInteger(meta.version) || meta.version < 0)) {
    throw new ClientError(
      'INSTALL_FAILED',
      `meta.version: expected a non-negative integer or null, received ${meta.version}`,
    );
  }
}

/** Error codes for which link(2) cannot work here and a copy must do. */
const LINK_UNSUPPORTED = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK', 'ENOSYS']);

// ---------------------------------------------------------------------------------------------

/** The durable steps of an install, in order; `onStep` is called after each. */
export const INSTALL_STEPS = [
  'preserved',
  'intent-recorded',
  'renamed',
  'committed',
  'cleaned',
] as const;
export type InstallStep = (typeof INSTALL_STEPS)[number];

export interface InstallationOptions {
  readonly installDir: string;
  readonly stateDir: string;
  /** The lock on `stateDir` (withStateLock), as proof that no other updater writes here. */
  readonly lock: HeldStateLock;
  /** Default: nodeInstallFileSystem. */
  readonly fs?: InstallFileSystem;
  /**
   * Called after each durable step of an install or rollback, for crash tests: a test process
   * kills itself here (SIGKILL) to leave exactly the state a crash at that point leaves.
   */
  readonly onStep?: (step: InstallStep, path: string) => void | Promise<void>;
}

/** What `open` found and repaired. */
export interface RecoveryReport {
  /** Installs interrupted after their rename, now committed. */
  readonly committed: readonly string[];
  /** Installs interrupted before their rename, dropped: the old file is in place. */
  readonly abandoned: readonly string[];
  /** Files that were neither the recorded nor the pending one; recorded as found. */
  readonly foreign: readonly string[];
  /** Stray temp files and unreferenced previous versions removed. */
  readonly removed: readonly string[];
}

export type InstallOutcome =
  | { readonly kind: 'installed'; readonly path: string; readonly replaced: InstallMeta | null }
  /** The file already had this content; the temp was removed. */
  | { readonly kind: 'unchanged'; readonly path: string };

export interface RollbackOutcome {
  readonly path: string;
  readonly restored: InstallMeta;
  /** The version that was current and is now the previous one. */
  readonly replaced: InstallMeta | null;
}

function metaOf(v: InstallMeta): InstallMeta {
  return { sha256: v.sha256, length: v.length, version: v.version };
}

function versionOf(v: VersionRecord): VersionRecord {
  return { ...metaOf(v), run: v.run };
}

interface Identified {
  readonly record: CurrentRecord;
  readonly checkedBy: 'stat' | 'hash';
}

export class Installation {
  readonly installDir: string;
  readonly stateDir: string;
  readonly #fs: InstallFileSystem;
  readonly #lock: HeldStateLock;
  readonly #onStep: InstallationOptions['onStep'];
  readonly #manifest: Manifest;
  /** This Installation's run number, taken from the manifest at the first write. */
  #run: number | undefined;
  #recovery: RecoveryReport = { committed: [], abandoned: [], foreign: [], removed: [] };

  private constructor(options: InstallationOptions, manifest: Manifest) {
    this.installDir = resolve(options.installDir);
    this.stateDir = resolve(options.stateDir);
    this.#fs = options.fs ?? nodeInstallFileSystem;
    this.#lock = options.lock;
    this.#onStep = options.onStep;
    this.#manifest = manifest;
  }

  /** What opening repaired. */
  get recovery(): RecoveryReport {
    return this.#recovery;
  }

  /**
   * Loads the manifest and reconciles it with the disk after a crash (see the module comment).
   * Throws INSTALL_FAILED when the manifest exists but cannot be parsed: it is written
   * atomically, so that means damage from outside, and guessing would lose previous versions.
   */
  static async open(options: InstallationOptions): Promise<Installation> {
    const stateDir = resolve(options.stateDir);
    if (!options.lock.held || options.lock.stateDir !== stateDir) {
      throw new ClientError(
        'CONFIG_INVALID',
        `lock: expected the held lock of ${stateDir}, received one of ${options.lock.stateDir}` +
          (options.lock.held ? '' : ' (released)'),
      );
    }
    const fs = options.fs ?? nodeInstallFileSystem;
    const manifestPath = join(stateDir, MANIFEST_NAME);
    const bytes = await fs.readFile(manifestPath);
    let manifest: Manifest = { run: 0, files: new Map() };
    if (bytes !== undefined) {
      try {
        manifest = parseManifest(new TextDecoder().decode(bytes));
      } catch (e) {
        throw new ClientError(
          'INSTALL_FAILED',
          `${manifestPath} is damaged (${errorText(e)}); move it ` +
            `aside to start over (previous versions are then forgotten)`,
          { cause: e },
        );
      }
    }
    const installation = new Installation(options, manifest);
    await installation.#makeDirectories(join(stateDir, PREVIOUS_DIRECTORY));
    installation.#recovery = await installation.#recover();
    return installation;
  }

  /** The file of `path` in the install directory. Throws INSTALL_FAILED for a path that could
   * leave it. */
  filePath(path: string): string {
    checkInstallPath(path);
    const file = resolve(this.installDir, ...path.split('/'));
    const rel = relative(this.installDir, file);
    if (rel === '' || rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) {
      throw new ClientError('INSTALL_FAILED', `target path ${JSON.stringify(path)} escapes`);
    }
    return file;
  }

  /**
   * A new temp file name for the new bytes of `path`: in the target's own directory (created if
   * missing), so the final rename stays within one directory and one file system. The caller
   * creates it (exclusively), writes and verifies it, then passes it to `install`. Temp files
   * still there when the next Installation opens (a crash) are removed then.
   */
  async tempPathFor(path: string): Promise<string> {
    const file = this.filePath(path);
    await this.#makeDirectories(dirname(file));
    return join(dirname(file), tempName(basename(file)));
  }

  /** The target paths the manifest knows. */
  paths(): string[] {
    return [...this.#manifest.files.keys()].sort();
  }

  /**
   * What is installed at `path`: the manifest's record when the file still has the device,
   * inode, size and mtime recorded (`checkedBy: 'stat'`), else the file's hash
   * (`checkedBy: 'hash'`; the new identity is recorded so the next look is cheap again). A file
   * that is not the recorded one has `version: null`. Undefined when no regular file is there.
   */
  async installed(path: string): Promise<InstalledFile | undefined> {
    const file = this.filePath(path);
    const found = await this.#identify(path, file);
    if (found === undefined) return undefined;
    if (found.checkedBy === 'hash') {
      // Best effort: a failed write costs another hash next time, nothing else.
      await this.#writeManifest().catch(() => {});
    }
    return { ...metaOf(found.record), checkedBy: found.checkedBy };
  }

  /**
   * Installs the verified temp file `tempFile` (from tempPathFor(path), complete, its length and
   * hashes checked by the caller against `meta`) as `path`, keeping the file it replaces as the
   * previous version. Consumes the temp file: it is renamed into place or removed. Throws
   * INSTALL_FAILED when any step fails; the previous file is then still installed, untouched.
   */
  async install(path: string, tempFile: string, meta: InstallMeta): Promise<InstallOutcome> {
    try {
      checkMeta(meta);
      const file = this.filePath(path);
      if (dirname(resolve(tempFile)) !== dirname(file) || !isInstallTempName(basename(tempFile))) {
        throw new ClientError(
          'INSTALL_FAILED',
          `tempFile: expected a name from tempPathFor(${JSON.stringify(path)}), received ${tempFile}`,
        );
      }
    } catch (e) {
      await this.#fs.remove(tempFile).catch(() => {});
      throw e;
    }
    return this.#swap(path, resolve(tempFile), metaOf(meta));
  }

  /**
   * Restores the previous version of `path`, or with no path, of every file the last update
   * run changed, each atomically, by the same steps as an install: the current version becomes
   * the previous one, so a second rollback undoes the first. Throws NO_PREVIOUS_VERSION when
   * there is nothing to restore (or the kept copy no longer has its recorded hash).
   */
  async rollback(path?: string): Promise<RollbackOutcome[]> {
    let paths: string[];
    if (path !== undefined) {
      this.filePath(path);
      if (this.#manifest.files.get(path)?.previous == null) {
        throw new ClientError('NO_PREVIOUS_VERSION', `no previous version of ${path} is kept`);
      }
      paths = [path];
    } else {
      // "The last update": the files whose current version the newest run installed.
      let newest = 0;
      for (const e of this.#manifest.files.values()) newest = Math.max(newest, e.current?.run ?? 0);
      paths = this.paths().filter((p) => {
        const e = this.#manifest.files.get(p);
        return newest > 0 && e?.current?.run === newest && e.previous !== null;
      });
      if (paths.length === 0) {
        throw new ClientError('NO_PREVIOUS_VERSION', 'no previous version of any file is kept');
      }
    }
    const outcomes: RollbackOutcome[] = [];
    for (const p of paths) outcomes.push(await this.#rollbackOne(p));
    return outcomes;
  }

  // -------------------------------------------------------------------------------------------

  async #rollbackOne(path: string): Promise<RollbackOutcome> {
    const previous = this.#manifest.files.get(path)?.previous;
    if (previous == null) {
      throw new ClientError('NO_PREVIOUS_VERSION', `no previous version of ${path} is kept`);
    }
    const kept = join(this.stateDir, PREVIOUS_DIRECTORY, previous.sha256);
    const temp = await this.tempPathFor(path);
    let digest: { sha256: string; length: number } | undefined;
    try {
      try {
        await this.#fs.link(kept, temp);
        digest = await this.#hashFile(temp);
      } catch (e) {
        if (errno(e) === 'ENOENT') digest = undefined;
        else if (LINK_UNSUPPORTED.has(errno(e) ?? '')) digest = await this.#copyFile(kept, temp);
        else throw e;
      }
    } catch (e) {
      await this.#fs.remove(temp).catch(() => {});
      throw new ClientError('INSTALL_FAILED', `rolling back ${path}: ${errorText(e)}`, {
        cause: e,
      });
    }
    if (digest?.sha256 !== previous.sha256 || digest.length !== previous.length) {
      await this.#fs.remove(temp).catch(() => {});
      throw new ClientError(
        'NO_PREVIOUS_VERSION',
        digest === undefined
          ? `the previous version of ${path} (${kept}) is gone`
          : `the previous version of ${path} (${kept}) is damaged: sha256 ${digest.sha256}`,
      );
    }
    const outcome = await this.#swap(path, temp, metaOf(previous));
    return {
      path,
      restored: metaOf(previous),
      replaced: outcome.kind === 'installed' ? outcome.replaced : null,
    };
  }

  async #swap(path: string, temp: string, meta: InstallMeta): Promise<InstallOutcome> {
    const file = this.filePath(path);
    const fs = this.#fs;
    let renamed = false;
    let intentWritten = false;
    let replaced: VersionRecord | null = null;
    let nextPrevious: VersionRecord | null = null;
    try {
      const tempStat = await fs.stat(temp);
      if (tempStat?.isFile !== true || tempStat.size !== meta.length) {
        throw new ClientError(
          'INSTALL_FAILED',
          `${temp}: expected a ${meta.length}-byte file, found ${tempStat?.size ?? 'nothing'}`,
        );
      }
      await fs.syncFile(temp);
      const found = await this.#identify(path, file);
      if (found?.record.sha256 === meta.sha256 && found.record.length === meta.length) {
        await fs.remove(temp);
        return { kind: 'unchanged', path };
      }
      const entry = this.#manifest.files.get(path);
      replaced = found === undefined ? null : versionOf(found.record);
      nextPrevious = replaced ?? entry?.previous ?? null;
      if (nextPrevious?.sha256 === meta.sha256) nextPrevious = null;
      // 1. preserved
      if (replaced !== null) await this.#preserve(file, replaced);
      await this.#step('preserved', path);
      // 2. intent-recorded
      const run = this.#runNumber();
      this.#manifest.files.set(path, {
        current: found?.record ?? null,
        previous: entry?.previous ?? null,
        pending: { ...meta, run, previous: nextPrevious },
      });
      intentWritten = true;
      await this.#writeManifest();
      await this.#step('intent-recorded', path);
      // 3. renamed
      await fs.rename(temp, file);
      renamed = true;
      await fs.syncDirectory(dirname(file));
      await this.#step('renamed', path);
    } catch (e) {
      if (!renamed) {
        await fs.remove(temp).catch(() => {});
        if (intentWritten) {
          const entry = this.#manifest.files.get(path);
          if (entry !== undefined) this.#manifest.files.set(path, { ...entry, pending: null });
          // If this fails too, the on-disk `pending` is dropped at the next open: the file
          // there is still the recorded current one.
          await this.#writeManifest().catch(() => {});
        }
        // The version kept in step 1 is not needed (a pending intent that stayed on disk is
        // dropped at the next open: the file is still the recorded one).
        await this.#collectPrevious().catch(() => []);
      }
      throw this.#installError(path, e, renamed);
    }
    // 4. committed
    try {
      await this.#commit(path, file);
      await this.#step('committed', path);
    } catch (e) {
      throw this.#installError(path, e, true);
    }
    // 5. cleaned: failures only leave unreferenced files for the next open.
    await this.#collectPrevious().catch(() => []);
    await this.#step('cleaned', path);
    return { kind: 'installed', path, replaced: replaced === null ? null : metaOf(replaced) };
  }

  #installError(path: string, e: unknown, renamed: boolean): ClientError {
    if (e instanceof ClientError) return e;
    const why = errorText(e);
    return new ClientError(
      'INSTALL_FAILED',
      renamed
        ? `${path} is installed, but recording it in ${MANIFEST_NAME} failed (${why}); the next ` +
            `run reconciles it`
        : `installing ${path} failed (${why}); the previous file is still installed`,
      { cause: e },
    );
  }

  /** Moves `pending` to `current` with the file's stat identity, and persists. */
  async #commit(path: string, file: string): Promise<void> {
    const entry = this.#manifest.files.get(path);
    const pending = entry?.pending;
    if (pending == null) return;
    const s = await this.#fs.stat(file);
    if (s === undefined) throw new ClientError('INSTALL_FAILED', `${file} vanished`);
    this.#manifest.files.set(path, {
      current: { ...versionOf(pending), stat: identityOf(s) },
      previous: pending.previous,
      pending: null,
    });
    await this.#writeManifest();
  }

  async #step(step: InstallStep, path: string): Promise<void> {
    await this.#onStep?.(step, path);
  }

  #runNumber(): number {
    if (this.#run === undefined) {
      this.#manifest.run += 1;
      this.#run = this.#manifest.run;
    }
    return this.#run;
  }

  /**
   * Keeps `file` (whose content is `record`) as previous/{sha256}: a hard link when possible,
   * else a copy whose hash is checked; durable before it returns.
   */
  async #preserve(file: string, record: VersionRecord): Promise<void> {
    const dir = join(this.stateDir, PREVIOUS_DIRECTORY);
    const kept = join(dir, record.sha256);
    const existing = await this.#fs.stat(kept);
    // Named by content and written only whole (link, or copy then rename), so trusted by name.
    if (existing?.isFile === true && existing.size === record.length) return;
    await this.#makeDirectories(dir);
    await this.#fs.remove(kept);
    try {
      await this.#fs.link(file, kept);
    } catch (e) {
      if (!LINK_UNSUPPORTED.has(errno(e) ?? '')) throw e;
      const staged = join(dir, tempName(record.sha256));
      try {
        const digest = await this.#copyFile(file, staged);
        if (digest.sha256 !== record.sha256) {
          throw new ClientError('INSTALL_FAILED', `${file} changed while it was being kept`);
        }
        await this.#fs.rename(staged, kept);
      } catch (copyError) {
        await this.#fs.remove(staged).catch(() => {});
        throw copyError;
      }
    }
    await this.#fs.syncDirectory(dir);
  }

  /** The current file of `path` and how it was recognized; updates the in-memory manifest when
   * the file had to be hashed. */
  async #identify(path: string, file: string): Promise<Identified | undefined> {
    const s = await this.#fs.stat(file);
    if (s?.isFile !== true) return undefined;
    const entry = this.#manifest.files.get(path);
    const current = entry?.current ?? null;
    if (current !== null && sameStat(current.stat, s))
      return { record: current, checkedBy: 'stat' };
    const digest = await this.#hashFile(file);
    const after = await this.#fs.stat(file);
    const stable = after !== undefined && sameStat(identityOf(s), after);
    const record: CurrentRecord =
      current !== null && current.sha256 === digest.sha256 && current.length === digest.length
        ? { ...current, stat: identityOf(s) }
        : {
            sha256: digest.sha256,
            length: digest.length,
            version: null,
            run: 0,
            stat: identityOf(s),
          };
    // A file that changed while being hashed is reported but its identity not remembered.
    if (stable) {
      this.#manifest.files.set(path, {
        current: record,
        previous: entry?.previous ?? null,
        pending: entry?.pending ?? null,
      });
    }
    return { record, checkedBy: 'hash' };
  }

  async #recover(): Promise<RecoveryReport> {
    const committed: string[] = [];
    const abandoned: string[] = [];
    const foreign: string[] = [];
    let changed = false;
    for (const [path, entry] of [...this.#manifest.files]) {
      const pending = entry.pending;
      if (pending === null) continue;
      changed = true;
      const file = this.filePath(path);
      const found = await this.#identify(path, file);
      const record = found?.record;
      if (record?.sha256 === pending.sha256 && record.length === pending.length) {
        this.#manifest.files.set(path, {
          current: { ...versionOf(pending), stat: record.stat },
          previous: pending.previous,
          pending: null,
        });
        committed.push(path);
      } else {
        const now = this.#manifest.files.get(path) ?? entry;
        this.#manifest.files.set(path, { ...now, pending: null });
        const wasCurrent =
          entry.current !== null &&
          record?.sha256 === entry.current.sha256 &&
          record.length === entry.current.length;
        if (wasCurrent || (record === undefined && entry.current === null)) abandoned.push(path);
        else foreign.push(path);
      }
    }
    if (changed) await this.#writeManifest();
    const removed = [...(await this.#removeStrayTemps()), ...(await this.#collectPrevious())];
    return { committed, abandoned, foreign, removed };
  }

  /** Our temp files anywhere under the install directory (not following symlinks), and the
   * manifest's in the state directory. */
  async #removeStrayTemps(): Promise<string[]> {
    const removed: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await this.#fs.list(dir)) {
        const p = join(dir, e.name);
        if (e.isDirectory) await walk(p);
        else if (e.isFile && isInstallTempName(e.name)) {
          await this.#fs.remove(p);
          removed.push(p);
        }
      }
    };
    await walk(this.installDir);
    for (const e of await this.#fs.list(this.stateDir)) {
      if (e.isFile && isInstallTempName(e.name) && e.name.startsWith(`.${MANIFEST_NAME}.`)) {
        const p = join(this.stateDir, e.name);
        await this.#fs.remove(p);
        removed.push(p);
      }
    }
    return removed;
  }

  /** Deletes files in previous/ that no entry names (ours only: sha256 names and our temps). */
  async #collectPrevious(): Promise<string[]> {
    const wanted = new Set<string>();
    for (const e of this.#manifest.files.values()) {
      if (e.previous !== null) wanted.add(e.previous.sha256);
      if (e.pending?.previous != null) wanted.add(e.pending.previous.sha256);
    }
    const dir = join(this.stateDir, PREVIOUS_DIRECTORY);
    const removed: string[] = [];
    for (const e of await this.#fs.list(dir)) {
      if (!e.isFile || wanted.has(e.name)) continue;
      if (!SHA256_HEX.test(e.name) && !isInstallTempName(e.name)) continue;
      await this.#fs.remove(join(dir, e.name));
      removed.push(join(dir, e.name));
    }
    if (removed.length > 0) await this.#fs.syncDirectory(dir);
    return removed;
  }

  async #writeManifest(): Promise<void> {
    if (!this.#lock.held) {
      throw new ClientError('INSTALL_FAILED', `the lock on ${this.stateDir} was released`);
    }
    const path = join(this.stateDir, MANIFEST_NAME);
    const temp = join(this.stateDir, tempName(MANIFEST_NAME));
    try {
      await this.#writeFile(temp, serializeManifest(this.#manifest));
      await this.#fs.rename(temp, path);
    } catch (e) {
      await this.#fs.remove(temp).catch(() => {});
      throw e;
    }
    await this.#fs.syncDirectory(this.stateDir);
  }

  async #writeFile(path: string, bytes: Uint8Array): Promise<void> {
    const writer = await this.#fs.createFile(path);
    try {
      await writer.write(bytes);
      await writer.sync();
    } finally {
      await writer.close();
    }
  }

  async #copyFile(from: string, to: string): Promise<{ sha256: string; length: number }> {
    const hash = createHash('sha256');
    let length = 0;
    const writer = await this.#fs.createFile(to);
    try {
      for await (const chunk of this.#fs.readChunks(from)) {
        hash.update(chunk);
        length += chunk.length;
        await writer.write(chunk);
      }
      await writer.sync();
    } finally {
      await writer.close();
    }
    return { sha256: hash.digest('hex'), length };
  }

  async #hashFile(path: string): Promise<{ sha256: string; length: number }> {
    const hash = createHash('sha256');
    let length = 0;
    for await (const chunk of this.#fs.readChunks(path)) {
      hash.update(chunk);
      length += chunk.length;
    }
    return { sha256: hash.digest('hex'), length };
  }

  /** mkdir -p, then fsync of every directory whose entries changed, so new directories survive
   * a power cut along with the files renamed into them. */
  async #makeDirectories(dir: string): Promise<void> {
    const first = await this.#fs.makeDirectory(dir);
    if (first === undefined) return;
    for (let d = dir; ; d = dirname(d)) {
      await this.#fs.syncDirectory(dirname(d));
      if (d === first || dirname(d) === d) break;
    }
  }
}
