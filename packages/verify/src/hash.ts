/**
 * Hashing behind a port, so large files stream through whatever the runtime does best:
 * node:crypto in Node (adapter in @cairn/client), `crypto.DigestStream` in workerd, and
 * WebCrypto elsewhere. An unknown algorithm is a failure, never a skip.
 */
import { VerifyError } from './errors.js';
import { toHex } from './encoding.js';

export type HashAlgorithm = 'sha256' | 'sha512';

export const HASH_ALGORITHMS: readonly HashAlgorithm[] = ['sha256', 'sha512'];

export function isHashAlgorithm(name: string): name is HashAlgorithm {
  return (HASH_ALGORITHMS as readonly string[]).includes(name);
}

export interface Hasher {
  update(chunk: Uint8Array): void;
  digest(): Promise<Uint8Array>;
}

export interface HashPort {
  create(algorithm: HashAlgorithm): Hasher;
}

const WEB_NAMES: Record<HashAlgorithm, string> = { sha256: 'SHA-256', sha512: 'SHA-512' };

interface DigestStreamLike extends WritableStream<Uint8Array> {
  readonly digest: Promise<ArrayBuffer>;
}
type DigestStreamConstructor = new (algorithm: string) => DigestStreamLike;

function digestStreamConstructor(): DigestStreamConstructor | undefined {
  const candidate = (globalThis.crypto as unknown as { DigestStream?: unknown }).DigestStream;
  return typeof candidate === 'function' ? (candidate as DigestStreamConstructor) : undefined;
}

/** Streams into workerd's `crypto.DigestStream`: constant memory for any file size. */
class DigestStreamHasher implements Hasher {
  readonly #stream: DigestStreamLike;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #pending: Promise<void>[] = [];

  constructor(Ctor: DigestStreamConstructor, algorithm: HashAlgorithm) {
    this.#stream = new Ctor(WEB_NAMES[algorithm]);
    this.#writer = this.#stream.getWriter();
  }

  update(chunk: Uint8Array): void {
    // Copy: the caller may reuse its buffer before the write is consumed.
    this.#pending.push(this.#writer.write(chunk.slice()));
  }

  async digest(): Promise<Uint8Array> {
    await Promise.all(this.#pending);
    await this.#writer.close();
    return new Uint8Array(await this.#stream.digest);
  }
}

/** WebCrypto has no incremental digest: chunks are kept until `digest()`. Used only where
 * neither node:crypto nor DigestStream exists (browsers), for metadata-sized inputs. */
class BufferedWebHasher implements Hasher {
  readonly #chunks: Uint8Array[] = [];
  readonly #algorithm: HashAlgorithm;

  constructor(algorithm: HashAlgorithm) {
    this.#algorithm = algorithm;
  }

  update(chunk: Uint8Array): void {
    this.#chunks.push(chunk.slice());
  }

  async digest(): Promise<Uint8Array> {
    let total = 0;
    for (const c of this.#chunks) total += c.length;
    const all = new Uint8Array(total);
    let offset = 0;
    for (const c of this.#chunks) {
      all.set(c, offset);
      offset += c.length;
    }
    const out = await crypto.subtle.digest(WEB_NAMES[this.#algorithm], all);
    return new Uint8Array(out);
  }
}

/** The runtime's own hashing: DigestStream when present (workerd), else WebCrypto. */
export const webHashPort: HashPort = {
  create(algorithm: HashAlgorithm): Hasher {
    const Ctor = digestStreamConstructor();
    return Ctor ? new DigestStreamHasher(Ctor, algorithm) : new BufferedWebHasher(algorithm);
  },
};

export async function digest(
  port: HashPort,
  algorithm: HashAlgorithm,
  data: Uint8Array,
): Promise<Uint8Array> {
  const hasher = port.create(algorithm);
  hasher.update(data);
  return hasher.digest();
}

export async function sha256Hex(port: HashPort, data: Uint8Array): Promise<string> {
  return toHex(await digest(port, 'sha256', data));
}

function requireAlgorithms(hashes: Readonly<Record<string, string>>): HashAlgorithm[] {
  const algorithms = Object.keys(hashes);
  if (algorithms.length === 0) {
    throw new VerifyError('MALFORMED', 'hashes: expected at least one hash, received none');
  }
  return algorithms.map((name) => {
    if (!isHashAlgorithm(name)) {
      throw new VerifyError(
        'UNKNOWN_HASH_ALGORITHM',
        `hashes: algorithm '${name}' is not supported (supported: ${HASH_ALGORITHMS.join(', ')})`,
      );
    }
    return name;
  });
}

/**
 * Verifies bytes that arrive in chunks against an expected length and every listed hash.
 * `update` throws TOO_LARGE as soon as more bytes arrive than expected, so an endless
 * download stops at the cap rather than after it.
 */
export class ContentVerifier {
  readonly #hashers: [HashAlgorithm, Hasher, string][];
  readonly #expectedLength: number | undefined;
  readonly #what: string;
  #received = 0;

  constructor(
    port: HashPort,
    expected: {
      length?: number | undefined;
      hashes?: Readonly<Record<string, string>> | undefined;
    },
    what: string,
  ) {
    this.#what = what;
    this.#expectedLength = expected.length;
    this.#hashers =
      expected.hashes === undefined
        ? []
        : requireAlgorithms(expected.hashes).map((alg) => [
            alg,
            port.create(alg),
            (expected.hashes?.[alg] ?? '').toLowerCase(),
          ]);
  }

  get received(): number {
    return this.#received;
  }

  update(chunk: Uint8Array): void {
    this.#received += chunk.length;
    if (this.#expectedLength !== undefined && this.#received > this.#expectedLength) {
      throw new VerifyError(
        'TOO_LARGE',
        `${this.#what}: more than the expected ${this.#expectedLength} bytes`,
      );
    }
    for (const [, hasher] of this.#hashers) hasher.update(chunk);
  }

  async finish(): Promise<void> {
    if (this.#expectedLength !== undefined && this.#received !== this.#expectedLength) {
      throw new VerifyError(
        'BAD_LENGTH',
        `${this.#what}: expected ${this.#expectedLength} bytes, received ${this.#received}`,
      );
    }
    for (const [alg, hasher, expectedHex] of this.#hashers) {
      const actual = toHex(await hasher.digest());
      if (actual !== expectedHex) {
        throw new VerifyError(
          'BAD_HASH',
          `${this.#what}: ${alg} is ${actual}, expected ${expectedHex}`,
        );
      }
    }
  }
}

export async function verifyLengthAndHashes(
  port: HashPort,
  data: Uint8Array,
  expected: { length?: number | undefined; hashes?: Readonly<Record<string, string>> | undefined },
  what: string,
): Promise<void> {
  const verifier = new ContentVerifier(port, expected, what);
  verifier.update(data);
  await verifier.finish();
}
