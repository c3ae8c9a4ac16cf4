/**
 * The origin as a service: every operation authenticated, audited, counted and logged, and
 * the scheduled work (finishing half-done publications, re-signing timestamp and snapshot
 * before they expire, publishing a pending root or an approved draft whose publication
 * failed). Routes (app.ts) only parse and call into this.
 */
import type { BlobStore } from '@cairn/storage/blob-store';
import type { Key } from '@cairn/verify/keys';
import type { Ed25519Signer, Signer } from '@cairn/verify/signer';
import { publishPendingRoot } from './admin.js';
import { AuditLog, type AuditAction } from './audit.js';
import type { OriginContext, Policy, PublicationStep } from './context.js';
import { isOriginError } from './errors.js';
import { collectGarbage, type GcReport } from './gc.js';
import { createLogger, type Logger } from './log.js';
import { MetricsRegistry } from './metrics.js';
import { publish, recoverPublications, refreshTimestamp } from './publication.js';
import {
  addSignature,
  completeRelease,
  createRelease,
  currentDraft,
  publishRelease,
  publishedMeanwhile,
  showRelease,
  uploadFile,
  type ReleaseSummary,
  type SignatureResult,
} from './releases.js';
import { readHead, readPendingRoot, RootChain } from './repository.js';
import { NonceStore, verifyRequest } from './request-auth.js';
import { listAll } from './store-io.js';
import { PUBLICATIONS_PREFIX } from './layout.js';
import { TransparencyLog, type WitnessSettings } from './transparency-log.js';

export interface OriginServiceOptions {
  readonly store: BlobStore;
  readonly online: { readonly snapshot: readonly Signer[]; readonly timestamp: readonly Signer[] };
  readonly policy: Policy;
  readonly authWindowMs: number;
  readonly logger?: Logger | undefined;
  readonly now?: (() => Date) | undefined;
  /**
   * The transparency log's private key (`keys.log`). Required once the root declares a log
   * (`x-cairn-log`): publications are refused without it. Unused when it declares none.
   */
  readonly logKey?: Ed25519Signer | undefined;
  /** Witnesses that cosign each new checkpoint (`log.witnesses`, `log.witnessThreshold`). */
  readonly witnesses?: Omit<WitnessSettings, 'logger'> | undefined;
  readonly onStep?: ((step: PublicationStep, snapshotVersion: number) => void) | undefined;
}

export interface RoleStatus {
  readonly version: number;
  readonly expires: string;
  readonly expiresInSeconds: number;
}

export interface OriginStatus {
  readonly initialised: true;
  readonly root: RoleStatus;
  readonly targets?: RoleStatus | undefined;
  readonly snapshot?: RoleStatus | undefined;
  readonly timestamp?: RoleStatus | undefined;
  /** Targets metadata needs publishers' signatures to renew: this warns ahead of time. */
  readonly targetsExpiringSoon: boolean;
  readonly publishers: { readonly keyids: readonly string[]; readonly threshold: number };
  readonly draft?:
    { readonly id: string; readonly signatures: number; readonly threshold: number } | undefined;
  readonly pendingRoot?: { readonly version: number; readonly reason: string } | undefined;
  readonly pendingPublications: number;
  /** The transparency log: its origin line and how many entries its checkpoint covers. */
  readonly log?: { readonly origin: string; readonly size: number } | undefined;
}

export interface TickReport {
  readonly recovered: readonly number[];
  readonly timestampVersion?: number | undefined;
  readonly snapshotVersion?: number | undefined;
  readonly rootVersion?: number | undefined;
  readonly publishedRelease?: string | undefined;
  readonly noncesPruned: number;
  readonly errors: readonly string[];
}

export class OriginService {
  readonly ctx: OriginContext;
  readonly audit: AuditLog;
  readonly metrics = new MetricsRegistry();
  readonly logger: Logger;
  readonly nonces: NonceStore;
  readonly #authWindowMs: number;
  readonly #requests;
  readonly #refusals;
  readonly #publications;
  readonly #uploaded;
  readonly #failures;

  constructor(options: OriginServiceOptions) {
    const now = options.now ?? (() => new Date());
    this.logger = options.logger ?? createLogger();
    this.ctx = {
      store: options.store,
      roots: new RootChain(options.store),
      online: options.online,
      policy: options.policy,
      log: new TransparencyLog(options.store, options.logKey, now, {
        witnesses: options.witnesses?.witnesses ?? [],
        threshold: options.witnesses?.threshold ?? 0,
        timeoutMs: options.witnesses?.timeoutMs,
        fetch: options.witnesses?.fetch,
        logger: this.logger.child({ component: 'witness' }),
      }),
      now,
      onStep: options.onStep,
    };
    this.audit = new AuditLog(options.store, { now, logger: this.logger });
    this.nonces = new NonceStore(options.store, Math.max(options.authWindowMs, 1000));
    this.#authWindowMs = options.authWindowMs;
    this.#requests = this.metrics.counter(
      'cairn_origin_requests_total',
      'HTTP requests answered, by route and status.',
      ['route', 'status'],
    );
    this.#refusals = this.metrics.counter(
      'cairn_origin_refusals_total',
      'Requests refused, by error code.',
      ['code'],
    );
    this.#failures = this.metrics.counter(
      'cairn_origin_failures_total',
      'Operations that failed on the origin side (storage, bugs), by action.',
      ['action'],
    );
    this.#publications = this.metrics.counter(
      'cairn_origin_publications_total',
      'Publications completed, by reason.',
      ['reason'],
    );
    this.#uploaded = this.metrics.counter(
      'cairn_origin_uploaded_bytes_total',
      'Bytes of release files accepted into staging.',
    );
    this.metrics.gaugeCallback(
      'cairn_origin_metadata_expires_seconds',
      'Seconds until each role metadata expires (negative: expired).',
      async () => {
        const status = await this.status();
        return (['root', 'targets', 'snapshot', 'timestamp'] as const).flatMap((role) => {
          const s = status[role];
          return s === undefined ? [] : [{ labels: { role }, value: s.expiresInSeconds }];
        });
      },
    );
    this.metrics.gaugeCallback(
      'cairn_origin_metadata_version',
      'The published version of each role.',
      async () => {
        const status = await this.status();
        return (['root', 'targets', 'snapshot', 'timestamp'] as const).flatMap((role) => {
          const s = status[role];
          return s === undefined ? [] : [{ labels: { role }, value: s.version }];
        });
      },
    );
    this.metrics.gaugeCallback(
      'cairn_origin_log_size',
      'Entries in the transparency log, as its checkpoint says (absent when there is no log).',
      async () => {
        const log = await this.ctx.log.size();
        return log === undefined ? [] : [{ value: log.size }];
      },
    );
    this.metrics.gaugeCallback(
      'cairn_origin_targets_expiring',
      '1 when targets metadata expires within the warning period: publishers must sign a release.',
      async () => [{ value: (await this.status()).targetsExpiringSoon ? 1 : 0 }],
    );
  }

  countRequest(route: string, status: number): void {
    this.#requests.inc({ route, status: String(status) });
  }

  /** Records a refusal or failure in the audit log, metrics and logs; never throws. */
  async noteError(
    action: AuditAction,
    error: unknown,
    actor?: string,
    release?: string,
  ): Promise<void> {
    const code = isOriginError(error) ? error.code : 'INTERNAL';
    const message = error instanceof Error ? error.message : String(error);
    const failed = code === 'STORAGE_UNAVAILABLE' || code === 'INTERNAL' || code === 'INTEGRITY';
    if (failed) this.#failures.inc({ action });
    else this.#refusals.inc({ code });
    this.logger[failed ? 'error' : 'warn'](failed ? 'operation failed' : 'request refused', {
      action,
      code,
      message,
      actor,
      release,
    });
    await this.audit
      .record({
        action: failed ? 'failure' : 'refusal',
        outcome: failed ? 'failed' : 'refused',
        actor,
        release,
        code,
        message,
        details: { attempted: action },
      })
      .catch((e: unknown) => this.logger.error('audit record lost', { error: e, action, code }));
  }

  /** Publisher keys, current and revoked, for request authentication. */
  async #keyLookup(): Promise<
    (keyid: string) => { status: 'active'; key: Key } | { status: 'revoked' } | undefined
  > {
    const roots = await this.ctx.roots.all();
    const pending = await readPendingRoot(this.ctx.store);
    const effective = pending?.root.signed ?? roots.at(-1)?.signed;
    const everPublisher = new Set(roots.flatMap((r) => r.signed.roles.targets.keyids));
    return (keyid) => {
      const key = effective?.keys.get(keyid);
      if (key !== undefined && effective?.roles.targets.keyids.includes(keyid) === true) {
        return { status: 'active', key };
      }
      return everPublisher.has(keyid) ? { status: 'revoked' } : undefined;
    };
  }

  /** Checks a request's authentication; refusals are audited before they are thrown. */
  async authenticate(
    method: string,
    path: string,
    headers: (name: string) => string | undefined,
  ): Promise<{ keyid: string; contentSha256: string }> {
    try {
      return await verifyRequest(
        headers,
        { method, path },
        {
          lookupKey: await this.#keyLookup(),
          nonces: this.nonces,
          now: this.ctx.now(),
          windowMs: this.#authWindowMs,
        },
      );
    } catch (error) {
      await this.noteError('push', error, headers('cairn-keyid'));
      throw error;
    }
  }

  async #audited<T>(
    action: AuditAction,
    actor: string,
    release: string | undefined,
    run: () => Promise<T>,
    details: (result: T) => Record<string, unknown>,
  ): Promise<T> {
    let result: T;
    try {
      result = await run();
    } catch (error) {
      await this.noteError(action, error, actor, release);
      throw error;
    }
    await this.audit.record({ action, outcome: 'ok', actor, release, details: details(result) });
    this.logger.info(action, { actor, release, ...details(result) });
    return result;
  }

  push(actor: string, body: unknown) {
    return this.#audited(
      'push',
      actor,
      undefined,
      () => createRelease(this.ctx, actor, body),
      (r) => ({
        release: r.id,
        kind: r.kind,
        files: r.files.map((f) => ({ path: f.path, length: f.length, sha256: f.sha256 })),
      }),
    );
  }

  async upload(actor: string, id: string, index: number, body: ReadableStream<Uint8Array>) {
    const result = await this.#audited(
      'upload',
      actor,
      id,
      () => uploadFile(this.ctx, id, index, body),
      (r) => r,
    );
    this.#uploaded.inc(undefined, result.length);
    return result;
  }

  complete(actor: string, id: string) {
    return this.#audited(
      'draft',
      actor,
      id,
      () => completeRelease(this.ctx, id),
      (d) => ({
        targetsVersion: d.targetsVersion,
        draftSha256: d.draftSha256,
        deltas: d.deltas.map((x) => ({ path: x.path, base: x.base.sha256, length: x.length })),
      }),
    );
  }

  async show(id: string): Promise<ReleaseSummary> {
    return showRelease(this.ctx, id);
  }

  async sign(actor: string, id: string, body: unknown): Promise<SignatureResult> {
    const result = await this.#audited(
      'sign',
      actor,
      id,
      () => addSignature(this.ctx, actor, id, body),
      (r) => ({
        counted: r.counted,
        signatures: r.signatures,
        threshold: r.threshold,
      }),
    );
    if (result.published !== undefined && result.counted) {
      this.#publications.inc({ reason: 'release' });
      await this.audit.record({
        action: 'publish',
        outcome: 'ok',
        actor,
        release: id,
        details: { ...result.published },
      });
      this.logger.info('published', { release: id, ...result.published });
    }
    return result;
  }

  async status(): Promise<OriginStatus> {
    const head = await readHead(this.ctx.store, this.ctx.roots);
    const now = this.ctx.now().getTime();
    const role = (m: { signed: { version: number; expires: Date } }): RoleStatus => ({
      version: m.signed.version,
      expires: m.signed.expires.toISOString(),
      expiresInSeconds: Math.floor((m.signed.expires.getTime() - now) / 1000),
    });
    const pending = await readPendingRoot(this.ctx.store);
    const draft = await currentDraft(this.ctx);
    const effective = pending?.root.signed ?? head.root.signed;
    const targets = head.published?.targets;
    return {
      initialised: true,
      root: role(head.root),
      targets: targets === undefined ? undefined : role(targets),
      snapshot: head.published === undefined ? undefined : role(head.published.snapshot),
      timestamp: head.published === undefined ? undefined : role(head.published.timestamp),
      targetsExpiringSoon:
        targets !== undefined &&
        targets.signed.expires.getTime() - now < this.ctx.policy.targetsWarning,
      publishers: {
        keyids: effective.roles.targets.keyids,
        threshold: effective.roles.targets.threshold,
      },
      draft,
      pendingRoot:
        pending === undefined
          ? undefined
          : { version: pending.root.signed.version, reason: pending.reason },
      pendingPublications: (await listAll(this.ctx.store, PUBLICATIONS_PREFIX)).length,
      log: await this.ctx.log.size(),
    };
  }

  /**
   * Refuses to start an origin that could not log what it publishes: the newest root (or the
   * pending one) declares a log whose key this origin does not hold.
   */
  async checkLogKey(): Promise<void> {
    const newest = await this.ctx.roots.newest();
    await this.ctx.log.writerFor(newest.signed);
    const pending = await readPendingRoot(this.ctx.store);
    if (pending !== undefined) await this.ctx.log.writerFor(pending.root.signed);
  }

  /**
   * One round of scheduled work. Each part runs even when another fails (storage may be
   * back for some); failures are logged, counted and returned, never thrown.
   */
  async tick(): Promise<TickReport> {
    const errors: string[] = [];
    const attempt = async <T>(what: AuditAction, run: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await run();
      } catch (error) {
        errors.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
        await this.noteError(what, error, 'origin');
        return undefined;
      }
    };
    const recovered = (await attempt('publish', () => recoverPublications(this.ctx))) ?? [];
    for (const v of recovered) {
      this.#publications.inc({ reason: 'recovered' });
      this.logger.warn('finished a half-done publication', { snapshotVersion: v });
    }
    const rootVersion = await attempt('key-change', () => publishPendingRoot(this.ctx));
    if (rootVersion !== undefined) {
      this.#publications.inc({ reason: 'root' });
      await attempt('key-change', () =>
        this.audit.record({
          action: 'key-change',
          outcome: 'ok',
          actor: 'origin',
          details: { publishedRoot: rootVersion },
        }),
      );
    }
    const publishedRelease = await attempt('publish', async () => {
      const draft = await currentDraft(this.ctx);
      if (draft === undefined || draft.signatures < draft.threshold) return undefined;
      let plan;
      try {
        plan = await publishRelease(this.ctx, draft.id);
      } catch (error) {
        // A publisher's signature published it meanwhile, on this instance or another.
        const meanwhile = isOriginError(error, 'STALE_DRAFT')
          ? await publishedMeanwhile(this.ctx, draft.id)
          : undefined;
        if (meanwhile !== undefined) return undefined;
        throw error;
      }
      this.#publications.inc({ reason: 'release' });
      await this.audit.record({
        action: 'publish',
        outcome: 'ok',
        actor: 'origin',
        release: draft.id,
        details: { targetsVersion: plan.targetsVersion, snapshotVersion: plan.snapshotVersion },
      });
      return draft.id;
    });
    const snapshotVersion = await attempt('timestamp', async () => {
      const head = await readHead(this.ctx.store, this.ctx.roots);
      const snapshot = head.published?.snapshot;
      if (snapshot === undefined) return undefined;
      const left = snapshot.signed.expires.getTime() - this.ctx.now().getTime();
      if (left >= this.ctx.policy.refreshBefore.snapshot) return undefined;
      const plan = await publish(this.ctx, () =>
        Promise.resolve({ reason: 'snapshot-refresh', blobs: [], approvedBy: [] }),
      );
      this.#publications.inc({ reason: 'snapshot-refresh' });
      await this.audit.record({
        action: 'timestamp',
        outcome: 'ok',
        actor: 'origin',
        details: { snapshotVersion: plan.snapshotVersion },
      });
      return plan.snapshotVersion;
    });
    const timestampVersion = await attempt('timestamp', async () => {
      const head = await readHead(this.ctx.store, this.ctx.roots);
      const timestamp = head.published?.timestamp;
      if (timestamp === undefined) return undefined;
      const left = timestamp.signed.expires.getTime() - this.ctx.now().getTime();
      if (left >= this.ctx.policy.refreshBefore.timestamp) return undefined;
      const version = await refreshTimestamp(this.ctx);
      await this.audit.record({
        action: 'timestamp',
        outcome: 'ok',
        actor: 'origin',
        details: { timestampVersion: version },
      });
      return version;
    });
    const noncesPruned = (await attempt('gc', () => this.nonces.prune(this.ctx.now()))) ?? 0;
    return {
      recovered,
      timestampVersion,
      snapshotVersion,
      rootVersion,
      publishedRelease,
      noncesPruned,
      errors,
    };
  }

  async gc(actor: string): Promise<GcReport> {
    return this.#audited(
      'gc',
      actor,
      undefined,
      () => collectGarbage(this.ctx),
      (r) => ({
        retainedVersions: r.retainedVersions,
        deletedBlobs: r.deletedBlobs.length,
        deletedReleases: r.deletedReleases,
      }),
    );
  }
}
