/**
 * The origin commands end to end, each run as the built `cairn` in a child process against a
 * real origin (`cairn serve`, itself a child process) over a filesystem store in a temporary
 * directory: keys, init, push, show, the two-person rule, a new publisher, withdraw, gc.
 *
 * The tests run in order and build on each other, as an operator and publishers would.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveDirectory } from '../src/static-server.js';
import { builtBin, runBuilt, type CliResult } from './support/run-cli.js';

const cairn = builtBin('main');

const PASSPHRASES = {
  CAIRN_PASSPHRASE: 'publisher passphrase',
  CAIRN_ROOT_PASSPHRASE: 'root passphrase',
  CAIRN_ONLINE_PASSPHRASE: 'online passphrase',
};

let dir: string;
let origin: string;
let server: ChildProcessWithoutNullStreams | undefined;
let serverLog = '';

/** The child's environment: nothing of this process's CAIRN_* or AWS_* settings leaks in. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '', ...PASSPHRASES, CAIRN_ORIGIN: origin, ...extra };
}

function run(args: readonly string[], extra: Record<string, string> = {}): Promise<CliResult> {
  return runBuilt(cairn, args, { env: env(extra), cwd: dir });
}

/** Runs a command that must succeed with nothing on stderr, and parses its --json output. */
async function json<T = Record<string, unknown>>(args: readonly string[]): Promise<T> {
  const result = await run([...args, '--json']);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as T;
}

async function keyidOf(file: string): Promise<string> {
  return (JSON.parse(await readFile(join(dir, file), 'utf8')) as { keyid: string }).keyid;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

async function writeTree(root: string, files: Record<string, string>): Promise<void> {
  await rm(join(dir, root), { recursive: true, force: true });
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, root, path, '..'), { recursive: true });
    await writeFile(join(dir, root, path), content);
  }
}

/** Every file under `sub`, with its bytes: to show that a refusal changed nothing. */
async function snapshotFiles(sub: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const name of (await readdir(join(dir, sub), { recursive: true })).sort()) {
    const path = join(dir, sub, name);
    if ((await stat(path)).isFile()) files[name] = (await readFile(path)).toString('base64');
  }
  return files;
}

function startServer(): Promise<string> {
  const child = spawn(process.execPath, [cairn, 'serve', '--config', 'origin.json'], {
    cwd: dir,
    env: env(),
  });
  server = child;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" line: ${serverLog}`)), 30_000);
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      serverLog += text;
      // Whole lines only: a chunk may end mid-line.
      for (const line of serverLog.split('\n').slice(0, -1)) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'listening' && entry.url !== undefined) {
          clearTimeout(timer);
          resolve(entry.url);
        }
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`cairn serve exited with ${code}: ${serverLog}`));
    });
  });
}

const V1 = {
  'main.cvd': Array.from({ length: 3000 }, (_, i) => `sig-${i}-0`).join('\n'),
  'daily/a.cld': 'daily 1',
};
const V2 = {
  'main.cvd': Array.from({ length: 3000 }, (_, i) => `sig-${i}-${i === 77 ? 1 : 0}`).join('\n'),
  'new.txt': 'arrived',
};

interface Summary {
  id: string;
  state: string;
  kind: string;
  fromVersion?: number;
  pushedBy: string;
  created: string;
  note?: string;
  targetsVersion?: number;
  comparedTo: number;
  files: {
    path: string;
    change: string;
    length?: number;
    previousLength?: number;
    deltas: { baseVersion: number; length: number }[];
  }[];
  totalBytes: number;
  deltaBytes: number;
  draftSha256?: string;
  signatures: string[];
  threshold: number;
}

const keyids: Record<
  'alice' | 'bob' | 'carol' | 'root1' | 'root2' | 'snapshot' | 'timestamp',
  string
> = {
  alice: '',
  bob: '',
  carol: '',
  root1: '',
  root2: '',
  snapshot: '',
  timestamp: '',
};
const releases: string[] = [];
/** The transparency log cairn init made: its name and verifier key. */
const log = { name: '', key: '' };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cairn-origin-cli-'));
  origin = 'http://127.0.0.1:9'; // replaced once the origin listens
  await writeFile(
    join(dir, 'origin.json'),
    JSON.stringify({
      listen: { host: '127.0.0.1', port: 0 },
      storage: { type: 'fs', directory: './repository' },
      // No scheduled work during the test: what happens is what the commands do.
      schedule: { intervalSeconds: 3600 },
      policy: { retention: { releases: 1, graceSeconds: 0 } },
    }),
  );
});

afterAll(async () => {
  server?.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

describe('cairn keys generate', () => {
  it('writes an encrypted private key (mode 600) and its .pub, and prints the keyid', async () => {
    const result = await run(['keys', 'generate', '--out', 'alice.key']);
    keyids.alice = await keyidOf('alice.key.pub');
    expect(result).toEqual({
      code: 0,
      stdout: [
        `keyid        ${keyids.alice}`,
        'private key  alice.key (encrypted under $CAIRN_PASSPHRASE; keep it to yourself)',
        'public key   alice.key.pub (give this to the operators)',
        '',
      ].join('\n'),
      stderr: '',
    });
    expect(keyids.alice).toMatch(/^[0-9a-f]{64}$/);
    expect((await stat(join(dir, 'alice.key'))).mode & 0o777).toBe(0o600);
    expect(await keyidOf('alice.key')).toBe(keyids.alice);
    expect(await readFile(join(dir, 'alice.key'), 'utf8')).not.toContain('publisher passphrase');
  });

  it('--json prints the keyid and both files', async () => {
    for (const name of ['bob', 'carol'] as const) {
      const out = await json(['keys', 'generate', '--out', `${name}.key`]);
      keyids[name] = await keyidOf(`${name}.key.pub`);
      expect(out).toEqual({
        keyid: keyids[name],
        role: 'publisher',
        privateKey: `${name}.key`,
        publicKey: `${name}.key.pub`,
      });
    }
  });

  it('never overwrites a key file', async () => {
    const before = await readFile(join(dir, 'bob.key'));
    expect(await run(['keys', 'generate', '--out', 'bob.key'])).toEqual({
      code: 1,
      stdout: '',
      stderr:
        '✘ KEY_FILE_INVALID: bob.key: a file exists here and will not be overwritten\n' +
        '  hint: choose another --out, or move the existing file away first\n',
    });
    expect(await readFile(join(dir, 'bob.key'))).toEqual(before);
  });

  it('without its passphrase variable: CONFIG_INVALID naming it, and no file', async () => {
    const result = await run(['keys', 'generate', '--out', 'root.key', '--role', 'root'], {
      CAIRN_ROOT_PASSPHRASE: '',
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      "✘ CONFIG_INVALID: CAIRN_ROOT_PASSPHRASE: set this environment variable to the key file's passphrase\n" +
        '  hint: CAIRN_ROOT_PASSPHRASE is the passphrase of the new key file; passphrases come only from the environment, never from flags (they would show in ps)\n',
    );
    await expect(stat(join(dir, 'root.key'))).rejects.toThrow(/ENOENT/);
  });
});

describe('cairn init', () => {
  it('creates root, online and log keys and root version 1 with both publishers, named', async () => {
    const out = await json([
      'init',
      '--config',
      'origin.json',
      '--root-keys',
      'rootkeys',
      '--publisher',
      'alice.key.pub',
      '--publisher',
      'bobby=bob.key.pub',
    ]);
    keyids.root1 = await keyidOf('rootkeys/root-1.key.pub');
    keyids.root2 = await keyidOf('rootkeys/root-2.key.pub');
    keyids.snapshot = await keyidOf('keys/snapshot.key.pub');
    keyids.timestamp = await keyidOf('keys/timestamp.key.pub');
    const logKeyid = await keyidOf('keys/log.key.pub');
    const logName = `cairn/${logKeyid.slice(0, 16)}/log`;
    expect(out).toEqual({
      storage: join(dir, 'repository'),
      rootVersion: 1,
      expires: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/) as unknown,
      root: {
        threshold: 2,
        keys: [
          { keyid: keyids.root1, file: join('rootkeys', 'root-1.key'), created: true },
          { keyid: keyids.root2, file: join('rootkeys', 'root-2.key'), created: true },
        ],
      },
      publishers: {
        threshold: 2,
        keys: [
          { keyid: keyids.alice, name: 'alice', file: 'alice.key.pub' },
          { keyid: keyids.bob, name: 'bobby', file: 'bob.key.pub' },
        ],
      },
      snapshot: { keyid: keyids.snapshot, file: join(dir, 'keys', 'snapshot.key'), created: true },
      timestamp: {
        keyid: keyids.timestamp,
        file: join(dir, 'keys', 'timestamp.key'),
        created: true,
      },
      log: {
        name: logName,
        key: expect.stringMatching(
          new RegExp(`^${logName.replaceAll('/', '\\/')}\\+[0-9a-f]{8}\\+[A-Za-z0-9+/]{44}$`),
        ) as unknown,
        keyid: logKeyid,
        file: join(dir, 'keys', 'log.key'),
        created: true,
      },
    });
    // Root version 1 declares the log and names the publishers; the log holds it already.
    const root = JSON.parse(
      await readFile(join(dir, 'repository', 'metadata', '1.root.json'), 'utf8'),
    ) as { signed: { keys: Record<string, Record<string, unknown>>; 'x-cairn-log': unknown } };
    expect(root.signed['x-cairn-log']).toEqual({ key: (out.log as { key: string }).key });
    expect(root.signed.keys[keyids.alice]?.['x-cairn-name']).toBe('alice');
    expect(root.signed.keys[keyids.bob]?.['x-cairn-name']).toBe('bobby');
    const checkpoint = await readFile(join(dir, 'repository', 'log', 'checkpoint'), 'utf8');
    expect(checkpoint.split('\n').slice(0, 2)).toEqual([logName, '1']);
    log.name = logName;
    log.key = (out.log as { key: string }).key;
    const days = (Date.parse(out.expires as string) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(364);
    expect(days).toBeLessThanOrEqual(365);
    expect((await stat(join(dir, 'rootkeys', 'root-1.key'))).mode & 0o777).toBe(0o600);
  });

  it('refuses a store that holds a repository, and touches no key file', async () => {
    const rootKeys = await snapshotFiles('rootkeys');
    const onlineKeys = await snapshotFiles('keys');
    const result = await run([
      'init',
      '--config',
      'origin.json',
      '--root-keys',
      'rootkeys',
      '--publisher',
      'alice.key.pub',
      '--publisher',
      'bob.key.pub',
    ]);
    expect(result).toEqual({
      code: 1,
      stdout: '',
      stderr:
        `✘ REPOSITORY_STATE: ${join(dir, 'repository')} already holds a repository (root version 1); nothing was changed\n` +
        '  hint: `cairn keys` changes the keys of an existing repository; `cairn keys list` shows them\n',
    });
    expect(await snapshotFiles('rootkeys')).toEqual(rootKeys);
    expect(await snapshotFiles('keys')).toEqual(onlineKeys);
    expect(Object.keys(rootKeys)).toEqual([
      'root-1.key',
      'root-1.key.pub',
      'root-2.key',
      'root-2.key.pub',
    ]);
  });

  it('refuses a fresh store when a root key file would be overwritten, and creates nothing', async () => {
    const result = await run(
      [
        'init',
        '--root-keys',
        'rootkeys',
        '--publisher',
        'alice.key.pub',
        '--publisher',
        'bob.key.pub',
      ],
      { CAIRN_STORAGE_DIR: 'other-repository', CAIRN_SNAPSHOT_KEY: 'other/snapshot.key' },
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `✘ KEY_FILE_INVALID: ${join('rootkeys', 'root-1.key')}: a file exists here and will not be overwritten\n` +
        '  hint: choose an empty --root-keys directory, or sign with existing keys: --root-key FILE\n',
    );
    await expect(stat(join(dir, 'other'))).rejects.toThrow(/ENOENT/);
    await expect(stat(join(dir, 'other-repository'))).rejects.toThrow(/ENOENT/);
  });

  it('refuses a publisher name that is not plain or is given twice, and creates nothing', async () => {
    const hint =
      '  hint: name the publisher explicitly: --publisher NAME=PUBFILE, NAME being 1 to 64 of A-Z a-z 0-9 . _ - and unique\n';
    for (const [publisher, failure] of [
      [
        'bad name=bob.key.pub',
        '✘ INVALID_PUBLISHER_NAME: publisher name "bad name": expected 1 to 64 letters, digits, dots, underscores or hyphens\n',
      ],
      [
        'alice=bob.key.pub',
        '✘ INVALID_PUBLISHER_NAME: alice=bob.key.pub: the publisher name "alice" is given twice\n',
      ],
    ] as const) {
      expect(
        await run(
          [
            'init',
            '--root-keys',
            'fresh-rootkeys',
            '--publisher',
            'alice.key.pub',
            '--publisher',
            publisher,
          ],
          { CAIRN_STORAGE_DIR: 'other-repository', CAIRN_SNAPSHOT_KEY: 'other/snapshot.key' },
        ),
      ).toEqual({ code: 1, stdout: '', stderr: failure + hint });
    }
    for (const created of ['other', 'other-repository', 'fresh-rootkeys']) {
      await expect(stat(join(dir, created))).rejects.toThrow(/ENOENT/);
    }
  });

  it('keys list shows each role', async () => {
    const out = await json<{
      root: { version: number; roles: Record<string, { keyids: string[]; threshold: number }> };
      pending: unknown;
      onlineKeyFiles: unknown;
      logKeyFile: unknown;
    }>(['keys', 'list', '--config', 'origin.json']);
    expect(out.root.version).toBe(1);
    expect(out.root).toMatchObject({
      publisherNames: { [keyids.alice]: 'alice', [keyids.bob]: 'bobby' },
      log: log.key,
    });
    expect(out.logKeyFile).toEqual({
      file: join(dir, 'keys', 'log.key'),
      keyid: await keyidOf('keys/log.key.pub'),
      key: log.key,
    });
    const text = await run(['keys', 'list', '--config', 'origin.json']);
    expect(text.stdout).toContain(`targets (publishers): threshold 2\n  ${keyids.alice}  alice\n`);
    expect(text.stdout).toContain(`\ntransparency log: ${log.key}\n`);
    expect(text.stdout).not.toContain('⚠');
    expect(out.root.roles).toEqual({
      root: { keyids: [keyids.root1, keyids.root2], threshold: 2 },
      targets: { keyids: [keyids.alice, keyids.bob], threshold: 2 },
      snapshot: { keyids: [keyids.snapshot], threshold: 1 },
      timestamp: { keyids: [keyids.timestamp], threshold: 1 },
    });
    expect(out.pending).toBeNull();
    expect(out.onlineKeyFiles).toEqual({
      snapshot: { file: join(dir, 'keys', 'snapshot.key'), keyid: keyids.snapshot },
      timestamp: { file: join(dir, 'keys', 'timestamp.key'), keyid: keyids.timestamp },
    });
  });
});

describe('publishing through cairn serve', () => {
  it('serve listens, and status shows root version 1 and no release', async () => {
    origin = await startServer();
    expect(origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const status = await json(['status']);
    expect(status).toMatchObject({
      initialised: true,
      root: { version: 1 },
      targetsExpiringSoon: false,
      publishers: { keyids: [keyids.alice, keyids.bob], threshold: 2 },
      pendingPublications: 0,
      log: { origin: log.name, size: 1 },
    });
    expect(Object.keys(status).sort()).toEqual([
      'initialised',
      'log',
      'pendingPublications',
      'publishers',
      'root',
      'targetsExpiringSoon',
    ]);
  });

  it('push prints the release and what it changes, with no progress bar off a terminal', async () => {
    await writeTree('release', V1);
    const result = await run(['push', 'release', '--key', 'alice.key', '--note', 'first']);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    const id = /^✔ pushed release (\S+)\n/.exec(result.stdout)?.[1] ?? '';
    releases.push(id);
    const shown = await json<Summary>(['release', 'show', id, '--key', 'bob.key']);
    const mainBytes = V1['main.cvd'].length;
    expect(shown).toEqual({
      id,
      state: 'draft',
      kind: 'upload',
      pushedBy: keyids.alice,
      created: shown.created,
      note: 'first',
      targetsVersion: 1,
      comparedTo: 0,
      files: [
        { path: 'daily/a.cld', change: 'added', length: 7, sha256: sha256('daily 1'), deltas: [] },
        {
          path: 'main.cvd',
          change: 'added',
          length: mainBytes,
          sha256: sha256(V1['main.cvd']),
          deltas: [],
        },
      ],
      totalBytes: mainBytes + 7,
      deltaBytes: 0,
      draftSha256: shown.draftSha256,
      signatures: [],
      threshold: 2,
    });
    expect(result.stdout).toBe(
      [
        `✔ pushed release ${id}`,
        `release     ${id}`,
        'state       draft (targets version 1): waiting for signatures',
        `pushed by   ${keyids.alice.slice(0, 12)} at ${shown.created}`,
        'note        first',
        'changes     2 added, 0 changed, 0 removed, 0 unchanged (against targets version 0)',
        'size        31.1 KiB, deltas 0 B',
        'signatures  0 of 2',
        `draft       sha256 ${shown.draftSha256}`,
        'files',
        '  added  daily/a.cld       7 B',
        '  added  main.cvd     31.1 KiB',
        `next: 2 publishers sign it: cairn sign ${id} --dir DIR`,
        '',
      ].join('\n'),
    );
  });

  it("refuses a push with a key that is not a publisher's: UNKNOWN_KEY, exit 1", async () => {
    expect(await run(['push', 'release', '--key', 'carol.key'])).toEqual({
      code: 1,
      stdout: '',
      stderr:
        `✘ UNKNOWN_KEY: ${keyids.carol} is not the key of any publisher\n` +
        '  hint: this key is not a publisher here: give its .pub file to an operator for `cairn keys add-publisher`\n',
    });
  });

  it('sign by alice is not enough; sign by bob publishes', async () => {
    const id = releases[0] ?? '';
    expect(await run(['sign', id, '--dir', 'release', '--key', 'alice.key'])).toEqual({
      code: 0,
      stdout: `✔ signed release ${id}: 1 of 2 signatures; 1 more needed\n`,
      stderr: '',
    });
    expect(await run(['sign', id, '--dir', 'release', '--key', 'bob.key'])).toEqual({
      code: 0,
      stdout: `✔ signed release ${id}: 2 of 2 signatures; published as targets version 1 (snapshot version 1)\n`,
      stderr: '',
    });
    const status = await json(['status']);
    expect(status).toMatchObject({
      root: { version: 1 },
      targets: { version: 1 },
      snapshot: { version: 1 },
      timestamp: { version: 1 },
    });
    expect(status.draft).toBeUndefined();
    expect((await json<Summary>(['release', 'show', id, '--key', 'alice.key'])).state).toBe(
      'published',
    );
  });

  it('sign refuses when the local copy differs from the draft', async () => {
    await writeTree('changed', V2);
    await run(['push', 'changed', '--key', 'bob.key']);
    const draft = (await json<{ draft: { id: string } }>(['status'])).draft.id;
    const result = await run(['sign', draft, '--dir', 'release', '--key', 'alice.key']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      new RegExp(
        `^✘ HASH_MISMATCH: refusing to sign release ${draft}: .*\\n  hint: --dir must hold exactly the release's files`,
      ),
    );
    expect(
      (await json<Summary>(['release', 'show', draft, '--key', 'alice.key'])).signatures,
    ).toEqual([]);
  });

  it('a new publisher added with keys add-publisher can push and sign at once', async () => {
    expect(
      await run([
        'keys',
        'add-publisher',
        'carol.key.pub',
        '--config',
        'origin.json',
        '--root-key',
        'rootkeys/root-1.key',
        '--root-key',
        'rootkeys/root-2.key',
      ]),
    ).toEqual({
      code: 0,
      stdout:
        `✔ root version 2 is signed and pending: add publisher carol ${keyids.carol}\n` +
        'the origin publishes it on its next scheduled run (every 3600s); --publish-now publishes it at once\n',
      stderr: '',
    });
    expect(await json(['status'])).toMatchObject({
      root: { version: 1 },
      pendingRoot: { version: 2, reason: `add publisher carol ${keyids.carol}` },
      publishers: { keyids: [keyids.alice, keyids.bob, keyids.carol], threshold: 2 },
    });

    const pushed = await json<Summary>(['push', 'changed', '--key', 'carol.key']);
    releases.push(pushed.id);
    expect(
      pushed.files.map((f) => [
        f.path,
        f.change,
        f.length,
        f.previousLength,
        f.deltas.map((d) => d.baseVersion),
      ]),
    ).toEqual([
      ['daily/a.cld', 'removed', undefined, 7, []],
      ['main.cvd', 'changed', V2['main.cvd'].length, V1['main.cvd'].length, [1]],
      ['new.txt', 'added', 7, undefined, []],
    ]);
    expect(await run(['sign', pushed.id, '--dir', 'changed', '--key', 'carol.key'])).toEqual({
      code: 0,
      stdout: `✔ signed release ${pushed.id}: 1 of 2 signatures; 1 more needed\n`,
      stderr: '',
    });
    const signed = await json(['sign', pushed.id, '--dir', 'changed', '--key', 'alice.key']);
    expect(signed).toEqual({
      id: pushed.id,
      keyid: keyids.alice,
      counted: true,
      signatures: 2,
      threshold: 2,
      published: { targetsVersion: 2, snapshotVersion: 2 },
      draftSha256: pushed.draftSha256,
    });
    const status = await json(['status']);
    expect(status).toMatchObject({ root: { version: 2 }, targets: { version: 2 } });
    expect(status.pendingRoot).toBeUndefined();
  });

  it('withdraw --to 1 drafts version 1 again; signed, it is published as version 3', async () => {
    const drafted = await json<Summary>(['withdraw', '--to', '1', '--key', 'bob.key']);
    releases.push(drafted.id);
    expect(drafted).toMatchObject({
      kind: 'withdraw',
      fromVersion: 1,
      state: 'draft',
      targetsVersion: 3,
    });
    await run(['sign', drafted.id, '--dir', 'release', '--key', 'bob.key']);
    const result = await run(['sign', drafted.id, '--dir', 'release', '--key', 'carol.key']);
    expect(result.stdout).toBe(
      `✔ signed release ${drafted.id}: 2 of 2 signatures; published as targets version 3 (snapshot version 3)\n`,
    );
  });

  it('gc keeps the retained version and removes what only older ones used', async () => {
    const report = await json<{
      retainedVersions: number[];
      deletedBlobs: string[];
      deletedReleases: string[];
    }>(['gc', '--config', 'origin.json']);
    expect(report.retainedVersions).toEqual([3]);
    // Version 2's files and its delta; version 3 is version 1's content, which stays.
    expect(report.deletedBlobs.filter((k) => !k.startsWith('targets/_delta/')).sort()).toEqual(
      [
        `targets/${sha256(V2['main.cvd'])}.main.cvd`,
        `targets/${sha256(V2['new.txt'])}.new.txt`,
      ].sort(),
    );
    expect(report.deletedBlobs).toHaveLength(3);
    expect(await run(['gc', '--config', 'origin.json'])).toEqual({
      code: 0,
      stdout: '✔ kept targets version 3; deleted 0 blob(s) and the staging of 0 release(s)\n',
      stderr: '',
    });
  });

  it('keys rotate-online --publish-now publishes the new root at once', async () => {
    const generated = await json<{ keyid: string }>([
      'keys',
      'generate',
      '--out',
      'keys/timestamp-2.key',
      '--role',
      'online',
    ]);
    expect(
      await run([
        'keys',
        'rotate-online',
        'timestamp',
        'keys/timestamp-2.key',
        '--config',
        'origin.json',
        '--root-key',
        'rootkeys/root-1.key',
        '--root-key',
        'rootkeys/root-2.key',
        '--publish-now',
      ]),
    ).toEqual({
      code: 0,
      stdout:
        `✔ published root version 3: rotate the timestamp key to ${generated.keyid}\n` +
        'next: point keys.timestamp in the configuration at the new key file and restart the origin\n',
      stderr: '',
    });
    expect(await json(['status'])).toMatchObject({ root: { version: 3 }, targets: { version: 3 } });
    const list = await run(['keys', 'list', '--config', 'origin.json']);
    expect(list.stdout).toContain(`timestamp: threshold 1\n  ${generated.keyid}\n`);
    expect(
      list.stdout.endsWith(
        `\n⚠ keys.timestamp (${join(dir, 'keys', 'timestamp.key')}) holds key ${keyids.timestamp}, which root does not list for timestamp\n`,
      ),
    ).toBe(true);
  });

  it('a TUF client follows roots 1 to 3 and installs what the publishers signed', async () => {
    const repository = await serveDirectory(join(dir, 'repository'));
    try {
      const client = builtBin('tuf-conformance-client');
      const metadataDir = join(dir, 'client-metadata');
      await mkdir(metadataDir);
      const init = await runBuilt(client, [
        '--metadata-dir',
        metadataDir,
        'init',
        join(dir, 'repository', 'metadata', '1.root.json'),
      ]);
      expect(init).toEqual({ code: 0, stdout: '', stderr: '' });
      const download = await runBuilt(client, [
        '--metadata-dir',
        metadataDir,
        '--metadata-url',
        new URL('metadata/', repository.url).href,
        '--target-base-url',
        new URL('targets/', repository.url).href,
        '--target-dir',
        join(dir, 'installed'),
        '--target-name',
        'main.cvd',
        'download',
      ]);
      expect(download.stderr).toBe('');
      expect(download.code).toBe(0);
      expect(await readFile(join(dir, 'installed', 'main.cvd'), 'utf8')).toBe(V1['main.cvd']);
      expect(JSON.parse(await readFile(join(metadataDir, 'root.json'), 'utf8'))).toMatchObject({
        signed: { version: 3 },
      });
    } finally {
      await repository.close();
    }
  });

  it('keys revoke-publisher refuses the key at once; the new root waits for a release', async () => {
    const rootKeys = ['--root-key', 'rootkeys/root-1.key', '--root-key', 'rootkeys/root-2.key'];
    expect(
      await run([
        'keys',
        'revoke-publisher',
        'bob.key.pub',
        '--config',
        'origin.json',
        ...rootKeys,
      ]),
    ).toEqual({
      code: 0,
      stdout:
        `✔ root version 4 is signed and pending: revoke publisher ${keyids.bob}\n` +
        'it waits for the next release: the current one lacks the signatures the new root requires; the next release the publishers sign publishes it\n',
      stderr: '',
    });
    const refused = await run(['push', 'release', '--key', 'bob.key']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^✘ REVOKED_KEY: /);
    expect(refused.stderr).toContain(
      '\n  hint: this key was revoked: ask an operator to add your new key (cairn keys add-publisher)\n',
    );
  });

  it('keys rotate-root signs with the new private keys too, on top of the pending change', async () => {
    const fresh: string[] = [];
    for (const name of ['new-root-1', 'new-root-2']) {
      fresh.push(
        (
          await json<{ keyid: string }>([
            'keys',
            'generate',
            '--out',
            `rootkeys/${name}.key`,
            '--role',
            'root',
          ])
        ).keyid,
      );
    }
    const out = await json([
      'keys',
      'rotate-root',
      '--new-root-key',
      'rootkeys/new-root-1.key',
      '--new-root-key',
      'rootkeys/new-root-2.key.pub',
      '--threshold',
      '1',
      '--config',
      'origin.json',
      '--root-key',
      'rootkeys/root-1.key',
      '--root-key',
      'rootkeys/root-2.key',
    ]);
    expect(out).toEqual({
      rootVersion: 4,
      reason: `revoke publisher ${keyids.bob}; rotate the root keys to ${fresh.map((k) => k.slice(0, 12)).join(', ')} (threshold 1)`,
      expires: out.expires,
      publishable: false,
      published: false,
    });
    const list = await json<{ pending: { roles: Record<string, unknown> } }>([
      'keys',
      'list',
      '--config',
      'origin.json',
    ]);
    expect(list.pending.roles).toMatchObject({
      root: { keyids: fresh, threshold: 1 },
      targets: { keyids: [keyids.alice, keyids.carol], threshold: 2 },
    });
  });

  it('serve stops on SIGTERM with exit 0', async () => {
    const child = server;
    if (child === undefined) throw new Error('no server');
    child.removeAllListeners('exit');
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    server = undefined;
    expect(serverLog).toMatch(/"msg":"stopped"/);
  });
});

describe('usage errors exit 2 with the synopsis', () => {
  it.each([
    [
      ['push', '--frobnicate'],
      'cairn push: unknown option --frobnicate',
      'cairn push DIR [--note TEXT] [--origin URL] [--key FILE] [--json]',
    ],
    [
      ['sign'],
      'cairn sign: missing ID',
      'cairn sign ID [--dir DIR] [--origin URL] [--key FILE] [--json]',
    ],
    [
      ['withdraw', '--to', 'zero'],
      'cairn withdraw: --to: expected a whole number of at least 1, received "zero"',
      'cairn withdraw --to VERSION [--note TEXT] [--origin URL] [--key FILE] [--json]',
    ],
    [
      ['release'],
      'cairn release: missing a subcommand (show)',
      'cairn release show ID [--origin URL] [--key FILE] [--json]',
    ],
    [
      ['status', 'now'],
      'cairn status: unexpected argument "now"',
      'cairn status [--origin URL] [--json]',
    ],
    [['gc', '--config'], 'cairn gc: --config needs a value', 'cairn gc [--config FILE] [--json]'],
    [
      ['keys', 'rotate-online', 'bogus', 'new.key', '--root-key', 'r.key'],
      'cairn keys rotate-online: expected the role snapshot or timestamp, received "bogus"',
      'cairn keys rotate-online snapshot|timestamp NEWKEYFILE --root-key FILE ... [--config FILE] [--publish-now] [--json]',
    ],
  ])('cairn %j', async (args, message, synopsis) => {
    expect(await run(args)).toEqual({
      code: 2,
      stdout: '',
      stderr: `✘ USAGE: ${message}\n  hint: usage: ${synopsis}\n`,
    });
  });

  it('a missing --key without CAIRN_KEY is a usage error naming both', async () => {
    const result = await run(['push', 'release']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /^✘ USAGE: cairn push: missing --key FILE \(or set CAIRN_KEY\)\n/,
    );
  });

  it('--help prints the command usage, exit 0', async () => {
    const result = await run(['sign', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: cairn sign ID \[--dir DIR\]/);
  });
});
