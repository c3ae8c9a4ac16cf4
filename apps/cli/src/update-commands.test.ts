import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClientError } from '@cairn/client/errors';
import type { UpdateEvent, UpdateReport } from '@cairn/client/update';
import { VerifyError } from '@cairn/verify/errors';
import { UsageError, type CliIo } from './cli-io.js';
import type { Terminal, Usage } from './command-support.js';
import {
  DownloadProgressLine,
  EXIT_FAILED,
  EXIT_LOCKED,
  EXIT_USAGE,
  UpdatePrinter,
  defaultStateDir,
  exitCodeOf,
  fileLine,
  formatCount,
  logLine,
  mirrorTable,
  parseMirrorSetting,
  parseUpdateConfig,
  renderDownloadProgress,
  resolveUpdateSettings,
  rollbackLine,
  savedPercent,
  updateHint,
  updateSummary,
  updaterConfig,
} from './update-commands.js';

const KiB = 1024;
const MiB = 1024 * 1024;

function terminal(isTTY: boolean, columns?: number): Terminal & { written: string[] } {
  const written: string[] = [];
  return { isTTY, columns, written, write: (text) => void written.push(text) };
}

function captured(): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (l) => out.push(l), stderr: (l) => err.push(l) };
}

const USAGE: Usage = { command: 'cairn update', synopsis: 'cairn update ...', details: [] };

describe('parseMirrorSetting', () => {
  it('takes a URL as it is, and NAME=URL as a named mirror', () => {
    expect(parseMirrorSetting('https://m.example/repo', '--mirror')).toBe('https://m.example/repo');
    expect(parseMirrorSetting('lan-1=http://10.0.0.5:8787', '--mirror')).toEqual({
      name: 'lan-1',
      url: 'http://10.0.0.5:8787',
    });
  });

  it('refuses what is not an http(s) URL, naming where it came from', () => {
    expect(() => parseMirrorSetting('ftp://m.example/', 'CAIRN_MIRRORS')).toThrow(
      'CAIRN_MIRRORS: expected an http(s) URL or NAME=URL, received "ftp://m.example/"',
    );
    expect(() => parseMirrorSetting('m.example', '--mirror')).toThrow(
      '--mirror: expected an http(s) URL or NAME=URL, received "m.example"',
    );
    expect(() => parseMirrorSetting('lan=', '--mirror')).toThrow('received "lan="');
  });
});

describe('defaultStateDir', () => {
  it('is one directory per install directory under $XDG_STATE_HOME/cairn', () => {
    const a = defaultStateDir('/var/lib/clamav', { XDG_STATE_HOME: '/state' }, '/home/u');
    expect(a).toMatch(/^\/state\/cairn\/clamav-[0-9a-f]{12}$/);
    // The same directory however it is spelled; another directory, another state.
    expect(defaultStateDir('/var/lib/../lib/clamav/', { XDG_STATE_HOME: '/state' }, '/x')).toBe(a);
    const b = defaultStateDir('/opt/clamav', { XDG_STATE_HOME: '/state' }, '/x');
    expect(b).toMatch(/^\/state\/cairn\/clamav-[0-9a-f]{12}$/);
    expect(b).not.toBe(a);
  });

  it('defaults to ~/.local/state, and ignores a relative $XDG_STATE_HOME as the spec says', () => {
    expect(defaultStateDir('/db', {}, '/home/u')).toMatch(
      /^\/home\/u\/\.local\/state\/cairn\/db-[0-9a-f]{12}$/,
    );
    expect(defaultStateDir('/db', { XDG_STATE_HOME: 'rel' }, '/home/u')).toBe(
      defaultStateDir('/db', {}, '/home/u'),
    );
    expect(defaultStateDir('/', {}, '/h')).toMatch(/^\/h\/\.local\/state\/cairn\/root-/);
  });
});

describe('parseUpdateConfig', () => {
  it('reads every field, paths relative to the file', () => {
    expect(
      parseUpdateConfig(
        {
          dir: 'db',
          state: '/var/lib/cairn',
          mirrors: ['https://a.example/', { url: 'http://10.0.0.5/', name: 'lan' }],
          root: 'root.json',
          targets: ['*.cvd'],
          deltas: false,
          timeout: 10,
          minSpeed: 1000,
          requireLog: false,
        },
        '/etc/cairn/update.json',
      ),
    ).toEqual({
      dir: '/etc/cairn/db',
      state: '/var/lib/cairn',
      mirrors: ['https://a.example/', { url: 'http://10.0.0.5/', name: 'lan' }],
      root: '/etc/cairn/root.json',
      targets: ['*.cvd'],
      deltas: false,
      timeout: 10,
      minSpeed: 1000,
      requireLog: false,
    });
  });

  it.each<[string, unknown, string]>([
    ['not an object', [], 'f.json: expected a JSON object'],
    ['an unknown field', { dirs: 'x' }, 'f.json: unknown field "dirs"'],
    ['a bad path', { dir: 3 }, 'f.json: dir: expected a path, received 3'],
    ['a bad timeout', { timeout: 1.5 }, 'timeout: expected a whole number of at least 1'],
    ['a bad minSpeed', { minSpeed: -1 }, 'minSpeed: expected a whole number of at least 0'],
    ['a bad mirror', { mirrors: ['x'] }, 'f.json: mirrors[0]: expected an http(s) URL'],
    ['a mirror field', { mirrors: [{ url: 'http://a/', weight: 2 }] }, 'unknown field "weight"'],
    ['bad targets', { targets: 'a' }, 'f.json: targets: expected a list'],
    ['bad deltas', { deltas: 'no' }, 'f.json: deltas: expected true or false, received "no"'],
    ['bad requireLog', { requireLog: 0 }, 'f.json: requireLog: expected true or false, received 0'],
  ])('refuses %s with CONFIG_INVALID', (_name, json, message) => {
    let thrown: unknown;
    try {
      parseUpdateConfig(json, 'f.json');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ClientError);
    expect((thrown as ClientError).code).toBe('CONFIG_INVALID');
    expect((thrown as ClientError).message).toContain(message);
  });
});

describe('resolveUpdateSettings', () => {
  const env = { XDG_STATE_HOME: '/state' };

  it('takes flags over the environment over the file', () => {
    const file = {
      dir: '/from-file',
      state: '/file-state',
      mirrors: ['http://file/'],
      targets: ['a'],
      deltas: true,
      timeout: 9,
      minSpeed: 99,
    };
    expect(
      resolveUpdateSettings(
        USAGE,
        {
          dir: 'db',
          mirror: ['http://flag/', 'lan=http://lan/'],
          target: ['*.cvd'],
          'no-deltas': true,
          timeout: '5',
          'min-speed': '100',
          root: 'r.json',
        },
        { ...env, CAIRN_MIRRORS: 'http://env/' },
        file,
        '/home/u',
      ),
    ).toEqual({
      installDir: resolve('db'),
      stateDir: '/file-state',
      mirrors: ['http://flag/', { name: 'lan', url: 'http://lan/' }],
      rootFile: 'r.json',
      targets: ['*.cvd'],
      deltas: false,
      timeoutSeconds: 5,
      minBytesPerSecond: 100,
      requireLog: true,
    });
    const fromEnv = resolveUpdateSettings(
      USAGE,
      {},
      { ...env, CAIRN_MIRRORS: ' http://env-1/ ,b=http://env-2/,' },
      file,
      '/home/u',
    );
    expect(fromEnv.mirrors).toEqual(['http://env-1/', { name: 'b', url: 'http://env-2/' }]);
    expect(fromEnv.installDir).toBe('/from-file');
    expect(fromEnv.timeoutSeconds).toBe(9);
    expect(resolveUpdateSettings(USAGE, {}, env, file, '/h').mirrors).toEqual(['http://file/']);
    // --no-require-log, or "requireLog": false in the file, turns the log requirement off.
    const values = { dir: '/db', mirror: ['http://m/'] };
    expect(
      resolveUpdateSettings(USAGE, { ...values, 'no-require-log': true }, env, file, '/h')
        .requireLog,
    ).toBe(false);
    expect(resolveUpdateSettings(USAGE, values, env, { requireLog: false }, '/h').requireLog).toBe(
      false,
    );
    expect(resolveUpdateSettings(USAGE, values, env, { requireLog: true }, '/h').requireLog).toBe(
      true,
    );
  });

  it('defaults the state directory, deltas on, and leaves timeouts to the updater', () => {
    expect(
      resolveUpdateSettings(USAGE, { dir: '/db', mirror: ['http://m/'] }, env, {}, '/h'),
    ).toEqual({
      installDir: '/db',
      stateDir: defaultStateDir('/db', env, '/h'),
      mirrors: ['http://m/'],
      rootFile: undefined,
      targets: undefined,
      deltas: true,
      timeoutSeconds: undefined,
      minBytesPerSecond: undefined,
      requireLog: true,
    });
  });

  it.each<[string, Parameters<typeof resolveUpdateSettings>[1], string]>([
    ['no dir', { mirror: ['http://m/'] }, 'cairn update: missing --dir INSTALL_DIR'],
    ['no mirror', { dir: '/db' }, 'cairn update: missing --mirror URL (or set CAIRN_MIRRORS)'],
    [
      'a bad mirror',
      { dir: '/db', mirror: ['nope'] },
      'cairn update: --mirror: expected an http(s) URL or NAME=URL, received "nope"',
    ],
    [
      'a bad timeout',
      { dir: '/db', mirror: ['http://m/'], timeout: '0' },
      'cairn update: --timeout: expected a whole number of at least 1, received "0"',
    ],
    [
      'the install directory as state',
      { dir: '/db', state: '/db/', mirror: ['http://m/'] },
      'cairn update: --state: the state directory must not be the install directory',
    ],
  ])('refuses %s as a usage error', (_name, values, message) => {
    expect(() => resolveUpdateSettings(USAGE, values, {}, {}, '/h')).toThrow(
      new UsageError(message),
    );
  });

  it('needs no mirror for rollback', () => {
    expect(resolveUpdateSettings(USAGE, { dir: '/db' }, {}, {}, '/h', false).mirrors).toEqual([]);
  });

  it('becomes the updater configuration: seconds to milliseconds', () => {
    const settings = resolveUpdateSettings(
      USAGE,
      { dir: '/db', state: '/s', mirror: ['http://m/'], timeout: '7' },
      {},
      {},
      '/h',
    );
    const root = new Uint8Array([1]);
    expect(updaterConfig(settings, root)).toEqual({
      installDir: '/db',
      stateDir: '/s',
      mirrors: ['http://m/'],
      trustedRoot: root,
      targets: undefined,
      deltas: true,
      requestTimeoutMs: 7000,
      minBytesPerSecond: undefined,
      requireLogInclusion: true,
    });
    expect(updaterConfig({ ...settings, requireLog: false }, root).requireLogInclusion).toBe(false);
  });
});

describe('lines', () => {
  it('savedPercent rounds down to one decimal', () => {
    expect(savedPercent(997, 1000)).toBe('99.7%');
    expect(savedPercent(9999, 10000)).toBe('99.9%');
    expect(savedPercent(1000, 1000)).toBe('100.0%');
    expect(savedPercent(0, 1000)).toBe('0.0%');
    expect(savedPercent(5, 0)).toBe('0.0%');
  });

  it('fileLine says delta, full or up to date, with sizes and the mirror', () => {
    expect(
      fileLine(
        {
          path: 'daily.cvd',
          action: 'delta',
          bytesDownloaded: 12.3 * KiB,
          bytesSaved: 4.1 * MiB - 12.3 * KiB,
        },
        'lan-1',
      ),
    ).toBe('daily.cvd: delta 12.3 KiB instead of 4.1 MiB (saved 99.7%) from lan-1');
    expect(
      fileLine(
        { path: 'main.cvd', action: 'full', bytesDownloaded: 4.1 * MiB, bytesSaved: 0 },
        'http://m/',
      ),
    ).toBe('main.cvd: full 4.1 MiB from http://m/');
    expect(
      fileLine({ path: 'a.cld', action: 'current', bytesDownloaded: 0, bytesSaved: 0 }, undefined),
    ).toBe('a.cld: up to date');
  });

  const report = (files: UpdateReport['files'], bytesDownloaded: number, bytesFull: number) => ({
    timestampVersion: 8,
    targetsVersion: 7,
    files,
    bytesDownloaded,
    bytesFull,
    unmatched: [],
  });
  const file = (path: string, action: 'current' | 'delta' | 'full', down: number, saved = 0) => ({
    path,
    action,
    sha256: '00'.repeat(32),
    length: down + saved,
    bytesDownloaded: down,
    bytesSaved: saved,
  });

  it('updateSummary counts changed files and what deltas saved', () => {
    expect(
      updateSummary(
        report(
          [file('a', 'delta', 2 * KiB, 98 * KiB), file('b', 'full', KiB), file('c', 'current', 0)],
          3 * KiB,
          101 * KiB,
        ),
      ),
    ).toBe(
      '✔ updated 2 files to targets v7: downloaded 3.0 KiB instead of 101.0 KiB (saved 97.0%)',
    );
    expect(updateSummary(report([file('b', 'full', 700)], 700, 700))).toBe(
      '✔ updated 1 file to targets v7: downloaded 700 B',
    );
    expect(updateSummary(report([file('c', 'current', 0)], 0, 0))).toBe(
      '✔ up to date: 1 file at targets v7',
    );
  });

  it('mirrorTable aligns names, URLs, round trips and versions; unreachable ones say so', () => {
    expect(
      mirrorTable([
        { url: 'http://lan/', name: 'lan-1', rttMs: 2.4, timestampVersion: 42, reachable: true },
        { url: 'https://far.example/', rttMs: 120, timestampVersion: 41, reachable: true },
        { url: 'http://gone/', reachable: false, error: 'connection refused' },
      ]),
    ).toEqual([
      '  lan-1  http://lan/             2 ms  timestamp v42',
      '         https://far.example/  120 ms  timestamp v41',
      '         http://gone/                  unreachable (connection refused)',
    ]);
    expect(mirrorTable([{ url: 'http://a/', rttMs: 3, reachable: true }])).toEqual([
      '  http://a/  3 ms',
    ]);
    expect(mirrorTable([{ url: 'http://a/', reachable: false, error: 'refused' }])).toEqual([
      '  http://a/  unreachable (refused)',
    ]);
  });

  it('formatCount groups digits by three with spaces', () => {
    expect([0, 999, 1000, 1234567].map(formatCount)).toEqual(['0', '999', '1 000', '1 234 567']);
  });

  it('logLine says the checkpoint size, what it is consistent with, and the proofs', () => {
    const log = { origin: 'o', size: 1234, previousSize: 1200, proofs: 2, mirror: undefined };
    expect(logLine(log)).toBe(
      '✔ log: checkpoint 1 234 (consistent with 1 200), 2 inclusion proofs',
    );
    expect(logLine({ ...log, previousSize: undefined, proofs: 1 })).toBe(
      '✔ log: checkpoint 1 234 (the first this machine holds), 1 inclusion proof',
    );
    expect(logLine({ ...log, previousSize: 1234, proofs: 0 })).toBe(
      '✔ log: checkpoint 1 234 (unchanged), 0 inclusion proofs',
    );
    expect(logLine({ ...log, size: undefined, previousSize: undefined, proofs: 0 })).toBe(
      '✔ log: no checkpoint held yet, 0 inclusion proofs',
    );
  });

  it('rollbackLine names the file and the restored hash', () => {
    expect(rollbackLine({ path: 'main.cvd', restored: 'ab'.repeat(32) })).toBe(
      'main.cvd: restored the previous version (sha256 abababababab…)',
    );
  });
});

describe('failures', () => {
  it('exit 2 for usage and configuration, 3 for a held lock, 1 for the rest', () => {
    expect(exitCodeOf(new UsageError('x'))).toBe(EXIT_USAGE);
    expect(exitCodeOf(new ClientError('CONFIG_INVALID', 'x'))).toBe(EXIT_USAGE);
    expect(exitCodeOf(new ClientError('LOCKED', 'x'))).toBe(EXIT_LOCKED);
    expect(exitCodeOf(new ClientError('NO_MIRROR', 'x'))).toBe(EXIT_FAILED);
    expect(exitCodeOf(new ClientError('SPLIT_VIEW', 'x'))).toBe(EXIT_FAILED);
    expect(exitCodeOf(new ClientError('NOT_IN_LOG', 'x'))).toBe(EXIT_FAILED);
    expect(exitCodeOf(new ClientError('LOG_REQUIRED', 'x'))).toBe(EXIT_USAGE);
    expect(exitCodeOf(new VerifyError('EXPIRED', 'x'))).toBe(EXIT_FAILED);
    expect(exitCodeOf(new Error('x'))).toBe(EXIT_FAILED);
  });

  it('hints say what to check and that installed files are intact', () => {
    expect(updateHint('NO_MIRROR')).toBe(
      'check --mirror (or CAIRN_MIRRORS) and that a mirror serves metadata/timestamp.json; every installed file is still its previous version or a fully verified new one, never a partial one',
    );
    expect(updateHint('EXPIRED')).toContain("this machine's clock");
    expect(updateHint('SPLIT_VIEW')).toBe(
      'the transparency log was shown to this machine with a history that contradicts what it saw before (or another mirror showed): a forked log, which someone may be using to hide a release from everyone else; nothing was installed and the checkpoint held is kept: report it to the repository’s operators',
    );
    expect(updateHint('NOT_IN_LOG')).toBe(
      'the metadata is signed but no mirror proves it is in the repository’s public transparency log (a release shipped around the log, or every mirror’s log is stale or damaged); every installed file is still its previous version or a fully verified new one, never a partial one',
    );
    expect(updateHint('LOG_REQUIRED')).toBe(
      'the repository’s root declares no transparency log: ask its operators to set one up, or give --no-require-log ("requireLog": false in --config) to accept releases on signatures alone',
    );
    expect(updateHint('USAGE')).toBeUndefined();
    expect(updateHint('INTERNAL')).toBeUndefined();
  });
});

describe('DownloadProgressLine', () => {
  it('renders the file, the kind, the share, the bytes and the rate', () => {
    expect(
      renderDownloadProgress({
        path: 'main.cvd',
        kind: 'delta',
        bytes: 3 * MiB,
        total: 12 * MiB,
        elapsedMs: 2000,
      }),
    ).toBe('main.cvd (delta)  [######------------------]  25%  3.0 MiB / 12.0 MiB  1.5 MiB/s');
    expect(
      renderDownloadProgress({ path: 'a', kind: 'full', bytes: 0, total: 0, elapsedMs: 0 }),
    ).toBe('a (full)  [########################] 100%  0 B / 0 B');
  });

  it('draws on a terminal only, at most every 100 ms but always the last, and erases itself', () => {
    let now = 0;
    const tty = terminal(true, 40);
    const line = new DownloadProgressLine(tty, () => now);
    line.update('a.cvd', 'full', 10, 100);
    now = 50;
    line.update('a.cvd', 'full', 20, 100);
    now = 60;
    line.update('a.cvd', 'full', 100, 100);
    line.clear();
    line.clear();
    expect(tty.written).toEqual([
      '\ra.cvd (full)  [##----------------------\x1b[K',
      '\ra.cvd (full)  [########################\x1b[K',
      '\r\x1b[K',
    ]);
    const pipe = terminal(false);
    const quiet = new DownloadProgressLine(pipe, () => 0);
    quiet.update('a', 'full', 1, 2);
    quiet.clear();
    expect(pipe.written).toEqual([]);
  });
});

describe('UpdatePrinter', () => {
  const events: UpdateEvent[] = [
    {
      type: 'mirrors',
      ranked: [
        { url: 'http://a/', name: 'a', rttMs: 1, timestampVersion: 2, reachable: true },
        { url: 'http://b/', rttMs: 2, timestampVersion: 2, reachable: true },
        { url: 'http://c/', reachable: false, error: 'refused' },
      ],
    },
    {
      type: 'metadata',
      timestampVersion: 2,
      snapshotVersion: 2,
      targetsVersion: 3,
      mirror: 'http://a/',
    },
    {
      type: 'log',
      origin: 'cairn.example/log',
      size: 1234,
      previousSize: 1200,
      proofs: 2,
      mirror: 'http://a/',
    },
    {
      type: 'plan',
      items: [
        { path: 'main.cvd', action: 'delta', downloadBytes: 100, fullBytes: 10000 },
        { path: 'daily.cvd', action: 'full', downloadBytes: 50, fullBytes: 50 },
        { path: 'bytecode.cvd', action: 'current', downloadBytes: 0, fullBytes: 9 },
      ],
    },
    {
      type: 'progress',
      path: 'main.cvd',
      kind: 'delta',
      bytes: 100,
      total: 100,
      mirror: 'http://a/',
    },
    { type: 'mirror-failed', mirror: 'http://a/', reason: 'timed out' },
    // Once a mirror is warned about (or shown unreachable), its next failures are not repeated.
    { type: 'mirror-failed', mirror: 'http://a/', reason: 'timed out again' },
    { type: 'mirror-failed', mirror: 'http://c/', reason: 'refused' },
    {
      type: 'installed',
      path: 'main.cvd',
      kind: 'delta',
      bytesDownloaded: 100,
      bytesSaved: 9900,
      mirror: 'http://b/',
    },
    { type: 'fallback', path: 'daily.cvd', reason: 'the result did not verify' },
  ];
  const report: UpdateReport = {
    timestampVersion: 2,
    targetsVersion: 3,
    files: [
      {
        path: 'main.cvd',
        action: 'delta',
        sha256: '1'.repeat(64),
        length: 10000,
        bytesDownloaded: 100,
        bytesSaved: 9900,
        mirror: 'http://b/',
      },
      // No `installed` event for this one: the printer prints it from the report.
      {
        path: 'daily.cvd',
        action: 'full',
        sha256: '2'.repeat(64),
        length: 50,
        bytesDownloaded: 50,
        bytesSaved: 0,
        mirror: 'http://a/',
        fallbackReason: 'the result did not verify',
      },
      {
        path: 'bytecode.cvd',
        action: 'current',
        sha256: '3'.repeat(64),
        length: 9,
        bytesDownloaded: 0,
        bytesSaved: 0,
      },
    ],
    bytesDownloaded: 150,
    bytesFull: 10050,
    unmatched: ['*.hdb'],
    log: {
      origin: 'cairn.example/log',
      size: 1234,
      previousSize: 1200,
      proofs: 2,
      mirror: 'http://a/',
    },
    warnings: ['mirrors.json could not be downloaded: NO_MIRROR: gone'],
  };

  it('text: mirrors, metadata, a line a file, warnings on stderr, the summary', () => {
    const io = captured();
    const tty = terminal(true);
    const printer = new UpdatePrinter(io, tty, 'text', () => 0);
    for (const event of events) printer.listener(event);
    printer.finish(report, '/state');
    expect(io.out).toEqual([
      'mirrors, best first:',
      '  a  http://a/  1 ms  timestamp v2',
      '     http://b/  2 ms  timestamp v2',
      '     http://c/        unreachable (refused)',
      '✔ metadata verified: timestamp v2, targets v3 (from a)',
      '✔ log: checkpoint 1 234 (consistent with 1 200), 2 inclusion proofs',
      'bytecode.cvd: up to date',
      'main.cvd: delta 100 B instead of 9.8 KiB (saved 99.0%) from http://b/',
      'daily.cvd: full 50 B from a',
      '✔ updated 2 files to targets v3: downloaded 150 B instead of 9.8 KiB (saved 98.5%)',
    ]);
    expect(io.err).toEqual([
      '⚠ mirror a failed (timed out); trying the next one',
      '⚠ daily.cvd: the delta was not used (the result did not verify); downloading the full file instead',
      '⚠ mirrors.json could not be downloaded: NO_MIRROR: gone',
      '⚠ --target "*.hdb" matched no file in the repository',
    ]);
    // The bar was drawn, then erased before the next line.
    expect(tty.written).toEqual([
      '\rmain.cvd (delta)  [########################] 100%  100 B / 100 B\x1b[K',
      '\r\x1b[K',
    ]);
  });

  it('json: the report with the state directory, the ranking and failed mirrors', () => {
    const io = captured();
    const printer = new UpdatePrinter(io, terminal(false), 'json');
    for (const event of events) printer.listener(event);
    printer.finish(report, '/state');
    expect(io.err).toEqual([]);
    expect(io.out).toHaveLength(1);
    expect(JSON.parse(io.out[0] ?? '')).toEqual({
      ...report,
      stateDir: '/state',
      mirrors: (events[0] as Extract<UpdateEvent, { type: 'mirrors' }>).ranked,
      mirrorFailures: [
        { mirror: 'http://a/', reason: 'timed out' },
        { mirror: 'http://a/', reason: 'timed out again' },
        { mirror: 'http://c/', reason: 'refused' },
      ],
    });
  });

  it('quiet: nothing at all, not even the bar', () => {
    const io = captured();
    const tty = terminal(true);
    const printer = new UpdatePrinter(io, tty, 'quiet');
    for (const event of events) printer.listener(event);
    printer.finish(report, '/state');
    expect([...io.out, ...io.err, ...tty.written]).toEqual([]);
  });
});
