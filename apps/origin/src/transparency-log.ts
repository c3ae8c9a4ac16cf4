/**
 * The transparency log as the origin writes it: one entry (`@cairn/tlog/entry`) for every root,
 * targets and snapshot version it publishes, appended before the timestamp that makes them
 * visible, in the public `log/` prefix every mirror serves (C2SP tlog-tiles, checkpoint signed
 * by the log key).
 *
 * The root declares the log (`x-cairn-log`: the log's verifier key, whose name is the
 * checkpoint's origin line), so the key that signs checkpoints is under the root keys'
 * threshold like every other key. A repository whose root declares no log has none: nothing
 * is appended. One that declares a log cannot publish without its key: clients requiring log
 * inclusion would refuse what it published.
 *
 * Entries are built from a publication's exact bytes and its plan's time, so finishing a plan
 * twice appends nothing the second time (LogWriter finds the same entries already logged).
 */
import type { BlobStore } from '@cairn/storage/blob-store';
import { parseCheckpoint } from '@cairn/tlog/checkpoint';
import { encodeEntry, metadataEntry } from '@cairn/tlog/entry';
import { isTlogError } from '@cairn/tlog/errors';
import {
  KEY_NAME_FIELD,
  LOG_FIELD,
  logConfigField,
  logConfigFromRoot,
  type LogConfig,
} from '@cairn/tlog/log-config';
import { LogWriter, type AppendResult } from '@cairn/tlog/log-writer';
import {
  ALGORITHM_ED25519,
  createEd25519Signer,
  formatVerifierKey,
  parseNote,
  type NoteSigner,
} from '@cairn/tlog/note';
import { fromHex } from '@cairn/verify/encoding';
import { Key } from '@cairn/verify/keys';
import type { Root } from '@cairn/verify/metadata';
import type { Ed25519Signer } from '@cairn/verify/signer';
import { OriginError } from './errors.js';
import { LOG_CHECKPOINT_KEY, LOG_LOCK_KEY, LOG_PREFIX } from './layout.js';
import { readBytes, storage } from './store-io.js';
import { useNodeSha256 } from '@cairn/tlog/node-hash';

// The origin runs on Node: the log hashes through node:crypto, not WebCrypto's costly per-call
// digest (see @cairn/tlog/node-hash).
useNodeSha256();

export { KEY_NAME_FIELD, LOG_FIELD };

/** A metadata file a publication makes visible, as the log records it. */
export interface LoggedFile {
  readonly role: string;
  readonly version: number;
  readonly bytes: Uint8Array;
}

/** The log's private key and the name it signs under: what `initRepository` declares. */
export interface LogKey {
  readonly name: string;
  readonly key: Ed25519Signer;
}

/** The public half of a log key: a signer, or a key read from a `.pub` file. */
export interface LogPublicKey {
  readonly keyid: string;
  readonly publicKey: Key;
}

function publicKeyBytes(key: LogPublicKey): Uint8Array {
  const bytes = fromHex(key.publicKey.publicValue);
  if (bytes?.length !== 32) {
    throw new OriginError('KEY_FILE_INVALID', `log key ${key.keyid}: not an ed25519 key`);
  }
  return bytes;
}

/** The declaration of the log `key` signs as `name`, without witnesses. */
export async function logConfigFor(key: LogPublicKey, name: string): Promise<LogConfig> {
  return {
    origin: name,
    key: await formatVerifierKey(name, ALGORITHM_ED25519, publicKeyBytes(key)),
    witnesses: [],
    witnessThreshold: 0,
  };
}

/** The `x-cairn-log` value of a root's signed part for `config`. */
export function logField(config: LogConfig): Record<string, unknown> {
  return { [LOG_FIELD]: logConfigField(config) };
}

/**
 * The checkpoint signer for the log `key` signs as `name`: the same 32-byte ed25519 seed the
 * key file holds, as a C2SP note key.
 */
export async function logSignerFor(key: Ed25519Signer, name: string): Promise<NoteSigner> {
  const seed = key.exportSecretKey();
  try {
    return await createEd25519Signer(name, seed);
  } finally {
    seed.fill(0);
  }
}

/** The log `root` declares, or undefined. A malformed declaration is INTEGRITY: root is signed. */
export function declaredLog(root: Root): LogConfig | undefined {
  try {
    return logConfigFromRoot(root.extra);
  } catch (error) {
    if (!isTlogError(error)) throw error;
    throw new OriginError('INTEGRITY', `root version ${root.version}: ${error.message}`, {
      cause: error,
    });
  }
}

/** The publisher name a root key object carries (`x-cairn-name`), if any. */
export function publisherName(key: Key): string | undefined {
  const name = key.toJSON()[KEY_NAME_FIELD];
  return typeof name === 'string' ? name : undefined;
}

/** `key` named `name` (`x-cairn-name`); the keyid stays: it hashes keytype, scheme, keyval. */
export function withPublisherName(key: Key, name: string): Key {
  return Key.fromJSON({ ...key.toJSON(), [KEY_NAME_FIELD]: name }, 'key');
}

/** Maps the log's own failures to the origin's codes; storage errors pass through. */
function logFailure(error: unknown, what: string): unknown {
  if (!isTlogError(error)) return error;
  // Other instances were appending: the publication stays planned and is finished later.
  if (error.code === 'LOCKED' || error.code === 'CONFLICT') {
    return new OriginError('CONFLICT', `${what}: ${error.message}`, { cause: error });
  }
  // Tiles that do not hash to the checkpoint, a checkpoint of another log: storage changed.
  return new OriginError('INTEGRITY', `${what}: ${error.message}`, { cause: error });
}

export class TransparencyLog {
  readonly #store: BlobStore;
  readonly #key: Ed25519Signer | undefined;
  readonly #now: () => Date;
  /** One writer per declared log key (a root rotation could name another). */
  readonly #writers = new Map<string, Promise<LogWriter>>();

  /** `key`: the log's private key; undefined on an origin whose roots declare no log. */
  constructor(store: BlobStore, key?: Ed25519Signer, now: () => Date = () => new Date()) {
    this.#store = store;
    this.#key = key;
    this.#now = now;
  }

  /**
   * The writer for the log `root` declares; undefined when it declares none. CONFIG_INVALID
   * when this origin does not hold the log's key. Publications call it before planning, so a
   * missing key refuses a publication before anything is written.
   */
  async writerFor(root: Root): Promise<LogWriter | undefined> {
    const config = declaredLog(root);
    if (config === undefined) return undefined;
    let writer = this.#writers.get(config.key);
    if (writer === undefined) {
      writer = this.#openWriter(config);
      this.#writers.set(config.key, writer);
      void writer.catch(() => this.#writers.delete(config.key));
    }
    return writer;
  }

  async #openWriter(config: LogConfig): Promise<LogWriter> {
    const key = this.#key;
    if (key === undefined) {
      throw new OriginError(
        'CONFIG_INVALID',
        `the root declares the transparency log ${config.origin}, but this origin holds no log key: configure keys.log (the key file cairn init made) and restart`,
      );
    }
    const ours = await logConfigFor(key, config.origin);
    if (ours.key !== config.key) {
      throw new OriginError(
        'CONFIG_INVALID',
        `the root declares the log key ${config.key}, but the configured log key is ${ours.key}: configure keys.log with the key cairn init made for this repository`,
      );
    }
    return new LogWriter({
      store: this.#store,
      signer: await logSignerFor(key, config.origin),
      prefix: LOG_PREFIX,
      lockKey: LOG_LOCK_KEY,
      now: this.#now,
    });
  }

  /**
   * Appends one entry per file, in order, to the log `root` (the root the files are published
   * under) declares; nothing when it declares none. Appending the same files with the same
   * time again changes nothing (`appended: false`).
   */
  async append(
    root: Root,
    files: readonly LoggedFile[],
    time: Date,
  ): Promise<AppendResult | undefined> {
    const writer = await this.writerFor(root);
    if (writer === undefined || files.length === 0) return undefined;
    const entries: Uint8Array[] = [];
    for (const file of files) {
      entries.push(encodeEntry(await metadataEntry(file.role, file.version, file.bytes, time)));
    }
    try {
      return await storage('appending to the transparency log', () => writer.append(entries));
    } catch (error) {
      throw logFailure(error, 'appending to the transparency log');
    }
  }

  /** The log's origin line and size from the stored checkpoint; undefined before the first entry. */
  async size(): Promise<{ origin: string; size: number } | undefined> {
    const found = await readBytes(this.#store, LOG_CHECKPOINT_KEY);
    if (found === undefined) return undefined;
    try {
      const checkpoint = parseCheckpoint(parseNote(found.bytes).text);
      return { origin: checkpoint.origin, size: checkpoint.size };
    } catch (error) {
      throw logFailure(error, `reading ${LOG_CHECKPOINT_KEY}`);
    }
  }
}
