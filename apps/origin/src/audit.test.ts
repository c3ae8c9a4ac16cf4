import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  BlobStore,
  CopyOptions,
  GetOptions,
  GetResult,
  ListOptions,
  ListPage,
  ObjectInfo,
  PutBody,
  PutOptions,
} from '@cairn/storage/blob-store';
import { StorageError } from '@cairn/storage/errors';
import { FsBlobStore } from '@cairn/storage/fs-store';
import { MemoryBlobStore } from '@cairn/storage/memory-store';
import { describe, expect, it } from 'vitest';
import { AuditLog, type AuditEvent, type AuditRecord } from './audit.js';
import { isOriginError, OriginError } from './errors.js';
import { AUDIT_PREFIX } from './layout.js';
import { createLogger } from './log.js';

/** A clock the test sets; each reading is a fresh Date. */
function settableClock(start: string) {
  let current = new Date(start);
  return {
    now: () => new Date(current),
    set: (time: string) => {
      current = new Date(time);
    },
  };
}

/** Delegates to a real store; lets a test shrink list pages, and see what was asked. */
class ObservedStore implements BlobStore {
  readonly lists: ListOptions[] = [];
  readonly puts: Array<{ key: string; options: PutOptions | undefined }> = [];

  constructor(
    readonly inner: BlobStore,
    readonly pageSize = 1000,
  ) {}

  get(key: string, options?: GetOptions): Promise<GetResult> {
    return this.inner.get(key, options);
  }
  head(key: string): Promise<ObjectInfo | undefined> {
    return this.inner.head(key);
  }
  put(key: string, body: PutBody, options?: PutOptions): Promise<ObjectInfo> {
    this.puts.push({ key, options });
    return this.inner.put(key, body, options);
  }
  copy(from: string, to: string, options?: CopyOptions): Promise<ObjectInfo> {
    return this.inner.copy(from, to, options);
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
  list(options: ListOptions): Promise<ListPage> {
    this.lists.push(options);
    return this.inner.list({ ...options, limit: this.pageSize });
  }
}

/** A store whose every operation fails with `error`, as S3 does when it does not answer. */
class FailingStore implements BlobStore {
  constructor(readonly error: Error) {}
  get(): Promise<GetResult> {
    return Promise.reject(this.error);
  }
  head(): Promise<ObjectInfo | undefined> {
    return Promise.reject(this.error);
  }
  put(): Promise<ObjectInfo> {
    return Promise.reject(this.error);
  }
  copy(): Promise<ObjectInfo> {
    return Promise.reject(this.error);
  }
  delete(): Promise<void> {
    return Promise.reject(this.error);
  }
  list(): Promise<ListPage> {
    return Promise.reject(this.error);
  }
}

/** Answers the first `failures` puts as if another origin instance had taken the key. */
class TakenKeyStore extends ObservedStore {
  constructor(
    inner: BlobStore,
    public failures: number,
  ) {
    super(inner);
  }
  override put(key: string, body: PutBody, options?: PutOptions): Promise<ObjectInfo> {
    if (this.failures > 0) {
      this.failures -= 1;
      this.puts.push({ key, options });
      return Promise.reject(new StorageError('PRECONDITION_FAILED', `${key} exists`));
    }
    return super.put(key, body, options);
  }
}

async function readText(store: BlobStore, key: string): Promise<string> {
  const result = await store.get(key);
  if (result.notModified) throw new Error('expected a body');
  return new Response(result.body).text();
}

async function auditKeys(store: BlobStore): Promise<string[]> {
  const page = await store.list({ prefix: AUDIT_PREFIX });
  return page.objects.map((o) => o.key);
}

async function rejection(promise: Promise<unknown>): Promise<OriginError> {
  try {
    await promise;
  } catch (e) {
    if (e instanceof OriginError) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

const KEY_PATTERN = /^_origin\/audit\/2025\/03\/04\/2025-03-04T05-06-07\.089Z-[0-9a-f]{8}\.json$/;

describe('AuditLog.record', () => {
  it('writes one create-only object per event, as canonical JSON, under the day', async () => {
    const store = new ObservedStore(new MemoryBlobStore());
    const audit = new AuditLog(store, { now: () => new Date('2025-03-04T05:06:07.089Z') });
    const event = await audit.record({
      action: 'publish',
      outcome: 'ok',
      actor: 'origin',
      release: 'r-1',
      details: {
        version: 3,
        files: [{ sha256: 'ab', name: 'app.bin' }],
        undefinedField: undefined,
      },
    });
    const expected =
      '{"action":"publish","actor":"origin","details":{"files":[{"name":"app.bin","sha256":"ab"}],"version":3},' +
      '"outcome":"ok","release":"r-1","time":"2025-03-04T05:06:07.089Z"}';
    expect(JSON.stringify(event)).toBe(expected);
    const [put] = store.puts;
    expect(put?.key).toMatch(KEY_PATTERN);
    expect(put?.options).toEqual({
      ifNoneMatch: '*',
      contentType: 'application/json',
      contentLength: expected.length,
    });
    expect(await readText(store, put?.key ?? '')).toBe(expected);
  });

  it('keeps a time given by the caller, and drops undefined fields', async () => {
    const store = new MemoryBlobStore();
    const audit = new AuditLog(store, { now: () => new Date('2030-01-01T00:00:00.000Z') });
    const event = await audit.record({
      time: '2025-03-04T05:06:07.089Z',
      action: 'refusal',
      outcome: 'refused',
      actor: undefined,
      code: 'BAD_SIGNATURE',
      message: 'the signature does not verify',
    });
    expect(event).toEqual({
      action: 'refusal',
      code: 'BAD_SIGNATURE',
      message: 'the signature does not verify',
      outcome: 'refused',
      time: '2025-03-04T05:06:07.089Z',
    });
    expect(await auditKeys(store)).toEqual([expect.stringMatching(KEY_PATTERN)]);
  });

  it('refuses what is not an event with INTERNAL, writing nothing', async () => {
    const store = new MemoryBlobStore();
    const audit = new AuditLog(store);
    const cases: Array<[AuditRecord, string]> = [
      [{ action: 'deploy' as 'push', outcome: 'ok' }, 'audit: unknown action "deploy"'],
      [{ action: 'push', outcome: 'maybe' as 'ok' }, 'audit: unknown outcome "maybe"'],
      [
        { action: 'push', outcome: 'ok', time: '2025-03-04T05:06:07Z' },
        'audit: time must be an ISO time like 2025-01-02T03:04:05.678Z, received "2025-03-04T05:06:07Z"',
      ],
      [
        { action: 'push', outcome: 'ok', time: '2025-02-30T05:06:07.000Z' },
        'audit: time must be an ISO time like 2025-01-02T03:04:05.678Z, received "2025-02-30T05:06:07.000Z"',
      ],
      [
        { action: 'push', outcome: 'ok', actor: 7 as unknown as string },
        'audit: actor must be a string, received number',
      ],
      [{ action: 'push', outcome: 'ok', extra: 1 } as AuditRecord, 'audit: unknown field "extra"'],
      [
        { action: 'push', outcome: 'ok', details: { size: 1n } },
        'audit: details are not JSON: TypeError: Do not know how to serialize a BigInt',
      ],
    ];
    for (const [event, message] of cases) {
      const error = await rejection(audit.record(event));
      expect([error.code, error.message]).toEqual(['INTERNAL', message]);
    }
    expect(await auditKeys(store)).toEqual([]);
  });

  it('lists events recorded in the same millisecond in the order they were recorded', async () => {
    const store = new MemoryBlobStore();
    const audit = new AuditLog(store, { now: () => new Date('2025-03-04T05:06:07.089Z') });
    const actions = ['push', 'upload', 'upload', 'sign', 'sign', 'publish'] as const;
    // Not awaited one by one: the order of the calls, not of their completion, is the order.
    await Promise.all(actions.map((action) => audit.record({ action, outcome: 'ok' })));
    const listed = await audit.list();
    expect(listed.map((e) => e.action)).toEqual(actions);
    const suffixes = (await auditKeys(store)).map((key) => parseInt(key.slice(-13, -5), 16));
    expect(suffixes.map((s) => s - (suffixes[0] ?? 0))).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('chooses a fresh key when another instance took the one it chose', async () => {
    const store = new TakenKeyStore(new MemoryBlobStore(), 2);
    const audit = new AuditLog(store, { now: () => new Date('2025-03-04T05:06:07.089Z') });
    await audit.record({ action: 'timestamp', outcome: 'ok', actor: 'origin' });
    expect(store.puts).toHaveLength(3);
    expect(new Set(store.puts.map((p) => p.key)).size).toBe(3);
    expect(await auditKeys(store)).toEqual([store.puts[2]?.key]);
  });

  it('rejects with STORAGE_UNAVAILABLE when the store does not answer, and logs the event', async () => {
    const lines: string[] = [];
    const logger = createLogger({
      write: (line) => lines.push(line),
      now: () => new Date('2025-03-04T05:06:07.089Z'),
    });
    const down = new StorageError('UNAVAILABLE', 'connect ECONNREFUSED 127.0.0.1:9000');
    const audit = new AuditLog(new FailingStore(down), {
      now: () => new Date('2025-03-04T05:06:07.089Z'),
      logger,
    });
    const error = await rejection(
      audit.record({ action: 'key-change', outcome: 'ok', actor: 'operator' }),
    );
    expect(error.code).toBe('STORAGE_UNAVAILABLE');
    expect(error.message).toMatch(
      /^audit: could not write _origin\/audit\/2025\/03\/04\/2025-03-04T05-06-07\.089Z-[0-9a-f]{8}\.json: storage unavailable$/,
    );
    expect(error.cause).toBe(down);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '')).toEqual({
      time: '2025-03-04T05:06:07.089Z',
      level: 'error',
      msg: 'audit event not written',
      action: 'key-change',
      outcome: 'ok',
      actor: 'operator',
      error: {
        name: 'OriginError',
        code: 'STORAGE_UNAVAILABLE',
        message: error.message,
        cause: {
          name: 'StorageError',
          code: 'UNAVAILABLE',
          message: 'connect ECONNREFUSED 127.0.0.1:9000',
        },
      },
    });

    const listError = await rejection(audit.list());
    expect([listError.code, listError.message]).toEqual([
      'STORAGE_UNAVAILABLE',
      'audit: could not list _origin/audit/: storage unavailable',
    ]);
  });

  it('treats a failing filesystem (a full disk) as unavailable storage, other errors as bugs', async () => {
    const full = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    const onFullDisk = await rejection(
      new AuditLog(new FailingStore(full)).record({ action: 'gc', outcome: 'ok' }),
    );
    expect(onFullDisk.code).toBe('STORAGE_UNAVAILABLE');

    const invalid = new StorageError('INVALID_KEY', 'bad key');
    const onBug = await rejection(
      new AuditLog(new FailingStore(invalid)).record({ action: 'gc', outcome: 'ok' }),
    );
    expect(onBug.code).toBe('INTERNAL');
    expect(onBug.message).toMatch(/: bad key$/);
  });

  it('logs each event it writes', async () => {
    const lines: string[] = [];
    const audit = new AuditLog(new MemoryBlobStore(), {
      now: () => new Date('2025-03-04T05:06:07.089Z'),
      logger: createLogger({
        write: (line) => lines.push(line),
        now: () => new Date('2025-03-04T05:06:07.100Z'),
      }),
    });
    await audit.record({ action: 'sign', outcome: 'ok', actor: 'ab12', release: 'r-1' });
    expect(lines).toEqual([
      '{"time":"2025-03-04T05:06:07.100Z","level":"info","msg":"audit","action":"sign","actor":"ab12","outcome":"ok","release":"r-1"}',
    ]);
  });
});

describe('AuditLog.list', () => {
  const times = [
    '2024-12-31T23:59:59.999Z',
    '2025-01-01T00:00:00.000Z',
    '2025-01-01T13:00:00.000Z',
    '2025-01-02T00:00:00.000Z',
    '2025-01-10T08:00:00.000Z',
    '2025-02-01T00:00:00.000Z',
  ];

  /** Records one event per time, out of time order, into a store with 2-object list pages. */
  async function filled() {
    const store = new ObservedStore(new MemoryBlobStore(), 2);
    const clock = settableClock(times[0] ?? '');
    const audit = new AuditLog(store, { now: clock.now });
    for (const index of [3, 0, 5, 1, 4, 2]) {
      clock.set(times[index] ?? '');
      await audit.record({ action: 'push', outcome: 'ok', release: `r${index}` });
    }
    store.lists.length = 0;
    return { store, audit };
  }

  const releasesOf = (events: AuditEvent[]) => events.map((e) => e.release);

  it('lists every event in time order across days, months and years, page by page', async () => {
    const { store, audit } = await filled();
    const events = await audit.list();
    expect(releasesOf(events)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5']);
    expect(events.map((e) => e.time)).toEqual(times);
    expect(store.lists.map((l) => l.cursor === undefined)).toEqual([true, false, false]);
  });

  it('takes since as inclusive and until as exclusive', async () => {
    const { audit } = await filled();
    const since = new Date('2025-01-01T00:00:00.000Z');
    const until = new Date('2025-01-10T08:00:00.000Z');
    expect(releasesOf(await audit.list({ since }))).toEqual(['r1', 'r2', 'r3', 'r4', 'r5']);
    expect(releasesOf(await audit.list({ until }))).toEqual(['r0', 'r1', 'r2', 'r3']);
    expect(releasesOf(await audit.list({ since, until }))).toEqual(['r1', 'r2', 'r3']);
    expect(releasesOf(await audit.list({ since: until, until: since }))).toEqual([]);
  });

  it('returns the earliest events up to the limit', async () => {
    const { audit } = await filled();
    expect(releasesOf(await audit.list({ limit: 2 }))).toEqual(['r0', 'r1']);
    expect(
      releasesOf(await audit.list({ since: new Date('2025-01-01T12:00:00.000Z'), limit: 3 })),
    ).toEqual(['r2', 'r3', 'r4']);
    await expect(audit.list({ limit: 0 })).rejects.toThrow(
      'audit: limit must be a positive integer, received 0',
    );
  });

  it('lists only the days, months or year a range spans', async () => {
    const { store, audit } = await filled();
    await audit.list({
      since: new Date('2025-01-01T00:00:00.000Z'),
      until: new Date('2025-01-02T00:00:00.000Z'),
    });
    await audit.list({
      since: new Date('2025-01-01T00:00:00.000Z'),
      until: new Date('2025-01-11T00:00:00.000Z'),
    });
    await audit.list({
      since: new Date('2025-01-05T00:00:00.000Z'),
      until: new Date('2025-02-02T00:00:00.000Z'),
    });
    await audit.list({
      since: new Date('2024-12-05T00:00:00.000Z'),
      until: new Date('2025-01-02T00:00:00.000Z'),
    });
    expect([...new Set(store.lists.map((l) => l.prefix))]).toEqual([
      '_origin/audit/2025/01/01/',
      '_origin/audit/2025/01/',
      '_origin/audit/2025/',
      '_origin/audit/',
    ]);
  });

  it('stops listing once past until', async () => {
    const { store, audit } = await filled();
    await audit.list({ until: new Date('2025-01-01T00:00:00.000Z') });
    expect(store.lists).toHaveLength(1);
  });

  it('refuses, with INTEGRITY, objects under the prefix that are not the events they claim', async () => {
    const { audit, store } = await filled();
    const [first] = await auditKeys(store);
    const text = await readText(store, first ?? '');
    await store.put(first ?? '', new TextEncoder().encode(text.replace('r0', 'r9')));
    expect(releasesOf(await audit.list({ limit: 1 }))).toEqual(['r9']);

    await store.put(
      first ?? '',
      new TextEncoder().encode(text.replace('23:59:59.999Z', '23:59:59.998Z')),
    );
    const moved = await rejection(audit.list());
    expect([moved.code, moved.message]).toEqual([
      'INTEGRITY',
      `audit: ${first}: its time 2024-12-31T23:59:59.998Z is not the time in its key`,
    ]);

    await store.put(first ?? '', new TextEncoder().encode('{"action":'));
    expect((await rejection(audit.list())).message).toBe(`audit: ${first}: not JSON`);

    await store.put(first ?? '', new TextEncoder().encode(text.replace('"push"', '"rewrite"')));
    expect((await rejection(audit.list())).message).toBe(
      `audit: ${first}: unknown action "rewrite"`,
    );

    await store.delete(first ?? '');
    await store.put(`${AUDIT_PREFIX}2025/01/01/notes.txt`, new TextEncoder().encode('hi'));
    const foreign = await rejection(audit.list());
    expect([foreign.code, foreign.message]).toEqual([
      'INTEGRITY',
      'audit: _origin/audit/2025/01/01/notes.txt: not an audit event key',
    ]);

    await store.delete(`${AUDIT_PREFIX}2025/01/01/notes.txt`);
    await store.put(
      `${AUDIT_PREFIX}2025/01/03/2025-01-01T00-00-00.000Z-00000000.json`,
      new TextEncoder().encode('{}'),
    );
    expect((await rejection(audit.list())).message).toBe(
      'audit: _origin/audit/2025/01/03/2025-01-01T00-00-00.000Z-00000000.json: its day directory is not the day in its name',
    );
  });

  it('works on the filesystem store, whose keys may not hold colons on every system', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'cairn-audit-'));
    try {
      const store = new FsBlobStore(directory);
      const clock = settableClock('2025-03-04T05:06:07.089Z');
      const audit = new AuditLog(store, { now: clock.now });
      const first = await audit.record({ action: 'init', outcome: 'ok', actor: 'operator' });
      clock.set('2025-03-05T00:00:00.000Z');
      const second = await audit.record({
        action: 'withdraw',
        outcome: 'ok',
        actor: 'operator',
        release: 'r-1',
        details: { reason: 'bad build' },
      });
      expect(await new AuditLog(store).list()).toEqual([first, second]);
      expect((await auditKeys(store))[0]).toMatch(KEY_PATTERN);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('returns isOriginError-recognisable errors for bad arguments', async () => {
    const audit = new AuditLog(new MemoryBlobStore());
    const error = await rejection(audit.list({ since: new Date(NaN) }));
    expect(isOriginError(error, 'INTERNAL')).toBe(true);
    expect(error.message).toBe('audit: since must be a valid Date');
  });
});
