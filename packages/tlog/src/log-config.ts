/**
 * The log a repository declares in its signed root, so that the key that signs checkpoints
 * is itself under the root keys' threshold and every client learns it from the root it pins:
 *
 *   "x-cairn-log": { "key": "<vkey>", "witnesses": ["<vkey>", …], "witness_threshold": 1 }
 *
 * `key` is the log's C2SP note verifier key; its name is the checkpoint origin line.
 * `witnesses` (cosignature/v1 vkeys) and `witness_threshold` are optional.
 */
import type { CheckpointPolicy } from './checkpoint.js';
import { createCosignatureVerifier } from './checkpoint.js';
import { TlogError } from './errors.js';
import { ALGORITHM_COSIGNATURE_V1, ALGORITHM_ED25519, createEd25519Verifier } from './note.js';
import { parseVerifierKey } from './note.js';

export const LOG_FIELD = 'x-cairn-log';
/** The field of a key object in root.signed.keys that names its holder. */
export const KEY_NAME_FIELD = 'x-cairn-name';

export interface LogConfig {
  /** The checkpoint origin line: the name in `key`. */
  readonly origin: string;
  /** The log's ed25519 note verifier key. */
  readonly key: string;
  readonly witnesses: readonly string[];
  readonly witnessThreshold: number;
}

const MAX_WITNESSES = 32;

function malformed(message: string): TlogError {
  return new TlogError('MALFORMED_KEY', `${LOG_FIELD}: ${message}`);
}

/**
 * The log declared by a root's signed part (its unknown fields), or undefined when it declares
 * none. Checks the shape and the key strings' grammar; the keys are parsed by checkpointPolicy.
 */
export function logConfigFromRoot(
  signedExtra: Readonly<Record<string, unknown>>,
): LogConfig | undefined {
  const value = signedExtra[LOG_FIELD];
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw malformed('must be an object');
  const record = value as Record<string, unknown>;
  for (const name of Object.keys(record)) {
    if (!['key', 'witnesses', 'witness_threshold'].includes(name))
      throw malformed(`unknown field ${JSON.stringify(name)}`);
  }
  const key = record.key;
  if (typeof key !== 'string') throw malformed('key must be a verifier key string');
  const origin = key.split('+')[0] ?? '';
  if (origin === '' || !key.includes('+')) throw malformed('key must be name+hash+base64');
  const witnesses = record.witnesses ?? [];
  if (
    !Array.isArray(witnesses) ||
    witnesses.length > MAX_WITNESSES ||
    !witnesses.every((w): w is string => typeof w === 'string')
  )
    throw malformed(`witnesses must be at most ${String(MAX_WITNESSES)} verifier key strings`);
  if (new Set(witnesses).size !== witnesses.length) throw malformed('witnesses repeat a key');
  const threshold = record.witness_threshold ?? 0;
  if (
    typeof threshold !== 'number' ||
    !Number.isSafeInteger(threshold) ||
    threshold < 0 ||
    threshold > witnesses.length
  )
    throw malformed('witness_threshold must be an integer from 0 to the number of witnesses');
  return { origin, key, witnesses, witnessThreshold: threshold };
}

/** The JSON value to put under LOG_FIELD in a root's signed part. */
export function logConfigField(
  config: Pick<LogConfig, 'key'> & Partial<LogConfig>,
): Record<string, unknown> {
  const witnesses = config.witnesses ?? [];
  return {
    key: config.key,
    ...(witnesses.length > 0 ? { witnesses: [...witnesses] } : {}),
    ...((config.witnessThreshold ?? 0) > 0 ? { witness_threshold: config.witnessThreshold } : {}),
  };
}

/** Whether two declarations name the same log under the same keys and policy. */
export function sameLog(a: LogConfig, b: LogConfig): boolean {
  return (
    a.key === b.key &&
    a.witnessThreshold === b.witnessThreshold &&
    a.witnesses.length === b.witnesses.length &&
    a.witnesses.every((w, i) => w === b.witnesses[i])
  );
}

/** The checkpoint policy a declaration stands for: the log's key, its origin, the witness quorum. */
export async function checkpointPolicy(config: LogConfig): Promise<CheckpointPolicy> {
  const log = await parseVerifierKey(config.key);
  if (log.algorithm !== ALGORITHM_ED25519) throw malformed('the log key must be an ed25519 key');
  const witnesses = [];
  for (const witness of config.witnesses) {
    const parsed = await parseVerifierKey(witness);
    if (parsed.algorithm !== ALGORITHM_COSIGNATURE_V1)
      throw malformed(`witness ${parsed.name} must be a cosignature/v1 key`);
    witnesses.push(await createCosignatureVerifier(parsed.name, parsed.publicKey));
  }
  return {
    origin: log.name,
    log: await createEd25519Verifier(log.name, log.publicKey),
    witnesses,
    witnessThreshold: config.witnessThreshold,
  };
}
