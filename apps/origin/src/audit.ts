/**
 * The audit log: one event for every action the origin takes or refuses, kept in the private
 * part of the store beside the repository it describes.
 *
 * Object storage cannot append, so each event is its own object, written create-only:
 *
 *   _origin/audit/{yyyy}/{mm}/{dd}/{yyyy}-{mm}-{dd}T{hh}-{mm}-{ss}.{mmm}Z-{8 hex}.json
 *
 * Listing a prefix returns keys in key order, and the fixed-width time makes key order time
 * order (the day directories let a reader list one day or month). The 8 hex digits keep two
 * origin instances from choosing the same key; within one instance they count up when the
 * millisecond repeats, so events recorded in the same millisecond still list in the order
 * they were recorded.
 *
 * Whether an action may proceed without its audit record is the caller's decision, made per
 * action: a publication or a key change must fail when `record` rejects (an unrecorded change
 * to what clients trust is what an audit log exists to prevent); a refusal or a failure is
 * already the end of its request, so its caller logs and counts the lost record and moves on.
 * `record` logs every event it writes at `info`, and every one it could not write at `error`,
 * so even a lost record leaves a line in the logs.
 */
import type { BlobStore, ListPage } from '@cairn/storage/blob-store';
import { isStorageError } from '@cairn/storage/errors';
import { isOriginError, OriginError } from './errors.js';
import { AUDIT_PREFIX } from './layout.js';
import type { Logger } from './log.js';

export const AUDIT_ACTIONS = [
  'push',
  'upload',
  'draft',
  'sign',
  'publish',
  'withdraw',
  'key-change',
  'timestamp',
  'gc',
  'refusal',
  'failure',
  'init',
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export const AUDIT_OUTCOMES = ['ok', 'refused', 'failed'] as const;

export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

export interface AuditEvent {
  /** ISO 8601 in UTC with milliseconds, as `Date.prototype.toISOString` writes it. */
  readonly time: string;
  readonly action: AuditAction;
  readonly outcome: AuditOutcome;
  /** Who acted: a publisher's keyid, `origin` (scheduled work) or `operator` (the CLI). */
  readonly actor?: string;
  readonly release?: string;
  /** The OriginError code of a refusal or failure. */
  readonly code?: string;
  readonly message?: string;
  /** Hashes, versions, file names: whatever identifies what the action touched. */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** What `record` takes: an event whose time defaults to now; undefined fields are left out. */
export interface AuditRecord {
  readonly time?: string | undefined;
  readonly action: AuditAction;
  readonly outcome: AuditOutcome;
  readonly actor?: string | undefined;
  readonly release?: string | undefined;
  readonly code?: string | undefined;
  readonly message?: string | undefined;
  readonly details?: Readonly<Record<string, unknown>> | undefined;
}

export interface AuditListOptions {
  /** Events at or after this time. */
  readonly since?: Date | undefined;
  /** Events before this time. */
  readonly until?: Date | undefined;
  /** At most this many, the earliest first. */
  readonly limit?: number | undefined;
}

export interface AuditLogOptions {
  readonly now?: (() => Date) | undefined;
  readonly logger?: Logger | undefined;
}

/**
 * Larger than any event the origin writes (a release of thousands of files with their hashes
 * fits), and small enough that a tampered store cannot make `list` hold gigabytes.
 */
export const MAX_AUDIT_EVENT_BYTES = 4 * 1024 * 1024;

/** Object reads in flight at once while listing. */
const READ_CONCURRENCY = 8;

/** Attempts at a fresh key when another instance took ours: a collision is already 1 in 2³¹. */
const MAX_KEY_ATTEMPTS = 3;

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const EVENT_KEY =
  /^(\d{4})\/(\d{2})\/(\d{2})\/(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})\.(\d{3})Z-[0-9a-f]{8}\.json$/;

/** Suffixes start below 2³¹, leaving 2³¹ increments before one could overflow 8 hex digits. */
const SUFFIX_START_RANGE = 0x8000_0000;
const SUFFIX_MAX = 0xffff_ffff;

export class AuditLog {
  readonly #store: BlobStore;
  readonly #now: () => Date;
  readonly #logger: Logger | undefined;
  #lastStamp = '';
  #lastSuffix = 0;

  constructor(store: BlobStore, options: AuditLogOptions = {}) {
    this.#store = store;
    this.#now = options.now ?? (() => new Date());
    this.#logger = options.logger;
  }

  /**
   * Writes one event and resolves with it as stored (keys sorted, undefined fields dropped).
   * Rejects with STORAGE_UNAVAILABLE when the store cannot take it, INTERNAL for an event
   * that is not one.
   */
  async record(event: AuditRecord): Promise<AuditEvent> {
    const stored = normaliseEvent(event, this.#now);
    const body = new TextEncoder().encode(canonicalJson(stored));
    if (body.length > MAX_AUDIT_EVENT_BYTES) {
      throw new OriginError(
        'INTERNAL',
        `audit: a ${stored.action} event of ${body.length} bytes is over the ${MAX_AUDIT_EVENT_BYTES}-byte limit`,
      );
    }
    const fields = logFields(stored);
    for (let attempt = 1; ; attempt++) {
      // The key is chosen before the first await, so concurrent calls list in call order.
      const key = this.#nextKey(stored.time);
      try {
        await this.#store.put(key, body, {
          ifNoneMatch: '*',
          contentType: 'application/json',
          contentLength: body.length,
        });
        this.#logger?.info('audit', fields);
        return stored;
      } catch (e) {
        if (isStorageError(e, 'PRECONDITION_FAILED') && attempt < MAX_KEY_ATTEMPTS) continue;
        const error = storageFailure(e, `could not write ${key}`);
        this.#logger?.error('audit event not written', { ...fields, error });
        throw error;
      }
    }
  }

  /** Events in time order, earliest first. */
  async list(options: AuditListOptions = {}): Promise<AuditEvent[]> {
    const { since, until, limit } = checkListOptions(options);
    const keys: string[] = [];
    const prefix = AUDIT_PREFIX + commonDayPrefix(since, until);
    let cursor: string | undefined;
    listing: do {
      let page: ListPage;
      try {
        page = await this.#store.list({ prefix, cursor });
      } catch (e) {
        throw storageFailure(e, `could not list ${prefix}`);
      }
      for (const object of page.objects) {
        const time = timeOfKey(object.key);
        if (since !== undefined && time < since) continue;
        if (until !== undefined && time >= until) break listing;
        keys.push(object.key);
        if (limit !== undefined && keys.length >= limit) break listing;
      }
      cursor = page.cursor;
    } while (cursor !== undefined);

    const events = await mapConcurrently(keys, READ_CONCURRENCY, (key) => this.#read(key));
    return events.filter((event) => event !== undefined);
  }

  #nextKey(time: string): string {
    const stamp = time.replaceAll(':', '-');
    if (stamp === this.#lastStamp && this.#lastSuffix < SUFFIX_MAX) {
      this.#lastSuffix += 1;
    } else {
      this.#lastStamp = stamp;
      this.#lastSuffix = crypto.getRandomValues(new Uint32Array(1))[0]! % SUFFIX_START_RANGE;
    }
    const day = `${time.slice(0, 4)}/${time.slice(5, 7)}/${time.slice(8, 10)}/`;
    return `${AUDIT_PREFIX}${day}${stamp}-${this.#lastSuffix.toString(16).padStart(8, '0')}.json`;
  }

  /** Undefined when the object went away after it was listed. */
  async #read(key: string): Promise<AuditEvent | undefined> {
    let text: string;
    try {
      const result = await this.#store.get(key);
      if (result.notModified) throw new Error('not modified without a condition');
      if (result.info.size > MAX_AUDIT_EVENT_BYTES) {
        await result.body.cancel();
        throw integrity(
          key,
          `${result.info.size} bytes, over the ${MAX_AUDIT_EVENT_BYTES}-byte limit`,
        );
      }
      text = await new Response(result.body).text();
    } catch (e) {
      if (isStorageError(e, 'NOT_FOUND')) return undefined;
      throw storageFailure(e, `could not read ${key}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw integrity(key, 'not JSON');
    }
    const problem = eventProblem(parsed);
    if (problem !== undefined) throw integrity(key, problem);
    const event = parsed as AuditEvent;
    if (event.time !== keyTimeText(key)) {
      throw integrity(key, `its time ${event.time} is not the time in its key`);
    }
    return event;
  }
}

function checkListOptions(options: AuditListOptions): AuditListOptions {
  for (const name of ['since', 'until'] as const) {
    const value = options[name];
    if (value !== undefined && !(value instanceof Date && !Number.isNaN(value.getTime()))) {
      throw new OriginError('INTERNAL', `audit: ${name} must be a valid Date`);
    }
  }
  const { limit } = options;
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 1)) {
    throw new OriginError('INTERNAL', `audit: limit must be a positive integer, received ${limit}`);
  }
  return options;
}

function normaliseEvent(event: AuditRecord, now: () => Date): AuditEvent {
  const time = event.time ?? now().toISOString();
  const candidate: Record<string, unknown> = { ...event, time };
  if (event.details !== undefined) {
    // Through JSON and back: what `record` returns is exactly what `list` will read.
    try {
      candidate['details'] = JSON.parse(JSON.stringify(event.details)) as unknown;
    } catch (e) {
      throw new OriginError('INTERNAL', `audit: details are not JSON: ${String(e)}`, { cause: e });
    }
  }
  for (const [name, value] of Object.entries(candidate)) {
    if (value === undefined) delete candidate[name];
  }
  const problem = eventProblem(candidate);
  if (problem !== undefined) throw new OriginError('INTERNAL', `audit: ${problem}`);
  return sortKeys(candidate) as AuditEvent;
}

const EVENT_FIELDS = new Set([
  'time',
  'action',
  'outcome',
  'actor',
  'release',
  'code',
  'message',
  'details',
]);

/** What is wrong with a value that should be an event, or undefined. */
function eventProblem(value: unknown): string | undefined {
  if (!isPlainObject(value)) return 'an event must be an object';
  for (const name of Object.keys(value)) {
    if (!EVENT_FIELDS.has(name)) return `unknown field ${JSON.stringify(name)}`;
  }
  const { time, action, outcome, details } = value;
  if (typeof time !== 'string' || !ISO_TIME.test(time) || new Date(time).toISOString() !== time) {
    return `time must be an ISO time like 2025-01-02T03:04:05.678Z, received ${JSON.stringify(time)}`;
  }
  if (!(AUDIT_ACTIONS as readonly unknown[]).includes(action)) {
    return `unknown action ${JSON.stringify(action)}`;
  }
  if (!(AUDIT_OUTCOMES as readonly unknown[]).includes(outcome)) {
    return `unknown outcome ${JSON.stringify(outcome)}`;
  }
  for (const name of ['actor', 'release', 'code', 'message'] as const) {
    if (value[name] !== undefined && typeof value[name] !== 'string') {
      return `${name} must be a string, received ${typeof value[name]}`;
    }
  }
  if (details !== undefined && !isPlainObject(details)) return 'details must be an object';
  return undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (!isPlainObject(value)) return value;
  const sorted: Record<string, unknown> = {};
  for (const name of Object.keys(value).sort()) sorted[name] = sortKeys(value[name]);
  return sorted;
}

/** The stored form: keys sorted at every depth, no whitespace. */
function canonicalJson(event: AuditEvent): string {
  return JSON.stringify(sortKeys(event));
}

function logFields(event: AuditEvent): Record<string, unknown> {
  // `time` would shadow the log line's own time; the two are the same moment anyway.
  const { time: _time, ...fields } = event;
  return fields;
}

/** The part of the day path (`2025/`, `2025/01/`, ...) every event in [since, until) shares. */
function commonDayPrefix(since: Date | undefined, until: Date | undefined): string {
  if (since === undefined || until === undefined || until <= since) return '';
  const first = dayPath(since);
  const last = dayPath(new Date(until.getTime() - 1));
  let shared = 0;
  while (shared < first.length && first[shared] === last[shared]) shared++;
  return first.slice(0, first.lastIndexOf('/', shared - 1) + 1);
}

function dayPath(time: Date): string {
  const iso = time.toISOString();
  return `${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/`;
}

/** The ISO time a key encodes; throws INTEGRITY for a key that is not an event's. */
function keyTimeText(key: string): string {
  const match = EVENT_KEY.exec(key.slice(AUDIT_PREFIX.length));
  if (!key.startsWith(AUDIT_PREFIX) || !match) throw integrity(key, 'not an audit event key');
  const [, year, month, day, y, mo, d, h, mi, s, ms] = match;
  if (year !== y || month !== mo || day !== d) {
    throw integrity(key, 'its day directory is not the day in its name');
  }
  return `${y}-${mo}-${d}T${h}:${mi}:${s}.${ms}Z`;
}

function timeOfKey(key: string): Date {
  const time = new Date(keyTimeText(key));
  if (Number.isNaN(time.getTime())) throw integrity(key, 'its time is not a date');
  return time;
}

function integrity(key: string, problem: string): OriginError {
  return new OriginError('INTEGRITY', `audit: ${key}: ${problem}`);
}

function isSystemError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return error instanceof Error && typeof code === 'string' && /^E[A-Z]+$/.test(code);
}

function storageFailure(error: unknown, what: string): OriginError {
  if (isOriginError(error)) return error;
  // The filesystem store passes the system's errors through: a full disk or a permission
  // change is the store being unavailable to us, not a bug.
  if (isStorageError(error, 'UNAVAILABLE') || isSystemError(error)) {
    return new OriginError('STORAGE_UNAVAILABLE', `audit: ${what}: storage unavailable`, {
      cause: error,
    });
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new OriginError('INTERNAL', `audit: ${what}: ${reason}`, { cause: error });
}

async function mapConcurrently<T, R>(
  items: readonly T[],
  concurrency: number,
  map: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await map(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}
