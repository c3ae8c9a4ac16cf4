/**
 * The Worker as wrangler sees it, offline: `wrangler deploy --dry-run` bundles it with the R2
 * binding the config declares, the bundle needs no Node built-ins (no nodejs_compat), and
 * worker-configuration.d.ts matches wrangler.jsonc (`wrangler types --check`, which is shown to
 * catch a config that changed without regenerating).
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const appDirectory = join(dirname(fileURLToPath(import.meta.url)), '..');
const wranglerBin = join(
  dirname(createRequire(import.meta.url).resolve('wrangler/package.json')),
  'bin',
  'wrangler.js',
);

let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'cairn-edge-wrangler-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

interface Run {
  readonly code: number | null;
  readonly output: string;
}

/** Runs wrangler under this Node (22+), offline: no metrics, no banner (its update check). */
function wrangler(args: readonly string[], cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [wranglerBin, ...args], {
      cwd,
      env: {
        ...process.env,
        WRANGLER_SEND_METRICS: 'false',
        WRANGLER_HIDE_BANNER: 'true',
        WRANGLER_LOG_PATH: join(scratch, 'logs'),
        NO_COLOR: '1',
        FORCE_COLOR: '0',
        CI: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('wrangler', () => {
  test('deploy --dry-run bundles the Worker with the BUCKET R2 binding, and no Node built-ins', async () => {
    const outdir = join(scratch, 'bundle');
    const run = await wrangler(['deploy', '--dry-run', '--outdir', outdir], appDirectory);
    expect(run.code, run.output).toBe(0);
    expect(run.output).toMatch(/env\.BUCKET \(cairn-repository\)\s+R2 Bucket/);
    expect(run.output).toMatch(/env\.CAIRN_STORAGE \("r2"\)\s+Environment Variable/);
    expect(run.output).toContain('--dry-run: exiting now.');
    const bundle = await readFile(join(outdir, 'index.js'), 'utf8');
    expect((await stat(join(outdir, 'index.js'))).size).toBeGreaterThan(10_000);
    // The config has no nodejs_compat: a `node:` import would fail on Cloudflare at deploy.
    expect(bundle).not.toMatch(/from\s*["']node:/);
    expect(bundle).not.toMatch(/require\(["']node:/);
    expect(bundle).toMatch(/export\s*\{[^}]*\bdefault\b/);
  });

  test('worker-configuration.d.ts is up to date with wrangler.jsonc', async () => {
    const run = await wrangler(['types', '--check'], appDirectory);
    expect(run.code, run.output).toBe(0);
    expect(run.output).toContain('Types at worker-configuration.d.ts are up to date.');
  });

  test('types --check fails once a var changes without regenerating (so the check above can fail)', async () => {
    const copy = join(scratch, 'app');
    await mkdir(join(copy, 'src', 'worker'), { recursive: true });
    await copyFile(
      join(appDirectory, 'worker-configuration.d.ts'),
      join(copy, 'worker-configuration.d.ts'),
    );
    await copyFile(
      join(appDirectory, 'src', 'worker', 'index.ts'),
      join(copy, 'src', 'worker', 'index.ts'),
    );
    const config = await readFile(join(appDirectory, 'wrangler.jsonc'), 'utf8');
    await writeFile(join(copy, 'wrangler.jsonc'), config);
    const unchanged = await wrangler(['types', '--check'], copy);
    expect(unchanged.code, unchanged.output).toBe(0);

    const changed = config.replace('"CAIRN_RETRY_AFTER": "5"', '"CAIRN_RETRY_AFTER": "6"');
    expect(changed).not.toBe(config);
    await writeFile(join(copy, 'wrangler.jsonc'), changed);
    const stale = await wrangler(['types', '--check'], copy);
    expect(stale.code).toBe(1);
    expect(stale.output).toContain('Types at worker-configuration.d.ts are out of date.');
  });
});
