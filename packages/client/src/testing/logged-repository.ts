/**
 * A signed repository with a transparency log, laid out as the origin publishes it and mirrors
 * serve it: `metadata/{N}.root.json`, `metadata/{V}.targets.json`, `metadata/{V}.snapshot.json`,
 * `metadata/timestamp.json`, `targets/{sha256}.{name}`, and the log under `log/` (written by
 * @cairn/tlog's LogWriter into a MemoryBlobStore, then copied into `files`). Each root declares
 * the log in `x-cairn-log`; each root, targets and snapshot version is appended, as the origin
 * does, unless a test publishes around the log.
 */
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { MemoryBlobStore } from '@cairn/storage/memory-store';
import { encodeEntry, metadataEntry } from '@cairn/tlog/entry';
import { LOG_FIELD, logConfigField } from '@cairn/tlog/log-config';
import { LogWriter } from '@cairn/tlog/log-writer';
import { ALGORITHM_ED25519, createEd25519Signer, formatVerifierKey } from '@cairn/tlog/note';
import { utf8 } from '@cairn/verify/encoding';
import { Root, type TargetFile } from '@cairn/verify/metadata';
import {
  buildRoot,
  buildSnapshot,
  buildTargets,
  buildTimestamp,
  describeMetadata,
  describeTarget,
  signNew,
} from '@cairn/verify/repository';
import { Ed25519Signer, type Signer } from '@cairn/verify/signer';
import { mirrorPathOfTarget } from '../download.js';
import { nodeHashPort } from '../node-hash.js';

const DAY = 86_400_000;
const TIME = new Date('2026-11-23T07:00:00.000Z');

/** An ed25519 public key from its 32-byte seed, through node:crypto (PKCS #8 wrapping). */
function publicKeyOf(seed: Uint8Array): Uint8Array {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  const jwk = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({
    format: 'jwk',
  });
  return new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url'));
}

/** A log: its key (a test key), its storage and its writer. */
export class TestLog {
  readonly origin: string;
  readonly store: MemoryBlobStore;
  readonly writer: LogWriter;
  /** The C2SP verifier key the root declares. */
  readonly vkey: string;
  readonly #seed: Uint8Array;

  private constructor(
    origin: string,
    seed: Uint8Array,
    store: MemoryBlobStore,
    writer: LogWriter,
    vkey: string,
  ) {
    this.origin = origin;
    this.#seed = seed;
    this.store = store;
    this.writer = writer;
    this.vkey = vkey;
  }

  /** A log named `origin` with a new key, or the key of `seed`. */
  static async create(origin: string, seed: Uint8Array = randomBytes(32)): Promise<TestLog> {
    const signer = await createEd25519Signer(origin, seed);
    const store = new MemoryBlobStore();
    const vkey = await formatVerifierKey(origin, ALGORITHM_ED25519, publicKeyOf(seed));
    return new TestLog(
      origin,
      seed,
      store,
      new LogWriter({ store, signer, now: () => TIME }),
      vkey,
    );
  }

  /** A second, empty log with the same name and key: whatever it appends forks this one. */
  fork(): Promise<TestLog> {
    return TestLog.create(this.origin, this.#seed);
  }

  /** Appends the entries of these metadata files. */
  async append(files: readonly { role: string; version: number; bytes: Uint8Array }[]) {
    const entries = [];
    for (const f of files) {
      entries.push(encodeEntry(await metadataEntry(f.role, f.version, f.bytes, TIME)));
    }
    return this.writer.append(entries);
  }

  /** Every log file, by its path under the mirror's base (`log/...`). */
  async files(): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    let cursor: string | undefined;
    do {
      const page = await this.store.list({ prefix: 'log/', cursor });
      for (const info of page.objects) {
        const got = await this.store.get(info.key);
        if (got.notModified) continue;
        out.set(info.key, new Uint8Array(await new Response(got.body).arrayBuffer()));
      }
      cursor = page.cursor;
    } while (cursor !== undefined);
    return out;
  }
}

type TopRole = 'root' | 'timestamp' | 'snapshot' | 'targets';

export class LoggedRepository {
  /** What mirrors serve, by path. */
  readonly files = new Map<string, Uint8Array>();
  /** The log the current root declares (undefined: none). */
  log: TestLog | undefined;
  /** The first root: what a client is given to trust. */
  rootBytes: Uint8Array = new Uint8Array();
  rootVersion = 0;
  version = 0;
  targets = new Map<string, TargetFile>();
  readonly signers: Record<TopRole, Signer>;

  private constructor(signers: Record<TopRole, Signer>, log: TestLog | undefined) {
    this.signers = signers;
    this.log = log;
  }

  /** A repository whose root v1 declares a new log (or, with `log: false`, none). */
  static async create(options: { log?: boolean } = {}): Promise<LoggedRepository> {
    const repo = new LoggedRepository(
      {
        root: await Ed25519Signer.generate(),
        timestamp: await Ed25519Signer.generate(),
        snapshot: await Ed25519Signer.generate(),
        targets: await Ed25519Signer.generate(),
      },
      options.log === false ? undefined : await TestLog.create('cairn.test/log'),
    );
    repo.rootBytes = await repo.publishRoot();
    return repo;
  }

  /** Signs and publishes the next root version (declaring `this.log`) and appends it to the log
   * the previous root declared (the current one), unless `logged` is false. */
  async publishRoot(options: { logged?: boolean } = {}): Promise<Uint8Array> {
    const logIn = options.logged === false ? undefined : this.log;
    this.rootVersion++;
    const spec = (s: Signer) => ({
      keys: [{ keyid: s.keyid, publicKey: s.publicKey }],
      threshold: 1,
    });
    const built = buildRoot({
      version: this.rootVersion,
      expires: new Date(Date.now() + 365 * DAY),
      roles: {
        root: spec(this.signers.root),
        timestamp: spec(this.signers.timestamp),
        snapshot: spec(this.signers.snapshot),
        targets: spec(this.signers.targets),
      },
    });
    const root = new Root({
      specVersion: built.specVersion,
      version: built.version,
      expires: built.expires,
      consistentSnapshot: built.consistentSnapshot,
      keys: built.keys,
      roles: built.roles,
      extra: this.log === undefined ? {} : { [LOG_FIELD]: logConfigField({ key: this.log.vkey }) },
    });
    const bytes = (await signNew(root, [this.signers.root])).toBytes();
    this.files.set(`metadata/${this.rootVersion}.root.json`, bytes);
    if (logIn !== undefined) {
      await logIn.append([{ role: 'root', version: this.rootVersion, bytes }]);
      await this.serveLog(logIn);
    }
    return bytes;
  }

  /**
   * Publishes a release of `files` (name → content): targets, snapshot and timestamp, with
   * targets and snapshot appended to the log first, as the origin does — unless `logged` is
   * false (a release signed with the right keys but written around the log).
   */
  async publish(files: Readonly<Record<string, string>>, options: { logged?: boolean } = {}) {
    this.version++;
    const list: TargetFile[] = [];
    for (const [path, text] of Object.entries(files)) {
      const bytes = utf8(text);
      const target = await describeTarget(nodeHashPort, path, bytes);
      list.push(target);
      this.files.set(mirrorPathOfTarget(target), bytes);
    }
    this.targets = new Map(list.map((t) => [t.path, t]));
    const expires = new Date(Date.now() + 7 * DAY);
    const targets = (
      await signNew(buildTargets({ version: this.version, expires, targets: list }), [
        this.signers.targets,
      ])
    ).toBytes();
    const snapshot = (
      await signNew(
        buildSnapshot({
          version: this.version,
          expires,
          meta: { 'targets.json': await describeMetadata(nodeHashPort, this.version, targets) },
        }),
        [this.signers.snapshot],
      )
    ).toBytes();
    const timestamp = (
      await signNew(
        buildTimestamp({
          version: this.version,
          expires: new Date(Date.now() + DAY),
          snapshot: await describeMetadata(nodeHashPort, this.version, snapshot, {
            length: true,
            hashes: true,
          }),
        }),
        [this.signers.timestamp],
      )
    ).toBytes();
    if (options.logged !== false && this.log !== undefined) {
      await this.log.append([
        { role: 'targets', version: this.version, bytes: targets },
        { role: 'snapshot', version: this.version, bytes: snapshot },
      ]);
      await this.serveLog(this.log);
    }
    this.files.set(`metadata/${this.version}.targets.json`, targets);
    this.files.set(`metadata/${this.version}.snapshot.json`, snapshot);
    this.files.set('metadata/timestamp.json', timestamp);
  }

  /** Copies `log`'s files to what mirrors serve, replacing the log files served before. */
  async serveLog(log: TestLog | undefined = this.log): Promise<void> {
    for (const path of [...this.files.keys()]) if (path.startsWith('log/')) this.files.delete(path);
    if (log === undefined) return;
    for (const [path, bytes] of await log.files()) this.files.set(path, bytes);
  }

  /** A copy of what mirrors serve now, for a second mirror that stays at this state. */
  snapshotFiles(): Map<string, Uint8Array> {
    return new Map(this.files);
  }
}
