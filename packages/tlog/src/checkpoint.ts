/**
 * C2SP tlog-checkpoint bodies, and checkpoints signed as notes by the log (ed25519) and cosigned
 * by witnesses (C2SP tlog-cosignature, cosignature/v1).
 */
import { getPublicKeyAsync, signAsync } from '@noble/ed25519';
import { fromBase64, toBase64, utf8 } from './bytes.js';
import { TlogError } from './errors.js';
import { ED25519_SIGNATURE_SIZE, HASH_SIZE, MAX_TREE_SIZE } from './limits.js';
import {
  ALGORITHM_COSIGNATURE_V1,
  checkPublicKey,
  keyHash,
  openNote,
  type NoteSignature,
  type NoteSigner,
  type NoteVerifier,
  verifyEd25519,
} from './note.js';

export interface Checkpoint {
  /** The log's unique origin line, e.g. `example.com/cairn/log`. */
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Uint8Array;
  /** Extension lines after the root hash, each non-empty. */
  readonly extensions: readonly string[];
}

/** The checkpoint body: origin, decimal size, base64 root hash, extension lines, each + newline. */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  const { origin, size, rootHash, extensions } = checkpoint;
  if (!Number.isSafeInteger(size) || size < 0 || size > MAX_TREE_SIZE) {
    throw new TlogError(
      'INVALID_ARGUMENT',
      `size must be a safe non-negative integer, got ${String(size)}`,
    );
  }
  if (rootHash.length !== HASH_SIZE) {
    throw new TlogError('INVALID_ARGUMENT', `rootHash must be ${String(HASH_SIZE)} bytes`);
  }
  for (const line of [origin, ...extensions]) checkLine(line);
  return [origin, String(size), toBase64(rootHash), ...extensions].map((l) => `${l}\n`).join('');
}

function checkLine(line: string): void {
  if (line === '' || line.includes('\n')) {
    throw new TlogError(
      'MALFORMED_CHECKPOINT',
      `checkpoint lines must be non-empty single lines, got ${JSON.stringify(line)}`,
    );
  }
}

/** Parses a checkpoint body (a signed note's text) strictly. */
export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith('\n'))
    throw new TlogError('MALFORMED_CHECKPOINT', 'checkpoint does not end in a newline');
  const lines = text.slice(0, -1).split('\n');
  const [origin, sizeText, rootText, ...extensions] = lines;
  if (origin === undefined || origin === '' || sizeText === undefined || rootText === undefined) {
    throw new TlogError(
      'MALFORMED_CHECKPOINT',
      'checkpoint needs origin, size and root hash lines',
    );
  }
  // Decimal, no sign, no leading zeros: one size, one spelling.
  if (!/^(?:0|[1-9][0-9]*)$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) {
    throw new TlogError('MALFORMED_CHECKPOINT', `bad tree size ${JSON.stringify(sizeText)}`);
  }
  const rootHash = fromBase64(rootText);
  if (rootHash === undefined || rootHash.length !== HASH_SIZE) {
    throw new TlogError('MALFORMED_CHECKPOINT', `bad root hash ${JSON.stringify(rootText)}`);
  }
  for (const e of extensions) {
    if (e === '') throw new TlogError('MALFORMED_CHECKPOINT', 'empty extension line');
  }
  return { origin, size: Number(sizeText), rootHash, extensions };
}

/** The message a cosignature/v1 signs: `cosignature/v1\ntime <T>\n` then the checkpoint body. */
export function cosignedMessage(text: string, timestamp: number): Uint8Array {
  return utf8(`cosignature/v1\ntime ${String(timestamp)}\n${text}`);
}

/** The timestamp (seconds since the epoch) inside a cosignature/v1 signature. */
export function cosignatureTimestamp(signature: Uint8Array): number {
  if (signature.length !== 8 + ED25519_SIGNATURE_SIZE) {
    throw new TlogError(
      'MALFORMED_NOTE',
      `cosignature must be 72 bytes, got ${String(signature.length)}`,
    );
  }
  const value = new DataView(signature.buffer, signature.byteOffset, 8).getBigUint64(0);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new TlogError('MALFORMED_NOTE', 'cosignature timestamp is out of range');
  }
  return Number(value);
}

/** A witness's cosigner: signs checkpoint bodies with the time from `now` (seconds). */
export async function createCosigner(
  name: string,
  secretKey: Uint8Array,
  now: () => number = () => Math.floor(Date.now() / 1000),
): Promise<NoteSigner> {
  if (secretKey.length !== 32) {
    throw new TlogError(
      'MALFORMED_KEY',
      `ed25519 secret key must be 32 bytes, got ${String(secretKey.length)}`,
    );
  }
  const hash = await keyHash(name, ALGORITHM_COSIGNATURE_V1, await getPublicKeyAsync(secretKey));
  const secret = secretKey.slice();
  return {
    name,
    keyHash: hash,
    async sign(text) {
      const timestamp = now();
      if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
        throw new TlogError(
          'INVALID_ARGUMENT',
          `timestamp must be a non-negative integer, got ${String(timestamp)}`,
        );
      }
      const out = new Uint8Array(8 + ED25519_SIGNATURE_SIZE);
      new DataView(out.buffer).setBigUint64(0, BigInt(timestamp));
      out.set(await signAsync(cosignedMessage(text, timestamp), secret), 8);
      return out;
    },
  };
}

/** A verifier of a witness's cosignature/v1 signatures. */
export async function createCosignatureVerifier(
  name: string,
  publicKey: Uint8Array,
): Promise<NoteVerifier> {
  checkPublicKey(publicKey);
  const hash = await keyHash(name, ALGORITHM_COSIGNATURE_V1, publicKey);
  const key = publicKey.slice();
  return {
    name,
    keyHash: hash,
    async verify(text, signature) {
      if (signature.length !== 8 + ED25519_SIGNATURE_SIZE) return false;
      let timestamp: number;
      try {
        timestamp = cosignatureTimestamp(signature);
      } catch {
        return false;
      }
      return verifyEd25519(signature.slice(8), cosignedMessage(text, timestamp), key);
    },
  };
}

export interface CheckpointPolicy {
  /** The origin line the checkpoint must carry. */
  readonly origin: string;
  /** The log's own key: its signature is always required. */
  readonly log: NoteVerifier;
  /** Known witnesses' cosignature verifiers. */
  readonly witnesses?: readonly NoteVerifier[];
  /** How many distinct known witnesses must have cosigned (default 0). */
  readonly witnessThreshold?: number;
}

export interface OpenedCheckpoint {
  readonly checkpoint: Checkpoint;
  readonly text: string;
  /** Verified witness cosignatures, with their timestamps. */
  readonly cosignatures: readonly { name: string; timestamp: number }[];
  /** Signatures by keys the policy does not know. */
  readonly unverified: readonly NoteSignature[];
}

/** Verifies a signed checkpoint against a policy: the log's signature, the origin, and a quorum
 * of witness cosignatures. */
export async function openCheckpoint(
  input: Uint8Array | string,
  policy: CheckpointPolicy,
): Promise<OpenedCheckpoint> {
  const witnesses = policy.witnesses ?? [];
  const threshold = policy.witnessThreshold ?? 0;
  const opened = await openNote(input, [policy.log, ...witnesses], 0);
  const byLog = opened.verified.some(
    (s) => s.name === policy.log.name && s.keyHash === policy.log.keyHash,
  );
  if (!byLog) {
    throw new TlogError(
      'UNKNOWN_KEY',
      `checkpoint is not signed by the log key ${policy.log.name}`,
    );
  }
  const checkpoint = parseCheckpoint(opened.text);
  if (checkpoint.origin !== policy.origin) {
    throw new TlogError(
      'WRONG_ORIGIN',
      `checkpoint origin is ${JSON.stringify(checkpoint.origin)}, expected ${JSON.stringify(policy.origin)}`,
    );
  }
  const cosignatures = opened.verified
    .filter((s) => witnesses.some((w) => w.name === s.name && w.keyHash === s.keyHash))
    .map((s) => ({ name: s.name, timestamp: cosignatureTimestamp(s.signature) }));
  if (cosignatures.length < threshold) {
    throw new TlogError(
      'THRESHOLD',
      `${String(cosignatures.length)} witnesses cosigned, ${String(threshold)} required`,
    );
  }
  return { checkpoint, text: opened.text, cosignatures, unverified: opened.unverified };
}
