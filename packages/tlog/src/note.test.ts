import { describe, expect, it } from 'vitest';
import { fromBase64, toBase64 } from './bytes.js';
import { isTlogError, type TlogErrorCode } from './errors.js';
import {
  ALGORITHM_ED25519,
  createEd25519Signer,
  createEd25519Verifier,
  formatNote,
  formatVerifierKey,
  keyHash,
  openNote,
  parseNote,
  parseVerifierKey,
  signNote,
} from './note.js';
import {
  PETER_NOTE,
  PETER_SIGNER_KEY,
  PETER_TEXT,
  PETER_VERIFIER_KEY,
} from './vectors/sumdb-note.js';

async function rejects(promise: Promise<unknown>, code: TlogErrorCode): Promise<void> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isTlogError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
}

function throwsCode(fn: () => unknown, code: TlogErrorCode): void {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(isTlogError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
}

// The base64 part of a key string may itself contain '+'.
const peterSeed = (
  fromBase64(PETER_SIGNER_KEY.split('+').slice(4).join('+')) ?? new Uint8Array()
).slice(1);
const peterPublic = await parseVerifierKey(PETER_VERIFIER_KEY);
const peterVerifier = await createEd25519Verifier(peterPublic.name, peterPublic.publicKey);
const other = await createEd25519Signer('example.com/other', new Uint8Array(32).fill(7));
const otherVerifier = await createEd25519Verifier(
  'example.com/other',
  (
    await parseVerifierKey(
      await formatVerifierKey(
        'example.com/other',
        ALGORITHM_ED25519,
        await publicKeyOf(new Uint8Array(32).fill(7)),
      ),
    )
  ).publicKey,
);

async function publicKeyOf(seed: Uint8Array): Promise<Uint8Array> {
  const { getPublicKeyAsync } = await import('@noble/ed25519');
  return getPublicKeyAsync(seed);
}

describe('golang.org/x/mod/sumdb/note vector', () => {
  it('computes the key hash c74f20a3 and round-trips the verifier key', async () => {
    expect(peterPublic.keyHash).toBe(0xc74f20a3);
    expect(peterVerifier.keyHash).toBe(0xc74f20a3);
    expect(await formatVerifierKey('PeterNeumann', ALGORITHM_ED25519, peterPublic.publicKey)).toBe(
      PETER_VERIFIER_KEY,
    );
  });

  it('signs the text to exactly the note Go produces', async () => {
    const signer = await createEd25519Signer('PeterNeumann', peterSeed);
    expect(signer.keyHash).toBe(0xc74f20a3);
    expect(await signNote(PETER_TEXT, [signer])).toBe(PETER_NOTE);
  });

  it('opens the Go note', async () => {
    const opened = await openNote(PETER_NOTE, [peterVerifier]);
    expect(opened.text).toBe(PETER_TEXT);
    expect(opened.verified.map((s) => s.name)).toEqual(['PeterNeumann']);
    expect(opened.unverified).toEqual([]);
  });
});

describe('openNote', () => {
  it('fails on a tampered text or signature by a known key', async () => {
    await rejects(
      openNote(PETER_NOTE.replace('cryptography', 'cryptographY'), [peterVerifier]),
      'BAD_SIGNATURE',
    );
    const parsed = parseNote(PETER_NOTE);
    const sig = parsed.signatures[0];
    if (sig === undefined) throw new Error('no signature');
    const bad = sig.signature.slice();
    bad[10] = (bad[10] ?? 0) ^ 1;
    await rejects(
      openNote(formatNote({ text: PETER_TEXT, signatures: [{ ...sig, signature: bad }] }), [
        peterVerifier,
      ]),
      'BAD_SIGNATURE',
    );
  });

  it('ignores unknown keys, and needs a threshold of distinct known keys', async () => {
    const twice = await signNote(PETER_TEXT, [other], parseNote(PETER_NOTE).signatures);
    await rejects(openNote(twice, [otherVerifier], 2), 'THRESHOLD');
    const one = await openNote(twice, [otherVerifier]);
    expect(one.verified.map((s) => s.name)).toEqual(['example.com/other']);
    expect(one.unverified.map((s) => s.name)).toEqual(['PeterNeumann']);
    const both = await openNote(twice, [peterVerifier, otherVerifier], 2);
    expect(both.verified.map((s) => s.name)).toEqual(['PeterNeumann', 'example.com/other']);
    await rejects(openNote(PETER_NOTE, [otherVerifier]), 'UNKNOWN_KEY');
    // The same key twice counts once.
    const dup = await signNote(PETER_TEXT, [other, other]);
    await rejects(openNote(dup, [otherVerifier], 2), 'THRESHOLD');
    // Same name, different key: unknown, not bad.
    const impostor = await createEd25519Signer('PeterNeumann', new Uint8Array(32).fill(1));
    await rejects(openNote(await signNote(PETER_TEXT, [impostor]), [peterVerifier]), 'UNKNOWN_KEY');
  });
});

describe('parseNote', () => {
  it('rejects malformed notes', () => {
    const sigLine = PETER_NOTE.slice(PETER_TEXT.length + 1);
    for (const bad of [
      PETER_TEXT, // no signatures
      PETER_NOTE.slice(0, -1), // no final newline
      `${PETER_TEXT}\n${sigLine.replace('\u2014', '-')}`, // ASCII dash
      `${PETER_TEXT}\n${sigLine.replace('PeterNeumann', 'Peter+Neumann')}`,
      `${PETER_TEXT}\n${sigLine.replace('=\n', '\n')}`, // unpadded base64
      `${PETER_TEXT}\n\u2014 PeterNeumann AAAA\n`, // too short for hash and signature
      `${PETER_TEXT}\n${sigLine}\n`, // trailing blank line
      `${PETER_TEXT.replace('\n', '\r\n')}\n${sigLine}`, // control character
      `\n\n${sigLine}`, // empty text
    ]) {
      throwsCode(() => parseNote(bad), 'MALFORMED_NOTE');
    }
    throwsCode(() => parseNote(new Uint8Array([0xff, 0x0a, 0x0a])), 'MALFORMED_NOTE');
  });

  it('enforces the size and signature-count limits', () => {
    throwsCode(() => parseNote('a'.repeat(64 * 1024 + 1)), 'TOO_LARGE');
    const line = PETER_NOTE.slice(PETER_TEXT.length + 1);
    throwsCode(() => parseNote(PETER_TEXT + '\n' + line.repeat(101)), 'TOO_LARGE');
    expect(parseNote(PETER_TEXT + '\n' + line.repeat(100)).signatures).toHaveLength(100);
  });

  it('parses the key hash and signature bytes', () => {
    const [sig] = parseNote(PETER_NOTE).signatures;
    expect(sig?.keyHash).toBe(0xc74f20a3);
    expect(sig?.signature).toHaveLength(64);
    expect(toBase64(new Uint8Array([0xc7, 0x4f, 0x20, 0xa3, ...(sig?.signature ?? [])]))).toBe(
      'x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=',
    );
  });
});

describe('keys', () => {
  it('rejects bad names, key strings and key sizes', async () => {
    await rejects(keyHash('a b', 1, new Uint8Array(32)), 'MALFORMED_KEY');
    await rejects(keyHash('', 1, new Uint8Array(32)), 'MALFORMED_KEY');
    await rejects(
      parseVerifierKey(PETER_VERIFIER_KEY.replace('c74f20a3', 'c74f20a4')),
      'MALFORMED_KEY',
    );
    await rejects(parseVerifierKey(PETER_VERIFIER_KEY.replace('+ARpc', '+AhRpc')), 'MALFORMED_KEY');
    await rejects(createEd25519Verifier('x', new Uint8Array(31)), 'MALFORMED_KEY');
    await rejects(createEd25519Signer('x', new Uint8Array(31)), 'MALFORMED_KEY');
  });

  it('refuses to sign text that is not newline-terminated lines', async () => {
    await rejects(signNote('no newline', [other]), 'MALFORMED_NOTE');
    await rejects(signNote('a\n\nb\n', [other]), 'MALFORMED_NOTE');
  });
});
