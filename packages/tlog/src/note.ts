/**
 * C2SP signed-note: a UTF-8 text ending in a newline, a blank line, then signature lines
 * `— <name> base64(key hash (4 bytes) || signature)`. Key hash = first 4 bytes of
 * SHA-256(name || 0x0A || algorithm byte || public key); ed25519 is algorithm 0x01.
 *
 * Verification ignores signatures by unknown keys, fails on a bad signature by a known key, and
 * requires a threshold of distinct known keys.
 */
import { getPublicKeyAsync, signAsync, verifyAsync } from '@noble/ed25519';
import { concatBytes, fromBase64, fromUtf8, sha256, toBase64, utf8 } from './bytes.js';
import { TlogError } from './errors.js';
import { ED25519_SIGNATURE_SIZE, MAX_NOTE_BYTES, MAX_NOTE_SIGNATURES } from './limits.js';

/** Signature type bytes of the C2SP signed-note registry. */
export const ALGORITHM_ED25519 = 0x01;
export const ALGORITHM_COSIGNATURE_V1 = 0x04;

export interface NoteSignature {
  readonly name: string;
  /** The 32-bit key hash, as an unsigned big-endian number. */
  readonly keyHash: number;
  /** The signature bytes after the key hash. */
  readonly signature: Uint8Array;
}

export interface Note {
  /** The signed text, ending in a newline. */
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

export interface NoteVerifier {
  readonly name: string;
  readonly keyHash: number;
  /** Whether `signature` (the bytes after the key hash) signs `text`. */
  verify(text: string, signature: Uint8Array): Promise<boolean>;
}

export interface NoteSigner {
  readonly name: string;
  readonly keyHash: number;
  /** The signature bytes (without the key hash) over `text`. */
  sign(text: string): Promise<Uint8Array>;
}

const DASH = '\u2014 ';

/** A key name: non-empty, no whitespace, no `+` (C2SP signed-note). */
export function checkKeyName(name: string): void {
  if (name === '' || /[\s+]/u.test(name) || hasControl(name)) {
    throw new TlogError('MALFORMED_KEY', `invalid key name ${JSON.stringify(name)}`);
  }
}

function hasControl(text: string): boolean {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/u.test(text);
}

/** First 4 bytes of SHA-256(name || 0x0A || algorithm || public key), big-endian. */
export async function keyHash(
  name: string,
  algorithm: number,
  publicKey: Uint8Array,
): Promise<number> {
  checkKeyName(name);
  const digest = await sha256(
    concatBytes(utf8(name), new Uint8Array([0x0a, algorithm]), publicKey),
  );
  return new DataView(digest.buffer, digest.byteOffset, 4).getUint32(0);
}

/** Parses a signed note strictly. */
export function parseNote(input: Uint8Array | string): Note {
  const bytes = typeof input === 'string' ? utf8(input) : input;
  if (bytes.length > MAX_NOTE_BYTES) {
    throw new TlogError(
      'TOO_LARGE',
      `note is ${String(bytes.length)} bytes, limit ${String(MAX_NOTE_BYTES)}`,
    );
  }
  const all = fromUtf8(bytes);
  if (all === undefined) throw new TlogError('MALFORMED_NOTE', 'note is not valid UTF-8');
  if (hasControl(all)) throw new TlogError('MALFORMED_NOTE', 'note contains control characters');
  const split = all.lastIndexOf('\n\n');
  if (split < 0)
    throw new TlogError('MALFORMED_NOTE', 'note has no blank line before its signatures');
  const text = all.slice(0, split + 1);
  if (text.startsWith('\n')) throw new TlogError('MALFORMED_NOTE', 'note text is empty');
  const block = all.slice(split + 2);
  if (!block.endsWith('\n'))
    throw new TlogError('MALFORMED_NOTE', 'note does not end in a newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES) {
    throw new TlogError(
      'TOO_LARGE',
      `note has ${String(lines.length)} signatures, limit ${String(MAX_NOTE_SIGNATURES)}`,
    );
  }
  const signatures = lines.map((line) => {
    const match = /^\u2014 (\S+) (\S+)$/u.exec(line);
    const name = match?.[1];
    const raw = match?.[2] === undefined ? undefined : fromBase64(match[2]);
    if (name === undefined || raw === undefined || raw.length < 5 || name.includes('+')) {
      throw new TlogError('MALFORMED_NOTE', `malformed signature line ${JSON.stringify(line)}`);
    }
    return {
      name,
      keyHash: new DataView(raw.buffer, raw.byteOffset, 4).getUint32(0),
      signature: raw.slice(4),
    };
  });
  return { text, signatures };
}

/** The note's bytes: text, blank line, one line per signature. */
export function formatNote(note: Note): string {
  checkText(note.text);
  let out = `${note.text}\n`;
  for (const s of note.signatures) {
    checkKeyName(s.name);
    const raw = new Uint8Array(4 + s.signature.length);
    new DataView(raw.buffer).setUint32(0, s.keyHash);
    raw.set(s.signature, 4);
    out += `${DASH}${s.name} ${toBase64(raw)}\n`;
  }
  return out;
}

function checkText(text: string): void {
  if (!text.endsWith('\n') || text.includes('\n\n') || text.startsWith('\n') || hasControl(text)) {
    throw new TlogError(
      'MALFORMED_NOTE',
      'note text must be non-empty lines, each ending in a newline',
    );
  }
}

/** Signs `text` with every signer, keeping existing signatures first. */
export async function signNote(
  text: string,
  signers: readonly NoteSigner[],
  existing: readonly NoteSignature[] = [],
): Promise<string> {
  checkText(text);
  const added: NoteSignature[] = [];
  for (const s of signers) {
    added.push({ name: s.name, keyHash: s.keyHash, signature: await s.sign(text) });
  }
  return formatNote({ text, signatures: [...existing, ...added] });
}

export interface OpenedNote {
  readonly text: string;
  /** Signatures by known keys, each verified; one per key. */
  readonly verified: readonly NoteSignature[];
  /** Signatures by keys the verifier does not know, kept for the caller to pass on. */
  readonly unverified: readonly NoteSignature[];
}

/**
 * Parses and verifies a note: at least `threshold` distinct known keys must have signed.
 * UNKNOWN_KEY when no known key signed at all, BAD_SIGNATURE when a known key's signature is
 * wrong, THRESHOLD when too few known keys signed.
 */
export async function openNote(
  input: Uint8Array | string,
  verifiers: readonly NoteVerifier[],
  threshold = 1,
): Promise<OpenedNote> {
  if (!Number.isInteger(threshold) || threshold < 0) {
    throw new TlogError(
      'INVALID_ARGUMENT',
      `threshold must be a non-negative integer, got ${String(threshold)}`,
    );
  }
  const note = parseNote(input);
  const verified: NoteSignature[] = [];
  const unverified: NoteSignature[] = [];
  const seen = new Set<NoteVerifier>();
  for (const s of note.signatures) {
    const verifier = verifiers.find((v) => v.name === s.name && v.keyHash === s.keyHash);
    if (verifier === undefined) {
      unverified.push(s);
      continue;
    }
    if (!(await verifier.verify(note.text, s.signature))) {
      throw new TlogError('BAD_SIGNATURE', `signature by ${s.name} does not verify`);
    }
    if (!seen.has(verifier)) {
      seen.add(verifier);
      verified.push(s);
    }
  }
  if (verified.length === 0 && threshold > 0) {
    throw new TlogError('UNKNOWN_KEY', 'no signature on the note is by a known key');
  }
  if (verified.length < threshold) {
    throw new TlogError(
      'THRESHOLD',
      `${String(verified.length)} known keys signed, ${String(threshold)} required`,
    );
  }
  return { text: note.text, verified, unverified };
}

/** An ed25519 note signer from a 32-byte secret key (seed). */
export async function createEd25519Signer(
  name: string,
  secretKey: Uint8Array,
): Promise<NoteSigner> {
  if (secretKey.length !== 32) {
    throw new TlogError(
      'MALFORMED_KEY',
      `ed25519 secret key must be 32 bytes, got ${String(secretKey.length)}`,
    );
  }
  const publicKey = await getPublicKeyAsync(secretKey);
  const hash = await keyHash(name, ALGORITHM_ED25519, publicKey);
  const secret = secretKey.slice();
  return { name, keyHash: hash, sign: (text) => signAsync(utf8(text), secret) };
}

/** An ed25519 note verifier (strict RFC 8032: no non-canonical encodings). */
export async function createEd25519Verifier(
  name: string,
  publicKey: Uint8Array,
): Promise<NoteVerifier> {
  checkPublicKey(publicKey);
  const hash = await keyHash(name, ALGORITHM_ED25519, publicKey);
  const key = publicKey.slice();
  return {
    name,
    keyHash: hash,
    verify: (text, signature) => verifyEd25519(signature, utf8(text), key),
  };
}

export async function verifyEd25519(
  signature: Uint8Array,
  message: Uint8Array,
  publicKey: Uint8Array,
): Promise<boolean> {
  if (signature.length !== ED25519_SIGNATURE_SIZE) return false;
  try {
    return await verifyAsync(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

export function checkPublicKey(publicKey: Uint8Array): void {
  if (publicKey.length !== 32) {
    throw new TlogError(
      'MALFORMED_KEY',
      `ed25519 public key must be 32 bytes, got ${String(publicKey.length)}`,
    );
  }
}

/** The verifier key string `name+hash(8 hex)+base64(algorithm || public key)`. */
export async function formatVerifierKey(
  name: string,
  algorithm: number,
  publicKey: Uint8Array,
): Promise<string> {
  const hash = await keyHash(name, algorithm, publicKey);
  return `${name}+${hash.toString(16).padStart(8, '0')}+${toBase64(concatBytes(new Uint8Array([algorithm]), publicKey))}`;
}

/** Parses a verifier key string into a verifier (ed25519 or cosignature/v1), checking its hash. */
export async function parseVerifierKey(
  key: string,
): Promise<{ name: string; algorithm: number; publicKey: Uint8Array; keyHash: number }> {
  const match = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(key);
  const raw = match?.[3] === undefined ? undefined : fromBase64(match[3]);
  const name = match?.[1];
  const algorithm = raw?.[0];
  if (match === null || name === undefined || raw === undefined || raw.length !== 33) {
    throw new TlogError(
      'MALFORMED_KEY',
      'verifier key must be name+hash+base64(algorithm || 32-byte key)',
    );
  }
  if (algorithm !== ALGORITHM_ED25519 && algorithm !== ALGORITHM_COSIGNATURE_V1) {
    throw new TlogError('MALFORMED_KEY', `unsupported key algorithm ${String(algorithm)}`);
  }
  const publicKey = raw.slice(1);
  const hash = await keyHash(name, algorithm, publicKey);
  if (hash.toString(16).padStart(8, '0') !== match[2]) {
    throw new TlogError('MALFORMED_KEY', 'verifier key hash does not match its name and key');
  }
  return { name, algorithm, publicKey, keyHash: hash };
}
