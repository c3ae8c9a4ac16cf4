// Debian's chromium for the tests that open a page in a real browser (the HTML audit report).
// playwright-core drives it through executablePath: Playwright's own browser download cannot
// run here (no network but the package registries), and Debian's build is what CI has too.
//
// Used by the root suite's global setup and by apps/cli's browser test; it imports nothing
// relative, so both TypeScript programs can compile it.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

export const CHROMIUM = '/usr/bin/chromium';

/** The flags every launch uses: headless, no sandbox (tests run as root), and no traffic of its own. */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function installed(): boolean {
  try {
    accessSync(CHROMIUM, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The root suite's global setup and apps/cli's test may install at the same moment (turbo
 * runs them side by side): wait for the other's dpkg lock rather than fail on it. */
const WAIT_FOR_LOCK = ['-o', 'DPkg::Lock::Timeout=600'];

function aptGet(args: readonly string[]): boolean {
  const result = spawnSync('apt-get', [...WAIT_FOR_LOCK, ...args], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return result.status === 0;
}

const INSTALL = ['install', '-y', '-q', '--no-install-recommends', 'chromium'] as const;

/**
 * Installs Debian's chromium when /usr/bin/chromium is missing (as root, with apt-get; the
 * package lists are refreshed only when the first install fails). Does nothing when it is there.
 * Throws one `✘ SETUP:` line saying how to install it by hand when it cannot.
 */
export function ensureChromium(): string {
  if (installed()) return CHROMIUM;
  const isRoot = process.getuid?.() === 0;
  const done = isRoot && (aptGet(INSTALL) || (aptGet(['update', '-q']) && aptGet(INSTALL)));
  if (!done || !installed()) {
    throw new Error(
      `✘ SETUP: the HTML report test needs Debian's chromium at ${CHROMIUM}${isRoot ? ', and apt-get could not install it' : ''}. Install it with 'apt-get install --no-install-recommends chromium' (as root), then run the tests again.`,
    );
  }
  return CHROMIUM;
}
