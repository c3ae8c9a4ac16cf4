/**
 * The client update workflow of the TUF specification, section 5, over ports: bytes come
 * from a Fetcher, trusted copies live in a MetadataStore, and every check is made by
 * TrustedMetadataSet. Only bytes that passed every check are persisted.
 */
import { quotePathSegment } from './encoding.js';
import { VerifyError, isVerifyError } from './errors.js';
import { verifyLengthAndHashes, type HashPort } from './hash.js';
import { DEFAULT_LIMITS, type UpdaterLimits } from './limits.js';
import type { Metadata, Root, TargetFile, Targets } from './metadata.js';
import { checkTargetPath } from './names.js';
import type { Fetcher, MetadataStore } from './ports.js';
import { TrustedMetadataSet } from './trusted-metadata-set.js';

/** Metadata that passed every check of the workflow and is about to be persisted. */
export interface AcceptedMetadata {
  /** `root`, `targets` or a delegated targets role's name. */
  readonly role: string;
  readonly version: number;
  /** The exact bytes fetched, as they will be persisted. */
  readonly bytes: Uint8Array;
  readonly metadata: Metadata;
  /** The root trusted when these bytes were checked: for a new root version, the one before it
   * (which vouched for it); for targets, the final root of this refresh. */
  readonly trustedRoot: Metadata<Root>;
}

export interface UpdaterOptions {
  /** Base URL of the metadata, ending in `/`. */
  readonly metadataBaseUrl: string;
  /** Base URL of target files, ending in `/`; may also be given per download. */
  readonly targetBaseUrl?: string | undefined;
  readonly fetcher: Fetcher;
  readonly store: MetadataStore;
  readonly hash: HashPort;
  readonly limits?: Partial<UpdaterLimits> | undefined;
  /** Fetch targets as `{dir}/{hash}.{name}` when the repository uses consistent snapshots. */
  readonly prefixTargetsWithHash?: boolean | undefined;
  /** The clock; read once per refresh, as the fixed update start time (5.1). */
  readonly now?: (() => Date) | undefined;
  /**
   * A further check of every root version (each rotation step) and every targets or delegated
   * targets metadata fetched from the network, after all of the workflow's checks and before it
   * is persisted: if it rejects, the error propagates and the file is not persisted (a
   * transparency log's inclusion proof, say). Local copies already trusted are not passed again.
   * With a hook, a new timestamp and snapshot are persisted only once the top-level targets they
   * lead to is accepted: a refused release leaves no trace in the trusted state, so a mirror
   * serving one (signed with stolen online keys, say) cannot pin the client to its versions.
   */
  readonly beforeAccept?: ((accepted: AcceptedMetadata) => Promise<void>) | undefined;
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

export class Updater {
  readonly #options: UpdaterOptions;
  readonly #limits: UpdaterLimits;
  readonly #metadataBaseUrl: string;
  #trusted: TrustedMetadataSet | undefined;

  constructor(options: UpdaterOptions) {
    this.#options = options;
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.#metadataBaseUrl = withSlash(options.metadataBaseUrl);
  }

  /** The trusted set after `refresh()`; undefined before. */
  get trusted(): TrustedMetadataSet | undefined {
    return this.#trusted;
  }

  /** Refreshes root, timestamp, snapshot and top-level targets (5.1 to 5.6.6). */
  async refresh(): Promise<void> {
    const { store, hash } = this.#options;
    // 5.1 fixed update start time.
    const referenceTime = (this.#options.now ?? (() => new Date()))();
    // 5.2 load the trusted root.
    const rootBytes = await store.load('root');
    if (rootBytes === undefined) {
      throw new VerifyError(
        'INVALID_STATE',
        'no trusted root: initialize the client with a root first',
      );
    }
    const trusted = await TrustedMetadataSet.create(rootBytes, referenceTime, hash);
    this.#trusted = trusted;
    await this.#loadRoot(trusted);
    const deferred: [string, Uint8Array][] = [];
    const persist = async (role: string, bytes: Uint8Array): Promise<void> => {
      if (this.#options.beforeAccept === undefined) await store.persist(role, bytes);
      else deferred.push([role, bytes]);
    };
    await this.#loadTimestamp(trusted, persist);
    await this.#loadSnapshot(trusted, persist);
    await this.#loadTargets(trusted, 'targets', 'root');
    for (const [role, bytes] of deferred) await store.persist(role, bytes);
  }

  async #loadRoot(trusted: TrustedMetadataSet): Promise<void> {
    // 5.3.3 to 5.3.9: walk N+1, N+2, ... until the repository has no next version.
    for (let i = 0; i < this.#limits.maxRootRotations; i++) {
      const version = trusted.root.signed.version + 1;
      let bytes: Uint8Array;
      try {
        bytes = await this.#options.fetcher.fetch(
          `${this.#metadataBaseUrl}${version}.root.json`,
          this.#limits.rootMaxLength,
        );
      } catch (e) {
        if (isVerifyError(e, 'NOT_FOUND')) break;
        throw e;
      }
      const before = trusted.root;
      const next = await trusted.updateRoot(bytes);
      await this.#beforeAccept({
        role: 'root',
        version: next.signed.version,
        bytes,
        metadata: next,
        trustedRoot: before,
      });
      // 5.3.8 persist each accepted root before fetching the next.
      await this.#options.store.persist('root', bytes);
    }
    // 5.3.10 freeze.
    trusted.checkFinalRoot();
    // 5.3.11 fast-forward recovery: local timestamp and snapshot are verified against this
    // final root before they serve as rollback references, so copies signed only by rotated-out
    // keys are ignored and replaced, as python-tuf does. Copies that still verify are kept,
    // rather than deleted, and go on protecting against rollback.
  }

  /** The caller's further check. The set already holds what it refuses, so a refusal drops the
   * set: nothing refused is ever trusted, and the next call starts again from the store. */
  async #beforeAccept(accepted: AcceptedMetadata): Promise<void> {
    const check = this.#options.beforeAccept;
    if (check === undefined) return;
    try {
      await check(accepted);
    } catch (e) {
      this.#trusted = undefined;
      throw e;
    }
  }

  /** Loads a local copy as a rollback reference; a copy that fails checks is only skipped. */
  async #tryLocal<T>(
    roleName: string,
    load: (bytes: Uint8Array) => Promise<T>,
  ): Promise<T | undefined> {
    const bytes = await this.#options.store.load(roleName);
    if (bytes === undefined) return undefined;
    try {
      return await load(bytes);
    } catch (e) {
      if (isVerifyError(e)) return undefined;
      throw e;
    }
  }

  async #loadTimestamp(
    trusted: TrustedMetadataSet,
    persist: (role: string, bytes: Uint8Array) => Promise<void>,
  ): Promise<void> {
    await this.#tryLocal('timestamp', (b) => trusted.updateTimestamp(b));
    // 5.4.1 the timestamp's size is unknown: cap it.
    const bytes = await this.#options.fetcher.fetch(
      `${this.#metadataBaseUrl}timestamp.json`,
      this.#limits.timestampMaxLength,
    );
    // 5.4.2 to 5.4.4; an equal version keeps the trusted copy.
    if (await trusted.updateTimestamp(bytes)) {
      // 5.4.5 persist.
      await persist('timestamp', bytes);
    }
  }

  async #loadSnapshot(
    trusted: TrustedMetadataSet,
    persist: (role: string, bytes: Uint8Array) => Promise<void>,
  ): Promise<void> {
    // A local snapshot that still matches the timestamp needs no download.
    if ((await this.#tryLocal('snapshot', (b) => trusted.updateSnapshot(b, true))) !== undefined)
      return;
    const timestamp = trusted.timestamp;
    if (timestamp === undefined) throw new VerifyError('INVALID_STATE', 'timestamp is not loaded');
    const meta = timestamp.signed.snapshotMeta;
    // 5.5.1 up to the length the timestamp gives, else the cap.
    const name =
      trusted.root.signed.consistentSnapshot === true
        ? `${meta.version}.snapshot.json`
        : 'snapshot.json';
    const bytes = await this.#options.fetcher.fetch(
      `${this.#metadataBaseUrl}${name}`,
      meta.length ?? this.#limits.snapshotMaxLength,
    );
    await trusted.updateSnapshot(bytes);
    // 5.5.7 persist.
    await persist('snapshot', bytes);
  }

  async #loadTargets(
    trusted: TrustedMetadataSet,
    roleName: string,
    delegatorName: string,
  ): Promise<Metadata<Targets>> {
    const loaded = trusted.getTargets(roleName);
    if (loaded !== undefined) return loaded;
    const local = await this.#tryLocal(roleName, (b) =>
      trusted.updateDelegatedTargets(b, roleName, delegatorName),
    );
    if (local !== undefined) return local;
    const snapshot = trusted.snapshot;
    const meta = snapshot?.signed.meta.get(`${roleName}.json`);
    if (meta === undefined)
      throw new VerifyError('MALFORMED', `snapshot does not list ${roleName}.json`);
    // 5.6.1 up to the length the snapshot gives, else the cap.
    const file = quotePathSegment(roleName);
    const name =
      trusted.root.signed.consistentSnapshot === true
        ? `${meta.version}.${file}.json`
        : `${file}.json`;
    const bytes = await this.#options.fetcher.fetch(
      `${this.#metadataBaseUrl}${name}`,
      meta.length ?? this.#limits.targetsMaxLength,
    );
    const accepted = await trusted.updateDelegatedTargets(bytes, roleName, delegatorName);
    await this.#beforeAccept({
      role: roleName,
      version: accepted.signed.version,
      bytes,
      metadata: accepted,
      trustedRoot: trusted.root,
    });
    // 5.6.6 persist.
    await this.#options.store.persist(roleName, bytes);
    return accepted;
  }

  async #ensureRefreshed(): Promise<TrustedMetadataSet> {
    if (this.#trusted?.targets === undefined) await this.refresh();
    const trusted = this.#trusted;
    if (trusted === undefined) throw new VerifyError('INVALID_STATE', 'refresh did not complete');
    return trusted;
  }

  /**
   * 5.6.7 Pre-order depth-first search of the delegation graph for `targetPath`: a visited
   * set against cycles, at most `maxDelegations` roles, terminating delegations honoured.
   * Returns undefined when no role that may list the target lists it.
   */
  async getTargetInfo(targetPath: string): Promise<TargetFile | undefined> {
    checkTargetPath(targetPath);
    const trusted = await this.#ensureRefreshed();
    const toVisit: [role: string, delegator: string][] = [['targets', 'root']];
    const visited = new Set<string>();
    let budget = this.#limits.maxDelegations;
    while (budget > 0 && toVisit.length > 0) {
      const [roleName, delegatorName] = toVisit.pop() ?? ['', ''];
      // 5.6.7.1 skip roles already visited.
      if (visited.has(roleName)) continue;
      const targets = (await this.#loadTargets(trusted, roleName, delegatorName)).signed;
      const found = targets.targets.get(targetPath);
      if (found !== undefined) return found;
      visited.add(roleName);
      budget--;
      // 5.6.7.2 children in order of appearance; a terminating match ends the search there.
      const children: [string, string][] = [];
      for (const child of (await targets.delegations?.rolesForTarget(
        targetPath,
        this.#options.hash,
      )) ?? []) {
        children.push([child.name, roleName]);
        if (child.terminating) {
          toVisit.length = 0;
          break;
        }
      }
      toVisit.push(...children.reverse());
    }
    return undefined;
  }

  /** The URL of a target file, with the hash prefix under consistent snapshots (5.7.3). */
  targetUrl(target: TargetFile, targetBaseUrl?: string): string {
    const base = targetBaseUrl ?? this.#options.targetBaseUrl;
    if (base === undefined) throw new VerifyError('INVALID_STATE', 'no target base URL was given');
    const consistent = this.#trusted?.root.signed.consistentSnapshot === true;
    let path = target.path;
    if (consistent && this.#options.prefixTargetsWithHash !== false) {
      const firstHash = Object.values(target.hashes)[0] ?? '';
      const slash = path.lastIndexOf('/');
      path = `${path.slice(0, slash + 1)}${firstHash}.${path.slice(slash + 1)}`;
    }
    return `${withSlash(base)}${path}`;
  }

  /** 5.7 Downloads a target, at most its listed length, and verifies its length and hashes. */
  async downloadTarget(target: TargetFile, targetBaseUrl?: string): Promise<Uint8Array> {
    checkTargetPath(target.path);
    const bytes = await this.#options.fetcher.fetch(
      this.targetUrl(target, targetBaseUrl),
      target.length,
    );
    await verifyLengthAndHashes(this.#options.hash, bytes, target, `target ${target.path}`);
    return bytes;
  }

  /** Whether `bytes` (say, a file already on disk) are exactly this target. */
  async isTargetContent(target: TargetFile, bytes: Uint8Array): Promise<boolean> {
    try {
      await verifyLengthAndHashes(this.#options.hash, bytes, target, `target ${target.path}`);
      return true;
    } catch (e) {
      if (isVerifyError(e)) return false;
      throw e;
    }
  }
}
