/**
 * The signing side. `Signer` is the interface every key holder implements: in-memory keys
 * here, external signers (HSMs, KMS, publishers' own machines) later.
 */
import { getPublicKeyAsync, signAsync } from '@noble/ed25519';
import { toHex } from './encoding.js';
import { VerifyError } from './errors.js';
import { ECDSA_P256_SCHEME, ED25519, Key, computeKeyId, derToPem, p1363ToDer } from './keys.js';
import type { Metadata, Signature, Signed } from './metadata.js';

export interface Signer {
  readonly keyid: string;
  readonly publicKey: Key;
  /** Returns the signature over `data`, hex-encoded as TUF metadata carries it. */
  sign(data: Uint8Array): Promise<string>;
}

export class Ed25519Signer implements Signer {
  readonly keyid: string;
  readonly publicKey: Key;
  readonly #secretKey: Uint8Array;

  private constructor(keyid: string, publicKey: Key, secretKey: Uint8Array) {
    this.keyid = keyid;
    this.publicKey = publicKey;
    this.#secretKey = secretKey;
  }

  static async fromSecretKey(secretKey: Uint8Array, keyid?: string): Promise<Ed25519Signer> {
    if (secretKey.length !== 32) {
      throw new VerifyError(
        'MALFORMED',
        `secretKey: expected 32 bytes, received ${secretKey.length}`,
      );
    }
    const publicKey = new Key(ED25519, ED25519, toHex(await getPublicKeyAsync(secretKey)));
    return new Ed25519Signer(
      keyid ?? (await computeKeyId(publicKey)),
      publicKey,
      secretKey.slice(),
    );
  }

  static async generate(): Promise<Ed25519Signer> {
    return Ed25519Signer.fromSecretKey(crypto.getRandomValues(new Uint8Array(32)));
  }

  exportSecretKey(): Uint8Array {
    return this.#secretKey.slice();
  }

  async sign(data: Uint8Array): Promise<string> {
    return toHex(await signAsync(data, this.#secretKey));
  }
}

export class EcdsaP256Signer implements Signer {
  readonly keyid: string;
  readonly publicKey: Key;
  readonly #privateKey: CryptoKey;

  private constructor(keyid: string, publicKey: Key, privateKey: CryptoKey) {
    this.keyid = keyid;
    this.publicKey = publicKey;
    this.#privateKey = privateKey;
  }

  static async #fromPair(
    privateKey: CryptoKey,
    publicKey: CryptoKey,
    keyid?: string,
  ): Promise<EcdsaP256Signer> {
    const spki = new Uint8Array(await crypto.subtle.exportKey('spki', publicKey));
    const key = new Key('ecdsa', ECDSA_P256_SCHEME, derToPem(spki, 'PUBLIC KEY'));
    return new EcdsaP256Signer(keyid ?? (await computeKeyId(key)), key, privateKey);
  }

  static async generate(): Promise<EcdsaP256Signer> {
    const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ]);
    return EcdsaP256Signer.#fromPair(pair.privateKey, pair.publicKey);
  }

  /** From a PKCS#8 private key (DER) as exported by `exportPkcs8`. */
  static async fromPkcs8(der: Uint8Array, keyid?: string): Promise<EcdsaP256Signer> {
    const alg = { name: 'ECDSA', namedCurve: 'P-256' };
    const privateKey = await crypto.subtle.importKey('pkcs8', new Uint8Array(der), alg, true, [
      'sign',
    ]);
    // WebCrypto derives no public key from a private one; the JWK form carries both.
    const jwk = await crypto.subtle.exportKey('jwk', privateKey);
    const { d: _d, key_ops: _ops, ...publicJwk } = jwk;
    const publicKey = await crypto.subtle.importKey(
      'jwk',
      { ...publicJwk, key_ops: ['verify'] },
      alg,
      true,
      ['verify'],
    );
    return EcdsaP256Signer.#fromPair(privateKey, publicKey, keyid);
  }

  async exportPkcs8(): Promise<Uint8Array> {
    return new Uint8Array(await crypto.subtle.exportKey('pkcs8', this.#privateKey));
  }

  async sign(data: Uint8Array): Promise<string> {
    const raw = await crypto.subtle.sign(
      { name: 'ECDSA', hash: 'SHA-256' },
      this.#privateKey,
      data as Uint8Array<ArrayBuffer>,
    );
    return toHex(p1363ToDer(new Uint8Array(raw)));
  }
}

/** Adds (or replaces) the signatures of `signers` on `metadata`. */
export async function signMetadata<T extends Signed>(
  metadata: Metadata<T>,
  signers: readonly Signer[],
): Promise<Metadata<T>> {
  const data = metadata.signedBytes();
  const fresh: Signature[] = [];
  for (const signer of signers) fresh.push({ keyid: signer.keyid, sig: await signer.sign(data) });
  const replaced = new Set(fresh.map((s) => s.keyid));
  return metadata.withSignatures([
    ...metadata.signatures.filter((s) => !replaced.has(s.keyid)),
    ...fresh,
  ]);
}

/**
 * Merges signatures made by several parties at different times over the same metadata: the
 * two-person rule collects them one by one. Refuses to merge signatures over different
 * contents; the first signature seen for a keyid is kept.
 */
export function mergeSignatures<T extends Signed>(
  base: Metadata<T>,
  ...others: readonly Metadata[]
): Metadata<T> {
  const expected = toHex(base.signedBytes());
  const byKeyId = new Map(base.signatures.map((s) => [s.keyid, s]));
  for (const other of others) {
    if (toHex(other.signedBytes()) !== expected) {
      throw new VerifyError(
        'SIGNED_DIFFERS',
        `cannot merge signatures: ${other.signed.type} v${other.signed.version} has different signed contents`,
      );
    }
    for (const s of other.signatures) if (!byKeyId.has(s.keyid)) byKeyId.set(s.keyid, s);
  }
  return base.withSignatures([...byKeyId.values()]);
}
