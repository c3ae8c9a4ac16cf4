/**
 * The MetadataStore port over a directory, in the layout python-tuf and the TUF conformance
 * suite expect: one flat file per role, `quote(role, '') + '.json'`, holding the exact bytes
 * that were verified (never a re-serialization).
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { quotePathSegment } from '@cairn/verify/encoding';
import type { MetadataStore } from '@cairn/verify/ports';
import { writeFileAtomic } from './atomic-file.js';

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

export class FsMetadataStore implements MetadataStore {
  readonly directory: string;

  constructor(directory: string) {
    this.directory = directory;
  }

  /** The file of a role: percent-encoding makes every name one safe path segment. */
  pathOf(roleName: string): string {
    return join(this.directory, `${quotePathSegment(roleName)}.json`);
  }

  async load(roleName: string): Promise<Uint8Array | undefined> {
    try {
      const data = await readFile(this.pathOf(roleName));
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async persist(roleName: string, bytes: Uint8Array): Promise<void> {
    await mkdir(this.directory, { recursive: true });
    await writeFileAtomic(this.pathOf(roleName), bytes);
  }

  async remove(roleName: string): Promise<void> {
    await rm(this.pathOf(roleName), { force: true });
  }
}
