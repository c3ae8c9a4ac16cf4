/**
 * `cairn update` and `cairn rollback` end to end: the built `cairn` in child processes, over a
 * repository the origin published into a directory (test/support/published-repository.ts), served
 * by two `cairn mirror serve` children on 127.0.0.1.
 *
 * The tests run in order and build on each other, as an installation's life does: a first
 * install (text, JSON, quiet), a run with nothing new, a new release fetched as a delta, a
 * rollback and its undo, then the failures.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireStateLock } from '@cairn/client/state-lock';
import type { UpdateReport } from '@cairn/client/update';
import { publishedRepository, type PublishedRepository } from './support/published-repository.js';
import { RELEASE_1, RELEASE_2 } from './support/releases.js';
import { builtBin, runBuilt, serveMirrorDir, type CliResult } from './support/run-cli.js';

const cairn = builtBin('main');
const LOG_ORIGIN = 'cairn.test/log';

const USAGE_HINT =
  '  hint: usage: cairn update --dir INSTALL_DIR --mirror URL... [--root FILE] [--state STATE_DIR] [--target NAME|GLOB...] [--no-deltas] [--no-require-log] [--timeout SECONDS] [--min-speed BYTES_PER_SECOND] [--config FILE] [--json | --quiet]';
const INTACT =
  'every installed file is still its previous version or a fully verified new one, never a partial one';

let work: string;
let repo: PublishedRepository;
let rootFile: string;

const sha256 = (bytes: string | Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Nothing of this process's CAIRN_* settings leaks into a child; HOME points into the test. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '', HOME: join(work, 'home'), ...extra };
}

function run(args: readonly string[], extra: Record<string, string> = {}): Promise<CliResult> {
  return runBuilt(cairn, args, { env: env(extra), cwd: work });
}

interface Mirror {
  readonly url: string;
  stop(): Promise<void>;
}

/** Starts `cairn mirror serve` over the repository; resolves once it prints its URL. */
function serveMirror(name: string): Promise<Mirror> {
  return serveMirrorDir(cairn, { dir: repo.dir, name, cwd: work, env: env() });
}

/** Every regular file under `dir`, relative and `/`-separated, with its content. */
async function filesIn(dir: string): Promise<Record<string, string>> {
  const found: Record<string, string> = {};
  for (const name of (await readdir(dir, { recursive: true })).sort()) {
    const path = join(dir, name);
    if ((await stat(path)).isFile())
      found[name.split('\\').join('/')] = await readFile(path, 'utf8');
  }
  return found;
}

const kib = (n: number) => (n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KiB`);
const bytesOf = (text: string) => Buffer.byteLength(text);
/** A size as the output writes it, when the exact value is the codec's business. */
const SIZE = '(?:\\d+ B|\\d+\\.\\d KiB)';

/** A port on 127.0.0.1 that nothing listens on: connections are refused at once. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

let deadUrl: string;
let mirrorA: Mirror;
let mirrorB: Mirror;
/** `a` by its name (given as NAME=URL), `b` by its URL as the updater writes it. */
let labels: readonly string[];
const installDir = (name: string) => join(work, 'install', name);
const stateDir = (name: string) => join(work, 'state', name);

/** `cairn update` of install `name` from both mirrors, with the trusted root. */
function update(name: string, args: readonly string[] = []): Promise<CliResult> {
  return run([
    'update',
    '--dir',
    installDir(name),
    '--state',
    stateDir(name),
    '--mirror',
    `a=${mirrorA.url}`,
    '--mirror',
    mirrorB.url,
    '--root',
    rootFile,
    ...args,
  ]);
}

const fromMirror = () =>
  `from (?:${labels.map((l) => l.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|')})`;

/** The text output's lines: mirrors table, metadata line, log line, file lines (any order),
 * summary. */
function expectText(
  stdout: string,
  version: { timestamp: number; targets: number; probed?: string },
  log: RegExp,
  fileLines: readonly RegExp[],
  summary: RegExp,
): void {
  const lines = stdout.split('\n');
  expect(lines.at(-1)).toBe('');
  expect(lines[0]).toBe('mirrors, best first:');
  // Either mirror may be the faster. The ranking is remembered between runs (re-probed after
  // an hour), so the timestamp versions it shows may be those of an earlier run.
  const table = lines.slice(1, 3);
  const probed = `timestamp v(?:${version.probed ?? version.timestamp})`;
  expect(table.filter((l) => l.startsWith('  a  '))).toEqual([
    expect.stringMatching(new RegExp(`^  a  ${mirrorA.url}/ +\\d+ ms  ${probed}$`)),
  ]);
  expect(table.filter((l) => !l.startsWith('  a  '))).toEqual([
    expect.stringMatching(new RegExp(`^     ${mirrorB.url}/ +\\d+ ms  ${probed}$`)),
  ]);
  expect(lines[3]).toMatch(
    new RegExp(
      `^✔ metadata verified: timestamp v${version.timestamp}, targets v${version.targets} \\(${fromMirror()}\\)$`,
    ),
  );
  expect(lines[4]).toMatch(log);
  const files = lines.slice(5, -2);
  expect(files).toHaveLength(fileLines.length);
  for (const pattern of fileLines) expect(files.some((line) => pattern.test(line))).toBe(true);
  expect(lines.at(-2)).toMatch(summary);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'cairn-update-cli-'));
  // Root v1 declares a transparency log, which the origin appends every publication to and the
  // mirrors serve under log/: every update below proves what it accepts in it.
  repo = await publishedRepository(join(work, 'origin-store'), { log: LOG_ORIGIN });
  await repo.publish(RELEASE_1);
  rootFile = join(work, 'root.json');
  await copyFile(join(repo.dir, 'metadata', '1.root.json'), rootFile);
  [mirrorA, mirrorB] = await Promise.all([serveMirror('mirror-a'), serveMirror('mirror-b')]);
  labels = ['a', `${mirrorB.url}/`];
  deadUrl = `http://127.0.0.1:${await closedPort()}`;
});

afterAll(async () => {
  await Promise.all([mirrorA?.stop(), mirrorB?.stop()]);
  await repo?.close();
  await rm(work, { recursive: true, force: true });
});

describe('cairn update', () => {
  it('installs the release byte for byte, saying what it verified and where from', async () => {
    const result = await update('text');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(await filesIn(installDir('text'))).toEqual(RELEASE_1);
    const main = bytesOf(RELEASE_1['main.cvd']);
    expectText(
      result.stdout,
      { timestamp: 1, targets: 1 },
      /^✔ log: checkpoint \d+ \(the first this machine holds\), 1 inclusion proof$/,
      [
        new RegExp(`^main\\.cvd: full ${kib(main)} ${fromMirror()}$`),
        new RegExp(`^daily/a\\.cld: full 7 B ${fromMirror()}$`),
      ],
      new RegExp(`^✔ updated 2 files to targets v1: downloaded ${kib(main + 7)}$`),
    );
    // The state is where --state said, not in the install directory.
    expect((await readdir(stateDir('text'))).sort()).toEqual(
      expect.arrayContaining(['installed.json', 'log-checkpoint', 'metadata']),
    );
    // The checkpoint held is the log's, as the mirrors serve it.
    expect(await readFile(join(stateDir('text'), 'log-checkpoint'), 'utf8')).toBe(
      await readFile(join(repo.dir, 'log', 'checkpoint'), 'utf8'),
    );
  });

  it('--json prints the report as one document', async () => {
    const result = await update('json', ['--json']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as UpdateReport & {
      stateDir: string;
      mirrors: { url: string; name?: string; reachable: boolean }[];
      mirrorFailures: unknown[];
    };
    const main = RELEASE_1['main.cvd'];
    const daily = RELEASE_1['daily/a.cld'];
    expect(report).toEqual({
      timestampVersion: 1,
      targetsVersion: 1,
      files: expect.arrayContaining([
        {
          path: 'main.cvd',
          action: 'full',
          sha256: sha256(main),
          length: bytesOf(main),
          bytesDownloaded: bytesOf(main),
          bytesSaved: 0,
          mirror: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/$/) as string,
        },
        {
          path: 'daily/a.cld',
          action: 'full',
          sha256: sha256(daily),
          length: 7,
          bytesDownloaded: 7,
          bytesSaved: 0,
          mirror: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/$/) as string,
        },
      ]) as unknown,
      bytesDownloaded: bytesOf(main) + 7,
      bytesFull: bytesOf(main) + 7,
      unmatched: [],
      log: {
        origin: LOG_ORIGIN,
        size: expect.any(Number) as unknown,
        proofs: 1,
        mirror: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/$/) as string,
      },
      warnings: [],
      stateDir: stateDir('json'),
      mirrors: expect.any(Array) as unknown,
      mirrorFailures: [],
    });
    expect(report.files).toHaveLength(2);
    expect(report.mirrors.map((m) => [m.url, m.name, m.reachable]).sort()).toEqual(
      [
        [`${mirrorA.url}/`, 'a', true],
        [`${mirrorB.url}/`, undefined, true],
      ].sort(),
    );
    expect(await filesIn(installDir('json'))).toEqual(RELEASE_1);
  });

  it('--quiet prints nothing on success', async () => {
    expect(await update('quiet', ['--quiet'])).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(await filesIn(installDir('quiet'))).toEqual(RELEASE_1);
  });

  it('a second run finds every file up to date and downloads nothing', async () => {
    const result = await update('text');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expectText(
      result.stdout,
      { timestamp: 1, targets: 1 },
      /^✔ log: checkpoint \d+ \(unchanged\), 0 inclusion proofs$/,
      [/^main\.cvd: up to date$/, /^daily\/a\.cld: up to date$/],
      /^✔ up to date: 2 files at targets v1$/,
    );
  });

  it('takes mirrors from CAIRN_MIRRORS and settings from --config; --target selects files', async () => {
    const config = join(work, 'update.json');
    await writeFile(
      config,
      JSON.stringify({ dir: 'install/config', state: 'state/config', root: 'root.json' }),
    );
    const result = await run(['update', '--config', config, '--target', 'daily/*', '--json'], {
      CAIRN_MIRRORS: `${mirrorA.url}, b=${mirrorB.url}`,
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as UpdateReport & { stateDir: string };
    expect(report.files.map((f) => f.path)).toEqual(['daily/a.cld']);
    expect(report.stateDir).toBe(stateDir('config'));
    expect(await filesIn(installDir('config'))).toEqual({ 'daily/a.cld': 'daily 1' });
  });

  it('--no-require-log updates on signatures alone: no log in the report, no checkpoint held', async () => {
    const result = await update('no-log', ['--no-require-log', '--json']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as UpdateReport;
    expect(report.log).toBeUndefined();
    expect(report.targetsVersion).toBe(1);
    expect(await filesIn(installDir('no-log'))).toEqual(RELEASE_1);
    expect(await readdir(stateDir('no-log'))).not.toContain('log-checkpoint');
  });

  it('keeps its state under $XDG_STATE_HOME/cairn when --state is not given', async () => {
    const result = await run(
      [
        'update',
        '--dir',
        installDir('xdg'),
        '--mirror',
        mirrorA.url,
        '--root',
        rootFile,
        '--no-deltas',
        '--json',
      ],
      { XDG_STATE_HOME: join(work, 'xdg') },
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as { stateDir: string };
    expect(report.stateDir).toMatch(new RegExp(`^${join(work, 'xdg', 'cairn')}/xdg-[0-9a-f]{12}$`));
    expect(await readdir(report.stateDir)).toContain('installed.json');
    expect(await filesIn(installDir('xdg'))).toEqual(RELEASE_1);
  });

  it('fetches a delta for the new release, and says what it saved', async () => {
    await repo.publish(RELEASE_2);
    const result = await update('text');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(await filesIn(installDir('text'))).toEqual(RELEASE_2);
    const full = bytesOf(RELEASE_2['main.cvd']);
    const deltaLine = new RegExp(
      `^main\\.cvd: delta ${SIZE} instead of ${kib(full)} \\(saved 9\\d\\.\\d%\\) ${fromMirror()}$`,
    );
    expectText(
      result.stdout,
      { timestamp: 2, targets: 2, probed: '1|2' },
      /^✔ log: checkpoint \d+ \(consistent with \d+\), 1 inclusion proof$/,
      // The tiny file: a delta would not be smaller, so the full file.
      [deltaLine, new RegExp(`^daily/a\\.cld: full 7 B ${fromMirror()}$`)],
      new RegExp(
        `^✔ updated 2 files to targets v2: downloaded ${SIZE} instead of ${kib(full + 7)} \\(saved 9\\d\\.\\d%\\)$`,
      ),
    );
  });

  it('--json reports the delta: action, bytes downloaded and saved', async () => {
    const result = await update('json', ['--json']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as UpdateReport;
    const main = report.files.find((f) => f.path === 'main.cvd');
    const full = bytesOf(RELEASE_2['main.cvd']);
    expect(main).toMatchObject({
      action: 'delta',
      sha256: sha256(RELEASE_2['main.cvd']),
      length: full,
    });
    expect(main?.bytesDownloaded).toBeGreaterThan(0);
    expect(main?.bytesDownloaded).toBeLessThan(full / 10);
    expect(main?.bytesSaved).toBe(full - (main?.bytesDownloaded ?? 0));
    expect(report.bytesFull).toBe(full + 7);
    expect(report.bytesDownloaded).toBe((main?.bytesDownloaded ?? 0) + 7);
    expect(report.timestampVersion).toBe(2);
    expect(await filesIn(installDir('json'))).toEqual(RELEASE_2);
  });

  it('reports a mirror that does not answer as unreachable, and updates from the others', async () => {
    const result = await run([
      'update',
      '--dir',
      installDir('quiet'),
      '--state',
      stateDir('quiet'),
      '--mirror',
      `dead=${deadUrl}`,
      '--mirror',
      mirrorB.url,
      '--root',
      rootFile,
    ]);
    expect(result.code).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines.slice(0, 3)).toEqual([
      'mirrors, best first:',
      expect.stringMatching(/^ {8}http:\/\/127\.0\.0\.1:\d+\/ +\d+ ms {2}timestamp v2$/) as string,
      expect.stringMatching(new RegExp(`^  dead  ${deadUrl}/ +unreachable \\(.+\\)$`)) as string,
    ]);
    expect(lines.at(-2)).toMatch(/^✔ updated 2 files to targets v2: /);
    expect(await filesIn(installDir('quiet'))).toEqual(RELEASE_2);
  });
});

describe('cairn rollback', () => {
  it('restores the previous version of every file the last update changed, and undoes itself', async () => {
    const result = await run([
      'rollback',
      '--dir',
      installDir('text'),
      '--state',
      stateDir('text'),
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(await filesIn(installDir('text'))).toEqual(RELEASE_1);
    const lines = result.stdout.split('\n');
    expect(lines.slice(0, 2).sort()).toEqual(
      [
        `daily/a.cld: restored the previous version (sha256 ${sha256(RELEASE_1['daily/a.cld']).slice(0, 12)}…)`,
        `main.cvd: restored the previous version (sha256 ${sha256(RELEASE_1['main.cvd']).slice(0, 12)}…)`,
      ].sort(),
    );
    expect(lines.slice(2)).toEqual([`✔ rolled back 2 files in ${installDir('text')}`, '']);

    // One path, JSON: the rolled-back version is now the previous one, so this undoes it.
    const again = await run([
      'rollback',
      '--dir',
      installDir('text'),
      '--state',
      stateDir('text'),
      'main.cvd',
      '--json',
    ]);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({
      stateDir: stateDir('text'),
      files: [{ path: 'main.cvd', restored: sha256(RELEASE_2['main.cvd']) }],
    });
    expect(await filesIn(installDir('text'))).toEqual({
      'main.cvd': RELEASE_2['main.cvd'],
      'daily/a.cld': RELEASE_1['daily/a.cld'],
    });
  });

  it('with nothing kept to go back to: NO_PREVIOUS_VERSION, exit 1, with a hint', async () => {
    const result = await run([
      'rollback',
      '--dir',
      installDir('config'),
      '--state',
      stateDir('config'),
    ]);
    expect(result).toEqual({
      code: 1,
      stdout: '',
      stderr: [
        '✘ NO_PREVIOUS_VERSION: no previous version of any file is kept',
        `  hint: a previous version is kept (in ${join(stateDir('config'), 'previous')}) only for files an update replaced; give the same --dir and --state as the update`,
        '',
      ].join('\n'),
    });
    expect(await filesIn(installDir('config'))).toEqual({ 'daily/a.cld': 'daily 1' });
  });
});

describe('cairn update failures', () => {
  it('no mirror reachable: NO_MIRROR, exit 1, the installed files untouched', async () => {
    const before = await filesIn(installDir('json'));
    const result = await run([
      'update',
      '--dir',
      installDir('json'),
      '--state',
      stateDir('json'),
      '--mirror',
      deadUrl,
      '--timeout',
      '5',
    ]);
    expect(result.code).toBe(1);
    // What it found before it gave up; the failure itself is on standard error.
    expect(result.stdout).toMatch(
      new RegExp(`^mirrors, best first:\\n  ${deadUrl}/  unreachable \\(.+\\)\\n$`),
    );
    // A warning for each failed request, then the failure and its hint.
    const lines = result.stderr.split('\n');
    for (const warning of lines.slice(0, -3)) {
      expect(warning).toMatch(
        new RegExp(`^⚠ mirror ${deadUrl}/ failed \\(.+\\); trying the next one$`),
      );
    }
    const [line, hint, end] = lines.slice(-3);
    expect(line).toMatch(/^✘ NO_MIRROR: /);
    expect(hint).toBe(
      `  hint: check --mirror (or CAIRN_MIRRORS) and that a mirror serves metadata/timestamp.json; ${INTACT}`,
    );
    expect(end).toBe('');
    expect(await filesIn(installDir('json'))).toEqual(before);
  });

  it('another updater holding the lock: LOCKED, exit 3', async () => {
    const lock = await acquireStateLock(stateDir('json'));
    try {
      const result = await update('json');
      expect(result.code).toBe(3);
      expect(result.stdout).toBe('');
      const [line, hint, end] = result.stderr.split('\n');
      expect(line).toMatch(new RegExp(`^✘ LOCKED: .*\\b${process.pid}\\b`));
      expect(hint).toBe(
        '  hint: wait for it to finish, then run again (a lock left by a crashed updater is taken over once its process is gone)',
      );
      expect(end).toBe('');
    } finally {
      await lock.release();
    }
  });

  it('a first run without --root: CONFIG_INVALID, exit 2', async () => {
    const result = await run([
      'update',
      '--dir',
      installDir('no-root'),
      '--state',
      stateDir('no-root'),
      '--mirror',
      mirrorA.url,
    ]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    const [line, hint, end] = result.stderr.split('\n');
    expect(line).toMatch(/^✘ CONFIG_INVALID: no trusted root in /);
    expect(hint).toBe(
      "  hint: fix the flag or field named (a first run needs the repository's root.json: --root FILE); `cairn update --help` lists them",
    );
    expect(end).toBe('');
    // Refused before anything was written to the install directory.
    await expect(readdir(installDir('no-root'))).rejects.toThrow(/ENOENT/);
  });

  it.each<[string, string[], string]>([
    [
      'an unknown option',
      ['--dir', 'x', '--mirror', 'http://m/', '--bogus'],
      'unknown option --bogus',
    ],
    ['no --dir', ['--mirror', 'http://m/'], 'missing --dir INSTALL_DIR'],
    ['no mirror', ['--dir', 'x'], 'missing --mirror URL (or set CAIRN_MIRRORS)'],
    [
      'a mirror that is not a URL',
      ['--dir', 'x', '--mirror', 'mirror.example'],
      '--mirror: expected an http(s) URL or NAME=URL, received "mirror.example"',
    ],
    [
      'a bad --timeout',
      ['--dir', 'x', '--mirror', 'http://m/', '--timeout', 'soon'],
      '--timeout: expected a whole number of at least 1, received "soon"',
    ],
    [
      '--json with --quiet',
      ['--dir', 'x', '--mirror', 'http://m/', '--json', '--quiet'],
      '--json and --quiet are both given: choose one',
    ],
  ])('refuses %s: exit 2, one ✘ USAGE line and the synopsis', async (_name, args, problem) => {
    expect(await run(['update', ...args])).toEqual({
      code: 2,
      stdout: '',
      stderr: `✘ USAGE: cairn update: ${problem}\n${USAGE_HINT}\n`,
    });
  });

  it('an unreadable --root or --config is CONFIG_INVALID, exit 2', async () => {
    expect(
      await run(['update', '--dir', 'x', '--mirror', 'http://m/', '--root', 'nowhere.json']),
    ).toEqual({
      code: 2,
      stdout: '',
      stderr: [
        '✘ CONFIG_INVALID: --root nowhere.json: no such file',
        "  hint: give the repository's root.json (its publisher hands it out; metadata/1.root.json on a mirror is it only if you trust that mirror)",
        '',
      ].join('\n'),
    });
    const bad = join(work, 'bad.json');
    await writeFile(bad, '{"dir": "x", "mirror": []}');
    expect(await run(['update', '--config', bad])).toEqual({
      code: 2,
      stdout: '',
      stderr: [
        `✘ CONFIG_INVALID: ${bad}: unknown field "mirror" (fields: dir, state, mirrors, root, targets, deltas, timeout, minSpeed, requireLog)`,
        '  hint: fix the field named; `cairn update --help` lists the fields, which are the flags’ names',
        '',
      ].join('\n'),
    });
  });

  it('--help prints the usage of each command, exit 0', async () => {
    for (const command of ['update', 'rollback']) {
      const help = await run([command, '--help']);
      expect(help.code).toBe(0);
      expect(help.stderr).toBe('');
      expect(help.stdout.split('\n')[0]).toMatch(new RegExp(`^Usage: cairn ${command} --dir `));
    }
  });
});
