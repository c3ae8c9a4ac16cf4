/**
 * What the operator commands (init, keys, serve, gc) share: the origin configuration, key
 * files and their passphrases, and the audit record of what an operator did.
 *
 * A key file is never overwritten: every command that creates one checks first that neither
 * it nor its `.pub` exists, and creates nothing at all when one does.
 */
import { lstat, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AuditLog, type AuditRecord } from '@cairn/origin/audit';
import {
  loadConfig,
  type OriginConfig,
  type StorageConfig,
  type openStore,
} from '@cairn/origin/config';
import { OriginError } from '@cairn/origin/errors';
import {
  passphraseFromEnv,
  publicKeyFileText,
  readKeyFile,
  writeKeyFile,
} from '@cairn/origin/key-file';
import { Ed25519Signer } from '@cairn/verify/signer';
import type { CliIo } from './cli-io.js';
import { ENV, commonHint, hinted, type Environment } from './command-support.js';

export type BlobStore = ReturnType<typeof openStore>;

export const CONFIG_OPTION =
  '  --config FILE   the origin configuration (default: none, the defaults in this directory)';
export const JSON_OPTION =
  '  --json          print one JSON document on standard output instead of text';

export async function originConfig(
  path: string | undefined,
  env: Environment,
): Promise<OriginConfig> {
  return hinted(
    () => loadConfig(path, env),
    (code) =>
      code === 'CONFIG_INVALID' ? 'fix the field or variable named before the colon' : undefined,
  );
}

export function describeStorage(storage: StorageConfig): string {
  return storage.type === 'fs'
    ? storage.directory
    : `s3://${storage.bucket}${storage.endpoint === undefined ? '' : ` at ${storage.endpoint}`}`;
}

export async function passphrase(
  variable: string,
  env: Environment,
  purpose: string,
): Promise<string> {
  return hinted(
    () => Promise.resolve(passphraseFromEnv(variable, env)),
    () =>
      `${variable} is the passphrase of ${purpose}; passphrases come only from the environment, never from flags (they would show in ps)`,
  );
}

export async function openKey(
  path: string,
  secret: string,
  variable: string,
): Promise<Ed25519Signer> {
  return hinted(
    () => readKeyFile(path, secret),
    (code) =>
      code === 'BAD_PASSPHRASE'
        ? `${variable} must be the passphrase ${path} was written with`
        : undefined,
  );
}

/** The root keys to sign with, each once. */
export async function openRootKeys(
  paths: readonly string[],
  env: Environment,
): Promise<Ed25519Signer[]> {
  const secret = await passphrase(ENV.rootPassphrase, env, 'the root key files');
  const signers: Ed25519Signer[] = [];
  for (const path of paths) {
    const signer = await openKey(path, secret, ENV.rootPassphrase);
    if (signers.some((s) => s.keyid === signer.keyid)) {
      throw new OriginError('CONFIG_INVALID', `${path}: the same root key is given twice`);
    }
    signers.push(signer);
  }
  return signers;
}

export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/**
 * Refuses, before anything is created, when a key file or its `.pub` is already there: a key
 * overwritten by mistake is lost for good.
 */
export async function checkFree(path: string): Promise<void> {
  for (const file of [path, `${path}.pub`]) {
    if (await exists(file)) {
      throw new OriginError(
        'KEY_FILE_INVALID',
        `${file}: a file exists here and will not be overwritten`,
      );
    }
  }
}

/** A new ed25519 key: FILE (private, encrypted, mode 600) and FILE.pub (public). */
export async function createKeyPair(path: string, secret: string): Promise<Ed25519Signer> {
  await checkFree(path);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const signer = await Ed25519Signer.generate();
  await writeKeyFile(path, signer, secret);
  await writeFile(`${path}.pub`, publicKeyFileText(signer.keyid, signer.publicKey), {
    flag: 'wx',
  });
  return signer;
}

/** Whether `path` is a private key file (not a `.pub`); a file that is neither is left for
 * readPublicKey to refuse with its reason. */
export async function isPrivateKeyFile(path: string): Promise<boolean> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as unknown;
    return typeof parsed === 'object' && parsed !== null && 'cairn_key_file' in parsed;
  } catch {
    return false;
  }
}

export async function audit(io: CliIo, store: BlobStore, record: AuditRecord): Promise<void> {
  try {
    await new AuditLog(store).record(record);
  } catch (error) {
    io.stderr(
      `⚠ the audit record of this ${record.action} was not written: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

export function repositoryHint(code: string): string | undefined {
  return code === 'REPOSITORY_STATE'
    ? 'create the repository first: cairn init, with the same --config'
    : commonHint(code);
}
