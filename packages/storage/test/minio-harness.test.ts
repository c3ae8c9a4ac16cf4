import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { bytes, expectStorageError, readText } from '../src/contract.js';
import { S3BlobStore } from '../src/s3-store.js';
import {
  findMinio,
  MINIO_VERSION,
  minioCacheDirectory,
  minioEnv,
  minioFromEnv,
  startMinio,
  WATCHDOG_SCRIPT,
  type MinioConnection,
} from '../src/testing/minio.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function storeOn(connection: MinioConnection, bucket: string): S3BlobStore {
  return new S3BlobStore({
    bucket,
    endpoint: connection.endpoint,
    region: connection.region,
    credentials: connection,
    connectTimeoutMs: 1_000,
    operationTimeoutMs: 3_000,
    maxAttempts: 1,
  });
}

describe('startMinio', () => {
  it('serves S3 on 127.0.0.1 with fresh credentials and stops without a trace', async () => {
    const server = await startMinio();
    const pid = server.pid;
    try {
      expect(server.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(server.accessKeyId).not.toBe(inject('minio').accessKeyId);
      expect(server.secretAccessKey.length).toBeGreaterThanOrEqual(32);
      expect((await fetch(`${server.endpoint}/minio/health/ready`)).status).toBe(200);
      await server.createBucket('harness');
      const store = storeOn(server, 'harness');
      await store.put('k', bytes('v'));
      const got = await store.get('k');
      if (got.notModified) throw new Error('expected a body');
      expect(await readText(got.body)).toBe('v');
      store.destroy();
      const stranger = storeOn({ ...server, secretAccessKey: 'wrong-secret-000000' }, 'harness');
      await expectStorageError(stranger.head('k'), 'UNAVAILABLE');
      stranger.destroy();
      expect(pid !== undefined && alive(pid)).toBe(true);
    } finally {
      await server.stop();
    }
    expect(pid !== undefined && alive(pid)).toBe(false);
    expect(existsSync(server.dataDirectory)).toBe(false);
    await expect(fetch(`${server.endpoint}/minio/health/ready`)).rejects.toThrow();
    await server.stop();
  }, 60_000);

  it('keeps data and port across halt and restart', async () => {
    const server = await startMinio();
    try {
      await server.createBucket('durable');
      const store = storeOn(server, 'durable');
      await store.put('k', bytes('still here'));
      await server.halt();
      expect(server.pid).toBeUndefined();
      await expectStorageError(store.head('k'), 'UNAVAILABLE');
      await server.restart();
      const got = await store.get('k');
      if (got.notModified) throw new Error('expected a body');
      expect(await readText(got.body)).toBe('still here');
      store.destroy();
    } finally {
      await server.stop();
    }
  }, 60_000);

  it('stops a frozen server too', async () => {
    const server = await startMinio();
    const pid = server.pid;
    server.freeze();
    await server.stop();
    expect(pid !== undefined && alive(pid)).toBe(false);
    expect(existsSync(server.dataDirectory)).toBe(false);
  }, 60_000);
});

describe('the watchdog around MinIO', () => {
  it('kills the server and removes its directory when the parent goes away', async () => {
    const root = await mkdtemp(join(tmpdir(), 'cairn-watchdog-'));
    const shell = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT, 'watchdog', 'sleep', '600'], {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
      env: { ...process.env, CAIRN_MINIO_REMOVE_ON_EXIT: root },
    });
    const shellPid = shell.pid ?? 0;
    let sleepPid = 0;
    await waitUntil(() => {
      const out = spawnSync('ps', ['-o', 'pid=', '--ppid', String(shellPid)], { encoding: 'utf8' });
      sleepPid = Number(out.stdout.trim().split('\n')[0] ?? 0);
      return sleepPid > 0;
    });
    expect(alive(sleepPid)).toBe(true);
    // What the parent's death does to the pipe: our end closes.
    shell.stdin?.destroy();
    await waitUntil(() => !alive(sleepPid) && !existsSync(root));
    await waitUntil(() => !alive(shellPid) || shell.exitCode !== null);
  });
});

describe('findMinio', () => {
  let home: string;
  let bin: string;

  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), 'cairn-find-minio-'));
    bin = join(home, 'bin');
    await mkdir(bin);
  });

  afterEach(async () => {
    await rm(home, { recursive: true, force: true });
  });

  async function executable(path: string, script: string): Promise<string> {
    await writeFile(path, `#!/bin/sh\n${script}\n`);
    await chmod(path, 0o755);
    return path;
  }

  /** An environment with nothing but `bin` on PATH and a cache under `home`. */
  function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return {
      PATH: `${bin}:/bin:/usr/bin`,
      HOME: home,
      XDG_CACHE_HOME: join(home, 'cache'),
      ...extra,
    };
  }

  const quiet = (): void => undefined;

  it('takes MINIO_BIN first, and says clearly when it is not a binary', async () => {
    const mine = await executable(join(home, 'my-minio'), 'exit 0');
    await executable(join(bin, 'minio'), 'exit 0');
    expect(await findMinio({ env: env({ MINIO_BIN: mine }), log: quiet })).toBe(mine);
    await expect(
      findMinio({ env: env({ MINIO_BIN: join(home, 'missing') }), log: quiet }),
    ).rejects.toThrow(
      `MINIO_BIN is ${join(home, 'missing')}, which is not an executable file. Point it at a minio binary, or unset it to let the tests build one with Go.`,
    );
  });

  it('then minio on PATH, then the cache', async () => {
    const onPath = await executable(join(bin, 'minio'), 'exit 0');
    expect(await findMinio({ env: env(), log: quiet })).toBe(onPath);
    await rm(onPath);
    const cacheDirectory = minioCacheDirectory(env());
    expect(cacheDirectory).toBe(join(home, 'cache', 'cairn', 'minio', MINIO_VERSION));
    await mkdir(cacheDirectory, { recursive: true });
    const cached = await executable(join(cacheDirectory, 'minio'), 'exit 0');
    expect(await findMinio({ env: env(), log: quiet })).toBe(cached);
    expect(minioCacheDirectory({ HOME: home })).toBe(
      join(home, '.cache', 'cairn', 'minio', MINIO_VERSION),
    );
  });

  it('stops with one clear message when there is neither a binary nor Go', async () => {
    await expect(
      findMinio({
        env: { PATH: bin, HOME: home, XDG_CACHE_HOME: join(home, 'c') },
        goFallbacks: [],
        log: quiet,
      }),
    ).rejects.toThrow(
      'The storage tests need MinIO, and there is no minio binary (MINIO_BIN, PATH) and no Go to build one. Install Go 1.24 or newer (https://go.dev/dl/, or `apt-get install golang`), or set MINIO_BIN to a minio server binary.',
    );
  });

  it('builds the pinned version with go install into the cache, printing progress', async () => {
    // A stand-in for Go that records how it was called and "builds" a minio into GOBIN.
    const calls = join(home, 'go-calls');
    await executable(
      join(bin, 'go'),
      [
        `echo "$* GOBIN=$GOBIN CGO_ENABLED=$CGO_ENABLED" >> ${calls}`,
        'echo github.com/minio/minio/cmd >&2',
        'printf "#!/bin/sh\\necho built\\n" > "$GOBIN/minio"',
        'chmod +x "$GOBIN/minio"',
      ].join('\n'),
    );
    const lines: string[] = [];
    const found = await findMinio({ env: env(), log: (line) => lines.push(line) });
    const cacheDirectory = minioCacheDirectory(env());
    expect(found).toBe(join(cacheDirectory, 'minio'));
    const call = (await readFile(calls, 'utf8')).trim();
    expect(call).toMatch(
      new RegExp(
        `^install -v github\\.com/minio/minio@${MINIO_VERSION} GOBIN=${cacheDirectory}/\\.build-\\w+ CGO_ENABLED=0$`,
      ),
    );
    expect(lines[0]).toBe(
      `no minio binary found; building github.com/minio/minio@${MINIO_VERSION} with ${join(bin, 'go')} into ${cacheDirectory}`,
    );
    expect(lines.at(-1)).toMatch(/^built MinIO in \d+ s$/);
    expect(spawnSync(found, [], { encoding: 'utf8' }).stdout).toBe('built\n');
    // The temporary build directory is gone; a second lookup does not build again.
    expect(spawnSync('ls', ['-A', cacheDirectory], { encoding: 'utf8' }).stdout).toBe('minio\n');
    expect(await findMinio({ env: env(), log: quiet })).toBe(found);
    expect((await readFile(calls, 'utf8')).trim().split('\n')).toHaveLength(1);
  });

  it('finds Go at its standard install location when PATH lacks it', async () => {
    await mkdir(join(home, 'goroot', 'bin'), { recursive: true });
    const go = await executable(
      join(home, 'goroot', 'bin', 'go'),
      'printf "#!/bin/sh\\necho built\\n" > "$GOBIN/minio"; chmod +x "$GOBIN/minio"',
    );
    const lines: string[] = [];
    const found = await findMinio({ env: env(), goFallbacks: [go], log: (l) => lines.push(l) });
    expect(found).toBe(join(minioCacheDirectory(env()), 'minio'));
    expect(lines[0]).toBe(
      `no minio binary found; building github.com/minio/minio@${MINIO_VERSION} with ${go} into ${minioCacheDirectory(env())}`,
    );
  });

  it('reports a failed build with the end of its output', async () => {
    await executable(join(bin, 'go'), 'echo "go: module lookup disabled" >&2; exit 1');
    await expect(findMinio({ env: env(), log: quiet })).rejects.toThrow(
      `go install github.com/minio/minio@${MINIO_VERSION} failed (exit 1):\ngo: module lookup disabled`,
    );
  });
});

describe('sharing one MinIO through the environment', () => {
  it('round-trips a connection through CAIRN_MINIO_* variables', () => {
    const connection = inject('minio');
    expect(minioFromEnv(minioEnv(connection))).toEqual(connection);
    expect(minioFromEnv({})).toBeUndefined();
  });
});
