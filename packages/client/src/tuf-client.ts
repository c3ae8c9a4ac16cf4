/**
 * The TUF client for Node in one place: an Updater from @cairn/verify wired to HTTP, a
 * metadata directory and node:crypto; trust-on-first-use of a root; and installing verified
 * targets into a directory so that only complete, verified files ever appear there.
 */
import { createReadStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { quotePathSegment } from '@cairn/verify/encoding';
import { isVerifyError } from '@cairn/verify/errors';
import { ContentVerifier, verifyLengthAndHashes } from '@cairn/verify/hash';
import type { UpdaterLimits } from '@cairn/verify/limits';
import type { TargetFile } from '@cairn/verify/metadata';
import type { Fetcher } from '@cairn/verify/ports';
import { TrustedMetadataSet } from '@cairn/verify/trusted-metadata-set';
import { Updater } from '@cairn/verify/updater';
import { writeFileAtomic } from './atomic-file.js';
import { FsMetadataStore } from './fs-metadata-store.js';
import { HttpFetcher } from './http-fetcher.js';
import { nodeHashPort } from './node-hash.js';

export interface TufClientOptions {
  /** Directory of the trusted metadata; must already hold root.json (see initTrustedRoot). */
  readonly metadataDir: string;
  /** Base URL of the repository's metadata. */
  readonly metadataUrl: string;
  /** Base URL of target files, if downloads should not have to name it. */
  readonly targetBaseUrl?: string;
  /** Defaults to an HttpFetcher with its default timeout. */
  readonly fetcher?: Fetcher;
  /** The clock, read once per refresh. Defaults to the system clock. */
  readonly now?: () => Date;
  readonly limits?: Partial<UpdaterLimits>;
}

export function createTufClient(options: TufClientOptions): Updater {
  return new Updater({
    metadataBaseUrl: options.metadataUrl,
    targetBaseUrl: options.targetBaseUrl,
    fetcher: options.fetcher ?? new HttpFetcher(),
    store: new FsMetadataStore(options.metadataDir),
    hash: nodeHashPort,
    limits: options.limits,
    now: options.now,
  });
}

/**
 * Stores `rootBytes` as the trusted root of `metadataDir`, after checking that they are root
 * metadata signed by a threshold of their own root keys. Expiry is not checked: an expired
 * root can still start a chain of rotations (spec 5.3.10 checks the final root). Throws a
 * VerifyError and writes nothing when the bytes are not such a root.
 */
export async function initTrustedRoot(metadataDir: string, rootBytes: Uint8Array): Promise<void> {
  await TrustedMetadataSet.create(rootBytes, new Date(), nodeHashPort);
  await new FsMetadataStore(metadataDir).persist('root', rootBytes);
}

/** What downloadTargetTo needs from an Updater. */
export interface TargetDownloader {
  downloadTarget(target: TargetFile, targetBaseUrl?: string): Promise<Uint8Array>;
}

export interface StoredTarget {
  /** Where the verified file is. */
  readonly path: string;
  /** False when a file with the right length and hashes was already there. */
  readonly downloaded: boolean;
}

/** The local file of a target: `quote(path, '')`, as python-tuf names it, so one flat file. */
export function targetFilePath(targetDir: string, target: TargetFile): string {
  return join(targetDir, quotePathSegment(target.path));
}

/** Whether the file at `path` is exactly `target`, hashed as a stream in constant memory. */
async function isCached(path: string, target: TargetFile): Promise<boolean> {
  try {
    const info = await stat(path);
    if (!info.isFile() || info.size !== target.length) return false;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  try {
    const verifier = new ContentVerifier(nodeHashPort, target, `cached target ${target.path}`);
    for await (const chunk of createReadStream(path)) verifier.update(chunk as Uint8Array);
    await verifier.finish();
    return true;
  } catch (e) {
    if (isVerifyError(e)) return false;
    throw e;
  }
}

/**
 * Installs a verified target as `targetDir/quote(target.path, '')`. A file already there with
 * the listed length and hashes is kept and nothing is downloaded; anything else there is
 * replaced atomically, and only after the new bytes passed verification, so the directory
 * never holds a partial or unverified file.
 */
export async function downloadTargetTo(
  updater: TargetDownloader,
  target: TargetFile,
  targetDir: string,
  targetBaseUrl?: string,
): Promise<StoredTarget> {
  const path = targetFilePath(targetDir, target);
  if (await isCached(path, target)) return { path, downloaded: false };
  const bytes = await updater.downloadTarget(target, targetBaseUrl);
  // The Updater verified these bytes; checked again here so that this function's promise does
  // not depend on which TargetDownloader it was given.
  await verifyLengthAndHashes(nodeHashPort, bytes, target, `target ${target.path}`);
  await mkdir(targetDir, { recursive: true });
  await writeFileAtomic(path, bytes);
  return { path, downloaded: true };
}
