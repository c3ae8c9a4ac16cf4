// Installs what the README commands need, every time, idempotently. Runs on whatever Node
// started it (the machine's Node 20 in a fresh clone): plain JavaScript, no dependencies.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
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

// A fresh clone installs exactly what the lockfile says; an existing tree is brought up to
// date with it (a no-op when nothing changed).
const fresh = !existsSync(join(root, 'node_modules', '.package-lock.json'));
run('npm', [fresh ? 'ci' : 'install', '--no-audit', '--no-fund', '--loglevel=error']);
