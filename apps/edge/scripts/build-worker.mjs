// Bundles the Worker exactly as `wrangler deploy` would, without deploying: dist-worker/ is what
// Miniflare runs in the tests and the benchmark. Runs under the project's pinned Node (wrangler
// needs 22 or newer).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const appDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const result = spawnSync(
  process.execPath,
  [
    join(
      dirname(createRequire(import.meta.url).resolve('wrangler/package.json')),
      'bin/wrangler.js',
    ),
    'deploy',
    '--dry-run',
    '--outdir',
    'dist-worker',
  ],
  {
    cwd: appDir,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false' },
  },
);
if (result.status !== 0) {
  process.stdout.write(result.stdout);
  process.exit(result.status ?? 1);
}
