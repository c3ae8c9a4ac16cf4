import { createCipheriv, randomBytes, scryptSync } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canonicalize } from '@cairn/verify/canonical-json';
import { fromBase64, fromHex, fromUtf8, toBase64, utf8 } from '@cairn/verify/encoding';
import { Key } from '@cairn/verify/keys';
import { Ed25519Signer } from '@cairn/verify/signer';
import {
  DEFAULT_SCRYPT_N,
  decodeKeyFile,
  decodePublicKey,
  encodeKeyFile,
  passphraseFromEnv,
  publicKeyFileText,
  readKeyFile,
  readPublicKey,
  writeKeyFile,
} from './key-file.js';

// RFC 8032 section 7.1, TEST 1: a known secret, so the public half can be asserted exactly.
const RFC8032_SECRET = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
const RFC8032_PUBLIC = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';

const FAST = { scryptN: 2 ** 10 };
const PASSPHRASE = 'correct horse battery staple';
const MESSAGE = utf8('a release to approve');

function hexBytes(hex: string): Uint8Array {
  const bytes = fromHex(hex);
  if (bytes === undefined) throw new Error(`not hex: ${hex}`);
  return bytes;
}

function knownSigner(): Promise<Ed25519Signer> {
  return Ed25519Signer.fromSecretKey(hexBytes(RFC8032_SECRET));
}

type FileJson = {
  cairn_key_file: unknown;
  keyid: string;
  key: unknown;
  kdf: { N: number; salt: string; [k: string]: unknown };
  cipher: { nonce: string; [k: string]: unknown };
  ciphertext: string;
};

function asJson(bytes: Uint8Array): FileJson {
  return JSON.parse(fromUtf8(bytes)) as FileJson;
}

function toBytes(json: unknown): Uint8Array {
  return utf8(JSON.stringify(json));
}

/**
 * The private key file format written out independently of key-file.ts, straight from its
 * description, so a change to the format (not just a matching change on both sides) fails.
 */
function craftKeyFile(
  secret: Uint8Array,
  keyid: string,
  key: unknown,
  passphrase: string,
): Uint8Array {
  const salt = randomBytes(16);
  const nonce = randomBytes(12);
  const derived = scryptSync(passphrase, salt, 32, { N: 2 ** 10, r: 8, p: 1 });
  const cipher = createCipheriv('aes-256-gcm', derived, nonce);
  cipher.setAAD(canonicalize({ keyid, key }));
  const ciphertext = Buffer.concat([cipher.update(secret), cipher.final(), cipher.getAuthTag()]);
  return toBytes({
    cairn_key_file: 1,
    keyid,
    key,
    kdf: { name: 'scrypt', N: 2 ** 10, r: 8, p: 1, salt: toBase64(salt) },
    cipher: { name: 'aes-256-gcm', nonce: toBase64(nonce) },
    ciphertext: toBase64(ciphertext),
  });
}

describe('encodeKeyFile / decodeKeyFile', () => {
  it('round-trips: the opened signer signs what the public key verifies', async () => {
    const signer = await knownSigner();
    const bytes = await encodeKeyFile(signer, PASSPHRASE, FAST);
    const opened = await decodeKeyFile(bytes, PASSPHRASE, 'test.key');
    expect(opened.keyid).toBe(signer.keyid);
    expect(opened.publicKey.publicValue).toBe(RFC8032_PUBLIC);
    expect(opened.exportSecretKey()).toEqual(hexBytes(RFC8032_SECRET));
    const { key } = await decodePublicKey(bytes, 'test.key');
    expect(await key.verify(await opened.sign(MESSAGE), MESSAGE)).toBe(true);
  });

  it('writes the documented fields, with N = 2^15 by default', async () => {
    const signer = await knownSigner();
    const file = asJson(await encodeKeyFile(signer, PASSPHRASE));
    expect(DEFAULT_SCRYPT_N).toBe(32768);
    expect(file).toEqual({
      cairn_key_file: 1,
      keyid: signer.keyid,
      key: { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: RFC8032_PUBLIC } },
      kdf: { name: 'scrypt', N: 32768, r: 8, p: 1, salt: file.kdf.salt },
      cipher: { name: 'aes-256-gcm', nonce: file.cipher.nonce },
      ciphertext: file.ciphertext,
    });
    expect(fromBase64(file.kdf.salt)?.length).toBe(16);
    expect(fromBase64(file.cipher.nonce)?.length).toBe(12);
    expect(fromBase64(file.ciphertext)?.length).toBe(48);
  });

  it('uses a fresh salt and nonce each time', async () => {
    const signer = await knownSigner();
    const a = asJson(await encodeKeyFile(signer, PASSPHRASE, FAST));
    const b = asJson(await encodeKeyFile(signer, PASSPHRASE, FAST));
    expect(a.kdf.salt).not.toBe(b.kdf.salt);
    expect(a.cipher.nonce).not.toBe(b.cipher.nonce);
  });

  it('opens a file written from the format description', async () => {
    const signer = await knownSigner();
    const bytes = craftKeyFile(
      hexBytes(RFC8032_SECRET),
      signer.keyid,
      signer.publicKey.toJSON(),
      PASSPHRASE,
    );
    const opened = await decodeKeyFile(bytes, PASSPHRASE, 'crafted.key');
    expect(opened.keyid).toBe(signer.keyid);
  });

  it('leaves a signer made from a Buffer able to sign', async () => {
    const signer = await Ed25519Signer.fromSecretKey(Buffer.from(hexBytes(RFC8032_SECRET)));
    await encodeKeyFile(signer, PASSPHRASE, FAST);
    expect(signer.exportSecretKey()).toEqual(Buffer.from(hexBytes(RFC8032_SECRET)));
  });

  it("refuses a signer whose keyid is not its key's", async () => {
    const signer = await Ed25519Signer.fromSecretKey(hexBytes(RFC8032_SECRET), 'cd'.repeat(32));
    const computed = (await knownSigner()).keyid;
    await expect(encodeKeyFile(signer, PASSPHRASE, FAST)).rejects.toMatchObject({
      code: 'KEY_FILE_INVALID',
      message: `signer: keyid ${'cd'.repeat(32)} is not its key's keyid ${computed}`,
    });
  });

  it('refuses an empty passphrase when writing', async () => {
    const signer = await knownSigner();
    await expect(encodeKeyFile(signer, '', FAST)).rejects.toMatchObject({
      code: 'KEY_FILE_INVALID',
      message: 'passphrase: an empty passphrase protects nothing',
    });
  });

  it('refuses a scrypt N that is not a power of 2 in range', async () => {
    const signer = await knownSigner();
    await expect(encodeKeyFile(signer, PASSPHRASE, { scryptN: 3000 })).rejects.toMatchObject({
      code: 'KEY_FILE_INVALID',
      message: 'scryptN: expected a power of 2 from 1024 to 1048576, received 3000',
    });
  });

  it('answers BAD_PASSPHRASE to a wrong passphrase', async () => {
    const bytes = await encodeKeyFile(await knownSigner(), PASSPHRASE, FAST);
    await expect(
      decodeKeyFile(bytes, 'Correct horse battery staple', 'k.json'),
    ).rejects.toMatchObject({
      code: 'BAD_PASSPHRASE',
      message: 'k.json: the passphrase does not open this key file (or the file was altered)',
    });
    await expect(decodeKeyFile(bytes, '', 'k.json')).rejects.toMatchObject({
      code: 'BAD_PASSPHRASE',
      message: 'k.json: the passphrase is empty',
    });
  });

  it('answers BAD_PASSPHRASE to a ciphertext with one bit flipped', async () => {
    const file = asJson(await encodeKeyFile(await knownSigner(), PASSPHRASE, FAST));
    const ciphertext = fromBase64(file.ciphertext) ?? new Uint8Array();
    ciphertext[5] = (ciphertext[5] ?? 0) ^ 1;
    const tampered = toBytes({ ...file, ciphertext: toBase64(ciphertext) });
    await expect(decodeKeyFile(tampered, PASSPHRASE, 'k.json')).rejects.toMatchObject({
      code: 'BAD_PASSPHRASE',
    });
  });

  it('does not open a file whose public half was swapped for another key (AAD)', async () => {
    const file = asJson(await encodeKeyFile(await knownSigner(), PASSPHRASE, FAST));
    const other = await Ed25519Signer.generate();
    // Consistent keyid and key, so only the additional data can tell.
    const swapped = toBytes({ ...file, keyid: other.keyid, key: other.publicKey.toJSON() });
    await expect(decodeKeyFile(swapped, PASSPHRASE, 'k.json')).rejects.toMatchObject({
      code: 'BAD_PASSPHRASE',
    });
  });

  it('refuses a keyid that does not match the key, before any decryption', async () => {
    const signer = await knownSigner();
    const file = asJson(await encodeKeyFile(signer, PASSPHRASE, FAST));
    const wrong = 'ab'.repeat(32);
    await expect(
      decodeKeyFile(toBytes({ ...file, keyid: wrong }), 'any passphrase', 'k.json'),
    ).rejects.toMatchObject({
      code: 'KEY_FILE_INVALID',
      message: `k.json: keyid ${wrong} does not match its key, whose keyid is ${signer.keyid}`,
    });
  });

  it('refuses a file whose secret belongs to another public key', async () => {
    const signer = await knownSigner();
    const other = await Ed25519Signer.generate();
    // A consistent file (the tag verifies) that pairs the wrong halves.
    const bytes = craftKeyFile(
      other.exportSecretKey(),
      signer.keyid,
      signer.publicKey.toJSON(),
      PASSPHRASE,
    );
    await expect(decodeKeyFile(bytes, PASSPHRASE, 'k.json')).rejects.toMatchObject({
      code: 'KEY_FILE_INVALID',
      message: `k.json: the private key inside belongs to keyid ${other.keyid}, not ${signer.keyid}`,
    });
  });

  it('refuses truncated JSON, naming the file', async () => {
    const bytes = await encodeKeyFile(await knownSigner(), PASSPHRASE, FAST);
    await expect(
      decodeKeyFile(bytes.subarray(0, bytes.length - 10), PASSPHRASE, '/keys/origin.key'),
    ).rejects.toMatchObject({
      code: 'KEY_FILE_INVALID',
      message: '/keys/origin.key: not a key file: not valid UTF-8 JSON',
    });
  });

  it.each([
    ['an unknown version', { cairn_key_file: 2 }, 'cairn_key_file: expected 1, received 2'],
    ['an unknown field', { comment: 'x' }, 'the file: unknown field "comment"'],
    [
      'another kdf',
      { kdf: { name: 'pbkdf2' } },
      'kdf.name: expected "scrypt", received the string "pbkdf2"',
    ],
    [
      'an absurd scrypt N',
      { kdf: { name: 'scrypt', N: 2 ** 30, r: 8, p: 1, salt: 'AAAAAAAAAAAAAAAAAAAAAA==' } },
      'kdf.N: expected a power of 2 from 1024 to 1048576, received 1073741824',
    ],
    [
      'a short nonce',
      { cipher: { name: 'aes-256-gcm', nonce: 'AAAA' } },
      'cipher.nonce: expected base64 of 12 bytes',
    ],
    [
      'a ciphertext that is not base64',
      { ciphertext: '!!' },
      'ciphertext: expected base64 of 48 bytes',
    ],
    ['a missing key', { key: undefined }, 'key: expected an object, received undefined'],
  ])('refuses %s with KEY_FILE_INVALID', async (_, change, what) => {
    const file = asJson(await encodeKeyFile(await knownSigner(), PASSPHRASE, FAST));
    const changed = toBytes({ ...file, ...change });
    await expect(decodeKeyFile(changed, PASSPHRASE, 'k.json')).rejects.toMatchObject({
      code: 'KEY_FILE_INVALID',
      message: `k.json: ${what}`,
    });
  });
});

describe('public keys', () => {
  it('reads the public half of a public key file and of a private key file alike', async () => {
    const signer = await knownSigner();
    const fromPublic = await decodePublicKey(
      utf8(publicKeyFileText(signer.keyid, signer.publicKey)),
      'p.json',
    );
    const fromPrivate = await decodePublicKey(
      await encodeKeyFile(signer, PASSPHRASE, FAST),
      'k.json',
    );
    for (const { keyid, key } of [fromPublic, fromPrivate]) {
      expect(keyid).toBe(signer.keyid);
      expect(key.toJSON()).toEqual({
        keytype: 'ed25519',
        scheme: 'ed25519',
        keyval: { public: RFC8032_PUBLIC },
      });
    }
  });

  it('writes the documented public key file', async () => {
    const signer = await knownSigner();
    expect(JSON.parse(publicKeyFileText(signer.keyid, signer.publicKey))).toEqual({
      cairn_public_key: 1,
      keyid: signer.keyid,
      key: { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: RFC8032_PUBLIC } },
    });
  });

  it('refuses a public key file whose keyid is not its key', async () => {
    const signer = await knownSigner();
    const other = await Ed25519Signer.generate();
    const text = publicKeyFileText(other.keyid, signer.publicKey);
    await expect(decodePublicKey(utf8(text), 'p.json')).rejects.toMatchObject({
      code: 'KEY_FILE_INVALID',
      message: `p.json: keyid ${other.keyid} does not match its key, whose keyid is ${signer.keyid}`,
    });
  });

  it('refuses a key it cannot verify with', async () => {
    const key = new Key('rsa', 'rsassa-pss-sha256', 'PEM');
    const text = publicKeyFileText('ab'.repeat(32), key);
    await expect(decodePublicKey(utf8(text), 'p.json')).rejects.toMatchObject({
      code: 'KEY_FILE_INVALID',
      message: 'p.json: key: rsa/rsassa-pss-sha256 keys cannot verify signatures here',
    });
  });

  it('refuses JSON that is neither kind of key file', async () => {
    await expect(decodePublicKey(utf8('{"keyid":"x"}'), 'p.json')).rejects.toMatchObject({
      code: 'KEY_FILE_INVALID',
      message: 'p.json: not a key file: expected "cairn_public_key" or "cairn_key_file"',
    });
  });
});

describe('key files on disk', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cairn-key-file-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a file only its owner can read, and reads it back', async () => {
    const signer = await knownSigner();
    const path = join(dir, 'origin.key');
    await writeKeyFile(path, signer, PASSPHRASE, FAST);
    if (process.platform !== 'win32') expect((await stat(path)).mode & 0o777).toBe(0o600);
    const opened = await readKeyFile(path, PASSPHRASE);
    expect(opened.keyid).toBe(signer.keyid);
    expect(await readdir(dir)).toEqual(['origin.key']);
  });

  it('refuses to overwrite an existing file and leaves it as it was', async () => {
    const path = join(dir, 'origin.key');
    await writeFile(path, 'precious');
    await expect(writeKeyFile(path, await knownSigner(), PASSPHRASE, FAST)).rejects.toMatchObject({
      code: 'KEY_FILE_INVALID',
      message: `${path}: a file exists here and will not be overwritten`,
    });
    expect(await readFile(path, 'utf8')).toBe('precious');
    expect(await readdir(dir)).toEqual(['origin.key']);
  });

  it('reads the public key from a public key file and from a private key file', async () => {
    const signer = await knownSigner();
    const privatePath = join(dir, 'origin.key');
    const publicPath = join(dir, 'origin.pub');
    await writeKeyFile(privatePath, signer, PASSPHRASE, FAST);
    await writeFile(publicPath, publicKeyFileText(signer.keyid, signer.publicKey));
    for (const path of [privatePath, publicPath]) {
      const { keyid, key } = await readPublicKey(path);
      expect(keyid).toBe(signer.keyid);
      expect(key.publicValue).toBe(RFC8032_PUBLIC);
    }
  });

  it('names a missing file', async () => {
    const path = join(dir, 'absent.key');
    await expect(readKeyFile(path, PASSPHRASE)).rejects.toMatchObject({
      code: 'KEY_FILE_INVALID',
      message: `${path}: cannot open the key file (ENOENT)`,
    });
  });

  it('refuses a huge file without reading it into memory', async () => {
    const path = join(dir, 'big.key');
    await writeFile(path, new Uint8Array(64 * 1024 + 1));
    await expect(readPublicKey(path)).rejects.toMatchObject({
      code: 'KEY_FILE_INVALID',
      message: `${path}: not a key file: 65537 bytes, key files are under 65536`,
    });
  });
});

describe('passphraseFromEnv', () => {
  it('returns the variable', () => {
    expect(passphraseFromEnv('CAIRN_KEY_PASSPHRASE', { CAIRN_KEY_PASSPHRASE: 's3cret' })).toBe(
      's3cret',
    );
  });

  it.each([
    ['unset', {}],
    ['empty', { CAIRN_KEY_PASSPHRASE: '' }],
  ])('throws CONFIG_INVALID naming the variable when %s', (_, env) => {
    expect(() => passphraseFromEnv('CAIRN_KEY_PASSPHRASE', env)).toThrow(
      expect.objectContaining({
        code: 'CONFIG_INVALID',
        message: "CAIRN_KEY_PASSPHRASE: set this environment variable to the key file's passphrase",
      }),
    );
  });
});
