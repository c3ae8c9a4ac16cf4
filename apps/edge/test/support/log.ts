/**
 * A transparency log for the edge's tests: tlog's own LogWriter over a BlobStore, signed by a
 * fresh ed25519 key (WebCrypto, so no key material is checked in), and the `x-cairn-log` value
 * a root declares it with. `forkOf` makes what an attacker holding the log key could: another
 * tree under the same key and origin, with its own validly signed checkpoint and tiles.
 */
import type { BlobStore } from '@cairn/storage/blob-store';
import { MemoryBlobStore } from '@cairn/storage/memory-store';
import { encodeEntry, metadataEntry } from '@cairn/tlog/entry';
import { LOG_FIELD, logConfigField } from '@cairn/tlog/log-config';
import { LogWriter } from '@cairn/tlog/log-writer';
import {
  ALGORITHM_ED25519,
  createEd25519Signer,
  formatVerifierKey,
  type NoteSigner,
} from '@cairn/tlog/note';

export const LOG_ORIGIN = 'cairn.test/log';

export interface TestLogKey {
  readonly signer: NoteSigner;
  /** The C2SP verifier key: what the root declares. */
  readonly vkey: string;
  /** `{ "x-cairn-log": {...} }`, for a root's signed extra fields. */
  readonly rootField: Record<string, unknown>;
}

export async function createLogKey(origin = LOG_ORIGIN): Promise<TestLogKey> {
  const pair = await crypto.subtle.generateKey('Ed25519', true, ['sign', 'verify']);
  const publicKey = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
  // PKCS#8 of an Ed25519 key ends in its 32-byte seed.
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', pair.privateKey));
  const signer = await createEd25519Signer(origin, pkcs8.slice(-32));
  const vkey = await formatVerifierKey(origin, ALGORITHM_ED25519, publicKey);
  return { signer, vkey, rootField: { [LOG_FIELD]: logConfigField({ key: vkey }) } };
}

/** A log written into `store` under `log/`, appended to as the origin would. */
export class TestLog {
  readonly key: TestLogKey;
  readonly store: BlobStore;
  readonly writer: LogWriter;
  /** Every checkpoint written, oldest first: a test can roll the bucket back. */
  readonly checkpoints: Uint8Array[] = [];
  /** Every entry appended, in order. */
  readonly entries: Uint8Array[] = [];
  #now: () => Date;

  constructor(key: TestLogKey, store: BlobStore, now: () => Date = () => new Date()) {
    this.key = key;
    this.store = store;
    this.#now = now;
    this.writer = new LogWriter({ store, signer: key.signer, now, lockWaitMs: 5_000 });
  }

  /** Appends the entry for one metadata file. */
  async logMetadata(role: string, version: number, bytes: Uint8Array): Promise<number> {
    const entry = encodeEntry(await metadataEntry(role, version, bytes, this.#now()));
    return this.append([entry]);
  }

  /** Appends `entries` and returns the new size. */
  async append(entries: readonly Uint8Array[]): Promise<number> {
    const result = await this.writer.append(entries);
    this.entries.push(...entries);
    this.checkpoints.push(new TextEncoder().encode(result.checkpoint));
    return result.size;
  }

  /** `count` filler entries (distinct, small), `tag` making them unique to this call. */
  async fill(count: number, tag: string): Promise<number> {
    const entries = Array.from({ length: count }, (_, i) =>
      new TextEncoder().encode(`${tag}-${String(i).padStart(6, '0')}`),
    );
    return this.append(entries);
  }
}

/**
 * A fork of `log`: the same key and origin, its first `shared` entries, then `extra` others,
 * in a store of its own (tiles and a validly signed checkpoint).
 */
export async function forkOf(log: TestLog, shared: number, extra: number): Promise<TestLog> {
  const fork = new TestLog(log.key, new MemoryBlobStore());
  if (shared > 0) await fork.append(log.entries.slice(0, shared));
  await fork.fill(extra, 'fork');
  return fork;
}
