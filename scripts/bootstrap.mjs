// Installs what the README commands need, every time, idempotently. Runs on whatever Node
// started it (the machine's Node 20 in a fresh clone): plain JavaScript, no dependencies.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function run(cmd, args) {
  const result = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`✘ BOOTSTRAP: '${cmd} ${args.join(' ')}' failed (exit ${result.status}).`);
    console.error('  Check that the npm registry is reachable, then run the command again.');
    process.exit(1);
  }
}

// `npm install`, not `npm ci`: npm leaves other platforms' optional packages (turbo's, for
// one) out of the lockfile it writes, and `npm ci` then refuses that lockfile as out of sync.
// `npm install` keeps every version the lockfile pins and is a quick no-op when up to date.
run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error']);

// The caller's shell may have looked `node` up before node_modules/.bin/node existed, and
// dash remembers that lookup: so the README commands run the rest of their work through a
// fresh `npm run`, which resolves the pinned Node 24.
