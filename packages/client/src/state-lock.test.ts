import { readFileSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isClientError, type ClientError } from './errors.js';
import {
  acquireStateLock,
  isStaleHolder,
  LOCK_FILE_NAME,
  withStateLock,
  type LockHolder,
} from './state-lock.js';
import { runChild, startChild } from './testing/child-process.js';
import { failure } from './testing/failure.js';
import { makeTempDir, removeTempDir } from './testing/temp-dir.js';

let dir: string;

beforeEach(async () => {
  dir = await makeTempDir('cairn-state-lock-');
});

afterEach(async () => {
  await removeTempDir(dir);
});

/**
 * Two withStateLock calls on `dir` at once. The winner holds the lock until the first call to
 * settle has, so `first` is the loser's rejection ('ran' had both got in); `results` are both,
 * once the winner has let go.
 */
async function twoAtOnce(): Promise<{ first: unknown; results: PromiseSettledResult<void>[] }> {
  let release!: () => void;
  const hold = new Promise<void>((resolve) => (release = resolve));
  const attempts = [withStateLock(dir, () => hold), withStateLock(dir, () => hold)];
  const first = await Promise.race(
    attempts.map((p) =>
      p.then(
        () => 'ran',
        (e: unknown) => e,
      ),
    ),
  );
  release();
  return { first, results: await Promise.allSettled(attempts) };
}

async function lockContent(): Promise<LockHolder> {
  return JSON.parse(await readFile(join(dir, LOCK_FILE_NAME), 'utf8')) as LockHolder;
}

/** A pid that certainly belongs to no process: one that has exited and been reaped. */
async function deadPid(): Promise<number> {
  const child = startChild(['no-such-mode']);
  const result = await child.exited;
  expect(result.code).toBe(2);
  return child.pid;
}

function thisBootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return null;
  }
}

function holder(fields: Partial<LockHolder>): LockHolder {
  return {
    pid: process.pid,
    hostname: hostname(),
    startedAt: '2030-01-01T00:00:00.000Z',
    bootId: null,
    processStart: null,
    token: 'ab'.repeat(16),
    ...fields,
  };
}

async function writeLock(h: LockHolder): Promise<void> {
  await writeFile(join(dir, LOCK_FILE_NAME), JSON.stringify(h));
}

describe('withStateLock', () => {
  it('holds a lock file naming this process while fn runs, and removes it after', async () => {
    const seen = await withStateLock(dir, async (lock) => {
      expect(lock.held).toBe(true);
      expect(lock.stateDir).toBe(dir);
      const content = await lockContent();
      expect(content.pid).toBe(process.pid);
      expect(content.hostname).toBe(hostname());
      expect(content.token).toBe(lock.holder.token);
      expect(content.token).toMatch(/^[0-9a-f]{32}$/);
      expect(content.bootId).toBe(thisBootId());
      return content.startedAt;
    });
    expect(new Date(seen).toISOString()).toBe(seen);
    expect(await readdir(dir)).toEqual([]);
  });

  it('creates a missing state directory', async () => {
    const nested = join(dir, 'a', 'b');
    expect(await withStateLock(nested, () => Promise.resolve(7))).toBe(7);
    expect(await readdir(nested)).toEqual([]);
  });

  it('refuses a second updater with LOCKED naming the holder pid, and does not run its fn', async () => {
    let ran = false;
    await withStateLock(dir, async () => {
      const e = await failure(
        withStateLock(dir, () => {
          ran = true;
          return Promise.resolve();
        }),
      );
      expect(e.code).toBe('LOCKED');
      expect(e.message).toBe(
        `${join(dir, LOCK_FILE_NAME)} is held by pid ${process.pid} since ` +
          `${(await lockContent()).startedAt}: another updater is running on this state directory`,
      );
    });
    expect(ran).toBe(false);
  });

  it('lets exactly one of two concurrent updaters in', async () => {
    const { first, results } = await twoAtOnce();
    expect(isClientError(first, 'LOCKED')).toBe(true);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
    expect(await readdir(dir)).toEqual([]);
  });

  it('releases the lock when fn fails', async () => {
    const boom = new Error('boom');
    await expect(withStateLock(dir, () => Promise.reject(boom))).rejects.toBe(boom);
    expect(await readdir(dir)).toEqual([]);
    expect(await withStateLock(dir, () => Promise.resolve('again'))).toBe('again');
  });

  it('does not remove a lock that is no longer its own', async () => {
    const lock = await acquireStateLock(dir);
    const other = holder({ token: 'cd'.repeat(16), pid: 1 });
    await writeLock(other);
    await lock.release();
    expect(await lockContent()).toEqual(other);
    expect(lock.held).toBe(false);
  });
});

describe('holders in other processes', () => {
  it('is released by the exit handler when the process exits without releasing', async () => {
    const result = await runChild(['lock-and-exit', dir]);
    expect(result).toMatchObject({ code: 0, signal: null });
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses while a live process holds it, then takes it over once that process is killed', async () => {
    const child = startChild(['hold-lock', dir]);
    try {
      expect(await child.firstLine).toBe(`locked ${child.pid}`);
      const e = await failure(acquireStateLock(dir));
      expect(e.code).toBe('LOCKED');
      expect(e.message).toContain(`is held by pid ${child.pid} since`);
    } finally {
      child.process.kill('SIGKILL');
    }
    expect((await child.exited).signal).toBe('SIGKILL');
    // The lock file is still there, naming the dead child.
    expect((await lockContent()).pid).toBe(child.pid);
    const taken = await withStateLock(dir, async (lock) => {
      expect((await lockContent()).token).toBe(lock.holder.token);
      return (await lockContent()).pid;
    });
    expect(taken).toBe(process.pid);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('stale locks', () => {
  it('takes over a lock whose pid is dead on this host', async () => {
    await writeLock(holder({ pid: await deadPid() }));
    const pid = await withStateLock(dir, async () => (await lockContent()).pid);
    expect(pid).toBe(process.pid);
  });

  it('lets exactly one of two concurrent takers win a stale lock', async () => {
    const dead = await deadPid();
    await writeLock(holder({ pid: dead }));
    const { first, results } = await twoAtOnce();
    expect(isClientError(first, 'LOCKED')).toBe(true);
    // The loser names the winner (this process), not the dead holder.
    expect((first as ClientError).message).toContain(`pid ${process.pid} since`);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(await readdir(dir)).toEqual([]);
  });

  it('takes over a lock from before a reboot (another boot_id) even if the pid is alive', async () => {
    expect(thisBootId()).not.toBeNull();
    const h = holder({ bootId: '00000000-0000-0000-0000-000000000000' });
    expect(isStaleHolder(h)).toBe(true);
    await writeLock(h);
    expect(await withStateLock(dir, () => Promise.resolve('taken'))).toBe('taken');
  });

  it('takes over a lock whose pid now belongs to a process that started at another time', async () => {
    // This process is alive, but it is not the holder the lock names.
    const h = holder({ processStart: '1' });
    expect(isStaleHolder(h)).toBe(true);
    await writeLock(h);
    expect(await withStateLock(dir, () => Promise.resolve('taken'))).toBe('taken');
  });

  it('never takes over a lock held on another host', async () => {
    const h = holder({ hostname: `not-${hostname()}`, pid: await deadPid() });
    expect(isStaleHolder(h)).toBe(false);
    await writeLock(h);
    const e = await failure(acquireStateLock(dir));
    expect(e.code).toBe('LOCKED');
    expect(e.message).toBe(
      `${join(dir, LOCK_FILE_NAME)} is held by pid ${h.pid} on host not-${hostname()} since ` +
        `${h.startedAt}: another updater is running on this state directory`,
    );
  });

  it('refuses a lock file it cannot read as a lock', async () => {
    await writeFile(join(dir, LOCK_FILE_NAME), 'not json');
    const e = await failure(acquireStateLock(dir));
    expect(e.code).toBe('LOCKED');
    expect(e.message).toBe(
      `${join(dir, LOCK_FILE_NAME)} exists but is not a Cairn lock file; if no updater is ` +
        `running, delete it`,
    );
  });

  it('is blocked by a ticket a crashed taker left until the ticket expires', async () => {
    const h = holder({ pid: await deadPid() });
    await writeLock(h);
    const ticket = `${LOCK_FILE_NAME}.stale.${h.token}`;
    await writeFile(join(dir, ticket), JSON.stringify(h));
    const e = await failure(acquireStateLock(dir));
    expect(e.code).toBe('LOCKED');
    expect(e.message).toContain(`is held by pid ${h.pid} since`);
    expect((await readdir(dir)).sort()).toEqual([LOCK_FILE_NAME, ticket]);
    // Expired (as it would be after DEFAULT_TICKET_EXPIRY_MS): removed, and the lock taken over.
    const pid = await withStateLock(dir, async () => (await lockContent()).pid, {
      ticketExpiryMs: 0,
    });
    expect(pid).toBe(process.pid);
    expect(await readdir(dir)).toEqual([]);
  });
});
