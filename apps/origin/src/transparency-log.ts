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
import {
  formatAddCheckpointRequest,
  openCosignatureLines,
  parseTreeSize,
  TREE_SIZE_CONTENT_TYPE,
  witnessVerifier,
} from '@cairn/tlog/witness';
import { encodeEntry, metadataEntry } from '@cairn/tlog/entry';
import { isTlogError } from '@cairn/tlog/errors';
import {
  KEY_NAME_FIELD,
  LOG_FIELD,
  logConfigField,
  logConfigFromRoot,
  type LogConfig,
} from '@cairn/tlog/log-config';
import { LogWriter, type AppendResult, type CosignRequest } from '@cairn/tlog/log-writer';
import {
  ALGORITHM_ED25519,
  createEd25519Signer,
  formatVerifierKey,
  parseNote,
  type NoteSignature,
  type NoteSigner,
} from '@cairn/tlog/note';
import { fromHex } from '@cairn/verify/encoding';
import { Key } from '@cairn/verify/keys';
import type { Root } from '@cairn/verify/metadata';
import type { Ed25519Signer } from '@cairn/verify/signer';
import { OriginError } from './errors.js';
import type { Logger } from './log.js';
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
  /** Witnesses the root declares (cosignature/v1 verifier keys) and how many must cosign. */
  readonly witnesses?: readonly string[] | undefined;
  readonly witnessThreshold?: number | undefined;
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

/** A witness the origin asks to cosign each new checkpoint (C2SP tlog-witness). */
export interface WitnessEndpoint {
  /** The witness's submission prefix: requests go to `<url>/add-checkpoint`. */
  readonly url: string;
  /** The witness's cosignature/v1 verifier key. */
  readonly key: string;
}

export interface WitnessSettings {
  readonly witnesses: readonly WitnessEndpoint[];
  /**
   * How many of them must cosign before a checkpoint is written. The root's own
   * `witness_threshold` over the witnesses it declares is always required as well.
   */
  readonly threshold: number;
  /** Per witness request. Default 10 s. */
  readonly timeoutMs?: number | undefined;
  /** Warnings (a witness below the threshold that did not cosign). */
  readonly logger?: Logger | undefined;
  readonly fetch?: typeof fetch | undefined;
}

/** A witness has this long to answer one add-checkpoint: publication waits for it. */
const DEFAULT_WITNESS_TIMEOUT_MS = 10_000;
/** A witness answers with a few signature lines; more than a note's worth is not an answer. */
const MAX_WITNESS_RESPONSE_BYTES = 64 * 1024;
/** The most of a refusal's body quoted in an error or warning. */
const MAX_QUOTED_BODY = 200;

/** The body as text, refusing one longer than `limit` bytes without reading past it. */
async function boundedText(response: Response, limit: number): Promise<string> {
  const reader = (response.body as ReadableStream<Uint8Array> | null)?.getReader();
  if (reader === undefined) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel();
      throw new Error(`the answer is longer than ${String(limit)} bytes`);
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/**
 * One witness's cosignatures over the new checkpoint. `old` starts at the writer's old size; a
 * 409 naming another size is retried once with a proof from that size.
 */
async function askWitness(
  witness: WitnessEndpoint,
  request: CosignRequest,
  settings: WitnessSettings,
): Promise<readonly NoteSignature[]> {
  const { body, note, newSize } = request;
  const verifier = await witnessVerifier(witness.key);
  const doFetch = settings.fetch ?? fetch;
  const url = `${witness.url.replace(/\/+$/, '')}/add-checkpoint`;
  let old = request.oldSize;
  for (let attempt = 0; ; attempt++) {
    const proof = old === 0 ? [] : await request.consistencyProof(old);
    const response = await doFetch(url, {
      method: 'POST',
      headers: { 'content-type': 'text/plain; charset=utf-8' },
      body: formatAddCheckpointRequest({ oldSize: old, proof, checkpoint: note }),
      signal: AbortSignal.timeout(settings.timeoutMs ?? DEFAULT_WITNESS_TIMEOUT_MS),
    });
    const text = await boundedText(response, MAX_WITNESS_RESPONSE_BYTES);
    if (response.status === 200) return openCosignatureLines(body, text, verifier);
    const type = response.headers.get('content-type') ?? '';
    if (response.status === 409 && type.startsWith(TREE_SIZE_CONTENT_TYPE) && attempt === 0) {
      const size = parseTreeSize(text);
      // The witness knows another size of this log: prove from there, once. A size beyond
      // ours means it cosigned a tree this checkpoint does not extend.
      if (size !== old && size <= newSize) {
        old = size;
        continue;
      }
    }
    throw new Error(
      `witness ${verifier.name} answered ${String(response.status)} for size ${String(newSize)} from old ${String(old)}: ${text.slice(0, MAX_QUOTED_BODY).trim()}`,
    );
  }
}

/** One line for a failed witness request; fetch's own message ("fetch failed") hides the cause. */
function describeFailure(reason: unknown): string {
  if (!(reason instanceof Error)) return String(reason);
  const cause = reason.cause instanceof Error ? ` (${reason.cause.message})` : '';
  return `${reason.message}${cause}`;
}

/**
 * The LogWriter hook that collects witness cosignatures: every configured witness is asked in
 * parallel; fewer than the configured threshold (or than the root's own threshold over the
 * witnesses it declares) fails the append with WITNESS_UNAVAILABLE before the checkpoint is
 * written, so nothing is published that clients requiring the quorum would refuse.
 */
function witnessCosigner(
  config: LogConfig,
  settings: WitnessSettings,
): (request: CosignRequest) => Promise<readonly NoteSignature[]> {
  return async (request) => {
    const results = await Promise.allSettled(
      settings.witnesses.map((w) => askWitness(w, request, settings)),
    );
    const cosignatures: NoteSignature[] = [];
    const failures: string[] = [];
    let declared = 0;
    for (const [i, result] of results.entries()) {
      const witness = settings.witnesses[i] as WitnessEndpoint;
      if (result.status === 'fulfilled') {
        cosignatures.push(...result.value);
        if (config.witnesses.includes(witness.key)) declared++;
      } else {
        failures.push(`${witness.url}: ${describeFailure(result.reason)}`);
      }
    }
    const cosigned = results.filter((r) => r.status === 'fulfilled').length;
    if (cosigned < settings.threshold || declared < config.witnessThreshold) {
      throw new OriginError(
        'WITNESS_UNAVAILABLE',
        `${String(cosigned)} of ${String(settings.witnesses.length)} witnesses cosigned the log's checkpoint (${String(declared)} the root declares), ${String(Math.max(settings.threshold, config.witnessThreshold))} required: ${failures.join('; ')}`,
      );
    }
    for (const failure of failures) {
      settings.logger?.warn('witness did not cosign', { witness: failure });
    }
    return cosignatures;
  };
}

export class TransparencyLog {
  readonly #store: BlobStore;
  readonly #key: Ed25519Signer | undefined;
  readonly #now: () => Date;
  readonly #witnesses: WitnessSettings | undefined;
  /** One writer per declared log (a root rotation could name another key or witnesses). */
  readonly #writers = new Map<string, Promise<LogWriter>>();

  /**
   * `key`: the log's private key; undefined on an origin whose roots declare no log.
   * `witnesses`: who cosigns each new checkpoint (`log.witnesses` in the configuration).
   */
  constructor(
    store: BlobStore,
    key?: Ed25519Signer,
    now: () => Date = () => new Date(),
    witnesses?: WitnessSettings,
  ) {
    this.#store = store;
    this.#key = key;
    this.#now = now;
    this.#witnesses = witnesses;
  }

  /**
   * The writer for the log `root` declares; undefined when it declares none. CONFIG_INVALID
   * when this origin does not hold the log's key. Publications call it before planning, so a
   * missing key refuses a publication before anything is written.
   */
  async writerFor(root: Root): Promise<LogWriter | undefined> {
    const config = declaredLog(root);
    if (config === undefined) return undefined;
    const id = JSON.stringify(logConfigField(config));
    let writer = this.#writers.get(id);
    if (writer === undefined) {
      writer = this.#openWriter(config);
      this.#writers.set(id, writer);
      void writer.catch(() => this.#writers.delete(id));
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
    const signer = await logSignerFor(key, config.origin);
    // Without settings (cairn init's first entry) nothing is cosigned; a service always has them.
    const witnesses = this.#witnesses ?? { witnesses: [], threshold: 0 };
    if (this.#witnesses !== undefined) {
      const configured = witnesses.witnesses.filter((w) => config.witnesses.includes(w.key));
      if (configured.length < config.witnessThreshold) {
        throw new OriginError(
          'CONFIG_INVALID',
          `the root requires cosignatures from ${String(config.witnessThreshold)} of the witnesses it declares, but log.witnesses configures ${String(configured.length)} of them: add their URLs and keys to log.witnesses`,
        );
      }
    }
    return new LogWriter({
      store: this.#store,
      signer,
      prefix: LOG_PREFIX,
      lockKey: LOG_LOCK_KEY,
      now: this.#now,
      ...(witnesses.witnesses.length > 0 ? { cosign: witnessCosigner(config, witnesses) } : {}),
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
