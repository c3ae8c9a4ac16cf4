import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClientError } from './errors.js';
import {
  INSTALL_STEPS,
  Installation,
  MANIFEST_NAME,
  PREVIOUS_DIRECTORY,
  checkInstallPath,
  nodeInstallFileSystem,
  type InstallFileSystem,
  type InstallMeta,
  type InstallStep,
} from './install.js';
import { acquireStateLock, withStateLock, type HeldStateLock } from './state-lock.js';
import { runChild } from './testing/child-process.js';
import { failure } from './testing/failure.js';
import { makeTempDir, removeTempDir } from './testing/temp-dir.js';

let root: string;
let installDir: string;
let stateDir: string;

beforeEach(async () => {
  root = await makeTempDir('cairn-install-');
  installDir = join(root, 'clamav');
  stateDir = join(root, 'state');
  await mkdir(installDir);
});

afterEach(async () => {
  await removeTempDir(root);
});

const utf8 = new TextEncoder();
const V1 = utf8.encode('ClamAV-VDB:daily 1\n'.repeat(50));
const V2 = utf8.encode('ClamAV-VDB:daily 2\n'.repeat(60));
const V3 = utf8.encode('ClamAV-VDB:daily 3\n'.repeat(70));
const PATH = 'daily.cvd';

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function meta(bytes: Uint8Array, version: number | null): InstallMeta {
  return { sha256: sha256(bytes), length: bytes.length, version };
}

async function bytesOf(path: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(path));
}

/** Writes `bytes` to a new temp file for `path`, as a downloader would, and installs it. */
async function put(
  installation: Installation,
  path: string,
  bytes: Uint8Array,
  version: number | null,
) {
  const temp = await installation.tempPathFor(path);
  await writeFile(temp, bytes, { flag: 'wx' });
  return installation.install(path, temp, meta(bytes, version));
}

function withInstallation<T>(
  fn: (installation: Installation, lock: HeldStateLock) => Promise<T>,
  options: { fs?: InstallFileSystem; onStep?: (step: InstallStep) => void } = {},
): Promise<T> {
  return withStateLock(stateDir, async (lock) =>
    fn(await Installation.open({ installDir, stateDir, lock, ...options }), lock),
  );
}

describe('Installation', () => {
  it('installs into subdirectories and reports the installed file from its stat', async () => {
    const outcome = await withInstallation((i) => put(i, 'daily/bytecode.cvd', V1, 4));
    expect(outcome).toEqual({ kind: 'installed', path: 'daily/bytecode.cvd', replaced: null });
    expect(await bytesOf(join(installDir, 'daily', 'bytecode.cvd'))).toEqual(V1);
    expect(await readdir(join(installDir, 'daily'))).toEqual(['bytecode.cvd']);
    await withInstallation(async (i) => {
      expect(await i.installed('daily/bytecode.cvd')).toEqual({
        ...meta(V1, 4),
        checkedBy: 'stat',
      });
      expect(await i.installed('daily/other.cvd')).toBeUndefined();
      expect(i.paths()).toEqual(['daily/bytecode.cvd']);
    });
  });

  it('installs, rolls back, and rolls forward again', async () => {
    await withInstallation((i) => put(i, PATH, V1, 1));
    const second = await withInstallation((i) => put(i, PATH, V2, 2));
    expect(second).toEqual({ kind: 'installed', path: PATH, replaced: meta(V1, 1) });
    expect(await readdir(join(stateDir, PREVIOUS_DIRECTORY))).toEqual([sha256(V1)]);

    const back = await withInstallation((i) => i.rollback(PATH));
    expect(back).toEqual([{ path: PATH, restored: meta(V1, 1), replaced: meta(V2, 2) }]);
    expect(await bytesOf(join(installDir, PATH))).toEqual(V1);
    expect(await readdir(join(stateDir, PREVIOUS_DIRECTORY))).toEqual([sha256(V2)]);

    const forward = await withInstallation(async (i) => {
      expect(await i.installed(PATH)).toEqual({ ...meta(V1, 1), checkedBy: 'stat' });
      return i.rollback();
    });
    expect(forward).toEqual([{ path: PATH, restored: meta(V2, 2), replaced: meta(V1, 1) }]);
    expect(await bytesOf(join(installDir, PATH))).toEqual(V2);
    await withInstallation(async (i) => {
      expect(await i.installed(PATH)).toEqual({ ...meta(V2, 2), checkedBy: 'stat' });
    });
    expect(await readdir(installDir)).toEqual([PATH]);
  });

  it('keeps one previous version per file and deletes older ones', async () => {
    await withInstallation(async (i) => {
      await put(i, PATH, V1, 1);
      await put(i, PATH, V2, 2);
      await put(i, PATH, V3, 3);
    });
    expect(await readdir(join(stateDir, PREVIOUS_DIRECTORY))).toEqual([sha256(V2)]);
    expect(await bytesOf(join(stateDir, PREVIOUS_DIRECTORY, sha256(V2)))).toEqual(V2);
  });

  it('rolls back, with no path, exactly the files the last run changed', async () => {
    await withInstallation(async (i) => {
      await put(i, 'main.cvd', V1, 1);
      await put(i, PATH, V1, 1);
    });
    await withInstallation(async (i) => {
      await put(i, 'main.cvd', V2, 2);
      await put(i, PATH, V2, 2);
    });
    // A third run changes only daily.cvd: main.cvd's previous version is older than this run.
    await withInstallation((i) => put(i, PATH, V3, 3));
    const outcomes = await withInstallation((i) => i.rollback());
    expect(outcomes).toEqual([{ path: PATH, restored: meta(V2, 2), replaced: meta(V3, 3) }]);
    expect(await bytesOf(join(installDir, 'main.cvd'))).toEqual(V2);
    expect(await bytesOf(join(installDir, PATH))).toEqual(V2);
  });

  it('answers NO_PREVIOUS_VERSION when nothing is kept', async () => {
    await withInstallation(async (i) => {
      const none = await failure(i.rollback());
      expect([none.code, none.message]).toEqual([
        'NO_PREVIOUS_VERSION',
        'no previous version of any file is kept',
      ]);
      await put(i, PATH, V1, 1);
      const e = await failure(i.rollback(PATH));
      expect([e.code, e.message]).toEqual([
        'NO_PREVIOUS_VERSION',
        `no previous version of ${PATH} is kept`,
      ]);
      expect((await failure(i.rollback())).code).toBe('NO_PREVIOUS_VERSION');
    });
  });

  it('refuses to roll back to a kept version whose bytes changed', async () => {
    await withInstallation(async (i) => {
      await put(i, PATH, V1, 1);
      await put(i, PATH, V2, 2);
    });
    const kept = join(stateDir, PREVIOUS_DIRECTORY, sha256(V1));
    await rm(kept);
    await writeFile(kept, V3);
    const e = await withInstallation((i) => failure(i.rollback(PATH)));
    expect(e.code).toBe('NO_PREVIOUS_VERSION');
    expect(e.message).toBe(
      `the previous version of ${PATH} (${kept}) is damaged: sha256 ${sha256(V3)}`,
    );
    expect(await bytesOf(join(installDir, PATH))).toEqual(V2);
    expect(await readdir(installDir)).toEqual([PATH]);
  });

  it('leaves an identical file alone and removes the temp', async () => {
    await withInstallation(async (i) => {
      await put(i, PATH, V1, 1);
      expect(await put(i, PATH, V1, 2)).toEqual({ kind: 'unchanged', path: PATH });
    });
    expect(await readdir(installDir)).toEqual([PATH]);
  });

  it('hashes a file whose stat changed, and says so', async () => {
    await withInstallation((i) => put(i, PATH, V1, 1));
    const file = join(installDir, PATH);
    // Same bytes, new mtime: rehashed, still the recorded version.
    await utimes(file, new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
    await withInstallation(async (i) => {
      expect(await i.installed(PATH)).toEqual({ ...meta(V1, 1), checkedBy: 'hash' });
      expect(await i.installed(PATH)).toEqual({ ...meta(V1, 1), checkedBy: 'stat' });
    });
    // The new identity was recorded: the next run trusts the stat again.
    await withInstallation(async (i) => {
      expect(await i.installed(PATH)).toEqual({ ...meta(V1, 1), checkedBy: 'stat' });
    });
    // Other bytes written in place: recorded as found, version unknown.
    await writeFile(file, V2);
    await withInstallation(async (i) => {
      expect(await i.installed(PATH)).toEqual({ ...meta(V2, null), checkedBy: 'hash' });
    });
  });

  it('adopts a file it finds, and keeps it as the previous version', async () => {
    await writeFile(join(installDir, PATH), V1);
    await withInstallation(async (i) => {
      expect(await i.installed(PATH)).toEqual({ ...meta(V1, null), checkedBy: 'hash' });
      expect(await put(i, PATH, V2, 2)).toEqual({
        kind: 'installed',
        path: PATH,
        replaced: meta(V1, null),
      });
      expect(await i.rollback(PATH)).toEqual([
        { path: PATH, restored: meta(V1, null), replaced: meta(V2, 2) },
      ]);
    });
    expect(await bytesOf(join(installDir, PATH))).toEqual(V1);
  });

  it('refuses target paths that could leave the install directory', () => {
    for (const path of [
      '',
      '../escape.cvd',
      'daily/../../escape.cvd',
      '/etc/passwd',
      'a//b.cvd',
      'a/./b.cvd',
      'daily/',
      'a\\b.cvd',
      'nul\0.cvd',
      'x/.daily.cvd.cairn-0123456789ab.tmp',
    ]) {
      expect(() => checkInstallPath(path), path).toThrowError(ClientError);
    }
    expect(() => checkInstallPath('daily/bytecode.cvd')).not.toThrow();
    expect(() => checkInstallPath('..cvd')).not.toThrow();
  });

  it('refuses an escaping path in install and removes the temp it was given', async () => {
    await withInstallation(async (i) => {
      const temp = await i.tempPathFor(PATH);
      await writeFile(temp, V1);
      const e = await failure(i.install('../escape.cvd', temp, meta(V1, 1)));
      expect(e.code).toBe('INSTALL_FAILED');
      expect(e.message).toBe(
        'target path "../escape.cvd": has an empty, "." or ".." segment, so it could leave ' +
          'the install directory',
      );
      expect(await readdir(installDir)).toEqual([]);
      expect(await readdir(root)).toEqual(['clamav', 'state']);
    });
  });

  it('refuses a temp file that tempPathFor did not name, or of the wrong length', async () => {
    await withInstallation(async (i) => {
      await put(i, PATH, V1, 1);
      const stray = join(installDir, 'elsewhere.tmp');
      await writeFile(stray, V2);
      const e = await failure(i.install(PATH, stray, meta(V2, 2)));
      expect(e.code).toBe('INSTALL_FAILED');
      expect(e.message).toBe(
        `tempFile: expected a name from tempPathFor("${PATH}"), received ${stray}`,
      );
      const temp = await i.tempPathFor(PATH);
      await writeFile(temp, V2.subarray(1));
      const short = await failure(i.install(PATH, temp, meta(V2, 2)));
      expect(short.code).toBe('INSTALL_FAILED');
      expect(short.message).toBe(
        `${temp}: expected a ${V2.length}-byte file, found ${V2.length - 1}`,
      );
      expect(await readdir(installDir)).toEqual([PATH]);
      expect(await i.installed(PATH)).toEqual({ ...meta(V1, 1), checkedBy: 'stat' });
    });
    expect(await bytesOf(join(installDir, PATH))).toEqual(V1);
  });

  it('asks for the held lock of its own state directory', async () => {
    const lock = await acquireStateLock(join(root, 'other-state'));
    const wrong = await failure(Installation.open({ installDir, stateDir, lock }));
    expect(wrong.code).toBe('CONFIG_INVALID');
    await lock.release();
    const mine = await acquireStateLock(stateDir);
    await mine.release();
    const released = await failure(Installation.open({ installDir, stateDir, lock: mine }));
    expect(released.code).toBe('CONFIG_INVALID');
    expect(released.message).toBe(
      `lock: expected the held lock of ${stateDir}, received one of ${stateDir} (released)`,
    );
  });

  it('refuses a damaged manifest with INSTALL_FAILED naming it', async () => {
    await mkdir(stateDir);
    await writeFile(join(stateDir, MANIFEST_NAME), '{"format": "cairn-installed/1", "run": 1}');
    const e = await withStateLock(stateDir, (lock) =>
      failure(Installation.open({ installDir, stateDir, lock })),
    );
    expect(e.code).toBe('INSTALL_FAILED');
    expect(e.message).toBe(
      `${join(stateDir, MANIFEST_NAME)} is damaged (manifest.files is missing); move it aside ` +
        `to start over (previous versions are then forgotten)`,
    );
  });

  it('copies the previous version where hard links are not possible', async () => {
    const noLinks: InstallFileSystem = {
      ...nodeInstallFileSystem,
      link: () =>
        Promise.reject(Object.assign(new Error('EXDEV: cross-device link'), { code: 'EXDEV' })),
    };
    await withInstallation(
      async (i) => {
        await put(i, PATH, V1, 1);
        await put(i, PATH, V2, 2);
        const kept = join(stateDir, PREVIOUS_DIRECTORY, sha256(V1));
        expect(await bytesOf(kept)).toEqual(V1);
        expect((await stat(kept)).nlink).toBe(1);
        await i.rollback(PATH);
      },
      { fs: noLinks },
    );
    expect(await bytesOf(join(installDir, PATH))).toEqual(V1);
    expect(await readdir(join(stateDir, PREVIOUS_DIRECTORY))).toEqual([sha256(V2)]);
  });
});

// ---------------------------------------------------------------------------------------------

/**
 * A fake file system: the real one, except that writing to a file `full(path)` picks fails with
 * ENOSPC, as it would on a full disk. Links fail with EXDEV when `noLinks` is set, to force the
 * copy of the previous version (which then writes, and fails).
 */
function fullDiskFs(full: (path: string) => boolean, noLinks = false): InstallFileSystem {
  const enospc = () =>
    Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  return {
    ...nodeInstallFileSystem,
    async createFile(path) {
      const writer = await nodeInstallFileSystem.createFile(path);
      if (!full(path)) return writer;
      return { ...writer, write: () => Promise.reject(enospc()) };
    },
    link: noLinks
      ? () => Promise.reject(Object.assign(new Error('EXDEV'), { code: 'EXDEV' }))
      : (existing, newPath) => nodeInstallFileSystem.link(existing, newPath),
  };
}

describe('a full disk', () => {
  const manifestTemp = (path: string) => path.startsWith(join(stateDir, `.${MANIFEST_NAME}.`));

  async function installedTwice(): Promise<void> {
    await withInstallation(async (i) => {
      await put(i, PATH, V1, 1);
      await put(i, PATH, V2, 2);
    });
  }

  /** The state every failed install must leave: V2 installed and recorded, V1 kept. */
  async function expectV2Intact(): Promise<void> {
    expect(await bytesOf(join(installDir, PATH))).toEqual(V2);
    expect(await readdir(installDir)).toEqual([PATH]);
    await withInstallation(async (i) => {
      expect(i.recovery).toEqual({ committed: [], abandoned: [], foreign: [], removed: [] });
      expect(await i.installed(PATH)).toEqual({ ...meta(V2, 2), checkedBy: 'stat' });
      expect(await i.rollback(PATH)).toEqual([
        { path: PATH, restored: meta(V1, 1), replaced: meta(V2, 2) },
      ]);
    });
    expect(await bytesOf(join(installDir, PATH))).toEqual(V1);
  }

  it('while recording the intent: INSTALL_FAILED, the installed file untouched', async () => {
    await installedTwice();
    const e = await withInstallation((i) => failure(put(i, PATH, V3, 3)), {
      fs: fullDiskFs(manifestTemp),
    });
    expect(e.code).toBe('INSTALL_FAILED');
    expect(e.message).toBe(
      `installing ${PATH} failed (ENOSPC: no space left on device, write); the previous file ` +
        `is still installed`,
    );
    expect((e.cause as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect(await readdir(stateDir)).toEqual([MANIFEST_NAME, PREVIOUS_DIRECTORY]);
    await expectV2Intact();
  });

  it('while copying the previous version: INSTALL_FAILED, the installed file untouched', async () => {
    await installedTwice();
    const inPrevious = (path: string) => path.startsWith(join(stateDir, PREVIOUS_DIRECTORY));
    const e = await withInstallation((i) => failure(put(i, PATH, V3, 3)), {
      fs: fullDiskFs(inPrevious, true),
    });
    expect(e.code).toBe('INSTALL_FAILED');
    expect((e.cause as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect(await readdir(join(stateDir, PREVIOUS_DIRECTORY))).toEqual([sha256(V1)]);
    await expectV2Intact();
  });

  it('while recording the new file after the rename: INSTALL_FAILED saying so, reconciled next time', async () => {
    await installedTwice();
    let writes = 0;
    // The intent is written; the commit, the next manifest write, is not.
    const e = await withInstallation((i) => failure(put(i, PATH, V3, 3)), {
      fs: fullDiskFs((path) => manifestTemp(path) && ++writes === 2),
    });
    expect(e.code).toBe('INSTALL_FAILED');
    expect(e.message).toBe(
      `${PATH} is installed, but recording it in ${MANIFEST_NAME} failed (ENOSPC: no space ` +
        `left on device, write); the next run reconciles it`,
    );
    expect(await bytesOf(join(installDir, PATH))).toEqual(V3);
    await withInstallation(async (i) => {
      expect(i.recovery).toEqual({
        committed: [PATH],
        abandoned: [],
        foreign: [],
        removed: [join(stateDir, PREVIOUS_DIRECTORY, sha256(V1))],
      });
      expect(await i.installed(PATH)).toEqual({ ...meta(V3, 3), checkedBy: 'stat' });
      await i.rollback(PATH);
    });
    expect(await bytesOf(join(installDir, PATH))).toEqual(V2);
  });
});

// ---------------------------------------------------------------------------------------------

describe('a crash', () => {
  /** V1 then V2 installed; then a child process installs V3 and is killed at `crashAt`. */
  async function crashInstallingV3(crashAt: string): Promise<void> {
    await installedTwice();
    const content = join(root, 'v3');
    await writeFile(content, V3);
    const result = await runChild(['install', installDir, stateDir, PATH, content, '3', crashAt]);
    expect(result, result.stderr).toMatchObject({ signal: 'SIGKILL', stdout: '' });
  }

  async function installedTwice(): Promise<void> {
    await withInstallation(async (i) => {
      await put(i, PATH, V1, 1);
      await put(i, PATH, V2, 2);
    });
  }

  const previousOf = (bytes: Uint8Array) => join(stateDir, PREVIOUS_DIRECTORY, sha256(bytes));

  /** What opening repairs after a crash at each point; the file is V2 before 'renamed'. */
  const cases: readonly {
    crashAt: 'half-written' | InstallStep;
    file: 'V2' | 'V3';
    recovery: (temps: string[]) => object;
  }[] = [
    {
      crashAt: 'half-written',
      file: 'V2',
      recovery: (temps) => ({ committed: [], abandoned: [], foreign: [], removed: temps }),
    },
    {
      crashAt: 'preserved',
      file: 'V2',
      recovery: (temps) => ({
        committed: [],
        abandoned: [],
        foreign: [],
        removed: [...temps, previousOf(V2)],
      }),
    },
    {
      crashAt: 'intent-recorded',
      file: 'V2',
      recovery: (temps) => ({
        committed: [],
        abandoned: [PATH],
        foreign: [],
        removed: [...temps, previousOf(V2)],
      }),
    },
    {
      crashAt: 'renamed',
      file: 'V3',
      recovery: () => ({
        committed: [PATH],
        abandoned: [],
        foreign: [],
        removed: [previousOf(V1)],
      }),
    },
    {
      crashAt: 'committed',
      file: 'V3',
      recovery: () => ({ committed: [], abandoned: [], foreign: [], removed: [previousOf(V1)] }),
    },
    {
      crashAt: 'cleaned',
      file: 'V3',
      recovery: () => ({ committed: [], abandoned: [], foreign: [], removed: [] }),
    },
  ];

  it('covers every step of an install', () => {
    expect(cases.map((c) => c.crashAt).slice(1)).toEqual(INSTALL_STEPS);
  });

  for (const { crashAt, file, recovery } of cases) {
    it(`at ${crashAt} leaves ${file === 'V2' ? 'the old' : 'the new'} file whole, recorded, with its previous version usable`, async () => {
      await crashInstallingV3(crashAt);
      const [now, before, older] = file === 'V2' ? [V2, V1, 2] : [V3, V2, 3];
      // Whole, before any repair: rename is atomic.
      expect(await bytesOf(join(installDir, PATH))).toEqual(now);
      const temps = (await readdir(installDir))
        .filter((n) => n !== PATH)
        .map((n) => join(installDir, n));
      expect(temps).toHaveLength(file === 'V2' ? 1 : 0);
      // The child died holding the lock: the next updater takes it over.
      await withInstallation(async (i) => {
        expect(i.recovery).toEqual(recovery(temps));
        // Recorded by stat: where recovery had to hash the file, it recorded the new identity.
        expect(await i.installed(PATH)).toEqual({ ...meta(now, older), checkedBy: 'stat' });
        expect(await readdir(installDir)).toEqual([PATH]);
        expect(await readdir(join(stateDir, PREVIOUS_DIRECTORY))).toEqual([sha256(before)]);
        expect(await i.rollback(PATH)).toEqual([
          { path: PATH, restored: meta(before, older - 1), replaced: meta(now, older) },
        ]);
      });
      expect(await bytesOf(join(installDir, PATH))).toEqual(before);
      // And forward again.
      await withInstallation((i) => i.rollback(PATH));
      expect(await bytesOf(join(installDir, PATH))).toEqual(now);
    });
  }

  it('during a rollback, after the rename, is committed at the next open', async () => {
    await installedTwice();
    const result = await runChild(['rollback', installDir, stateDir, PATH, 'renamed']);
    expect(result, result.stderr).toMatchObject({ signal: 'SIGKILL', stdout: '' });
    expect(await bytesOf(join(installDir, PATH))).toEqual(V1);
    await withInstallation(async (i) => {
      expect(i.recovery).toMatchObject({ committed: [PATH], abandoned: [], foreign: [] });
      expect(await i.installed(PATH)).toEqual({ ...meta(V1, 1), checkedBy: 'stat' });
      expect(await i.rollback(PATH)).toEqual([
        { path: PATH, restored: meta(V2, 2), replaced: meta(V1, 1) },
      ]);
    });
    expect(await bytesOf(join(installDir, PATH))).toEqual(V2);
  });

  it('a child that is not killed installs, and releases the lock on exit', async () => {
    await installedTwice();
    const content = join(root, 'v3');
    await writeFile(content, V3);
    const result = await runChild(['install', installDir, stateDir, PATH, content, '3', 'none']);
    expect(result).toMatchObject({ code: 0, signal: null, stdout: 'installed\n' });
    expect(await readdir(stateDir)).toEqual([MANIFEST_NAME, PREVIOUS_DIRECTORY]);
    await withInstallation(async (i) => {
      expect(await i.installed(PATH)).toEqual({ ...meta(V3, 3), checkedBy: 'stat' });
    });
  });
});
