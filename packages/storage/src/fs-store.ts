/**
 * A BlobStore over a directory: each key is a plain file at the same relative path, so the
 * directory can be served or inspected as it is.
 *
 * - Writes are atomic: the body streams into a temp file in the target's directory, which is
 *   fsynced and renamed over the target, and then the directory is fsynced. Readers see the old
 *   bytes or the new, never a mixture; a crash leaves at most a temp file, which `list` skips.
 * - `copy` copies the file into a temp file with copyFile (a reflink where the filesystem can:
 *   btrfs, xfs, APFS), then stamps and places it exactly as `put` places a body.
 * - Keys pass `checkKey`, and the resolved path must stay inside the directory.
 * - ETags are strong and change on every write: the file's inode, size and mtime in
 *   nanoseconds, where each write in this process stamps an mtime later than every stamp before
 *   it (so a recycled inode number cannot bring an old etag back).
 * - Conditional writes are decided under a per-key lock, so within one process two racing
 *   compare-and-swaps never both win. Across processes, If-None-Match: * still holds (the new
 *   file is linked into place, which fails if the name exists), but If-Match does not: run one
 *   writing process per directory, or use the S3 store.
 * - What a plain directory cannot hold: a content type (not kept), and a key beside keys below
 *   it (`a/b` and `a/b/c`): the second is refused with INVALID_KEY. The filesystem should keep
 *   sub-microsecond mtimes (ext4, xfs, btrfs, tmpfs, APFS do) and be case-sensitive.
 */
import { randomBytes } from 'node:crypto';
import {
  copyFile,
  link,
  mkdir,
  open,
  readdir,
  rename,
  rm,
  rmdir,
  stat,
  unlink,
} from 'node:fs/promises';
import { constants, type BigIntStats, type Dirent } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import type {
  BlobStore,
  CopyOptions,
  GetOptions,
  GetResult,
  ListOptions,
  ListPage,
  ObjectInfo,
  PutBody,
  PutOptions,
} from './blob-store.js';
import { StorageError } from './errors.js';
import { checkKey } from './keys.js';
import {
  checkCopyOptions,
  checkGetOptions,
  checkListOptions,
  checkPutOptions,
  compareKeys,
  notFound,
  preconditionFailed,
  resolveRange,
} from './options.js';

/** Bytes per read when serving a file: big enough to be cheap, small enough to stream. */
const READ_CHUNK = 256 * 1024;

const TEMP_SUFFIX = '.cairn-tmp';

function isTempName(name: string): boolean {
  return name.startsWith('.') && name.endsWith(TEMP_SUFFIX);
}

function errnoOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function isMissing(error: unknown): boolean {
  const code = errnoOf(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function etagOf(stats: BigIntStats): string {
  return `${stats.ino.toString(36)}-${stats.size.toString(36)}-${stats.mtimeNs.toString(36)}`;
}

function infoOf(key: string, stats: BigIntStats): ObjectInfo {
  return {
    key,
    size: Number(stats.size),
    etag: etagOf(stats),
    lastModified: new Date(Number(stats.mtimeMs)),
  };
}

// Process-wide, so two stores over one directory in the same process still take turns.
const keyLocks = new Map<string, Promise<void>>();

async function withKeyLock<T>(path: string, work: () => Promise<T>): Promise<T> {
  const previous = keyLocks.get(path) ?? Promise.resolve();
  let release = (): void => undefined;
  const mine = new Promise<void>((resolve) => {
    release = resolve;
  });
  const tail = previous.then(() => mine);
  keyLocks.set(path, tail);
  await previous;
  try {
    return await work();
  } finally {
    release();
    if (keyLocks.get(path) === tail) keyLocks.delete(path);
  }
}

// The last mtime stamped by this process, in ns: each write stamps a later one.
let lastStampNs = 0n;

function nextStampSeconds(): number {
  const now = BigInt(Date.now()) * 1_000_000n;
  // 1 µs apart: well above the ~240 ns a double can resolve in seconds since 1970.
  lastStampNs = now > lastStampNs + 1_000n ? now : lastStampNs + 1_000n;
  return Number(lastStampNs) / 1e9;
}

async function syncDirectory(directory: string): Promise<void> {
  // Windows cannot open a directory for fsync; NTFS journals the rename itself.
  if (process.platform === 'win32') return;
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function conflict(key: string, why: string, cause?: unknown): StorageError {
  return new StorageError('INVALID_KEY', `${JSON.stringify(key)} cannot be stored here: ${why}`, {
    cause,
  });
}

function fileStream(
  handle: FileHandle,
  offset: number,
  length: number,
): ReadableStream<Uint8Array> {
  let position = offset;
  const end = offset + length;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const want = Math.min(READ_CHUNK, end - position);
        if (want <= 0) {
          await handle.close();
          controller.close();
          return;
        }
        const buffer = new Uint8Array(want);
        try {
          const { bytesRead } = await handle.read(buffer, 0, want, position);
          if (bytesRead === 0) throw new Error(`the file ended at ${position}, before ${end}`);
          position += bytesRead;
          controller.enqueue(bytesRead === want ? buffer : buffer.subarray(0, bytesRead));
        } catch (e) {
          await handle.close().catch(() => undefined);
          controller.error(e);
        }
      },
      async cancel() {
        await handle.close();
      },
    },
    { highWaterMark: 0 },
  );
}

export class FsBlobStore implements BlobStore {
  /** The absolute directory that holds the objects. */
  readonly directory: string;

  constructor(directory: string) {
    this.directory = resolve(directory);
  }

  /** The file of a key; refuses keys that could land outside the directory or on a temp file. */
  pathOf(key: string): string {
    checkKey(key);
    const parts = key.split('/');
    if (parts.some(isTempName)) {
      throw new StorageError(
        'INVALID_KEY',
        `key: ${JSON.stringify(key)} looks like a temp file of the filesystem store (.*${TEMP_SUFFIX})`,
      );
    }
    const path = resolve(this.directory, ...parts);
    if (!path.startsWith(this.directory + sep)) {
      throw new StorageError(
        'INVALID_KEY',
        `key: ${JSON.stringify(key)} resolves outside the store`,
      );
    }
    return path;
  }

  async get(key: string, options?: GetOptions): Promise<GetResult> {
    checkGetOptions(key, options);
    const path = this.pathOf(key);
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (e) {
      if (isMissing(e) || errnoOf(e) === 'EISDIR') throw notFound(key, e);
      throw e;
    }
    try {
      // The open handle pins this version of the file: a concurrent write renames a new inode
      // into place and leaves ours, so the etag and the bytes we serve always agree.
      const stats = await handle.stat({ bigint: true });
      if (!stats.isFile()) throw notFound(key);
      const info = infoOf(key, stats);
      if (options?.ifMatch !== undefined && options.ifMatch !== info.etag) {
        throw preconditionFailed(key, 'the etag does not match If-Match');
      }
      if (options?.ifNoneMatch !== undefined && options.ifNoneMatch === info.etag) {
        await handle.close();
        return { notModified: true, info };
      }
      if (options?.range === undefined) {
        return { notModified: false, info, body: fileStream(handle, 0, info.size) };
      }
      const range = resolveRange(options.range, info.size, key);
      return {
        notModified: false,
        info,
        body: fileStream(handle, range.offset, range.length),
        range,
      };
    } catch (e) {
      await handle.close().catch(() => undefined);
      throw e;
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const path = this.pathOf(key);
    try {
      const stats = await stat(path, { bigint: true });
      return stats.isFile() ? infoOf(key, stats) : undefined;
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw e;
    }
  }

  async put(key: string, body: PutBody, options?: PutOptions): Promise<ObjectInfo> {
    checkPutOptions(key, options);
    const path = this.pathOf(key);
    const directory = dirname(path);
    const cancel = async (): Promise<void> => {
      if (!(body instanceof Uint8Array)) await body.cancel().catch(() => undefined);
    };

    // Fail fast, before streaming a body that could not be stored. The decision is made again
    // under the lock.
    try {
      this.#checkCondition(key, await this.#current(key, path), options);
    } catch (e) {
      await cancel();
      throw e;
    }

    let temp: string | undefined;
    try {
      const { handle, tempPath } = await this.#openTemp(key, path, directory);
      temp = tempPath;
      let stats: BigIntStats;
      try {
        const size = await writeBody(handle, body);
        if (options?.contentLength !== undefined && size !== options.contentLength) {
          throw new StorageError(
            'INVALID_ARGUMENT',
            `put ${key}: contentLength is ${options.contentLength} but the body had ${size} bytes`,
          );
        }
        stats = await this.#seal(handle);
      } finally {
        await handle.close();
      }

      await this.#place(key, path, tempPath, options);
      temp = undefined;
      return infoOf(key, stats);
    } catch (e) {
      if (temp !== undefined) await rm(temp, { force: true });
      await cancel();
      throw e;
    }
  }

  /**
   * Moves a finished temp file to the key's path, deciding the condition under the key's lock:
   * linked into place for If-None-Match: * (link fails if the name exists, even if another
   * process made it a moment ago), renamed over the old file otherwise.
   */
  async #place(
    key: string,
    path: string,
    tempPath: string,
    options: PutOptions | undefined,
  ): Promise<void> {
    await withKeyLock(path, async () => {
      this.#checkCondition(key, await this.#current(key, path), options);
      if (options?.ifNoneMatch === '*') {
        try {
          await link(tempPath, path);
        } catch (e) {
          if (errnoOf(e) === 'EEXIST') {
            throw preconditionFailed(key, 'the object exists (If-None-Match: *)', e);
          }
          throw e;
        }
        await unlink(tempPath);
      } else {
        try {
          await rename(tempPath, path);
        } catch (e) {
          if (errnoOf(e) === 'EISDIR' || errnoOf(e) === 'ENOTEMPTY') {
            throw conflict(key, 'other keys are stored below it', e);
          }
          throw e;
        }
      }
      await syncDirectory(dirname(path));
    });
  }

  /** Stamps a finished temp file with a fresh mtime and fsyncs it; its stats give the etag. */
  async #seal(handle: FileHandle): Promise<BigIntStats> {
    const stamp = nextStampSeconds();
    await handle.utimes(stamp, stamp);
    await handle.sync();
    // Rename and link keep the inode, size and mtime: this is the stored object's etag.
    return handle.stat({ bigint: true });
  }

  async copy(from: string, to: string, options?: CopyOptions): Promise<ObjectInfo> {
    checkCopyOptions(from, to, options);
    const source = this.pathOf(from);
    const path = this.pathOf(to);
    const condition: PutOptions = { ifNoneMatch: options?.ifNoneMatch };
    for (let attempt = 1; ; attempt++) {
      const before = await this.#source(from, source, options?.sourceIfMatch);
      // Fail fast, before copying bytes that could not be placed; decided again under the lock.
      this.#checkCondition(to, await this.#current(to, path), condition);
      let temp: string | undefined;
      try {
        // The temp file is made first (with the key's directories), then overwritten by the copy:
        // it keeps a concurrent delete from pruning the directory under us.
        const { handle: reserved, tempPath } = await this.#openTemp(to, path, dirname(path));
        temp = tempPath;
        await reserved.close();
        try {
          // A reflink where the filesystem can (btrfs, xfs, APFS), an in-kernel copy otherwise.
          await copyFile(source, tempPath, constants.COPYFILE_FICLONE);
        } catch (e) {
          if (isMissing(e) || errnoOf(e) === 'EISDIR') throw notFound(from, e);
          throw e;
        }
        // copyFile opens the source by name, so a writer that renamed a new version into place
        // meanwhile may have given us its bytes. Every write here makes a new inode with a later
        // mtime, so the same etag after the copy as before means the copy is of that version.
        const after = await this.#source(from, source, options?.sourceIfMatch);
        if (after.etag !== before.etag) {
          if (attempt < 3) continue;
          throw new StorageError(
            'UNAVAILABLE',
            `copy ${from}: the object kept changing while it was copied`,
          );
        }
        const handle = await open(tempPath, 'r+');
        let stats: BigIntStats;
        try {
          stats = await this.#seal(handle);
        } finally {
          await handle.close();
        }
        await this.#place(to, path, tempPath, condition);
        temp = undefined;
        return infoOf(to, stats);
      } finally {
        if (temp !== undefined) await rm(temp, { force: true });
      }
    }
  }

  /** The source of a copy: NOT_FOUND unless it is a file, PRECONDITION_FAILED unless it matches. */
  async #source(key: string, path: string, ifMatch: string | undefined): Promise<ObjectInfo> {
    let stats: BigIntStats;
    try {
      stats = await stat(path, { bigint: true });
    } catch (e) {
      if (isMissing(e)) throw notFound(key, e);
      throw e;
    }
    if (!stats.isFile()) throw notFound(key);
    const info = infoOf(key, stats);
    if (ifMatch !== undefined && info.etag !== ifMatch) {
      throw preconditionFailed(key, 'the etag does not match sourceIfMatch');
    }
    return info;
  }

  /** The current object's info; undefined if missing; INVALID_KEY if the path is a directory. */
  async #current(key: string, path: string): Promise<ObjectInfo | undefined> {
    try {
      const stats = await stat(path, { bigint: true });
      if (stats.isDirectory()) throw conflict(key, 'other keys are stored below it');
      return stats.isFile() ? infoOf(key, stats) : undefined;
    } catch (e) {
      if (errnoOf(e) === 'ENOTDIR') throw conflict(key, 'a key above it is an object', e);
      if (isMissing(e)) return undefined;
      throw e;
    }
  }

  #checkCondition(key: string, current: ObjectInfo | undefined, options?: PutOptions): void {
    if (options?.ifNoneMatch === '*' && current) {
      throw preconditionFailed(key, 'the object exists (If-None-Match: *)');
    }
    if (options?.ifMatch !== undefined && current?.etag !== options.ifMatch) {
      throw preconditionFailed(
        key,
        current ? 'the etag does not match If-Match' : 'no object to match If-Match',
      );
    }
  }

  /** Makes the key's directory (fsyncing new entries) and opens a temp file in it. */
  async #openTemp(
    key: string,
    path: string,
    directory: string,
  ): Promise<{ handle: FileHandle; tempPath: string }> {
    const tempPath = join(
      directory,
      `.${basename(path)}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`,
    );
    // A concurrent delete may remove a directory we just made (it prunes empty ones): retry.
    for (let attempt = 0; ; attempt++) {
      let created: string | undefined;
      try {
        created = await mkdir(directory, { recursive: true });
      } catch (e) {
        if (errnoOf(e) === 'ENOTDIR' || errnoOf(e) === 'EEXIST') {
          throw conflict(key, 'a key above it is an object', e);
        }
        throw e;
      }
      if (created !== undefined) {
        // New directory entries survive a crash only once their parents are fsynced.
        for (let d = directory; ; d = dirname(d)) {
          await syncDirectory(dirname(d));
          if (d === created || dirname(d) === d) break;
        }
      }
      try {
        return { handle: await open(tempPath, 'wx', 0o644), tempPath };
      } catch (e) {
        if (errnoOf(e) === 'ENOENT' && attempt < 5) continue;
        throw e;
      }
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    await withKeyLock(path, async () => {
      try {
        await unlink(path);
      } catch (e) {
        // Missing, or a directory of other keys (not an object): nothing to delete.
        if (isMissing(e) || errnoOf(e) === 'EISDIR' || errnoOf(e) === 'EPERM') return;
        throw e;
      }
      await syncDirectory(dirname(path));
    });
    // Prune directories left empty, so the key's name can become an object again.
    for (let d = dirname(path); d !== this.directory && d.startsWith(this.directory + sep);) {
      try {
        await rmdir(d);
      } catch {
        break;
      }
      d = dirname(d);
    }
  }

  async list(options: ListOptions): Promise<ListPage> {
    const limit = checkListOptions(options);
    const { prefix, cursor } = options;
    const cut = prefix.lastIndexOf('/');
    const base = prefix.slice(0, cut + 1);
    const objects: ObjectInfo[] = [];
    const start = base === '' ? this.directory : this.pathOf(base.slice(0, -1));
    // One more than a page, to know whether there is a next one.
    await this.#walk(start, base, prefix.slice(cut + 1), cursor, objects, limit + 1);
    if (objects.length <= limit) return { objects };
    objects.length = limit;
    return { objects, cursor: objects[limit - 1]?.key };
  }

  /** Depth-first in key order: a directory sorts as its name plus '/', as its keys do. */
  async #walk(
    directory: string,
    keyPrefix: string,
    namePrefix: string,
    cursor: string | undefined,
    out: ObjectInfo[],
    want: number,
  ): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await readdir(directory, { withFileTypes: true });
    } catch (e) {
      if (isMissing(e)) return;
      throw e;
    }
    const sorted = entries
      .filter((e) => e.name.startsWith(namePrefix) && !isTempName(e.name))
      .map((e) => ({ entry: e, sortKey: keyPrefix + e.name + (e.isDirectory() ? '/' : '') }))
      .sort((a, b) => compareKeys(a.sortKey, b.sortKey));
    for (const { entry, sortKey } of sorted) {
      if (out.length >= want) return;
      const path = join(directory, entry.name);
      if (entry.isDirectory()) {
        // Skip a directory whose keys all sort at or before the cursor.
        if (
          cursor !== undefined &&
          compareKeys(sortKey, cursor) < 0 &&
          !cursor.startsWith(sortKey)
        ) {
          continue;
        }
        await this.#walk(path, sortKey, '', cursor, out, want);
      } else if (entry.isFile()) {
        if (cursor !== undefined && compareKeys(sortKey, cursor) <= 0) continue;
        try {
          const stats = await stat(path, { bigint: true });
          if (stats.isFile()) out.push(infoOf(sortKey, stats));
        } catch (e) {
          // Deleted while we listed: not there any more.
          if (!isMissing(e)) throw e;
        }
      }
    }
  }
}

async function writeBody(handle: FileHandle, body: PutBody): Promise<number> {
  if (body instanceof Uint8Array) {
    await handle.writeFile(body);
    return body.byteLength;
  }
  let size = 0;
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return size;
      let written = 0;
      while (written < value.byteLength) {
        const { bytesWritten } = await handle.write(value, written, value.byteLength - written);
        written += bytesWritten;
      }
      size += value.byteLength;
    }
  } catch (e) {
    await reader.cancel(e).catch(() => undefined);
    throw e;
  } finally {
    reader.releaseLock();
  }
}
