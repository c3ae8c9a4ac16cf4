/**
 * `cairn mirror serve` and `cairn mirror sync` end to end: the built `cairn` in child processes
 * over a repository the origin published into a directory (test/support/published-repository.ts),
 * spoken to over real HTTP on 127.0.0.1.
 *
 * The sync tests run in order and build on each other, as a mirror's life does: a first copy,
 * a new release, a watch, a mirror that fills itself, an upstream gone.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startMinio, uniqueBucketName } from '@cairn/storage/testing/minio';
import { publishedRepository, type PublishedRepository } from './support/published-repository.js';
import { RELEASE_1, RELEASE_2 } from './support/releases.js';
import { builtBin, runBuilt, type CliResult } from './support/run-cli.js';

const cairn = builtBin('main');

let work: string;
let repo: PublishedRepository;
let rootFile: string;

const sha256 = (bytes: string | Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Nothing of this process's CAIRN_* or AWS_* settings leaks into a child. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '', ...extra };
}

function run(args: readonly string[], extra: Record<string, string> = {}): Promise<CliResult> {
  return runBuilt(cairn, args, { env: env(extra), cwd: work });
}

interface Mirror {
  readonly url: string;
  /** The line it printed when it started listening. */
  readonly line: string;
  stdout(): string;
  stderr(): string;
  /** Takes it out of the children killed after each test: it serves the whole suite. */
  keep(): void;
  /** Sends `signal` and resolves with the exit. */
  stop(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The children a test started, killed after it whatever happened; not the suite's upstream. */
const children = new Set<ChildProcessWithoutNullStreams>();

/** Starts `cairn mirror serve ARGS` and resolves once it prints the line with its URL. */
function serve(args: readonly string[], extra: Record<string, string> = {}): Promise<Mirror> {
  const child = spawn(process.execPath, [cairn, 'mirror', 'serve', ...args], {
    cwd: work,
    env: env(extra),
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL line: ${stdout}${stderr}`)), 30_000);
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
      const line = stdout.split('\n')[0] ?? '';
      const url = / serving (http:\/\/127\.0\.0\.1:\d+) /.exec(line)?.[1];
      if (stdout.includes('\n') && url !== undefined) {
        clearTimeout(timer);
        resolve({
          url,
          line,
          stdout: () => stdout,
          stderr: () => stderr,
          keep: () => children.delete(child),
          stop: (signal) => {
            child.kill(signal);
            return exited;
          },
        });
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`cairn mirror serve exited with ${code}: ${stdout}${stderr}`));
    });
  });
}

/** Every file under `dir` (relative, `/`-separated) with its sha256: what a mirror holds. */
async function files(dir: string, except?: string): Promise<Record<string, string>> {
  const found: Record<string, string> = {};
  for (const name of (await readdir(dir, { recursive: true })).sort()) {
    if (except !== undefined && name.startsWith(except)) continue;
    const path = join(dir, name);
    if ((await stat(path)).isFile())
      found[name.split('\\').join('/')] = sha256(await readFile(path));
  }
  return found;
}

async function totalBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir, { recursive: true })) {
    const info = await stat(join(dir, name));
    if (info.isFile()) total += info.size;
  }
  return total;
}

/** The headers of an answer but Date (and the connection's own), for exact comparison. */
function headersOf(response: Response): Record<string, string> {
  const all = Object.fromEntries(response.headers);
  delete all.date;
  delete all.connection;
  delete all['keep-alive'];
  return all;
}

async function timestampVersion(url: string): Promise<number> {
  const response = await fetch(`${url}/health`);
  const body = (await response.json()) as { timestamp?: { version: number } };
  return body.timestamp?.version ?? 0;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'cairn-mirror-cli-'));
  repo = await publishedRepository(join(work, 'origin-store'));
  await repo.publish(RELEASE_1);
  rootFile = join(work, 'root.json');
  await copyFile(join(repo.dir, 'metadata', '1.root.json'), rootFile);
});

afterEach(() => {
  for (const child of children) child.kill('SIGKILL');
});

afterAll(async () => {
  await repo.close();
  await rm(work, { recursive: true, force: true });
});

describe('cairn mirror serve', () => {
  it('serves a directory with the edge’s HTTP semantics until SIGTERM, then exits 0', async () => {
    // The flag wins over its variable; a variable without a flag applies.
    const mirror = await serve(['--dir', repo.dir, '--listen', '127.0.0.1:0', '--name', 'lan-1'], {
      CAIRN_MIRROR_NAME: 'from-environment',
      CAIRN_TIMESTAMP_MAX_AGE: '45',
    });
    expect(mirror.line).toBe(`✔ mirror lan-1 serving ${mirror.url} from ${repo.dir} (direct)`);

    const timestampBytes = await readFile(join(repo.dir, 'metadata', 'timestamp.json'));
    const timestamp = JSON.parse(timestampBytes.toString('utf8')) as {
      signed: { version: number; expires: string };
    };
    const health = await fetch(`${mirror.url}/health`);
    expect(health.status).toBe(200);
    expect(headersOf(health)).toEqual({
      'access-control-allow-origin': '*',
      'access-control-expose-headers':
        'ETag,Last-Modified,Content-Length,Content-Range,Accept-Ranges,Retry-After,X-Cairn-Mirror',
      'cache-control': 'no-store',
      'content-length': expect.any(String) as string,
      'content-type': 'application/json',
      'x-cairn-mirror': 'lan-1',
    });
    const status = (await health.json()) as { timestamp: { ageSeconds: number } };
    expect(status).toEqual({
      status: 'ok',
      mirror: 'lan-1',
      mode: 'direct',
      verified: false,
      timestamp: {
        version: 1,
        expires: new Date(timestamp.signed.expires).toISOString(),
        ageSeconds: status.timestamp.ageSeconds,
      },
    });
    expect(Number.isInteger(status.timestamp.ageSeconds)).toBe(true);
    expect(status.timestamp.ageSeconds).toBeGreaterThanOrEqual(0);
    expect(status.timestamp.ageSeconds).toBeLessThan(600);

    const timestampInfo = await repo.store.head('metadata/timestamp.json');
    const tsAnswer = await fetch(`${mirror.url}/metadata/timestamp.json`);
    expect(tsAnswer.status).toBe(200);
    expect(headersOf(tsAnswer)).toEqual({
      'accept-ranges': 'bytes',
      'access-control-allow-origin': '*',
      'access-control-expose-headers':
        'ETag,Last-Modified,Content-Length,Content-Range,Accept-Ranges,Retry-After,X-Cairn-Mirror',
      'cache-control': 'public, max-age=45',
      'content-length': String(timestampBytes.length),
      'content-type': 'application/json',
      etag: `"${timestampInfo?.etag}"`,
      'last-modified': timestampInfo?.lastModified.toUTCString(),
      'x-cairn-mirror': 'lan-1',
      'x-content-type-options': 'nosniff',
    });
    expect(new Uint8Array(await tsAnswer.arrayBuffer())).toEqual(new Uint8Array(timestampBytes));

    const content = RELEASE_1['main.cvd'];
    const key = `targets/${sha256(content)}.main.cvd`;
    const info = await repo.store.head(key);
    expect(info?.size).toBe(Buffer.byteLength(content));
    const target = await fetch(`${mirror.url}/${key}`);
    expect(target.status).toBe(200);
    expect(headersOf(target)).toEqual({
      'accept-ranges': 'bytes',
      'access-control-allow-origin': '*',
      'access-control-expose-headers':
        'ETag,Last-Modified,Content-Length,Content-Range,Accept-Ranges,Retry-After,X-Cairn-Mirror',
      'cache-control': 'public, max-age=31536000, immutable',
      'content-length': String(Buffer.byteLength(content)),
      'content-type': 'application/octet-stream',
      etag: `"${info?.etag}"`,
      'last-modified': info?.lastModified.toUTCString(),
      'x-cairn-mirror': 'lan-1',
      'x-content-type-options': 'nosniff',
    });
    expect(await target.text()).toBe(content);

    const range = await fetch(`${mirror.url}/${key}`, { headers: { Range: 'bytes=4-9' } });
    expect(range.status).toBe(206);
    expect(range.headers.get('content-range')).toBe(`bytes 4-9/${Buffer.byteLength(content)}`);
    expect(await range.text()).toBe(content.slice(4, 10));

    const notModified = await fetch(`${mirror.url}/${key}`, {
      headers: { 'If-None-Match': `"${info?.etag}"` },
    });
    expect(notModified.status).toBe(304);

    // The origin's private prefix is in the same directory, and never served.
    expect((await readdir(join(repo.dir, '_origin'))).length).toBeGreaterThan(0);
    const privateAnswer = await fetch(`${mirror.url}/_origin/releases`);
    expect(privateAnswer.status).toBe(404);
    expect(privateAnswer.headers.get('cache-control')).toBe('public, max-age=10');

    const post = await fetch(`${mirror.url}/metadata/timestamp.json`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD, OPTIONS');

    expect(await mirror.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(mirror.stdout()).toBe(`${mirror.line}\n`);
    expect(mirror.stderr()).toBe('');
    await expect(fetch(`${mirror.url}/health`)).rejects.toThrow();
  });

  it('SIGINT stops it too, with exit 0; --trusted-root shows in the line and /health', async () => {
    const mirror = await serve([
      '--dir',
      repo.dir,
      '--listen',
      '127.0.0.1:0',
      '--trusted-root',
      rootFile,
    ]);
    expect(mirror.line).toBe(
      `✔ mirror cairn-edge serving ${mirror.url} from ${repo.dir} (direct, metadata verified from the trusted root)`,
    );
    const health = (await (await fetch(`${mirror.url}/health`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ status: 'ok', mirror: 'cairn-edge', verified: true });
    expect(await mirror.stop('SIGINT')).toEqual({ code: 0, signal: null });
    // Only news, no warnings: the metadata verified.
    const log = mirror
      .stderr()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { level: string; event: string });
    expect(log.map(({ level, event }) => `${level} ${event}`)).toEqual(['info verified']);
  });

  it('a port in use is a failure (exit 1) with a hint', async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      expect(
        await run(['mirror', 'serve', '--dir', repo.dir, '--listen', `127.0.0.1:${port}`]),
      ).toEqual({
        code: 1,
        stdout: '',
        stderr: [
          `✘ IO: listen EADDRINUSE: address already in use 127.0.0.1:${port}`,
          `  hint: something else listens on 127.0.0.1:${port}: choose another --listen`,
          '',
        ].join('\n'),
      });
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  const serveUsage = (problem: string) =>
    [
      `✘ USAGE: cairn mirror serve: ${problem}`,
      '  hint: usage: cairn mirror serve (--dir DIR | --s3-bucket BUCKET [--s3-endpoint URL] [--s3-region REGION]) [--listen HOST:PORT] [--name NAME] [--mode direct|pull-through|sync] [--upstream URL] [--trusted-root FILE] [--interval SECONDS] [--timestamp-max-age SECONDS] [--rate-limit PER_MINUTE] [--rate-limit-burst N]',
      '',
    ].join('\n');
  const serveConfig = (problem: string) =>
    [
      `✘ CONFIG_INVALID: ${problem}`,
      '  hint: fix the flag or variable named at the start; cairn mirror serve --help lists them',
      '',
    ].join('\n');

  it.each<[string, string[], Record<string, string>, string]>([
    ['an unknown option', ['--dir', '.', '--bogus'], {}, serveUsage('unknown option --bogus')],
    [
      'no storage',
      [],
      {},
      serveUsage(
        'missing storage: --dir DIR or --s3-bucket BUCKET (or set CAIRN_STORAGE_DIR or CAIRN_S3_BUCKET)',
      ),
    ],
    [
      'two storages',
      ['--dir', '.', '--s3-bucket', 'b'],
      {},
      serveUsage('--dir and --s3-bucket are both given: choose one storage'),
    ],
    [
      'an S3 setting beside a directory',
      [],
      { CAIRN_STORAGE_DIR: '.', CAIRN_S3_REGION: 'auto' },
      serveUsage('CAIRN_S3_REGION is set, but storage is the directory .'),
    ],
    [
      'a bad --listen',
      ['--dir', '.', '--listen', '8787'],
      {},
      serveUsage('--listen: expected HOST:PORT (127.0.0.1:8787, [::1]:8787), received "8787"'),
    ],
    [
      'a bad --mode',
      ['--dir', '.', '--mode', 'sideways'],
      {},
      serveConfig("--mode must be direct, pull-through or sync, received 'sideways'"),
    ],
    [
      'a bad variable',
      ['--dir', '.'],
      { CAIRN_RATE_LIMIT_BURST: 'many' },
      serveConfig("CAIRN_RATE_LIMIT_BURST must be a whole number, received 'many'"),
    ],
    [
      'sync without upstream',
      ['--dir', '.', '--mode', 'sync'],
      {},
      serveConfig('--upstream (or CAIRN_UPSTREAM_URL) is required in sync mode'),
    ],
    [
      '--interval outside sync mode',
      ['--dir', '.', '--interval', '5'],
      {},
      serveUsage('--interval runs the sync job, but the mode is direct'),
    ],
    [
      'a missing trusted root file',
      ['--dir', '.', '--trusted-root', 'nowhere.json'],
      {},
      serveConfig('--trusted-root nowhere.json: no such file'),
    ],
  ])('refuses %s: exit 2, one ✘ line and a hint', async (_name, args, extra, stderr) => {
    expect(await run(['mirror', 'serve', ...args], extra)).toEqual({ code: 2, stdout: '', stderr });
  });

  it('--help prints each usage on standard output, exit 0', async () => {
    const mirror = await run(['mirror', '--help']);
    expect(mirror.code).toBe(0);
    expect(mirror.stderr).toBe('');
    expect(mirror.stdout.split('\n')[0]).toBe('Usage: cairn mirror serve|sync [options]');
    for (const sub of ['serve', 'sync']) {
      const help = await run(['mirror', sub, '--help']);
      expect(help.code).toBe(0);
      expect(help.stderr).toBe('');
      expect(help.stdout.split('\n')[0]).toMatch(new RegExp(`^Usage: cairn mirror ${sub} `));
    }
  });

  it('`cairn mirror` alone and an unknown subcommand are usage errors', async () => {
    const hint = '  hint: usage: cairn mirror serve|sync [options]\n';
    expect(await run(['mirror'])).toEqual({
      code: 2,
      stdout: '',
      stderr: `✘ USAGE: cairn mirror: missing subcommand: serve or sync\n${hint}`,
    });
    expect(await run(['mirror', 'publish'])).toEqual({
      code: 2,
      stdout: '',
      stderr: `✘ USAGE: cairn mirror: unknown subcommand "publish": serve or sync\n${hint}`,
    });
  });
});

describe('cairn mirror sync', () => {
  let upstream: Mirror;
  const copy = () => join(work, 'mirror-copy');

  beforeAll(async () => {
    upstream = await serve(['--dir', repo.dir, '--listen', '127.0.0.1:0', '--name', 'upstream']);
    upstream.keep();
  });
  afterAll(async () => {
    await upstream.stop('SIGTERM');
  });

  const sync = (args: readonly string[] = [], extra: Record<string, string> = {}) =>
    run(['mirror', 'sync', '--upstream', upstream.url, '--trusted-root', rootFile, ...args], extra);

  it('copies the repository into an empty directory, which a second mirror then serves', async () => {
    const result = await sync(['--dir', copy(), '--json']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    // Everything clients read, byte for byte, and nothing of the origin's private prefix.
    const published = await files(repo.dir, '_origin');
    expect(await files(copy())).toEqual(published);
    expect(JSON.parse(result.stdout)).toEqual({
      timestampVersion: 1,
      objectsCopied: Object.keys(published).length,
      bytesCopied: await totalBytes(copy()),
      upToDate: false,
    });

    expect(await sync(['--dir', copy()])).toEqual({
      code: 0,
      stdout: '✔ up to date: timestamp version 1\n',
      stderr: '',
    });

    // Storage from the environment this time.
    const second = await serve(['--listen', '127.0.0.1:0'], { CAIRN_STORAGE_DIR: copy() });
    expect(second.line).toBe(`✔ mirror cairn-edge serving ${second.url} from ${copy()} (direct)`);
    expect(await timestampVersion(second.url)).toBe(1);
    const fromCopy = await fetch(`${second.url}/metadata/timestamp.json`);
    const fromUpstream = await fetch(`${upstream.url}/metadata/timestamp.json`);
    expect(await fromCopy.text()).toBe(await fromUpstream.text());
    expect(await second.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  });

  it('copies only what a new release adds, and says so', async () => {
    const before = await files(copy());
    await repo.publish(RELEASE_2);
    const result = await sync(['--dir', copy()]);
    const after = await files(copy());
    // New files, and timestamp.json rewritten; nothing that was there already is copied again.
    const copied = Object.keys(after).filter((name) => before[name] !== after[name]);
    expect(copied).toContain('metadata/timestamp.json');
    let bytes = 0;
    for (const name of copied) bytes += (await stat(join(copy(), name))).size;
    const kib = (n: number) => (n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KiB`);
    expect(result).toEqual({
      code: 0,
      stdout: `✔ timestamp version 1 → 2: copied ${copied.length} objects, ${kib(bytes)}\n`,
      stderr: '',
    });
    expect(after).toEqual(await files(repo.dir, '_origin'));
    expect(copied.some((name) => name.startsWith('targets/_delta/'))).toBe(true);
  });

  it('--watch runs again after --interval until SIGTERM (exit 0)', async () => {
    const child = spawn(
      process.execPath,
      [
        cairn,
        'mirror',
        'sync',
        '--upstream',
        upstream.url,
        '--trusted-root',
        rootFile,
        '--dir',
        copy(),
        '--watch',
        '--interval',
        '1',
        '--json',
      ],
      { cwd: work, env: env() },
    );
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`two runs expected: ${stdout}${stderr}`)),
        30_000,
      );
      child.stdout.setEncoding('utf8').on('data', (text: string) => {
        stdout += text;
        if (stdout.split('\n').length > 2) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const exit = new Promise((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    child.kill('SIGTERM');
    expect(await exit).toEqual({ code: 0, signal: null });
    const upToDate = {
      timestampVersion: 2,
      previousVersion: 2,
      objectsCopied: 0,
      bytesCopied: 0,
      upToDate: true,
    };
    expect(
      stdout
        .split('\n')
        .slice(0, 2)
        .map((line) => JSON.parse(line) as unknown),
    ).toEqual([upToDate, upToDate]);
    expect(stderr).toBe('');
  });

  it('serve --mode sync --interval fills an empty mirror by itself', async () => {
    const dir = join(work, 'mirror-timer');
    const mirror = await serve([
      '--dir',
      dir,
      '--listen',
      '127.0.0.1:0',
      '--mode',
      'sync',
      '--upstream',
      upstream.url,
      '--trusted-root',
      rootFile,
      '--interval',
      '60',
    ]);
    expect(mirror.line).toBe(
      `✔ mirror cairn-edge serving ${mirror.url} from ${dir} (sync from ${upstream.url}/ every 60s)`,
    );
    const deadline = Date.now() + 30_000;
    while ((await timestampVersion(mirror.url)) !== 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(await timestampVersion(mirror.url)).toBe(2);
    // The newest release, with its delta from release 1, and nothing only release 1 used.
    const expected = await files(repo.dir, '_origin');
    for (const name of [
      'metadata/1.snapshot.json',
      'metadata/1.targets.json',
      `targets/${sha256(RELEASE_1['main.cvd'])}.main.cvd`,
      `targets/daily/${sha256(RELEASE_1['daily/a.cld'])}.a.cld`,
    ]) {
      expect(expected).toHaveProperty([name]);
      delete expected[name];
    }
    expect(await files(dir)).toEqual(expected);
    expect(await mirror.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    const log = mirror
      .stderr()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(log.filter((entry) => entry.level !== 'info')).toEqual([]);
    expect(log.filter((entry) => entry.event === 'sync')).toEqual([
      {
        time: expect.any(String) as string,
        level: 'info',
        event: 'sync',
        timestampVersion: 2,
        objectsCopied: Object.keys(await files(dir)).length,
        bytesCopied: await totalBytes(dir),
        upToDate: false,
      },
    ]);
  });

  it('an upstream that does not answer is UPSTREAM_UNAVAILABLE (exit 1), the mirror unchanged', async () => {
    const before = await files(copy());
    const result = await run([
      'mirror',
      'sync',
      '--upstream',
      'http://127.0.0.1:9/',
      '--trusted-root',
      rootFile,
      '--dir',
      copy(),
    ]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    const [line, hint, end] = result.stderr.split('\n');
    expect(line).toMatch(/^✘ UPSTREAM_UNAVAILABLE: /);
    expect(hint).toBe(
      '  hint: check --upstream and that it serves metadata/timestamp.json; the mirror still serves what it had',
    );
    expect(end).toBe('');
    expect(await files(copy())).toEqual(before);
  });

  it('syncs into an S3 bucket and serves from it, credentials from AWS_*', async () => {
    const minio = await startMinio({ log: () => undefined });
    try {
      const bucket = uniqueBucketName('mirror');
      await minio.createBucket(bucket);
      const credentials = {
        AWS_ACCESS_KEY_ID: minio.accessKeyId,
        AWS_SECRET_ACCESS_KEY: minio.secretAccessKey,
      };
      const s3 = [
        '--s3-bucket',
        bucket,
        '--s3-endpoint',
        minio.endpoint,
        '--s3-region',
        minio.region,
      ];
      const result = await sync([...s3, '--json'], credentials);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ timestampVersion: 2, upToDate: false });

      // The same storage from the origin's variables.
      const mirror = await serve(['--listen', '127.0.0.1:0'], {
        CAIRN_S3_BUCKET: bucket,
        CAIRN_S3_ENDPOINT: minio.endpoint,
        CAIRN_S3_REGION: minio.region,
        ...credentials,
      });
      expect(mirror.line).toBe(
        `✔ mirror cairn-edge serving ${mirror.url} from s3://${bucket} at ${minio.endpoint} (direct)`,
      );
      expect(await timestampVersion(mirror.url)).toBe(2);
      const content = RELEASE_2['main.cvd'];
      const target = await fetch(`${mirror.url}/targets/${sha256(content)}.main.cvd`);
      expect(target.status).toBe(200);
      expect(await target.text()).toBe(content);
      expect(await mirror.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      expect(mirror.stderr()).toBe('');
    } finally {
      await minio.stop();
    }
  });

  const syncUsage = (problem: string) =>
    [
      `✘ USAGE: cairn mirror sync: ${problem}`,
      '  hint: usage: cairn mirror sync --upstream URL --trusted-root FILE (--dir DIR | --s3-bucket BUCKET [--s3-endpoint URL] [--s3-region REGION]) [--watch --interval SECONDS] [--json]',
      '',
    ].join('\n');

  it.each<[string, string[], string]>([
    [
      'no upstream',
      ['mirror', 'sync', '--dir', '.'],
      syncUsage('missing --upstream URL (or set CAIRN_UPSTREAM_URL)'),
    ],
    [
      'no trusted root',
      ['mirror', 'sync', '--dir', '.', '--upstream', 'http://127.0.0.1:9/'],
      syncUsage("missing --trusted-root FILE (or set CAIRN_TRUSTED_ROOT to the root's JSON)"),
    ],
    [
      '--watch without --interval',
      [
        'mirror',
        'sync',
        '--dir',
        '.',
        '--upstream',
        'http://127.0.0.1:9/',
        '--trusted-root',
        'root.json',
        '--watch',
      ],
      syncUsage('--watch needs --interval SECONDS'),
    ],
    [
      'an upstream that is not a URL',
      ['mirror', 'sync', '--dir', '.', '--upstream', 'ftp://x/', '--trusted-root', 'root.json'],
      [
        "✘ CONFIG_INVALID: --upstream must be an http(s) URL, received 'ftp://x/'",
        '  hint: fix the flag or variable named at the start; cairn mirror sync --help lists them',
        '',
      ].join('\n'),
    ],
  ])('refuses %s: exit 2', async (_name, args, stderr) => {
    expect(await run(args)).toEqual({ code: 2, stdout: '', stderr });
  });
});
