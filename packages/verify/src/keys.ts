/**
 * Public keys as TUF metadata carries them, and signature verification:
 * - ed25519 through @noble/ed25519 with strict RFC 8032 checks (`zip215: false`: canonical
 *   S and point encodings only), so every verifier agrees on which signatures are valid;
 * - ECDSA P-256 with SHA-256 through WebCrypto, with PEM SubjectPublicKeyInfo keys and
 *   strictly parsed DER signatures, as securesystemslib signs them.
 * Unknown key types are not errors here: a key we cannot use simply verifies nothing, and
 * the threshold decides.
 */
import { verifyAsync } from '@noble/ed25519';
import { canonicalize } from './canonical-json.js';
import { fromBase64, fromHex, toHex } from './encoding.js';
import { VerifyError } from './errors.js';
import { sha256Hex, webHashPort } from './hash.js';
import { asObject, asString, extraFields, type JsonObject } from './json.js';

export const ED25519 = 'ed25519';
export const ECDSA_P256_SCHEME = 'ecdsa-sha2-nistp256';
const ECDSA_KEYTYPES = new Set(['ecdsa', 'ecdsa-sha2-nistp256']);

/** n, the order of the P-256 group: r and s must lie in [1, n-1]. */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

export class Key {
  readonly keytype: string;
  readonly scheme: string;
  readonly publicValue: string;
  /** Fields we do not interpret (keyval extras, keyid_hash_algorithms, ...), kept verbatim. */
  readonly #keyvalExtra: JsonObject;
  readonly #extra: JsonObject;
  #webKey: Promise<CryptoKey | undefined> | undefined;

  constructor(
    keytype: string,
    scheme: string,
    publicValue: string,
    extra: { keyval?: JsonObject; key?: JsonObject } = {},
  ) {
    this.keytype = keytype;
    this.scheme = scheme;
    this.publicValue = publicValue;
    this.#keyvalExtra = extra.keyval ?? {};
    this.#extra = extra.key ?? {};
  }

  static fromJSON(value: unknown, where: string): Key {
    const obj = asObject(value, where);
    const keyval = asObject(obj.keyval, `${where}.keyval`);
    return new Key(
      asString(obj.keytype, `${where}.keytype`),
      asString(obj.scheme, `${where}.scheme`),
      asString(keyval.public, `${where}.keyval.public`),
      {
        keyval: extraFields(keyval, ['public']),
        key: extraFields(obj, ['keytype', 'scheme', 'keyval']),
      },
    );
  }

  toJSON(): JsonObject {
    return {
      ...this.#extra,
      keytype: this.keytype,
      scheme: this.scheme,
      keyval: { ...this.#keyvalExtra, public: this.publicValue },
    };
  }

  /**
   * The key material itself, whatever keyid, keytype alias or spelling lists it, so that one
   * key counts once toward a threshold: ed25519 as the lowercase hex of its 32 bytes (strict
   * verification accepts only canonical encodings), ECDSA P-256 as its uncompressed point.
   * Keys that cannot verify get their text: they never count anyway.
   */
  async identity(): Promise<string> {
    if (this.keytype === ED25519 && this.scheme === ED25519) {
      const bytes = fromHex(this.publicValue);
      if (bytes?.length === 32) return `ed25519:${toHex(bytes)}`;
    }
    if (ECDSA_KEYTYPES.has(this.keytype) && this.scheme === ECDSA_P256_SCHEME) {
      const key = await this.#ecdsaKey();
      if (key !== undefined) {
        return `ecdsa-p256:${toHex(new Uint8Array(await crypto.subtle.exportKey('raw', key)))}`;
      }
    }
    return `unsupported:${this.keytype}/${this.scheme}/${this.publicValue}`;
  }

  get supported(): boolean {
    return (
      (this.keytype === ED25519 && this.scheme === ED25519) ||
      (ECDSA_KEYTYPES.has(this.keytype) && this.scheme === ECDSA_P256_SCHEME)
    );
  }

  /**
   * True only for a valid signature by this key over `data`. Malformed signatures or keys
   * verify nothing; they never throw, so one bad key cannot stop a threshold being met.
   */
  async verify(signatureHex: string, data: Uint8Array): Promise<boolean> {
    const signature = fromHex(signatureHex);
    if (signature === undefined) return false;
    if (this.keytype === ED25519 && this.scheme === ED25519) {
      const publicKey = fromHex(this.publicValue);
      if (publicKey?.length !== 32 || signature.length !== 64) return false;
      try {
        return await verifyAsync(signature, data, publicKey, { zip215: false });
      } catch {
        return false;
      }
    }
    if (ECDSA_KEYTYPES.has(this.keytype) && this.scheme === ECDSA_P256_SCHEME) {
      const raw = derToP1363(signature);
      const key = await this.#ecdsaKey();
      if (raw === undefined || key === undefined) return false;
      try {
        return await crypto.subtle.verify(
          { name: 'ECDSA', hash: 'SHA-256' },
          key,
          raw,
          data as Uint8Array<ArrayBuffer>,
        );
      } catch {
        return false;
      }
    }
    return false;
  }

  #ecdsaKey(): Promise<CryptoKey | undefined> {
    this.#webKey ??= (async () => {
      const der = pemToDer(this.publicValue, 'PUBLIC KEY');
      if (der === undefined) return undefined;
      try {
        return await crypto.subtle.importKey(
          'spki',
          der,
          { name: 'ECDSA', namedCurve: 'P-256' },
          // A public key: extractable so that identity() can read its point.
          true,
          ['verify'],
        );
      } catch {
        return undefined;
      }
    })();
    return this.#webKey;
  }
}

/**
 * The keyid securesystemslib gives a key: sha256 over the canonical JSON of its keytype,
 * scheme and keyval only (other top-level fields, like keyid_hash_algorithms, do not count).
 */
export async function computeKeyId(key: Key): Promise<string> {
  const { keytype, scheme, keyval } = key.toJSON();
  return sha256Hex(webHashPort, canonicalize({ keytype, scheme, keyval }));
}

export function pemToDer(pem: string, label: string): Uint8Array<ArrayBuffer> | undefined {
  const match = new RegExp(
    `^\\s*-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----\\s*$`,
  ).exec(pem);
  if (match?.[1] === undefined) return undefined;
  const der = fromBase64(match[1]);
  return der === undefined ? undefined : new Uint8Array(der);
}

export function derToPem(der: Uint8Array, label: string): string {
  let b64 = '';
  for (const b of der) b64 += String.fromCharCode(b);
  const body = btoa(b64).replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${body}${body.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

/**
 * Parses a DER ECDSA-Sig-Value strictly (minimal lengths and integers, no trailing bytes,
 * 0 < r, s < n) and returns the 64-byte r||s form WebCrypto verifies.
 */
export function derToP1363(der: Uint8Array): Uint8Array<ArrayBuffer> | undefined {
  if (der.length < 8 || der[0] !== 0x30) return undefined;
  const seqLen = der[1] ?? 0;
  // P-256 signatures are at most 72 bytes: the length always fits the short form.
  if (seqLen >= 0x80 || seqLen !== der.length - 2) return undefined;
  let offset = 2;
  const ints: bigint[] = [];
  for (let i = 0; i < 2; i++) {
    if (der[offset] !== 0x02) return undefined;
    const len = der[offset + 1] ?? 0;
    if (len === 0 || len > 33 || offset + 2 + len > der.length) return undefined;
    const body = der.subarray(offset + 2, offset + 2 + len);
    const first = body[0] ?? 0;
    if (first & 0x80) return undefined; // negative
    if (first === 0 && len > 1 && ((body[1] ?? 0) & 0x80) === 0) return undefined; // non-minimal
    ints.push(BigInt(`0x${toHex(body)}`));
    offset += 2 + len;
  }
  if (offset !== der.length) return undefined;
  const out = new Uint8Array(64);
  for (const [i, value] of ints.entries()) {
    if (value <= 0n || value >= P256_N) return undefined;
    const bytes = fromHex(value.toString(16).padStart(64, '0'));
    if (bytes === undefined) return undefined;
    out.set(bytes, i * 32);
  }
  return out;
}

/** Encodes a 64-byte r||s signature as minimal DER, as securesystemslib expects. */
export function p1363ToDer(raw: Uint8Array): Uint8Array {
  if (raw.length !== 64) {
    throw new VerifyError(
      'MALFORMED',
      `ECDSA signature: expected 64 bytes, received ${raw.length}`,
    );
  }
  const encodeInt = (bytes: Uint8Array): number[] => {
    let start = 0;
    while (start < bytes.length - 1 && bytes[start] === 0) start++;
    const body = Array.from(bytes.subarray(start));
    if ((body[0] ?? 0) & 0x80) body.unshift(0);
    return [0x02, body.length, ...body];
  };
  const r = encodeInt(raw.subarray(0, 32));
  const s = encodeInt(raw.subarray(32));
  return new Uint8Array([0x30, r.length + s.length, ...r, ...s]);
}
