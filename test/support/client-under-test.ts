// A TUF client exactly as a user runs it — @cairn/verify's Updater over @cairn/client's
// HttpFetcher, FsMetadataStore and nodeHashPort — in a temporary directory, pointed at a
// RepositorySimulator. Attack tests read back every byte it wrote (`files()`), so they can
// prove that a refused update left the trusted metadata exactly as it was.
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { FsMetadataStore } from '@cairn/client/fs-metadata-store';
import { HttpFetcher } from '@cairn/client/http-fetcher';
import { nodeHashPort } from '@cairn/client/node-hash';
import { quotePathSegment } from '@cairn/verify/encoding';
import type { UpdaterLimits } from '@cairn/verify/limits';
import type { VerifyErrorCode } from '@cairn/verify/errors';
import { Updater } from '@cairn/verify/updater';
import { expect, onTestFinished } from 'vitest';
import { publishedRole } from './attacker.js';
import { RepositorySimulator } from './repository-simulator.js';

/** Everything under the client's temporary root: relative path -> exact bytes as latin1. */
export type DiskState = Record<string, string>;

/** Bytes as a latin1 string: one character per byte, so equal strings mean equal bytes. */
export function bytesText(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** Where a role's trusted metadata lives, as a key of DiskState (FsMetadataStore's layout). */
export function metadataFile(role: string): string {
  return `client/metadata/${quotePathSegment(role)}.json`;
}

export class ClientUnderTest {
  /** The temporary root. It holds only `client/metadata/`, so any other file is an escape. */
  readonly root: string;
  readonly metadataDir: string;
  readonly store: FsMetadataStore;
  /** The clock every updater of this client reads (the Updater's `now` option). */
  now: Date;
  readonly #sim: RepositorySimulator;

  private constructor(sim: RepositorySimulator, root: string, now: Date) {
    this.#sim = sim;
    this.root = root;
    this.metadataDir = join(root, 'client', 'metadata');
    this.store = new FsMetadataStore(this.metadataDir);
    this.now = now;
  }

  /** A client that trusts `rootVersion` of the simulator's root (default: version 1). */
  static async create(
    sim: RepositorySimulator,
    options: { now?: Date; rootVersion?: number } = {},
  ): Promise<ClientUnderTest> {
    const root = await mkdtemp(join(tmpdir(), 'cairn-attack-'));
    const client = new ClientUnderTest(sim, root, options.now ?? new Date(sim.now.getTime()));
    await mkdir(client.metadataDir, { recursive: true });
    await client.store.persist('root', sim.rootBytes(options.rootVersion ?? 1));
    return client;
  }

  /** A new Updater over this client's directory: what a fresh process would build. */
  updater(options: { limits?: Partial<UpdaterLimits> | undefined } = {}): Updater {
    return new Updater({
      metadataBaseUrl: `${this.#sim.url}metadata/`,
      targetBaseUrl: `${this.#sim.url}targets/`,
      fetcher: new HttpFetcher({ timeoutMs: 15_000 }),
      store: this.store,
      hash: nodeHashPort,
      limits: options.limits,
      now: () => this.now,
    });
  }

  /** Refreshes top-level metadata with a new Updater and returns it. */
  async refresh(options: { limits?: Partial<UpdaterLimits> | undefined } = {}): Promise<Updater> {
    const updater = this.updater(options);
    await updater.refresh();
    return updater;
  }

  /** Every file under the temporary root (not just the metadata directory), byte for byte. */
  async files(): Promise<DiskState> {
    const out: DiskState = {};
    const entries = await readdir(this.root, { recursive: true, withFileTypes: true });
    for (const entry of entries) {
      if (!entry.isFile()) continue;
      const path = join(entry.parentPath, entry.name);
      out[relative(this.root, path).split(sep).join('/')] = bytesText(await readFile(path));
    }
    return out;
  }

  async dispose(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }
}

/** The reference time of every attack scenario; the simulator's expiries count from it. */
export const NOW = new Date('2030-01-01T00:00:00Z');
export const DAY = 86_400_000;

/**
 * A good repository, served on 127.0.0.1, and a client that trusts its root v1 and has just
 * refreshed from it successfully. `configure` shapes the repository first (keys, delegations,
 * targets, expiries) and must publish what it changes. Both are cleaned up after the test.
 */
export async function upToDateClient(
  configure?: (sim: RepositorySimulator) => Promise<void>,
): Promise<{ sim: RepositorySimulator; client: ClientUnderTest }> {
  const sim = await RepositorySimulator.create({ now: NOW });
  const client = await ClientUnderTest.create(sim);
  onTestFinished(async () => {
    await sim.close();
    await client.dispose();
  });
  if (configure !== undefined) await configure(sim);
  await sim.serve();
  await expectUpToDate(client, sim);
  return { sim, client };
}

/**
 * `action` must reject with a VerifyError of exactly `code`, and afterwards every file under
 * the client's root must be byte for byte what it was, except `changed`: files a step before
 * the refused one had verified and, as the specification requires, persisted.
 */
export async function expectRefused(
  client: ClientUnderTest,
  action: () => Promise<unknown>,
  code: VerifyErrorCode,
  changed: Readonly<Record<string, Uint8Array>> = {},
): Promise<void> {
  const before = await client.files();
  await expect(action()).rejects.toMatchObject({ name: 'VerifyError', code });
  const expected: DiskState = { ...before };
  for (const [path, bytes] of Object.entries(changed)) expected[path] = bytesText(bytes);
  expect(await client.files()).toEqual(expected);
}

/**
 * A refresh succeeds, and the client then holds exactly the repository's current root,
 * timestamp, snapshot and targets bytes, and no other file but those of `extraRoles`
 * (delegated roles fetched earlier, whose bytes are for the test to check).
 */
export async function expectUpToDate(
  client: ClientUnderTest,
  sim: RepositorySimulator,
  options: { limits?: Partial<UpdaterLimits>; extraRoles?: readonly string[] } = {},
): Promise<Updater> {
  const updater = await client.refresh({ limits: options.limits });
  const files = await client.files();
  const expected: DiskState = {};
  for (const role of ['root', 'timestamp', 'snapshot', 'targets']) {
    expected[metadataFile(role)] = bytesText(publishedRole(sim, role));
  }
  for (const role of options.extraRoles ?? []) {
    const file = files[metadataFile(role)];
    if (file !== undefined) expected[metadataFile(role)] = file;
  }
  expect(files).toEqual(expected);
  return updater;
}
