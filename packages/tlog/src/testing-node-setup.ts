// The Node run hashes with node:crypto, as Node hosts do; the workerd run (no setup file)
// keeps WebCrypto. Both runs check the same vectors, so both implementations are held to them.
import { useNodeSha256 } from './node-hash.js';

useNodeSha256();
