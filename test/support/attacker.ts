// What an attacker can do to a client's view of a RepositorySimulator: answer any path with
// other bytes (a hostile mirror or network), stream an endless body, and sign with whatever
// keys it stole. Nothing here goes through the simulator's publishing, except that forged
// versions are "burnt": the honest repository's next version is above them, as it would be
// once the origin moves on.
import { canonicalize } from '@cairn/verify/canonical-json';
import { webHashPort } from '@cairn/verify/hash';
import type { MetaFile, Metadata, Timestamp } from '@cairn/verify/metadata';
import { buildSnapshot, buildTimestamp, describeMetadata } from '@cairn/verify/repository';
import type { Signer } from '@cairn/verify/signer';
import type { RepositorySimulator } from './repository-simulator.js';

/** A metadata file as JSON: what a forger edits before serializing it again. */
export interface MetadataDocument {
  signatures: { keyid: string; sig: string }[];
  signed: Record<string, unknown>;
}

/** The bytes the simulator publishes at `path` (e.g. `metadata/timestamp.json`). */
export function published(sim: RepositorySimulator, path: string): Uint8Array {
  const bytes = sim.files.get(path);
  if (bytes === undefined) throw new Error(`attacker: nothing is published at ${path}`);
  return bytes;
}

/** The published file of a role at its current version. */
export function publishedRole(sim: RepositorySimulator, role: string): Uint8Array {
  if (role === 'timestamp') return published(sim, 'metadata/timestamp.json');
  if (role === 'root') return sim.rootBytes(sim.rootVersion);
  const version = role === 'snapshot' ? sim.snapshotVersion : sim.roleVersions.get(role);
  if (version === undefined) throw new Error(`attacker: role ${role} is not published`);
  return published(sim, `metadata/${sim.metadataName(role, version)}`);
}

/** Serves `body` with `status` at exactly `path` instead of whatever is published there. */
export function serve(
  sim: RepositorySimulator,
  path: string,
  body: Uint8Array | AsyncIterable<Uint8Array>,
  status = 200,
): void {
  sim.overrides.push((requested) => (requested === path ? { status, body } : undefined));
}

/** The network and the mirrors are honest again. */
export function stopAttack(sim: RepositorySimulator): void {
  sim.overrides = [];
}

/** An endless body: 64 KiB chunks of spaces, as fast as the client reads them. */
export class EndlessBody implements AsyncIterable<Uint8Array> {
  static readonly CHUNK = 64 * 1024;
  /** Bytes handed to the server so far: the client's reading, plus socket and stream buffers. */
  served = 0;

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    const chunk = new Uint8Array(EndlessBody.CHUNK).fill(0x20);
    return {
      next: () => {
        this.served += chunk.length;
        return Promise.resolve({ done: false, value: chunk });
      },
    };
  }
}

/**
 * How far past a cap an endless body may have been produced when the client stops reading at
 * the cap: loopback socket buffers and stream high-water marks hold a few MiB. A client that
 * ignored the cap would read on to its next limit, hundreds of MiB or more.
 */
export const BUFFERED_SLACK = 32 * 1024 * 1024;

/** `bytes` followed by spaces up to `length` bytes: still the same JSON, same signatures. */
export function padTo(bytes: Uint8Array, length: number): Uint8Array {
  if (bytes.length > length) throw new Error(`attacker: ${bytes.length} bytes exceed ${length}`);
  const out = new Uint8Array(length).fill(0x20);
  out.set(bytes);
  return out;
}

export function parseDocument(bytes: Uint8Array): MetadataDocument {
  return JSON.parse(new TextDecoder().decode(bytes)) as MetadataDocument;
}

export function documentBytes(doc: MetadataDocument): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(doc, null, 1));
}

/** Signs any JSON as a `signed` part, valid or not, over its canonical form. */
export async function signDocument(
  signed: Record<string, unknown>,
  signers: readonly Signer[],
): Promise<Uint8Array> {
  const data = canonicalize(signed);
  const signatures: MetadataDocument['signatures'] = [];
  for (const signer of signers)
    signatures.push({ keyid: signer.keyid, sig: await signer.sign(data) });
  return documentBytes({ signatures, signed });
}

/** A signer that signs with `key` but presents itself under `keyid`. */
export function signerUnderKeyId(key: Signer, keyid: string, publicKey = key.publicKey): Signer {
  return { keyid, publicKey, sign: (data) => key.sign(data) };
}

/** What timestamp says of snapshot bytes: version, length and sha256, as the simulator does. */
export function describeSnapshot(version: number, bytes: Uint8Array): Promise<MetaFile> {
  return describeMetadata(webHashPort, version, bytes, { length: true, hashes: true });
}

/** What the currently published timestamp says of snapshot. */
export function currentSnapshotMeta(sim: RepositorySimulator): MetaFile {
  const timestamp = sim.latest.get('timestamp') as Metadata<Timestamp> | undefined;
  if (timestamp === undefined) throw new Error('attacker: no timestamp is published');
  return timestamp.signed.snapshotMeta;
}

/**
 * Timestamp metadata naming `snapshot`, signed with the timestamp keys (stolen) unless
 * `signers` says otherwise. Without `version` it takes the repository's next version and burns it.
 */
export async function forgeTimestamp(
  sim: RepositorySimulator,
  snapshot: MetaFile,
  options: { version?: number; signers?: Signer[]; expires?: Date } = {},
): Promise<Uint8Array> {
  const version = options.version ?? (sim.timestampVersion += 1);
  const signed = buildTimestamp({
    version,
    expires: options.expires ?? sim.expires('timestamp'),
    snapshot,
  });
  return (await sim.sign(signed, options.signers ?? sim.signersOf('timestamp'))).toBytes();
}

/**
 * Snapshot metadata listing `meta`, signed with the snapshot keys (stolen) unless `signers`
 * says otherwise. Without `version` it takes the repository's next version and burns it.
 */
export async function forgeSnapshot(
  sim: RepositorySimulator,
  meta: Readonly<Record<string, MetaFile>>,
  options: { version?: number; signers?: Signer[] } = {},
): Promise<{ version: number; bytes: Uint8Array; path: string }> {
  const version = options.version ?? (sim.snapshotVersion += 1);
  const signed = buildSnapshot({ version, expires: sim.expires('snapshot'), meta });
  const bytes = (await sim.sign(signed, options.signers ?? sim.signersOf('snapshot'))).toBytes();
  return { version, bytes, path: `metadata/${sim.metadataName('snapshot', version)}` };
}

/**
 * Serves a forged snapshot listing `meta` and a forged timestamp naming it (the attacker
 * holds both online keys). Returns both files' bytes.
 */
export async function serveForgedRelease(
  sim: RepositorySimulator,
  meta: Readonly<Record<string, MetaFile>>,
): Promise<{ timestamp: Uint8Array; snapshot: Uint8Array }> {
  const snapshot = await forgeSnapshot(sim, meta);
  const timestamp = await forgeTimestamp(
    sim,
    await describeSnapshot(snapshot.version, snapshot.bytes),
  );
  serve(sim, snapshot.path, snapshot.bytes);
  serve(sim, 'metadata/timestamp.json', timestamp);
  return { timestamp, snapshot: snapshot.bytes };
}

/** The meta entries of the currently published snapshot, as a plain record. */
export function currentSnapshotEntries(sim: RepositorySimulator): Record<string, MetaFile> {
  return Object.fromEntries(sim.snapshot.signed.meta);
}

/**
 * Not an attack: the honest repository re-publishes its snapshot so that it gives the length
 * and hashes of the current targets.json too (the simulator gives only versions), then a
 * timestamp naming it.
 */
export async function snapshotWithTargetsHashes(sim: RepositorySimulator): Promise<void> {
  const version = sim.roleVersions.get('targets');
  if (version === undefined) throw new Error('attacker: targets is not published');
  await sim.publishSnapshot({
    ...currentSnapshotEntries(sim),
    'targets.json': await describeMetadata(webHashPort, version, publishedRole(sim, 'targets'), {
      length: true,
      hashes: true,
    }),
  });
}
