/**
 * The client's trusted metadata: a state machine that only ever receives bytes. Each
 * `update*` call runs one step of the specification's client workflow (section 5) and
 * either accepts the new metadata into the set or throws a VerifyError, leaving the set as
 * it was for that role. Nothing here does I/O: fetching and persisting belong to the caller
 * (see updater.ts), which persists only bytes this class accepted.
 *
 * Like python-tuf's TrustedMetadataSet, local copies of timestamp and snapshot may be loaded
 * even when expired or superseded: they then serve only as the rollback reference for the
 * fresh copies, and the final checks (`#checkFinal*`) refuse to go on with them.
 */
import { VerifyError } from './errors.js';
import { verifyLengthAndHashes, type HashPort } from './hash.js';
import {
  Metadata,
  verifyDelegate,
  type Root,
  type Snapshot,
  type Targets,
  type Timestamp,
} from './metadata.js';

export class TrustedMetadataSet {
  readonly referenceTime: Date;
  readonly #hash: HashPort;
  #root: Metadata<Root>;
  #timestamp: Metadata<Timestamp> | undefined;
  #snapshot: Metadata<Snapshot> | undefined;
  readonly #targets = new Map<string, Metadata<Targets>>();

  private constructor(root: Metadata<Root>, referenceTime: Date, hash: HashPort) {
    this.#root = root;
    this.referenceTime = referenceTime;
    this.#hash = hash;
  }

  /**
   * 5.2 Load the trusted root. It must be signed by its own threshold; its expiry does not
   * matter yet (5.3.10 checks the final root).
   */
  static async create(
    rootBytes: Uint8Array,
    referenceTime: Date,
    hash: HashPort,
  ): Promise<TrustedMetadataSet> {
    const root = Metadata.fromBytes(rootBytes, 'root', 'trusted root');
    await verifyDelegate(root.signed, 'root', root);
    return new TrustedMetadataSet(root, referenceTime, hash);
  }

  get root(): Metadata<Root> {
    return this.#root;
  }
  get timestamp(): Metadata<Timestamp> | undefined {
    return this.#timestamp;
  }
  get snapshot(): Metadata<Snapshot> | undefined {
    return this.#snapshot;
  }
  get targets(): Metadata<Targets> | undefined {
    return this.#targets.get('targets');
  }
  getTargets(roleName: string): Metadata<Targets> | undefined {
    return this.#targets.get(roleName);
  }

  /** 5.3 Update the root role: one step N -> N+1 of the chain. */
  async updateRoot(bytes: Uint8Array): Promise<Metadata<Root>> {
    if (this.#timestamp !== undefined) {
      throw new VerifyError('INVALID_STATE', 'root cannot be updated after timestamp was loaded');
    }
    const current = this.#root;
    const next = Metadata.fromBytes(bytes, 'root', `root v${current.signed.version + 1}`);
    // 5.3.4 signed by a threshold of the trusted root's keys and of its own.
    await verifyDelegate(current.signed, 'root', next);
    await verifyDelegate(next.signed, 'root', next);
    // 5.3.5 rollback: the version must be exactly N+1.
    const expected = current.signed.version + 1;
    if (next.signed.version < expected) {
      throw new VerifyError(
        'ROLLBACK',
        `root: fetched version ${expected} but it says version ${next.signed.version}`,
      );
    }
    if (next.signed.version !== expected) {
      throw new VerifyError(
        'VERSION_MISMATCH',
        `root: fetched version ${expected} but it says version ${next.signed.version}`,
      );
    }
    // 5.3.7 set the trusted root.
    this.#root = next;
    return next;
  }

  /** 5.3.10 The final root must not be expired. */
  checkFinalRoot(): void {
    if (this.#root.signed.isExpired(this.referenceTime)) {
      throw new VerifyError(
        'EXPIRED',
        `root v${this.#root.signed.version} expired at ${this.#root.signed.expires.toISOString()}`,
      );
    }
  }

  /**
   * 5.4 Update the timestamp role. Returns false when the new timestamp has the same version
   * as the trusted one: the trusted copy is kept and nothing needs persisting (5.4.3.1).
   */
  async updateTimestamp(bytes: Uint8Array): Promise<boolean> {
    if (this.#snapshot !== undefined) {
      throw new VerifyError(
        'INVALID_STATE',
        'timestamp cannot be updated after snapshot was loaded',
      );
    }
    this.checkFinalRoot();
    const next = Metadata.fromBytes(bytes, 'timestamp');
    // 5.4.2 signed by a threshold of the root's timestamp keys.
    await verifyDelegate(this.#root.signed, 'timestamp', next);
    const trusted = this.#timestamp;
    if (trusted !== undefined) {
      // 5.4.3.1 rollback of the timestamp itself.
      if (next.signed.version < trusted.signed.version) {
        throw new VerifyError(
          'ROLLBACK',
          `timestamp: version ${next.signed.version} is older than trusted version ${trusted.signed.version}`,
        );
      }
      if (next.signed.version === trusted.signed.version) return false;
      // 5.4.3.2 rollback of the snapshot it names.
      const was = trusted.signed.snapshotMeta.version;
      const now = next.signed.snapshotMeta.version;
      if (now < was) {
        throw new VerifyError(
          'ROLLBACK',
          `timestamp: names snapshot version ${now}, older than trusted version ${was}`,
        );
      }
    }
    // Held even if expired, so that it is the rollback reference for a fresh copy; the
    // freeze check below still refuses to go on with it (5.4.4).
    this.#timestamp = next;
    this.#checkFinalTimestamp();
    return true;
  }

  /** 5.4.4 freeze. */
  #checkFinalTimestamp(): Metadata<Timestamp> {
    const ts = this.#timestamp;
    if (ts === undefined) throw new VerifyError('INVALID_STATE', 'timestamp is not loaded');
    if (ts.signed.isExpired(this.referenceTime)) {
      throw new VerifyError(
        'EXPIRED',
        `timestamp v${ts.signed.version} expired at ${ts.signed.expires.toISOString()}`,
      );
    }
    return ts;
  }

  /**
   * 5.5 Update the snapshot role. `trusted` is for the copy already on disk: its hashes were
   * checked when it was first accepted, and a stale one is still the rollback reference.
   */
  async updateSnapshot(bytes: Uint8Array, trusted = false): Promise<Metadata<Snapshot>> {
    if (this.#targets.size > 0) {
      throw new VerifyError(
        'INVALID_STATE',
        'snapshot cannot be updated after targets were loaded',
      );
    }
    const timestamp = this.#checkFinalTimestamp();
    const meta = timestamp.signed.snapshotMeta;
    // 5.5.2 hashes (and length) from the timestamp.
    if (!trusted) await verifyLengthAndHashes(this.#hash, bytes, meta, 'snapshot');
    const next = Metadata.fromBytes(bytes, 'snapshot');
    // 5.5.3 signed by a threshold of the root's snapshot keys.
    await verifyDelegate(this.#root.signed, 'snapshot', next);
    // 5.5.5 no targets role may go down or disappear.
    const previous = this.#snapshot;
    if (previous !== undefined) {
      for (const [name, file] of previous.signed.meta) {
        const now = next.signed.meta.get(name);
        if (now === undefined) {
          throw new VerifyError(
            'ROLLBACK',
            `snapshot: ${name} was listed before and is missing now`,
          );
        }
        if (now.version < file.version) {
          throw new VerifyError(
            'ROLLBACK',
            `snapshot: ${name} version ${now.version} is older than trusted version ${file.version}`,
          );
        }
      }
    }
    this.#snapshot = next;
    this.#checkFinalSnapshot();
    return next;
  }

  /** 5.5.4 version named by the timestamp; 5.5.6 freeze. */
  #checkFinalSnapshot(): Metadata<Snapshot> {
    const snapshot = this.#snapshot;
    if (snapshot === undefined) throw new VerifyError('INVALID_STATE', 'snapshot is not loaded');
    if (snapshot.signed.isExpired(this.referenceTime)) {
      throw new VerifyError(
        'EXPIRED',
        `snapshot v${snapshot.signed.version} expired at ${snapshot.signed.expires.toISOString()}`,
      );
    }
    const expected = this.#checkFinalTimestamp().signed.snapshotMeta.version;
    if (snapshot.signed.version !== expected) {
      throw new VerifyError(
        'VERSION_MISMATCH',
        `snapshot: version ${snapshot.signed.version}, but timestamp names version ${expected}`,
      );
    }
    return snapshot;
  }

  /** 5.6 Update the top-level targets role. */
  async updateTargets(bytes: Uint8Array): Promise<Metadata<Targets>> {
    return this.updateDelegatedTargets(bytes, 'targets', 'root');
  }

  /** 5.6 for any targets role, verified against its delegator every time. */
  async updateDelegatedTargets(
    bytes: Uint8Array,
    roleName: string,
    delegatorName: string,
  ): Promise<Metadata<Targets>> {
    const snapshot = this.#checkFinalSnapshot();
    const delegator =
      delegatorName === 'root' ? this.#root.signed : this.#targets.get(delegatorName)?.signed;
    if (delegator === undefined) {
      throw new VerifyError(
        'INVALID_STATE',
        `${roleName}: its delegator ${delegatorName} is not loaded`,
      );
    }
    const meta = snapshot.signed.meta.get(`${roleName}.json`);
    if (meta === undefined) {
      throw new VerifyError('MALFORMED', `snapshot does not list ${roleName}.json`);
    }
    // 5.6.2 hashes (and length) from the snapshot.
    await verifyLengthAndHashes(this.#hash, bytes, meta, roleName);
    const next = Metadata.fromBytes(bytes, 'targets', roleName);
    // 5.6.3 signed by a threshold of the keys its delegator names.
    await verifyDelegate(delegator, roleName, next);
    // 5.6.4 version named by the snapshot.
    if (next.signed.version !== meta.version) {
      throw new VerifyError(
        'VERSION_MISMATCH',
        `${roleName}: version ${next.signed.version}, but snapshot names version ${meta.version}`,
      );
    }
    // 5.6.5 freeze.
    if (next.signed.isExpired(this.referenceTime)) {
      throw new VerifyError(
        'EXPIRED',
        `${roleName} v${next.signed.version} expired at ${next.signed.expires.toISOString()}`,
      );
    }
    this.#targets.set(roleName, next);
    return next;
  }
}
