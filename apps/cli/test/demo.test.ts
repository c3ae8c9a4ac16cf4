/**
 * `cairn demo`, the README's main job, run as a user runs it: the built CLI as a child process in
 * a fresh working directory, the network on 127.0.0.1, nothing shared with other tests.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { builtBin, runBuilt, type CliResult } from './support/run-cli.js';

const cairn = builtBin('main');
let work: string;

/** This process's environment without the variable that makes the demo stop by itself. */
function environment(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.CAIRN_DEMO_NO_WAIT;
  return env;
}

function demo(args: readonly string[] = ['--no-wait']): Promise<CliResult> {
  return runBuilt(cairn, ['demo', ...args], { cwd: work, env: environment() });
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * The index of the first line at or after `from` matching each pattern in turn: fails naming
 * the first pattern not found, so the output's steps are checked in order.
 */
function inOrder(lines: readonly string[], patterns: readonly (string | RegExp)[]): number[] {
  const found: number[] = [];
  let from = 0;
  for (const pattern of patterns) {
    const at = lines.findIndex(
      (line, i) =>
        i >= from && (typeof pattern === 'string' ? line === pattern : pattern.test(line)),
    );
    expect(at, `no line after line ${from} matches ${String(pattern)}`).toBeGreaterThanOrEqual(0);
    found.push(at);
    from = at + 1;
  }
  return found;
}

/** The sha256 of each non-delta target in `version`.targets.json of the demo's repository. */
async function publishedHashes(dir: string, version: number): Promise<Record<string, string>> {
  const doc = JSON.parse(
    await readFile(join(dir, 'repository', 'metadata', `${version}.targets.json`), 'utf8'),
  ) as { signed: { targets: Record<string, { hashes: { sha256: string } }> } };
  return Object.fromEntries(
    Object.entries(doc.signed.targets)
      .filter(([path]) => !path.startsWith('_delta/'))
      .map(([path, t]) => [path, t.hashes.sha256]),
  );
}

async function installedHashes(dir: string): Promise<Record<string, string>> {
  const install = join(dir, 'client', 'install');
  const names = (await readdir(install)).sort();
  return Object.fromEntries(
    await Promise.all(
      names.map(async (name) => [name, sha256(await readFile(join(install, name)))] as const),
    ),
  );
}

interface WaitingDemo {
  stdout(): string;
  stderr(): string;
  /** Sends `signal` and resolves with the exit. */
  stop(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): void;
}

/** Starts `cairn demo` (waiting) and resolves the moment it invites Ctrl-C. */
function startWaiting(): Promise<WaitingDemo> {
  const child = spawn(process.execPath, [cairn, 'demo'], { cwd: work, env: environment() });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.on('exit', (code, signal) => done({ code, signal })),
  );
  const demo: WaitingDemo = {
    stdout: () => stdout,
    stderr: () => stderr,
    stop: (signal) => {
      child.kill(signal);
      return exited;
    },
    kill: () => void child.kill('SIGKILL'),
  };
  return new Promise((done, fail) => {
    const timer = setTimeout(() => {
      demo.kill();
      fail(new Error(`not running after 60 s: ${stdout}${stderr}`));
    }, 60_000);
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
      if (stdout.includes('\nCtrl-C stops the network.\n')) {
        clearTimeout(timer);
        done(demo);
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      fail(new Error(`exited with ${code}: ${stdout}${stderr}`));
    });
  });
}

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'cairn-demo-test-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Today in UTC, as the demo's audit window names it (a run lives within one day). */
const TODAY = () => new Date().toISOString().slice(0, 10);

/** The arguments of the `cairn COMMAND ...` line printed among the commands to try. */
function shownArgs(shown: string, command: 'monitor' | 'audit'): string[] {
  const line = shown.split('\n').find((l) => l.includes(` ${command} --mirror `)) ?? '';
  expect(line, `no ${command} command shown`).not.toBe('');
  return line.slice(line.indexOf(` ${command} `) + command.length + 2).split(' ');
}

/** What the demo test reads of audit.json. */
interface AuditJson {
  releases: {
    role: string;
    version: number;
    status: string;
    signers: { name: string | null }[];
    log: { index: number };
  }[];
  keyChanges: { version: number; log: { index: number } }[];
  anomalies: unknown[];
  log: { checkpoint: { size: number } };
}

const MIRRORS =
  /^ {3}mirrors, nearest first \(by round-trip time\): mirror-[ab] \d+\.\d ms, mirror-[ab] \d+\.\d ms$/;

describe('cairn demo', () => {
  it('publishes two co-signed releases, updates through both mirrors (then by delta), monitors the log, refuses three attacks, writes the audit report', async () => {
    const result = await demo();
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const dir = join(work, '.cairn-demo');
    const lines = result.stdout.split('\n');
    inOrder(lines, [
      `Cairn demo: the whole network on this machine, kept in ${dir}`,
      '1. The repository',
      `   new: root v1 in ${join(dir, 'repository')}, signed by 2 root keys (a new root needs both)`,
      /^ {3}every version it publishes goes first to the transparency log demo\.cairn\.invalid\/log \(key [0-9a-f]{12}, declared in root v1\), served by every mirror under log\/$/,
      `   these are demo keys in ${join(dir, 'keys')}, under the passphrase "demo": never use them for real data`,
      '2. The network, on 127.0.0.1',
      /^ {3}origin {5}http:\/\/127\.0\.0\.1:\d+ {3}publishers push and sign here/,
      /^ {3}mirror-a {3}http:\/\/127\.0\.0\.1:\d+ {3}an edge mirror on Node/,
      /^ {3}mirror-b {3}http:\/\/127\.0\.0\.1:\d+ {3}an edge mirror on Node/,
      '3. Release 1: a signature database, generated for the demo',
      /^ {3}main\.cvd {5}4\.0 MiB {3}61000 signatures {2}sha256 [0-9a-f]{16}…$/,
      /^ {3}alice pushes it to the origin: release \S+, a draft of targets v1$/,
      '   alice checks the draft against her copy and signs: 1 of 2 signatures — not enough, nothing is published',
      '   bob checks it against his own copy and signs: 2 of 2 — threshold reached: published as targets v1 (snapshot v1)',
      '4. The client updates through the mirrors; all it trusts is root v1, shipped with it',
      MIRRORS,
      /^ {3}✔ metadata verified from the trusted root: timestamp v1, snapshot v1, targets v1 \(signed by alice and bob\) — from mirror-[ab]$/,
      '   main.cvd   full file: 4.0 MiB',
      /^ {3}✔ main\.cvd: 4\.0 MiB from mirror-[ab], sha256 matches the signed targets: installed$/,
      /^ {3}downloaded 4\.\d MiB \(full files\)$/,
      '5. Release 2: about 1% of the signatures in main.cvd change, 5% in daily.cvd',
      /^ {3}the origin computes deltas from v1: daily\.cvd \d+\.\d KiB, main\.cvd \d+\.\d KiB$/,
      '   bob checks it against his own copy and signs: 2 of 2 — threshold reached: published as targets v2 (snapshot v2)',
      '6. The client updates again: deltas',
      MIRRORS,
      /^ {3}✔ metadata verified from the trusted root: timestamp v2, snapshot v2, targets v2 \(signed by alice and bob\) — from mirror-[ab]$/,
      /^ {3}main\.cvd {3}delta: \d+\.\d KiB instead of 4\.0 MiB$/,
      /^ {3}✔ main\.cvd: delta of \d+\.\d KiB from mirror-[ab] applied to the installed copy; the result's sha256 matches the signed targets: installed$/,
      /^ {3}downloaded \d+\.\d KiB instead of 4\.\d MiB \(9\d% saved\)$/,
      '7. The monitor: anyone can check the log and the mirrors, from public data',
      '   ✔ monitor: log of 5 entries consistent on both mirrors, every release logged and approved by 2 publishers',
      `   its checkpoint is kept in ${join(dir, 'monitor')}: the next check must find a log that extends it, or it reports a fork`,
      '8. Attack: a mirror serves a tampered file',
      /^ {3}✔ refused: \S+ — .*daily\.cvd/,
      "   ✔ the tampered daily.cvd is not installed: the client checks every byte against the publishers' signed hashes",
      "9. Attack: a thief with alice's key publishes a release alone",
      /^ {3}✔ the origin holds release \S+ as a draft with 1 of 2 signatures; bob, comparing it with his copy, would not sign$/,
      /^ {3}✔ refused: THRESHOLD — targets: 1 valid signature\(s\), the threshold is 2( \(.*\))?$/,
      '   ✔ the installed daily.cvd is unchanged, byte for byte: targets need 2 publishers, whoever signs snapshot and timestamp',
      "10. Attack: a thief with both publishers' keys writes a release straight into a mirror, past the log",
      '   targets v3, under a snapshot and timestamp signed by the online keys: every signature is valid,',
      '   ✔ refused: NOT_IN_LOG — targets v3 is not in the transparency log demo.cairn.invalid/log: mirror-x: not among the entries of its checkpoint of size 5',
      '   ✔ the installed daily.cvd is unchanged, byte for byte: a client takes a release only with a proof that it is in the log, where everyone sees it',
    ]);
    // The monitor, over the honest mirrors and the lying one: exactly one alert, on mirror-x.
    const [checks = 0] = inOrder(lines, [
      '   The monitor checks the log through mirror-a, mirror-b and mirror-x:',
    ]);
    expect(lines.slice(checks + 1, checks + 4)).toEqual([
      '   ✔ monitor: UNLOGGED_RELEASE — mirror-x: its timestamp v3 names snapshot v3, which is not in the log',
      '   ✔ monitor: no alert on mirror-a and mirror-b',
      '   ✔ mirror-x restored from the repository: the monitor finds no alert on it',
    ]);
    const audit = join(dir, 'audit');
    const [auditStep = 0] = inOrder(lines, [
      '11. The audit report: every release and key change, with its evidence',
    ]);
    expect(lines.slice(auditStep + 1, auditStep + 7)).toEqual([
      `   ✔ audit of ${TODAY()} through mirror-a: 2 releases, 1 key change, no anomalies`,
      '   each with its files, signers, log index and inclusion proof against the checkpoint of 5 entries',
      `   wrote ${join(audit, 'audit.html')}   a timeline and a table per release, for a browser`,
      `   wrote ${join(audit, 'audit.md')}`,
      `   wrote ${join(audit, 'audit.json')}`,
      '',
    ]);
    expect(lines[auditStep + 7]).toMatch(
      /^✔ done in \d+\.\d s \(--no-wait: the network stops here\)$/,
    );
    // The delta update downloads tens of KiB, not the 4 MiB of full files.
    const saved = lines
      .map((line) => /^ {3}downloaded (\d+\.\d) KiB instead of .* saved\)$/.exec(line))
      .find((match) => match !== null);
    expect(Number(saved?.[1])).toBeLessThan(100);
    expect(result.stdout).not.toContain('The network is running');

    // The client holds exactly what the publishers signed as release 2, and what they pushed.
    const installed = await installedHashes(dir);
    expect(installed).toEqual(await publishedHashes(dir, 2));
    for (const name of ['main.cvd', 'daily.cvd']) {
      expect(installed[name]).toBe(sha256(await readFile(join(dir, 'release', name))));
    }
    // The thief's draft was never published; the forged v3 lived only on the lying mirror.
    expect((await readdir(join(dir, 'repository', 'metadata'))).sort()).toEqual([
      '1.root.json',
      '1.snapshot.json',
      '1.targets.json',
      '2.snapshot.json',
      '2.targets.json',
      'root.json',
      'timestamp.json',
    ]);
    // Every version published is in the transparency log: root 1, and targets and snapshot 1 and 2.
    const checkpoint = await readFile(join(dir, 'repository', 'log', 'checkpoint'), 'utf8');
    expect(checkpoint.split('\n').slice(0, 2)).toEqual(['demo.cairn.invalid/log', '5']);
    // The monitor kept the checkpoint it verified, and no alert: the lying mirror's was not saved.
    const kept = await readFile(join(dir, 'monitor', 'checkpoint'), 'utf8');
    expect(kept.split('\n').slice(0, 3)).toEqual(checkpoint.split('\n').slice(0, 3));
    expect(JSON.parse(await readFile(join(dir, 'monitor', 'monitor.json'), 'utf8'))).toEqual({
      verifiedSize: 5,
      alerts: [],
    });
    // The lying mirror serves the repository's own release again.
    for (const file of ['timestamp.json', '2.snapshot.json', '2.targets.json']) {
      expect(await readFile(join(dir, 'attack', 'mirror-x', 'metadata', file))).toEqual(
        await readFile(join(dir, 'repository', 'metadata', file)),
      );
    }
    expect(await readdir(join(dir, 'attack', 'mirror-x', 'metadata'))).not.toContain(
      '3.targets.json',
    );
    // The audit report lists the two releases and root v1, each at its log index, no anomaly.
    const report = JSON.parse(await readFile(join(audit, 'audit.json'), 'utf8')) as AuditJson;
    expect(report.releases.map((r) => [r.role, r.version, r.log.index, r.status])).toEqual([
      ['targets', 1, 1, 'verified'],
      ['targets', 2, 3, 'verified'],
    ]);
    expect(report.releases.map((r) => r.signers.map((k) => k.name))).toEqual([
      ['alice', 'bob'],
      ['alice', 'bob'],
    ]);
    expect(report.keyChanges.map((k) => [k.version, k.log.index])).toEqual([[1, 0]]);
    expect(report.anomalies).toEqual([]);
    expect(report.log.checkpoint.size).toBe(5);
    expect((await readdir(audit)).sort()).toEqual(['audit.html', 'audit.json', 'audit.md']);
    expect(await readFile(join(audit, 'audit.html'), 'utf8')).toMatch(/^<!DOCTYPE html>/i);
    expect((await readdir(join(dir, 'keys'))).sort()).toEqual(
      [
        'README.txt',
        ...['alice', 'bob', 'log', 'root-1', 'root-2', 'snapshot', 'timestamp'].flatMap((k) => [
          `${k}.key`,
          `${k}.key.pub`,
        ]),
      ].sort(),
    );
  });

  it('run again in the same directory: reuses the repository and its keys, publishes release 3, updates by delta, the monitor extends its checkpoint', async () => {
    const first = await demo();
    expect(first.code).toBe(0);
    const dir = join(work, '.cairn-demo');
    const publishers = (out: string) => /publishers alice \(\w+\) and bob \(\w+\)/.exec(out)?.[0];
    const second = await demo();
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    expect(publishers(second.stdout)).toBe(publishers(first.stdout));
    const lines = second.stdout.split('\n');
    inOrder(lines, [
      `   reused: the repository in ${join(dir, 'repository')} and its keys`,
      '3. Release 3: about 1% of the signatures in main.cvd change, 5% in daily.cvd',
      /^ {3}the origin computes deltas from v2: daily\.cvd \d+\.\d KiB, main\.cvd \d+\.\d KiB; from v1: /,
      '   bob checks it against his own copy and signs: 2 of 2 — threshold reached: published as targets v3 (snapshot v3)',
      '4. The client updates through the mirrors, from the release it installed last time',
      /^ {3}✔ metadata verified from the trusted root: timestamp v3, snapshot v3, targets v3 /,
      /^ {3}main\.cvd {3}delta: \d+\.\d KiB instead of 4\.0 MiB$/,
      /^ {3}downloaded \d+\.\d KiB instead of 4\.\d MiB \(9\d% saved\)$/,
      '5. The monitor: anyone can check the log and the mirrors, from public data',
      '   ✔ monitor: log of 7 entries consistent on both mirrors, every release logged and approved by 2 publishers',
      `   ✔ the log extends the checkpoint of 5 entries kept in ${join(dir, 'monitor')} by the last check; 2 new entries verified`,
      '6. Attack: a mirror serves a tampered file',
      "7. Attack: a thief with alice's key publishes a release alone",
      /^ {3}✔ refused: THRESHOLD — /,
      "8. Attack: a thief with both publishers' keys writes a release straight into a mirror, past the log",
      '   ✔ refused: NOT_IN_LOG — targets v4 is not in the transparency log demo.cairn.invalid/log: mirror-x: not among the entries of its checkpoint of size 7',
      '   ✔ monitor: UNLOGGED_RELEASE — mirror-x: its timestamp v4 names snapshot v4, which is not in the log',
      '   ✔ monitor: no alert on mirror-a and mirror-b',
      '   ✔ mirror-x restored from the repository: the monitor finds no alert on it',
      '9. The audit report: every release and key change, with its evidence',
      `   ✔ audit of ${TODAY()} through mirror-a: 3 releases, 1 key change, no anomalies`,
      '   each with its files, signers, log index and inclusion proof against the checkpoint of 7 entries',
      /^✔ done in /,
    ]);
    expect(await installedHashes(dir)).toEqual(await publishedHashes(dir, 3));
  });

  it('keeps the network running until SIGINT: the mirrors answer, then it stops with exit 0', async () => {
    const running = await startWaiting();
    try {
      const shown = running.stdout().slice(running.stdout().indexOf('\nThe network is running:\n'));
      const urls: Record<string, string> = {};
      for (const m of shown.matchAll(
        /^ {3}(origin|mirror-a|mirror-b) +(http:\/\/127\.0\.0\.1:\d+) /gm,
      )) {
        urls[m[1] ?? ''] = m[2] ?? '';
      }
      expect(Object.keys(urls).sort()).toEqual(['mirror-a', 'mirror-b', 'origin']);
      for (const name of ['mirror-a', 'mirror-b']) {
        const health = await fetch(`${urls[name]}/health`);
        expect(health.status).toBe(200);
        expect(await health.json()).toMatchObject({
          status: 'ok',
          mirror: name,
          verified: true,
          timestamp: { version: 2 },
        });
      }
      expect(shown).toContain(
        `--mirror mirror-a=${urls['mirror-a']} --mirror mirror-b=${urls['mirror-b']}`,
      );
      // The monitor and audit commands shown work as printed: the monitor extends the demo's
      // checkpoint without alert, the audit writes the demo's report again, byte for byte.
      const root = '.cairn-demo/repository/metadata/1.root.json';
      const monitorArgs = shownArgs(shown, 'monitor');
      expect(monitorArgs).toEqual([
        ...['--mirror', urls['mirror-a'], '--mirror', urls['mirror-b']],
        ...['--root', root, '--state', '.cairn-demo/monitor', '--min-approvals', '2'],
      ]);
      const monitored = await runBuilt(cairn, ['monitor', ...monitorArgs], { cwd: work });
      expect(monitored.code).toBe(0);
      expect(monitored.stdout.endsWith('\n✔ no alerts\n')).toBe(true);
      const auditArgs = shownArgs(shown, 'audit');
      expect(auditArgs).toEqual([
        ...['--mirror', urls['mirror-a'], '--root', root],
        ...['--from', TODAY(), '--to', TODAY(), '--out', '.cairn-demo/audit'],
      ]);
      const audit = join(work, '.cairn-demo', 'audit');
      const before = await Promise.all(
        ['audit.html', 'audit.md', 'audit.json'].map((f) => readFile(join(audit, f))),
      );
      const audited = await runBuilt(cairn, ['audit', ...auditArgs], { cwd: work });
      expect(audited.code).toBe(0);
      expect(
        await Promise.all(
          ['audit.html', 'audit.md', 'audit.json'].map((f) => readFile(join(audit, f))),
        ),
      ).toEqual(before);

      const stopAsked = performance.now();
      expect(await running.stop('SIGINT')).toEqual({ code: 0, signal: null });
      expect(performance.now() - stopAsked).toBeLessThan(5_000);
      expect(running.stdout().endsWith('\nSIGINT: stopping the network\n✔ stopped\n')).toBe(true);
      expect(running.stderr()).toBe('');
      await expect(fetch(`${urls['mirror-a']}/health`)).rejects.toThrow();
    } finally {
      running.kill();
    }
  });

  it('a SIGTERM sent the moment the running line appears stops it too, with exit 0', async () => {
    const running = await startWaiting();
    try {
      expect(await running.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      expect(running.stdout().endsWith('\nSIGTERM: stopping the network\n✔ stopped\n')).toBe(true);
    } finally {
      running.kill();
    }
  });

  it('refuses a directory it did not make: USAGE, exit 2, nothing touched', async () => {
    const dir = join(work, 'precious');
    await mkdir(dir);
    await writeFile(join(dir, 'keep.txt'), 'mine');
    const result = await demo(['--dir', dir, '--no-wait']);
    expect(result).toEqual({
      code: 2,
      stdout: '',
      stderr: `✘ USAGE: ${dir} exists and was not made by cairn demo; choose another --dir\n`,
    });
    expect(await readdir(dir)).toEqual(['keep.txt']);
  });

  it('an unknown option is USAGE, exit 2', async () => {
    const result = await demo(['--frobnicate']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(
      /^✘ USAGE: cairn demo: .*\(usage: cairn demo \[--dir DIR\] \[--no-wait\]\)\n$/,
    );
  });
});
