/**
 * Key files: a publisher's or the origin's ed25519 private key, encrypted under a passphrase,
 * and the public half on its own for handing to others.
 *
 * Private key file (one JSON object):
 *   { "cairn_key_file": 1, "keyid": hex, "key": TUF key JSON,
 *     "kdf": { "name": "scrypt", "N": int, "r": 8, "p": 1, "salt": base64 (16 bytes) },
 *     "cipher": { "name": "aes-256-gcm", "nonce": base64 (12 bytes) },
 *     "ciphertext": base64 (32-byte secret || 16-byte tag) }
 * The GCM additional data is the canonical JSON of { keyid, key }: a file whose public half was
 * swapped for someone else's does not open, so nobody is misled about which key signs.
 *
 * Public key file: { "cairn_public_key": 1, "keyid": hex, "key": TUF key JSON }.
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';
import { link, open, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { canonicalString, canonicalize } from '@cairn/verify/canonical-json';
import { fromBase64, fromUtf8, toBase64, utf8 } from '@cairn/verify/encoding';
import { ED25519, Key, computeKeyId } from '@cairn/verify/keys';
import { Ed25519Signer } from '@cairn/verify/signer';
import { OriginError } from './errors.js';

/** 2^15 with r = 8 costs 32 MiB and about 100 ms: affordable at start-up, costly to guess at. */
export const DEFAULT_SCRYPT_N = 2 ** 15;
/** Below 2^10 the passphrase is barely stretched; tests use 2^10 for speed. */
export const MIN_SCRYPT_N = 2 ** 10;
/** 2^20 with r = 8 needs 1 GiB: a file asking for more is damaged or hostile, not careful. */
export const MAX_SCRYPT_N = 2 ** 20;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const SALT_BYTES = 16;
const NONCE_BYTES = 12;
const SECRET_BYTES = 32;
const TAG_BYTES = 16;
/** Key files are well under 1 KiB; refusing big files early keeps a wrong path from filling memory. */
const MAX_KEY_FILE_BYTES = 64 * 1024;

const KEYID = /^[0-9a-f]{64}$/;
const ED25519_PUBLIC = /^[0-9a-f]{64}$/;

type JsonObject = { [key: string]: unknown };

function invalid(where: string, what: string, cause?: unknown): OriginError {
  return new OriginError('KEY_FILE_INVALID', `${where}: ${what}`, { cause });
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.slice(0, 40))}`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return typeof value === 'object' ? 'an object' : typeof value;
}

function objectField(value: unknown, where: string, field: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(where, `${field}: expected an object, received ${describe(value)}`);
  }
  return value as JsonObject;
}

function stringField(value: unknown, where: string, field: string): string {
  if (typeof value !== 'string') {
    throw invalid(where, `${field}: expected a string, received ${describe(value)}`);
  }
  return value;
}

function exactly(value: unknown, expected: string | number, where: string, field: string): void {
  if (value !== expected) {
    throw invalid(
      where,
      `${field}: expected ${JSON.stringify(expected)}, received ${describe(value)}`,
    );
  }
}

function onlyFields(obj: JsonObject, known: readonly string[], where: string, field: string) {
  for (const name of Object.keys(obj)) {
    if (!known.includes(name)) {
      throw invalid(where, `${field}: unknown field ${JSON.stringify(name)}`);
    }
  }
}

function base64Field(value: unknown, bytes: number, where: string, field: string): Uint8Array {
  const decoded = fromBase64(stringField(value, where, field));
  if (decoded?.length !== bytes) {
    throw invalid(where, `${field}: expected base64 of ${bytes} bytes`);
  }
  return decoded;
}

function parseJsonObject(bytes: Uint8Array, where: string): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(fromUtf8(bytes)) as unknown;
  } catch (cause) {
    throw invalid(where, 'not a key file: not valid UTF-8 JSON', cause);
  }
  return objectField(value, where, 'the file');
}

function parseKey(value: unknown, where: string): Key {
  try {
    return Key.fromJSON(value, 'key');
  } catch (cause) {
    throw invalid(where, cause instanceof Error ? cause.message : 'key: not a TUF key', cause);
  }
}

async function checkKeyId(keyid: unknown, key: Key, where: string): Promise<string> {
  const id = stringField(keyid, where, 'keyid');
  if (!KEYID.test(id)) throw invalid(where, 'keyid: expected 64 lowercase hex characters');
  const computed = await computeKeyId(key);
  if (id !== computed) {
    throw invalid(where, `keyid ${id} does not match its key, whose keyid is ${computed}`);
  }
  return id;
}

interface PrivateKeyFile {
  readonly keyid: string;
  readonly key: Key;
  readonly n: number;
  readonly salt: Uint8Array;
  readonly nonce: Uint8Array;
  readonly ciphertext: Uint8Array;
}

async function parsePrivateKeyFile(file: JsonObject, where: string): Promise<PrivateKeyFile> {
  onlyFields(
    file,
    ['cairn_key_file', 'keyid', 'key', 'kdf', 'cipher', 'ciphertext'],
    where,
    'the file',
  );
  exactly(file.cairn_key_file, 1, where, 'cairn_key_file');
  const key = parseKey(file.key, where);
  // A signer has exactly this key and nothing else: anything more means the file was edited.
  if (
    key.keytype !== ED25519 ||
    key.scheme !== ED25519 ||
    !ED25519_PUBLIC.test(key.publicValue) ||
    canonicalString(key.toJSON()) !== canonicalString(plainEd25519Key(key.publicValue))
  ) {
    throw invalid(
      where,
      'key: expected an ed25519 key with a 64-character lowercase hex public value',
    );
  }
  const keyid = await checkKeyId(file.keyid, key, where);

  const kdf = objectField(file.kdf, where, 'kdf');
  onlyFields(kdf, ['name', 'N', 'r', 'p', 'salt'], where, 'kdf');
  exactly(kdf.name, 'scrypt', where, 'kdf.name');
  const n = kdf.N;
  if (!isScryptN(n)) {
    throw invalid(
      where,
      `kdf.N: expected a power of 2 from ${MIN_SCRYPT_N} to ${MAX_SCRYPT_N}, received ${describe(n)}`,
    );
  }
  exactly(kdf.r, SCRYPT_R, where, 'kdf.r');
  exactly(kdf.p, SCRYPT_P, where, 'kdf.p');
  const salt = base64Field(kdf.salt, SALT_BYTES, where, 'kdf.salt');

  const cipher = objectField(file.cipher, where, 'cipher');
  onlyFields(cipher, ['name', 'nonce'], where, 'cipher');
  exactly(cipher.name, 'aes-256-gcm', where, 'cipher.name');
  const nonce = base64Field(cipher.nonce, NONCE_BYTES, where, 'cipher.nonce');
  const ciphertext = base64Field(file.ciphertext, SECRET_BYTES + TAG_BYTES, where, 'ciphertext');
  return { keyid, key, n, salt, nonce, ciphertext };
}

function plainEd25519Key(publicHex: string): JsonObject {
  return { keytype: ED25519, scheme: ED25519, keyval: { public: publicHex } };
}

function isScryptN(value: unknown): value is number {
  return (
    typeof value === 'number' &&
    Number.isSafeInteger(value) &&
    value >= MIN_SCRYPT_N &&
    value <= MAX_SCRYPT_N &&
    (value & (value - 1)) === 0
  );
}

function additionalData(keyid: string, key: Key): Uint8Array {
  return canonicalize({ keyid, key: key.toJSON() });
}

function deriveKey(passphrase: string, salt: Uint8Array, n: number): Promise<Buffer> {
  // NFC so that the same passphrase typed on systems that compose accents differently opens the file.
  const secret = passphrase.normalize('NFC');
  return new Promise((resolve, reject) => {
    scrypt(
      secret,
      salt,
      32,
      // Node refuses anything over 32 MiB by default, which is exactly what N = 2^15 needs.
      { N: n, r: SCRYPT_R, p: SCRYPT_P, maxmem: 256 * n * SCRYPT_R },
      (error, derived) => (error ? reject(error) : resolve(derived)),
    );
  });
}

/** The private key file's bytes for `signer`, encrypted under `passphrase`. */
export async function encodeKeyFile(
  signer: Ed25519Signer,
  passphrase: string,
  options: { readonly scryptN?: number } = {},
): Promise<Uint8Array> {
  if (passphrase.length === 0) {
    throw new OriginError('KEY_FILE_INVALID', 'passphrase: an empty passphrase protects nothing');
  }
  const n = options.scryptN ?? DEFAULT_SCRYPT_N;
  if (!isScryptN(n)) {
    throw new OriginError(
      'KEY_FILE_INVALID',
      `scryptN: expected a power of 2 from ${MIN_SCRYPT_N} to ${MAX_SCRYPT_N}, received ${String(n)}`,
    );
  }
  const computed = await computeKeyId(signer.publicKey);
  if (signer.keyid !== computed) {
    // readKeyFile checks the keyid against the key; refuse now rather than write an unreadable file.
    throw new OriginError(
      'KEY_FILE_INVALID',
      `signer: keyid ${signer.keyid} is not its key's keyid ${computed}`,
    );
  }
  const salt = randomBytes(SALT_BYTES);
  const nonce = randomBytes(NONCE_BYTES);
  const derived = await deriveKey(passphrase, salt, n);
  // A copy we own: for a signer made from a Buffer, exportSecretKey() is a view of its key, and
  // zeroing that would break the signer.
  const secret = new Uint8Array(signer.exportSecretKey());
  try {
    const cipher = createCipheriv('aes-256-gcm', derived, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(additionalData(signer.keyid, signer.publicKey));
    const ciphertext = Buffer.concat([cipher.update(secret), cipher.final(), cipher.getAuthTag()]);
    const file = {
      cairn_key_file: 1,
      keyid: signer.keyid,
      key: signer.publicKey.toJSON(),
      kdf: { name: 'scrypt', N: n, r: SCRYPT_R, p: SCRYPT_P, salt: toBase64(salt) },
      cipher: { name: 'aes-256-gcm', nonce: toBase64(nonce) },
      ciphertext: toBase64(ciphertext),
    };
    return utf8(`${JSON.stringify(file, null, 2)}\n`);
  } finally {
    derived.fill(0);
    secret.fill(0);
  }
}

/**
 * Opens a private key file's bytes. `where` names the file in errors. A wrong passphrase and a
 * file altered after it was written look the same to AES-GCM: both are BAD_PASSPHRASE.
 */
export async function decodeKeyFile(
  bytes: Uint8Array,
  passphrase: string,
  where: string,
): Promise<Ed25519Signer> {
  const file = await parsePrivateKeyFile(parseJsonObject(bytes, where), where);
  if (passphrase.length === 0) {
    throw new OriginError('BAD_PASSPHRASE', `${where}: the passphrase is empty`);
  }
  const derived = await deriveKey(passphrase, file.salt, file.n);
  let secret: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', derived, file.nonce, {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(additionalData(file.keyid, file.key));
    decipher.setAuthTag(file.ciphertext.subarray(SECRET_BYTES));
    secret = Buffer.concat([
      decipher.update(file.ciphertext.subarray(0, SECRET_BYTES)),
      decipher.final(),
    ]);
  } catch (cause) {
    throw new OriginError(
      'BAD_PASSPHRASE',
      `${where}: the passphrase does not open this key file (or the file was altered)`,
      { cause },
    );
  } finally {
    derived.fill(0);
  }
  // A plain Uint8Array copy: the signer keeps `secretKey.slice()`, which for a Buffer is a view
  // of the very bytes zeroed below.
  const plain = new Uint8Array(secret);
  try {
    const signer = await Ed25519Signer.fromSecretKey(plain);
    // The tag proves the file is as written; this catches a writer that paired the wrong halves.
    if (signer.keyid !== file.keyid || signer.publicKey.publicValue !== file.key.publicValue) {
      throw invalid(
        where,
        `the private key inside belongs to keyid ${signer.keyid}, not ${file.keyid}`,
      );
    }
    return signer;
  } finally {
    secret.fill(0);
    plain.fill(0);
  }
}

/**
 * The public half of either kind of key file's bytes, with its keyid checked against the key.
 * No passphrase: a private key file's public half is stored in the clear.
 */
export async function decodePublicKey(
  bytes: Uint8Array,
  where: string,
): Promise<{ keyid: string; key: Key }> {
  const file = parseJsonObject(bytes, where);
  if ('cairn_key_file' in file) {
    const { keyid, key } = await parsePrivateKeyFile(file, where);
    return { keyid, key };
  }
  if (!('cairn_public_key' in file)) {
    throw invalid(where, 'not a key file: expected "cairn_public_key" or "cairn_key_file"');
  }
  onlyFields(file, ['cairn_public_key', 'keyid', 'key'], where, 'the file');
  exactly(file.cairn_public_key, 1, where, 'cairn_public_key');
  const key = parseKey(file.key, where);
  if (!key.supported) {
    throw invalid(where, `key: ${key.keytype}/${key.scheme} keys cannot verify signatures here`);
  }
  return { keyid: await checkKeyId(file.keyid, key, where), key };
}

/** The text of a public key file. `keyid` must be the key's own (a signer's `keyid`). */
export function publicKeyFileText(keyid: string, key: Key): string {
  return `${JSON.stringify({ cairn_public_key: 1, keyid, key: key.toJSON() }, null, 2)}\n`;
}

async function readSmallFile(path: string): Promise<Uint8Array> {
  const handle = await open(path, 'r').catch((cause: unknown) => {
    throw invalid(path, `cannot open the key file (${errorCode(cause)})`, cause);
  });
  try {
    const { size } = await handle.stat();
    if (size > MAX_KEY_FILE_BYTES) {
      throw invalid(
        path,
        `not a key file: ${size} bytes, key files are under ${MAX_KEY_FILE_BYTES}`,
      );
    }
    return new Uint8Array(await handle.readFile());
  } finally {
    await handle.close();
  }
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : String(error);
}

export async function readKeyFile(path: string, passphrase: string): Promise<Ed25519Signer> {
  return decodeKeyFile(await readSmallFile(path), passphrase, path);
}

export async function readPublicKey(path: string): Promise<{ keyid: string; key: Key }> {
  return decodePublicKey(await readSmallFile(path), path);
}

async function syncDirectory(directory: string): Promise<void> {
  // Windows cannot open a directory for fsync; NTFS journals the link itself.
  if (process.platform === 'win32') return;
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes a new private key file, readable by its owner only. Never overwrites: a key file
 * replaced by mistake is a key lost for good. The bytes go to a temp file that is fsynced and
 * then hard-linked into place, so the file appears whole or not at all, and the link fails
 * if the name was taken meanwhile.
 */
export async function writeKeyFile(
  path: string,
  signer: Ed25519Signer,
  passphrase: string,
  options: { readonly scryptN?: number } = {},
): Promise<void> {
  const bytes = await encodeKeyFile(signer, passphrase, options);
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await link(temp, path);
    } catch (cause) {
      if (errorCode(cause) === 'EEXIST') {
        throw invalid(path, 'a file exists here and will not be overwritten', cause);
      }
      throw cause;
    }
  } catch (cause) {
    if (cause instanceof OriginError) throw cause;
    throw invalid(path, `cannot write the key file (${errorCode(cause)})`, cause);
  } finally {
    await rm(temp, { force: true });
  }
  await syncDirectory(dirname(path));
}

/** The passphrase from an environment variable; unset or empty is a configuration error. */
export function passphraseFromEnv(
  variable: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string {
  const value = env[variable];
  if (value === undefined || value.length === 0) {
    throw new OriginError(
      'CONFIG_INVALID',
      `${variable}: set this environment variable to the key file's passphrase`,
    );
  }
  return value;
}
