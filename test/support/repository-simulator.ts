// A TUF repository held in memory and served on 127.0.0.1, for cross-package tests and
// benchmarks. It signs with @cairn/verify's own builders and signers, keeps every published
// version of every file, and lets a test serve anything it likes at any path: an older file
// (rollback), a tampered one, an endless one.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { quotePathSegment } from '@cairn/verify/encoding';
import { webHashPort } from '@cairn/verify/hash';
import {
  DelegatedRole,
  Metadata,
  type Root,
  type Signed,
  type Snapshot,
  type TargetFile,
  type Targets,
  type Timestamp,
  type TopLevelRole,
} from '@cairn/verify/metadata';
import {
  buildRoot,
  buildSnapshot,
  buildTargets,
  buildTimestamp,
  describeMetadata,
  describeTarget,
} from '@cairn/verify/repository';
import { EcdsaP256Signer, Ed25519Signer, signMetadata, type Signer } from '@cairn/verify/signer';

const DAY = 86_400_000;

export type KeyKind = 'ed25519' | 'ecdsa';

export async function newSigner(kind: KeyKind = 'ed25519'): Promise<Signer> {
  return kind === 'ecdsa' ? EcdsaP256Signer.generate() : Ed25519Signer.generate();
}

interface DelegationSpec {
  readonly delegator: string;
  readonly role: DelegatedRole;
  readonly signers: Signer[];
}

/**
 * What a handler answers for one request; undefined falls through to the published files. A
 * body given as an async iterable is streamed (chunked), so it may be endless.
 */
export type Override = (
  path: string,
) => { status: number; body?: Uint8Array | AsyncIterable<Uint8Array> } | undefined;

export class RepositorySimulator {
  /** The clock metadata expiry is computed from. */
  now: Date;
  consistentSnapshot = true;
  /** Signers per top-level role, and per delegated role name. */
  readonly signers = new Map<string, Signer[]>();
  readonly thresholds = new Map<TopLevelRole, number>([
    ['root', 1],
    ['timestamp', 1],
    ['snapshot', 1],
    ['targets', 1],
  ]);
  /** Expiry per role, from `now`. */
  readonly expiry = new Map<string, number>([
    ['root', 365 * DAY],
    ['timestamp', DAY],
    ['snapshot', 7 * DAY],
    ['targets', 30 * DAY],
  ]);
  /** Target contents per role (top-level "targets" or a delegated role name). */
  readonly targetContents = new Map<string, Map<string, Uint8Array>>([['targets', new Map()]]);
  readonly delegations: DelegationSpec[] = [];
  /** Published files by path under the server root: `metadata/...`, `targets/...`. */
  readonly files = new Map<string, Uint8Array>();
  /** Every path requested from the server, in order. */
  readonly requests: string[] = [];
  overrides: Override[] = [];

  rootVersion = 0;
  readonly roleVersions = new Map<string, number>();
  timestampVersion = 0;
  snapshotVersion = 0;
  /** Signed metadata as last published, by role name. */
  readonly latest = new Map<string, Metadata>();
  readonly #lastTargetsJSON = new Map<string, string>();
  #previousRootSigners: Signer[] = [];
  #server: Server | undefined;
  url = '';

  private constructor(now: Date) {
    this.now = now;
  }

  static async create(
    options: { now?: Date; keyKind?: KeyKind } = {},
  ): Promise<RepositorySimulator> {
    const sim = new RepositorySimulator(options.now ?? new Date());
    for (const role of ['root', 'timestamp', 'snapshot', 'targets'] as const) {
      sim.signers.set(role, [await newSigner(options.keyKind)]);
    }
    await sim.publishRoot();
    await sim.publish();
    return sim;
  }

  expires(role: string): Date {
    return new Date(
      this.now.getTime() + (this.expiry.get(role) ?? this.expiry.get('targets') ?? DAY),
    );
  }

  signersOf(role: string): Signer[] {
    const s = this.signers.get(role);
    if (s === undefined) throw new Error(`simulator: no signers for role ${role}`);
    return s;
  }

  buildRootSigned(version: number): Root {
    const spec = (role: TopLevelRole) => ({
      keys: this.signersOf(role).map((s) => ({ keyid: s.keyid, publicKey: s.publicKey })),
      threshold: this.thresholds.get(role) ?? 1,
    });
    return buildRoot({
      version,
      expires: this.expires('root'),
      consistentSnapshot: this.consistentSnapshot,
      roles: {
        root: spec('root'),
        timestamp: spec('timestamp'),
        snapshot: spec('snapshot'),
        targets: spec('targets'),
      },
    });
  }

  /** Signs and publishes the next root version, by the previous and the current root keys. */
  async publishRoot(options: { signers?: Signer[] } = {}): Promise<Metadata<Root>> {
    this.rootVersion += 1;
    const signers =
      options.signers ?? dedupe([...this.#previousRootSigners, ...this.signersOf('root')]);
    const md = await signMetadata(new Metadata(this.buildRootSigned(this.rootVersion)), signers);
    this.#previousRootSigners = this.signersOf('root');
    this.latest.set('root', md);
    this.files.set(`metadata/${this.rootVersion}.root.json`, md.toBytes());
    return md;
  }

  /** Replaces a top-level role's keys; for root, publish the next root to make it effective. */
  async rotate(role: TopLevelRole, signers: Signer[], threshold = 1): Promise<void> {
    this.signers.set(role, signers);
    this.thresholds.set(role, threshold);
    await Promise.resolve();
  }

  addTarget(path: string, content: Uint8Array | string, role = 'targets'): void {
    const bytes = typeof content === 'string' ? new TextEncoder().encode(content) : content;
    const map = this.targetContents.get(role);
    if (map === undefined) throw new Error(`simulator: no targets role ${role}`);
    map.set(path, bytes);
  }

  /** Delegates from `delegator` to a new role, with fresh keys unless given. */
  async delegate(
    delegator: string,
    fields: {
      name: string;
      paths?: string[];
      pathHashPrefixes?: string[];
      terminating?: boolean;
      threshold?: number;
    },
    signers?: Signer[],
  ): Promise<Signer[]> {
    const s = signers ?? [await newSigner()];
    this.signers.set(fields.name, s);
    this.delegations.push({
      delegator,
      signers: s,
      role: new DelegatedRole({
        name: fields.name,
        keyids: s.map((k) => k.keyid),
        threshold: fields.threshold ?? 1,
        terminating: fields.terminating ?? false,
        paths: fields.paths ?? (fields.pathHashPrefixes === undefined ? ['*'] : undefined),
        pathHashPrefixes: fields.pathHashPrefixes,
      }),
    });
    this.targetContents.set(fields.name, new Map());
    return s;
  }

  async #targetsSigned(role: string, version: number): Promise<Targets> {
    const contents = this.targetContents.get(role) ?? new Map<string, Uint8Array>();
    const targets: TargetFile[] = [];
    for (const [path, bytes] of contents)
      targets.push(await describeTarget(webHashPort, path, bytes));
    const children = this.delegations.filter((d) => d.delegator === role);
    return buildTargets({
      version,
      expires: this.expires(role),
      targets,
      delegations:
        children.length === 0
          ? undefined
          : {
              keys: children.flatMap((d) =>
                d.signers.map((s) => ({ keyid: s.keyid, publicKey: s.publicKey })),
              ),
              roles: children.map((d) => d.role),
            },
    });
  }

  /**
   * Publishes a new consistent snapshot: targets roles whose content changed get a new
   * version, then snapshot, then timestamp, each signed by its role's keys.
   */
  async publish(): Promise<void> {
    const meta: Record<string, Awaited<ReturnType<typeof describeMetadata>>> = {};
    for (const role of this.targetContents.keys()) {
      const current = this.roleVersions.get(role) ?? 0;
      const probe = JSON.stringify(
        (await this.#targetsSigned(role, Math.max(current, 1))).toJSON(),
      );
      let version = current;
      if (current === 0 || probe !== this.#lastTargetsJSON.get(role)) {
        version = current + 1;
        const md = await signMetadata(
          new Metadata(await this.#targetsSigned(role, version)),
          this.signersOf(role),
        );
        this.#lastTargetsJSON.set(
          role,
          JSON.stringify((await this.#targetsSigned(role, version)).toJSON()),
        );
        this.roleVersions.set(role, version);
        this.latest.set(role, md);
        const bytes = md.toBytes();
        this.files.set(`metadata/${this.metadataName(role, version)}`, bytes);
        for (const [path, content] of this.targetContents.get(role) ?? []) {
          this.files.set(`targets/${this.targetName(path, md.signed.targets.get(path))}`, content);
        }
      }
      meta[`${role}.json`] = await describeMetadata(webHashPort, version, new Uint8Array());
    }
    await this.publishSnapshot(meta);
  }

  async publishSnapshot(
    meta: Record<string, Awaited<ReturnType<typeof describeMetadata>>>,
  ): Promise<void> {
    this.snapshotVersion += 1;
    const snapshot = await signMetadata(
      new Metadata(
        buildSnapshot({ version: this.snapshotVersion, expires: this.expires('snapshot'), meta }),
      ),
      this.signersOf('snapshot'),
    );
    this.latest.set('snapshot', snapshot);
    const bytes = snapshot.toBytes();
    this.files.set(`metadata/${this.metadataName('snapshot', this.snapshotVersion)}`, bytes);
    await this.publishTimestamp(
      await describeMetadata(webHashPort, this.snapshotVersion, bytes, {
        length: true,
        hashes: true,
      }),
    );
  }

  async publishTimestamp(
    snapshotMeta: Awaited<ReturnType<typeof describeMetadata>>,
  ): Promise<void> {
    this.timestampVersion += 1;
    const timestamp = await signMetadata(
      new Metadata(
        buildTimestamp({
          version: this.timestampVersion,
          expires: this.expires('timestamp'),
          snapshot: snapshotMeta,
        }),
      ),
      this.signersOf('timestamp'),
    );
    this.latest.set('timestamp', timestamp);
    this.files.set('metadata/timestamp.json', timestamp.toBytes());
  }

  /** Re-signs the current timestamp with a new version and nothing else changed. */
  async bumpTimestamp(): Promise<void> {
    const current = this.latest.get('timestamp') as Metadata<Timestamp> | undefined;
    if (current === undefined) throw new Error('simulator: nothing published');
    await this.publishTimestamp(current.signed.snapshotMeta);
  }

  metadataName(role: string, version: number): string {
    const file = `${quotePathSegment(role)}.json`;
    return this.consistentSnapshot ? `${version}.${file}` : file;
  }

  targetName(path: string, info: TargetFile | undefined): string {
    if (!this.consistentSnapshot || info === undefined) return path;
    const slash = path.lastIndexOf('/');
    return `${path.slice(0, slash + 1)}${Object.values(info.hashes)[0] ?? ''}.${path.slice(slash + 1)}`;
  }

  /** Signs arbitrary signed content with the given signers, for attacks. */
  async sign<T extends Signed>(signed: T, signers: Signer[]): Promise<Metadata<T>> {
    return signMetadata(new Metadata(signed), signers);
  }

  get snapshot(): Metadata<Snapshot> {
    return this.latest.get('snapshot') as Metadata<Snapshot>;
  }

  rootBytes(version = 1): Uint8Array {
    const bytes = this.files.get(`metadata/${version}.root.json`);
    if (bytes === undefined) throw new Error(`simulator: no root version ${version}`);
    return bytes;
  }

  /** Starts serving on 127.0.0.1; `url` is then `http://127.0.0.1:PORT/`. */
  async serve(): Promise<string> {
    const server = createServer((req, res) => {
      const rawPath = new URL(req.url ?? '/', 'http://x').pathname.slice(1);
      // Metadata of roles whose names need quoting is published under the quoted name.
      const path = decodeURIComponent(rawPath);
      this.requests.push(path);
      for (const override of this.overrides) {
        const answer = override(path);
        if (answer !== undefined) {
          res.writeHead(answer.status, { 'content-type': 'application/octet-stream' });
          const body = answer.body ?? new Uint8Array();
          if (body instanceof Uint8Array) {
            res.end(body);
          } else {
            // Stop producing (an endless body never ends by itself) once the client hangs up.
            const stream = Readable.from(body);
            res.on('close', () => stream.destroy());
            stream.pipe(res);
          }
          return;
        }
      }
      const body = this.files.get(rawPath) ?? this.files.get(path);
      if (body === undefined) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': body.length,
      });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.#server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    return this.url;
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function dedupe(signers: Signer[]): Signer[] {
  const seen = new Set<string>();
  return signers.filter((s) => (seen.has(s.keyid) ? false : (seen.add(s.keyid), true)));
}
