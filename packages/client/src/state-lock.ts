/**
 * One updater at a time per state directory. The lock is a file, `{stateDir}/lock`, holding the
 * holder's pid, host name and start time; it is created exclusively with its content already in
 * place (written to a private file, fsynced, then hard-linked to `lock`: link fails with EEXIST
 * when the name exists, and a reader never sees an empty lock).
 *
 * A lock whose holder is gone is taken over. "Gone" is decided only for a holder on this host:
 * its pid is not alive, or (Linux) the machine rebooted since (boot_id) or the pid now belongs to
 * a process that started at another time (/proc/PID/stat field 22), which is what a crash
 * followed by a reboot usually leaves. A lock held on another host (a state directory on a
 * network file system) is never taken over: LOCKED, and the operator decides.
 *
 * Takeover is a compare-and-delete built from link(2), which fails when its target exists: the
 * taker links `lock` to `lock.stale.{token}` (the token it judged stale). Only one taker can
 * create that name, and it then reads the linked file: if it still holds the stale token, `lock`
 * is still that stale file (no one else can remove it: a live holder only removes its own, other
 * takers of the same token failed the link) and it is unlinked; if the token differs, the taker
 * linked a newer, live lock and leaves it alone. Then every taker competes with the plain
 * exclusive link, so at most one wins. A rename-based takeover (rename `lock` away, check what was
 * moved) can move a live lock that replaced the stale one between the check and the rename, and
 * putting it back races a third updater; link never moves anything.
 *
 * Residual case: a taker killed between its link and its unlink leaves `lock.stale.{token}`,
 * which blocks the next takers of that token. Such a ticket is removed once it is older than
 * `ticketExpiryMs` (its ctime is the time of the link), which a takeover — a few system calls —
 * never approaches.
 *
 * Release: on success and on failure of the work (`withStateLock`'s finally), and best effort on
 * process exit (an 'exit' listener). Signals that kill the process (SIGKILL, an unhandled SIGTERM)
 * leave the lock behind; the next updater finds its holder dead and takes it over.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join, resolve } from 'node:path';
import { ClientError } from './errors.js';

export const LOCK_FILE_NAME = 'lock';

/** A crashed taker's ticket is removed after this long (see the module comment). */
export const DEFAULT_TICKET_EXPIRY_MS = 60_000;

/** Acquisition gives up after this many rounds of "taken over a stale lock, lost the race". */
const MAX_ATTEMPTS = 4;

/** What the lock file holds (JSON). */
export interface LockHolder {
  readonly pid: number;
  readonly hostname: string;
  /** When the holder took the lock, ISO 8601, for people reading the file. */
  readonly startedAt: string;
  /** Linux: /proc/sys/kernel/random/boot_id, so a lock from before a reboot is known stale. */
  readonly bootId: string | null;
  /** Linux: the holder's start time in clock ticks since boot (/proc/PID/stat field 22), so a
   * pid reused by another process is not mistaken for the holder. */
  readonly processStart: string | null;
  /** Unique per acquisition: 32 hex digits. */
  readonly token: string;
}

/** A lock this process holds; `Installation.open` asks for one as proof. */
export interface HeldStateLock {
  /** The state directory, resolved to an absolute path. */
  readonly stateDir: string;
  readonly holder: LockHolder;
  /** False once released. */
  readonly held: boolean;
}

export interface StateLockOptions {
  /** See DEFAULT_TICKET_EXPIRY_MS; tests pass 0. */
  readonly ticketExpiryMs?: number;
}

function readProcText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function bootId(): string | null {
  return readProcText('/proc/sys/kernel/random/boot_id')?.trim() ?? null;
}

/** Field 22 of /proc/PID/stat. The command name (field 2) may hold spaces and parentheses, so
 * fields are counted from after its last ')'. */
function processStart(pid: number): string | null {
  const text = readProcText(`/proc/${pid}/stat`);
  if (text === null) return null;
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return fields[19] ?? null;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists and belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const TOKEN = /^[0-9a-f]{32}$/;

function parseHolder(text: string): LockHolder | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const nullableString = (x: unknown): x is string | null => x === null || typeof x === 'string';
  if (
    typeof v.pid !== 'number' ||
    !Number.isSafeInteger(v.pid) ||
    v.pid <= 0 ||
    typeof v.hostname !== 'string' ||
    typeof v.startedAt !== 'string' ||
    !nullableString(v.bootId) ||
    !nullableString(v.processStart) ||
    typeof v.token !== 'string' ||
    !TOKEN.test(v.token)
  ) {
    return undefined;
  }
  return {
    pid: v.pid,
    hostname: v.hostname,
    startedAt: v.startedAt,
    bootId: v.bootId,
    processStart: v.processStart,
    token: v.token,
  };
}

type ReadResult =
  | { readonly kind: 'absent' }
  | { readonly kind: 'malformed' }
  | { readonly kind: 'holder'; readonly holder: LockHolder };

async function readLockFile(path: string): Promise<ReadResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    throw e;
  }
  const holder = parseHolder(text);
  return holder === undefined ? { kind: 'malformed' } : { kind: 'holder', holder };
}

/** Whether `holder` certainly no longer runs. Only answerable on its own host. */
export function isStaleHolder(holder: LockHolder): boolean {
  if (holder.hostname !== osHostname()) return false;
  const boot = bootId();
  if (holder.bootId !== null && boot !== null && holder.bootId !== boot) return true;
  if (!isAlive(holder.pid)) return true;
  if (holder.processStart !== null) {
    const start = processStart(holder.pid);
    if (start !== null && start !== holder.processStart) return true;
  }
  return false;
}

function lockedError(lockPath: string, holder: LockHolder): ClientError {
  const where = holder.hostname === osHostname() ? '' : ` on host ${holder.hostname}`;
  return new ClientError(
    'LOCKED',
    `${lockPath} is held by pid ${holder.pid}${where} since ${holder.startedAt}: another ` +
      `updater is running on this state directory`,
  );
}

async function syncDirectory(directory: string): Promise<void> {
  if (process.platform === 'win32') return;
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Removes `lock` if it is still the stale lock of `holder` (see the module comment). Returns
 * without doing anything when another taker is at it or the lock changed.
 */
async function breakStaleLock(
  stateDir: string,
  holder: LockHolder,
  ticketExpiryMs: number,
): Promise<void> {
  const lockPath = join(stateDir, LOCK_FILE_NAME);
  const ticket = join(stateDir, `${LOCK_FILE_NAME}.stale.${holder.token}`);
  try {
    await link(lockPath, ticket);
  } catch (e) {
    if (errno(e) === 'ENOENT') return;
    if (errno(e) !== 'EEXIST') throw e;
    // Another taker holds the ticket, or one died holding it.
    const info = await stat(ticket, { bigint: true }).catch(() => undefined);
    const ageMs = info === undefined ? 0 : Date.now() - Number(info.ctimeNs / 1_000_000n);
    if (info !== undefined && ageMs >= ticketExpiryMs) await unlink(ticket).catch(() => {});
    return;
  }
  try {
    const linked = await readLockFile(ticket);
    if (linked.kind !== 'holder' || linked.holder.token !== holder.token) return;
    await unlink(lockPath);
  } finally {
    await unlink(ticket).catch(() => {});
  }
}

class StateLock implements HeldStateLock {
  readonly stateDir: string;
  readonly holder: LockHolder;
  #held = true;
  readonly #onExit: () => void;

  constructor(stateDir: string, holder: LockHolder) {
    this.stateDir = stateDir;
    this.holder = holder;
    this.#onExit = () => this.#releaseSync();
    process.on('exit', this.#onExit);
  }

  get held(): boolean {
    return this.#held;
  }

  get #path(): string {
    return join(this.stateDir, LOCK_FILE_NAME);
  }

  /** Unlinks the lock if it is still ours: a lock taken over after we were judged dead (we were
   * not, but another host's clock or a reboot said so) belongs to its new holder. */
  async release(): Promise<void> {
    if (!this.#held) return;
    this.#held = false;
    process.off('exit', this.#onExit);
    const current = await readLockFile(this.#path);
    if (current.kind === 'holder' && current.holder.token === this.holder.token) {
      await unlink(this.#path).catch((e: unknown) => {
        if (errno(e) !== 'ENOENT') throw e;
      });
    }
  }

  #releaseSync(): void {
    if (!this.#held) return;
    this.#held = false;
    try {
      const current = parseHolder(readFileSync(this.#path, 'utf8'));
      if (current?.token === this.holder.token) unlinkSync(this.#path);
    } catch {
      // Best effort: the next updater takes over a lock whose holder is gone.
    }
  }
}

/**
 * Takes the lock on `stateDir` (created if missing). Rejects with LOCKED, naming the holder's
 * pid, when a live updater holds it.
 */
export async function acquireStateLock(
  stateDir: string,
  options: StateLockOptions = {},
): Promise<HeldStateLock & { release(): Promise<void> }> {
  const dir = resolve(stateDir);
  await mkdir(dir, { recursive: true });
  const lockPath = join(dir, LOCK_FILE_NAME);
  const holder: LockHolder = {
    pid: process.pid,
    hostname: osHostname(),
    startedAt: new Date().toISOString(),
    bootId: bootId(),
    processStart: processStart(process.pid),
    token: randomBytes(16).toString('hex'),
  };
  const staged = join(dir, `.${LOCK_FILE_NAME}.${holder.token}.tmp`);
  const handle = await open(staged, 'wx', 0o644);
  try {
    await handle.writeFile(`${JSON.stringify(holder)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      try {
        await link(staged, lockPath);
        await syncDirectory(dir);
        return new StateLock(dir, holder);
      } catch (e) {
        if (errno(e) !== 'EEXIST') throw e;
      }
      const current = await readLockFile(lockPath);
      if (current.kind === 'absent') continue;
      if (current.kind === 'malformed') {
        throw new ClientError(
          'LOCKED',
          `${lockPath} exists but is not a Cairn lock file; if no updater is running, delete it`,
        );
      }
      if (!isStaleHolder(current.holder)) throw lockedError(lockPath, current.holder);
      await breakStaleLock(dir, current.holder, options.ticketExpiryMs ?? DEFAULT_TICKET_EXPIRY_MS);
    }
    const last = await readLockFile(lockPath);
    if (last.kind === 'holder') throw lockedError(lockPath, last.holder);
    throw new ClientError('LOCKED', `${lockPath}: other updaters keep taking the lock`);
  } finally {
    await unlink(staged).catch(() => {});
  }
}

/**
 * Runs `fn` holding the lock on `stateDir`, and releases it when `fn` settles. Rejects with
 * LOCKED (and does not run `fn`) when another live updater holds it.
 */
export async function withStateLock<T>(
  stateDir: string,
  fn: (lock: HeldStateLock) => Promise<T>,
  options: StateLockOptions = {},
): Promise<T> {
  const lock = await acquireStateLock(stateDir, options);
  try {
    return await fn(lock);
  } finally {
    await lock.release();
  }
}
