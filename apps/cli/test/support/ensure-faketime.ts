// Vitest globalSetup: the TUF conformance suite runs clients under libfaketime, and one test
// here does the same, so the setup installs Debian's faketime when it is missing.
import { spawnSync } from 'node:child_process';
import { hasFaketime } from './run-cli.js';

function run(cmd: string, args: string[]): boolean {
  const result = spawnSync(cmd, args, {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return result.status === 0;
}

export default function setup(): void {
  if (hasFaketime()) return;
  const isRoot = process.getuid?.() === 0;
  const installed =
    isRoot &&
    (run('apt-get', ['install', '-y', '-q', 'faketime']) ||
      (run('apt-get', ['update', '-q']) && run('apt-get', ['install', '-y', '-q', 'faketime'])));
  if (!installed || !hasFaketime()) {
    throw new Error(
      "✘ SETUP: the conformance-client tests need libfaketime's `faketime`. Install it with 'apt-get install faketime' (as root), then run the tests again.",
    );
  }
}
