/**
 * The HashPort for Node: node:crypto hashes incrementally, so a multi-gigabyte target streams
 * through in constant memory (WebCrypto would have to hold all of it).
 */
import { createHash, type Hash } from 'node:crypto';
import { VerifyError } from '@cairn/verify/errors';
import {
  HASH_ALGORITHMS,
  isHashAlgorithm,
  type HashAlgorithm,
  type HashPort,
  type Hasher,
} from '@cairn/verify/hash';

class NodeHasher implements Hasher {
  readonly #hash: Hash;

  constructor(algorithm: HashAlgorithm) {
    this.#hash = createHash(algorithm);
  }

  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
  }

  digest(): Promise<Uint8Array> {
    // A plain Uint8Array, not a Buffer: callers compare and serialize it as one.
    return Promise.resolve(new Uint8Array(this.#hash.digest()));
  }
}

export const nodeHashPort: HashPort = {
  create(algorithm: HashAlgorithm): Hasher {
    // The type says this cannot happen; names from metadata reach here at run time.
    if (!isHashAlgorithm(algorithm)) {
      throw new VerifyError(
        'UNKNOWN_HASH_ALGORITHM',
        `algorithm: expected one of ${HASH_ALGORITHMS.join(', ')}, received ${JSON.stringify(algorithm)}`,
      );
    }
    return new NodeHasher(algorithm);
  },
};
