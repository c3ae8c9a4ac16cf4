/**
 * Test support (not part of the build): a TUF repository, a Fetcher and a MetadataStore held
 * in memory, so the update workflow's unit tests run unchanged in Node and in workerd.
 * Tests that use it say "in-memory" in their names: the network is faked here; the real
 * HTTP fetcher is tested in @cairn/client and the root test/ suites.
 */
import { VerifyError } from '../errors.js';
import { quotePathSegment } from '../encoding.js';
import { webHashPort } from '../hash.js';
import {
  Metadata,
  type MetaFile,
  type TopLevelRole,
  type TargetFile,
  DelegatedRole,
} from '../metadata.js';
import type { Fetcher, MetadataStore } from '../ports.js';
import {
  buildRoot,
  buildSnapshot,
  buildTargets,
  buildTimestamp,
  describeMetadata,
  describeTarget,
} from '../repository.js';
import { Ed25519Signer, signMetadata, type Signer } from '../signer.js';

export const DAY = 86_400_000;
export const T0 = new Date('2030-01-01T00:00:00Z');

export class MemoryFetcher implements Fetcher {
  readonly files = new Map<string, Uint8Array>();
  readonly requests: string[] = [];

  fetch(url: string, maxLength: number): Promise<Uint8Array> {
    this.requests.push(url);
    const bytes = this.files.get(url);
    if (bytes === undefined) return Promise.reject(new VerifyError('NOT_FOUND', `${url}: 404`));
    if (bytes.length > maxLength) {
      return Promise.reject(new VerifyError('TOO_LARGE', `${url}: more than ${maxLength} bytes`));
    }
    return Promise.resolve(bytes);
  }
}

export class MemoryStore implements MetadataStore {
  readonly files = new Map<string, Uint8Array>();
  load(role: string): Promise<Uint8Array | undefined> {
    return Promise.resolve(this.files.get(role));
  }
  persist(role: string, bytes: Uint8Array): Promise<void> {
    this.files.set(role, bytes.slice());
    return Promise.resolve();
  }
  remove(role: string): Promise<void> {
    this.files.delete(role);
    return Promise.resolve();
  }
  snapshot(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of this.files) out[k] = new TextDecoder().decode(v);
    return out;
  }
}

export const BASE = 'https://repo.test/metadata/';
export const TARGETS_BASE = 'https://repo.test/targets/';

/** A small consistent-snapshot repository whose every step a test can redo by hand. */
export class MemoryRepository {
  readonly fetcher = new MemoryFetcher();
  readonly signers = new Map<string, Signer[]>();
  readonly thresholds = new Map<string, number>();
  readonly targets = new Map<string, Map<string, Uint8Array>>([['targets', new Map()]]);
  readonly delegated: { delegator: string; role: DelegatedRole }[] = [];
  readonly versions = new Map<string, number>();
  rootVersion = 0;
  snapshotVersion = 0;
  timestampVersion = 0;
  now = T0;
  readonly latest = new Map<string, Metadata>();
  #previousRootSigners: Signer[] = [];

  static async create(): Promise<MemoryRepository> {
    const repo = new MemoryRepository();
    for (const role of ['root', 'timestamp', 'snapshot', 'targets'])
      repo.signers.set(role, [await Ed25519Signer.generate()]);
    await repo.publishRoot();
    await repo.publish();
    return repo;
  }

  signersOf(role: string): Signer[] {
    return this.signers.get(role) ?? [];
  }

  async publishRoot(extra: { expires?: Date; signers?: Signer[] } = {}): Promise<Uint8Array> {
    this.rootVersion++;
    const spec = (role: TopLevelRole) => ({
      keys: this.signersOf(role).map((s) => ({ keyid: s.keyid, publicKey: s.publicKey })),
      threshold: this.thresholds.get(role) ?? 1,
    });
    const root = buildRoot({
      version: this.rootVersion,
      expires: extra.expires ?? new Date(this.now.getTime() + 365 * DAY),
      roles: {
        root: spec('root'),
        timestamp: spec('timestamp'),
        snapshot: spec('snapshot'),
        targets: spec('targets'),
      },
    });
    const signers = extra.signers ?? [
      ...new Set([...this.#previousRootSigners, ...this.signersOf('root')]),
    ];
    const md = await signMetadata(new Metadata(root), signers);
    this.#previousRootSigners = this.signersOf('root');
    const bytes = md.toBytes();
    this.latest.set('root', md);
    this.fetcher.files.set(`${BASE}${this.rootVersion}.root.json`, bytes);
    return bytes;
  }

  async delegate(
    delegator: string,
    name: string,
    options: { paths?: string[]; pathHashPrefixes?: string[]; terminating?: boolean } = {},
  ): Promise<void> {
    const signer = await Ed25519Signer.generate();
    this.signers.set(name, [signer]);
    this.targets.set(name, new Map());
    this.delegated.push({
      delegator,
      role: new DelegatedRole({
        name,
        keyids: [signer.keyid],
        threshold: 1,
        terminating: options.terminating ?? false,
        paths: options.pathHashPrefixes === undefined ? (options.paths ?? ['*']) : undefined,
        pathHashPrefixes: options.pathHashPrefixes,
      }),
    });
  }

  addTarget(path: string, text: string, role = 'targets'): void {
    this.targets.get(role)?.set(path, new TextEncoder().encode(text));
  }

  /** Signs every targets role at a new version, then snapshot and timestamp. */
  async publish(options: { expires?: Partial<Record<string, Date>> } = {}): Promise<void> {
    const meta: Record<string, MetaFile> = {};
    for (const [role, files] of this.targets) {
      const version = (this.versions.get(role) ?? 0) + 1;
      this.versions.set(role, version);
      const list: TargetFile[] = [];
      for (const [path, bytes] of files) {
        const info = await describeTarget(webHashPort, path, bytes);
        list.push(info);
        const slash = path.lastIndexOf('/');
        this.fetcher.files.set(
          `${TARGETS_BASE}${path.slice(0, slash + 1)}${info.hashes.sha256 ?? ''}.${path.slice(slash + 1)}`,
          bytes,
        );
      }
      const children = this.delegated.filter((d) => d.delegator === role);
      const signed = buildTargets({
        version,
        expires: options.expires?.[role] ?? new Date(this.now.getTime() + 30 * DAY),
        targets: list,
        delegations:
          children.length === 0
            ? undefined
            : {
                keys: children.flatMap((c) =>
                  this.signersOf(c.role.name).map((s) => ({
                    keyid: s.keyid,
                    publicKey: s.publicKey,
                  })),
                ),
                roles: children.map((c) => c.role),
              },
      });
      const md = await signMetadata(new Metadata(signed), this.signersOf(role));
      this.latest.set(role, md);
      this.fetcher.files.set(`${BASE}${version}.${quotePathSegment(role)}.json`, md.toBytes());
      meta[`${role}.json`] = await describeMetadata(webHashPort, version, md.toBytes());
    }
    this.snapshotVersion++;
    const snapshot = await signMetadata(
      new Metadata(
        buildSnapshot({
          version: this.snapshotVersion,
          expires: options.expires?.snapshot ?? new Date(this.now.getTime() + 7 * DAY),
          meta,
        }),
      ),
      this.signersOf('snapshot'),
    );
    this.latest.set('snapshot', snapshot);
    const snapshotBytes = snapshot.toBytes();
    this.fetcher.files.set(`${BASE}${this.snapshotVersion}.snapshot.json`, snapshotBytes);
    await this.publishTimestamp(
      await describeMetadata(webHashPort, this.snapshotVersion, snapshotBytes, {
        length: true,
        hashes: true,
      }),
      options.expires?.timestamp,
    );
  }

  async publishTimestamp(snapshotMeta: MetaFile, expires?: Date): Promise<Uint8Array> {
    this.timestampVersion++;
    const ts = await signMetadata(
      new Metadata(
        buildTimestamp({
          version: this.timestampVersion,
          expires: expires ?? new Date(this.now.getTime() + DAY),
          snapshot: snapshotMeta,
        }),
      ),
      this.signersOf('timestamp'),
    );
    this.latest.set('timestamp', ts);
    const bytes = ts.toBytes();
    this.fetcher.files.set(`${BASE}timestamp.json`, bytes);
    return bytes;
  }

  rootBytes(version = 1): Uint8Array {
    const bytes = this.fetcher.files.get(`${BASE}${version}.root.json`);
    if (bytes === undefined) throw new Error(`no root v${version}`);
    return bytes;
  }
}
