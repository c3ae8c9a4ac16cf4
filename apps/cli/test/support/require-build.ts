// Vitest globalSetup: the integration tests spawn dist/*.js, so a missing or stale build would
// test old code. Turbo builds first (apps/cli/turbo.json: test depends on build); a run straight
// from this directory after editing src/ stops here with the fix, instead of passing on old code.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const appDir = fileURLToPath(new URL('../..', import.meta.url));

export default function requireBuild(): void {
  const src = join(appDir, 'src');
  for (const name of readdirSync(src)) {
    if (!name.endsWith('.ts') || name.endsWith('.test.ts')) continue;
    const built = join(appDir, 'dist', name.replace(/\.ts$/, '.js'));
    let builtAt: number;
    try {
      builtAt = statSync(built).mtimeMs;
    } catch {
      throw new Error(`✘ NOT_BUILT: ${built} is missing. Run \`npm run build\` in apps/cli first.`);
    }
    if (statSync(join(src, name)).mtimeMs > builtAt) {
      throw new Error(
        `✘ STALE_BUILD: src/${name} is newer than its build. Run \`npm run build\` in apps/cli first.`,
      );
    }
  }
}
