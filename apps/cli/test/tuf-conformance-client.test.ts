/**
 * The built cairn-tuf-client against a real signed repository over HTTP on 127.0.0.1, driven
 * with the command lines the tuf-conformance suite uses (client_runner.py).
 */
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { utf8 } from '@cairn/verify/encoding';
import { builtBin, runBuilt, type CliResult } from './support/run-cli.js';
import {
  serveDirectory,
  writeSignedRepository,
  type RepositoryServer,
  type SignedRepository,
} from './support/signed-repository.js';

const HELLO = utf8('hello, cairn\n');
const NESTED = utf8('a signature database, in a directory\n');
const cli = builtBin('tuf-conformance-client');

let work: string;
let repo: SignedRepository;
let server: RepositoryServer;
let metadataUrl: string;
let targetBaseUrl: string;
let metadataDir: string;
let targetDir: string;
let trustedRoot: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'cairn-cli-'));
  repo = await writeSignedRepository(join(work, 'repo'), {
    'hello.txt': HELLO,
    'dir/file.txt': NESTED,
  });
  server = await serveDirectory(repo.dir);
  metadataUrl = `${server.origin}/metadata/`;
  targetBaseUrl = `${server.origin}/targets/`;
  trustedRoot = join(repo.dir, 'metadata', '1.root.json');
});

afterAll(async () => {
  await server.close();
  await rm(work, { recursive: true, force: true });
});

let clientCount = 0;
beforeEach(() => {
  clientCount++;
  metadataDir = join(work, `client-${clientCount}`, 'metadata');
  targetDir = join(work, `client-${clientCount}`, 'targets');
  server.requests.length = 0;
  server.overrides.clear();
});

function served(name: string): Uint8Array {
  const bytes = repo.metadata.get(name);
  if (bytes === undefined) throw new Error(`the repository has no ${name}`);
  return bytes;
}

async function filesIn(dir: string): Promise<Record<string, Uint8Array>> {
  const out: Record<string, Uint8Array> = {};
  for (const name of (await readdir(dir)).sort()) {
    out[name] = new Uint8Array(await readFile(join(dir, name)));
  }
  return out;
}

const requested = () => server.requests.map((r) => `${r.status} ${r.path}`);

async function init(): Promise<void> {
  const result = await runBuilt(cli, ['--metadata-dir', metadataDir, 'init', trustedRoot]);
  expect(result).toEqual({ code: 0, stdout: '', stderr: '' });
}

function download(...names: string[]): Promise<CliResult> {
  // The flag order of tuf-conformance's client_runner.py, --target-name repeated.
  return runBuilt(cli, [
    '--metadata-url',
    metadataUrl,
    '--metadata-dir',
    metadataDir,
    ...names.flatMap((n) => ['--target-name', n]),
    '--target-dir',
    targetDir,
    '--target-base-url',
    targetBaseUrl,
    'download',
  ]);
}

describe('cairn-tuf-client init', () => {
  it('stores the trusted root byte for byte as root.json, without the network', async () => {
    await init();
    expect(await filesIn(metadataDir)).toEqual({ 'root.json': served('1.root.json') });
    expect(server.requests).toEqual([]);
  });

  it('exits 1 and writes nothing when the file is not a root', async () => {
    const notRoot = join(repo.dir, 'metadata', 'timestamp.json');
    const result = await runBuilt(cli, ['--metadata-dir', metadataDir, 'init', notRoot]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      '✘ WRONG_TYPE: trusted root: expected _type root, received "timestamp"\n',
    );
    await expect(readdir(metadataDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('exits 1 with IO when the trusted root file does not exist', async () => {
    const missing = join(work, 'no-such-root.json');
    const result = await runBuilt(cli, ['--metadata-dir', metadataDir, 'init', missing]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`✘ IO: ENOENT: no such file or directory, open '${missing}'\n`);
  });
});

describe('cairn-tuf-client refresh', () => {
  it('fetches root v2 (404), timestamp, snapshot v1, targets v1 and stores the exact bytes', async () => {
    await init();
    const result = await runBuilt(cli, [
      '--metadata-url',
      metadataUrl,
      '--metadata-dir',
      metadataDir,
      'refresh',
    ]);
    expect(result).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(requested()).toEqual([
      '404 /metadata/2.root.json',
      '200 /metadata/timestamp.json',
      '200 /metadata/1.snapshot.json',
      '200 /metadata/1.targets.json',
    ]);
    expect(await filesIn(metadataDir)).toEqual({
      'root.json': served('1.root.json'),
      'snapshot.json': served('1.snapshot.json'),
      'targets.json': served('1.targets.json'),
      'timestamp.json': served('timestamp.json'),
    });
  });

  it('accepts flags after the command', async () => {
    await init();
    const result = await runBuilt(cli, [
      'refresh',
      '--metadata-dir',
      metadataDir,
      '--metadata-url',
      metadataUrl,
    ]);
    expect(result).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('exits 1 with FETCH_FAILED when the metadata URL is unreachable, keeping only root', async () => {
    await init();
    const closed = await serveDirectory(repo.dir);
    await closed.close();
    const url = `${closed.origin}/metadata/`;
    const result = await runBuilt(cli, [
      '--metadata-url',
      url,
      '--metadata-dir',
      metadataDir,
      'refresh',
    ]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(
      new RegExp(`^✘ FETCH_FAILED: GET ${url}2\\.root\\.json: fetch failed: .*ECONNREFUSED.*\\n$`),
    );
    expect(await filesIn(metadataDir)).toEqual({ 'root.json': served('1.root.json') });
  });

  it('exits 1 with NOT_FOUND when the repository has no timestamp there', async () => {
    await init();
    const result = await runBuilt(cli, [
      '--metadata-url',
      `${server.origin}/elsewhere/`,
      '--metadata-dir',
      metadataDir,
      'refresh',
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `✘ NOT_FOUND: GET ${server.origin}/elsewhere/timestamp.json: HTTP 404 Not Found\n`,
    );
    expect(requested()).toEqual(['404 /elsewhere/2.root.json', '404 /elsewhere/timestamp.json']);
  });

  it('reads the clock faketime gives it: two weeks on, the root has expired', async () => {
    await init();
    const inTwoWeeks = new Date(Date.now() + 14 * 86_400_000).toISOString();
    // Python's str(datetime), as client_runner.py passes it: 2030-01-02 03:04:05.123000+00:00
    const faketime = `${inTwoWeeks.slice(0, 10)} ${inTwoWeeks.slice(11, 23)}000+00:00`;
    const args = ['--metadata-url', metadataUrl, '--metadata-dir', metadataDir, 'refresh'];
    const result = await runBuilt(cli, args, { faketime });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^✘ EXPIRED: root v1 expired at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z\n$/,
    );
    expect(requested()).toEqual(['404 /metadata/2.root.json']);
    expect(await filesIn(metadataDir)).toEqual({ 'root.json': served('1.root.json') });
  });

  it('exits 1 with USAGE when --metadata-url is missing', async () => {
    await init();
    const result = await runBuilt(cli, ['--metadata-dir', metadataDir, 'refresh']);
    expect(result).toEqual({
      code: 1,
      stdout: '',
      stderr: '✘ USAGE: missing --metadata-url (see cairn-tuf-client --help)\n',
    });
    expect(server.requests).toEqual([]);
  });
});

describe('cairn-tuf-client download', () => {
  it('downloads a verified target, and a second run does not download it again', async () => {
    await init();
    const first = await download('hello.txt');
    expect(first).toEqual({
      code: 0,
      stdout: `downloaded: hello.txt -> ${join(targetDir, 'hello.txt')}\n`,
      stderr: '',
    });
    expect(requested()).toEqual([
      '404 /metadata/2.root.json',
      '200 /metadata/timestamp.json',
      '200 /metadata/1.snapshot.json',
      '200 /metadata/1.targets.json',
      `200 ${repo.targetUrlPath('hello.txt')}`,
    ]);
    expect(await filesIn(targetDir)).toEqual({ 'hello.txt': HELLO });
    const mtime = (await stat(join(targetDir, 'hello.txt'))).mtimeMs;

    server.requests.length = 0;
    const second = await download('hello.txt');
    expect(second).toEqual({
      code: 0,
      stdout: `up to date: hello.txt -> ${join(targetDir, 'hello.txt')}\n`,
      stderr: '',
    });
    // Timestamp unchanged: snapshot and targets come from disk, the target from the cache.
    expect(requested()).toEqual(['404 /metadata/2.root.json', '200 /metadata/timestamp.json']);
    expect(await filesIn(targetDir)).toEqual({ 'hello.txt': HELLO });
    expect((await stat(join(targetDir, 'hello.txt'))).mtimeMs).toBe(mtime);
  });

  it('fetches a target with a / in its name from {dir}/{hash}.{name}, stored as one file', async () => {
    await init();
    const result = await download('dir/file.txt');
    expect(result.code).toBe(0);
    expect(repo.targetUrlPath('dir/file.txt')).toBe(
      `/targets/dir/${repo.targets.get('dir/file.txt')?.hashes.sha256}.file.txt`,
    );
    expect(requested().at(-1)).toBe(`200 ${repo.targetUrlPath('dir/file.txt')}`);
    expect(await filesIn(targetDir)).toEqual({ 'dir%2Ffile.txt': NESTED });
  });

  it('downloads several targets in order with one refresh', async () => {
    await init();
    const result = await download('dir/file.txt', 'hello.txt');
    expect(result.code).toBe(0);
    expect(requested()).toEqual([
      '404 /metadata/2.root.json',
      '200 /metadata/timestamp.json',
      '200 /metadata/1.snapshot.json',
      '200 /metadata/1.targets.json',
      `200 ${repo.targetUrlPath('dir/file.txt')}`,
      `200 ${repo.targetUrlPath('hello.txt')}`,
    ]);
    expect(await filesIn(targetDir)).toEqual({ 'dir%2Ffile.txt': NESTED, 'hello.txt': HELLO });
  });

  it('exits 1 with TARGET_NOT_FOUND for a target no role lists, downloading nothing', async () => {
    await init();
    const result = await download('missing.txt');
    expect(result).toEqual({
      code: 1,
      stdout: '',
      stderr: '✘ TARGET_NOT_FOUND: no trusted targets role lists "missing.txt"\n',
    });
    expect(server.requests.filter((r) => r.path.startsWith('/targets/'))).toEqual([]);
    await expect(readdir(targetDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('stops at the first missing target: the ones before it are kept, none after', async () => {
    await init();
    const result = await download('hello.txt', 'missing.txt', 'dir/file.txt');
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('✘ TARGET_NOT_FOUND: no trusted targets role lists "missing.txt"\n');
    expect(await filesIn(targetDir)).toEqual({ 'hello.txt': HELLO });
  });

  it('exits 1 with BAD_HASH for a tampered target and leaves no file in the target dir', async () => {
    await init();
    const tampered = HELLO.slice();
    tampered[0] = 0x48; // 'h' -> 'H': same length, different hash
    server.overrides.set(repo.targetUrlPath('hello.txt'), tampered);
    const result = await download('hello.txt');
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(
      /^✘ BAD_HASH: target hello\.txt: sha256 is [0-9a-f]{64}, expected [0-9a-f]{64}\n$/,
    );
    expect(requested().at(-1)).toBe(`200 ${repo.targetUrlPath('hello.txt')}`);
    await expect(readdir(targetDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('exits 1 with TOO_LARGE for a target longer than listed, leaving no file', async () => {
    await init();
    server.overrides.set(repo.targetUrlPath('hello.txt'), utf8('hello, cairn\n and more'));
    const result = await download('hello.txt');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^✘ TOO_LARGE: /);
    await expect(readdir(targetDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('replaces a stale file in the target dir with the verified target', async () => {
    await init();
    expect((await download('hello.txt')).code).toBe(0);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(targetDir, 'hello.txt'), 'stale');
    server.requests.length = 0;
    const result = await download('hello.txt');
    expect(result.stdout).toBe(`downloaded: hello.txt -> ${join(targetDir, 'hello.txt')}\n`);
    expect(requested().at(-1)).toBe(`200 ${repo.targetUrlPath('hello.txt')}`);
    expect(await filesIn(targetDir)).toEqual({ 'hello.txt': HELLO });
  });
});
