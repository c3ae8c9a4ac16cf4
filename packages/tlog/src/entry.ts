/**
 * What Cairn logs: one entry per root, targets or snapshot version the origin publishes. An
 * entry names the metadata file by role and version and pins its exact bytes by length and
 * sha256, so the log commits to every file clients may accept without holding the files
 * themselves (a targets file can be megabytes; an entry is under 300 bytes).
 *
 * The bytes are canonical JSON, keys in code-point order, no spaces:
 *
 *   {"length":1234,"role":"targets","sha256":"…","time":"2026-11-23T07:00:00.000Z","type":"cairn-metadata/v1","version":12}
 *
 * `time` is the origin's clock when it published (asserted by the origin, not proven).
 */
import { fromUtf8, sha256, toHex, utf8 } from './bytes.js';
import { TlogError } from './errors.js';

export const ENTRY_TYPE = 'cairn-metadata/v1';

/** Entries are small; anything bigger is not ours. */
export const MAX_ENTRY_BYTES = 1024;

export interface MetadataEntry {
  /** `root`, `targets`, `snapshot`, or a delegated targets role's name. */
  readonly role: string;
  readonly version: number;
  /** Bytes in the metadata file. */
  readonly length: number;
  /** Lowercase hex sha256 of the metadata file's exact bytes. */
  readonly sha256: string;
  /** ISO 8601 UTC with milliseconds, as `Date.prototype.toISOString` writes it. */
  readonly time: string;
}

const ROLE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const KEYS = ['length', 'role', 'sha256', 'time', 'type', 'version'];

function malformed(message: string): TlogError {
  return new TlogError('MALFORMED_ENTRY', message);
}

function checkEntry(entry: MetadataEntry): void {
  if (typeof entry.role !== 'string' || !ROLE.test(entry.role))
    throw malformed(`role must match ${ROLE.source}, got ${JSON.stringify(entry.role)}`);
  for (const [name, value, min] of [
    ['version', entry.version, 1],
    ['length', entry.length, 0],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < min)
      throw malformed(`${name} must be an integer ≥ ${String(min)}, got ${String(value)}`);
  }
  if (typeof entry.sha256 !== 'string' || !SHA256.test(entry.sha256))
    throw malformed('sha256 must be 64 lowercase hex digits');
  if (
    typeof entry.time !== 'string' ||
    !TIME.test(entry.time) ||
    new Date(entry.time).toISOString() !== entry.time
  )
    throw malformed(`time must be an ISO 8601 UTC time with milliseconds, got ${entry.time}`);
}

/** The entry's canonical bytes. */
export function encodeEntry(entry: MetadataEntry): Uint8Array {
  checkEntry(entry);
  return utf8(
    `{"length":${String(entry.length)},"role":${JSON.stringify(entry.role)},"sha256":"${entry.sha256}","time":"${entry.time}","type":"${ENTRY_TYPE}","version":${String(entry.version)}}`,
  );
}

/** Parses an entry, accepting only the exact bytes `encodeEntry` writes. */
export function parseEntry(bytes: Uint8Array): MetadataEntry {
  if (bytes.length > MAX_ENTRY_BYTES)
    throw malformed(`entry of ${String(bytes.length)} bytes exceeds ${String(MAX_ENTRY_BYTES)}`);
  const text = fromUtf8(bytes);
  if (text === undefined) throw malformed('entry is not UTF-8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw malformed('entry is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw malformed('entry is not a JSON object');
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  if (keys.join(',') !== KEYS.join(','))
    throw malformed(`entry fields must be exactly ${KEYS.join(', ')}`);
  if (record.type !== ENTRY_TYPE) throw malformed(`entry type must be ${ENTRY_TYPE}`);
  const entry = {
    role: record.role,
    version: record.version,
    length: record.length,
    sha256: record.sha256,
    time: record.time,
  } as MetadataEntry;
  const canonical = encodeEntry(entry);
  if (fromUtf8(canonical) !== text) throw malformed('entry is not in canonical form');
  return entry;
}

/** The entry for one metadata file's exact bytes. */
export async function metadataEntry(
  role: string,
  version: number,
  bytes: Uint8Array,
  time: Date,
): Promise<MetadataEntry> {
  const entry = {
    role,
    version,
    length: bytes.length,
    sha256: toHex(await sha256(bytes)),
    time: time.toISOString(),
  };
  checkEntry(entry);
  return entry;
}

/** Whether `entry` names this role and version and pins exactly these bytes. */
export async function entryDescribes(
  entry: MetadataEntry,
  role: string,
  version: number,
  bytes: Uint8Array,
): Promise<boolean> {
  return (
    entry.role === role &&
    entry.version === version &&
    entry.length === bytes.length &&
    entry.sha256 === toHex(await sha256(bytes))
  );
}
