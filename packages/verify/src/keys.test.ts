import { describe, expect, test } from 'vitest';
import { fromHex } from './encoding.js';
import { Key, computeKeyId, derToP1363, p1363ToDer } from './keys.js';
import ecdsa from './vectors/ecdsa-p256.json' with { type: 'json' };
import ed25519 from './vectors/ed25519-rfc8032.json' with { type: 'json' };

function hex(h: string): Uint8Array {
  const bytes = fromHex(h);
  if (bytes === undefined) throw new Error(`bad hex in vector: ${h.slice(0, 20)}`);
  return bytes;
}

describe('ed25519: RFC 8032 section 7.1', () => {
  test.each(ed25519.vectors.map((v) => [v.name, v] as const))('%s verifies', async (_name, v) => {
    const key = new Key('ed25519', 'ed25519', v.public_key_hex);
    expect(await key.verify(v.signature_hex, hex(v.message_hex))).toBe(true);
  });

  test.each(ed25519.vectors.map((v) => [v.name, v] as const))(
    '%s with one bit flipped fails',
    async (_name, v) => {
      const key = new Key('ed25519', 'ed25519', v.public_key_hex);
      const sig = hex(v.signature_hex);
      sig[10] = (sig[10] ?? 0) ^ 1;
      expect(
        await key.verify(
          Array.from(sig, (b) => b.toString(16).padStart(2, '0')).join(''),
          hex(v.message_hex),
        ),
      ).toBe(false);
    },
  );

  // Signatures a permissive (ZIP-215) verifier may accept, a strict RFC 8032 one must not.
  test.each(ed25519.strict_rejects.map((v) => [v.name, v] as const))(
    'strict: refuses %s',
    async (_name, v) => {
      const key = new Key('ed25519', 'ed25519', v.public_key_hex);
      expect(await key.verify(v.signature_hex, hex(v.message_hex))).toBe(false);
    },
  );
});

describe('ECDSA P-256 / SHA-256 (RFC 6979 A.2.5 and DER edge cases)', () => {
  test.each(ecdsa.vectors.map((v) => [v.case, v] as const))('%s', async (_name, v) => {
    for (const keytype of ['ecdsa', 'ecdsa-sha2-nistp256']) {
      const key = new Key(keytype, 'ecdsa-sha2-nistp256', v.public_key_pem);
      expect(await key.verify(v.signature_der_hex, hex(v.message_hex))).toBe(v.valid);
    }
  });

  test('the keyid of the vector key is the one securesystemslib computes', async () => {
    const key = new Key(ecdsa.key.tuf_keytype, ecdsa.key.tuf_scheme, ecdsa.key.public_key_pem);
    expect(await computeKeyId(key)).toBe(ecdsa.key.tuf_keyid);
  });

  test('DER and r||s convert both ways for the valid vectors', () => {
    for (const v of ecdsa.vectors.filter((x) => x.valid)) {
      const raw = derToP1363(hex(v.signature_der_hex));
      expect(raw).toBeDefined();
      expect(p1363ToDer(raw ?? new Uint8Array())).toEqual(hex(v.signature_der_hex));
    }
  });
});

describe('keys that cannot verify, verify nothing (and never throw)', () => {
  const sig = ed25519.vectors[0]?.signature_hex ?? '';
  test.each([
    ['an unknown key type', new Key('rsa', 'rsassa-pss-sha256', 'x')],
    [
      'ed25519 with a wrong scheme',
      new Key('ed25519', 'ecdsa-sha2-nistp256', ed25519.vectors[0]?.public_key_hex ?? ''),
    ],
    ['a short ed25519 key', new Key('ed25519', 'ed25519', 'abcd')],
    ['an ECDSA key that is not PEM', new Key('ecdsa', 'ecdsa-sha2-nistp256', 'not a pem')],
  ])('%s', async (_name, key) => {
    expect(await key.verify(sig, new Uint8Array())).toBe(false);
  });

  test('a signature that is not hex verifies nothing', async () => {
    const v = ed25519.vectors[0];
    const key = new Key('ed25519', 'ed25519', v?.public_key_hex ?? '');
    expect(await key.verify('zz', new Uint8Array())).toBe(false);
  });
});

test('unknown key fields are preserved when written back', () => {
  const json = {
    keytype: 'ed25519',
    scheme: 'ed25519',
    keyid_hash_algorithms: ['sha256', 'sha512'],
    keyval: { public: 'ab', x: 1 },
  };
  expect(Key.fromJSON(json, 'key').toJSON()).toEqual(json);
});

describe('identity: one key counts once, however it is spelled', () => {
  test('an ed25519 key in lower- and uppercase hex is one key', async () => {
    const hexKey = ed25519.vectors[0]?.public_key_hex ?? '';
    const lower = new Key('ed25519', 'ed25519', hexKey);
    const upper = new Key('ed25519', 'ed25519', hexKey.toUpperCase());
    expect(await upper.identity()).toBe(await lower.identity());
    expect(await lower.identity()).toBe(`ed25519:${hexKey}`);
  });

  test('an ECDSA key under both keytype names and re-wrapped PEM is one key', async () => {
    const pem = ecdsa.key.public_key_pem;
    const rewrapped = pem.replace(/\n(?!-----END)/g, '\n\n');
    const a = new Key('ecdsa', 'ecdsa-sha2-nistp256', pem);
    const b = new Key('ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp256', rewrapped);
    expect(await b.identity()).toBe(await a.identity());
    expect(await a.identity()).toBe(
      `ecdsa-p256:04${ecdsa.key.public_key_x_hex}${ecdsa.key.public_key_y_hex}`,
    );
  });
});
