/**
 * Object keys are `/`-separated relative paths. Every adapter refuses the same bad keys, so
 * a key that would climb out of a filesystem store is refused by the S3 store too.
 */
import { StorageError } from './errors.js';

export function checkKey(key: string, what = 'key'): void {
  // eslint-disable-next-line no-control-regex
  const bad = /[\u0000-\u001f\u007f\\]/.test(key);
  if (
    key.length === 0 ||
    key.length > 1024 ||
    key.startsWith('/') ||
    bad ||
    key.split('/').some((part) => part === '' || part === '.' || part === '..')
  ) {
    throw new StorageError(
      'INVALID_KEY',
      `${what}: ${JSON.stringify(key)} is not an acceptable object key`,
    );
  }
}

/** A prefix may be empty or end in `/`; otherwise it follows the key rules. */
export function checkPrefix(prefix: string): void {
  if (prefix === '') return;
  checkKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix, 'prefix');
}
